/* cmd_events.c - banger events: follow bangerd's event stream.
 *
 * One line per event for people (time, type, VM, a summary of its data),
 * or with --json each Event exactly as one JSON line.  Ctrl-C ends it with
 * status 0: stopping to watch is the normal way out.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The types openapi.yaml lists for Event.type. */
static const char *const event_types[] = {
	"vm.created", "vm.updated", "vm.state", "vm.deleted", "vm.health",
	"vm.exec",
	"image.registered", "image.deleted", "image.warmed", "image.cooled",
	"operation.created", "operation.updated", "operation.finished",
};
/* "vm.*" selects a family: the API matches types by prefix. */
static const char *const event_families[] = { "vm.", "image.", "operation." };

#define NTYPES (sizeof(event_types) / sizeof(event_types[0]))
#define NFAMILIES (sizeof(event_families) / sizeof(event_families[0]))

static int sigint_pipe[2] = { -1, -1 };

static void
on_sigint(int sig)
{
	int saved = errno;
	ssize_t n;

	(void)sig;
	cli_interrupted = 1;
	n = write(sigint_pipe[1], "x", 1);
	(void)n;
	errno = saved;
}

/* Check one --type entry and append its API form to 'out'.  Returns false
 * when it is not a known type or family. */
static bool
type_append(const char *t, char *out, size_t len)
{
	const char *api = NULL;
	size_t n = strlen(out);

	for (size_t i = 0; i < NTYPES && api == NULL; i++)
		if (strcmp(t, event_types[i]) == 0)
			api = event_types[i];
	for (size_t i = 0; i < NFAMILIES && api == NULL; i++) {
		size_t fl = strlen(event_families[i]);

		if (strncmp(t, event_families[i], fl) == 0 &&
		    strcmp(t + fl, "*") == 0)
			api = event_families[i];
	}
	if (api == NULL)
		return false;
	snprintf(out + n, len - n, "%s%s", n ? "," : "", api);
	return true;
}

static void
known_types(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NTYPES && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "",
		    event_types[i]);
}

/* ---- one line per event ---- */

static void
summary_vm(json_t *vm, char *buf, size_t len)
{
	json_t *spec = jobj(vm, WIRE_SPEC), *st = jobj(vm, WIRE_STATUS);
	char image[64], vcpus[16], mem[16], nat[8], state[32];

	snprintf(buf, len, "image %s, %s vcpus, %s MiB, nat %s, %s",
	    jtext(jobj(spec, WIRE_IMAGE), image, sizeof(image)),
	    jtext(jobj(spec, WIRE_VCPUS), vcpus, sizeof(vcpus)),
	    jtext(jobj(spec, WIRE_MEMORY_MIB), mem, sizeof(mem)),
	    jtext(jobj(spec, WIRE_NAT), nat, sizeof(nat)),
	    jtext(jobj(st, WIRE_STATE), state, sizeof(state)));
}

static void
summary_op(json_t *op, char *buf, size_t len)
{
	const char *state = jstr(op, WIRE_STATE);
	char id[64], kind[32], st[32], stage[64], pct[16], msg[256];

	jtext(jobj(op, WIRE_ID), id, sizeof(id));
	jtext(jobj(op, WIRE_KIND), kind, sizeof(kind));
	jtext(jobj(op, WIRE_STATE), st, sizeof(st));
	if (state != NULL && strcmp(state, "failed") == 0) {
		json_t *err = jobj(op, WIRE_ERROR);

		snprintf(buf, len, "%s %s failed: %s", id, kind,
		    jtext(jobj(err, WIRE_MESSAGE), msg, sizeof(msg)));
		return;
	}
	if (state != NULL && strcmp(state, "succeeded") == 0) {
		snprintf(buf, len, "%s %s succeeded", id, kind);
		return;
	}
	snprintf(buf, len, "%s %s %s: %s (%s%%)", id, kind, st,
	    jtext(jobj(op, WIRE_STAGE), stage, sizeof(stage)),
	    jtext(jobj(op, WIRE_PROGRESS), pct, sizeof(pct)));
}

static void
summary(const char *type, json_t *data, char *buf, size_t len)
{
	char a[128], b[256];

	if (strcmp(type, "vm.created") == 0 || strcmp(type, "vm.updated") == 0) {
		summary_vm(data, buf, len);
	} else if (strcmp(type, "vm.state") == 0) {
		snprintf(buf, len, "%s (was %s)",
		    jtext(jobj(data, WIRE_STATE), a, sizeof(a)),
		    jtext(jobj(data, "previous"), b, sizeof(b)));
	} else if (strcmp(type, "vm.deleted") == 0) {
		snprintf(buf, len, "deleted");
	} else if (strcmp(type, "vm.health") == 0) {
		const char *reason = jstr(data, "reason");

		jtext(jobj(data, WIRE_STATUS), a, sizeof(a));
		if (reason != NULL && reason[0] != '\0')
			snprintf(buf, len, "%s (%s)", a, out_clean(reason, b,
			    sizeof(b)));
		else
			snprintf(buf, len, "%s", a);
	} else if (strcmp(type, "vm.exec") == 0) {
		json_t *argv = jobj(data, "argv");
		size_t i;
		json_t *v;
		size_t used = (size_t)snprintf(buf, len, "exec");
		json_array_foreach(argv, i, v) {
			if (used >= len)
				break;
			used += (size_t)snprintf(buf + used, len - used, " %s",
			    out_clean(json_string_value(v) ? json_string_value(v) :
			    "", a, sizeof(a)));
		}
	} else if (strcmp(type, "image.registered") == 0) {
		snprintf(buf, len, "image %s (%s)",
		    jtext(jobj(data, WIRE_NAME), a, sizeof(a)),
		    jtext(jobj(data, "source"), b, sizeof(b)));
	} else if (strcmp(type, "image.deleted") == 0 ||
	    strcmp(type, "image.warmed") == 0) {
		snprintf(buf, len, "image %s",
		    jtext(jobj(data, WIRE_NAME), a, sizeof(a)));
	} else if (strcmp(type, "image.cooled") == 0) {
		snprintf(buf, len, "image %s (%s)",
		    jtext(jobj(data, WIRE_NAME), a, sizeof(a)),
		    jtext(jobj(data, "why"), b, sizeof(b)));
	} else if (strncmp(type, "operation.", 10) == 0) {
		summary_op(data, buf, len);
	} else {
		/* A type this banger does not know: its data, compact. */
		jtext(data, buf, len);
	}
}

