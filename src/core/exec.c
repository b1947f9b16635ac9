/* exec.c - a command run in a VM by its guest agent (POST /exec), its
 * output read as it comes; or, with tty, on a pseudo-terminal over the
 * agent's upgraded connection, relayed as it is (POST /exec?tty=1, the
 * frame types in agent/exec_tty.c and openapi.yaml).
 *
 * The request to the agent carries argv, env, cwd, user and timeout in
 * its query (percent-encoded, so at most EXEC_ARGS_MAX bytes: the agent
 * reads a head of 8 KiB) and stdin as its body.  The agent answers with
 * frames: a byte of type (1 stdout, 2 stderr, 3 exit), three zero bytes,
 * a 4-byte big-endian length and the payload; the exit frame's payload
 * is "exit_code=N\nsignal=S\ntimed_out=0|1\n".  Closing the stream before
 * the exit frame makes the agent kill the command's process group. */
#include "core/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define EXEC_FRAME_MAX (1 << 20)    /* a payload larger than this is bad */

struct exec_stream {
	struct vsock_stream vs;
	char *payload;
	bool ended;
};

/* " KEY=VALUE" appended, VALUE percent-encoded (RFC 3986 unreserved
 * kept); the first with '?', the rest with '&'. */
void
agent_query_add(FILE *f, bool *first, const char *key, const char *value)
{
	fprintf(f, "%c%s=", *first ? '?' : '&', key);
	*first = false;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL)
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
}

/* The agent's target for req (malloc'd), or NULL when it is too long. */
static char *
exec_target(const struct exec_req *req, struct bn_err *err)
{
	char *buf = NULL, n[16];
	size_t len = 0;
	bool first = true;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL) {
		bn_fail(err, BN_ESYS, errno, "open_memstream");
		return NULL;
	}
	fputs("/exec", f);
	for (size_t i = 0; i < req->argc; i++)
		agent_query_add(f, &first, "arg", req->argv[i]);
	for (size_t i = 0; i < req->nenv; i++)
		agent_query_add(f, &first, "env", req->env[i]);
	if (req->cwd != NULL)
		agent_query_add(f, &first, "cwd", req->cwd);
	if (req->user != NULL)
		agent_query_add(f, &first, "user", req->user);
	snprintf(n, sizeof(n), "%d", req->timeout_s);
	agent_query_add(f, &first, "timeout_s", n);
	if (req->tty) {
		agent_query_add(f, &first, "tty", "1");
		snprintf(n, sizeof(n), "%d", req->rows > 0 ? req->rows : 24);
		agent_query_add(f, &first, "rows", n);
		snprintf(n, sizeof(n), "%d", req->cols > 0 ? req->cols : 80);
		agent_query_add(f, &first, "cols", n);
	}
	fclose(f);
	if (len > EXEC_ARGS_MAX) {
		bn_fail(err, BN_EINVAL, 0, "argv, env, cwd and user take %zu "
		    "bytes encoded; at most %d", len, EXEC_ARGS_MAX);
		bn_err_hint(err, "pass long input on stdin instead");
		free(buf);
		return NULL;
	}
	return buf;
}

/* The checks both kinds of exec share, then the agent's target: the VM
 * runs and its agent can run the command (with req->tty: on a terminal). */
static char *
exec_prepare(struct core *c, const char *name, const struct exec_req *req,
    struct vmm_params *p, struct bn_err *err)
{
	struct vm vm;
	bool reached;

	if (vm_get_running(c, name, &vm, err) < 0)
		return NULL;
	if (req->argc == 0) {
		bn_fail(err, BN_EINVAL, 0, "argv is empty");
		return NULL;
	}
	if (req->stdin_len > EXEC_STDIN_MAX) {
		bn_fail(err, BN_EINVAL, 0, "stdin is %zu bytes; at most %d",
		    req->stdin_len, EXEC_STDIN_MAX);
		return NULL;
	}
	if (vm_ctl_params(c, &vm, p, err) < 0)
		return NULL;
	unsigned caps = agent_caps(c, p->vsock_uds, &reached);
	if (!reached) {
		bn_fail(err, BN_EVMM, 0, "vm '%s': its agent does not answer",
		    name);
		return NULL;
	}
	if (!(caps & VSOCK_CAP_EXEC)) {
		bn_fail(err, BN_EUNSUPPORTED, 0, "vm '%s': its agent cannot run "
		    "commands (an image from before exec)", name);
		bn_err_hint(err, "rebuild the image, or use banger vm ssh");
		return NULL;
	}
	if (req->tty && !(caps & VSOCK_CAP_EXEC_TTY)) {
		bn_fail(err, BN_EUNSUPPORTED, 0, "vm '%s': its agent cannot run "
		    "commands on a terminal (an image from before exec -t)", name);
		bn_err_hint(err, "rebuild the image, run it without -t, or use "
		    "banger vm ssh");
		return NULL;
	}
	return exec_target(req, err);
}

/* The agent's refusal (a status other than the one asked for). */
static int
exec_refusal(struct vsock_stream *vs, const char *name, struct bn_err *err)
{
	char msg[256];

	vsock_stream_why(vs, msg, sizeof(msg));
	return bn_fail(err, vs->status == 400 ? BN_EINVAL : vs->status == 403 ?
	    BN_EFORBIDDEN : BN_EVMM, 0, "vm '%s': the agent refused the "
	    "command (%d): %s", name, vs->status, msg);
}

