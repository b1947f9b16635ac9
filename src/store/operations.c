/* operations.c - the operations table: every operation's last state, so
 * finished ones outlive the daemon and unfinished ones are failed at the
 * next start. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define OP_COLS "id, kind, target, state, stage, progress, error, result, " \
	"created_at, updated_at, finished_at, note"

static void
op_from_row(sqlite3_stmt *st, struct op_row *op)
{
	char state[16];
	const unsigned char *t;

	memset(op, 0, sizeof(*op));
	col_text(st, 0, op->id, sizeof(op->id));
	col_text(st, 1, op->kind, sizeof(op->kind));
	col_text(st, 2, op->target, sizeof(op->target));
	col_text(st, 3, state, sizeof(state));
	if (op_state_parse(state, &op->state) < 0)
		op->state = OP_FAILED;
	col_text(st, 4, op->stage, sizeof(op->stage));
	op->progress = sqlite3_column_int(st, 5);
	if ((t = sqlite3_column_text(st, 6)) != NULL)
		op->error_json = xstrdup((const char *)t);
	if ((t = sqlite3_column_text(st, 7)) != NULL)
		op->result_json = xstrdup((const char *)t);
	col_text(st, 8, op->created_at, sizeof(op->created_at));
	col_text(st, 9, op->updated_at, sizeof(op->updated_at));
	col_text(st, 10, op->finished_at, sizeof(op->finished_at));
	col_text(st, 11, op->note, sizeof(op->note));
}

int
store_op_put(struct store *s, const struct op_row *op, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (stmt_prepare(s, "INSERT INTO operations (" OP_COLS ") VALUES "
	    "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12) ON CONFLICT(id) DO UPDATE "
	    "SET state=?4, stage=?5, progress=?6, error=?7, result=?8, "
	    "updated_at=?10, finished_at=?11, note=?12", &st, "prepare put operation", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, op->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, op->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, op_state_name(op->state), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, op->stage, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, op->progress);
	if (op->error_json)
		sqlite3_bind_text(st, 7, op->error_json, -1, SQLITE_STATIC);
	if (op->result_json)
		sqlite3_bind_text(st, 8, op->result_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, op->created_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, op->updated_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, op->finished_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, op->note, -1, SQLITE_STATIC);
	return stmt_done(s, st, "put operation", NULL, err) < 0 ? -1 : 0;
}

int
store_op_get(struct store *s, const char *id, struct op_row *ret,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int rc;

	if (stmt_prepare(s, "SELECT " OP_COLS " FROM operations WHERE id = ?",
	    &st, "prepare get operation", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if ((rc = stmt_row(s, st, "get operation", err)) < 0)
		return -1;
	if (rc == 0) {
		bn_fail(err, BN_EOP_NOTFOUND, 0, "operation '%.40s' not found", id);
		return bn_err_detail(err, "id", id);
	}
	op_from_row(st, ret);
	return 0;
}

static void
op_row_of(sqlite3_stmt *st, void *op)
{
	op_from_row(st, op);
}

int
store_op_list(struct store *s, int limit, struct op_row **ret, int *ret_n,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (stmt_prepare(s, "SELECT " OP_COLS " FROM operations ORDER BY seq DESC "
	    "LIMIT ?", &st, "prepare list operations", err) < 0)
		return -1;
	sqlite3_bind_int(st, 1, limit > 0 ? limit : 0);
	return stmt_rows(s, st, sizeof(**ret), op_row_of, "list operations",
	    (void **)ret, ret_n, err);
}

int
store_op_fail_unfinished(struct store *s, const char *error_json, int *ret_n,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char now[32];
	int n;

	time_rfc3339(now);
	if (stmt_prepare(s, "UPDATE operations SET state='failed', error=?1, "
	    "updated_at=?2, finished_at=?2 WHERE state IN ('pending','running')",
	    &st, "prepare fail operations", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, error_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	if ((n = stmt_done(s, st, "fail operations", NULL, err)) < 0)
		return -1;
	if (ret_n)
		*ret_n = n;
	return 0;
}

int
store_op_prune(struct store *s, int keep, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (stmt_prepare(s, "DELETE FROM operations WHERE finished_at != '' AND "
	    "seq <= (SELECT max(seq) FROM operations) - ?", &st,
	    "prepare prune operations", err) < 0)
		return -1;
	sqlite3_bind_int(st, 1, keep);
	return stmt_done(s, st, "prune operations", NULL, err) < 0 ? -1 : 0;
}
