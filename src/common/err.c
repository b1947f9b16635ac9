/* err.c - the error type and the one table of error codes. */
#include "err.h"

#include <stdio.h>
#include <string.h>

static const struct bn_code_info code_table[] = {
	{ BN_OK, 200, "ok" },
	{ BN_EJSON, 400, "invalid_json" },
	{ BN_EINVAL, 400, "invalid_request" },
	{ BN_EUNKNOWN_FIELD, 400, "unknown_field" },
	{ BN_ENAME, 400, "invalid_name" },
	{ BN_EPATH, 400, "invalid_path" },
	{ BN_EFIELD, 400, "invalid_field" },
	{ BN_EIMAGE, 400, "invalid_image" },
	{ BN_EFORBIDDEN, 403, "forbidden" },
	{ BN_EROUTE, 404, "route_not_found" },
	{ BN_EVM_NOTFOUND, 404, "vm_not_found" },
	{ BN_EIMG_NOTFOUND, 404, "image_not_found" },
	{ BN_EOP_NOTFOUND, 404, "operation_not_found" },
	{ BN_ESNAP_NOTFOUND, 404, "snapshot_not_found" },
	{ BN_EGUEST_PATH, 404, "guest_path_not_found" },
	{ BN_EMETHOD, 405, "method_not_allowed" },
	{ BN_EVM_EXISTS, 409, "vm_exists" },
	{ BN_EVM_RUNNING, 409, "vm_running" },
	{ BN_ESTATE, 409, "invalid_state" },
	{ BN_EIMG_INUSE, 409, "image_in_use" },
	{ BN_EIMG_DEFAULT, 409, "image_default" },
	{ BN_EIMG_UNAVAIL, 409, "image_unavailable" },
	{ BN_EIMG_EXISTS, 409, "image_exists" },
	{ BN_ECANCELLED, 409, "cancelled" },
	{ BN_ESNAP_EXISTS, 409, "snapshot_exists" },
	{ BN_ESNAP_UNUSABLE, 409, "snapshot_unusable" },
	{ BN_EUNSUPPORTED, 409, "unsupported_by_vmm" },
	{ BN_EPORT_TAKEN, 409, "port_in_use" },
	{ BN_ETOOBIG, 413, "payload_too_large" },
	{ BN_EMEDIA, 415, "unsupported_media_type" },
	{ BN_ELIMIT, 429, "limit_reached" },
	{ BN_EINTERNAL, 500, "internal" },
	{ BN_ESYS, 500, "system" },
	{ BN_EVMM, 502, "vmm_error" },
	{ BN_EGUEST_PORT, 502, "guest_port_unreachable" },
	{ BN_EVMM_MISSING, 503, "vmm_unavailable" },
	{ BN_ETIMEOUT, 504, "timeout" },
	{ BN_ENOT_READY, 504, "not_ready" },
	{ BN_EBOOT_STALLED, 504, "boot_stalled" },
	{ BN_EHOST_DISK_FULL, 507, "host_disk_full" },
};

_Static_assert(sizeof(code_table) / sizeof(code_table[0]) == BN_CODE_MAX,
    "every bn_code needs a row in code_table");

const struct bn_code_info *
bn_code_info(enum bn_code code)
{
	if ((int)code < 0 || code >= BN_CODE_MAX)
		return &code_table[BN_EINTERNAL];
	return &code_table[code];
}

const struct bn_code_info *
bn_code_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(code_table) / sizeof(code_table[0]); i++)
		if (strcmp(code_table[i].name, name) == 0)
			return &code_table[i];
	return NULL;
}

const struct bn_code_info *
bn_code_table(int *ret_n)
{
	*ret_n = (int)(sizeof(code_table) / sizeof(code_table[0]));
	return code_table;
}

int
bn_vfail(struct bn_err *err, enum bn_code code, int sys_errno,
    const char *fmt, va_list ap)
{
	if (err == NULL)
		return -1;
	bn_err_clear(err);
	err->code = code;
	err->sys_errno = sys_errno;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (sys_errno != 0 && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s",
		    strerror(sys_errno));
	return -1;
}

int
bn_fail(struct bn_err *err, enum bn_code code, int sys_errno,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	bn_vfail(err, code, sys_errno, fmt, ap);
	va_end(ap);
	return -1;
}

int
bn_err_prefix(struct bn_err *err, const char *fmt, ...)
{
	char prefix[128], old[sizeof(err->msg)];
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	return -1;
}

int
bn_err_detail(struct bn_err *err, const char *key, const char *val)
{
	if (err == NULL)
		return -1;
	snprintf(err->detail_key, sizeof(err->detail_key), "%s", key ? key : "");
	snprintf(err->detail_val, sizeof(err->detail_val), "%s", val ? val : "");
	return -1;
}

int
bn_err_hint(struct bn_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
	return -1;
}

void
bn_err_clear(struct bn_err *err)
{
	if (err == NULL)
		return;
	memset(err, 0, sizeof(*err));
}
