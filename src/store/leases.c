/* leases.c - the leases table: one IPv4 address per VM in the bridge's
 * subnet, kept across stop and start, released with the VM. */
#include "store/store_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* The smallest free host address of net/prefix into ret_ip (lock held,
 * in a transaction). */
static int
lease_pick(struct store *s, uint32_t net, int prefix, uint32_t gateway,
    char ret_ip[16], struct bn_err *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	uint32_t size = prefix >= 31 ? 0 : (1u << (32 - prefix));
	_cleanup_free_ unsigned char *used = NULL;
	int rc;

	if (size < 4)
		return bn_fail(err, BN_EINVAL, 0, "subnet /%d has no room for vms",
		    prefix);
	/* Not the network, the broadcast or the gateway (the bridge). */
	used = xcalloc(size, 1);
	if (stmt_prepare(s, "SELECT ip FROM leases", &st, "prepare leases",
	    err) < 0)
		return -1;
	while ((rc = stmt_row(s, st, "leases", err)) == 1) {
		struct in_addr a;
		const unsigned char *t = sqlite3_column_text(st, 0);
		if (t != NULL && inet_pton(AF_INET, (const char *)t, &a) == 1) {
			uint32_t h = ntohl(a.s_addr);
			if ((h & ~(size - 1)) == net)
				used[h - net] = 1;
		}
	}
	if (rc < 0)
		return -1;
	used[0] = used[size - 1] = 1;
	if (gateway >= net && gateway - net < size)
		used[gateway - net] = 1;
	uint32_t off;
	for (off = 1; off < size && used[off]; off++)
		;
	if (off == size) {
		bn_fail(err, BN_ELIMIT, 0, "no free address left in the vm subnet");
		return bn_err_hint(err, "delete unused vms or use a larger "
		    "\"bridge_cidr\"");
	}
	struct in_addr a = { htonl(net + off) };
	inet_ntop(AF_INET, &a, ret_ip, 16);
	return 0;
}

/* 1 with the VM's lease in ret_ip, 0 when it has none (lock held). */
static int
lease_of(struct store *s, const char *vm_id, char ret_ip[16],
    struct bn_err *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int rc;

	if (stmt_prepare(s, "SELECT ip FROM leases WHERE vm_id = ?", &st,
	    "prepare lease", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, vm_id, -1, SQLITE_STATIC);
	if ((rc = stmt_row(s, st, "lease", err)) == 1)
		col_text(st, 0, ret_ip, 16);
	return rc;
}

static int
lease_get_locked(struct store *s, const char *vm_id, uint32_t net, int prefix,
    uint32_t gateway, char ret_ip[16], struct bn_err *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int rc = lease_of(s, vm_id, ret_ip, err);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (lease_pick(s, net, prefix, gateway, ret_ip, err) < 0 ||
	    stmt_prepare(s, "INSERT INTO leases (vm_id, ip) VALUES (?, ?)", &st,
	    "prepare insert lease", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, vm_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ret_ip, -1, SQLITE_STATIC);
	if (stmt_done(s, st, "insert lease", NULL, err) < 0)
		return -1;
	s->generation++;
	return 0;
}

int
store_lease_get(struct store *s, const char *vm_id, uint32_t net, int prefix,
    uint32_t gateway, char ret_ip[16], struct bn_err *err)
{
	STORE_LOCK(s);

	if (store_exec(s, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (lease_get_locked(s, vm_id, net, prefix, gateway, ret_ip, err) < 0 ||
	    store_exec(s, "COMMIT", err) < 0) {
		store_exec(s, "ROLLBACK", NULL);
		return -1;
	}
	return 0;
}

int
store_lease_prune(struct store *s, int *ret_n, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int n;

	if (stmt_prepare(s, "DELETE FROM leases WHERE vm_id NOT IN (SELECT id "
	    "FROM vms)", &st, "prepare prune leases", err) < 0)
		return -1;
	if ((n = stmt_done(s, st, "prune leases", NULL, err)) < 0)
		return -1;
	if (ret_n)
		*ret_n = n;
	return 0;
}

int
store_lease_lookup(struct store *s, const char *name, char ret_ip[16])
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct bn_err ignored;

	if (stmt_prepare(s, "SELECT l.ip FROM leases l JOIN vms v ON v.id = "
	    "l.vm_id WHERE v.name = ?", &st, "prepare lease lookup",
	    &ignored) < 0)
		return 0;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (stmt_row(s, st, "lease lookup", &ignored) != 1)
		return 0;
	col_text(st, 0, ret_ip, 16);
	return 1;
}
