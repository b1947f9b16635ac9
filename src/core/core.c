/* core.c - core lifetime, per-VM locks, operations, events, JSON views. */
#include "core/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define OPS_KEEP 256

static long long
read_mem_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	long long kib = 0;

	if (f == NULL)
		return 1048576;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %lld kB", &kib) == 1)
			break;
	fclose(f);
	return kib > 0 ? kib / 1024 : 1048576;
}

int
core_open(const struct config *cfg, const struct bundle *bundle,
    struct core **ret, struct bn_err *err)
{
	struct core *c = xcalloc(1, sizeof(*c));
	char path[PATH_MAX];

	c->cfg = *cfg;
	c->bundle = *bundle;
	c->started_ms = time_mono_ms();
	c->host_mem_mib = read_mem_mib();
	pthread_mutex_init(&c->locks_mu, NULL);
	pthread_mutex_init(&c->ops_mu, NULL);
	pthread_cond_init(&c->ops_cond, NULL);
	pthread_mutex_init(&c->ev_mu, NULL);
	pthread_cond_init(&c->ev_cond, NULL);
	if (mkdir_p(cfg->state_dir, 0700, err) < 0 ||
	    path_join(path, sizeof(path), err, "%s/vms", cfg->state_dir) < 0 ||
	    mkdir_p(path, 0700, err) < 0 ||
	    path_join(path, sizeof(path), err, "%s/banger.db", cfg->state_dir) < 0 ||
	    store_open(path, &c->store, err) < 0) {
		free(c);
		return -1;
	}
	core_reconcile(c);
	core_net_start(c);
	spares_start(c);
	if (pthread_create(&c->monitor, NULL, core_monitor_main, c) != 0) {
		store_close(c->store);
		free(c);
		return bn_fail(err, BN_ESYS, errno, "start monitor thread");
	}
	*ret = c;
	return 0;
}

void
core_quiesce(struct core *c)
{
	pthread_mutex_lock(&c->ev_mu);
	c->stopping = true;
	pthread_cond_broadcast(&c->ev_cond);
	pthread_mutex_unlock(&c->ev_mu);
	pthread_mutex_lock(&c->ops_mu);
	pthread_cond_broadcast(&c->ops_cond);
	pthread_mutex_unlock(&c->ops_mu);
}

void
core_close(struct core *c)
{
	if (c == NULL)
		return;
	core_quiesce(c);
	pthread_join(c->monitor, NULL);
	spares_stop(c);
	core_net_stop(c);
	/* Let operations reach their end; VMM processes are detached and keep
	 * running either way, and an interrupted operation is marked failed on
	 * the next start. */
	pthread_mutex_lock(&c->ops_mu);
	pthread_cond_broadcast(&c->ops_cond);
	long long deadline = time_mono_ms() + 5000;
	while (c->running_ops > 0 && time_mono_ms() < deadline) {
		cond_wait_ms(&c->ops_cond, &c->ops_mu, 100);
	}
	int still = c->running_ops;
	pthread_mutex_unlock(&c->ops_mu);
	if (still > 0) {
		/* Threads still hold the store: leave it open, exit reclaims. */
		log_warnx("%d operations still running at shutdown", still);
		return;
	}
	for (struct op *o = c->ops, *next; o; o = next) {
		next = o->next;
		op_row_clear(&o->row);
		free(o);
	}
	for (struct vm_lock *l = c->locks, *next; l; l = next) {
		next = l->next;
		pthread_mutex_destroy(&l->mu);
		free(l);
	}
	for (int i = 0; i < EVENT_RING; i++)
		free(c->ring[i].frame);
	store_close(c->store);
	free(c);
}

const struct config *core_config(struct core *c) { return &c->cfg; }
const struct bundle *core_bundle(struct core *c) { return &c->bundle; }
uint64_t core_generation(struct core *c) { return store_generation(c->store); }
long long core_uptime_s(struct core *c) { return (time_mono_ms() - c->started_ms) / 1000; }

/* ---- per-VM locks ---- */

static struct vm_lock *
lock_ref(struct core *c, const char *name)
{
	struct vm_lock *l;

	pthread_mutex_lock(&c->locks_mu);
	for (l = c->locks; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			break;
	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		snprintf(l->name, sizeof(l->name), "%s", name);
		pthread_mutex_init(&l->mu, NULL);
		l->next = c->locks;
		c->locks = l;
	}
	l->refs++;
	pthread_mutex_unlock(&c->locks_mu);
	return l;
}

