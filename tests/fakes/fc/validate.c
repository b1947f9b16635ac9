/* validate.c - request bodies read the way Firecracker's serde reads them.
 *
 * Firecracker deserializes a body with serde_json straight into a
 * #[serde(deny_unknown_fields)] struct.  That is one streaming pass: the
 * first problem met wins, and the message says where ("at line L column
 * C").  jansson decodes every key and value here; this file only walks the
 * objects that have a schema, in serde's order, and checks each member
 * against the table generated from the swagger (fc_schema.c): unknown
 * fields, types, integer widths, enum values, then required fields.  So a
 * body with an unknown field and a syntax error after it gets the answer
 * Firecracker gives, in its words and at its column.  Syntax errors inside
 * a value jansson decodes whole (a string, the MMDS data) get serde's words
 * from jansson's; a few of those (bad surrogate escapes, MMDS data) may
 * point a column or two away from where serde would.
 */
#include "fake.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* serde_json's recursion limit; jansson's own is deeper. */
#define MAX_DEPTH 128

#define DECODE_FLAGS (JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL)

struct walk {
	const char *s;
	size_t n, i;
	bool bad;		/* err holds the first problem */
	char err[1024];
};

struct number {
	bool is_float, neg;
	uint64_t u;		/* !is_float && !neg */
	int64_t i;		/* !is_float && neg */
	double d;
};

/* Where serde reports a problem jansson stopped at: jansson's position is
 * just past what it read (the token "near 'tok'" ends there), serde's is
 * the character it could not use. */
enum where { AT_STOP, PAST_STOP, AT_TOKEN };

/* jansson's syntax errors in serde's words. */
static const struct {
	const char *jansson;	/* how json_error_t.text starts */
	const char *serde;
	enum where where;
} syntax_words[] = {
	{ "control character",
	  "control character (\\u0000-\\u001F) found while parsing a string",
	  PAST_STOP },
	{ "unexpected newline",
	  "control character (\\u0000-\\u001F) found while parsing a string",
	  PAST_STOP },
	{ "unable to decode byte", "invalid unicode code point", PAST_STOP },
	{ "invalid escape", "invalid escape", AT_STOP },
	{ "invalid Unicode escape", "invalid escape", AT_STOP },
	{ "string or '}' expected near '}'", "trailing comma", AT_TOKEN },
	{ "unexpected token near ']'", "trailing comma", AT_TOKEN },
	{ "string or '}' expected", "key must be a string", AT_TOKEN },
	{ "unexpected token", "expected value", AT_TOKEN },
	{ "':' expected", "expected `:`", AT_TOKEN },
	{ "']' expected", "expected `,` or `]`", AT_TOKEN },
	{ "'}' expected", "expected `,` or `}`", AT_TOKEN },
	{ "maximum parsing depth", "recursion limit exceeded", AT_STOP },
	{ "too big integer", "number out of range", AT_STOP },
	{ "real number overflow", "number out of range", AT_STOP },
};

