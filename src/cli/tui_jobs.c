/* tui_jobs.c - the two worker threads of 'banger tui'.
 *
 * The request thread works through a queue of API requests on a curl
 * handle of its own and applies each reply to the model.  The stream
 * thread runs events_follow() forever (it reconnects on its own) and
 * applies each event to the model, queueing the reads an event calls
 * for.  Both change the model under t->mu and wake the UI through its
 * pipe; neither touches curses.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"
#include "tui_app.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define GET_TIMEOUT_S     10L
#define ACTION_TIMEOUT_S  30L

struct job {
	enum job_kind kind;
	char name[64];
	char action[16];
	bool nat;
	struct job *next;
};

static bool
job_same(const struct job *a, const struct job *b)
{
	return a->kind == b->kind && strcmp(a->name, b->name) == 0 &&
	    strcmp(a->action, b->action) == 0 && a->nat == b->nat;
}

void
tui_enqueue(struct tui *t, enum job_kind kind, const char *name,
    const char *action, bool nat)
{
	struct job *j = xmalloc(sizeof(*j));

	memset(j, 0, sizeof(*j));
	j->kind = kind;
	snprintf(j->name, sizeof(j->name), "%s", name ? name : "");
	snprintf(j->action, sizeof(j->action), "%s", action ? action : "");
	j->nat = nat;
	tui_lock(t);
	/* Reads already waiting need not be queued twice. */
	if (kind == JOB_LIST_VMS || kind == JOB_GET_VM ||
	    kind == JOB_LIST_IMAGES || kind == JOB_DOCTOR || kind == JOB_USAGE) {
		for (struct job *q = t->head; q != NULL; q = q->next) {
			if (job_same(q, j)) {
				tui_unlock(t);
				free(j);
				return;
			}
		}
	}
	if (t->tail != NULL)
		t->tail->next = j;
	else
		t->head = j;
	t->tail = j;
	pthread_cond_signal(&t->cond);
	tui_unlock(t);
}

static const char *
reply_message(json_t *body, long status, char *buf, size_t len)
{
	const char *msg = jstr(body, WIRE_MESSAGE);

	if (msg != NULL)
		return out_clean(msg, buf, len);
	snprintf(buf, len, "HTTP %ld", status);
	return buf;
}

/* Apply a reply to the model; called with mu held. */
static void
job_apply(struct tui *t, const struct job *j, long status, json_t *body)
{
	struct tui_model *m = &t->m;
	bool ok = status >= 200 && status <= 299;
	char msg[256];

	switch (j->kind) {
	case JOB_LIST_VMS:
		if (ok && json_is_array(jobj(body, WIRE_VMS)))
			tui_model_set_vms(m, jobj(body, WIRE_VMS));
		else
			tui_model_message(m, true, "listing VMs: %s",
			    reply_message(body, status, msg, sizeof(msg)));
		return;
	case JOB_GET_VM:
		if (ok)
			tui_model_put_vm(m, body);
		else if (status == 404)
			tui_model_remove_vm(m, j->name);
		return;
	case JOB_LIST_IMAGES:
		if (ok && json_is_array(jobj(body, WIRE_IMAGES))) {
			if (m->images != NULL)
				json_decref(m->images);
			m->images = json_incref(jobj(body, WIRE_IMAGES));
		} else {
			tui_model_message(m, true, "listing images: %s",
			    reply_message(body, status, msg, sizeof(msg)));
		}
		return;
	case JOB_DOCTOR:
		if (ok && json_is_object(body)) {
			if (m->doctor != NULL)
				json_decref(m->doctor);
			m->doctor = json_incref(body);
		} else {
			tui_model_message(m, true, "doctor: %s",
			    reply_message(body, status, msg, sizeof(msg)));
		}
		return;
	case JOB_ACTION:
	case JOB_DELETE:
		if (ok && j->kind == JOB_ACTION && (strcmp(j->action, "pause") == 0 ||
		    strcmp(j->action, "resume") == 0)) {
			/* Synchronous: the reply is the VM itself. */
			tui_model_put_vm(m, body);
			tui_model_message(m, false, "%s: %s", j->name,
			    strcmp(j->action, "pause") == 0 ? "paused" : "running");
		} else if (ok && jstr(body, WIRE_ID) != NULL) {
			const char *kind = jstr(body, WIRE_KIND);

			/* A stale reply must not undo the "done" already
			 * shown from the operation's events. */
			if (tui_model_set_op(m, body) && status == 202)
				tui_model_message(m, false, "%s %s: accepted (%s)",
				    kind ? kind : "", j->name,
				    jstr(body, WIRE_ID));
		} else if (ok) {
			tui_model_message(m, false, "%s %s: done",
			    j->kind == JOB_DELETE ? "delete" : j->action, j->name);
		} else {
			tui_model_message(m, true, "%s %s: %s",
			    j->kind == JOB_DELETE ? "delete" : j->action, j->name,
			    reply_message(body, status, msg, sizeof(msg)));
		}
		return;
	case JOB_USAGE:
		if (ok)
			tui_model_set_usage(m, j->name, body, time_mono_ms());
		return;
	case JOB_NAT:
		if (ok) {
			json_t *spec = jobj(body, WIRE_SPEC);

			tui_model_put_vm(m, body);
			tui_model_message(m, false, "%s: NAT %s", j->name,
			    json_is_true(jobj(spec, WIRE_NAT)) ? "on" : "off");
		} else {
			tui_model_message(m, true, "NAT %s: %s", j->name,
			    reply_message(body, status, msg, sizeof(msg)));
		}
		return;
	}
}

