/* mounts.c - "mounts" in a VM's spec as the API takes it: shared folders
 * [{"host": "/abs/dir", "guest": "/mnt/src", "readonly": true}].  The
 * syntax is checked here; core checks the host directories where they
 * touch the host, and whether the VM's VMM can share them. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/wire.h"

static int
bad(struct bn_err *err, enum bn_code code, const char *fmt, size_t i,
    const char *what)
{
	bn_fail(err, code, 0, fmt, i, what);
	return bn_err_detail(err, "field", WIRE_MOUNTS);
}

int
mounts_field(json_t *j, struct vm_mount *ret, int *ret_n, struct bn_err *err)
{
	json_t *a = json_object_get(j, WIRE_MOUNTS), *o, *v;
	const char *k, *why;
	char buf[320];
	size_t i;
	int at;

	*ret_n = -1;
	if (a == NULL)
		return 0;
	if (json_array_size(a) > VM_MOUNTS_MAX) {
		bn_fail(err, BN_EINVAL, 0, "%zu shared folders; at most %d",
		    json_array_size(a), VM_MOUNTS_MAX);
		return bn_err_detail(err, "field", WIRE_MOUNTS);
	}
	json_array_foreach(a, i, o) {
		struct vm_mount *m = &ret[i];
		if (!json_is_object(o))
			return bad(err, BN_EFIELD, "mounts[%zu] must be an object "
			    "%s", i, "{\"host\", \"guest\", \"readonly\"}");
		json_object_foreach(o, k, v)
			if (strcmp(k, "host") != 0 && strcmp(k, "guest") != 0 &&
			    strcmp(k, "readonly") != 0)
				return bad(err, BN_EUNKNOWN_FIELD, "mounts[%zu]: "
				    "unknown field '%s'", i, k);
		const char *h = json_string_value(json_object_get(o, "host"));
		const char *g = json_string_value(json_object_get(o, "guest"));
		v = json_object_get(o, "readonly");
		if (h == NULL || g == NULL)
			return bad(err, BN_EINVAL, "mounts[%zu] needs %s", i,
			    "\"host\" and \"guest\" paths (strings)");
		if (v != NULL && !json_is_null(v) && !json_is_boolean(v))
			return bad(err, BN_EFIELD, "mounts[%zu]: %s", i,
			    "readonly must be true or false");
		memset(m, 0, sizeof(*m));
		if ((why = mount_host_why(h)) != NULL ||
		    (why = mount_guest_why(g)) != NULL)
			return bad(err, BN_EINVAL, "mounts[%zu]: %s", i, why);
		snprintf(m->host, sizeof(m->host), "%s", h);
		snprintf(m->guest, sizeof(m->guest), "%s", g);
		m->readonly = json_is_true(v);
	}
	if (mounts_check(ret, (int)json_array_size(a), &at, buf, sizeof(buf),
	    &why) < 0)
		return bad(err, BN_EINVAL, "mounts[%zu]: %s", (size_t)at, why);
	*ret_n = (int)json_array_size(a);
	return 0;
}
