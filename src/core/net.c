/* net.c - host networking for VMs: bridge, TAP pool, leases, NAT, DNS.
 *
 * The bridge is made when the first VM starts (or at daemon start when it
 * can be); a VM takes a TAP from the pool (renamed to bt-<id>) at boot and
 * gives it back at stop; its lease lives as long as the VM.  NAT rules are
 * rebuilt from the store after every change, so `table inet banger` always
 * matches the running NAT VMs. */
#include "core/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "net/dns.h"
#include "net/link.h"
#include "net/nat.h"

#define POOL_PREFIX "tap-pool-"
#define VM_TAP_PREFIX "bt-"

int
net_parse_cidr(const char *cidr, struct in_addr *ret_addr, int *ret_prefix,
    struct bn_err *err)
{
	char buf[32], *slash;
	char *end;
	long p;

	snprintf(buf, sizeof(buf), "%s", cidr);
	if ((slash = strchr(buf, '/')) == NULL)
		goto bad;
	*slash = '\0';
	p = strtol(slash + 1, &end, 10);
	if (*end != '\0' || p < 8 || p > 30 || inet_pton(AF_INET, buf, ret_addr) != 1)
		goto bad;
	*ret_prefix = (int)p;
	uint32_t h = ntohl(ret_addr->s_addr), mask = ~0u << (32 - p);
	if ((h & ~mask) == 0 || (h & ~mask) == ~mask)
		goto bad;
	return 0;
bad:
	return bn_fail(err, BN_EINVAL, 0, "bridge_cidr '%s' must be the bridge's "
	    "address and prefix, e.g. 172.30.0.1/24 (prefix 8-30)", cidr);
}

bool
core_net_enabled(struct core *c)
{
	return strcmp(c->cfg.network, "on") == 0;
}

static void
vm_tap_name(const struct vm *vm, char out[NET_IFNAME_MAX])
{
	/* 3 + 12 = 15 characters: the most a link name can have. */
	snprintf(out, NET_IFNAME_MAX, VM_TAP_PREFIX "%.12s", vm->id);
}

/* ---- the TAP pool ---- */

static int
pool_count(char (**ret)[NET_IFNAME_MAX], int *ret_n)
{
	return net_links_with_prefix(POOL_PREFIX, ret, ret_n, NULL);
}

/* Top the pool up to tap_pool_size (called from the refill thread). */
static void
pool_fill(struct core *c)
{
	char (*names)[NET_IFNAME_MAX] = NULL;
	int n = 0;

	if (pool_count(&names, &n) < 0)
		return;
	for (int i = 0; n < c->cfg.tap_pool_size && i < 4 * c->cfg.tap_pool_size + 64;
	    i++) {
		char name[NET_IFNAME_MAX];
		bool used = false;
		snprintf(name, sizeof(name), POOL_PREFIX "%d", i);
		for (int j = 0; j < n && !used; j++)
			used = strcmp(names[j], name) == 0;
		if (used)
			continue;
		struct bn_err err;
		if (net_tap_create(name, c->cfg.bridge, geteuid(), &err) < 0) {
			log_warnx("tap pool: %s", err.msg);
			break;
		}
		/* Pooled TAPs wait down and outside the bridge. */
		net_link_rename_down(name, name, NULL);
		n++;
	}
	free(names);
}

static void *
pool_main(void *arg)
{
	struct core *c = arg;

	pthread_mutex_lock(&c->net_mu);
	while (!c->stopping) {
		if (c->pool_dirty && c->bridge_ready) {
			c->pool_dirty = false;
			pthread_mutex_unlock(&c->net_mu);
			pool_fill(c);
			pthread_mutex_lock(&c->net_mu);
			continue;
		}
		cond_wait_ms(&c->net_cond, &c->net_mu, 1000);
	}
	pthread_mutex_unlock(&c->net_mu);
	return NULL;
}

static void
pool_kick(struct core *c)
{
	pthread_mutex_lock(&c->net_mu);
	c->pool_dirty = true;
	pthread_cond_broadcast(&c->net_cond);
	pthread_mutex_unlock(&c->net_mu);
}

/* ---- DNS ---- */

static int
dns_lookup(void *ctx, const char *label, struct in_addr *ret)
{
	struct core *c = ctx;
	char ip[16];

	if (!name_valid(label) || !store_lease_lookup(c->store, label, ip))
		return 0;
	return inet_pton(AF_INET, ip, ret) == 1;
}

/* ---- bridge ---- */

/* Make the bridge, its address and the DNS responder exist.  Idempotent;
 * called at daemon start and before each boot. */
