/* op.c - follow long operations (create, start, stop, restart, delete,
 * bulk actions, image builds) to their end.
 *
 * A request for long work returns 202 with an operation.  op_follow() is
 * the one place that watches it and hands out snapshots; everything else
 * (the progress line, Ctrl-C, --cancel, the final report) sits on top.
 * While someone watches the stages it follows GET /v1/events (operation
 * events carry the operation, so every stage change is seen), reading the
 * operation once when the stream opens; when the stream cannot be had it
 * polls GET /v1/operations/{id} every 200 ms instead.  When nobody watches
 * (--json, -q) it holds ?wait=5 requests.
 *
 * Ctrl-C while following stops following: the operation goes on in
 * bangerd and banger says how to find it again (exit 130).  With
 * --cancel, the first Ctrl-C asks bangerd to cancel the operation and
 * keeps following it to its end; a second one stops following.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define OP_POLL_MS  200L  /* between polls, and never faster */
#define OP_HOLD_S   5     /* ?wait when no stages are shown */

struct progress {
	bool enabled;       /* show stages at all (not --json, not -q) */
	bool tty;           /* one updating line, else a line per stage */
	const char *label;  /* "creating vm 'web'" */
	char shown[256];    /* what was shown last */
	bool noted;         /* the operation's note was shown */
};

static void
on_sigint(int sig)
{
	(void)sig;
	cli_interrupted = 1;
}

static bool
op_finished(json_t *op)
{
	const char *state = jstr(op, WIRE_STATE);

	return state == NULL ||
	    (strcmp(state, "pending") != 0 && strcmp(state, "running") != 0);
}

/* Following through GET /v1/events: every stage as bangerd reports it. */
struct ev_follow {
	struct cli *cli;
	const char *id;
	op_snapshot_fn fn;
	void *ctx;
	json_t *final;
	int rc;            /* from fn or the snapshot request */
	int stop_fd;       /* written to end the stream from on_status */
};

static int
ev_snapshot(struct ev_follow *f, json_t *op)
{
	if (f->final != NULL)
		return 1;
	if (f->fn != NULL && (f->rc = f->fn(op, f->ctx)) != 0)
		return 1;
	if (op_finished(op)) {
		f->final = json_incref(op);
		return 1;
	}
	return 0;
}

static int
ev_on_event(json_t *ev, void *arg)
{
	struct ev_follow *f = arg;
	const char *opid = jstr(ev, WIRE_OPERATION);
	json_t *op = jobj(ev, WIRE_DATA);

	if (f->final != NULL)
		return 1;
	if (opid == NULL || strcmp(opid, f->id) != 0 || !json_is_object(op) ||
	    jstr(op, WIRE_STATE) == NULL)
		return 0;
	return ev_snapshot(f, op);
}

/* Once subscribed (again), read the operation: it may have ended before
 * the stream was open, and then no event will say so.  A snapshot of a
 * running operation is not shown: events already on their way may be
 * older than it, and would then show stages going backwards. */
static void
ev_on_status(enum events_status st, const char *why, int attempt,
    int retry_ms, void *arg)
{
	struct ev_follow *f = arg;
	char *path;
	struct reply r = { 0 };

	(void)why, (void)attempt, (void)retry_ms;
	if (st != EVENTS_CONNECTED || f->final != NULL || f->rc != 0)
		return;
	path = api_path("/v1/operations/", f->id, NULL);
	f->rc = api_call_ex(f->cli, "GET", path, NULL, 0, API_TIMEOUT_S, &r);
	free(path);
	if (f->rc == CLI_EXIT_OK && json_is_object(r.json) &&
	    jstr(r.json, WIRE_STATE) != NULL) {
		if (!op_finished(r.json)) {
			reply_free(&r);
			return;
		}
		(void)ev_snapshot(f, r.json);
	} else if (f->rc == CLI_EXIT_OK) {
		f->rc = CLI_EXIT_SERVER;
	}
	reply_free(&r);
	/* Done (or failed): end the stream. */
	if (write(f->stop_fd, "x", 1) < 0 && f->rc == CLI_EXIT_OK)
		f->rc = CLI_EXIT_ERROR;
}

/* 1 when the events path decided the outcome (rc in *ret_rc), 0 when the
 * caller should poll instead (bangerd without events, or the stream could
 * not be opened). */
static int
op_follow_events(struct cli *cli, const char *id, op_snapshot_fn fn,
    void *ctx, json_t **ret_final, int *ret_rc)
{
	struct ev_follow f = { .cli = cli, .id = id, .fn = fn, .ctx = ctx };
	struct events_opts o = { 0 };
	int pfd[2], rc;

	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0)
		return 0;
	f.stop_fd = pfd[1];
	o.types = "operation.updated,operation.finished";
	/* The operation started before the stream opened: replay the ring so
	 * that its first stages (a fast one under load) are seen too, in
	 * order.  Events of other operations are skipped (ev_on_event). */
	o.since = "0";
	o.max_retries = 3;
	o.cancel_fd = pfd[0];
	o.silent = true;
	o.on_event = ev_on_event;
	o.on_status = ev_on_status;
	o.ctx = &f;
	rc = events_follow(cli, &o);
	close(pfd[0]);
	close(pfd[1]);
	if (f.final != NULL) {
		*ret_final = f.final;
		*ret_rc = CLI_EXIT_OK;
		return 1;
	}
	if (f.rc != CLI_EXIT_OK) {
		*ret_rc = f.rc;
		return 1;
	}
	if (rc == CLI_EXIT_INTERRUPTED && cli_interrupted) {
		*ret_rc = rc;
		return 1;
	}
	/* The stream failed or ended without the operation's end: fall back
	 * to polling, which also reports bangerd being gone properly. */
	return 0;
}

