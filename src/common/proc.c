/* proc.c - spawning with argv, double fork for VMMs, pidfd waits. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static int
pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void
child_reset_signals(void)
{
	sigset_t all;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
}

static void
child_redirect(const char *out_path)
{
	int in = open("/dev/null", O_RDONLY);
	int out = open(out_path ? out_path : "/dev/null",
	    O_WRONLY | O_CREAT | O_APPEND, 0640);

	if (in < 0 || out < 0)
		_exit(126);
	dup2(in, 0);
	dup2(out, 1);
	dup2(out, 2);
	if (in > 2)
		close(in);
	if (out > 2)
		close(out);
}

int
proc_spawn_detached(char *const argv[], const char *out_path, pid_t *ret_pid,
    struct bn_err *err)
{
	return proc_spawn_detached_in(argv, NULL, out_path, ret_pid, err);
}

int
proc_spawn_detached_in(char *const argv[], const char *cwd,
    const char *out_path, pid_t *ret_pid, struct bn_err *err)
{
	return proc_spawn_detached_prep(argv, cwd, out_path, NULL, NULL,
	    ret_pid, err);
}

int
proc_spawn_detached_prep(char *const argv[], const char *cwd,
    const char *out_path, int (*prep)(void *), void *arg, pid_t *ret_pid,
    struct bn_err *err)
{
	char exe[PATH_MAX];
	int pfd[2];

	/* A relative program path means the one from here, not from cwd. */
	if (cwd != NULL && argv[0][0] != '/' && realpath(argv[0], exe) == NULL)
		return bn_fail(err, errno == ENOENT ? BN_EVMM_MISSING : BN_ESYS,
		    errno, "%s", argv[0]);
	pid_t mid;
	struct {
		pid_t pid;
		int err;
	} msg = { 0, 0 };

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return bn_fail(err, BN_ESYS, errno, "pipe");
	mid = fork();
	if (mid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return bn_fail(err, BN_ESYS, errno, "fork");
	}
	if (mid == 0) {
		pid_t gc;

		close(pfd[0]);
		setsid();
		gc = fork();
		if (gc < 0) {
			msg.err = errno;
			(void)!write(pfd[1], &msg, sizeof(msg));
			_exit(1);
		}
		if (gc > 0) {
			/* Report the grandchild's pid; the grandchild itself
			 * reports an exec failure on the same pipe. */
			msg.pid = gc;
			(void)!write(pfd[1], &msg, sizeof(msg));
			_exit(0);
		}
		child_reset_signals();
		child_redirect(out_path);
		if (prep != NULL && (msg.err = prep(arg)) != 0) {
			msg.pid = -2;
			(void)!write(pfd[1], &msg, sizeof(msg));
			_exit(127);
		}
		if (cwd != NULL && chdir(cwd) < 0) {
			msg.pid = -1;
			msg.err = errno;
			(void)!write(pfd[1], &msg, sizeof(msg));
			_exit(127);
		}
		execv(cwd != NULL && argv[0][0] != '/' ? exe : argv[0], argv);
		msg.pid = -1;
		msg.err = errno;
		(void)!write(pfd[1], &msg, sizeof(msg));
		_exit(127);
	}
	close(pfd[1]);
	while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
		;

	pid_t gc = 0;
	int rc = 0;
	for (;;) {
		ssize_t r = read(pfd[0], &msg, sizeof(msg));
		if (r < 0 && errno == EINTR)
			continue;
		if (r != (ssize_t)sizeof(msg))
			break;
		if (msg.pid > 0)
			gc = msg.pid;
		if (msg.err != 0 && msg.pid == -2) {
			rc = bn_fail(err, BN_ESYS, msg.err, "prepare the process "
			    "of %s", argv[0]);
			break;
		}
		if (msg.err != 0) {
			rc = bn_fail(err, msg.err == ENOENT || msg.err == EACCES ?
			    BN_EVMM_MISSING : BN_ESYS, msg.err, "exec %s", argv[0]);
			break;
		}
	}
	close(pfd[0]);
	if (rc < 0)
		return -1;
	if (gc <= 0)
		return bn_fail(err, BN_ESYS, 0, "spawn %s: no pid", argv[0]);
	*ret_pid = gc;
	return 0;
}