int
core_net_ensure(struct core *c, struct bn_err *err)
{
	struct in_addr addr;
	int prefix;
	char ip[16];

	if (!core_net_enabled(c))
		return 0;
	if (net_parse_cidr(c->cfg.bridge_cidr, &addr, &prefix, err) < 0)
		return -1;
	uint32_t mask = ~0u << (32 - prefix);
	struct in_addr net = { htonl(ntohl(addr.s_addr) & mask) };
	if (net_check_subnet(net, prefix, c->cfg.bridge, err) < 0)
		return -1;
	if (net_bridge_ensure(c->cfg.bridge, addr, prefix, err) < 0) {
		bn_err_prefix(err, "bridge %s", c->cfg.bridge);
		if (err->hint[0] == '\0')
			bn_err_hint(err, "bangerd needs CAP_NET_ADMIN for VM "
			    "networking; run 'banger doctor'");
		return -1;
	}
	pthread_mutex_lock(&c->net_mu);
	bool first = !c->bridge_ready;
	c->bridge_ready = true;
	c->pool_dirty = true;
	pthread_cond_broadcast(&c->net_cond);
	pthread_mutex_unlock(&c->net_mu);
	if (first && c->cfg.dns_port > 0 && c->dns == NULL) {
		struct bn_err derr;
		inet_ntop(AF_INET, &addr, ip, sizeof(ip));
		if (dns_server_start(ip, (unsigned)c->cfg.dns_port, dns_lookup, c,
		    &c->dns, &derr) < 0)
			log_warnx("dns: %s%s%s", derr.msg, derr.hint[0] ? " (" : "",
			    derr.hint[0] ? derr.hint : "");
		else
			log_info("dns: answering *.vm on %s:%u", ip,
			    dns_server_port(c->dns));
	}
	return 0;
}

/* ---- per VM ---- */

int
core_net_vm_up(struct core *c, struct vm *vm, struct vm_net *ret,
    struct bn_err *err)
{
	struct in_addr addr;
	int prefix;
	char tap[NET_IFNAME_MAX];

	memset(ret, 0, sizeof(*ret));
	if (!core_net_enabled(c))
		return 0;
	if (core_net_ensure(c, err) < 0 ||
	    net_parse_cidr(c->cfg.bridge_cidr, &addr, &prefix, err) < 0)
		return -1;
	uint32_t gw = ntohl(addr.s_addr), mask = ~0u << (32 - prefix);
	if (store_lease_get(c->store, vm->id, gw & mask, prefix, gw, ret->ip, err) < 0)
		return -1;
	snprintf(vm->ip, sizeof(vm->ip), "%s", ret->ip);
	inet_ntop(AF_INET, &addr, ret->gateway, sizeof(ret->gateway));
	struct in_addr m = { htonl(mask) };
	inet_ntop(AF_INET, &m, ret->netmask, sizeof(ret->netmask));
	struct in_addr g;
	inet_pton(AF_INET, ret->ip, &g);
	const unsigned char *b = (const unsigned char *)&g.s_addr;
	/* Locally administered, derived from the address: stable per lease. */
	snprintf(ret->mac, sizeof(ret->mac), "06:00:%02x:%02x:%02x:%02x", b[0], b[1],
	    b[2], b[3]);

	vm_tap_name(vm, tap);
	if (net_link_exists(tap)) {
		/* Left over from a crash: reuse it. */
		if (net_tap_take(tap, tap, c->cfg.bridge, err) < 0)
			return -1;
	} else {
		char (*pool)[NET_IFNAME_MAX] = NULL;
		int n = 0, taken = -1;
		pthread_mutex_lock(&c->net_mu);
		if (pool_count(&pool, &n) == 0) {
			for (int i = 0; i < n && taken < 0; i++)
				if (net_tap_take(pool[i], tap, c->cfg.bridge, NULL) == 0)
					taken = i;
		}
		pthread_mutex_unlock(&c->net_mu);
		free(pool);
		if (taken < 0 && net_tap_create(tap, c->cfg.bridge, geteuid(), err) < 0)
			return -1;
		pool_kick(c);
	}
	snprintf(vm->tap, sizeof(vm->tap), "%s", tap);
	snprintf(ret->tap, sizeof(ret->tap), "%s", tap);
	return 0;
}

void
core_net_vm_down(struct core *c, struct vm *vm)
{
	char (*pool)[NET_IFNAME_MAX] = NULL;
	int n = 0;

	if (vm->tap[0] == '\0')
		return;
	if (!net_ifname_valid(vm->tap)) {
		vm->tap[0] = '\0';
		return;
	}
	/* Back to the pool when it is short, else gone. */
	pthread_mutex_lock(&c->net_mu);
	bool pooled = false;
	if (pool_count(&pool, &n) == 0 && n < c->cfg.tap_pool_size) {
		for (int i = 0; i < 4 * c->cfg.tap_pool_size + 64 && !pooled; i++) {
			char name[NET_IFNAME_MAX];
			bool used = false;
			snprintf(name, sizeof(name), POOL_PREFIX "%d", i);
			for (int j = 0; j < n && !used; j++)
				used = strcmp(pool[j], name) == 0;
			if (!used)
				pooled = net_link_rename_down(vm->tap, name, NULL) == 0;
		}
	}
	pthread_mutex_unlock(&c->net_mu);
	free(pool);
	if (!pooled) {
		struct bn_err err;
		if (net_link_delete(vm->tap, &err) < 0)
			log_warnx("vm '%s': %s", vm->name, err.msg);
	}
	vm->tap[0] = '\0';
}