/* The first problem wins; upto is the offset serde reports it at. */
static void
fail(struct walk *w, size_t upto, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
fail(struct walk *w, size_t upto, const char *fmt, ...)
{
	size_t line = 1, line_start = 0;
	char msg[900];
	va_list ap;

	if (w->bad)
		return;
	w->bad = true;
	if (upto > w->n)
		upto = w->n;
	for (size_t k = 0; k < upto; k++)
		if (w->s[k] == '\n') {
			line++;
			line_start = k + 1;
		}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(w->err, sizeof(w->err), "%s at line %zu column %zu", msg, line,
	    upto - line_start);
}

static void
skip_ws(struct walk *w)
{
	while (w->i < w->n && (w->s[w->i] == ' ' || w->s[w->i] == '\t' ||
	    w->s[w->i] == '\n' || w->s[w->i] == '\r'))
		w->i++;
}

/* Skip white space; at the end of the body, fail "EOF while parsing what". */
static bool
more(struct walk *w, const char *what)
{
	skip_ws(w);
	if (w->i < w->n)
		return true;
	fail(w, w->n, "EOF while parsing %s", what);
	return false;
}

static bool
starts_number(char c)
{
	return c == '-' || isdigit((unsigned char)c);
}

static int
depth(json_t *v)
{
	int d = 0, sub;
	size_t k;
	const char *key;
	json_t *e;

	if (json_is_array(v))
		json_array_foreach(v, k, e)
			if ((sub = depth(e)) > d)
				d = sub;
	if (json_is_object(v))
		json_object_foreach(v, key, e)
			if ((sub = depth(e)) > d)
				d = sub;
	return json_is_array(v) || json_is_object(v) ? d + 1 : 0;
}

/* true, false or null, compared letter by letter as serde does. */
static json_t *
ident(struct walk *w)
{
	char c = w->s[w->i];
	const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";

	for (; *word; word++, w->i++) {
		if (w->i >= w->n) {
			fail(w, w->n, "EOF while parsing a value");
			return NULL;
		}
		if (w->s[w->i] != *word) {
			fail(w, w->i + 1, "expected ident");
			return NULL;
		}
	}
	return c == 't' ? json_true() : c == 'f' ? json_false() : json_null();
}

/* serde's words for jansson's "invalid Unicode '\\uD800'" (or with a
 * second escape): a high surrogate must be followed by a low one. */
static const char *
surrogate_words(const char *jansson_text)
{
	const char *u = jansson_text + strlen("invalid Unicode '");
	unsigned long cp = strtoul(u + 2, NULL, 16);

	if (u[6] == '\'' && cp >= 0xD800 && cp <= 0xDBFF)
		return "unexpected end of hex escape";
	return "lone leading surrogate in hex escape";
}

/* What the body ended inside of, from what jansson was waiting for. */
static const char *
eof_context(const struct walk *w, const char *jansson_text)
{
	size_t k = w->n;

	if (strncmp(jansson_text, "premature end of input", 22) == 0)
		return "a string";
	if (strncmp(jansson_text, "unexpected token", 16) == 0)
		return "a value";
	if (strncmp(jansson_text, "']' expected", 12) != 0)
		return "an object";
	while (k > 0 && isspace((unsigned char)w->s[k - 1]))
		k--;
	return k > 0 && (w->s[k - 1] == ',' || w->s[k - 1] == '[') ? "a value" :
	    "a list";
}

static void
decode_fail(struct walk *w, size_t start, const json_error_t *e)
{
	size_t at = start + (size_t)e->position, len = 0, tok, k;
	const char *near = strstr(e->text, " near '");
	char c;

	if (json_error_code(e) == json_error_premature_end_of_input) {
		fail(w, w->n, "EOF while parsing %s", eof_context(w, e->text));
		return;
	}
	if (strncmp(e->text, "invalid Unicode '", 17) == 0) {
		fail(w, at, "%s", surrogate_words(e->text));
		return;
	}
	if (near != NULL && e->text[strlen(e->text) - 1] == '\'')
		len = strlen(near) - strlen(" near ''");
	tok = at >= start + len ? at - len : start;
	c = w->s[tok];
	if (strncmp(e->text, "invalid token", 13) == 0) {
		if (starts_number(c) && at >= w->n) {
			fail(w, w->n, "EOF while parsing a value");
		} else if (starts_number(c)) {
			fail(w, at + 1, "invalid number");
		} else if (c == 't' || c == 'f' || c == 'n') {
			/* serde's own comparison says where the word breaks. */
			w->i = tok;
			json_decref(ident(w));
		}
		if (!w->bad)
			fail(w, tok + 1, "expected value");
		return;
	}
	for (k = 0; k < sizeof(syntax_words) / sizeof(syntax_words[0]); k++)
		if (strncmp(e->text, syntax_words[k].jansson,
		    strlen(syntax_words[k].jansson)) == 0)
			break;
	if (k == sizeof(syntax_words) / sizeof(syntax_words[0]))
		fail(w, at, "%s", e->text);
	else
		fail(w, syntax_words[k].where == AT_STOP ? at :
		    syntax_words[k].where == PAST_STOP ? at + 1 : tok + 1,
		    "%s", syntax_words[k].serde);
}

/* One string, array or object at the cursor, decoded by jansson. */
static json_t *
decode(struct walk *w)
{
	size_t start = w->i;
	json_error_t e;
	json_t *v = json_loadb(w->s + start, w->n - start, DECODE_FLAGS, &e);

	if (v == NULL) {
		decode_fail(w, start, &e);
		return NULL;
	}
	w->i = start + (size_t)e.position;
	if (depth(v) > MAX_DEPTH) {
		fail(w, start + 1, "recursion limit exceeded");
		json_decref(v);
		return NULL;
	}
	return v;
}

static int
number(struct walk *w, struct number *num)
{
	size_t start = w->i;
	json_error_t e;
	json_t *v = json_loadb(w->s + start, w->n - start, DECODE_FLAGS, &e);

	memset(num, 0, sizeof(*num));
	if (v == NULL && json_error_code(&e) == json_error_numeric_overflow &&
	    strncmp(e.text, "too big integer", 15) == 0) {
		/* Past int64: serde reads u64 while it fits, f64 after. */
		char *digits = strndup(w->s + start, (size_t)e.position);
		if (digits == NULL)
			abort();
		errno = 0;
		num->u = strtoull(digits, NULL, 10);
		if (digits[0] == '-' || errno == ERANGE) {
			num->is_float = true;
			num->d = strtod(digits, NULL);
		}
		free(digits);
		w->i = start + (size_t)e.position;
		return 0;
	}
	if (v == NULL) {
		decode_fail(w, start, &e);
		return -1;
	}
	w->i = start + (size_t)e.position;
	if (json_is_real(v)) {
		num->is_float = true;
		num->d = json_real_value(v);
	} else if (json_integer_value(v) < 0 || w->s[start] == '-') {
		num->neg = true;
		num->i = json_integer_value(v);
	} else {
		num->u = (uint64_t)json_integer_value(v);
	}
	json_decref(v);
	return 0;
}

static json_t *
number_json(const struct number *num)
{
	if (num->is_float)
		return json_real(num->d);
	if (num->neg)
		return json_integer(num->i);
	if (num->u > (uint64_t)INT64_MAX)
		return json_real((double)num->u);
	return json_integer((json_int_t)num->u);
}

/* serde's words for a number it did not expect. */
static void
describe_number(char *buf, size_t cap, const struct number *num)
{
	if (!num->is_float && num->neg)
		snprintf(buf, cap, "integer `%" PRId64 "`", num->i);
	else if (!num->is_float)
		snprintf(buf, cap, "integer `%" PRIu64 "`", num->u);
	else if (num->d == (double)(long long)num->d && num->d < 1e16 &&
	    num->d > -1e16)
		snprintf(buf, cap, "floating point `%.1f`", num->d);
	else
		snprintf(buf, cap, "floating point `%.17g`", num->d);
}

/* Any JSON value: serde_json::Value. */
static json_t *
read_value(struct walk *w)
{
	struct number num;
	char c;

	if (!more(w, "a value"))
		return NULL;
	c = w->s[w->i];
	if (c == 't' || c == 'f' || c == 'n')
		return ident(w);
	if (starts_number(c))
		return number(w, &num) < 0 ? NULL : number_json(&num);
	if (c == '"' || c == '[' || c == '{')
		return decode(w);
	fail(w, w->i + 1, "expected value");
	return NULL;
}

/* "invalid type: <what is there>, expected <exp>". */
static void
invalid_type(struct walk *w, const char *exp)
{
	struct number num;
	char what[128];
	char *str = NULL;
	size_t len = 0;
	json_t *v;

	if (!more(w, "a value"))
		return;
	switch (w->s[w->i]) {
	case '[':
		fail(w, w->i + 1, "invalid type: sequence, expected %s", exp);
		return;
	case '{':
		fail(w, w->i + 1, "invalid type: map, expected %s", exp);
		return;
	}
	if (starts_number(w->s[w->i])) {
		if (number(w, &num) == 0) {
			describe_number(what, sizeof(what), &num);
			fail(w, w->i, "invalid type: %s, expected %s", what, exp);
		}
		return;
	}
	if ((v = read_value(w)) == NULL)
		return;
	if (json_is_string(v)) {
		FILE *f = open_memstream(&str, &len);
		if (f != NULL) {
			rust_debug_str(f, json_string_value(v), json_string_length(v));
			fclose(f);
		}
		fail(w, w->i, "invalid type: string %s, expected %s", str, exp);
		free(str);
	} else {
		snprintf(what, sizeof(what), "%s", json_is_null(v) ? "null" :
		    json_is_true(v) ? "boolean `true`" : "boolean `false`");
		fail(w, w->i, "invalid type: %s, expected %s", what, exp);
	}
	json_decref(v);
}

/* serde's list of what it wanted: "expected `a` or `b`", "expected one
 * of ...".  Returns a malloc'd string. */
static char *
one_of(const char *const *names, size_t n, const char *what)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		abort();
	if (n == 0)
		fprintf(f, "there are no %s", what);
	else if (n == 1)
		fprintf(f, "expected `%s`", names[0]);
	else if (n == 2)
		fprintf(f, "expected `%s` or `%s`", names[0], names[1]);
	else
		for (size_t k = 0; k < n; k++)
			fprintf(f, "%s`%s`", k ? ", " : "expected one of ", names[k]);
	fclose(f);
	return buf;
}

