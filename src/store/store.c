/* store.c - SQLite persistence for VMs, images and operations. */
#include "store.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct store {
	sqlite3 *db;
	pthread_mutex_t mu;
	uint64_t generation;
};

/* Each entry moves the schema from version i to i+1; never edit one that
 * has shipped, append a new one. */
static const char *const migrations[] = {
	/* 1: initial schema */
	"CREATE TABLE images ("
	"  name TEXT PRIMARY KEY,"
	"  source TEXT NOT NULL,"
	"  managed INTEGER NOT NULL,"
	"  rootfs TEXT NOT NULL,"
	"  work_seed TEXT NOT NULL DEFAULT '',"
	"  created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL);"
	"CREATE TABLE vms ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  image TEXT NOT NULL,"
	"  vcpus INTEGER NOT NULL,"
	"  memory_mib INTEGER NOT NULL,"
	"  disk_gib INTEGER NOT NULL,"
	"  nat INTEGER NOT NULL,"
	"  state TEXT NOT NULL,"
	"  vmm TEXT NOT NULL DEFAULT '',"
	"  pid INTEGER NOT NULL DEFAULT 0,"
	"  cid INTEGER NOT NULL UNIQUE,"
	"  health TEXT NOT NULL DEFAULT 'unknown',"
	"  last_error TEXT NOT NULL DEFAULT '',"
	"  created_at TEXT NOT NULL,"
	"  started_at TEXT NOT NULL DEFAULT '',"
	"  stopped_at TEXT NOT NULL DEFAULT '',"
	"  updated_at TEXT NOT NULL);"
	"CREATE INDEX vms_image ON vms(image);"
	"CREATE TABLE operations ("
	"  seq INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL UNIQUE,"
	"  kind TEXT NOT NULL,"
	"  target TEXT NOT NULL DEFAULT '',"
	"  state TEXT NOT NULL,"
	"  stage TEXT NOT NULL DEFAULT '',"
	"  progress INTEGER NOT NULL DEFAULT 0,"
	"  error TEXT,"
	"  result TEXT,"
	"  created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL,"
	"  finished_at TEXT NOT NULL DEFAULT '');",
	/* 2: networking: each VM's TAP while it runs, one address lease per
	 * VM (stable across stop/start, released with the VM). */
	"ALTER TABLE vms ADD COLUMN tap TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE leases ("
	"  vm_id TEXT PRIMARY KEY,"
	"  ip TEXT NOT NULL UNIQUE);",
	/* 3: the accelerator a VM booted with (kvm | tcg) and why. */
	"ALTER TABLE vms ADD COLUMN accel TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE vms ADD COLUMN accel_reason TEXT NOT NULL DEFAULT '';",
	/* 4: how each VM's last stop ended, and a short history of stops per
	 * image (doctor warns about images whose guests never stop cleanly). */
	"ALTER TABLE vms ADD COLUMN stop_result TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE vms ADD COLUMN stop_method TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE vms ADD COLUMN stop_ms INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE stops ("
	"  seq INTEGER PRIMARY KEY,"
	"  image TEXT NOT NULL,"
	"  vm TEXT NOT NULL,"
	"  result TEXT NOT NULL,"
	"  method TEXT NOT NULL,"
	"  ms INTEGER NOT NULL,"
	"  at TEXT NOT NULL);"
	"CREATE INDEX stops_image ON stops(image, seq);",
	/* 5: why a paused VM is paused (host_disk_full). */
	"ALTER TABLE vms ADD COLUMN paused_reason TEXT NOT NULL DEFAULT '';",
};

