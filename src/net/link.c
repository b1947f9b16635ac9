/* link.c - bridge, TAPs and route checks through libnl-route and TUN. */
#include "net/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/util.h"

bool
net_ifname_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n >= 1 && n < NET_IFNAME_MAX && label_chars_ok(name, n);
}

static int
bad_name(struct bn_err *err, const char *name)
{
	return bn_fail(err, BN_EINTERNAL, 0, "refusing interface name '%.32s'",
	    name ? name : "(null)");
}

static int
nl_fail(struct bn_err *err, int nlerr, const char *what, const char *name)
{
	int e = nlerr < 0 ? -nlerr : nlerr;

	return bn_fail(err, e == NLE_PERM ? BN_EFORBIDDEN : BN_ESYS, 0,
	    "%s %s: %s", what, name, nl_geterror(nlerr));
}

static struct nl_sock *
nl_open(struct bn_err *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	int rc;

	if (sk == NULL) {
		bn_fail(err, BN_ESYS, ENOMEM, "netlink socket");
		return NULL;
	}
	if ((rc = nl_connect(sk, NETLINK_ROUTE)) < 0) {
		nl_fail(err, rc, "netlink", "connect");
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

static void
nl_socket_freep(struct nl_sock **sk)
{
	if (*sk)
		nl_socket_free(*sk);
}

static int
link_get(struct nl_sock *sk, const char *name, struct rtnl_link **ret)
{
	return rtnl_link_get_kernel(sk, 0, name, ret);
}

/* Set flags up (or down) on an existing link. */
static int
link_set_up(struct nl_sock *sk, struct rtnl_link *link, bool up, int master,
    const char *rename)
{
	struct rtnl_link *change = rtnl_link_alloc();
	int rc;

	if (up)
		rtnl_link_set_flags(change, IFF_UP);
	else
		rtnl_link_unset_flags(change, IFF_UP);
	if (master > 0)
		rtnl_link_set_master(change, master);
	if (rename)
		rtnl_link_set_name(change, rename);
	rc = rtnl_link_change(sk, link, change, 0);
	rtnl_link_put(change);
	return rc;
}

static bool
has_addr(struct nl_sock *sk, int ifindex, struct in_addr addr, int prefix)
{
	struct nl_cache *cache = NULL;
	bool found = false;

	if (rtnl_addr_alloc_cache(sk, &cache) < 0)
		return false;
	for (struct nl_object *o = nl_cache_get_first(cache); o;
	    o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *local = rtnl_addr_get_local(a);
		if (rtnl_addr_get_ifindex(a) != ifindex ||
		    rtnl_addr_get_family(a) != AF_INET || local == NULL)
			continue;
		if (rtnl_addr_get_prefixlen(a) == prefix &&
		    memcmp(nl_addr_get_binary_addr(local), &addr, 4) == 0)
			found = true;
	}
	nl_cache_free(cache);
	return found;
}

int
net_bridge_ensure(const char *bridge, struct in_addr addr, int prefix,
    struct bn_err *err)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
	struct rtnl_link *link = NULL;
	int rc;

	if (!net_ifname_valid(bridge))
		return bad_name(err, bridge);
	if ((sk = nl_open(err)) == NULL)
		return -1;
	if (link_get(sk, bridge, &link) < 0) {
		struct rtnl_link *br = rtnl_link_bridge_alloc();
		rtnl_link_set_name(br, bridge);
		rc = rtnl_link_add(sk, br, NLM_F_CREATE | NLM_F_EXCL);
		rtnl_link_put(br);
		if (rc < 0 && rc != -NLE_EXIST)
			return nl_fail(err, rc, "create bridge", bridge);
		if ((rc = link_get(sk, bridge, &link)) < 0)
			return nl_fail(err, rc, "find bridge", bridge);
	}
	if (!rtnl_link_is_bridge(link)) {
		rtnl_link_put(link);
		bn_fail(err, BN_ESYS, 0, "%s exists and is not a bridge", bridge);
		return bn_err_hint(err, "set \"bridge\" in config.json to another name");
	}
	int ifindex = rtnl_link_get_ifindex(link);
	rc = link_set_up(sk, link, true, 0, NULL);
	rtnl_link_put(link);
	if (rc < 0)
		return nl_fail(err, rc, "bring up", bridge);
	if (has_addr(sk, ifindex, addr, prefix))
		return 0;
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local = nl_addr_build(AF_INET, &addr, 4);
	nl_addr_set_prefixlen(local, prefix);
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_local(a, local);
	rc = rtnl_addr_add(sk, a, 0);
	nl_addr_put(local);
	rtnl_addr_put(a);
	if (rc < 0 && rc != -NLE_EXIST)
		return nl_fail(err, rc, "address on", bridge);
	return 0;
}

static int
enslave_up(struct nl_sock *sk, const char *name, const char *bridge,
    const char *rename, struct bn_err *err)
{
	struct rtnl_link *link = NULL, *br = NULL;
	int rc;

	if ((rc = link_get(sk, bridge, &br)) < 0)
		return nl_fail(err, rc, "find bridge", bridge);
	int master = rtnl_link_get_ifindex(br);
	rtnl_link_put(br);
	if ((rc = link_get(sk, name, &link)) < 0)
		return nl_fail(err, rc, "find", name);
	if (rename) {
		/* A link must be down to be renamed. */
		rc = link_set_up(sk, link, false, 0, rename);
		rtnl_link_put(link);
		if (rc < 0)
			return nl_fail(err, rc, "rename", name);
		if ((rc = link_get(sk, rename, &link)) < 0)
			return nl_fail(err, rc, "find", rename);
	}
	rc = link_set_up(sk, link, true, master, NULL);
	rtnl_link_put(link);
	if (rc < 0)
		return nl_fail(err, rc, "enslave", rename ? rename : name);
	return 0;
}

int
net_tap_create(const char *name, const char *bridge, uid_t uid,
    struct bn_err *err)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
	struct ifreq ifr;
	int fd;

	if (!net_ifname_valid(name))
		return bad_name(err, name);
	if (!net_ifname_valid(bridge))
		return bad_name(err, bridge);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		bn_fail(err, errno == EACCES || errno == EPERM ? BN_EFORBIDDEN : BN_ESYS,
		    errno, "open /dev/net/tun");
		return bn_err_hint(err, "run 'banger doctor'");
	}
	memset(&ifr, 0, sizeof(ifr));
	/* Single queue, no packet info: what Firecracker opens. */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0 ||
	    ioctl(fd, TUNSETPERSIST, 1) < 0) {
		bn_fail(err, errno == EPERM ? BN_EFORBIDDEN : BN_ESYS, errno,
		    "create tap %s", name);
		close(fd);
		return -1;
	}
	close(fd);
	if ((sk = nl_open(err)) == NULL || enslave_up(sk, name, bridge, NULL, err) < 0) {
		net_link_delete(name, NULL);
		return -1;
	}
	return 0;
}