static bool
valid_mac(const char *s)
{
	if (strlen(s) != 17)
		return false;
	for (int k = 0; k < 17; k++)
		if (k % 3 == 2 ? s[k] != ':' : !isxdigit((unsigned char)s[k]))
			return false;
	return true;
}

static const char *
expected(const struct fc_field *f, char *buf, size_t cap)
{
	switch (f->kind) {
	case FC_PATH: return "path string";
	case FC_IPV4: return "IPv4 address";
	case FC_BOOL: return "a boolean";
	case FC_UINT: return f->rust;
	case FC_STRINGS:
	case FC_OBJECTS: return "a sequence";
	case FC_STRING_MAP: return "a map";
	case FC_ENUM:
		snprintf(buf, cap, "enum %s", f->rust);
		return buf;
	default: return "a string";
	}
}

static bool
fits(const struct fc_field *f, char c)
{
	switch (f->kind) {
	case FC_BOOL: return c == 't' || c == 'f';
	case FC_STRINGS:
	case FC_OBJECTS: return c == '[';
	case FC_STRING_MAP: return c == '{';
	case FC_UINT: return starts_number(c);
	default: return c == '"';
	}
}

/* The members of an array or an object are all strings. */
static bool
all_strings(json_t *v)
{
	const char *key;
	size_t k;
	json_t *e;

	json_array_foreach(v, k, e)
		if (!json_is_string(e))
			return false;
	json_object_foreach(v, key, e)
		if (!json_is_string(e))
			return false;
	return true;
}

