/* nat.h - opt-in NAT for VMs: banger's nftables table, `table inet banger`.
 *
 * All of banger's packet rules live in that one table and nowhere else.  It
 * is never edited in place: nat_rebuild() replaces the whole table from the
 * list of NAT VMs in a single nftables transaction, so the kernel sees
 * either the old rules or the new ones, and a failed rebuild leaves the old
 * table as it was.  Other tables (the distribution's firewall, Docker,
 * libvirt) are never read, flushed or changed.
 *
 * Rule shape (one named set, so the rule count does not grow with VMs):
 *
 *   table inet banger {
 *       comment "managed by bangerd"
 *       set nat_vms { type ipv4_addr; elements = { <ip> comment "<name>", ... } }
 *       chain postrouting {   # type nat hook postrouting priority srcnat
 *           ip saddr @nat_vms oifname != "<bridge>" masquerade
 *       }
 *       chain forward {       # type filter hook forward priority filter;
 *                             # policy accept: we add accepts, never drops
 *           iifname "<bridge>" ip saddr @nat_vms accept
 *           oifname "<bridge>" ip daddr @nat_vms ct state established,related accept
 *       }
 *   }
 *
 * Everything goes through libnftables; nothing shells out to nft(8).  Calls
 * into libnftables are serialized inside nat.c and share one context per
 * process and network namespace (see nat.c for why).
 */
#ifndef BANGER_NET_NAT_H
#define BANGER_NET_NAT_H

#include <stdbool.h>

#include "common/err.h"

#define NAT_TABLE_FAMILY "inet"
#define NAT_TABLE_NAME "banger"

/* A VM with nat: true and a lease. */
struct nat_vm {
	char name[64];
	char ip[16];
};

/* No rule names the uplink: a NAT VM's traffic is masqueraded whatever
 * interface it leaves by (except the bridge itself), so a VPN coming up,
 * a second NIC or a changed default route keeps working with no rebuild,
 * and there is no route to follow. */
struct nat_config {
	const char *bridge;   /* "banger0" */
	const char *subnet;   /* "172.30.0.0/24": every VM ip must lie in it */
};

/* Pure: the nftables script that atomically replaces `table inet banger`
 * with rules for exactly these VMs, in one transaction ("add table" +
 * "delete table" + the full table).  With n == 0 the script only removes
 * the table.  Every input is validated again here (names are DNS labels,
 * ips are dotted-quad IPv4 inside the subnet and unique, interface names are
 * 1-15 of [a-zA-Z0-9_.-]) and anything off fails with BN_EINTERNAL, so no
 * string can inject nft syntax.  *ret is malloc'd. */
int nat_ruleset(const struct nat_config *cfg, const struct nat_vm *vms, int n,
    char **ret, struct bn_err *err);

/* Run a script with libnftables as one transaction.  dry_run still sends it
 * to the kernel for validation (so it needs CAP_NET_ADMIN) but aborts
 * instead of committing: nothing changes.  On failure the error carries
 * nft's first error line (BN_ESYS) and, when recognisable, a hint. */
int nat_apply(const char *script, bool dry_run, struct bn_err *err);

/* nat_ruleset + nat_apply.  When n > 0, also switches on
 * net.ipv4.ip_forward if it is off (after the rules are in place); never
 * switches it off. */
int nat_rebuild(const struct nat_config *cfg, const struct nat_vm *vms, int n,
    struct bn_err *err);

/* Remove table inet banger if present; idempotent. */
int nat_remove(struct bn_err *err);

/* The current table as nft text (for doctor and tests); *ret = NULL when
 * the table does not exist.  *ret is malloc'd. */
int nat_list(char **ret, struct bn_err *err);

/* Whether libnftables can talk to the kernel here and the kernel takes our
 * rule shape (nat chain, masquerade, set, ct): a dry-run transaction of a
 * representative table, which changes nothing.  0 ok, -1 with the reason and
 * a fix hint. */
int nat_probe(struct bn_err *err);

/* Release the libnftables context nat.c keeps between calls (optional, at
 * shutdown; the next call makes a new one). */
void nat_close(void);

#endif