/* vm.exec, the audit trail: who ran what where, and how. */
static void
exec_event(struct core *c, const char *name, const struct exec_req *req)
{
	json_t *args = json_array();

	for (size_t i = 0; i < req->argc; i++)
		json_array_append_new(args, json_string(req->argv[i]));
	log_info("vm '%s': exec%s %s (uid %d)", name, req->tty ? " -t" : "",
	    req->argv[0], req->peer_uid);
	core_emit(c, "vm.exec", name, NULL, json_pack("{s:o, s:s?, s:s?, s:i, "
	    "s:b}", "argv", args, "user", req->user, "cwd", req->cwd,
	    "peer_uid", req->peer_uid, "tty", req->tty));
}

int
core_vm_exec(struct core *c, const char *name, const struct exec_req *req,
    struct exec_stream **ret, struct bn_err *err)
{
	struct vmm_params p;
	struct exec_stream *s;
	char *target;

	if (req->tty)
		return bn_fail(err, BN_EINVAL, 0, "a terminal session is an "
		    "upgraded connection");
	if ((target = exec_prepare(c, name, req, &p, err)) == NULL)
		return -1;
	s = xcalloc(1, sizeof(*s));
	int rc = vsock_agent_open(p.vsock_uds, agent_port(c), "POST",
	    target, req->stdin_data, req->stdin_len, 5000, &s->vs, err);
	free(target);
	if (rc < 0) {
		free(s);
		return -1;
	}
	if (s->vs.status != 200) {
		exec_refusal(&s->vs, name, err);
		core_exec_close(s);
		return -1;
	}
	exec_event(c, name, req);
	*ret = s;
	return 0;
}

int
core_vm_exec_tty(struct core *c, const char *name, const struct exec_req *req,
    struct guest_conn **ret, struct bn_err *err)
{
	struct vmm_params p;
	struct guest_conn *g;
	char *target;

	if (!req->tty || req->stdin_len > 0)
		return bn_fail(err, BN_EINVAL, 0, "a terminal session takes its "
		    "input in frames");
	if ((target = exec_prepare(c, name, req, &p, err)) == NULL)
		return -1;
	g = xcalloc(1, sizeof(*g));
	g->c = c;
	snprintf(g->vm, sizeof(g->vm), "%s", name);
	int rc = vsock_agent_upgrade(p.vsock_uds, agent_port(c), target,
	    FWD_DIAL_MS, &g->vs, err);
	free(target);
	if (rc < 0) {
		free(g);
		return -1;
	}
	if (g->vs.status != 101) {
		exec_refusal(&g->vs, name, err);
		core_guest_conn_close(g);
		return -1;
	}
	exec_event(c, name, req);
	*ret = g;
	return 0;
}

/* Exactly len bytes of the stream: 0, or what vsock_stream_read said. */
static int
read_full(struct exec_stream *s, void *buf, size_t len, int watch_fd)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = vsock_stream_read(&s->vs, (char *)buf + got, len - got,
		    -1, watch_fd);
		if (n <= 0)
			return n == 0 ? -4 : (int)n;
		got += (size_t)n;
	}
	return 0;
}

static void
parse_exit(const char *text, struct exec_frame *f)
{
	const char *v;

	f->exit_code = -1;
	if ((v = strstr(text, "exit_code=")) != NULL)
		f->exit_code = atoi(v + 10);
	if ((v = strstr(text, "signal=")) != NULL)
		f->signal = atoi(v + 7);
	if ((v = strstr(text, "timed_out=")) != NULL)
		f->timed_out = v[10] == '1';
}

int
core_exec_next(struct exec_stream *s, int watch_fd, struct exec_frame *f,
    struct bn_err *err)
{
	unsigned char h[8];

	memset(f, 0, sizeof(*f));
	free(s->payload);
	s->payload = NULL;
	if (s->ended)
		return 0;
	int rc = read_full(s, h, sizeof(h), watch_fd);
	if (rc == -3)
		return -2;
	if (rc < 0)
		return bn_fail(err, BN_EVMM, 0, "the agent's stream ended before "
		    "the command's exit");
	size_t len = (size_t)h[4] << 24 | (size_t)h[5] << 16 |
	    (size_t)h[6] << 8 | h[7];
	if (h[0] < 1 || h[0] > 3 || len > EXEC_FRAME_MAX)
		return bn_fail(err, BN_EVMM, 0, "the agent sent a bad frame "
		    "(type %u, %zu bytes)", h[0], len);
	s->payload = xmalloc(len + 1);
	rc = read_full(s, s->payload, len, watch_fd);
	if (rc == -3)
		return -2;
	if (rc < 0)
		return bn_fail(err, BN_EVMM, 0, "the agent's stream ended in a "
		    "frame");
	s->payload[len] = '\0';
	f->kind = (enum exec_kind)h[0];
	f->data = s->payload;
	f->len = len;
	if (f->kind == EXEC_EXIT) {
		parse_exit(s->payload, f);
		s->ended = true;
	}
	return 1;
}

void
core_exec_close(struct exec_stream *s)
{
	if (s == NULL)
		return;
	vsock_stream_close(&s->vs);
	free(s->payload);
	free(s);
}