/* The checks past the JSON type: enum values, formats, members, range. */
static int
check_value(struct walk *w, const struct fc_field *f, json_t *v)
{
	const char *s = json_string_value(v);
	char *names;
	struct in_addr a;
	size_t n = 0, k;

	switch (f->kind) {
	case FC_ENUM:
	case FC_FROMSTR:
		while (f->values[n] != NULL)
			n++;
		for (k = 0; k < n; k++)
			if (f->kind == FC_ENUM ? strcmp(f->values[k], s) == 0 :
			    strcasecmp(f->values[k], s) == 0)
				return 0;
		if (f->kind == FC_FROMSTR) {
			fail(w, w->i, "Invalid %s", f->rust);
			return -1;
		}
		names = one_of(f->values, n, "variants");
		fail(w, w->i, "unknown variant `%s`, %s", s, names);
		free(names);
		return -1;
	case FC_MAC:
		if (!valid_mac(s))
			fail(w, w->i, "invalid MAC address: %s", s);
		break;
	case FC_IPV4:
		if (inet_pton(AF_INET, s, &a) != 1)
			fail(w, w->i, "invalid IPv4 address syntax");
		break;
	case FC_STRINGS:
	case FC_STRING_MAP:
		if (!all_strings(v))
			fail(w, w->i, "invalid type: non-string %s, expected a string",
			    f->kind == FC_STRINGS ? "element" : "value");
		break;
	default:
		break;
	}
	return w->bad ? -1 : 0;
}

