/* exec_spawn.c - POST /exec's child: the fork, and what the child does
 * on its own before the exec (exec.c and exec_tty.c are the rest).
 *
 * The agent has threads, so between fork and exec the child calls only
 * async-signal-safe functions: everything it needs (the user, the
 * environment, argv with room for /bin/sh) was made by the parent.  It
 * tells the parent what failed, if anything did, as a struct child_fail
 * on a close-on-exec pipe: EOF there means the exec happened. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void __attribute__((noreturn))
child_fail(int step, int err)
{
	struct child_fail f = { step, err };
	ssize_t w = write(3, &f, sizeof(f));

	(void)w;
	_exit(step == STEP_EXEC && err == ENOENT ? 127 : 126);
}

/* Close every descriptor from low up. */
static void
close_from(int low)
{
	struct rlimit rl;
	long max = 65536;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)low, ~0U, 0) == 0)
		return;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)(1 << 20))
		max = (long)rl.rlim_cur;
	for (long fd = low; fd < max; fd++)
		close((int)fd);
}

/* execvp's search, in the command's own PATH; returns with errno set. */
static void
exec_search(char **argv, char **envp, const char *path)
{
	const char *file = argv[0];
	size_t fl = strlen(file);
	char buf[PATH_MAX];
	int eacces = 0;

	if (fl == 0) {
		errno = ENOENT;
		return;
	}
	if (strchr(file, '/') != NULL) {
		execve(file, argv, envp);
		if (errno == ENOEXEC) {
			argv[-1] = "/bin/sh";
			execve("/bin/sh", argv - 1, envp);
		}
		return;
	}
	if (path == NULL)
		path = EXEC_DEFAULT_PATH;
	for (const char *p = path; ; p++) {
		const char *end = strchrnul(p, ':');
		size_t dl = (size_t)(end - p);
		if (dl == 0) {
			buf[0] = '.';
			dl = 1;
		} else if (dl < sizeof(buf)) {
			memcpy(buf, p, dl);
		}
		if (dl + 1 + fl < sizeof(buf)) {
			buf[dl] = '/';
			memcpy(buf + dl + 1, file, fl + 1);
			execve(buf, argv, envp);
			switch (errno) {
			case EACCES:
				eacces = 1;
				break;
			case ENOEXEC: {
				char *keep = argv[0];
				argv[-1] = "/bin/sh";
				argv[0] = buf;
				execve("/bin/sh", argv - 1, envp);
				argv[0] = keep;
				return;
			}
			case ENOENT:
			case ENOTDIR:
			case ENAMETOOLONG:
			case ELOOP:
			case ESTALE:
			case ENODEV:
			case ETIMEDOUT:
				break;
			default:
				return;
			}
		}
		if (*end == '\0')
			break;
		p = end;
	}
	errno = eacces ? EACCES : ENOENT;
}

