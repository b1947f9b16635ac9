/* err.h - one error type for all of banger, with no allocation.
 *
 * A failing function returns -1 (or NULL) and fills the caller's
 * struct bn_err; a succeeding one leaves it alone.  The code is a domain
 * code that the API maps to an HTTP status and error code in exactly one
 * table (api/reply.c via bn_code_info()).
 */
#ifndef BANGER_ERR_H
#define BANGER_ERR_H

#include <stdarg.h>

enum bn_code {
	BN_OK = 0,
	BN_EJSON,           /* invalid_json 400 */
	BN_EINVAL,          /* invalid_request 400 */
	BN_EUNKNOWN_FIELD,  /* unknown_field 400 */
	BN_ENAME,           /* invalid_name 400 */
	BN_EPATH,           /* invalid_path 400 */
	BN_EFIELD,          /* invalid_field 400: a field of the wrong type or null */
	BN_EIMAGE,          /* invalid_image 400: not a usable ext4 image file */
	BN_EFORBIDDEN,      /* forbidden 403 */
	BN_EROUTE,          /* route_not_found 404 */
	BN_EVM_NOTFOUND,    /* vm_not_found 404 */
	BN_EIMG_NOTFOUND,   /* image_not_found 404 */
	BN_EOP_NOTFOUND,    /* operation_not_found 404 */
	BN_ESNAP_NOTFOUND,  /* snapshot_not_found 404 */
	BN_EGUEST_PATH,     /* guest_path_not_found 404: no such file in the VM */
	BN_EMETHOD,         /* method_not_allowed 405 */
	BN_EVM_EXISTS,      /* vm_exists 409 */
	BN_EVM_RUNNING,     /* vm_running 409 */
	BN_ESTATE,          /* invalid_state 409 */
	BN_EIMG_INUSE,      /* image_in_use 409 */
	BN_EIMG_DEFAULT,    /* image_default 409 */
	BN_EIMG_UNAVAIL,    /* image_unavailable 409 */
	BN_EIMG_EXISTS,     /* image_exists 409 */
	BN_ECANCELLED,      /* cancelled 409: an operation stopped on request */
	BN_ESNAP_EXISTS,    /* snapshot_exists 409 */
	BN_ESNAP_UNUSABLE,  /* snapshot_unusable 409: bad checksum, other host */
	BN_EUNSUPPORTED,    /* unsupported_by_vmm 409: this VM's VMM cannot */
	BN_EPORT_TAKEN,     /* port_in_use 409: a host port already taken */
	BN_ETOOBIG,         /* payload_too_large 413 */
	BN_EMEDIA,          /* unsupported_media_type 415 */
	BN_ELIMIT,          /* limit_reached 429 */
	BN_EINTERNAL,       /* internal 500 */
	BN_ESYS,            /* system 500 */
	BN_EVMM,            /* vmm_error 502 */
	BN_EGUEST_PORT,     /* guest_port_unreachable 502: nothing listens */
	BN_EVMM_MISSING,    /* vmm_unavailable 503 */
	BN_ETIMEOUT,        /* timeout 504 */
	BN_ENOT_READY,      /* not_ready 504: a guest readiness check never passed */
	BN_EBOOT_STALLED,   /* boot_stalled 504: no console output, no agent */
	BN_EHOST_DISK_FULL, /* host_disk_full 507: below the disk reserve */
	BN_CODE_MAX
};

struct bn_err {
	enum bn_code code;
	int sys_errno;
	char msg[256];
	/* Optional machine-readable context for the error body's "details"
	 * (a short key and value, e.g. field=vcpus), and a hint for the user. */
	char detail_key[32];
	char detail_val[128];
	char hint[160];
};

struct bn_code_info {
	enum bn_code code;
	int http_status;
	const char *name;
};

/* Fill *err and return -1.  When sys_errno != 0, ": strerror" is appended. */
int bn_fail(struct bn_err *err, enum bn_code code, int sys_errno,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int bn_vfail(struct bn_err *err, enum bn_code code, int sys_errno,
    const char *fmt, va_list ap);
/* Prefix the message with context: "ctx: old message".  Returns -1. */
int bn_err_prefix(struct bn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Set detail key/value and hint; both may be NULL.  Returns -1. */
int bn_err_detail(struct bn_err *err, const char *key, const char *val);
int bn_err_hint(struct bn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void bn_err_clear(struct bn_err *err);

/* The single table of domain code -> HTTP status and wire code. */
const struct bn_code_info *bn_code_info(enum bn_code code);
/* Reverse lookup by wire name; NULL when unknown. */
const struct bn_code_info *bn_code_by_name(const char *name);
const struct bn_code_info *bn_code_table(int *ret_n);

#endif
