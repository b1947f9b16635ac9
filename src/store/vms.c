/* vms.c - the vms table: one row per VM (its lease lives in leases). */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define VM_COLS "id, name, image, vcpus, memory_mib, disk_gib, nat, state, vmm, " \
	"pid, cid, health, last_error, created_at, started_at, stopped_at, " \
	"updated_at, tap, accel, accel_reason, stop_result, stop_method, stop_ms, " \
	"paused_reason, ports, limits, mounts"
/* Read-only: the lease is stored in its own table. */
#define VM_SELECT "SELECT " VM_COLS ", coalesce((SELECT ip FROM leases WHERE " \
	"leases.vm_id = vms.id), '') FROM vms"

/* The ports column: port_format()s joined by commas.  An entry that does
 * not parse (never written by us) is skipped. */
static void
ports_encode(const struct vm *vm, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < vm->nports && off < len; i++) {
		char one[96];
		port_format(&vm->ports[i], one, sizeof(one));
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "",
		    one);
	}
}

static void
ports_decode(const char *s, struct vm *vm)
{
	const char *why;

	vm->nports = 0;
	while (s != NULL && *s != '\0' && vm->nports < VM_PORTS_MAX) {
		size_t n = strcspn(s, ",");
		if (port_parse(s, n, &vm->ports[vm->nports], &why) == 0)
			vm->nports++;
		s += n + (s[n] == ',');
	}
}

static void
vm_from_row(sqlite3_stmt *st, struct vm *vm)
{
	char state[16];

	memset(vm, 0, sizeof(*vm));
	col_text(st, 0, vm->id, sizeof(vm->id));
	col_text(st, 1, vm->name, sizeof(vm->name));
	col_text(st, 2, vm->image, sizeof(vm->image));
	vm->vcpus = sqlite3_column_int(st, 3);
	vm->memory_mib = sqlite3_column_int(st, 4);
	vm->disk_gib = sqlite3_column_int(st, 5);
	vm->nat = sqlite3_column_int(st, 6) != 0;
	col_text(st, 7, state, sizeof(state));
	if (vm_state_parse(state, &vm->state) < 0)
		vm->state = VM_ERROR;
	col_text(st, 8, vm->vmm, sizeof(vm->vmm));
	vm->pid = (pid_t)sqlite3_column_int(st, 9);
	vm->cid = (unsigned)sqlite3_column_int(st, 10);
	col_text(st, 11, vm->health, sizeof(vm->health));
	col_text(st, 12, vm->last_error, sizeof(vm->last_error));
	col_text(st, 13, vm->created_at, sizeof(vm->created_at));
	col_text(st, 14, vm->started_at, sizeof(vm->started_at));
	col_text(st, 15, vm->stopped_at, sizeof(vm->stopped_at));
	col_text(st, 16, vm->updated_at, sizeof(vm->updated_at));
	col_text(st, 17, vm->tap, sizeof(vm->tap));
	col_text(st, 18, vm->accel, sizeof(vm->accel));
	col_text(st, 19, vm->accel_reason, sizeof(vm->accel_reason));
	col_text(st, 20, vm->stop_result, sizeof(vm->stop_result));
	col_text(st, 21, vm->stop_method, sizeof(vm->stop_method));
	vm->stop_ms = sqlite3_column_int(st, 22);
	col_text(st, 23, vm->paused_reason, sizeof(vm->paused_reason));
	ports_decode((const char *)sqlite3_column_text(st, 24), vm);
	vm_limits_parse((const char *)sqlite3_column_text(st, 25), &vm->limits);
	vm->nmounts = mounts_decode((const char *)sqlite3_column_text(st, 26),
	    vm->mounts, VM_MOUNTS_MAX);
	col_text(st, 27, vm->ip, sizeof(vm->ip));
}

static void
vm_bind(sqlite3_stmt *st, const struct vm *vm)
{
	char ports[VM_PORTS_MAX * 96], limits[256];

	sqlite3_bind_text(st, 1, vm->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, vm->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, vm->image, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, vm->vcpus);
	sqlite3_bind_int(st, 5, vm->memory_mib);
	sqlite3_bind_int(st, 6, vm->disk_gib);
	sqlite3_bind_int(st, 7, vm->nat);
	sqlite3_bind_text(st, 8, vm_state_name(vm->state), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, vm->vmm, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 10, (int)vm->pid);
	sqlite3_bind_int(st, 11, (int)vm->cid);
	sqlite3_bind_text(st, 12, vm->health[0] ? vm->health : "unknown", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, vm->last_error, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 14, vm->created_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 15, vm->started_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 16, vm->stopped_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 17, vm->updated_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 18, vm->tap, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 19, vm->accel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 20, vm->accel_reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 21, vm->stop_result, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 22, vm->stop_method, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 23, vm->stop_ms);
	sqlite3_bind_text(st, 24, vm->paused_reason, -1, SQLITE_STATIC);
	ports_encode(vm, ports, sizeof(ports));
	sqlite3_bind_text(st, 25, ports, -1, SQLITE_TRANSIENT);
	vm_limits_format(&vm->limits, limits, sizeof(limits));
	sqlite3_bind_text(st, 26, limits, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 27, mounts_encode(vm->mounts, vm->nmounts), -1,
	    free);
}

static int
vm_not_found(struct bn_err *err, const char *name)
{
	bn_fail(err, BN_EVM_NOTFOUND, 0, "vm '%s' not found", name);
	bn_err_detail(err, "name", name);
	return bn_err_hint(err, "run 'banger vm list' to see existing vms");
}