/* Rebuild `table inet banger` from the store: running NAT VMs with a
 * lease.  Serialized: concurrent rebuilds would race on the kernel. */
int
core_net_nat_sync(struct core *c, struct bn_err *err)
{
	struct vm *vms = NULL;
	struct nat_vm *nv;
	int n = 0, k = 0, rc;
	char subnet[32];
	struct in_addr addr;
	int prefix;

	if (!core_net_enabled(c))
		return 0;
	if (net_parse_cidr(c->cfg.bridge_cidr, &addr, &prefix, err) < 0)
		return -1;
	/* Read and apply under one lock: two syncs must not apply their
	 * snapshots in the opposite order of taking them. */
	pthread_mutex_lock(&c->nat_mu);
	if (store_vm_list(c->store, &vms, &n, err) < 0) {
		pthread_mutex_unlock(&c->nat_mu);
		return -1;
	}
	nv = xcalloc((size_t)n + 1, sizeof(*nv));
	for (int i = 0; i < n; i++) {
		if (!vms[i].nat || vms[i].ip[0] == '\0' ||
		    (vms[i].state != VM_RUNNING && vms[i].state != VM_STARTING &&
		    vms[i].state != VM_CREATING && vms[i].state != VM_PAUSED) ||
		    vms[i].pid <= 0)
			continue;
		snprintf(nv[k].name, sizeof(nv[k].name), "%s", vms[i].name);
		snprintf(nv[k].ip, sizeof(nv[k].ip), "%s", vms[i].ip);
		k++;
	}
	free(vms);
	struct in_addr netaddr = { htonl(ntohl(addr.s_addr) & (~0u << (32 - prefix))) };
	char nbuf[16];
	inet_ntop(AF_INET, &netaddr, nbuf, sizeof(nbuf));
	snprintf(subnet, sizeof(subnet), "%s/%d", nbuf, prefix);
	struct nat_config ncfg = { .bridge = c->cfg.bridge, .subnet = subnet };
	rc = nat_rebuild(&ncfg, nv, k, err);
	pthread_mutex_unlock(&c->nat_mu);
	free(nv);
	return rc;
}

/* Daemon start: bridge and pool when possible, stale TAPs removed, leases
 * matched to VMs, NAT rebuilt.  Failures are logged: doctor explains them,
 * and VM starts report them. */
void
core_net_start(struct core *c)
{
	struct bn_err err;
	char (*taps)[NET_IFNAME_MAX] = NULL;
	int n = 0, pruned = 0;

	pthread_mutex_init(&c->net_mu, NULL);
	pthread_mutex_init(&c->nat_mu, NULL);
	pthread_cond_init(&c->net_cond, NULL);
	if (store_lease_prune(c->store, &pruned, &err) == 0 && pruned > 0)
		log_info("reconcile: released %d orphaned leases", pruned);
	if (!core_net_enabled(c))
		return;
	if (core_net_ensure(c, &err) < 0)
		log_warnx("networking: %s", err.msg);
	/* TAPs named after VMs that are not running are leftovers. */
	if (net_links_with_prefix(VM_TAP_PREFIX, &taps, &n, NULL) == 0) {
		struct vm *vms = NULL;
		int nv = 0;
		store_vm_list(c->store, &vms, &nv, NULL);
		for (int i = 0; i < n; i++) {
			bool owned = false;
			for (int j = 0; j < nv && !owned; j++)
				owned = strcmp(vms[j].tap, taps[i]) == 0 &&
				    vms[j].state == VM_RUNNING;
			if (!owned && net_link_delete(taps[i], &err) == 0)
				log_info("reconcile: removed orphaned tap %s", taps[i]);
		}
		free(vms);
		free(taps);
	}
	if (core_net_nat_sync(c, &err) < 0)
		log_warnx("nat: %s", err.msg);
	if (pthread_create(&c->pool_thread, NULL, pool_main, c) != 0)
		log_warnx("tap pool: cannot start its thread");
	else
		c->pool_started = true;
}

void
core_net_stop(struct core *c)
{
	pthread_mutex_lock(&c->net_mu);
	pthread_cond_broadcast(&c->net_cond);
	pthread_mutex_unlock(&c->net_mu);
	if (c->pool_started)
		pthread_join(c->pool_thread, NULL);
	dns_server_stop(c->dns);
	c->dns = NULL;
	nat_close();
}
