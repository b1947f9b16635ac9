/* exec.c - POST /exec: run one non-interactive command for bangerd and
 * stream its output back (with tty=1 an interactive one: exec_tty.c).
 *
 *   POST /exec?arg=A0&arg=A1&env=K%3DV&cwd=/dir&user=NAME&timeout_s=N
 *
 * The query is percent-encoded ('+' is a space): `arg` repeated in order
 * (at least one; argv[0] is looked up in PATH as execvp does), `env`
 * repeated (K=V added to, or replacing, PATH, HOME, USER, LOGNAME, SHELL
 * and TERM=dumb), `cwd` (absolute; default the user's home, else /),
 * `user` (default root) and `timeout_s` (0..86400, 0 none); `tty=1`,
 * `rows` and `cols` ask for a terminal session instead (exec_tty.c).  The
 * request body is the command's stdin, closed after it.
 *
 * The reply is 200, application/vnd.banger.exec-stream: frames in the
 * layout of Docker's multiplexed attach streams, each written as output
 * comes (nothing is buffered whole):
 *
 *   byte 0 type (1 stdout, 2 stderr, 3 exit), bytes 1-3 zero,
 *   bytes 4-7 payload length (big-endian), payload
 *
 * The exit frame is the last one: "exit_code=N\nsignal=S\ntimed_out=0|1\n"
 * (exit_code -1 when a signal killed it, signal 0 when it exited).  A
 * command that cannot be started gets what a shell would give: a stderr
 * frame saying why and exit_code 127 (not found) or 126.
 *
 * The command runs in a session (and process group) of its own.  It is
 * the whole group that is killed: SIGKILL when the client goes away;
 * SIGTERM at the timeout, SIGKILL 2 s later; SIGKILL when, 1 s after the
 * command exited, something it left behind still holds its stdout or
 * stderr.  Background processes that let go of the pipes are left alone,
 * as over ssh.
 *
 * Reaping.  The agent has no SIGCHLD handler and keeps SIGCHLD at SIG_DFL
 * (main() resets an inherited SIG_IGN, under which the kernel would reap
 * children itself and their status would be lost), and every part of the
 * agent that forks waits for its own child by pid (power.c, identity.c,
 * here); nothing waits for -1, which would take another thread's child.
 * This child's exit is seen with waitid(WNOWAIT), which leaves it a
 * zombie: its pid, the group's id, cannot be reused until the final
 * waitpid(), so a kill(-pgid) before that never reaches a stranger.
 * Orphans the command leaves behind belong to init, not to the agent.
 *
 * Outside a guest the command would run on the host: refused (403)
 * unless the agent was started with --allow-exec.  Each exec runs in its
 * connection's thread; other connections are served meanwhile.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"
#include "exec.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXEC_MAX_ARGS 4096
#define EXEC_MAX_BYTES (1024 * 1024)    /* argv and environment together */
#define EXEC_MAX_TIMEOUT_S 86400
#define EXEC_MAX_WINSIZE 9999           /* rows, cols */
#define EXEC_TERM_GRACE_MS 2000
#define EXEC_DRAIN_MS 1000              /* the pipes, after the exit */
#define EXEC_TICK_MS 50                 /* without a pidfd */
#define EXEC_READ_MAX (64 * 1024)       /* one frame's payload */
#define EXEC_CONTENT_TYPE "application/vnd.banger.exec-stream"
enum { FRAME_STDOUT = 1, FRAME_STDERR = 2, FRAME_EXIT = 3 };
#define FRAME_HEAD 8