int
net_tap_take(const char *from, const char *to, const char *bridge,
    struct bn_err *err)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;

	if (!net_ifname_valid(from))
		return bad_name(err, from);
	if (!net_ifname_valid(to))
		return bad_name(err, to);
	if (!net_ifname_valid(bridge))
		return bad_name(err, bridge);
	if ((sk = nl_open(err)) == NULL)
		return -1;
	return enslave_up(sk, from, bridge, strcmp(from, to) ? to : NULL, err);
}

int
net_link_rename_down(const char *from, const char *to, struct bn_err *err)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
	struct rtnl_link *link = NULL;
	int rc;

	if (!net_ifname_valid(from))
		return bad_name(err, from);
	if (!net_ifname_valid(to))
		return bad_name(err, to);
	if ((sk = nl_open(err)) == NULL)
		return -1;
	if ((rc = link_get(sk, from, &link)) < 0)
		return nl_fail(err, rc, "find", from);
	/* Down and out of the bridge: a pooled TAP carries no traffic. */
	struct rtnl_link *change = rtnl_link_alloc();
	rtnl_link_unset_flags(change, IFF_UP);
	rtnl_link_set_master(change, 0);
	rtnl_link_set_name(change, to);
	rc = rtnl_link_change(sk, link, change, 0);
	rtnl_link_put(change);
	rtnl_link_put(link);
	if (rc < 0)
		return nl_fail(err, rc, "rename", from);
	return 0;
}

