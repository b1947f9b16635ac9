/* warm.c - the warm table: at most one warm snapshot per image, its
 * shape and the identity of the image files it was taken of; the files
 * are under <state>/warm/IMAGE (core/warm.c). */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define WARM_COLS "image, state, vm, vmm, vmm_version, vcpus, memory_mib, " \
	"disk_gib, bytes, image_id, created_at"

static int
warm_not_found(struct bn_err *err, const char *image)
{
	return bn_fail(err, BN_ESNAP_NOTFOUND, 0, "image '%s' has no warm "
	    "snapshot", image);
}

static void
warm_from_row(sqlite3_stmt *st, void *out)
{
	struct warm *w = out;
	char state[16];

	memset(w, 0, sizeof(*w));
	col_text(st, 0, w->image, sizeof(w->image));
	col_text(st, 1, state, sizeof(state));
	w->state = strcmp(state, "ready") == 0 ? SNAP_READY : SNAP_CREATING;
	col_text(st, 2, w->vm, sizeof(w->vm));
	col_text(st, 3, w->vmm, sizeof(w->vmm));
	col_text(st, 4, w->vmm_version, sizeof(w->vmm_version));
	w->vcpus = sqlite3_column_int(st, 5);
	w->memory_mib = sqlite3_column_int(st, 6);
	w->disk_gib = sqlite3_column_int(st, 7);
	w->bytes = sqlite3_column_int64(st, 8);
	col_text(st, 9, w->image_id, sizeof(w->image_id));
	col_text(st, 10, w->created_at, sizeof(w->created_at));
}

int
store_warm_put(struct store *s, const struct warm *w, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (stmt_prepare(s, "INSERT OR REPLACE INTO warm (" WARM_COLS ") VALUES "
	    "(?,?,?,?,?,?,?,?,?,?,?)", &st, "prepare put warm", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, w->image, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, snap_state_name(w->state), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, w->vm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, w->vmm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, w->vmm_version, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, w->vcpus);
	sqlite3_bind_int(st, 7, w->memory_mib);
	sqlite3_bind_int(st, 8, w->disk_gib);
	sqlite3_bind_int64(st, 9, w->bytes);
	sqlite3_bind_text(st, 10, w->image_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, w->created_at, -1, SQLITE_STATIC);
	return stmt_done(s, st, "put warm", NULL, err) < 0 ? -1 : 0;
}

int
store_warm_get(struct store *s, const char *image, struct warm *ret,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int rc;

	if (stmt_prepare(s, "SELECT " WARM_COLS " FROM warm WHERE image = ?",
	    &st, "prepare get warm", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, image, -1, SQLITE_STATIC);
	if ((rc = stmt_row(s, st, "get warm", err)) < 0)
		return -1;
	if (rc == 0)
		return warm_not_found(err, image);
	warm_from_row(st, ret);
	return 0;
}

int
store_warm_list(struct store *s, struct warm **ret, int *ret_n,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (stmt_prepare(s, "SELECT " WARM_COLS " FROM warm ORDER BY image",
	    &st, "prepare list warm", err) < 0)
		return -1;
	return stmt_rows(s, st, sizeof(**ret), warm_from_row, "list warm",
	    (void **)ret, ret_n, err);
}

int
store_warm_delete(struct store *s, const char *image, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int n;

	if (stmt_prepare(s, "DELETE FROM warm WHERE image = ?", &st,
	    "prepare delete warm", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, image, -1, SQLITE_STATIC);
	if ((n = stmt_done(s, st, "delete warm", NULL, err)) <= 0)
		return n < 0 ? -1 : warm_not_found(err, image);
	return 0;
}
