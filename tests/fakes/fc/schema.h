/* schema.h - the request bodies of Firecracker's API, as data.
 *
 * fc_schema.c is generated from Firecracker's swagger by gen_schema.py
 * (`make fake-schema`; `make check-fake-schema` says when it is stale).
 * It holds one fc_body per route of the test double that takes a body, and
 * the definitions those bodies use, with the Rust names serde prints.
 * validate.c reads request bodies against it.
 */
#ifndef FC_SCHEMA_H
#define FC_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

enum fc_kind {
	FC_STRING,	/* String */
	FC_PATH,	/* PathBuf: a string, named "path string" in errors */
	FC_MAC,		/* MacAddr: "06:00:ac:10:00:02" */
	FC_IPV4,	/* Ipv4Addr: dotted quad */
	FC_ENUM,	/* a serde enum: exactly one of values */
	FC_FROMSTR,	/* parsed by FromStr: one of values, in any case */
	FC_BOOL,
	FC_UINT,	/* an unsigned Rust integer, at most rust_max */
	FC_OBJECT,	/* a nested struct: object */
	FC_OBJECTS,	/* Vec<struct>: an array of object */
	FC_STRINGS,	/* Vec<String> */
	FC_STRING_MAP,	/* HashMap<String, String> */
};

#define FC_REQUIRED	0x1u	/* absent: "missing field" */
#define FC_NULLABLE	0x2u	/* Option<T>: null is as good as absent */
#define FC_HAS_MIN	0x4u	/* the spec gives a minimum */
#define FC_HAS_MAX	0x8u	/* the spec gives a maximum */

struct fc_schema;

struct fc_field {
	const char *name;
	enum fc_kind kind;
	unsigned flags;
	const char *rust;		/* "u8", "CacheType", "LevelFilter" */
	uint64_t rust_max;		/* FC_UINT */
	int64_t min, max;		/* FC_HAS_MIN, FC_HAS_MAX */
	const char *const *values;	/* FC_ENUM, FC_FROMSTR: NULL-terminated */
	const struct fc_schema *object;	/* FC_OBJECT, FC_OBJECTS */
};

struct fc_schema {
	const char *name;		/* the swagger's definition */
	const char *rust;		/* the struct serde names */
	const struct fc_field *fields;	/* in Rust declaration order */
	size_t nfields;			/* at most 32 */
};

struct fc_body {
	const char *method;
	const char *path;		/* as in the spec: "/drives/{drive_id}" */
	const struct fc_schema *schema;	/* NULL: any JSON value */
	const char *id_field;		/* the path parameter the body repeats */
	const char *update;		/* a PATCH read into this all-Option
					   struct: nothing required, all nullable */
};

extern const char fc_spec_version[];
extern const struct fc_body fc_bodies[];
extern const size_t fc_nbodies;
extern const struct fc_schema *const fc_definitions[];
extern const size_t fc_ndefinitions;

#endif
