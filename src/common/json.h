/* json.h - strict request-body parsing on top of jansson. */
#ifndef BANGER_JSON_H
#define BANGER_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"

enum jf_type { JF_STRING, JF_INT, JF_BOOL, JF_ARRAY, JF_OBJECT };

struct json_field {
	const char *name;
	enum jf_type type;
	bool required;
	bool nullable;
};

/* Parse a body that must be one JSON object (duplicate keys rejected).
 * An empty body yields an empty object when allow_empty is set. */
int json_parse_object(const char *body, size_t len, bool allow_empty,
    json_t **ret, struct bn_err *err);
/* Reject unknown fields (BN_EUNKNOWN_FIELD), wrong types and missing
 * required fields (BN_EINVAL), naming the field in the error details. */
int json_check_fields(json_t *obj, const struct json_field *fields, int n,
    struct bn_err *err);
/* Integer field within [lo, hi]; *ret = def when absent or null. */
int json_get_int(json_t *obj, const char *key, long long lo, long long hi,
    long long def, long long *ret, struct bn_err *err);
/* String field or NULL (borrowed from obj). */
const char *json_get_str(json_t *obj, const char *key);
/* Dump to a malloc'd compact string. */
char *json_dump_compact(const json_t *j);
/* A JSON string or null from a C string that may be NULL or "". */
json_t *json_str_or_null(const char *s);

#endif