static void
lock_unref(struct core *c, struct vm_lock *l)
{
	pthread_mutex_lock(&c->locks_mu);
	if (--l->refs == 0) {
		for (struct vm_lock **pp = &c->locks; *pp; pp = &(*pp)->next)
			if (*pp == l) {
				*pp = l->next;
				break;
			}
		pthread_mutex_destroy(&l->mu);
		free(l);
	}
	pthread_mutex_unlock(&c->locks_mu);
}

void
vm_lock(struct core *c, const char *name)
{
	struct vm_lock *l = lock_ref(c, name);

	pthread_mutex_lock(&l->mu);
}

bool
vm_trylock(struct core *c, const char *name)
{
	struct vm_lock *l = lock_ref(c, name);

	if (pthread_mutex_trylock(&l->mu) == 0)
		return true;
	lock_unref(c, l);
	return false;
}

void
vm_unlock(struct core *c, const char *name)
{
	struct vm_lock *l;

	pthread_mutex_lock(&c->locks_mu);
	for (l = c->locks; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			break;
	pthread_mutex_unlock(&c->locks_mu);
	if (l == NULL)
		return;
	pthread_mutex_unlock(&l->mu);
	lock_unref(c, l);
}

/* ---- JSON views ---- */

static json_t *
ts_or_null(const char *ts)
{
	return json_str_or_null(ts);
}

/* How the last stop ended, or null before the first. */
json_t *
vm_last_stop_json(const struct vm *vm)
{
	char sum[48];

	if (vm->stop_result[0] == '\0')
		return json_null();
	if (strcmp(vm->stop_result, "forced") == 0)
		snprintf(sum, sizeof(sum), "forced after %d s",
		    (vm->stop_ms + 500) / 1000);
	else
		snprintf(sum, sizeof(sum), "%s", vm->stop_result);
	return json_pack("{s:s, s:s, s:i, s:s}", "result", vm->stop_result,
	    "method", vm->stop_method, "duration_ms", vm->stop_ms, "summary", sum);
}

json_t *
vm_to_json(const struct vm *vm)
{
	char dns[VM_NAME_MAX + 4];

	snprintf(dns, sizeof(dns), "%s.vm", vm->name);
	return json_pack("{s:s, s:s, s:{s:s, s:i, s:i, s:i, s:b}, "
	    "s:{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:o, s:s, s:o, "
	    "s:o, s:o}}",
	    "name", vm->name, "id", vm->id,
	    "spec", "image", vm->image, "vcpus", vm->vcpus, "memory_mib",
	    vm->memory_mib, "disk_gib", vm->disk_gib, "nat", vm->nat,
	    "status", "state", vm_state_name(vm->state),
	    "ip", json_str_or_null(vm->ip),
	    "dns_name", vm->ip[0] ? json_string(dns) : json_null(),
	    "vmm", json_str_or_null(vm->vmm),
	    "accel", json_str_or_null(vm->accel),
	    "accel_reason", json_str_or_null(vm->accel_reason),
	    "pid", vm->pid > 0 ? json_integer(vm->pid) : json_null(),
	    "health", vm->health[0] ? vm->health : "unknown",
	    "created_at", vm->created_at,
	    "started_at", ts_or_null(vm->started_at),
	    "stopped_at", ts_or_null(vm->stopped_at),
	    "updated_at", vm->updated_at,
	    "last_error", json_str_or_null(vm->last_error),
	    "last_stop", vm_last_stop_json(vm),
	    "paused_reason", json_str_or_null(vm->paused_reason));
}

json_t *
image_to_json(const struct image_view *iv)
{
	return json_pack("{s:s, s:s, s:b, s:b, s:b, s:s, s:o, s:o, s:o}",
	    "name", iv->img.name, "source", image_source_name(iv->img.source),
	    "managed", iv->img.managed, "default", iv->is_default,
	    "available", iv->available, "rootfs", iv->img.rootfs,
	    "work_seed", json_str_or_null(iv->img.work_seed),
	    "created_at", ts_or_null(iv->img.created_at),
	    "updated_at", ts_or_null(iv->img.updated_at));
}

static json_t *
json_text_or_null(const char *text)
{
	json_t *j;

	if (text == NULL || *text == '\0')
		return json_null();
	j = json_loads(text, 0, NULL);
	return j ? j : json_null();
}

json_t *
op_to_json(const struct op_row *op)
{
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:i, s:o, s:o, s:s, s:s, s:o}",
	    "id", op->id, "kind", op->kind, "target", json_str_or_null(op->target),
	    "state", op_state_name(op->state), "stage", op->stage,
	    "progress", op->progress, "error", json_text_or_null(op->error_json),
	    "result", json_text_or_null(op->result_json),
	    "created_at", op->created_at, "updated_at", op->updated_at,
	    "finished_at", ts_or_null(op->finished_at));
}

