/* link.h - host links for VM networking: the bridge, TAP devices, routes.
 *
 * Everything goes through netlink (libnl-route) and /dev/net/tun; nothing
 * shells out to ip(8).  Every function re-validates the names it is given,
 * even though core/ already did: this is the layer that touches the host. */
#ifndef BANGER_NET_LINK_H
#define BANGER_NET_LINK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"

#define NET_IFNAME_MAX 16

/* An interface name we create or manage: [a-z0-9-], 1-15 chars. */
bool net_ifname_valid(const char *name);

/* Create the bridge if it is missing, bring it up and give it addr/prefix
 * (e.g. 172.30.0.1/24) unless it already has it. */
int net_bridge_ensure(const char *bridge, struct in_addr addr, int prefix,
    struct bn_err *err);
/* A persistent TAP owned by uid (so an unprivileged VMM can open it),
 * enslaved to bridge and up. */
int net_tap_create(const char *name, const char *bridge, uid_t uid,
    struct bn_err *err);
/* Rename a (down) link, then enslave it to bridge and bring it up. */
int net_tap_take(const char *from, const char *to, const char *bridge,
    struct bn_err *err);
/* Take a link down and rename it (returning a TAP to the pool). */
int net_link_rename_down(const char *from, const char *to, struct bn_err *err);
/* Delete a link; a missing one is not an error. */
int net_link_delete(const char *name, struct bn_err *err);
bool net_link_exists(const char *name);
/* Names of links starting with prefix, as a malloc'd array of
 * NET_IFNAME_MAX strings. */
int net_links_with_prefix(const char *prefix, char (**ret)[NET_IFNAME_MAX],
    int *ret_n, struct bn_err *err);
/* Refuse a subnet that overlaps a host route not on our bridge: the error
 * names both. */
int net_check_subnet(struct in_addr net, int prefix, const char *bridge,
    struct bn_err *err);

#endif