static void
job_run(struct tui *t, struct cli *c, const struct job *j)
{
	const char *method = "GET";
	char *path = NULL, *body = NULL, *suffix;
	long timeout = GET_TIMEOUT_S;
	struct reply r;
	json_t *json = NULL;
	int rc;

	switch (j->kind) {
	case JOB_LIST_VMS:
		path = xstrdup("/v1/vms");
		break;
	case JOB_GET_VM:
		path = api_path("/v1/vms/", j->name, NULL);
		break;
	case JOB_LIST_IMAGES:
		path = xstrdup("/v1/images");
		break;
	case JOB_DOCTOR:
		path = xstrdup("/v1/doctor");
		break;
	case JOB_USAGE:
		path = api_path("/v1/vms/", j->name, "/usage");
		break;
	case JOB_ACTION:
		method = "POST";
		suffix = xasprintf("/%s", j->action);
		path = api_path("/v1/vms/", j->name, suffix);
		free(suffix);
		timeout = ACTION_TIMEOUT_S;
		break;
	case JOB_NAT:
		method = "PATCH";
		path = api_path("/v1/vms/", j->name, NULL);
		body = xasprintf("{\"nat\":%s}", j->nat ? "true" : "false");
		timeout = ACTION_TIMEOUT_S;
		break;
	case JOB_DELETE:
		method = "DELETE";
		path = api_path("/v1/vms/", j->name, "?force=true");
		timeout = ACTION_TIMEOUT_S;
		break;
	}
	rc = client_request(c, method, path, body, timeout,
	    CLIENT_SILENT | CLIENT_NO_AUTOSTART, &r);
	if (rc == CLI_EXIT_OK && r.len > 0) {
		json_error_t jerr;

		json = json_loadb(r.body, r.len, 0, &jerr);
	}
	tui_lock(t);
	if (rc == CLI_EXIT_OK)
		job_apply(t, j, r.status, json);
	else if (rc != CLI_EXIT_INTERRUPTED)
		tui_model_message(&t->m, true, "%s %s: cannot reach bangerd",
		    method, path);
	tui_unlock(t);
	if (json != NULL)
		json_decref(json);
	reply_free(&r);
	free(path);
	free(body);
}

static void *
request_main(void *arg)
{
	struct tui *t = arg;
	/* A struct cli of its own: its own curl handle, never autostart. */
	struct cli c = *t->cli;

	c.client = NULL;
	c.no_autostart = true;
	for (;;) {
		struct job *j;

		tui_lock(t);
		while (!t->quit && t->head == NULL)
			pthread_cond_wait(&t->cond, &t->mu);
		if (t->quit) {
			tui_unlock(t);
			break;
		}
		j = t->head;
		t->head = j->next;
		if (t->head == NULL)
			t->tail = NULL;
		tui_unlock(t);
		job_run(t, &c, j);
		free(j);
		tui_poke(t->wake[1]);
	}
	client_free(&c);
	return NULL;
}

