/* operation.c - follow a long operation (create, start, stop, restart,
 * delete) until it succeeds or fails.
 *
 * The request returns 202 with an operation; GET /v1/operations/{id}?wait=N
 * then holds until the operation ends or N seconds pass.  While waiting the
 * stage is shown on stderr: one updating line on a TTY, "stage: X" lines
 * otherwise, nothing with --json or -q.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Short holds while stages are shown, so they show up as they happen;
 * longer ones when nobody watches. */
#define OP_WAIT_SHOWN_S  1
#define OP_WAIT_S        5
/* Never poll faster than this, even if bangerd answers ?wait at once. */
#define OP_MIN_POLL_MS   100L

struct progress {
	bool enabled;
	bool tty;
	const char *label;
	char stage[128];
};

static void
on_sigint(int sig)
{
	(void)sig;
	cli_interrupted = 1;
}

static void
progress_show(struct progress *p, json_t *op)
{
	const char *stage = jstr(op, "stage");
	json_t *pct = jobj(op, "progress");
	char buf[128], line[512];

	if (!p->enabled)
		return;
	if (stage == NULL || stage[0] == '\0')
		stage = jstr(op, "state");
	out_clean(stage ? stage : "?", buf, sizeof(buf));
	if (p->tty) {
		if (json_is_integer(pct))
			snprintf(line, sizeof(line), "%s: %s (%lld%%)", p->label, buf,
			    (long long)json_integer_value(pct));
		else
			snprintf(line, sizeof(line), "%s: %s", p->label, buf);
		out_status_line(line);
	} else if (strcmp(buf, p->stage) != 0) {
		fprintf(stderr, "stage: %s\n", buf);
	}
	snprintf(p->stage, sizeof(p->stage), "%s", buf);
}

static bool
op_finished(json_t *op)
{
	const char *state = jstr(op, "state");

	return state == NULL ||
	    (strcmp(state, "pending") != 0 && strcmp(state, "running") != 0);
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000L +
	    (now.tv_nsec - t0->tv_nsec) / 1000000L;
}

int
op_run(struct cli *cli, const char *method, const char *path, json_t *body,
    const char *label, bool no_wait, json_t **ret_op)
{
	struct sigaction sa, old_sa;
	struct progress p;
	struct reply r = { 0 };
	char id[256], *poll_path = NULL;
	const char *state;
	int rc, wait_s;

	rc = api_call(cli, method, path, body, &r);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (!json_is_object(r.json) || jstr(r.json, "id") == NULL) {
		out_status_clear();
		fprintf(stderr, "banger: bangerd did not answer %s %s with an "
		    "operation\n", method, path);
		rc = CLI_EXIT_SERVER;
		goto out;
	}
	snprintf(id, sizeof(id), "%s", jstr(r.json, "id"));
	if (no_wait) {
		if (cli->json)
			out_raw(&r);
		else
			printf("%s\n", id);
		goto out;
	}

	memset(&p, 0, sizeof(p));
	p.enabled = cli_chatty(cli);
	p.tty = isatty(STDERR_FILENO) == 1;
	p.label = label;
	wait_s = p.enabled ? OP_WAIT_SHOWN_S : OP_WAIT_S;
	{
		char *base = api_path("/v1/operations/", id, NULL);

		poll_path = xasprintf("%s?wait=%d", base, wait_s);
		free(base);
	}

	/* From here on the operation exists: Ctrl-C stops watching it, not
	 * the work. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_sa);

	while (!op_finished(r.json)) {
		struct timespec t0;

		progress_show(&p, r.json);
		if (cli_interrupted) {
			rc = CLI_EXIT_INTERRUPTED;
			out_status_clear();
			fputs("banger: interrupted\n", stderr);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		reply_free(&r);
		rc = api_call_ex(cli, "GET", poll_path, NULL, 0, wait_s + 60L, &r);
		if (rc != CLI_EXIT_OK)
			break;
		long spent = ms_since(&t0);
		if (!op_finished(r.json) && spent < OP_MIN_POLL_MS) {
			struct timespec pause = { 0,
			    (OP_MIN_POLL_MS - spent) * 1000000L };
			nanosleep(&pause, NULL);
		}
	}
	sigaction(SIGINT, &old_sa, NULL);
	out_status_clear();
	if (rc == CLI_EXIT_INTERRUPTED) {
		fprintf(stderr, "hint: operation %s goes on in bangerd; see GET "
		    "/v1/operations/%s\n", id, id);
		goto out;
	}
	if (rc != CLI_EXIT_OK)
		goto out;

	if (cli->json)
		out_raw(&r);
	state = jstr(r.json, "state");
	if (state != NULL && strcmp(state, "succeeded") == 0) {
		*ret_op = json_incref(r.json);
		goto out;
	}
	json_t *err = jobj(r.json, "error");
	if (json_is_object(err)) {
		rc = api_report_error(err, 0);
	} else {
		char buf[64];

		fprintf(stderr, "banger: operation %s ended in state '%s'\n", id,
		    out_clean(state ? state : "?", buf, sizeof(buf)));
		rc = CLI_EXIT_SERVER;
	}
out:
	free(poll_path);
	reply_free(&r);
	return rc;
}
