/* exec.h - what POST /exec's parts share: exec.c (the request, the
 * stream, the supervision), exec_tty.c (the same over a pseudo-terminal,
 * on an upgraded connection) and exec_spawn.c (the fork and the child).
 * exec.c calls the other two; they call only exec_spawn.c. */
#ifndef BANGER_AGENT_EXEC_H
#define BANGER_AGENT_EXEC_H

#include "agent.h"

#include <stdbool.h>

#define EXEC_DEFAULT_PATH \
	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* A NULL-terminated vector of owned strings. */
struct strv {
	char **v;
	size_t n, cap;
};

/* The command, as the query asked for it. */
struct exec_spec {
	struct strv args;   /* v[0] is spare room (for /bin/sh), not owned */
	struct strv env;
	char *cwd;          /* NULL: the user's home */
	char *user_name;
	struct agent_user user;
	long timeout_s;
	const char *path;   /* PATH in env, for the search */
	int tty;            /* tty=1: a pseudo-terminal (exec_tty.c) */
	unsigned rows, cols;    /* its first size */
};

/* What the child could not do before the exec, told to the parent. */
enum child_step { STEP_SETSID, STEP_SETGROUPS, STEP_SETGID, STEP_SETUID,
	STEP_CHDIR, STEP_EXEC, STEP_CTTY };
struct child_fail {
	int step;           /* -1: it did exec */
	int err;
};

/* A started command: its pid (also its process group and session) and
 * the parent's ends of its pipes, non-blocking; with sp->tty, instead of
 * the pipes (-1), the pseudo-terminal's master, non-blocking. */
struct exec_child {
	pid_t pid;
	int pidfd;          /* -1 without pidfd_open (Linux < 5.3) */
	int in_w, out_r, err_r;
	int pty;
};

/* Fork the command of sp: its own session, default signals, the three
 * pipes (with sp->tty: the pseudo-terminal's slave as 0, 1 and 2, and its
 * controlling terminal, sized rows x cols) and nothing else open, the
 * user's groups and ids, the cwd, then exec with execvp's search in its
 * own PATH.  0 with *ret set, and fail->step >= 0 when it could not get
 * to its exec (it has then exited 127 or 126, unreaped); -1 with errno
 * when there is no child.  The caller reaps ret->pid and closes the fds. */
int exec_spawn(struct exec_spec *sp, struct exec_child *ret,
    struct child_fail *fail);
/* What the child could not do, as a line for its output (no newline). */
void exec_fail_text(const struct exec_spec *sp, const struct child_fail *fail,
    char *buf, size_t len);
/* Whether pid has exited (it stays unreaped: WNOWAIT). */
int exec_child_exited(pid_t pid);
/* How long a supervision loop may sleep in poll() at now: until the
 * next of its deadlines (0: none; drain_until counts once the command
 * exited), or tick_ms while it cannot watch the child (no pidfd); -1
 * for no limit. */
int exec_poll_timeout(long long now, long long term_at, long long kill_at,
    bool exited, long long drain_until, int pidfd, int tick_ms);
/* Close *fd unless it is -1, and make it -1. */
void exec_close_fd(int *fd);

/* exec_tty.c: what keeps a tty=1 request from being one (an upgrade to
 * tcp over HTTP/1.1, without a body), or NULL. */
const char *exec_tty_not_upgrade(const struct agent_request *rq);
/* POST /exec?tty=1, sp and the request checked.  Answers (an error, or
 * 101 and the session) and returns at its end. */
void exec_tty_run(struct agent_request *rq, struct exec_spec *sp);

#endif