static int
strv_push(struct strv *s, char *str)
{
	if (s->n + 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		char **nv = realloc(s->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
	return 0;
}

static void
strv_free(struct strv *s, size_t from)
{
	for (size_t i = from; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void
spec_free(struct exec_spec *sp)
{
	strv_free(&sp->args, 1);
	strv_free(&sp->env, 0);
	free(sp->cwd);
	free(sp->user_name);
}

/* Set K=V (kv, owned: freed on failure too) in env, replacing K. */
static int
env_set(struct strv *env, char *kv)
{
	size_t kl = (size_t)(strchr(kv, '=') - kv);

	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], kv, kl + 1) == 0) {
			free(env->v[i]);
			env->v[i] = kv;
			return 0;
		}
	if (strv_push(env, kv) < 0) {
		free(kv);
		return -1;
	}
	return 0;
}

static int
env_setf(struct strv *env, const char *k, const char *v)
{
	char *kv;

	if (asprintf(&kv, "%s=%s", k, v) < 0)
		return -1;
	return env_set(env, kv);
}

/* The decimal number in s, within [0, max]; -1 otherwise. */
static long
parse_count(const char *s, long max)
{
	long v = 0;

	if (*s == '\0' || strlen(s) > 9)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v <= max ? v : -1;
}

/* Read the query into sp.  0, or an HTTP status with msg set. */
static int
parse_query(const char *query, struct exec_spec *sp, char *msg, size_t msgsz)
{
	struct strv given = { 0 };
	const char *pos = query, *key, *val;
	size_t klen, vlen, bytes = 0;
	int status = 400;
	char *timeout = NULL, *tty = NULL, *rows = NULL, *cols = NULL;

	if (strv_push(&sp->args, NULL) < 0)   /* the spare room */
		goto oom;
	while (agent_query_next(&pos, &key, &klen, &val, &vlen)) {
		char **one = NULL;
		struct strv *many = NULL;
		if (klen == 3 && strncmp(key, "arg", 3) == 0)
			many = &sp->args;
		else if (klen == 3 && strncmp(key, "env", 3) == 0)
			many = &given;
		else if (klen == 3 && strncmp(key, "cwd", 3) == 0)
			one = &sp->cwd;
		else if (klen == 4 && strncmp(key, "user", 4) == 0)
			one = &sp->user_name;
		else if (klen == 9 && strncmp(key, "timeout_s", 9) == 0)
			one = &timeout;
		else if (klen == 3 && strncmp(key, "tty", 3) == 0)
			one = &tty;
		else if (klen == 4 && strncmp(key, "rows", 4) == 0)
			one = &rows;
		else if (klen == 4 && strncmp(key, "cols", 4) == 0)
			one = &cols;
		if (one == NULL && many == NULL) {
			snprintf(msg, msgsz, "unknown query key '%.*s' (arg, env, "
			    "cwd, user, timeout_s, tty, rows, cols)",
			    (int)(klen > 32 ? 32 : klen), key);
			goto fail;
		}
		if (val == NULL) {
			snprintf(msg, msgsz, "'%.*s' needs a value", (int)klen, key);
			goto fail;
		}
		if (one != NULL && *one != NULL) {
			snprintf(msg, msgsz, "'%.*s' given twice", (int)klen, key);
			goto fail;
		}
		if (many == &sp->args && sp->args.n > EXEC_MAX_ARGS) {
			snprintf(msg, msgsz, "more than %d arguments",
			    EXEC_MAX_ARGS);
			goto fail;
		}
		char *v = malloc(vlen + 1);
		if (v == NULL)
			goto oom;
		if (agent_query_decode(val, vlen, v) < 0) {
			free(v);
			snprintf(msg, msgsz, "bad percent-encoding in '%.*s' (or "
			    "an encoded NUL)", (int)klen, key);
			goto fail;
		}
		if (many != NULL && (bytes += strlen(v) + 1) > EXEC_MAX_BYTES) {
			free(v);
			snprintf(msg, msgsz, "more than %d bytes of arguments and "
			    "environment", EXEC_MAX_BYTES);
			goto fail;
		}
		if (many == &given && (v[0] == '=' || strchr(v, '=') == NULL)) {
			free(v);
			snprintf(msg, msgsz, "env must be KEY=VALUE");
			goto fail;
		}
		if (one != NULL)
			*one = v;
		else if (strv_push(many, v) < 0) {
			free(v);
			goto oom;
		}
	}
	if (sp->args.n < 2) {
		snprintf(msg, msgsz, "no command: give it as arg=NAME&arg=...");
		goto fail;
	}
	if (sp->cwd != NULL && sp->cwd[0] != '/') {
		snprintf(msg, msgsz, "cwd must be an absolute path");
		goto fail;
	}
	if (timeout != NULL &&
	    (sp->timeout_s = parse_count(timeout, EXEC_MAX_TIMEOUT_S)) < 0) {
		snprintf(msg, msgsz, "timeout_s must be 0..%d (seconds, 0 for "
		    "none)", EXEC_MAX_TIMEOUT_S);
		goto fail;
	}
	if (tty != NULL && strcmp(tty, "0") != 0 && strcmp(tty, "1") != 0) {
		snprintf(msg, msgsz, "tty must be 0 or 1");
		goto fail;
	}
	sp->tty = tty != NULL && tty[0] == '1';
	if ((rows != NULL || cols != NULL) && !sp->tty) {
		snprintf(msg, msgsz, "rows and cols are for tty=1");
		goto fail;
	}
	sp->rows = 24;
	sp->cols = 80;
	if ((rows != NULL && (sp->rows = (unsigned)parse_count(rows,
	    EXEC_MAX_WINSIZE)) - 1 >= EXEC_MAX_WINSIZE) ||
	    (cols != NULL && (sp->cols = (unsigned)parse_count(cols,
	    EXEC_MAX_WINSIZE)) - 1 >= EXEC_MAX_WINSIZE)) {
		snprintf(msg, msgsz, "rows and cols must be 1..%d",
		    EXEC_MAX_WINSIZE);
		goto fail;
	}
	const char *uname = sp->user_name ? sp->user_name : "root";
	if (agent_user_lookup(uname, &sp->user) < 0) {
		if (errno == ENOENT)
			snprintf(msg, msgsz, "no user '%.64s'", uname);
		else {
			snprintf(msg, msgsz, "reading /etc/passwd: %s",
			    strerror(errno));
			status = 500;
		}
		goto fail;
	}
	/* The minimal environment of a login, then what was asked for. */
	if (env_setf(&sp->env, "PATH", EXEC_DEFAULT_PATH) < 0 ||
	    env_setf(&sp->env, "HOME", sp->user.home) < 0 ||
	    env_setf(&sp->env, "USER", sp->user.name) < 0 ||
	    env_setf(&sp->env, "LOGNAME", sp->user.name) < 0 ||
	    env_setf(&sp->env, "SHELL", sp->user.shell) < 0 ||
	    env_setf(&sp->env, "TERM", sp->tty ? "xterm-256color" : "dumb") < 0)
		goto oom;
	for (size_t i = 0; i < given.n; i++) {
		char *kv = given.v[i];
		given.v[i] = NULL;
		if (env_set(&sp->env, kv) < 0)
			goto oom;
	}
	for (size_t i = 0; i < sp->env.n; i++)
		if (strncmp(sp->env.v[i], "PATH=", 5) == 0)
			sp->path = sp->env.v[i] + 5;
	status = 0;
	goto out;
oom:
	snprintf(msg, msgsz, "out of memory");
	status = 500;
fail:
out:
	strv_free(&given, 0);
	free(timeout);
	free(tty);
	free(rows);
	free(cols);
	return status;
}

/* ---- the parent ---- */

struct exec_run {
	struct agent_request *rq;
	struct exec_child c;    /* without a pidfd: look every EXEC_TICK_MS */
	const char *in;     /* what is left of the body */
	size_t in_len;
	char *frame;        /* FRAME_HEAD + EXEC_READ_MAX */
};

/* Send the frame whose payload (len bytes) is at r->frame + FRAME_HEAD;
 * -1 once the client is gone. */
static int
send_frame(struct exec_run *r, int type, size_t len)
{
	unsigned char *h = (unsigned char *)r->frame;

	h[0] = (unsigned char)type;
	h[1] = h[2] = h[3] = 0;
	h[4] = (unsigned char)(len >> 24);
	h[5] = (unsigned char)(len >> 16);
	h[6] = (unsigned char)(len >> 8);
	h[7] = (unsigned char)len;
	return agent_stream_write(r->rq, r->frame, FRAME_HEAD + len);
}

static int
send_text_frame(struct exec_run *r, int type, const char *text)
{
	size_t n = strlen(text);

	if (n > EXEC_READ_MAX)
		n = EXEC_READ_MAX;
	memcpy(r->frame + FRAME_HEAD, text, n);
	return send_frame(r, type, n);
}

/* Whether the client went away: a hang-up, an error, or EOF (a client
 * must not half-close while its command runs).  Stray input is dropped. */
static int
client_gone(int fd, short revents)
{
	char junk[512];

	if (revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL))
		return 1;
	if (!(revents & POLLIN))
		return 0;
	ssize_t n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR);
}