static int
db_fail(struct store *s, struct bn_err *err, const char *what)
{
	return bn_fail(err, BN_ESYS, 0, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

static int
exec_sql(struct store *s, const char *sql, struct bn_err *err)
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
store_schema_version(struct store *s)
{
	sqlite3_stmt *st;
	int v = -1;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->mu);
	return v;
}

static int
migrate(struct store *s, struct bn_err *err)
{
	int version;
	char sql[64];

	pthread_mutex_unlock(&s->mu);
	version = store_schema_version(s);
	pthread_mutex_lock(&s->mu);
	if (version < 0)
		return db_fail(s, err, "read user_version");
	if (version > (int)ARRAY_SIZE(migrations))
		return bn_fail(err, BN_EINTERNAL, 0, "store: schema version %d is "
		    "newer than this bangerd understands (%zu)", version,
		    ARRAY_SIZE(migrations));
	for (int v = version; v < (int)ARRAY_SIZE(migrations); v++) {
		if (exec_sql(s, "BEGIN IMMEDIATE", err) < 0)
			return -1;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (exec_sql(s, migrations[v], err) < 0 || exec_sql(s, sql, err) < 0) {
			exec_sql(s, "ROLLBACK", NULL);
			return bn_err_prefix(err, "migration %d", v + 1);
		}
		if (exec_sql(s, "COMMIT", err) < 0)
			return -1;
	}
	return 0;
}

int
store_open(const char *path, struct store **ret, struct bn_err *err)
{
	struct store *s = xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->mu, NULL);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		bn_fail(err, BN_ESYS, 0, "store: open %s: %s", path,
		    s->db ? sqlite3_errmsg(s->db) : "out of memory");
		store_close(s);
		return -1;
	}
	sqlite3_busy_timeout(s->db, 5000);
	pthread_mutex_lock(&s->mu);
	int rc = exec_sql(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
	    "PRAGMA foreign_keys=ON; PRAGMA cache_size=-512;", err);
	if (rc == 0)
		rc = migrate(s, err);
	pthread_mutex_unlock(&s->mu);
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
	uint64_t g;

	pthread_mutex_lock(&s->mu);
	g = s->generation;
	pthread_mutex_unlock(&s->mu);
	return g;
}

static void
col_text(sqlite3_stmt *st, int col, char *out, size_t outsz)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(out, outsz, "%s", t ? (const char *)t : "");
}

/* ---- VMs ---- */

#define VM_COLS "id, name, image, vcpus, memory_mib, disk_gib, nat, state, vmm, " \
	"pid, cid, health, last_error, created_at, started_at, stopped_at, " \
	"updated_at, tap, accel, accel_reason, stop_result, stop_method, stop_ms, " \
	"paused_reason"
/* Read-only: the lease is stored in its own table. */
#define VM_SELECT "SELECT " VM_COLS ", coalesce((SELECT ip FROM leases WHERE " \
	"leases.vm_id = vms.id), '') FROM vms"

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
	col_text(st, 24, vm->ip, sizeof(vm->ip));
}

static void
vm_bind(sqlite3_stmt *st, const struct vm *vm)
{
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
}

/* Run one statement that changes rows, in its own transaction (a single
 * statement is atomic in SQLite).  Returns the number of rows changed. */
static int
run_change(struct store *s, sqlite3_stmt *st, struct bn_err *err, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(s, err, what);
	return sqlite3_changes(s->db);
}

