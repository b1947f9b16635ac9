/* json.c - strict request parsing: unknown fields and wrong types are errors. */
#include "json.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

int
json_parse_object(const char *body, size_t len, bool allow_empty, json_t **ret,
    struct bn_err *err)
{
	json_error_t jerr;
	json_t *j;
	size_t i = 0;

	while (i < len && (body[i] == ' ' || body[i] == '\n' ||
	    body[i] == '\r' || body[i] == '\t'))
		i++;
	if (i == len) {
		if (allow_empty) {
			*ret = json_object();
			return 0;
		}
		return bn_fail(err, BN_EJSON, 0, "request body is empty; "
		    "a JSON object is required");
	}
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		bn_fail(err, BN_EJSON, 0, "invalid JSON at line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return bn_fail(err, BN_EJSON, 0,
		    "request body must be a JSON object");
	}
	*ret = j;
	return 0;
}

static const char *
jf_type_name(enum jf_type t)
{
	switch (t) {
	case JF_STRING: return "a string";
	case JF_INT: return "an integer";
	case JF_BOOL: return "a boolean";
	case JF_ARRAY: return "an array";
	case JF_OBJECT: return "an object";
	}
	return "?";
}

static bool
jf_matches(json_t *v, enum jf_type t)
{
	switch (t) {
	case JF_STRING: return json_is_string(v);
	case JF_INT: return json_is_integer(v);
	case JF_BOOL: return json_is_boolean(v);
	case JF_ARRAY: return json_is_array(v);
	case JF_OBJECT: return json_is_object(v);
	}
	return false;
}

int
json_check_fields(json_t *obj, const struct json_field *fields, int n,
    struct bn_err *err)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		int i;
		for (i = 0; i < n; i++)
			if (strcmp(fields[i].name, key) == 0)
				break;
		if (i == n) {
			bn_fail(err, BN_EUNKNOWN_FIELD, 0, "unknown field '%.64s'",
			    key);
			bn_err_detail(err, "field", key);
			return -1;
		}
		/* null only where the contract says the field is nullable:
		 * "vcpus": null is not "vcpus" left out. */
		if (json_is_null(v) && fields[i].nullable)
			continue;
		if (!jf_matches(v, fields[i].type)) {
			bn_fail(err, BN_EFIELD, 0, "field '%s' must be %s%s",
			    key, jf_type_name(fields[i].type), json_is_null(v) ?
			    ", not null" : "");
			bn_err_detail(err, "field", key);
			return -1;
		}
	}
	for (int i = 0; i < n; i++) {
		if (!fields[i].required)
			continue;
		v = json_object_get(obj, fields[i].name);
		if (v == NULL || (json_is_null(v) && !fields[i].nullable)) {
			bn_fail(err, BN_EINVAL, 0, "field '%s' is required",
			    fields[i].name);
			bn_err_detail(err, "field", fields[i].name);
			return -1;
		}
	}
	return 0;
}

int
json_get_int(json_t *obj, const char *key, long long lo, long long hi,
    long long def, long long *ret, struct bn_err *err)
{
	json_t *v = json_object_get(obj, key);
	char buf[32];

	if (v == NULL || json_is_null(v)) {
		*ret = def;
		return 0;
	}
	if (!json_is_integer(v)) {
		bn_fail(err, BN_EINVAL, 0, "field '%s' must be an integer", key);
		return bn_err_detail(err, "field", key);
	}
	long long x = json_integer_value(v);
	if (x < lo || x > hi) {
		bn_fail(err, BN_EINVAL, 0, "field '%s' must be between %lld and "
		    "%lld (got %lld)", key, lo, hi, x);
		snprintf(buf, sizeof(buf), "%lld", x);
		bn_err_detail(err, "field", key);
		return -1;
	}
	*ret = x;
	return 0;
}

const char *
json_get_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

char *
json_dump_compact(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	if (s == NULL)
		fatalx("out of memory dumping JSON");
	return s;
}

json_t *
json_str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}