int
op_follow(struct cli *cli, const char *id, bool fine, op_snapshot_fn fn,
    void *ctx, json_t **ret_final)
{
	char *base = api_path("/v1/operations/", id, NULL);
	char *path = fine ? xstrdup(base) :
	    xasprintf("%s?wait=%d", base, OP_HOLD_S);
	struct reply r = { 0 };
	int rc;

	/* Stages shown: follow the event stream, which carries every stage
	 * change (polling would miss the short ones). */
	if (fine &&
	    op_follow_events(cli, id, fn, ctx, ret_final, &rc)) {
		free(path);
		free(base);
		return rc;
	}
	for (;;) {
		long long t0;

		if (cli_interrupted) {
			rc = CLI_EXIT_INTERRUPTED;
			break;
		}
		t0 = time_mono_ms();
		rc = api_call_ex(cli, "GET", path, NULL, 0, OP_HOLD_S + 60L, &r);
		if (rc != CLI_EXIT_OK)
			break;
		if (!json_is_object(r.json) ||
		    jstr(r.json, WIRE_STATE) == NULL) {
			out_status_clear();
			fprintf(stderr, "banger: bangerd's answer for operation %s "
			    "is not an operation\n", id);
			rc = CLI_EXIT_SERVER;
			break;
		}
		if (fn != NULL && (rc = fn(r.json, ctx)) != 0)
			break;
		if (op_finished(r.json)) {
			*ret_final = json_incref(r.json);
			break;
		}
		reply_free(&r);
		long spent = (long)(time_mono_ms() - t0);
		if (spent < OP_POLL_MS) {
			struct timespec pause = { 0, (OP_POLL_MS - spent) * 1000000L };

			/* SIGINT cuts the pause short (no SA_RESTART). */
			nanosleep(&pause, NULL);
		}
	}
	reply_free(&r);
	free(path);
	free(base);
	return rc;
}

static int
progress_show(json_t *op, void *ctx)
{
	struct progress *p = ctx;
	const char *stage = jstr(op, WIRE_STAGE);
	json_t *pct = jobj(op, WIRE_PROGRESS);
	char buf[128], line[256];

	if (!p->enabled)
		return 0;
	/* The note once, on its own line (e.g. why a create booted cold). */
	const char *note = jstr(op, WIRE_NOTE);
	if (note != NULL && note[0] != '\0' && !p->noted) {
		if (p->tty && p->shown[0] != '\0')
			out_status_line("");
		char nbuf[320];

		fprintf(stderr, "note: %s\n", out_clean(note, nbuf, sizeof(nbuf)));
		p->noted = true;
		p->shown[0] = '\0';
	}
	if (stage == NULL || stage[0] == '\0')
		stage = jstr(op, WIRE_STATE);
	out_clean(stage ? stage : "?", buf, sizeof(buf));
	if (p->tty) {
		if (json_is_integer(pct))
			snprintf(line, sizeof(line), "%s: %s (%lld%%)", p->label, buf,
			    (long long)json_integer_value(pct));
		else
			snprintf(line, sizeof(line), "%s: %s", p->label, buf);
		if (strcmp(line, p->shown) != 0)
			out_status_line(line);
	} else {
		/* A line per stage; percentages alone do not make one. */
		snprintf(line, sizeof(line), "%s", buf);
		if (strcmp(line, p->shown) != 0) {
			if (json_is_integer(pct))
				fprintf(stderr, "stage: %s (%lld%%)\n", buf,
				    (long long)json_integer_value(pct));
			else
				fprintf(stderr, "stage: %s\n", buf);
		}
	}
	snprintf(p->shown, sizeof(p->shown), "%s", line);
	return 0;
}

/* POST /v1/operations/{id}/cancel.  An operation that has just finished
 * is no error: following it shows how it ended. */
static int
cancel_request(struct cli *cli, const char *id)
{
	char *path = api_path("/v1/operations/", id, "/cancel");
	struct reply r = { 0 };
	int rc;

	rc = client_request(cli, "POST", path, NULL, API_TIMEOUT_S,
	    CLIENT_NO_AUTOSTART, &r);
	if (rc == CLI_EXIT_OK && r.status != 202 && r.status != 409) {
		json_error_t jerr;
		json_t *body = r.body ? json_loadb(r.body, r.len, 0, &jerr) : NULL;

		rc = api_report_error(body, r.status);
		if (body != NULL)
			json_decref(body);
	}
	reply_free(&r);
	free(path);
	return rc;
}

