/* banger-vsock-agent - the guest health agent of banger.
 *
 * Listens on AF_VSOCK (default port 1024, any CID) or, for tests, on a Unix
 * socket, and answers each connection once: a bare "PING" line gets "PONG",
 * an HTTP "GET /healthz" gets the JSON document built in health.c (with the
 * readiness checks bangerd waits for), "POST /poweroff" shuts the guest
 * down through its init system (power.c), "POST /exec" runs a command and
 * streams its output (exec.c), "GET /files" and "PUT /files" copy files
 * as tar streams (files.c), "POST /forward" turns the connection into a
 * pipe to a TCP port of the guest (forward.c).  In a guest it also acts
 * on the power key, so the ACPI power button stops images that have no
 * handler.
 *
 * One detached thread per connection (at most AGENT_MAX_CONNS at a time);
 * each connection has its own I/O deadline, so a stuck client cannot block
 * the others.  SIGTERM/SIGINT end the accept loop cleanly (a Unix socket is
 * unlinked).  Errors are logged to stderr, one line each; nothing else is
 * printed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<linux/vm_sockets.h>)
#include <linux/vm_sockets.h>
#define HAVE_LINUX_VM_SOCKETS_H 1
#endif
#endif

#ifndef HAVE_LINUX_VM_SOCKETS_H
/* musl ships no kernel headers: the stable ABI of <linux/vm_sockets.h>. */
struct sockaddr_vm {
	sa_family_t svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	unsigned char svm_flags;
	unsigned char svm_zero[sizeof(struct sockaddr) - sizeof(sa_family_t) -
	    sizeof(unsigned short) - 2 * sizeof(unsigned int) - 1];
};
#define VMADDR_CID_ANY (-1U)
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* A connection's thread: small, since there may be AGENT_MAX_CONNS of
 * them (agent.h says why so many); handlers keep large buffers on the
 * heap. */
#define THREAD_STACK (256 * 1024)

static atomic_int active_conns;

struct conn {
	int fd;
	const struct agent_config *cfg;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: " AGENT_NAME " [--listen vsock:PORT|unix:PATH] [options]\n"
	    "\n"
	    "Guest health agent of banger: answers GET /healthz (JSON) and the\n"
	    "legacy PING line.\n"
	    "\n"
	    "  --listen ADDR         vsock:PORT (any CID) or unix:PATH "
	    "(default vsock:%u)\n"
	    "  --port N              legacy alias for --listen vsock:N\n"
	    "  --layout-state FILE   work-disk layout state (default %s)\n"
	    "  --workdisk PATH       work-disk mount point (default %s)\n"
	    "  --workdev DEV         work-disk device (default %s)\n"
	    "  --ready CHECKS        readiness checks: sshd,workdisk,network, all\n"
	    "                        or none (default all)\n"
	    "  --ssh-port N          port the sshd check looks at (default %u)\n"
	    "  --poweroff-cmd PATH   run PATH poweroff|reboot for POST /poweroff\n"
	    "                        (default: the system's poweroff or reboot;\n"
	    "                        needed on a Unix socket)\n"
	    "  --power-key           act on the power key (default on vsock)\n"
	    "  --no-power-key        do not\n"
	    "  --clock-file PATH     not in a guest: POST /clock writes the time\n"
	    "                        asked for to PATH (the host clock is never "
	    "set)\n"
	    "  --identity-file PATH  not in a guest: POST /identity writes what\n"
	    "                        it would set to PATH\n"
	    "  --allow-exec          not in a guest: serve POST /exec anyway "
	    "(the\n"
	    "                        commands run on this host)\n"
	    "  --allow-files         not in a guest: serve GET and PUT /files "
	    "anyway\n"
	    "                        (they read and write this host's files)\n"
	    "  --allow-forward       not in a guest: serve POST /forward "
	    "anyway\n"
	    "                        (it connects to this host's loopback)\n"
	    "  --test-routes         also serve POST /echo (tests of the "
	    "transport)\n"
	    "  --input-dir DIR       where the evdev devices are (default %s)\n"
	    "  --version             print the version and exit\n"
	    "  --help                print this help and exit\n",
	    AGENT_DEFAULT_PORT, AGENT_DEFAULT_LAYOUT_STATE,
	    AGENT_DEFAULT_WORKDISK, AGENT_DEFAULT_WORKDEV,
	    AGENT_DEFAULT_SSH_PORT, AGENT_DEFAULT_INPUT_DIR);
}

static int
parse_port(const char *s, unsigned *ret)
{
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	char *end = NULL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT_MAX - 1)
		return -1;
	*ret = (unsigned)v;
	return 0;
}

