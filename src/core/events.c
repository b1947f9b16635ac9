/* events.c - the event ring: vm.*, image.* and operation.* events, and the
 * filtered cursor reads behind GET /v1/events. */
#include "core/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

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