static json_t *object(struct walk *w, const struct fc_schema *sc,
    const char *update);
static json_t *objects(struct walk *w, const struct fc_schema *sc);

/* One member's value; NULL without a problem for an Option's null. */
static json_t *
field(struct walk *w, const struct fc_field *f, bool nullable)
{
	struct number num;
	char exp[128], what[128];
	json_t *v;

	if (!more(w, "a value"))
		return NULL;
	if (nullable && w->s[w->i] == 'n') {
		json_decref(ident(w));
		return NULL;
	}
	if (f->kind == FC_OBJECT)
		return object(w, f->object, NULL);
	if (!fits(f, w->s[w->i])) {
		invalid_type(w, expected(f, exp, sizeof(exp)));
		return NULL;
	}
	if (f->kind == FC_OBJECTS)
		return objects(w, f->object);
	if (f->kind != FC_UINT) {
		v = read_value(w);
		if (v != NULL && check_value(w, f, v) < 0) {
			json_decref(v);
			return NULL;
		}
		return v;
	}
	if (number(w, &num) < 0)
		return NULL;
	describe_number(what, sizeof(what), &num);
	if (num.is_float)
		fail(w, w->i, "invalid type: %s, expected %s", what, f->rust);
	else if (num.neg || num.u > f->rust_max)
		fail(w, w->i, "invalid value: %s, expected %s", what, f->rust);
	return w->bad ? NULL : number_json(&num);
}

/* The key at the cursor: one of the struct's fields, seen once. */
static const struct fc_field *
member(struct walk *w, const struct fc_schema *sc, uint32_t *seen)
{
	const char *names[32];
	char *list;
	json_t *key;
	size_t k;

	if (w->s[w->i] != '"') {
		fail(w, w->i + 1, "key must be a string");
		return NULL;
	}
	if ((key = decode(w)) == NULL)
		return NULL;
	for (k = 0; k < sc->nfields; k++)
		if (strcmp(sc->fields[k].name, json_string_value(key)) == 0)
			break;
	if (k == sc->nfields) {
		for (k = 0; k < sc->nfields; k++)
			names[k] = sc->fields[k].name;
		list = one_of(names, sc->nfields, "fields");
		fail(w, w->i, "unknown field `%s`, %s", json_string_value(key), list);
		free(list);
	} else if (*seen & (1u << k)) {
		fail(w, w->i, "duplicate field `%s`", sc->fields[k].name);
	}
	json_decref(key);
	if (w->bad)
		return NULL;
	*seen |= 1u << k;
	return &sc->fields[k];
}

/* A struct of the table.  update: the name of the all-Option struct a
 * PATCH is read into (nothing required, null everywhere), or NULL. */
static json_t *
object(struct walk *w, const struct fc_schema *sc, const char *update)
{
	const struct fc_field *f;
	uint32_t seen = 0;
	char exp[128];
	json_t *obj, *v;

