/* store_int.h - shared by the store's files only: the connection, the
 * schema, and one way to run a statement.
 *
 * Every public store function takes the store's lock for its whole body
 * with STORE_LOCK (released when the function returns, whatever way) and
 * runs its statements through stmt_prepare and stmt_row / stmt_done, with
 * _cleanup_stmt_ finalizing them.  Errors come back as BN_ESYS naming the
 * statement ("store: get vm: ..."). */
#ifndef BANGER_STORE_INT_H
#define BANGER_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>

#include "store/store.h"

struct store {
	sqlite3 *db;
	pthread_mutex_t mu;
	uint64_t generation;   /* bumped by every committed VM or image change */
};

/* schema.c: migration i takes the schema from version i to i + 1. */
extern const char *const store_migrations[];
extern const size_t store_nmigrations;

static inline struct store *
store_lock_(struct store *s)
{
	pthread_mutex_lock(&s->mu);
	return s;
}

static inline void
store_unlock_(struct store **s)
{
	pthread_mutex_unlock(&(*s)->mu);
}

/* Hold s's lock until the end of the enclosing scope. */
#define STORE_LOCK(s) \
	__attribute__((cleanup(store_unlock_))) struct store *store_held_ \
	    __attribute__((unused)) = store_lock_(s)

static inline void
stmt_free_(sqlite3_stmt **st)
{
	sqlite3_finalize(*st);     /* NULL is fine */
}

/* A statement finalized at the end of the enclosing scope. */
#define _cleanup_stmt_ __attribute__((cleanup(stmt_free_)))

/* All with the lock held.  -1 with err: BN_ESYS "store: what: why". */
int store_fail(struct store *s, const char *what, struct bn_err *err);
int store_exec(struct store *s, const char *sql, struct bn_err *err);
int stmt_prepare(struct store *s, const char *sql, sqlite3_stmt **ret,
    const char *what, struct bn_err *err);
/* Step once: 1 with a row, 0 at the end, -1 on an error. */
int stmt_row(struct store *s, sqlite3_stmt *st, const char *what,
    struct bn_err *err);
/* Step a statement that changes rows to its end: the rows changed, or -1
 * (SQLITE_CONSTRAINT is BN_ECONFLICT-free: *constraint set, when given). */
int stmt_done(struct store *s, sqlite3_stmt *st, const char *what,
    bool *constraint, struct bn_err *err);
/* Every row of a prepared statement, each turned by from_row into an
 * element of size bytes of one malloc'd array (*ret, *ret_n). */
int stmt_rows(struct store *s, sqlite3_stmt *st, size_t size,
    void (*from_row)(sqlite3_stmt *, void *), const char *what, void **ret,
    int *ret_n, struct bn_err *err);
/* One integer (count(*) and the like) of sql with an optional text arg;
 * takes the lock itself. */
int store_query_int(struct store *s, const char *sql, const char *arg,
    int *ret, struct bn_err *err);
/* Column col as text into out ("" for NULL). */
void col_text(sqlite3_stmt *st, int col, char *out, size_t outsz);

#endif
