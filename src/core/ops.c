/* ops.c - operations: each runs in its own thread, persisted, with stages,
 * progress and cooperative cancel. */
#include "core/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define OPS_KEEP 256

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

void
op_note(struct core *c, struct op *op, const char *note)
{
	struct op_row snap;

	log_info("operation %s: %s", op->row.id, note);
	pthread_mutex_lock(&c->ops_mu);
	snprintf(op->row.note, sizeof(op->row.note), "%s", note);
	op_persist(c, op);
	snap = op->row;
	snap.error_json = snap.result_json = NULL;
	pthread_mutex_unlock(&c->ops_mu);
	op_emit(c, "operation.updated", &snap);
}

bool
op_active_on(struct core *c, const char *vm, char op_id[24])
{
	bool found = false;

	pthread_mutex_lock(&c->ops_mu);
	for (struct op *o = c->ops; o && !found; o = o->next)
		if (!core_op_finished(&o->row) &&
		    strncmp(o->row.kind, "vm.", 3) == 0 &&
		    strcmp(o->row.target, vm) == 0) {
			snprintf(op_id, 24, "%s", o->row.id);
			found = true;
		}
	pthread_mutex_unlock(&c->ops_mu);
	return found;
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
	long long took = time_mono_ms() - op->started_ms;
	log_debug("operation %s: %s after %lld ms", op->row.id,
	    result ? "done" : "failed", took);
	metrics_op_done(c, op->row.kind, result != NULL, took);
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
		if (arg_free)
			arg_free(arg);
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