int
proc_run(char *const argv[], int timeout_ms, char *capture, size_t capsz,
    int *ret_status, struct bn_err *err)
{
	int pfd[2] = { -1, -1 };
	size_t caplen = 0;
	pid_t pid;
	int status = 0;

	if (capture && pipe2(pfd, O_CLOEXEC) < 0)
		return bn_fail(err, BN_ESYS, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		if (capture) {
			close(pfd[0]);
			close(pfd[1]);
		}
		return bn_fail(err, BN_ESYS, errno, "fork");
	}
	if (pid == 0) {
		child_reset_signals();
		child_redirect(NULL);
		if (capture) {
			dup2(pfd[1], 1);
			dup2(pfd[1], 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	long long deadline = time_mono_ms() + timeout_ms;
	if (capture) {
		close(pfd[1]);
		for (;;) {
			struct pollfd p = { .fd = pfd[0], .events = POLLIN };
			long long left = deadline - time_mono_ms();
			if (left <= 0)
				break;
			int r = poll(&p, 1, (int)left);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			char tmp[512];
			ssize_t n = read(pfd[0], tmp, sizeof(tmp));
			if (n <= 0)
				break;
			size_t take = (size_t)n;
			if (caplen + take >= capsz)
				take = capsz - 1 - caplen;
			memcpy(capture + caplen, tmp, take);
			caplen += take;
		}
		close(pfd[0]);
		capture[caplen] = '\0';
	}
	int pidfd = pidfd_open_(pid);
	if (pidfd >= 0) {
		long long left = deadline - time_mono_ms();
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		if (left < 0)
			left = 0;
		while (poll(&p, 1, (int)left) < 0 && errno == EINTR)
			;
		close(pidfd);
	}
	pid_t w = waitpid(pid, &status, WNOHANG);
	if (w == 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		return bn_fail(err, BN_ETIMEOUT, 0, "%s timed out after %d ms",
		    argv[0], timeout_ms);
	}
	if (ret_status)
		*ret_status = status;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			return bn_fail(err, BN_ESYS, ENOENT, "run %s", argv[0]);
		return bn_fail(err, BN_ESYS, 0, "%s failed (exit %d)%s%s", argv[0],
		    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
		    capture && caplen ? ": " : "", capture && caplen ? capture : "");
	}
	return 0;
}

int
proc_spawn_piped(char *const argv[], const char *err_path, pid_t *ret_pid,
    int *ret_fd, struct bn_err *err)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return bn_fail(err, BN_ESYS, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return bn_fail(err, BN_ESYS, errno, "fork");
	}
	if (pid == 0) {
		child_reset_signals();
		/* Its own process group, so the caller can signal the child
		 * and everything it starts at once. */
		setpgid(0, 0);
		child_redirect(err_path);
		dup2(pfd[1], 1);
		execv(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	/* Also here: no window in which a kill(-pid) finds no group. */
	setpgid(pid, pid);
	*ret_pid = pid;
	*ret_fd = pfd[0];
	return 0;
}

int
proc_wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool
proc_alive(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	bool alive = false;

	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *rp = strrchr(buf, ')');
		alive = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
	}
	fclose(f);
	return alive;
}

bool
proc_cmdline_has(pid_t pid, const char *const needles[], int n)
{
	char path[64], buf[8192];
	ssize_t len;
	int fd, found = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = '\0';
	for (int i = 0; i < n; i++) {
		for (ssize_t off = 0; off < len; off += (ssize_t)strlen(buf + off) + 1) {
			if (strcmp(buf + off, needles[i]) == 0) {
				found++;
				break;
			}
		}
	}
	return found == n;
}

bool
proc_wait_gone(pid_t pid, int timeout_ms)
{
	long long deadline = time_mono_ms() + timeout_ms;
	int pidfd = pidfd_open_(pid);

	if (pidfd < 0)
		return !proc_alive(pid);
	for (;;) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		long long left = deadline - time_mono_ms();
		if (!proc_alive(pid))
			break;
		if (left <= 0)
			break;
		/* pidfd readiness fires on exit; a zombie of another parent
		 * counts as gone through proc_alive, so poll in slices. */
		if (poll(&p, 1, left > 50 ? 50 : (int)left) < 0 && errno != EINTR)
			break;
	}
	close(pidfd);
	return !proc_alive(pid);
}

int
proc_find_exe(const char *name, char *out, size_t outsz, struct bn_err *err)
{
	const char *path;

	if (strchr(name, '/') != NULL) {
		if (access(name, X_OK) < 0)
			return bn_fail(err, BN_EVMM_MISSING, errno, "%s", name);
		return path_join(out, outsz, err, "%s", name);
	}
	path = getenv("PATH");
	if (path == NULL)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		const char *end = strchrnul(path, ':');
		char cand[PATH_MAX];
		int n = snprintf(cand, sizeof(cand), "%.*s/%s", (int)(end - path),
		    path, name);
		if (n > 0 && (size_t)n < sizeof(cand) && end != path &&
		    access(cand, X_OK) == 0)
			return path_join(out, outsz, err, "%s", cand);
		path = *end ? end + 1 : end;
	}
	return bn_fail(err, BN_EVMM_MISSING, 0, "%s not found in PATH", name);
}

bool
banger_group(gid_t *ret)
{
	FILE *f = fopen("/etc/group", "re");
	struct group *gr;
	bool found = false;

	if (f == NULL)
		return false;
	while ((gr = fgetgrent(f)) != NULL) {
		if (strcmp(gr->gr_name, "banger") == 0) {
			*ret = gr->gr_gid;
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}