	snprintf(exp, sizeof(exp), "struct %s", update ? update : sc->rust);
	if (!more(w, "a value"))
		return NULL;
	if (w->s[w->i] != '{') {
		invalid_type(w, exp);
		return NULL;
	}
	w->i++;
	obj = json_object();
	skip_ws(w);
	if (w->i < w->n && w->s[w->i] == '}') {
		w->i++;
		goto done;
	}
	for (;;) {
		if (!more(w, "an object") || (f = member(w, sc, &seen)) == NULL)
			goto fail;
		if (!more(w, "an object"))
			goto fail;
		if (w->s[w->i] != ':') {
			fail(w, w->i + 1, "expected `:`");
			goto fail;
		}
		w->i++;
		v = field(w, f, update != NULL || (f->flags & FC_NULLABLE));
		if (w->bad)
			goto fail;
		if (v != NULL)
			json_object_set_new(obj, f->name, v);
		if (!more(w, "an object"))
			goto fail;
		if (w->s[w->i] == '}') {
			w->i++;
			break;
		}
		if (w->s[w->i] != ',') {
			fail(w, w->i + 1, "expected `,` or `}`");
			goto fail;
		}
		w->i++;
		skip_ws(w);
		if (w->i < w->n && w->s[w->i] == '}') {
			fail(w, w->i + 1, "trailing comma");
			goto fail;
		}
	}
done:
	for (size_t k = 0; k < sc->nfields && update == NULL; k++)
		if ((sc->fields[k].flags & FC_REQUIRED) && !(seen & (1u << k))) {
			fail(w, w->i, "missing field `%s`", sc->fields[k].name);
			goto fail;
		}
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

/* A Vec of structs of the table, the cursor on its '['. */
static json_t *
objects(struct walk *w, const struct fc_schema *sc)
{
	json_t *list = json_array(), *o;

	w->i++;
	if (!more(w, "a list"))
		goto fail;
	while (w->s[w->i] != ']') {
		if ((o = object(w, sc, NULL)) == NULL)
			goto fail;
		json_array_append_new(list, o);
		if (!more(w, "a list"))
			goto fail;
		if (w->s[w->i] == ']')
			break;
		if (w->s[w->i] != ',') {
			fail(w, w->i + 1, "expected `,` or `]`");
			goto fail;
		}
		w->i++;
		if (!more(w, "a value"))
			goto fail;
		if (w->s[w->i] == ']') {
			fail(w, w->i + 1, "trailing comma");
			goto fail;
		}
	}
	w->i++;
	return list;
fail:
	json_decref(list);
	return NULL;
}

json_t *
validate_body(const struct fc_body *b, const char *text, size_t len,
    char *fault, size_t faultsz)
{
	struct walk w = { .s = text, .n = len };
	json_t *v = b->schema ? object(&w, b->schema, b->update) : read_value(&w);

	if (v != NULL) {
		skip_ws(&w);
		if (w.i < w.n) {
			fail(&w, w.i + 1, "trailing characters");
			json_decref(v);
			v = NULL;
		}
	}
	if (v == NULL)
		snprintf(fault, faultsz, "An error occurred when deserializing the "
		    "json body of a request: %s.", w.err);
	return v;
}

const struct fc_body *
schema_body(const char *method, const char *path)
{
	for (size_t k = 0; k < fc_nbodies; k++)
		if (strcmp(fc_bodies[k].method, method) == 0 &&
		    strcmp(fc_bodies[k].path, path) == 0)
			return &fc_bodies[k];
	return NULL;
}

const struct fc_field *
schema_field(const char *def, const char *name)
{
	for (size_t k = 0; k < fc_ndefinitions; k++) {
		const struct fc_schema *sc = fc_definitions[k];
		if (strcmp(sc->name, def) != 0)
			continue;
		for (size_t j = 0; j < sc->nfields; j++)
			if (strcmp(sc->fields[j].name, name) == 0)
				return &sc->fields[j];
	}
	fprintf(stderr, "fake-firecracker: fc_schema.c has no %s.%s\n", def, name);
	abort();
}
