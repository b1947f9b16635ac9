/* exec_tty.c - POST /exec?tty=1: an interactive command on a
 * pseudo-terminal, over the request's connection upgraded as /forward's
 * is (Docker's attach does the same for `docker exec -it`).
 *
 *   POST /exec?arg=bash&tty=1&rows=50&cols=132 HTTP/1.1
 *   Connection: Upgrade
 *   Upgrade: tcp
 *
 * The query is /exec's (exec.c), plus tty=1 and the terminal's first
 * size, rows and cols (1..9999; 24x80 when not given).  TERM is
 * xterm-256color unless env sets it.  Refusals are /exec's JSON errors:
 * 400 for the query, and when tty=1 comes without "Connection: Upgrade"
 * and "Upgrade: tcp", over HTTP/1.0 or with a body; 403 not in a guest
 * without --allow-exec; 503 when EXEC_TTY_MAX sessions are open already
 * or the guest has no pseudo-terminal left.  Otherwise 101, and from the
 * blank line on both directions carry frames in /exec's layout:
 *
 *   byte 0 type, bytes 1-3 zero, bytes 4-7 payload length (big-endian,
 *   at most 1 MiB), payload
 *
 * From the agent: 1 the terminal's output (stdout and stderr are the
 * same terminal), and 3 the exit, as /exec's ("exit_code=N\nsignal=S\n
 * timed_out=0|1\n"), the last frame; the agent then closes.
 *
 * From the client: 0 input, written to the terminal as it is (its line
 * discipline echoes and edits it, and a ^C there is a SIGINT, as on any
 * terminal); 4 a resize, rows and cols as two big-endian 16-bit numbers
 * (the foreground process group gets its SIGWINCH from the kernel); 5 a
 * signal, one byte, for the terminal's foreground process group: INT,
 * QUIT, TERM, HUP, KILL or WINCH (others are ignored); 6 the end of the
 * input, no payload: the terminal's EOF character (^D), which a program
 * reading it line by line takes as the end.  A frame of another type, of
 * the wrong size for its type or larger than 1 MiB ends the session as a
 * hang-up does.  A client must not half-close: its EOF is a hang-up.
 *
 * The command runs in a session of its own whose controlling terminal
 * is the pseudo-terminal.  It is the whole session that is ended: the
 * command's process group and every other one in the session (a shell
 * with job control gives each job its own).  When the client leaves (or
 * breaks the protocol): SIGHUP, and SIGKILL 1 s later, as sshd does; at
 * the timeout: SIGTERM, SIGKILL 2 s later, and timed_out=1; when, 1 s
 * after the command exited, something it left behind still holds the
 * terminal: SIGKILL.  Reaping is exec.c's: the leader is waited for by
 * pid, with WNOWAIT until the end, so its pid (the session's id) is not
 * reused while the session is being killed.
 *
 * The session runs in the connection's thread: one poll() over the
 * connection, the terminal's master and the child's pidfd.  Input is
 * read from the client only once what came before went into the
 * terminal, and output only once the frame before left: a side that
 * does not keep up slows the other one down.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"
#include "exec.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/uhttp_msg.h"

#define TTY_MAX_FRAME (1024 * 1024)     /* a client frame's payload */
#define TTY_BUF (64 * 1024)             /* each direction's buffer */
#define TTY_TERM_GRACE_MS 2000          /* SIGTERM to SIGKILL, timeout */
#define TTY_HUP_GRACE_MS 1000           /* SIGHUP to SIGKILL, hang-up */
#define TTY_DRAIN_MS 1000               /* the output, after the exit */
#define TTY_TICK_MS 50                  /* without a pidfd */
#define EXEC_TTY_MAX 64                 /* sessions open at once */
#define FRAME_HEAD 8
enum { IN_STDIN = 0, OUT_TTY = 1, OUT_EXIT = 3, IN_RESIZE = 4,
	IN_SIGNAL = 5, IN_EOF = 6 };

static const char switching[] = "HTTP/1.1 101 Switching Protocols\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: tcp\r\n"
    "\r\n";