/* Follow operation 'id' (its first snapshot, if known, in 'first') with
 * progress until it ends; handles Ctrl-C as the file comment says.
 * Returns 0 with *ret_final, or an exit status (explained); *ret_cancelled
 * tells whether banger asked for a cancel. */
static int
op_watch(struct cli *cli, const char *id, json_t *first, struct progress *p,
    bool cancel, json_t **ret_final, bool *ret_cancelled)
{
	struct sigaction sa, old_sa;
	char idc[128];
	int rc;

	out_clean(id, idc, sizeof(idc));
	*ret_cancelled = false;
	if (first != NULL) {
		progress_show(first, p);
		if (op_finished(first)) {
			*ret_final = json_incref(first);
			return CLI_EXIT_OK;
		}
	}
	/* From here on the operation exists: Ctrl-C is about watching it. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_sa);
	for (;;) {
		rc = op_follow(cli, id, p->enabled, progress_show, p, ret_final);
		if (rc != CLI_EXIT_INTERRUPTED)
			break;
		out_status_clear();
		if (!cancel || *ret_cancelled) {
			if (*ret_cancelled) {
				fprintf(stderr, "banger: stopped waiting; operation %s "
				    "was asked to cancel and ends in bangerd\n", idc);
				fprintf(stderr, "hint: follow it with 'banger operation "
				    "wait %s'\n", idc);
			} else {
				fprintf(stderr, "banger: stopped waiting; operation %s "
				    "goes on in bangerd\n", idc);
				fprintf(stderr, "hint: follow it with 'banger operation "
				    "wait %s', cancel it with 'banger operation cancel "
				    "%s'\n", idc, idc);
			}
			break;
		}
		cli_interrupted = 0;
		*ret_cancelled = true;
		fprintf(stderr, "banger: cancelling operation %s (Ctrl-C again "
		    "to stop waiting)\n", idc);
		p->shown[0] = '\0';
		rc = cancel_request(cli, id);
		/* A second Ctrl-C during the request: the next turn says so. */
		if (rc != CLI_EXIT_OK && rc != CLI_EXIT_INTERRUPTED)
			break;
	}
	sigaction(SIGINT, &old_sa, NULL);
	cli_interrupted = 0;
	out_status_clear();
	return rc;
}

/* The end of a followed operation: --json body, and on failure the error
 * and its exit status (130 when banger cancelled it itself). */
static int
op_outcome(struct cli *cli, const char *id, json_t *final, bool cancelled)
{
	const char *state = jstr(final, WIRE_STATE);
	json_t *err = jobj(final, WIRE_ERROR);

	if (cli->json) {
		char *text = json_dumps(final, JSON_COMPACT);

		if (text != NULL)
			printf("%s\n", text);
		free(text);
		fflush(stdout);
	}
	if (state != NULL && strcmp(state, "succeeded") == 0)
		return CLI_EXIT_OK;
	if (json_is_object(err)) {
		int rc = api_report_error(err, 0);
		const char *code = jstr(err, WIRE_CODE);

		if (cancelled && code != NULL && strcmp(code, "cancelled") == 0)
			return CLI_EXIT_INTERRUPTED;
		return rc;
	}
	char buf[64];

	fprintf(stderr, "banger: operation %s ended in state '%s'\n", id,
	    out_clean(state ? state : "?", buf, sizeof(buf)));
	return CLI_EXIT_SERVER;
}

static void
progress_init(struct cli *cli, struct progress *p, const char *label)
{
	memset(p, 0, sizeof(*p));
	p->enabled = cli_chatty(cli);
	p->tty = isatty(STDERR_FILENO) == 1;
	p->label = label;
}

int
op_wait(struct cli *cli, const char *id, json_t *first,
    const struct op_opts *o, json_t **ret_final)
{
	struct progress p;
	json_t *final = NULL;
	bool cancelled;
	int rc;

	progress_init(cli, &p, o->label);
	rc = op_watch(cli, id, first, &p, o->cancel, &final, &cancelled);
	if (rc == CLI_EXIT_OK)
		rc = op_outcome(cli, id, final, cancelled);
	if (rc == CLI_EXIT_OK)
		*ret_final = final;
	else if (final != NULL)
		json_decref(final);
	return rc;
}

int
op_run(struct cli *cli, const char *method, const char *path, json_t *body,
    const struct op_opts *o, json_t **ret_op)
{
	struct reply r = { 0 };
	char id[256];
	int rc;

	rc = api_call(cli, method, path, body, &r);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (!json_is_object(r.json) || jstr(r.json, WIRE_ID) == NULL) {
		out_status_clear();
		fprintf(stderr, "banger: bangerd did not answer %s %s with an "
		    "operation\n", method, path);
		rc = CLI_EXIT_SERVER;
		goto out;
	}
	snprintf(id, sizeof(id), "%s", jstr(r.json, WIRE_ID));
	if (o->no_wait) {
		if (cli->json)
			out_raw(&r);
		else
			printf("%s\n", id);
		goto out;
	}
	rc = op_wait(cli, id, r.json, o, ret_op);
out:
	reply_free(&r);
	return rc;
}