int
net_link_delete(const char *name, struct bn_err *err)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
	struct rtnl_link *link = NULL;
	int rc;

	if (!net_ifname_valid(name))
		return bad_name(err, name);
	if ((sk = nl_open(err)) == NULL)
		return -1;
	if (link_get(sk, name, &link) < 0)
		return 0;
	rc = rtnl_link_delete(sk, link);
	rtnl_link_put(link);
	if (rc < 0 && rc != -NLE_OBJ_NOTFOUND && rc != -NLE_NODEV)
		return nl_fail(err, rc, "delete", name);
	return 0;
}

bool
net_link_exists(const char *name)
{
	struct nl_sock *sk;
	struct rtnl_link *link = NULL;
	bool ok;

	if (!net_ifname_valid(name) || (sk = nl_open(NULL)) == NULL)
		return false;
	ok = link_get(sk, name, &link) == 0;
	if (link)
		rtnl_link_put(link);
	nl_socket_free(sk);
	return ok;
}

int
net_links_with_prefix(const char *prefix, char (**ret)[NET_IFNAME_MAX],
    int *ret_n, struct bn_err *err)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
	struct nl_cache *cache = NULL;
	char (*names)[NET_IFNAME_MAX] = NULL;
	int n = 0, rc;

	if ((sk = nl_open(err)) == NULL)
		return -1;
	if ((rc = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache)) < 0)
		return nl_fail(err, rc, "list", "links");
	names = xcalloc((size_t)nl_cache_nitems(cache) + 1, NET_IFNAME_MAX);
	for (struct nl_object *o = nl_cache_get_first(cache); o;
	    o = nl_cache_get_next(o)) {
		const char *nm = rtnl_link_get_name((struct rtnl_link *)o);
		if (nm && strncmp(nm, prefix, strlen(prefix)) == 0)
			snprintf(names[n++], NET_IFNAME_MAX, "%s", nm);
	}
	nl_cache_free(cache);
	*ret = names;
	*ret_n = n;
	return 0;
}

static bool
prefix_overlap(uint32_t a, int alen, uint32_t b, int blen)
{
	int len = alen < blen ? alen : blen;
	uint32_t mask = len == 0 ? 0 : htonl(~0u << (32 - len));

	return (a & mask) == (b & mask);
}

int
net_check_subnet(struct in_addr net, int prefix, const char *bridge,
    struct bn_err *err)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
	struct nl_cache *routes = NULL, *links = NULL;
	int rc, brindex = 0;

	if ((sk = nl_open(err)) == NULL)
		return -1;
	if ((rc = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links)) < 0)
		return nl_fail(err, rc, "list", "links");
	brindex = rtnl_link_name2i(links, bridge);
	if ((rc = rtnl_route_alloc_cache(sk, AF_INET, 0, &routes)) < 0) {
		nl_cache_free(links);
		return nl_fail(err, rc, "list", "routes");
	}
	rc = 0;
	for (struct nl_object *o = nl_cache_get_first(routes); o && rc == 0;
	    o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		int plen = dst ? nl_addr_get_prefixlen(dst) : 0;
		if (rtnl_route_get_table(r) != RT_TABLE_MAIN || dst == NULL || plen == 0 ||
		    rtnl_route_get_type(r) != RTN_UNICAST)
			continue;
		struct rtnl_nexthop *nh = rtnl_route_nexthop_n(r, 0);
		int oif = nh ? rtnl_route_nh_get_ifindex(nh) : 0;
		if (brindex > 0 && oif == brindex)
			continue;
		uint32_t d;
		memcpy(&d, nl_addr_get_binary_addr(dst), 4);
		if (prefix_overlap(d, plen, net.s_addr, prefix)) {
			char ours[32], theirs[64], ifname[IFNAMSIZ] = "?";
			inet_ntop(AF_INET, &net, ours, sizeof(ours));
			nl_addr2str(dst, theirs, sizeof(theirs));
			rtnl_link_i2name(links, oif, ifname, sizeof(ifname));
			bn_fail(err, BN_ESTATE, 0, "subnet %s/%d overlaps the host route "
			    "%s on %s", ours, prefix, theirs, ifname);
			bn_err_hint(err, "set \"bridge_cidr\" in config.json to an "
			    "unused private range");
			rc = -1;
		}
	}
	nl_cache_free(routes);
	nl_cache_free(links);
	return rc;
}