static void *
conn_thread(void *arg)
{
	struct conn *c = arg;
	serve_connection(c->fd, c->cfg);
	close(c->fd);
	free(c);
	atomic_fetch_sub(&active_conns, 1);
	return NULL;
}

static int
listen_vsock(unsigned port)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		agent_log("socket(AF_VSOCK): %s", strerror(errno));
		return -1;
	}
	struct sockaddr_vm sa;
	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = VMADDR_CID_ANY;
	sa.svm_port = port;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0) {
		agent_log("listen on vsock port %u: %s", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Remove path when it is a socket nobody listens on any more. */
static int
remove_stale_socket(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		agent_log("%s exists and is not a socket", path);
		return -1;
	}
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -1;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	int r = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(probe);
	if (r == 0) {
		agent_log("%s: another agent is already listening", path);
		return -1;
	}
	if (e != ECONNREFUSED) {
		agent_log("%s: %s", path, strerror(e));
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		agent_log("unlink %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
listen_unix(const char *path)
{
	struct sockaddr_un sa;
	if (path[0] == '\0' || strlen(path) >= sizeof(sa.sun_path)) {
		agent_log("unix socket path is empty or too long: %s", path);
		return -1;
	}
	if (remove_stale_socket(path) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		agent_log("socket(AF_UNIX): %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0) {
		agent_log("listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void
dispatch(int cfd, const struct agent_config *cfg, const pthread_attr_t *attr)
{
	if (atomic_fetch_add(&active_conns, 1) >= AGENT_MAX_CONNS) {
		atomic_fetch_sub(&active_conns, 1);
		agent_log("too many connections (%d), dropping one",
		    AGENT_MAX_CONNS);
		close(cfd);
		return;
	}
	struct conn *c = malloc(sizeof(*c));
	if (c == NULL) {
		atomic_fetch_sub(&active_conns, 1);
		agent_log("out of memory accepting a connection");
		close(cfd);
		return;
	}
	c->fd = cfd;
	c->cfg = cfg;
	pthread_t tid;
	int r = pthread_create(&tid, attr, conn_thread, c);
	if (r != 0) {
		atomic_fetch_sub(&active_conns, 1);
		agent_log("pthread_create: %s", strerror(r));
		close(cfd);
		free(c);
	}
}

int
main(int argc, char **argv)
{
	struct agent_config cfg = {
		.layout_state = AGENT_DEFAULT_LAYOUT_STATE,
		.workdisk = AGENT_DEFAULT_WORKDISK,
		.workdev = AGENT_DEFAULT_WORKDEV,
		.ready = READY_ALL,
		.ssh_port = AGENT_DEFAULT_SSH_PORT,
		.power_key = -1,
		.input_dir = AGENT_DEFAULT_INPUT_DIR,
	};
	const char *listen_addr = NULL;
	char port_addr[32];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		const char *name = a;
		char namebuf[32];
		/* --opt=value and --opt value */
		const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
		if (eq != NULL && (size_t)(eq - a) < sizeof(namebuf)) {
			memcpy(namebuf, a, (size_t)(eq - a));
			namebuf[eq - a] = '\0';
			name = namebuf;
			val = eq + 1;
		}
		if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
			printf("%s %s\n", AGENT_NAME, AGENT_VERSION);
			return 0;
		}
		if (strcmp(name, "--test-routes") == 0) {
			cfg.test_routes = 1;
			continue;
		}
		if (strcmp(name, "--allow-exec") == 0) {
			cfg.allow_exec = 1;
			continue;
		}
		if (strcmp(name, "--allow-files") == 0) {
			cfg.allow_files = 1;
			continue;
		}
		if (strcmp(name, "--allow-forward") == 0) {
			cfg.allow_forward = 1;
			continue;
		}
		if (strcmp(name, "--power-key") == 0 ||
		    strcmp(name, "--no-power-key") == 0) {
			cfg.power_key = strcmp(name, "--power-key") == 0;
			continue;
		}
		int known = strcmp(name, "--listen") == 0 ||
		    strcmp(name, "--ready") == 0 ||
		    strcmp(name, "--ssh-port") == 0 ||
		    strcmp(name, "--poweroff-cmd") == 0 ||
		    strcmp(name, "--input-dir") == 0 ||
		    strcmp(name, "--clock-file") == 0 ||
		    strcmp(name, "--identity-file") == 0 ||
		    strcmp(name, "--port") == 0 ||
		    strcmp(name, "--layout-state") == 0 ||
		    strcmp(name, "--workdisk") == 0 ||
		    strcmp(name, "--workdev") == 0;
		if (!known) {
			fprintf(stderr, "%s: unknown argument: %s\n",
			    AGENT_NAME, a);
			usage(stderr);
			return 2;
		}
		if (val == NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: %s needs a value\n",
				    AGENT_NAME, name);
				return 2;
			}
			val = argv[++i];
		}
		if (strcmp(name, "--listen") == 0) {
			listen_addr = val;
		} else if (strcmp(name, "--port") == 0) {
			unsigned p;
			if (parse_port(val, &p) < 0) {
				fprintf(stderr, "%s: invalid port: %s\n",
				    AGENT_NAME, val);
				return 2;
			}
			snprintf(port_addr, sizeof(port_addr), "vsock:%u", p);
			listen_addr = port_addr;
		} else if (strcmp(name, "--ready") == 0) {
			if (ready_parse(val, &cfg.ready) < 0) {
				fprintf(stderr, "%s: --ready wants a list of "
				    "sshd, workdisk, network (or all, none), "
				    "got %s\n", AGENT_NAME, val);
				return 2;
			}
		} else if (strcmp(name, "--ssh-port") == 0) {
			if (parse_port(val, &cfg.ssh_port) < 0 ||
			    cfg.ssh_port == 0 || cfg.ssh_port > 65535) {
				fprintf(stderr, "%s: invalid port: %s\n",
				    AGENT_NAME, val);
				return 2;
			}
		} else if (strcmp(name, "--poweroff-cmd") == 0) {
			if (val[0] != '/') {
				fprintf(stderr, "%s: --poweroff-cmd wants an "
				    "absolute path, got %s\n", AGENT_NAME, val);
				return 2;
			}
			cfg.poweroff_cmd = val;
		} else if (strcmp(name, "--clock-file") == 0) {
			cfg.clock_file = val;
		} else if (strcmp(name, "--identity-file") == 0) {
			cfg.identity_file = val;
		} else if (strcmp(name, "--input-dir") == 0) {
			cfg.input_dir = val;
		} else if (strcmp(name, "--layout-state") == 0) {
			cfg.layout_state = val;
		} else if (strcmp(name, "--workdisk") == 0) {
			cfg.workdisk = val;
		} else {
			cfg.workdev = val;
		}
	}
	if (listen_addr == NULL) {
		snprintf(port_addr, sizeof(port_addr), "vsock:%u",
		    AGENT_DEFAULT_PORT);
		listen_addr = port_addr;
	}

	signal(SIGPIPE, SIG_IGN);
	/* Children are waited for by pid (exec.c says how); an ignored
	 * SIGCHLD inherited from whoever started us would have the kernel
	 * reap them first and lose their status. */
	signal(SIGCHLD, SIG_DFL);
	/* Block the stop signals everywhere; the main loop takes them from a
	 * signalfd. Threads created later inherit the mask. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	int sfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		agent_log("signalfd: %s", strerror(errno));
		return 1;
	}

	int lfd;
	const char *unix_path = NULL;
	if (strncmp(listen_addr, "vsock:", 6) == 0) {
		unsigned port;
		if (parse_port(listen_addr + 6, &port) < 0) {
			fprintf(stderr, "%s: invalid vsock port: %s\n",
			    AGENT_NAME, listen_addr);
			return 2;
		}
		lfd = listen_vsock(port);
		cfg.in_guest = 1;
	} else if (strncmp(listen_addr, "unix:", 5) == 0) {
		unix_path = listen_addr + 5;
		lfd = listen_unix(unix_path);
	} else {
		fprintf(stderr, "%s: --listen wants vsock:PORT or unix:PATH, "
		    "got %s\n", AGENT_NAME, listen_addr);
		return 2;
	}
	if (lfd < 0)
		return 1;

	if (cfg.power_key == 1 || (cfg.power_key == -1 && cfg.in_guest))
		power_key_start(&cfg);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);

	int rc = 0;
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = lfd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			agent_log("poll: %s", strerror(errno));
			rc = 1;
			break;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			ssize_t n = read(sfd, &si, sizeof(si));
			(void)n;
			break;
		}
		if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP)))
			continue;
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EINTR && errno != EAGAIN &&
			    errno != EWOULDBLOCK && errno != ECONNABORTED &&
			    errno != EPROTO) {
				/* EMFILE, ENOMEM...: back off instead of spinning. */
				agent_log("accept: %s", strerror(errno));
				usleep(100 * 1000);
			}
			continue;
		}
		dispatch(cfd, &cfg, &attr);
	}

	pthread_attr_destroy(&attr);
	close(lfd);
	close(sfd);
	if (unix_path != NULL)
		unlink(unix_path);
	return rc;
}
