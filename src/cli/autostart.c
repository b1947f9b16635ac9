/* autostart.c - find and spawn bangerd when nothing answers on the socket.
 *
 * bangerd runs in its own session so it outlives this banger and ignores
 * the terminal's signals; it gets no shell, stdin from /dev/null, and its
 * output appended to bangerd.log next to the socket.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

extern char **environ;

static bool
is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    access(path, X_OK) == 0;
}

/* Search $PATH for 'name'. */
static bool
search_path(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH");

	if (path == NULL || path[0] == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path != '\0') {
		size_t n = strcspn(path, ":");

		/* An empty entry means the current directory. */
		snprintf(buf, len, "%.*s/%s", n ? (int)n : 1, n ? path : ".", name);
		if (is_executable(buf))
			return true;
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

/* Next to this banger first (a build tree or an install prefix keeps the
 * two together), then $BANGER_BANGERD, then $PATH. */
static int
find_bangerd(char *buf, size_t len, char *why, size_t why_len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *env;

	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(buf, len, "%s/bangerd", self);
			if (is_executable(buf))
				return 0;
		}
	}
	env = getenv("BANGER_BANGERD");
	if (env != NULL && env[0] != '\0') {
		if (strchr(env, '/') != NULL) {
			snprintf(buf, len, "%s", env);
			if (is_executable(buf))
				return 0;
		} else if (search_path(env, buf, len)) {
			return 0;
		}
		snprintf(why, why_len, "BANGER_BANGERD=%s is not an executable "
		    "file", env);
		return -1;
	}
	if (search_path("bangerd", buf, len))
		return 0;
	snprintf(why, why_len, "cannot start bangerd: not found next to banger, "
	    "in BANGER_BANGERD or in PATH");
	return -1;
}

void
autostart_log_path(const char *socket_path, char *buf, size_t len)
{
	const char *slash = strrchr(socket_path, '/');

	if (slash == NULL)
		snprintf(buf, len, "bangerd.log");
	else if (slash == socket_path)
		snprintf(buf, len, "/bangerd.log");
	else
		snprintf(buf, len, "%.*s/bangerd.log",
		    (int)(slash - socket_path), socket_path);
}

/* mkdir -p of the directory holding 'file'. */
static int
mkdir_parents(const char *file, mode_t mode, struct bn_err *err)
{
	const char *slash = strrchr(file, '/');
	char dir[PATH_MAX];

	if (slash == NULL || slash == file)
		return 0;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
	return mkdir_p(dir, (int)mode, err);
}

int
autostart_spawn(const char *socket_path, pid_t *ret_pid, char *log_buf,
    size_t log_len, char *why, size_t why_len)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	char exe[PATH_MAX];
	struct bn_err err;
	int fd, rc;
	pid_t pid;

	if (find_bangerd(exe, sizeof(exe), why, why_len) < 0)
		return -1;
	autostart_log_path(socket_path, log_buf, log_len);
	/* The daemon tightens modes on what it owns; root's runtime dir must
	 * stay traversable for the banger group. */
	if (mkdir_parents(log_buf, geteuid() == 0 ? 0755 : 0700, &err) < 0) {
		snprintf(why, why_len, "cannot create the directory of %s: %s",
		    log_buf, err.sys_errno ? strerror(err.sys_errno) : err.msg);
		return -1;
	}
	fd = open(log_buf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, why_len, "cannot open %s: %s", log_buf,
		    strerror(errno));
		return -1;
	}
	{
		char stamp[64] = "";
		time_t now = time(NULL);
		struct tm tm;

		if (gmtime_r(&now, &tm) != NULL)
			strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		dprintf(fd, "--- %s banger: starting %s --socket %s\n", stamp, exe,
		    socket_path);
	}

	char *const argv[] = { exe, "--socket", (char *)socket_path, NULL };

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
	    O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, fd, STDERR_FILENO);
	/* Keep nothing else of ours open in the daemon. */
	posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);

	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGHUP);
	sigaddset(&defaults, SIGQUIT);
	sigaddset(&defaults, SIGPIPE);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);

	rc = posix_spawn(&pid, exe, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
	if (rc != 0) {
		snprintf(why, why_len, "cannot start %s: %s", exe, strerror(rc));
		return -1;
	}
	*ret_pid = pid;
	return 0;
}