int
store_vm_insert(struct store *s, const struct vm *vm, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	bool taken;

	if (stmt_prepare(s, "INSERT INTO vms (" VM_COLS ") VALUES "
	    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &st,
	    "prepare insert vm", err) < 0)
		return -1;
	vm_bind(st, vm);
	if (stmt_done(s, st, "insert vm", &taken, err) < 0) {
		if (!taken)
			return -1;
		bn_fail(err, BN_EVM_EXISTS, 0, "vm '%s' already exists", vm->name);
		return bn_err_hint(err, "pick another name or delete the existing "
		    "vm");
	}
	s->generation++;
	return 0;
}

int
store_vm_get(struct store *s, const char *name, struct vm *ret,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int rc;

	if (stmt_prepare(s, VM_SELECT " WHERE name = ?", &st, "prepare get vm",
	    err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = stmt_row(s, st, "get vm", err)) <= 0)
		return rc < 0 ? -1 : vm_not_found(err, name);
	vm_from_row(st, ret);
	return 0;
}

int
store_vm_update(struct store *s, const struct vm *vm, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int n;

	if (stmt_prepare(s, "UPDATE vms SET id=?1, name=?2, image=?3, "
	    "vcpus=?4, memory_mib=?5, disk_gib=?6, nat=?7, state=?8, vmm=?9, "
	    "pid=?10, cid=?11, health=?12, last_error=?13, created_at=?14, "
	    "started_at=?15, stopped_at=?16, updated_at=?17, tap=?18, accel=?19, "
	    "accel_reason=?20, stop_result=?21, stop_method=?22, stop_ms=?23, "
	    "paused_reason=?24, ports=?25, limits=?26, mounts=?27 WHERE id=?1", &st, "prepare update vm", err) < 0)
		return -1;
	vm_bind(st, vm);
	if ((n = stmt_done(s, st, "update vm", NULL, err)) <= 0)
		return n < 0 ? -1 : vm_not_found(err, vm->name);
	s->generation++;
	return 0;
}

/* The VM and its lease go together, in one transaction. */
static int
vm_delete_locked(struct store *s, const char *name, struct bn_err *err)
{
	_cleanup_stmt_ sqlite3_stmt *lease = NULL;
	_cleanup_stmt_ sqlite3_stmt *snaps = NULL;
	_cleanup_stmt_ sqlite3_stmt *vm = NULL;
	int n;

	/* Its lease and its snapshots' rows go with it (the files go with
	 * its directory). */
	if (stmt_prepare(s, "DELETE FROM leases WHERE vm_id = (SELECT id FROM "
	    "vms WHERE name = ?)", &lease, "prepare delete lease", err) < 0 ||
	    stmt_prepare(s, "DELETE FROM snapshots WHERE vm_id = (SELECT id "
	    "FROM vms WHERE name = ?)", &snaps, "prepare delete snapshots",
	    err) < 0)
		return -1;
	sqlite3_bind_text(lease, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(snaps, 1, name, -1, SQLITE_STATIC);
	if (stmt_done(s, lease, "delete lease", NULL, err) < 0 ||
	    stmt_done(s, snaps, "delete snapshots", NULL, err) < 0 ||
	    stmt_prepare(s, "DELETE FROM vms WHERE name = ?", &vm,
	    "prepare delete vm", err) < 0)
		return -1;
	sqlite3_bind_text(vm, 1, name, -1, SQLITE_STATIC);
	if ((n = stmt_done(s, vm, "delete vm", NULL, err)) <= 0)
		return n < 0 ? -1 : vm_not_found(err, name);
	return 0;
}

int
store_vm_delete(struct store *s, const char *name, struct bn_err *err)
{
	STORE_LOCK(s);

	if (store_exec(s, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (vm_delete_locked(s, name, err) < 0 ||
	    store_exec(s, "COMMIT", err) < 0) {
		store_exec(s, "ROLLBACK", NULL);
		return -1;
	}
	s->generation++;
	return 0;
}

static void
vm_row(sqlite3_stmt *st, void *vm)
{
	vm_from_row(st, vm);
}

int
store_vm_list(struct store *s, struct vm **ret, int *ret_n, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (stmt_prepare(s, VM_SELECT " ORDER BY name", &st, "prepare list vms",
	    err) < 0)
		return -1;
	return stmt_rows(s, st, sizeof(**ret), vm_row, "list vms", (void **)ret,
	    ret_n, err);
}

int
store_vm_count(struct store *s, int *ret, struct bn_err *err)
{
	return store_query_int(s, "SELECT count(*) FROM vms", NULL, ret, err);
}

int
store_vm_count_image(struct store *s, const char *image, int *ret,
    struct bn_err *err)
{
	return store_query_int(s, "SELECT count(*) FROM vms WHERE image = ?",
	    image, ret, err);
}

int
store_vm_free_cid(struct store *s, unsigned *ret, struct bn_err *err)
{
	int cid;

	/* The smallest CID >= 3 with no VM on it: either 3 or one past a
	 * used CID whose successor is free. */
	if (store_query_int(s, "SELECT min(c) FROM (SELECT 3 AS c WHERE NOT "
	    "EXISTS (SELECT 1 FROM vms WHERE cid = 3) UNION ALL SELECT cid + 1 "
	    "FROM vms WHERE cid + 1 NOT IN (SELECT cid FROM vms))", NULL, &cid,
	    err) < 0)
		return -1;
	*ret = (unsigned)cid;
	return 0;
}
