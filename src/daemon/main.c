/* bangerd - the banger daemon: state, VMMs and host integration behind a
 * REST API on a Unix socket. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "api/api.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "common/wire.h"
#include "core/config.h"
#include "core/core.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: bangerd [-d] [-n] [--socket PATH] [--state-dir DIR]\n"
	    "               [--runtime DIR] [--config FILE] [--log-level LEVEL]\n"
	    "\n"
	    "  -d, --debug        log at debug level\n"
	    "  -n, --check        print the effective configuration and exit\n"
	    "  --socket PATH      API socket (env BANGER_SOCKET)\n"
	    "  --state-dir DIR    database, VM disks and logs (env BANGER_STATE_DIR)\n"
	    "  --runtime DIR      runtime bundle (env BANGER_RUNTIME_DIR)\n"
	    "  --config FILE      config.json (env BANGER_CONFIG)\n"
	    "  --log-level L      error|warn|info|debug\n"
	    "  --list-steps       print every VM operation's steps (JSON) and exit\n"
	    "  --version          print the version\n");
}

/* Bind the API socket: refuse when another bangerd answers on it, replace
 * a stale file, then 0660 (group banger when it exists). */
static int
listen_unix(const char *path, struct bn_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[PATH_MAX], *slash;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return bn_fail(err, BN_EINVAL, 0, "socket path too long: %s", path);
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0755, err) < 0)
			return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return bn_fail(err, BN_ESYS, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return bn_fail(err, BN_ESYS, 0, "another bangerd is serving %s", path);
	}
	close(fd);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return bn_fail(err, BN_ESYS, errno, "socket");
	mode_t old = umask(0117);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0) {
		bn_fail(err, BN_ESYS, errno, "bind %s", path);
		close(fd);
		return -1;
	}
	gid_t gid;
	if (banger_group(&gid) && chown(path, (uid_t)-1, gid) < 0)
		log_warn("chown %s to group banger", path);
	chmod(path, 0660);
	if (listen(fd, 128) < 0) {
		bn_fail(err, BN_ESYS, errno, "listen %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* Socket activation (bangerd.socket, systemd-socket-activate): take the
 * listening socket from LISTEN_FDS instead of binding one.  Sets *ret_fd
 * to -1 when bangerd was not activated.  sd_listen_fds(1) also unsets
 * LISTEN_* so VMMs spawned later do not inherit them; it runs before any
 * thread exists because it changes the environment. */
static int
activated_socket(int *ret_fd, char *path, size_t pathsz, struct bn_err *err)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int n, fd, r;

	*ret_fd = -1;
	n = sd_listen_fds(1);
	if (n < 0)
		return bn_fail(err, BN_ESYS, -n, "socket activation (LISTEN_FDS)");
	if (n == 0)
		return 0;
	if (n > 1)
		return bn_fail(err, BN_EINVAL, 0, "socket activation passed %d "
		    "sockets; bangerd serves exactly one (a single ListenStream= "
		    "in bangerd.socket)", n);
	fd = SD_LISTEN_FDS_START;
	r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
	if (r < 0)
		return bn_fail(err, BN_ESYS, -r, "socket activation: fd %d", fd);
	if (r == 0)
		return bn_fail(err, BN_EINVAL, 0, "socket activation: fd %d is not "
		    "a listening AF_UNIX stream socket (ListenStream=/path in "
		    "bangerd.socket)", fd);
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return bn_fail(err, BN_ESYS, errno, "fcntl fd %d", fd);
	/* For the log: the path systemd bound, which --socket may not name. */
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 &&
	    len > offsetof(struct sockaddr_un, sun_path) && sa.sun_path[0] != '\0')
		snprintf(path, pathsz, "%.*s",
		    (int)(len - offsetof(struct sockaddr_un, sun_path)), sa.sun_path);
	else
		snprintf(path, pathsz, "fd %d", fd);
	*ret_fd = fd;
	return 0;
}