/* fds: stdin, stdout, stderr, the failure pipe. */
static void __attribute__((noreturn))
child_main(struct exec_spec *sp, const int fds[4])
{
	struct sigaction dfl;
	sigset_t none;
	int hi[4];

	/* The agent ignores SIGPIPE and blocks SIGTERM, SIGINT and SIGHUP:
	 * an ignored signal and the mask survive exec.  Dispositions first,
	 * so a signal let through by the mask meets the default. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);   /* KILL, STOP, libc's: refused */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* Out of the way first, as a pipe end may be 0, 1 or 2 (the agent
	 * started with them closed), then into place; the rest closed: the
	 * listener and every other connection. */
	for (int i = 0; i < 4; i++)
		if ((hi[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
			_exit(126);
	if (dup2(hi[0], 0) < 0 || dup2(hi[1], 1) < 0 || dup2(hi[2], 2) < 0 ||
	    dup2(hi[3], 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
		_exit(126);
	close_from(4);

	if (setsid() < 0)
		child_fail(STEP_SETSID, errno);
	/* The slave (0, 1 and 2 with a tty) becomes the new session's
	 * controlling terminal, so that ^C, job control and a hang-up work. */
	if (sp->tty && ioctl(0, TIOCSCTTY, 0) < 0)
		child_fail(STEP_CTTY, errno);
	if (sp->user.uid != geteuid() || sp->user.gid != getegid()) {
		if (setgroups((size_t)sp->user.ngroups, sp->user.groups) < 0)
			child_fail(STEP_SETGROUPS, errno);
		if (setgid(sp->user.gid) < 0)
			child_fail(STEP_SETGID, errno);
		if (setuid(sp->user.uid) < 0)
			child_fail(STEP_SETUID, errno);
	}
	/* As the user: its permissions decide.  A home that cannot be
	 * entered is no error (login and sshd go to / then). */
	if (chdir(sp->cwd ? sp->cwd : sp->user.home) < 0 &&
	    (sp->cwd != NULL || chdir("/") < 0))
		child_fail(STEP_CHDIR, errno);
	exec_search(sp->args.v + 1, sp->env.v, sp->path);
	child_fail(STEP_EXEC, errno);
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void
exec_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int
open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	return -1;
#endif
}

/* A pseudo-terminal for sp: the master (non-blocking) and the slave,
 * both close-on-exec, the slave the user's and sized as asked.  The
 * guest mounts devpts at /dev/pts (systemd and Void's runit both do). */
static int
open_pty(const struct exec_spec *sp, int *ret_master, int *ret_slave)
{
	struct winsize ws = { .ws_row = (unsigned short)sp->rows,
		.ws_col = (unsigned short)sp->cols };
	char name[64];
	int m, sl, e;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -1;
	if (grantpt(m) < 0 || unlockpt(m) < 0 ||
	    ptsname_r(m, name, sizeof(name)) != 0 ||
	    (sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
		e = errno;
		close(m);
		errno = e;
		return -1;
	}
	/* As sshd does: the user's, so that mesg, write and a tty check of
	 * its owner behave; failing that, the open fd still works. */
	if (fchown(sl, sp->user.uid, (gid_t)-1) < 0 || fchmod(sl, 0620) < 0)
		agent_log("exec: %s for uid %u: %s", name,
		    (unsigned)sp->user.uid, strerror(errno));
	ioctl(m, TIOCSWINSZ, &ws);
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	*ret_master = m;
	*ret_slave = sl;
	return 0;
}

int
exec_spawn(struct exec_spec *sp, struct exec_child *r, struct child_fail *fail)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int st[2] = { -1, -1 };
	int e;

	fail->step = -1;
	r->pty = -1;
	if (sp->tty) {
		/* The slave stands in for all three pipes' far ends. */
		if (open_pty(sp, &r->pty, &in[0]) < 0)
			goto fail;
		if ((out[1] = dup(in[0])) < 0 || (err[1] = dup(in[0])) < 0)
			goto fail;
	} else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0) {
		goto fail;
	}
	if (pipe2(st, O_CLOEXEC) < 0)
		goto fail;
	r->pid = fork();
	if (r->pid < 0)
		goto fail;
	if (r->pid == 0) {
		const int fds[4] = { in[0], out[1], err[1], st[1] };
		child_main(sp, fds);
	}
	exec_close_fd(&in[0]);
	exec_close_fd(&out[1]);
	exec_close_fd(&err[1]);
	exec_close_fd(&st[1]);
	r->in_w = in[1];
	r->out_r = out[0];
	r->err_r = err[0];
	if (!sp->tty) {
		set_nonblock(r->in_w);
		set_nonblock(r->out_r);
		set_nonblock(r->err_r);
	}
	r->pidfd = open_pidfd(r->pid);
	/* EOF when the exec closed it; a report when it failed. */
	size_t got = 0;
	while (got < sizeof(*fail)) {
		ssize_t n = read(st[0], (char *)fail + got, sizeof(*fail) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < sizeof(*fail))
		fail->step = -1;
	exec_close_fd(&st[0]);
	return 0;
fail:
	e = errno;
	for (int i = 0; i < 2; i++) {
		exec_close_fd(&in[i]);
		exec_close_fd(&out[i]);
		exec_close_fd(&err[i]);
		exec_close_fd(&st[i]);
	}
	exec_close_fd(&r->pty);
	errno = e;
	return -1;
}

void
exec_fail_text(const struct exec_spec *sp, const struct child_fail *fail,
    char *buf, size_t len)
{
	static const char *const what[] = { "setsid", "setgroups", "setgid",
		"setuid", "chdir", "exec", "TIOCSCTTY for" };
	const char *obj = fail->step == STEP_CHDIR ?
	    (sp->cwd ? sp->cwd : sp->user.home) :
	    fail->step == STEP_EXEC || fail->step == STEP_CTTY ?
	    sp->args.v[1] : sp->user.name;

	snprintf(buf, len, AGENT_NAME ": %s %s: %s", fail->step >= 0 &&
	    fail->step <= STEP_CTTY ? what[fail->step] : "start", obj,
	    strerror(fail->err));
}

int
exec_child_exited(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == pid;
}

int
exec_poll_timeout(long long now, long long term_at, long long kill_at,
    bool exited, long long drain_until, int pidfd, int tick_ms)
{
	long long wake = LLONG_MAX;

	if (term_at > 0 && term_at < wake)
		wake = term_at;
	if (kill_at > 0 && kill_at < wake)
		wake = kill_at;
	if (exited && drain_until < wake)
		wake = drain_until;
	if (!exited && pidfd < 0 && now + tick_ms < wake)
		wake = now + tick_ms;
	return wake == LLONG_MAX ? -1 : wake - now > INT_MAX ? INT_MAX :
	    wake < now ? 0 : (int)(wake - now);
}