json_t *
err_to_json(const struct bn_err *err)
{
	const struct bn_code_info *ci = bn_code_info(err->code);
	json_t *details = json_object();
	char msg[sizeof(err->msg)];

	/* Strip control characters: messages may quote user input. */
	for (size_t i = 0; i < sizeof(msg); i++) {
		unsigned char ch = (unsigned char)err->msg[i];
		msg[i] = (ch != 0 && (ch < 0x20 || ch == 0x7f)) ? ' ' : (char)ch;
		if (ch == 0)
			break;
	}
	msg[sizeof(msg) - 1] = '\0';
	if (err->detail_key[0])
		json_object_set_new(details, err->detail_key,
		    json_string(err->detail_val));
	if (err->sys_errno)
		json_object_set_new(details, "errno", json_integer(err->sys_errno));
	json_t *j = json_pack("{s:s, s:s, s:i, s:o, s:s}", "code", ci->name,
	    "message", msg, "status", ci->http_status, "details", details,
	    "hint", err->hint);
	if (j == NULL) {
		/* Not valid UTF-8 (user input in the message): say less. */
		j = json_pack("{s:s, s:s, s:i, s:{}, s:s}", "code", ci->name,
		    "message", "request rejected (message not representable)",
		    "status", ci->http_status, "details", "hint", "");
	}
	return j;
}

/* ---- operations ---- */

struct op_thread {
	struct core *c;
	struct op *op;
	op_fn fn;
	void *arg;
	void (*arg_free)(void *);
};

static void
op_persist(struct core *c, struct op *op)
{
	struct bn_err err;

	time_rfc3339(op->row.updated_at);
	if (store_op_put(c->store, &op->row, &err) < 0)
		log_warnx("operation %s: %s", op->row.id, err.msg);
}

static void
op_emit(struct core *c, const char *type, const struct op_row *row)
{
	core_emit(c, type, row->target[0] ? row->target : NULL, row->id,
	    op_to_json(row));
}

void
op_stage(struct core *c, struct op *op, const char *stage, int progress)
{
	struct op_row snap;

	log_debug("operation %s: stage %s at %lld ms", op->row.id, stage,
	    time_mono_ms() - op->started_ms);
	pthread_mutex_lock(&c->ops_mu);
	snprintf(op->row.stage, sizeof(op->row.stage), "%s", stage);
	op->row.progress = progress;
	op->row.state = OP_RUNNING;
	op_persist(c, op);
	snap = op->row;
	snap.error_json = snap.result_json = NULL;
	pthread_cond_broadcast(&c->ops_cond);
	pthread_mutex_unlock(&c->ops_mu);
	op_emit(c, "operation.updated", &snap);
}

static void
ops_prune_locked(struct core *c)
{
	/* Keep the newest OPS_KEEP; only finished ones are dropped. */
	int seen = 0;
	for (struct op **pp = &c->ops; *pp;) {
		struct op *o = *pp;
		if (++seen > OPS_KEEP && core_op_finished(&o->row)) {
			*pp = o->next;
			op_row_clear(&o->row);
			free(o);
			c->nops--;
			continue;
		}
		pp = &o->next;
	}
}

static void *
op_thread_main(void *arg)
{
	struct op_thread *t = arg;
	struct core *c = t->c;
	struct op *op = t->op;
	struct bn_err err = { 0 };
	json_t *result;
	struct op_row snap;

	result = t->fn(c, op, t->arg, &err);
	log_debug("operation %s: %s after %lld ms", op->row.id,
	    result ? "done" : "failed", time_mono_ms() - op->started_ms);
	pthread_mutex_lock(&c->ops_mu);
	time_rfc3339(op->row.finished_at);
	if (result != NULL) {
		op->row.state = OP_SUCCEEDED;
		op->row.progress = 100;
		snprintf(op->row.stage, sizeof(op->row.stage), "done");
		if (!json_is_null(result))
			op->row.result_json = json_dump_compact(result);
		json_decref(result);
	} else {
		json_t *ej = err_to_json(&err);
		op->row.state = OP_FAILED;
		op->row.error_json = json_dump_compact(ej);
		json_decref(ej);
		log_info("operation %s (%s %s) failed: %s", op->row.id, op->row.kind,
		    op->row.target, err.msg);
	}
	op_persist(c, op);
	snap = op->row;
	snap.error_json = op->row.error_json ? xstrdup(op->row.error_json) : NULL;
	snap.result_json = op->row.result_json ? xstrdup(op->row.result_json) : NULL;
	c->running_ops--;
	pthread_cond_broadcast(&c->ops_cond);
	pthread_mutex_unlock(&c->ops_mu);
	op_emit(c, "operation.finished", &snap);
	op_row_clear(&snap);
	if (t->arg_free)
		t->arg_free(t->arg);
	free(t);
	return NULL;
}