int
store_vm_insert(struct store *s, const struct vm *vm, struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "INSERT INTO vms (" VM_COLS ") VALUES "
	    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare insert vm");
		goto out;
	}
	vm_bind(st, vm);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT) {
		rc = bn_fail(err, BN_EVM_EXISTS, 0, "vm '%s' already exists", vm->name);
		bn_err_hint(err, "pick another name or delete the existing vm");
	} else if (rc != SQLITE_DONE) {
		rc = db_fail(s, err, "insert vm");
	} else {
		rc = 0;
		s->generation++;
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int
vm_not_found(struct bn_err *err, const char *name)
{
	bn_fail(err, BN_EVM_NOTFOUND, 0, "vm '%s' not found", name);
	bn_err_detail(err, "name", name);
	return bn_err_hint(err, "run 'banger vm list' to see existing vms");
}

int
store_vm_get(struct store *s, const char *name, struct vm *ret, struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, VM_SELECT " WHERE name = ?",
	    -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare get vm");
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		vm_from_row(st, ret);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = vm_not_found(err, name);
	} else {
		rc = db_fail(s, err, "get vm");
	}
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_vm_update(struct store *s, const struct vm *vm, struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "UPDATE vms SET id=?1, name=?2, image=?3, "
	    "vcpus=?4, memory_mib=?5, disk_gib=?6, nat=?7, state=?8, vmm=?9, "
	    "pid=?10, cid=?11, health=?12, last_error=?13, created_at=?14, "
	    "started_at=?15, stopped_at=?16, updated_at=?17, tap=?18, accel=?19, "
	    "accel_reason=?20, stop_result=?21, stop_method=?22, stop_ms=?23, "
	    "paused_reason=?24 WHERE id=?1",
	    -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare update vm");
		goto out;
	}
	vm_bind(st, vm);
	rc = run_change(s, st, err, "update vm");
	if (rc == 0)
		rc = vm_not_found(err, vm->name);
	else if (rc > 0) {
		rc = 0;
		s->generation++;
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_vm_delete(struct store *s, const char *name, struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	/* The VM and its lease go together. */
	if (exec_sql(s, "BEGIN IMMEDIATE", err) < 0) {
		rc = -1;
		goto out;
	}
	if (sqlite3_prepare_v2(s->db, "DELETE FROM leases WHERE vm_id = (SELECT id "
	    "FROM vms WHERE name = ?)", -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare delete lease");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = run_change(s, st, err, "delete lease")) < 0)
		goto rollback;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM vms WHERE name = ?", -1, &st,
	    NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare delete vm");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = run_change(s, st, err, "delete vm");
	if (rc <= 0) {
		if (rc == 0)
			vm_not_found(err, name);
		rc = -1;
		goto rollback;
	}
	if (exec_sql(s, "COMMIT", err) < 0) {
		rc = -1;
		goto rollback;
	}
	rc = 0;
	s->generation++;
	goto out;
rollback:
	exec_sql(s, "ROLLBACK", NULL);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Every row 'sql' selects, each turned into an element of 'size' bytes
 * by from_row, in one array (*ret, *ret_n; free() it).  'what' names the
 * list in errors. */
static int
list_rows(struct store *s, const char *sql, size_t size,
    void (*from_row)(sqlite3_stmt *, void *), const char *what, void **ret,
    int *ret_n, struct bn_err *err)
{
	sqlite3_stmt *st;
	char *rows = NULL, msg[64];
	int n = 0, cap = 0, rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(msg, sizeof(msg), "prepare list %s", what);
		rc = db_fail(s, err, msg);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			rows = realloc(rows, (size_t)cap * size);
			if (rows == NULL)
				abort();
		}
		from_row(st, rows + (size_t)n++ * size);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(rows);
		snprintf(msg, sizeof(msg), "list %s", what);
		rc = db_fail(s, err, msg);
		goto out;
	}
	rc = 0;
	*ret = rows;
	*ret_n = n;
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static void
vm_row(sqlite3_stmt *st, void *vm)
{
	vm_from_row(st, vm);
}

int
store_vm_list(struct store *s, struct vm **ret, int *ret_n, struct bn_err *err)
{
	void *rows;
	int rc = list_rows(s, VM_SELECT " ORDER BY name", sizeof(**ret), vm_row,
	    "vms", &rows, ret_n, err);

	if (rc == 0)
		*ret = rows;
	return rc;
}

static int
query_int(struct store *s, const char *sql, const char *arg, int *ret,
    struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare query");
		goto out;
	}
	if (arg)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret = sqlite3_column_int(st, 0);
		rc = 0;
	} else {
		rc = db_fail(s, err, "query");
	}
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_vm_count(struct store *s, int *ret, struct bn_err *err)
{
	return query_int(s, "SELECT count(*) FROM vms", NULL, ret, err);
}

int
store_vm_count_image(struct store *s, const char *image, int *ret,
    struct bn_err *err)
{
	return query_int(s, "SELECT count(*) FROM vms WHERE image = ?", image, ret, err);
}

/* ---- stops ---- */

int
store_stop_record(struct store *s, const struct vm *vm, struct bn_err *err)
{
	sqlite3_stmt *st;
	char now[32];
	int rc = -1;

	time_rfc3339(now);
	pthread_mutex_lock(&s->mu);
	if (exec_sql(s, "BEGIN IMMEDIATE", err) < 0)
		goto out;
	if (sqlite3_prepare_v2(s->db, "INSERT INTO stops (image, vm, result, "
	    "method, ms, at) VALUES (?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK) {
		db_fail(s, err, "prepare insert stop");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, vm->image, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, vm->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, vm->stop_result, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, vm->stop_method, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, vm->stop_ms);
	sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
	if (run_change(s, st, err, "insert stop") < 0)
		goto rollback;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM stops WHERE image = ?1 AND "
	    "seq NOT IN (SELECT seq FROM stops WHERE image = ?1 ORDER BY seq "
	    "DESC LIMIT ?2)", -1, &st, NULL) != SQLITE_OK) {
		db_fail(s, err, "prepare prune stops");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, vm->image, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, STORE_STOPS_KEPT);
	if (run_change(s, st, err, "prune stops") < 0)
		goto rollback;
	rc = exec_sql(s, "COMMIT", err);
	if (rc == 0)
		goto out;
rollback:
	exec_sql(s, "ROLLBACK", NULL);
	rc = -1;
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
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
	char sql[320];

	snprintf(sql, sizeof(sql), "SELECT image, count(*), "
	    "sum(result = 'forced') FROM (SELECT image, result, row_number() "
	    "OVER (PARTITION BY image ORDER BY seq DESC) AS rn FROM stops) "
	    "WHERE rn <= %d GROUP BY image ORDER BY image", last > 0 ? last : 1);
	return list_rows(s, sql, sizeof(**ret), stops_row, "stops",
	    (void **)ret, ret_n, err);
}

int
store_vm_free_cid(struct store *s, unsigned *ret, struct bn_err *err)
{
	int cid;

	/* The smallest CID >= 3 with no VM on it: either 3 or one past a
	 * used CID whose successor is free. */
	if (query_int(s, "SELECT min(c) FROM (SELECT 3 AS c WHERE NOT EXISTS "
	    "(SELECT 1 FROM vms WHERE cid = 3) UNION ALL SELECT cid + 1 FROM vms "
	    "WHERE cid + 1 NOT IN (SELECT cid FROM vms))", NULL, &cid, err) < 0)
		return -1;
	*ret = (unsigned)cid;
	return 0;
}

/* ---- images ---- */

#define IMG_COLS "name, source, managed, rootfs, work_seed, created_at, updated_at"

static void
image_from_row(sqlite3_stmt *st, struct image *img)
{
	char src[16];

	memset(img, 0, sizeof(*img));
	col_text(st, 0, img->name, sizeof(img->name));
	col_text(st, 1, src, sizeof(src));
	img->source = strcmp(src, "built") == 0 ? IMAGE_BUILT : IMAGE_REGISTERED;
	img->managed = sqlite3_column_int(st, 2) != 0;
	col_text(st, 3, img->rootfs, sizeof(img->rootfs));
	col_text(st, 4, img->work_seed, sizeof(img->work_seed));
	col_text(st, 5, img->created_at, sizeof(img->created_at));
	col_text(st, 6, img->updated_at, sizeof(img->updated_at));
}

int
store_image_upsert(struct store *s, const struct image *img, bool *ret_created,
    struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc, exists = 0;

	if (query_int(s, "SELECT count(*) FROM images WHERE name = ?", img->name,
	    &exists, err) < 0)
		return -1;
	pthread_mutex_lock(&s->mu);
	/* created_at survives an update: ON CONFLICT leaves it alone. */
	if (sqlite3_prepare_v2(s->db, "INSERT INTO images (" IMG_COLS ") VALUES "
	    "(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(name) DO UPDATE SET source=?2, "
	    "managed=?3, rootfs=?4, work_seed=?5, updated_at=?7", -1, &st,
	    NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare upsert image");
		goto out;
	}
	sqlite3_bind_text(st, 1, img->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, image_source_name(img->source), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, img->managed);
	sqlite3_bind_text(st, 4, img->rootfs, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, img->work_seed, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, img->created_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, img->updated_at, -1, SQLITE_STATIC);
	rc = run_change(s, st, err, "upsert image");
	if (rc >= 0) {
		rc = 0;
		s->generation++;
		if (ret_created)
			*ret_created = exists == 0;
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int
image_not_found(struct bn_err *err, const char *name)
{
	bn_fail(err, BN_EIMG_NOTFOUND, 0, "image '%s' not found", name);
	bn_err_detail(err, "name", name);
	return bn_err_hint(err, "run 'banger image list' to see registered images");
}

int
store_image_get(struct store *s, const char *name, struct image *ret,
    struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "SELECT " IMG_COLS " FROM images WHERE name = ?",
	    -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare get image");
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		image_from_row(st, ret);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = image_not_found(err, name);
	} else {
		rc = db_fail(s, err, "get image");
	}
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_image_delete(struct store *s, const char *name, struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "DELETE FROM images WHERE name = ?", -1, &st,
	    NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare delete image");
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = run_change(s, st, err, "delete image");
	if (rc == 0)
		rc = image_not_found(err, name);
	else if (rc > 0) {
		rc = 0;
		s->generation++;
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static void
image_row(sqlite3_stmt *st, void *img)
{
	image_from_row(st, img);
}

int
store_image_list(struct store *s, struct image **ret, int *ret_n,
    struct bn_err *err)
{
	void *rows;
	int rc = list_rows(s, "SELECT " IMG_COLS " FROM images ORDER BY name",
	    sizeof(**ret), image_row, "images", &rows, ret_n, err);

	if (rc == 0)
		*ret = rows;
	return rc;
}

/* ---- operations ---- */

#define OP_COLS "id, kind, target, state, stage, progress, error, result, " \
	"created_at, updated_at, finished_at"

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
}

int
store_op_put(struct store *s, const struct op_row *op, struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "INSERT INTO operations (" OP_COLS ") VALUES "
	    "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11) ON CONFLICT(id) DO UPDATE SET "
	    "state=?4, stage=?5, progress=?6, error=?7, result=?8, updated_at=?10, "
	    "finished_at=?11", -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare put operation");
		goto out;
	}
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
	rc = run_change(s, st, err, "put operation");
	if (rc > 0)
		rc = 0;
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_op_get(struct store *s, const char *id, struct op_row *ret,
    struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "SELECT " OP_COLS " FROM operations WHERE id = ?",
	    -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare get operation");
		goto out;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		op_from_row(st, ret);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = bn_fail(err, BN_EOP_NOTFOUND, 0, "operation '%.40s' not found", id);
		bn_err_detail(err, "id", id);
	} else {
		rc = db_fail(s, err, "get operation");
	}
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_op_list(struct store *s, int limit, struct op_row **ret, int *ret_n,
    struct bn_err *err)
{
	sqlite3_stmt *st;
	struct op_row *ops;
	int n = 0, rc;

	ops = xcalloc((size_t)(limit > 0 ? limit : 1), sizeof(*ops));
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "SELECT " OP_COLS " FROM operations ORDER BY "
	    "seq DESC LIMIT ?", -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare list operations");
		goto out;
	}
	sqlite3_bind_int(st, 1, limit);
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
		op_from_row(st, &ops[n++]);
	sqlite3_finalize(st);
	rc = 0;
out:
	pthread_mutex_unlock(&s->mu);
	if (rc < 0) {
		free(ops);
		return -1;
	}
	*ret = ops;
	*ret_n = n;
	return 0;
}

int
store_op_fail_unfinished(struct store *s, const char *error_json, int *ret_n,
    struct bn_err *err)
{
	sqlite3_stmt *st;
	char now[32];
	int rc;

	time_rfc3339(now);
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "UPDATE operations SET state='failed', "
	    "error=?1, updated_at=?2, finished_at=?2 WHERE state IN "
	    "('pending','running')", -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare fail operations");
		goto out;
	}
	sqlite3_bind_text(st, 1, error_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	rc = run_change(s, st, err, "fail operations");
	if (rc >= 0) {
		if (ret_n)
			*ret_n = rc;
		rc = 0;
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_op_prune(struct store *s, int keep, struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "DELETE FROM operations WHERE finished_at != '' "
	    "AND seq <= (SELECT max(seq) FROM operations) - ?", -1, &st,
	    NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare prune operations");
		goto out;
	}
	sqlite3_bind_int(st, 1, keep);
	rc = run_change(s, st, err, "prune operations");
	if (rc > 0)
		rc = 0;
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- leases ---- */

int
store_lease_get(struct store *s, const char *vm_id, uint32_t net, int prefix,
    uint32_t gateway, char ret_ip[16], struct bn_err *err)
{
	sqlite3_stmt *st = NULL;
	uint32_t size = prefix >= 31 ? 0 : (1u << (32 - prefix));
	unsigned char *used = NULL;
	int rc = -1;

	pthread_mutex_lock(&s->mu);
	if (exec_sql(s, "BEGIN IMMEDIATE", err) < 0)
		goto out;
	if (sqlite3_prepare_v2(s->db, "SELECT ip FROM leases WHERE vm_id = ?", -1,
	    &st, NULL) != SQLITE_OK) {
		db_fail(s, err, "prepare lease");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, vm_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		col_text(st, 0, ret_ip, 16);
		sqlite3_finalize(st);
		exec_sql(s, "COMMIT", NULL);
		rc = 0;
		goto out;
	}
	sqlite3_finalize(st);
	if (size < 4) {
		bn_fail(err, BN_EINVAL, 0, "subnet /%d has no room for vms", prefix);
		goto rollback;
	}
	/* The smallest free host address: not the network, the broadcast or
	 * the gateway (the bridge). */
	used = xcalloc(size, 1);
	if (sqlite3_prepare_v2(s->db, "SELECT ip FROM leases", -1, &st, NULL) !=
	    SQLITE_OK) {
		db_fail(s, err, "prepare leases");
		goto rollback;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct in_addr a;
		if (inet_pton(AF_INET, (const char *)sqlite3_column_text(st, 0), &a) == 1) {
			uint32_t h = ntohl(a.s_addr);
			if ((h & ~(size - 1)) == net)
				used[h - net] = 1;
		}
	}
	sqlite3_finalize(st);
	used[0] = used[size - 1] = 1;
	if (gateway >= net && gateway - net < size)
		used[gateway - net] = 1;
	uint32_t off;
	for (off = 1; off < size && used[off]; off++)
		;
	if (off == size) {
		bn_fail(err, BN_ELIMIT, 0, "no free address left in the vm subnet");
		bn_err_hint(err, "delete unused vms or use a larger \"bridge_cidr\"");
		goto rollback;
	}
	struct in_addr a = { htonl(net + off) };
	inet_ntop(AF_INET, &a, ret_ip, 16);
	if (sqlite3_prepare_v2(s->db, "INSERT INTO leases (vm_id, ip) VALUES (?, ?)",
	    -1, &st, NULL) != SQLITE_OK) {
		db_fail(s, err, "prepare insert lease");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, vm_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ret_ip, -1, SQLITE_STATIC);
	if (run_change(s, st, err, "insert lease") < 0 ||
	    exec_sql(s, "COMMIT", err) < 0)
		goto rollback;
	s->generation++;
	rc = 0;
	goto out;
rollback:
	exec_sql(s, "ROLLBACK", NULL);
out:
	pthread_mutex_unlock(&s->mu);
	free(used);
	return rc;
}

int
store_lease_prune(struct store *s, int *ret_n, struct bn_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "DELETE FROM leases WHERE vm_id NOT IN "
	    "(SELECT id FROM vms)", -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, err, "prepare prune leases");
		goto out;
	}
	rc = run_change(s, st, err, "prune leases");
	if (rc >= 0) {
		if (ret_n)
			*ret_n = rc;
		rc = 0;
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_lease_lookup(struct store *s, const char *name, char ret_ip[16])
{
	sqlite3_stmt *st;
	int found = 0;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "SELECT l.ip FROM leases l JOIN vms v ON "
	    "v.id = l.vm_id WHERE v.name = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			col_text(st, 0, ret_ip, 16);
			found = 1;
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->mu);
	return found;
}