/* Read one piece of a pipe into a frame; -1 once the client is gone. */
static int
pump(struct exec_run *r, int *fd, int type)
{
	ssize_t n = read(*fd, r->frame + FRAME_HEAD, EXEC_READ_MAX);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		exec_close_fd(fd);
		return 0;
	}
	return send_frame(r, type, (size_t)n);
}

static void
feed_stdin(struct exec_run *r)
{
	ssize_t n = r->in_len > 0 ? write(r->c.in_w, r->in, r->in_len) : 0;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		r->in += n;
		r->in_len -= (size_t)n;
	}
	if (n <= 0 || r->in_len == 0)
		exec_close_fd(&r->c.in_w);   /* all of it, or nobody reads (EPIPE) */
}

enum exec_end { END_DONE, END_GONE, END_HELD };

/* Stream the command's output until it is done; how it ended.  Sets
 * *timed_out when the timeout fired. */
static enum exec_end
supervise(struct exec_run *r, long timeout_s, int *timed_out)
{
	long long now = agent_now_ms();
	long long term_at = timeout_s > 0 ? now + timeout_s * 1000LL : 0;
	long long kill_at = 0, drain_until = 0;
	int exited = 0;

	*timed_out = 0;
	for (;;) {
		now = agent_now_ms();
		if (!exited && exec_child_exited(r->c.pid)) {
			exited = 1;
			drain_until = now + EXEC_DRAIN_MS;
			exec_close_fd(&r->c.pidfd);
			exec_close_fd(&r->c.in_w);
		}
		if (exited && r->c.out_r < 0 && r->c.err_r < 0)
			return END_DONE;
		if (exited && now >= drain_until)
			return END_HELD;
		if (term_at > 0 && now >= term_at) {
			kill(-r->c.pid, SIGTERM);
			*timed_out = 1;
			term_at = 0;
			kill_at = now + EXEC_TERM_GRACE_MS;
		}
		if (kill_at > 0 && now >= kill_at) {
			kill(-r->c.pid, SIGKILL);
			kill_at = 0;
		}

		int timeout_ms = exec_poll_timeout(now, term_at, kill_at,
		    exited, drain_until, r->c.pidfd, EXEC_TICK_MS);

		struct pollfd p[5] = {
			{ .fd = r->rq->fd, .events = POLLIN | POLLRDHUP },
			{ .fd = r->c.out_r, .events = POLLIN },
			{ .fd = r->c.err_r, .events = POLLIN },
			{ .fd = r->c.in_w, .events = POLLOUT },
			{ .fd = r->c.pidfd, .events = POLLIN },
		};
		if (poll(p, 5, timeout_ms) < 0) {
			if (errno == EINTR)
				continue;
			agent_log("exec: poll: %s", strerror(errno));
			return END_GONE;
		}
		if (client_gone(r->rq->fd, p[0].revents))
			return END_GONE;
		if (p[1].revents && pump(r, &r->c.out_r, FRAME_STDOUT) < 0)
			return END_GONE;
		if (p[2].revents && pump(r, &r->c.err_r, FRAME_STDERR) < 0)
			return END_GONE;
		if (p[3].revents)
			feed_stdin(r);
	}
}