/* One daemon per state directory. */
static int
lock_state_dir(const char *dir, struct bn_err *err)
{
	char path[PATH_MAX];
	int fd;

	if (mkdir_p(dir, 0700, err) < 0 ||
	    path_join(path, sizeof(path), err, "%s/bangerd.lock", dir) < 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return bn_fail(err, BN_ESYS, errno, "open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return bn_fail(err, BN_ESYS, 0, "another bangerd uses %s", dir);
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0)
		(void)!write(fd, pid, (size_t)n);
	return fd;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "debug", no_argument, NULL, 'd' },
		{ "check", no_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "runtime", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "list-steps", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *f_socket = NULL, *f_state = NULL, *f_runtime = NULL,
	    *f_config = NULL, *f_level = NULL;
	bool debug = false, check = false;
	struct config cfg;
	struct bundle bundle;
	struct bn_err err = { 0 };
	struct core *core = NULL;
	struct api_server *srv = NULL;
	enum log_level level;
	char served[PATH_MAX];
	int ch, fd, lockfd;

	while ((ch = getopt_long(argc, argv, "dnh", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': debug = true; break;
		case 'n': check = true; break;
		case 's': f_socket = optarg; break;
		case 'S': f_state = optarg; break;
		case 'r': f_runtime = optarg; break;
		case 'c': f_config = optarg; break;
		case 'l': f_level = optarg; break;
		case 'V': printf("bangerd %s\n", BANGER_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		case 'L': {
			json_t *t = core_lifecycle_steps();
			json_dumpf(t, stdout, JSON_INDENT(2));
			putchar('\n');
			json_decref(t);
			return 0;
		}
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* Short-lived operation threads would each get a malloc arena;
	 * two are plenty for a control plane and keep the footprint small. */
	mallopt(M_ARENA_MAX, 2);
	log_init("bangerd", LOG_LVL_INFO);
	config_defaults(&cfg);
	config_apply_env(&cfg);
	if (f_config)
		snprintf(cfg.config_path, sizeof(cfg.config_path), "%s", f_config);
	if (config_load_file(&cfg, &err) < 0)
		fatalx("%s", err.msg);
	if (f_socket)
		snprintf(cfg.socket, sizeof(cfg.socket), "%s", f_socket);
	if (f_state)
		snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", f_state);
	if (f_runtime)
		snprintf(cfg.runtime_dir, sizeof(cfg.runtime_dir), "%s", f_runtime);
	if (f_level)
		snprintf(cfg.log_level, sizeof(cfg.log_level), "%s", f_level);
	if (debug)
		snprintf(cfg.log_level, sizeof(cfg.log_level), "debug");
	if (log_level_parse(cfg.log_level, &level) < 0)
		fatalx("unknown log level '%s'", cfg.log_level);
	log_set_level(level);
	if (bundle_load(&bundle, cfg.runtime_dir, &err) < 0)
		fatalx("%s", err.msg);
	if (check) {
		char *dump = config_dump(&cfg, &bundle);
		printf("%s\n", dump);
		free(dump);
		return 0;
	}
	for (int i = 0; i < cfg.legacy.n; i++)
		log_warnx("deprecated key %s (see banger doctor)", cfg.legacy.keys[i]);
	for (int i = 0; i < bundle.legacy.n; i++)
		log_warnx("deprecated key %s (see banger doctor)", bundle.legacy.keys[i]);

	/* Signals are taken synchronously by the main thread; every other
	 * thread inherits the blocked mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Before anything is touched: a bad activation leaves no trace. */
	if (activated_socket(&fd, served, sizeof(served), &err) < 0)
		fatalx("%s", err.msg);
	bool activated = fd >= 0;
	if ((lockfd = lock_state_dir(cfg.state_dir, &err)) < 0)
		fatalx("%s", err.msg);
	if (core_open(&cfg, &bundle, &core, &err) < 0)
		fatalx("%s", err.msg);
	/* A socket systemd made is systemd's: its path, mode and group come
	 * from bangerd.socket, and it outlives us. */
	if (!activated) {
		if ((fd = listen_unix(cfg.socket, &err)) < 0)
			fatalx("%s", err.msg);
		snprintf(served, sizeof(served), "%s", cfg.socket);
	}
	if (api_server_start(core, fd, &srv, &err) < 0)
		fatalx("%s", err.msg);
	log_info("serving on %s%s (state %s, runtime %s)", served,
	    activated ? " (socket activation)" : "", cfg.state_dir,
	    cfg.runtime_dir);
	/* Type=notify in bangerd.service; a no-op without NOTIFY_SOCKET. */
	sd_notify(0, "READY=1");

	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: nothing to reload yet");
			continue;
		}
		log_info("signal %d: shutting down (VMs keep running)", sig);
		break;
	}
	sd_notify(0, "STOPPING=1");
	core_quiesce(core);
	api_server_stop(srv);
	if (!activated)
		unlink(cfg.socket);
	core_close(core);
	close(lockfd);
	return 0;
}
