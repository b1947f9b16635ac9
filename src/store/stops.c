/* stops.c - the stops table: how each image's last stops ended (doctor
 * warns about images whose guests never stop cleanly). */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

static int
stop_record_locked(struct store *s, const struct vm *vm, struct bn_err *err)
{
	_cleanup_stmt_ sqlite3_stmt *ins = NULL;
	_cleanup_stmt_ sqlite3_stmt *prune = NULL;
	char now[32];

	time_rfc3339(now);
	if (stmt_prepare(s, "INSERT INTO stops (image, vm, result, method, ms, "
	    "at) VALUES (?,?,?,?,?,?)", &ins, "prepare insert stop", err) < 0)
		return -1;
	sqlite3_bind_text(ins, 1, vm->image, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 2, vm->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 3, vm->stop_result, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 4, vm->stop_method, -1, SQLITE_STATIC);
	sqlite3_bind_int(ins, 5, vm->stop_ms);
	sqlite3_bind_text(ins, 6, now, -1, SQLITE_STATIC);
	if (stmt_done(s, ins, "insert stop", NULL, err) < 0 ||
	    stmt_prepare(s, "DELETE FROM stops WHERE image = ?1 AND seq NOT IN "
	    "(SELECT seq FROM stops WHERE image = ?1 ORDER BY seq DESC LIMIT ?2)",
	    &prune, "prepare prune stops", err) < 0)
		return -1;
	sqlite3_bind_text(prune, 1, vm->image, -1, SQLITE_STATIC);
	sqlite3_bind_int(prune, 2, STORE_STOPS_KEPT);
	return stmt_done(s, prune, "prune stops", NULL, err) < 0 ? -1 : 0;
}

int
store_stop_record(struct store *s, const struct vm *vm, struct bn_err *err)
{
	STORE_LOCK(s);

	if (store_exec(s, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (stop_record_locked(s, vm, err) < 0 ||
	    store_exec(s, "COMMIT", err) < 0) {
		store_exec(s, "ROLLBACK", NULL);
		return -1;
	}
	return 0;
}

static void
stops_row(sqlite3_stmt *st, void *out)
{
	struct image_stops *r = out;

	memset(r, 0, sizeof(*r));
	col_text(st, 0, r->image, sizeof(r->image));
	r->stops = sqlite3_column_int(st, 1);
	r->forced = sqlite3_column_int(st, 2);
}

int
store_stop_summary(struct store *s, int last, struct image_stops **ret,
    int *ret_n, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (stmt_prepare(s, "SELECT image, count(*), sum(result = 'forced') FROM "
	    "(SELECT image, result, row_number() OVER (PARTITION BY image ORDER "
	    "BY seq DESC) AS rn FROM stops) WHERE rn <= ? GROUP BY image ORDER "
	    "BY image", &st, "prepare list stops", err) < 0)
		return -1;
	sqlite3_bind_int(st, 1, last > 0 ? last : 1);
	return stmt_rows(s, st, sizeof(**ret), stops_row, "list stops",
	    (void **)ret, ret_n, err);
}