static atomic_int open_ttys;

struct tty_run {
	struct agent_request *rq;
	struct exec_child c;
	/* Client to terminal: what was read and is not handled yet, and
	 * the frame it is in. */
	unsigned char *in;
	size_t in_off, in_len;
	unsigned char head[FRAME_HEAD];
	size_t head_len;
	size_t left;            /* of the frame's payload */
	unsigned char ctl[4];   /* a resize's or a signal's payload */
	size_t ctl_len;
	int eof_due;            /* an EOF character waits for the terminal */
	int blocked;            /* the terminal takes no more input now */
	/* Terminal to client: one frame on its way. */
	unsigned char *out;
	size_t out_off, out_len;
	int pty_eof;            /* no writer is left on the terminal */
	const char *why;        /* the client left, or broke the protocol */
};

/* Signal every process in session sid: its process groups can be many
 * (job control), so /proc is walked for them.  The leader is unreaped,
 * so no stranger can have sid for a session id. */
static void
kill_session(pid_t sid, int sig)
{
	DIR *d;
	struct dirent *e;
	char path[64], buf[512];

	kill(-sid, sig);
	if ((d = opendir("/proc")) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (read_small_file(path, buf, sizeof(buf)) < 0)
			continue;
		/* pid (comm) state ppid pgrp session: comm may hold ')'. */
		const char *p = strrchr(buf, ')');
		int session;
		if (p != NULL && sscanf(p + 1, " %*c %*d %*d %d", &session) == 1 &&
		    session == sid)
			kill((pid_t)atoi(e->d_name), sig);
	}
	closedir(d);
}

/* Send what is left of the output frame, as much as the client takes
 * now; -1 once it is gone. */
static int
out_push(struct tty_run *r)
{
	while (r->out_off < r->out_len) {
		ssize_t n = send(r->rq->fd, r->out + r->out_off,
		    r->out_len - r->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			r->why = "the client left";
			return -1;
		}
		r->out_off += (size_t)n;
	}
	r->out_off = r->out_len = 0;
	return 0;
}

static void
frame_head(unsigned char *h, int type, size_t len)
{
	h[0] = (unsigned char)type;
	h[1] = h[2] = h[3] = 0;
	h[4] = (unsigned char)(len >> 24);
	h[5] = (unsigned char)(len >> 16);
	h[6] = (unsigned char)(len >> 8);
	h[7] = (unsigned char)len;
}

/* Read the terminal's output into a frame (the last one left). */
static int
out_pull(struct tty_run *r)
{
	ssize_t n = read(r->c.pty, r->out + FRAME_HEAD, TTY_BUF);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		/* EIO: every slave descriptor is closed. */
		r->pty_eof = 1;
		return 0;
	}
	frame_head(r->out, OUT_TTY, (size_t)n);
	r->out_off = 0;
	r->out_len = FRAME_HEAD + (size_t)n;
	return out_push(r);
}

/* Send the frame in r->out and a text frame after it, waiting for the
 * client at most AGENT_IO_TIMEOUT_MS. */
static int
out_final(struct tty_run *r, int type, const char *text)
{
	long long deadline = agent_now_ms() + AGENT_IO_TIMEOUT_MS;
	unsigned char h[FRAME_HEAD];
	size_t n = strlen(text);

	if (r->out_off < r->out_len && uhttp_write(r->rq->fd, r->out +
	    r->out_off, r->out_len - r->out_off, deadline) != 0)
		return -1;
	r->out_off = r->out_len = 0;
	frame_head(h, type, n);
	if (uhttp_write(r->rq->fd, h, sizeof(h), deadline) != 0 ||
	    uhttp_write(r->rq->fd, text, n, deadline) != 0)
		return -1;
	return 0;
}

static int
signal_allowed(int sig)
{
	return sig == SIGINT || sig == SIGQUIT || sig == SIGTERM ||
	    sig == SIGHUP || sig == SIGKILL || sig == SIGWINCH;
}