int
op_start(struct core *c, const char *kind, const char *target, op_fn fn,
    void *arg, void (*arg_free)(void *), char ret_id[24], struct bn_err *err)
{
	struct op *op = xcalloc(1, sizeof(*op));
	struct op_thread *t;
	struct op_row snap;
	pthread_attr_t attr;
	pthread_t th;
	char hex[17];

	if (random_hex(hex, 8, err) < 0) {
		free(op);
		return -1;
	}
	snprintf(op->row.id, sizeof(op->row.id), "op-%s", hex);
	snprintf(op->row.kind, sizeof(op->row.kind), "%s", kind);
	snprintf(op->row.target, sizeof(op->row.target), "%s", target ? target : "");
	snprintf(op->row.stage, sizeof(op->row.stage), "queued");
	op->started_ms = time_mono_ms();
	op->row.state = OP_PENDING;
	time_rfc3339(op->row.created_at);
	t = xcalloc(1, sizeof(*t));
	*t = (struct op_thread){ c, op, fn, arg, arg_free };

	pthread_mutex_lock(&c->ops_mu);
	op_persist(c, op);
	op->next = c->ops;
	c->ops = op;
	c->nops++;
	c->running_ops++;
	ops_prune_locked(c);
	snap = op->row;
	pthread_mutex_unlock(&c->ops_mu);
	op_emit(c, "operation.created", &snap);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&th, &attr, op_thread_main, t) != 0) {
		pthread_attr_destroy(&attr);
		/* Finish it as failed so nobody waits forever. */
		struct bn_err e;
		bn_fail(&e, BN_ESYS, errno, "start operation thread");
		pthread_mutex_lock(&c->ops_mu);
		json_t *ej = err_to_json(&e);
		op->row.state = OP_FAILED;
		op->row.error_json = json_dump_compact(ej);
		json_decref(ej);
		time_rfc3339(op->row.finished_at);
		op_persist(c, op);
		c->running_ops--;
		pthread_cond_broadcast(&c->ops_cond);
		pthread_mutex_unlock(&c->ops_mu);
		if (arg_free)
			arg_free(arg);
		free(t);
		*err = e;
		return -1;
	}
	pthread_attr_destroy(&attr);
	snprintf(ret_id, 24, "%s", snap.id);
	return 0;
}

static void
op_copy(struct op_row *dst, const struct op_row *src)
{
	*dst = *src;
	dst->error_json = src->error_json ? xstrdup(src->error_json) : NULL;
	dst->result_json = src->result_json ? xstrdup(src->result_json) : NULL;
}

bool
op_cancelled(struct op *op)
{
	return op->cancel;
}

int
op_fail_cancelled(struct op *op, struct bn_err *err)
{
	return bn_fail(err, BN_ECANCELLED, 0, "operation %s was cancelled",
	    op->row.id);
}

void
op_set_child(struct core *c, struct op *op, pid_t pgid)
{
	pthread_mutex_lock(&c->ops_mu);
	op->child = pgid;
	/* Asked before the child existed: it goes at once. */
	if (pgid > 0 && op->cancel)
		kill(-pgid, SIGTERM);
	pthread_mutex_unlock(&c->ops_mu);
}

int
core_op_cancel(struct core *c, const char *id, struct op_row *ret,
    struct bn_err *err)
{
	struct op *o;

	pthread_mutex_lock(&c->ops_mu);
	for (o = c->ops; o; o = o->next)
		if (strcmp(o->row.id, id) == 0)
			break;
	if (o == NULL) {
		pthread_mutex_unlock(&c->ops_mu);
		/* Finished long ago (only in the store), or never existed. */
		if (store_op_get(c->store, id, ret, err) < 0)
			return -1;
		op_row_clear(ret);
		bn_fail(err, BN_ESTATE, 0, "operation %s has already finished", id);
		return -1;
	}
	if (core_op_finished(&o->row)) {
		pthread_mutex_unlock(&c->ops_mu);
		bn_fail(err, BN_ESTATE, 0, "operation %s has already %s", id,
		    op_state_name(o->row.state));
		return -1;
	}
	if (!o->cancel)
		log_info("operation %s (%s %s): cancel requested", o->row.id,
		    o->row.kind, o->row.target);
	o->cancel = true;
	if (o->child > 0)
		kill(-o->child, SIGTERM);
	op_copy(ret, &o->row);
	/* Wake waits that check for cancellation between slices. */
	pthread_cond_broadcast(&c->ops_cond);
	pthread_mutex_unlock(&c->ops_mu);
	return 0;
}

