/* snapshots.c - the snapshots table: one row per snapshot of a VM, by
 * the VM's id and the snapshot's name; the files are in the VM's
 * directory (core/snapshots.c). */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define SNAP_COLS "vm_id, name, state, vmm, vmm_version, vcpus, memory_mib, " \
	"bytes, created_at"

static int
snap_not_found(struct bn_err *err, const char *name)
{
	return bn_fail(err, BN_ESNAP_NOTFOUND, 0, "snapshot '%s' not found",
	    name);
}

static void
snap_from_row(sqlite3_stmt *st, void *out)
{
	struct snapshot *sn = out;
	char state[16];

	memset(sn, 0, sizeof(*sn));
	col_text(st, 0, sn->vm_id, sizeof(sn->vm_id));
	col_text(st, 1, sn->name, sizeof(sn->name));
	col_text(st, 2, state, sizeof(state));
	sn->state = strcmp(state, "ready") == 0 ? SNAP_READY : SNAP_CREATING;
	col_text(st, 3, sn->vmm, sizeof(sn->vmm));
	col_text(st, 4, sn->vmm_version, sizeof(sn->vmm_version));
	sn->vcpus = sqlite3_column_int(st, 5);
	sn->memory_mib = sqlite3_column_int(st, 6);
	sn->bytes = sqlite3_column_int64(st, 7);
	col_text(st, 8, sn->created_at, sizeof(sn->created_at));
}

static void
snap_bind(sqlite3_stmt *st, const struct snapshot *sn)
{
	sqlite3_bind_text(st, 1, sn->vm_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sn->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, snap_state_name(sn->state), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, sn->vmm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, sn->vmm_version, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, sn->vcpus);
	sqlite3_bind_int(st, 7, sn->memory_mib);
	sqlite3_bind_int64(st, 8, sn->bytes);
	sqlite3_bind_text(st, 9, sn->created_at, -1, SQLITE_STATIC);
}

int
store_snap_insert(struct store *s, const struct snapshot *sn,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	bool taken = false;

	if (stmt_prepare(s, "INSERT INTO snapshots (" SNAP_COLS ") VALUES "
	    "(?,?,?,?,?,?,?,?,?)", &st, "prepare insert snapshot", err) < 0)
		return -1;
	snap_bind(st, sn);
	if (stmt_done(s, st, "insert snapshot", &taken, err) < 0)
		return taken ? bn_fail(err, BN_ESNAP_EXISTS, 0, "snapshot '%s' "
		    "already exists", sn->name) : -1;
	return 0;
}

int
store_snap_update(struct store *s, const struct snapshot *sn,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int n;

	if (stmt_prepare(s, "UPDATE snapshots SET state = ?3, vmm = ?4, "
	    "vmm_version = ?5, vcpus = ?6, memory_mib = ?7, bytes = ?8, "
	    "created_at = ?9 WHERE vm_id = ?1 AND name = ?2", &st,
	    "prepare update snapshot", err) < 0)
		return -1;
	snap_bind(st, sn);
	if ((n = stmt_done(s, st, "update snapshot", NULL, err)) <= 0)
		return n < 0 ? -1 : snap_not_found(err, sn->name);
	return 0;
}

int
store_snap_get(struct store *s, const char *vm_id, const char *name,
    struct snapshot *ret, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int rc;

	if (stmt_prepare(s, "SELECT " SNAP_COLS " FROM snapshots WHERE "
	    "vm_id = ? AND name = ?", &st, "prepare get snapshot", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, vm_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if ((rc = stmt_row(s, st, "get snapshot", err)) < 0)
		return -1;
	if (rc == 0)
		return snap_not_found(err, name);
	snap_from_row(st, ret);
	return 0;
}

int
store_snap_list(struct store *s, const char *vm_id, struct snapshot **ret,
    int *ret_n, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (stmt_prepare(s, "SELECT " SNAP_COLS " FROM snapshots WHERE "
	    "vm_id = ? ORDER BY created_at, name", &st, "prepare list snapshots",
	    err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, vm_id, -1, SQLITE_STATIC);
	return stmt_rows(s, st, sizeof(**ret), snap_from_row, "list snapshots",
	    (void **)ret, ret_n, err);
}

int
store_snap_delete(struct store *s, const char *vm_id, const char *name,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int n;

	if (stmt_prepare(s, "DELETE FROM snapshots WHERE vm_id = ? AND "
	    "name = ?", &st, "prepare delete snapshot", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, vm_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if ((n = stmt_done(s, st, "delete snapshot", NULL, err)) <= 0)
		return n < 0 ? -1 : snap_not_found(err, name);
	return 0;
}