/* A control frame, its payload whole. */
static void
control(struct tty_run *r, int type)
{
	if (type == IN_RESIZE) {
		struct winsize ws = {
			.ws_row = (unsigned short)(r->ctl[0] << 8 | r->ctl[1]),
			.ws_col = (unsigned short)(r->ctl[2] << 8 | r->ctl[3]),
		};
		ioctl(r->c.pty, TIOCSWINSZ, &ws);
	} else if (type == IN_SIGNAL && signal_allowed(r->ctl[0])) {
		pid_t pg = tcgetpgrp(r->c.pty);
		kill(-(pg > 0 ? pg : r->c.pid), r->ctl[0]);
	} else if (type == IN_EOF) {
		r->eof_due = 1;
	}
}

/* Write an input frame's bytes (or a due EOF character) to the
 * terminal; 0 when all went, -1 when it takes no more now.  A terminal
 * without a reader any more (EIO) drops them. */
static int
to_pty(struct tty_run *r, const void *buf, size_t len, size_t *ret_n)
{
	ssize_t n = write(r->c.pty, buf, len);

	*ret_n = 0;
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		r->blocked = 1;
		return -1;
	}
	*ret_n = n < 0 ? len : (size_t)n;
	return 0;
}

/* Handle the input read so far; -1 on a bad frame (r->why says so). */
static int
take_input(struct tty_run *r)
{
	size_t n;

	r->blocked = 0;
	for (;;) {
		if (r->eof_due) {
			struct termios t;
			unsigned char c = 4;   /* ^D, when the mode cannot be read */
			if (tcgetattr(r->c.pty, &t) == 0 &&
			    t.c_cc[VEOF] != _POSIX_VDISABLE)
				c = t.c_cc[VEOF];
			if (to_pty(r, &c, 1, &n) < 0)
				return 0;
			r->eof_due = 0;
		}
		if (r->in_off == r->in_len)
			return 0;
		if (r->head_len < FRAME_HEAD) {
			n = FRAME_HEAD - r->head_len;
			if (n > r->in_len - r->in_off)
				n = r->in_len - r->in_off;
			memcpy(r->head + r->head_len, r->in + r->in_off, n);
			r->head_len += n;
			r->in_off += n;
			if (r->head_len < FRAME_HEAD)
				return 0;
			int type = r->head[0];
			size_t len = (size_t)r->head[4] << 24 |
			    (size_t)r->head[5] << 16 | (size_t)r->head[6] << 8 |
			    r->head[7];
			if (r->head[1] || r->head[2] || r->head[3] ||
			    len > TTY_MAX_FRAME ||
			    !(type == IN_STDIN || (type == IN_RESIZE && len == 4) ||
			    (type == IN_SIGNAL && len == 1) ||
			    (type == IN_EOF && len == 0))) {
				r->why = "the client sent a bad frame";
				agent_log("exec tty: a bad frame (type %d, %zu "
				    "bytes)", type, len);
				return -1;
			}
			r->left = len;
			r->ctl_len = 0;
		} else {
			n = r->left < r->in_len - r->in_off ? r->left :
			    r->in_len - r->in_off;
			if (r->head[0] == IN_STDIN) {
				if (to_pty(r, r->in + r->in_off, n, &n) < 0)
					return 0;
			} else {
				memcpy(r->ctl + r->ctl_len, r->in + r->in_off, n);
				r->ctl_len += n;
			}
			r->in_off += n;
			r->left -= n;
		}
		if (r->left == 0) {
			if (r->head[0] != IN_STDIN)
				control(r, r->head[0]);
			r->head_len = 0;
		}
	}
}

