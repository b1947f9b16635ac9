/* mmds.c - the microVM metadata service: its data store and /mmds/config. */
#include "fake.h"

#include <string.h>

void
mmds_get(struct request *rq)
{
	json_t *empty = json_object();

	reply_json(rq, fc.mmds ? fc.mmds : empty);
	json_decref(empty);
}

void
mmds_put(struct request *rq)
{
	if (!json_is_object(rq->body)) {
		reply_fault(rq, "The MMDS data store only accepts JSON objects.");
		return;
	}
	json_decref(fc.mmds);
	fc.mmds = json_incref(rq->body);
	reply_ok(rq);
}

/* RFC 7396 JSON merge patch; consumes target. */
static json_t *
merge_patch(json_t *target, json_t *patch)
{
	const char *k;
	json_t *v, *cur;

	if (!json_is_object(patch)) {
		json_decref(target);
		return json_incref(patch);
	}
	if (!json_is_object(target)) {
		json_decref(target);
		target = json_object();
	}
	json_object_foreach(patch, k, v) {
		if (json_is_null(v)) {
			json_object_del(target, k);
			continue;
		}
		cur = json_object_get(target, k);
		json_object_set_new(target, k, merge_patch(json_incref(cur), v));
	}
	return target;
}

void
mmds_patch(struct request *rq)
{
	if (fc.mmds == NULL) {
		reply_fault(rq, "The MMDS data store is not initialized.");
		return;
	}
	fc.mmds = merge_patch(fc.mmds, rq->body);
	reply_ok(rq);
}

static bool
have_iface(const char *id)
{
	size_t k;
	json_t *n;

	json_array_foreach(fc.nets, k, n)
		if (strcmp(jstr(n, "iface_id"), id) == 0)
			return true;
	return false;
}

void
mmds_put_config(struct request *rq)
{
	json_t *ifaces = json_object_get(rq->body, "network_interfaces"), *id;
	const char *version = jstr(rq->body, "version");
	const char *addr = jstr(rq->body, "ipv4_address");
	size_t k;

	if (!boot_resource_or_reply(rq))
		return;
	json_array_foreach(ifaces, k, id)
		if (!have_iface(json_string_value(id))) {
			reply_fault(rq, "Mmds config error: The list of network "
			    "interface IDs provided contains at least one ID that "
			    "does not correspond to any existing network interface.");
			return;
		}
	if (json_array_size(ifaces) == 0) {
		reply_fault(rq, "Mmds config error: The list of network interface "
		    "IDs that allow forwarding MMDS requests is empty.");
		return;
	}
	json_decref(fc.mmds_cfg);
	fc.mmds_cfg = json_pack("{s:s,s:O,s:s,s:b}",
	    "version", version ? version : "V1",
	    "network_interfaces", ifaces,
	    "ipv4_address", addr ? addr : "169.254.169.254",
	    "imds_compat", jbool(rq->body, "imds_compat", false));
	reply_ok(rq);
}
