/* limits.c - "limits" in a VM's spec as the API takes it and shows it;
 * core checks the values against the VM (its vCPUs and memory). */
#include "api/api.h"

#include <math.h>
#include <string.h>

#include "common/json.h"
#include "common/wire.h"

static const char *const int_keys[] = { "memory_max_mib", "disk_bytes_per_s",
	"disk_ops_per_s", "net_bytes_per_s" };

int
limits_field(json_t *j, struct vm_limits *ret, bool *present,
    struct bn_err *err)
{
	json_t *o = json_object_get(j, WIRE_LIMITS), *v;
	const char *k;
	long long n[4];

	memset(ret, 0, sizeof(*ret));
	*present = o != NULL;
	if (o == NULL || json_is_null(o))
		return 0;
	if (!json_is_object(o)) {
		bn_fail(err, BN_EFIELD, 0, "limits must be an object");
		return bn_err_detail(err, "field", "limits");
	}
	json_object_foreach(o, k, v) {
		bool known = strcmp(k, "cpus") == 0;
		for (size_t i = 0; i < 4 && !known; i++)
			known = strcmp(k, int_keys[i]) == 0;
		if (!known) {
			bn_fail(err, BN_EUNKNOWN_FIELD, 0, "limits: unknown field "
			    "'%s'", k);
			return bn_err_detail(err, "field", "limits");
		}
	}
	v = json_object_get(o, "cpus");
	if (v != NULL && !json_is_null(v)) {
		double c = json_number_value(v);
		if (!json_is_number(v) || !isfinite(c) || c < 0) {
			bn_fail(err, BN_EINVAL, 0, "limits.cpus must be a number of "
			    "CPUs (0.01 or more; 0 for no limit)");
			return bn_err_detail(err, "field", "limits");
		}
		ret->cpus = c;
	}
	for (size_t i = 0; i < 4; i++) {
		if (json_get_int(o, int_keys[i], 0, (long long)1 << 50, 0, &n[i],
		    err) < 0)
			return bn_err_prefix(err, "limits");
	}
	ret->memory_max_mib = n[0] > 1 << 30 ? 1 << 30 : (int)n[0];
	ret->disk_bytes_per_s = n[1];
	ret->disk_ops_per_s = n[2];
	ret->net_bytes_per_s = n[3];
	return 0;
}