/* Read what the client sent; -1 once it is gone or broke the protocol. */
static int
in_pull(struct tty_run *r)
{
	ssize_t n = recv(r->rq->fd, r->in, TTY_BUF, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return 0;
	if (n <= 0) {
		r->why = "the client left";
		return -1;
	}
	r->in_off = 0;
	r->in_len = (size_t)n;
	return take_input(r);
}

enum tty_end { TTY_DONE, TTY_GONE, TTY_HELD };

/* Pass input and output until the command is done, the client gone or
 * the timeout's SIGKILL sent and the command dead. */
static enum tty_end
session(struct tty_run *r, long timeout_s, int *timed_out)
{
	long long now = agent_now_ms();
	long long term_at = timeout_s > 0 ? now + timeout_s * 1000LL : 0;
	long long kill_at = 0, drain_until = 0;
	int exited = 0;

	*timed_out = 0;
	if (take_input(r) < 0)
		return TTY_GONE;
	for (;;) {
		now = agent_now_ms();
		if (!exited && exec_child_exited(r->c.pid)) {
			exited = 1;
			drain_until = now + TTY_DRAIN_MS;
			exec_close_fd(&r->c.pidfd);
		}
		if (exited && r->pty_eof && r->out_len == 0)
			return TTY_DONE;
		if (exited && now >= drain_until)
			return TTY_HELD;
		if (term_at > 0 && now >= term_at) {
			kill_session(r->c.pid, SIGTERM);
			*timed_out = 1;
			term_at = 0;
			kill_at = now + TTY_TERM_GRACE_MS;
		}
		if (kill_at > 0 && now >= kill_at) {
			kill_session(r->c.pid, SIGKILL);
			kill_at = 0;
		}

		int timeout_ms = exec_poll_timeout(now, term_at, kill_at,
		    exited, drain_until, r->c.pidfd, TTY_TICK_MS);

		short cev = POLLRDHUP, pev = 0;
		if (r->in_off == r->in_len && !r->eof_due)
			cev |= POLLIN;
		if (r->out_len > 0)
			cev |= POLLOUT;
		else if (!r->pty_eof)
			pev |= POLLIN;
		if (r->blocked)
			pev |= POLLOUT;
		struct pollfd p[3] = {
			{ .fd = r->rq->fd, .events = cev },
			{ .fd = pev ? r->c.pty : -1, .events = pev },
			{ .fd = r->c.pidfd, .events = POLLIN },
		};
		if (poll(p, 3, timeout_ms) < 0) {
			if (errno == EINTR)
				continue;
			agent_log("exec tty: poll: %s", strerror(errno));
			r->why = "poll failed";
			return TTY_GONE;
		}
		/* Input first: the client's bytes already read are handled
		 * before its hang-up is believed. */
		if ((p[0].revents & POLLIN) && in_pull(r) < 0)
			return TTY_GONE;
		if ((p[0].revents & (POLLHUP | POLLERR | POLLRDHUP)) &&
		    !(p[0].revents & POLLIN)) {
			r->why = "the client left";
			return TTY_GONE;
		}
		if ((p[1].revents & POLLOUT) && take_input(r) < 0)
			return TTY_GONE;
		if (r->out_len > 0 && (p[0].revents & POLLOUT) && out_push(r) < 0)
			return TTY_GONE;
		if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    r->out_len == 0 && out_pull(r) < 0)
			return TTY_GONE;
	}
}

/* The client is gone: hang the session up as sshd does, SIGHUP and,
 * for what is still there 1 s later, SIGKILL. */
static void
hang_up(struct tty_run *r)
{
	long long until = agent_now_ms() + TTY_HUP_GRACE_MS;

	kill_session(r->c.pid, SIGHUP);
	kill_session(r->c.pid, SIGCONT);   /* a stopped job sees it too */
	while (!exec_child_exited(r->c.pid)) {
		long long now = agent_now_ms();
		if (now >= until)
			break;
		struct pollfd p = { .fd = r->c.pidfd, .events = POLLIN };
		int ms = (int)(until - now);
		if (r->c.pidfd < 0 && ms > TTY_TICK_MS)
			ms = TTY_TICK_MS;
		poll(&p, r->c.pidfd < 0 ? 0 : 1, ms);
	}
}

