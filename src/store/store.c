/* store.c - the SQLite connection: open (with migrations), close, the
 * generation counter, and the statement helpers of store_int.h.  One
 * file per table holds its queries (vms.c, images.c, operations.c,
 * leases.c, stops.c); the schema is in schema.c. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int
store_fail(struct store *s, const char *what, struct bn_err *err)
{
	return bn_fail(err, BN_ESYS, 0, "store: %s: %s", what,
	    sqlite3_errmsg(s->db));
}

int
store_exec(struct store *s, const char *sql, struct bn_err *err)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		bn_fail(err, BN_ESYS, 0, "store: %s", msg ? msg : "exec failed");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
stmt_prepare(struct store *s, const char *sql, sqlite3_stmt **ret,
    const char *what, struct bn_err *err)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, ret, NULL) != SQLITE_OK) {
		*ret = NULL;
		return store_fail(s, what, err);
	}
	return 0;
}

int
stmt_row(struct store *s, sqlite3_stmt *st, const char *what,
    struct bn_err *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_fail(s, what, err);
}

int
stmt_done(struct store *s, sqlite3_stmt *st, const char *what,
    bool *constraint, struct bn_err *err)
{
	int rc = sqlite3_step(st);

	if (constraint != NULL)
		*constraint = rc == SQLITE_CONSTRAINT;
	if (rc != SQLITE_DONE)
		return store_fail(s, what, err);
	return sqlite3_changes(s->db);
}

int
stmt_rows(struct store *s, sqlite3_stmt *st, size_t size,
    void (*from_row)(sqlite3_stmt *, void *), const char *what, void **ret,
    int *ret_n, struct bn_err *err)
{
	char *rows = NULL;
	int n = 0, cap = 0, rc;

	while ((rc = stmt_row(s, st, what, err)) == 1) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			rows = realloc(rows, (size_t)cap * size);
			if (rows == NULL)
				abort();
		}
		from_row(st, rows + (size_t)n++ * size);
	}
	if (rc < 0) {
		free(rows);
		return -1;
	}
	*ret = rows;
	*ret_n = n;
	return 0;
}

int
store_query_int(struct store *s, const char *sql, const char *arg, int *ret,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (stmt_prepare(s, sql, &st, "prepare query", err) < 0)
		return -1;
	if (arg != NULL)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	int rc = stmt_row(s, st, "query", err);
	if (rc <= 0)
		return rc < 0 ? -1 : store_fail(s, "query: no row", err);
	*ret = sqlite3_column_int(st, 0);
	return 0;
}

void
col_text(sqlite3_stmt *st, int col, char *out, size_t outsz)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(out, outsz, "%s", t ? (const char *)t : "");
}

/* ---- the connection ---- */

static int
schema_version_locked(struct store *s)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		return -1;
	return sqlite3_column_int(st, 0);
}

int
store_schema_version(struct store *s)
{
	STORE_LOCK(s);
	return schema_version_locked(s);
}

/* Each pending migration in a transaction of its own, with the version. */
static int
migrate(struct store *s, struct bn_err *err)
{
	int version = schema_version_locked(s);
	char sql[64];

	if (version < 0)
		return store_fail(s, "read user_version", err);
	if (version > (int)store_nmigrations)
		return bn_fail(err, BN_EINTERNAL, 0, "store: schema version %d is "
		    "newer than this bangerd understands (%zu)", version,
		    store_nmigrations);
	for (int v = version; v < (int)store_nmigrations; v++) {
		if (store_exec(s, "BEGIN IMMEDIATE", err) < 0)
			return -1;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (store_exec(s, store_migrations[v], err) < 0 ||
		    store_exec(s, sql, err) < 0) {
			store_exec(s, "ROLLBACK", NULL);
			return bn_err_prefix(err, "migration %d", v + 1);
		}
		if (store_exec(s, "COMMIT", err) < 0)
			return -1;
	}
	return 0;
}

int
store_open(const char *path, struct store **ret, struct bn_err *err)
{
	struct store *s = xcalloc(1, sizeof(*s));
	int rc;

	pthread_mutex_init(&s->mu, NULL);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		bn_fail(err, BN_ESYS, 0, "store: open %s: %s", path,
		    s->db ? sqlite3_errmsg(s->db) : "out of memory");
		store_close(s);
		return -1;
	}
	sqlite3_busy_timeout(s->db, 5000);
	{
		STORE_LOCK(s);
		rc = store_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		    "PRAGMA foreign_keys=ON; PRAGMA cache_size=-512;", err);
		if (rc == 0)
			rc = migrate(s, err);
	}
	if (rc < 0) {
		store_close(s);
		return -1;
	}
	*ret = s;
	return 0;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

uint64_t
store_generation(struct store *s)
{
	STORE_LOCK(s);
	return s->generation;
}