/* ---- the event stream ---- */

static int
stream_event(json_t *ev, void *ctx)
{
	struct tui *t = ctx;
	char name[64];
	unsigned what;
	bool images_shown;

	tui_lock(t);
	what = tui_model_apply_event(&t->m, ev, name, sizeof(name));
	images_shown = t->m.images != NULL;
	tui_unlock(t);
	if (what & TUI_REFETCH_VM)
		tui_enqueue(t, JOB_GET_VM, name, NULL, false);
	if ((what & TUI_REFETCH_IMAGES) && images_shown)
		tui_enqueue(t, JOB_LIST_IMAGES, NULL, NULL, false);
	tui_poke(t->wake[1]);
	return 0;
}

static void
stream_status(enum events_status st, const char *why, int attempt,
    int retry_ms, void *ctx)
{
	struct tui *t = ctx;
	struct tui_model *m = &t->m;
	bool images_shown, doctor_shown;

	tui_lock(t);
	m->connected = st == EVENTS_CONNECTED;
	if (st == EVENTS_CONNECTED)
		snprintf(m->conn, sizeof(m->conn), "connected");
	else if (st == EVENTS_DISCONNECTED)
		snprintf(m->conn, sizeof(m->conn), "disconnected, retrying "
		    "(attempt %d, next in %.1f s): %s", attempt, retry_ms / 1000.0,
		    why);
	else
		snprintf(m->conn, sizeof(m->conn), "event stream failed: %s", why);
	out_clean(m->conn, m->conn, sizeof(m->conn));
	images_shown = m->images != NULL;
	doctor_shown = m->doctor != NULL;
	tui_unlock(t);
	/* Events may have been missed while away: read everything again. */
	if (st == EVENTS_CONNECTED) {
		tui_enqueue(t, JOB_LIST_VMS, NULL, NULL, false);
		if (images_shown)
			tui_enqueue(t, JOB_LIST_IMAGES, NULL, NULL, false);
		if (doctor_shown)
			tui_enqueue(t, JOB_DOCTOR, NULL, NULL, false);
	}
	tui_poke(t->wake[1]);
}

static void *
stream_main(void *arg)
{
	struct tui *t = arg;
	struct events_opts o;

	memset(&o, 0, sizeof(o));
	o.max_retries = -1;  /* the screen says what is going on */
	o.cancel_fd = t->cancel[0];
	o.silent = true;
	o.on_event = stream_event;
	o.on_status = stream_status;
	o.ctx = t;
	events_follow(t->cli, &o);
	return NULL;
}

bool
tui_workers_start(struct tui *t)
{
	sigset_t block, old_mask;

	/* Signals belong to the UI thread: workers start with them blocked,
	 * so SIGWINCH and Ctrl-C always interrupt the UI's poll(). */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGWINCH);
	sigaddset(&block, SIGTSTP);
	sigaddset(&block, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &block, &old_mask);
	t->req_running = pthread_create(&t->req_th, NULL, request_main, t) == 0;
	t->stream_running = t->req_running &&
	    pthread_create(&t->stream_th, NULL, stream_main, t) == 0;
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	return t->stream_running;
}

void
tui_workers_stop(struct tui *t)
{
	tui_lock(t);
	t->quit = true;
	pthread_cond_broadcast(&t->cond);
	tui_unlock(t);
	tui_poke(t->cancel[1]);
	/* Cuts short a request in flight (client.c's progress check). */
	cli_interrupted = 1;
	if (t->stream_running)
		pthread_join(t->stream_th, NULL);
	if (t->req_running)
		pthread_join(t->req_th, NULL);
	t->stream_running = t->req_running = false;
	cli_interrupted = 0;
	while (t->head != NULL) {
		struct job *j = t->head;

		t->head = j->next;
		free(j);
	}
	t->tail = NULL;
}