static void
run_session(struct agent_request *rq, struct exec_spec *sp)
{
	struct tty_run r = { .rq = rq };
	struct child_fail fail;
	enum tty_end end = TTY_DONE;
	int timed_out = 0, st = 0, rc;
	char text[512];

	r.in = malloc(TTY_BUF > AGENT_MAX_HEAD ? TTY_BUF : AGENT_MAX_HEAD);
	r.out = malloc(FRAME_HEAD + TTY_BUF);
	if (r.in == NULL || r.out == NULL) {
		agent_reply_error(rq, 500, "out of memory");
		goto out;
	}
	if (exec_spawn(sp, &r.c, &fail) < 0) {
		int e = errno;
		snprintf(text, sizeof(text), "starting the command on a "
		    "pseudo-terminal: %s", strerror(e));
		agent_log("exec tty: %s", text);
		agent_reply_error(rq, e == EAGAIN || e == ENOSPC ? 503 : 500,
		    text);
		goto out;
	}
	if ((rc = uhttp_write(rq->fd, switching, sizeof(switching) - 1,
	    agent_now_ms() + AGENT_IO_TIMEOUT_MS)) != 0) {
		r.why = "the client left before the 101";
		end = TTY_GONE;
	} else if (fail.step >= 0) {
		exec_fail_text(sp, &fail, text, sizeof(text) - 2);
		strcat(text, "\r\n");
		if (out_final(&r, OUT_TTY, text) < 0)
			end = TTY_GONE;
	} else {
		/* What came with the head goes first (at most AGENT_MAX_HEAD). */
		memcpy(r.in, rq->extra, rq->extra_len);
		r.in_len = rq->extra_len;
		end = session(&r, sp->timeout_s, &timed_out);
	}
	if (end == TTY_GONE)
		hang_up(&r);
	/* The leader is still unreaped here: the session id is still ours. */
	if (end != TTY_DONE || timed_out)
		kill_session(r.c.pid, SIGKILL);
	/* Reaped before the master closes: closing it hangs up the session,
	 * and a child that could not exec, on its way to _exit(127), would
	 * die of that SIGHUP instead. */
	while (waitpid(r.c.pid, &st, 0) < 0 && errno == EINTR)
		;
	exec_close_fd(&r.c.pty);
	exec_close_fd(&r.c.pidfd);
	if (end == TTY_GONE)
		agent_log("exec tty %s: %s; its session was hung up",
		    sp->args.v[1], r.why ? r.why : "the client left");
	else if (end == TTY_HELD)
		agent_log("exec tty %s: exited, but left processes holding its "
		    "terminal; they were killed", sp->args.v[1]);
	if (end != TTY_GONE) {
		snprintf(text, sizeof(text), "exit_code=%d\nsignal=%d\n"
		    "timed_out=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
		    WIFSIGNALED(st) ? WTERMSIG(st) : 0, timed_out);
		out_final(&r, OUT_EXIT, text);
	}
out:
	free(r.in);
	free(r.out);
}

const char *
exec_tty_not_upgrade(const struct agent_request *rq)
{
	/* RFC 9110 7.8: an Upgrade in an HTTP/1.0 request is ignored. */
	if (rq->http10)
		return "tty=1 needs HTTP/1.1 (an upgrade)";
	if (!rq->connection_upgrade || rq->upgrade == NULL ||
	    !uhttp_list_has(rq->upgrade, "tcp"))
		return "tty=1 needs the headers Connection: Upgrade and "
		    "Upgrade: tcp (the session's frames go both ways after "
		    "the 101)";
	if (rq->body_len > 0)
		return "tty=1 has no body: input goes in frames after the 101";
	return NULL;
}

void
exec_tty_run(struct agent_request *rq, struct exec_spec *sp)
{
	char msg[96];

	if (atomic_fetch_add(&open_ttys, 1) >= EXEC_TTY_MAX) {
		atomic_fetch_sub(&open_ttys, 1);
		agent_log("exec tty %s: refused, %d sessions open already",
		    sp->args.v[1], EXEC_TTY_MAX);
		snprintf(msg, sizeof(msg), "%d terminal sessions are open "
		    "already", EXEC_TTY_MAX);
		agent_reply_error(rq, 503, msg);
		return;
	}
	run_session(rq, sp);
	atomic_fetch_sub(&open_ttys, 1);
}