bool
core_op_finished(const struct op_row *op)
{
	return op->state == OP_SUCCEEDED || op->state == OP_FAILED;
}

int
core_op_get(struct core *c, const char *id, int wait_s, struct op_row *ret,
    struct bn_err *err)
{
	struct op *o;
	long long deadline = time_mono_ms() + (long long)wait_s * 1000;

	pthread_mutex_lock(&c->ops_mu);
	for (;;) {
		for (o = c->ops; o; o = o->next)
			if (strcmp(o->row.id, id) == 0)
				break;
		if (o == NULL)
			break;
		if (core_op_finished(&o->row) || c->stopping ||
		    time_mono_ms() >= deadline) {
			op_copy(ret, &o->row);
			pthread_mutex_unlock(&c->ops_mu);
			return 0;
		}
		long long left = deadline - time_mono_ms();
		cond_wait_ms(&c->ops_cond, &c->ops_mu, left > 1000 ? 1000 : left);
	}
	pthread_mutex_unlock(&c->ops_mu);
	/* Not in memory: an older operation, from the store. */
	return store_op_get(c->store, id, ret, err);
}

int
core_op_list(struct core *c, struct op_row **ret, int *ret_n, struct bn_err *err)
{
	return store_op_list(c->store, 100, ret, ret_n, err);
}

/* ---- events ---- */

void
core_emit(struct core *c, const char *type, const char *vm, const char *op_id,
    json_t *data)
{
	char now[32];
	json_t *ev;
	char *text;

	time_rfc3339(now);
	pthread_mutex_lock(&c->ev_mu);
	uint64_t id = ++c->ev_last;
	ev = json_pack("{s:I, s:s, s:s, s:o, s:o, s:o}", "id", (json_int_t)id,
	    "type", type, "time", now, "vm", json_str_or_null(vm),
	    "operation", json_str_or_null(op_id), "data", data ? data : json_object());
	text = json_dump_compact(ev);
	json_decref(ev);
	struct event *e = &c->ring[id % EVENT_RING];
	free(e->frame);
	size_t n = strlen(text) + strlen(type) + 64;
	e->frame = xmalloc(n);
	snprintf(e->frame, n, "id: %llu\nevent: %s\ndata: %s\n\n",
	    (unsigned long long)id, type, text);
	e->id = id;
	snprintf(e->type, sizeof(e->type), "%s", type);
	snprintf(e->vm, sizeof(e->vm), "%s", vm ? vm : "");
	free(text);
	pthread_cond_broadcast(&c->ev_cond);
	pthread_mutex_unlock(&c->ev_mu);
}

uint64_t
core_events_last_id(struct core *c)
{
	uint64_t id;

	pthread_mutex_lock(&c->ev_mu);
	id = c->ev_last;
	pthread_mutex_unlock(&c->ev_mu);
	return id;
}

static bool
event_matches(const struct event *e, const struct event_filter *f)
{
	if (f->vm[0] && strcmp(f->vm, e->vm) != 0)
		return false;
	if (f->ntypes == 0)
		return true;
	for (int i = 0; i < f->ntypes; i++)
		if (strncmp(e->type, f->types[i], strlen(f->types[i])) == 0)
			return true;
	return false;
}

int
core_events_next(struct core *c, uint64_t *cursor, const struct event_filter *f,
    int wait_ms, char **ret)
{
	long long deadline = time_mono_ms() + wait_ms;
	int rc = 0;

	pthread_mutex_lock(&c->ev_mu);
	for (;;) {
		if (c->stopping) {
			rc = -1;
			break;
		}
		/* Events older than the ring are gone; skip ahead. */
		if (c->ev_last > EVENT_RING && *cursor < c->ev_last - EVENT_RING)
			*cursor = c->ev_last - EVENT_RING;
		while (*cursor < c->ev_last) {
			struct event *e = &c->ring[(*cursor + 1) % EVENT_RING];
			(*cursor)++;
			if (e->id == *cursor && event_matches(e, f)) {
				*ret = xstrdup(e->frame);
				rc = 1;
				goto out;
			}
		}
		long long left = deadline - time_mono_ms();
		if (left <= 0)
			break;
		cond_wait_ms(&c->ev_cond, &c->ev_mu, left);
	}
out:
	pthread_mutex_unlock(&c->ev_mu);
	return rc;
}
