/* net.c - PUT and PATCH /network-interfaces/{iface_id}: virtio-net on a TAP. */
#include "fake.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

/* Another interface already holds the MAC or the TAP: the fault, or 0. */
static int
net_conflict(struct request *rq, ssize_t idx)
{
	const char *mac = jstr(rq->body, "guest_mac");
	const char *tap = jstr(rq->body, "host_dev_name");
	const char *other_mac;
	size_t k;
	json_t *n;

	json_array_foreach(fc.nets, k, n) {
		if ((ssize_t)k == idx)
			continue;
		other_mac = jstr(n, "guest_mac");
		if (mac != NULL && other_mac != NULL && strcasecmp(other_mac, mac) == 0) {
			reply_fault(rq, "Network config error: The MAC address is "
			    "already in use: %s", mac);
			return -1;
		}
		if (strcmp(jstr(n, "host_dev_name"), tap) == 0) {
			reply_fault(rq, "Network config error: Could not create the "
			    "network device: Open tap device failed: Error while "
			    "creating ifreq structure: Resource busy (os error 16). "
			    "Invalid TUN/TAP Backend provided by %s. Check our "
			    "documentation on setting up the network devices.", tap);
			return -1;
		}
	}
	return 0;
}

static json_t *
net_build(struct request *rq, ssize_t idx)
{
	const struct fc_field *range = schema_field("NetworkInterface", "mtu");
	json_t *cfg = rq->body, *mtu = json_object_get(cfg, "mtu"), *dev;

	if (mtu != NULL && json_integer_value(mtu) < range->min) {
		reply_fault(rq, "Network config error: Could not create the network "
		    "device: MTU must be in the range %" PRId64 "..=%" PRId64,
		    range->min, range->max);
		return NULL;
	}
	if (net_conflict(rq, idx) < 0)
		return NULL;
	dev = json_pack("{s:O,s:O,s:O?}", "iface_id", json_object_get(cfg, "iface_id"),
	    "host_dev_name", json_object_get(cfg, "host_dev_name"),
	    "guest_mac", json_object_get(cfg, "guest_mac"));
	if (mtu != NULL)
		json_object_set(dev, "mtu", mtu);
	json_object_set_new(dev, "rx_rate_limiter",
	    json_incref(json_object_get(cfg, "rx_rate_limiter")) ?: json_null());
	json_object_set_new(dev, "tx_rate_limiter",
	    json_incref(json_object_get(cfg, "tx_rate_limiter")) ?: json_null());
	return dev;
}

const struct keyed net_keyed = {
	.items = &fc.nets,
	.patch_missing = "Network config error: Error during interface update "
	    "(patch): Invalid network interface ID - not found.",
	.build = net_build,
};