static void
run(struct agent_request *rq, struct exec_spec *sp)
{
	struct exec_run r = { .rq = rq, .c = { .pidfd = -1, .in_w = -1,
		.out_r = -1, .err_r = -1 }, .in = rq->body, .in_len = rq->body_len };
	struct child_fail fail;
	enum exec_end end = END_DONE;
	int timed_out = 0, st = 0;
	char text[512];

	r.frame = malloc(FRAME_HEAD + EXEC_READ_MAX);
	if (r.frame == NULL) {
		agent_reply_error(rq, 500, "out of memory");
		return;
	}
	if (exec_spawn(sp, &r.c, &fail) < 0) {
		snprintf(text, sizeof(text), "starting the command: %s",
		    strerror(errno));
		agent_log("exec: %s", text);
		agent_reply_error(rq, 500, text);
		free(r.frame);
		return;
	}
	if (agent_stream_begin(rq, 200, EXEC_CONTENT_TYPE) < 0)
		end = END_GONE;
	else if (fail.step >= 0) {
		exec_fail_text(sp, &fail, text, sizeof(text) - 1);
		strcat(text, "\n");
		if (send_text_frame(&r, FRAME_STDERR, text) < 0)
			end = END_GONE;
	} else {
		if (r.in_len == 0)
			exec_close_fd(&r.c.in_w);
		end = supervise(&r, sp->timeout_s, &timed_out);
	}
	exec_close_fd(&r.c.in_w);
	exec_close_fd(&r.c.out_r);
	exec_close_fd(&r.c.err_r);
	exec_close_fd(&r.c.pidfd);
	/* The leader is still unreaped here, so the group id is still ours. */
	if (end != END_DONE || timed_out)
		kill(-r.c.pid, SIGKILL);
	while (waitpid(r.c.pid, &st, 0) < 0 && errno == EINTR)
		;
	if (end == END_GONE)
		agent_log("exec %s: the client left; its processes were killed",
		    sp->args.v[1]);
	else if (end == END_HELD)
		agent_log("exec %s: exited, but left processes holding its "
		    "output; they were killed", sp->args.v[1]);
	if (end != END_GONE) {
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
		snprintf(text, sizeof(text), "exit_code=%d\nsignal=%d\n"
		    "timed_out=%d\n", code, sig, timed_out);
		if (send_text_frame(&r, FRAME_EXIT, text) == 0)
			agent_stream_end(rq);
	}
	free(r.frame);
}

void
exec_route(struct agent_request *rq)
{
	struct exec_spec sp;
	char msg[192];

	const char *why;

	memset(&sp, 0, sizeof(sp));
	int status = parse_query(rq->query, &sp, msg, sizeof(msg));
	if (status != 0) {
		agent_reply_error(rq, status, msg);
	} else if (sp.tty && (why = exec_tty_not_upgrade(rq)) != NULL) {
		agent_reply_error(rq, 400, why);
	} else if (!rq->cfg->in_guest && !rq->cfg->allow_exec) {
		agent_reply_error(rq, 403, "not in a guest: a command would run "
		    "on the host (start the agent with --allow-exec to allow it)");
	} else if (sp.tty) {
		exec_tty_run(rq, &sp);
	} else {
		run(rq, &sp);
	}
	spec_free(&sp);
}