struct follow {
	struct cli *cli;
	bool json;
	bool chatty;
	int failed_write;
};

static int
on_event(json_t *ev, void *ctx)
{
	struct follow *f = ctx;
	char type[64], when[64], vm[80], sum[512];

	if (f->json) {
		char *s = json_dumps(ev, JSON_COMPACT);

		if (s == NULL)
			return 1;
		printf("%s\n", s);
		free(s);
	} else {
		jtext(jobj(ev, WIRE_TYPE), type, sizeof(type));
		summary(type, jobj(ev, WIRE_DATA), sum, sizeof(sum));
		printf("%-20s  %-18s  %-16s  %s\n",
		    jtext(jobj(ev, "time"), when, sizeof(when)), type,
		    jtext(jobj(ev, WIRE_VM), vm, sizeof(vm)), sum);
	}
	/* Each event as it happens, even into a pipe. */
	if (fflush(stdout) != 0) {
		f->failed_write = errno;
		return 1;
	}
	return 0;
}

static void
on_status(enum events_status st, const char *why, int attempt, int retry_ms,
    void *ctx)
{
	struct follow *f = ctx;
	char buf[512];

	if (!f->chatty)
		return;
	if (st == EVENTS_DISCONNECTED) {
		out_status_clear();
		fprintf(stderr, "banger: event stream lost (%s); reconnecting in "
		    "%.1f s (attempt %d of %d)\n", out_clean(why, buf,
		    sizeof(buf)), retry_ms / 1000.0, attempt, EVENTS_RETRIES);
	} else if (st == EVENTS_CONNECTED && strcmp(why, "reconnected") == 0) {
		out_status_clear();
		fputs("banger: event stream reconnected\n", stderr);
	}
}

int
cmd_events(struct cli *cli, const struct args *a)
{
	const struct command *cmd = a->cmd;
	const char *const *types, *vm = args_str(a, "--vm");
	int ntypes = args_list(a, "--type", &types);
	struct events_opts o;
	struct follow f;
	struct sigaction sa, old_sa;
	struct reply r = { 0 };
	char filter[1024] = "";
	int rc;

	for (int i = 0; i < ntypes; i++) {
		char list[1024], *save = NULL;
		bool any = false;

		/* --type a,b is the same as --type a --type b. */
		snprintf(list, sizeof(list), "%s", types[i]);
		for (char *t = strtok_r(list, ",", &save); t != NULL;
		    t = strtok_r(NULL, ",", &save)) {
			if (!type_append(t, filter, sizeof(filter))) {
				char known[512];

				known_types(known, sizeof(known));
				return usage_error(cmd, "unknown event type '%s' "
				    "(known: %s; or vm.*, image.*, operation.*)", t,
				    known);
			}
			any = true;
		}
		if (!any)
			return usage_error(cmd, "--type needs an event type");
	}
	if (vm != NULL && vm[0] == '\0')
		return usage_error(cmd, "--vm needs a VM name");

	/* A plain request first: it starts bangerd when allowed and reports
	 * an unreachable one the usual way. */
	rc = api_call(cli, "GET", "/v1/healthz", NULL, &r);
	reply_free(&r);
	if (rc != CLI_EXIT_OK)
		return rc;

	if (pipe2(sigint_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		perror("banger: pipe");
		return CLI_EXIT_ERROR;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_sa);

	memset(&f, 0, sizeof(f));
	f.cli = cli;
	f.json = cli->json;
	f.chatty = !cli->quiet;
	memset(&o, 0, sizeof(o));
	o.types = filter[0] ? filter : NULL;
	o.vm = vm;
	o.cancel_fd = sigint_pipe[0];
	o.on_event = on_event;
	o.on_status = on_status;
	o.ctx = &f;
	rc = events_follow(cli, &o);

	sigaction(SIGINT, &old_sa, NULL);
	close(sigint_pipe[0]);
	close(sigint_pipe[1]);
	sigint_pipe[0] = sigint_pipe[1] = -1;
	if (f.failed_write != 0) {
		if (f.failed_write == EPIPE)
			return CLI_EXIT_OK;  /* the reader went away: done */
		fprintf(stderr, "banger: stdout: %s\n", strerror(f.failed_write));
		return CLI_EXIT_ERROR;
	}
	/* Ctrl-C is how one stops watching. */
	if (rc == CLI_EXIT_INTERRUPTED)
		rc = CLI_EXIT_OK;
	return rc;
}
