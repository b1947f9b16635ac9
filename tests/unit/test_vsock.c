/* test_vsock.c - hybrid vsock dial and health probe against a fake VMM socket.
 *
 * A thread plays the VMM's hybrid vsock Unix socket: it reads
 * "CONNECT <port>\n" and, depending on its mode, relays to the real
 * banger-vsock-agent (started with --listen unix:...), emulates a PING-only
 * agent, never acknowledges, hangs up, or returns a canned reply.
 *
 * The agent binary is $BANGER_AGENT or runtime/banger-vsock-agent.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "vmm/vsock.h"
#include "vmm/vsock_quiet.h"

static char tmpdir[64];

/* ---------- helpers ---------- */

static int
unix_listen(const char *path)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
unix_connect(const char *path)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read one line (without '\n') with a timeout; -1 on EOF/timeout. */
static int
read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t n = 0;
	long long deadline = vsock_now_ms() + timeout_ms;
	while (n + 1 < cap) {
		long long left = deadline - vsock_now_ms();
		if (left <= 0)
			return -1;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return 0;
}

/* Read until EOF (or cap/timeout) into buf, NUL-terminated; returns length. */
static size_t
read_all(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t n = 0;
	long long deadline = vsock_now_ms() + timeout_ms;
	while (n + 1 < cap) {
		long long left = deadline - vsock_now_ms();
		if (left <= 0)
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

static void
write_str(int fd, const char *s)
{
	size_t len = strlen(s);
	while (len > 0) {
		ssize_t w = send(fd, s, len, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		s += w;
		len -= (size_t)w;
	}
}

/* ---------- the agent child ---------- */

struct agent {
	pid_t pid;
	char sock[128];
};

static const char *
agent_binary(void)
{
	const char *p = getenv("BANGER_AGENT");
	return p && *p ? p : "runtime/banger-vsock-agent";
}

static int
agent_start(struct agent *a, const char *name, const char *workdisk,
    const char *layout_content, const char *ready)
{
	char poweroff[128];
	snprintf(poweroff, sizeof(poweroff), "%s/poweroff.sh", tmpdir);
	char layout[128], listen_arg[160];
	snprintf(a->sock, sizeof(a->sock), "%s/%s.sock", tmpdir, name);
	snprintf(layout, sizeof(layout), "%s/%s.layout", tmpdir, name);
	snprintf(listen_arg, sizeof(listen_arg), "unix:%s", a->sock);
	if (layout_content != NULL) {
		FILE *f = fopen(layout, "w");
		if (f == NULL)
			return -1;
		fputs(layout_content, f);
		fclose(f);
	}
	const char *bin = agent_binary();
	char *argv[] = { (char *)bin, "--listen", listen_arg, "--workdisk",
		(char *)workdisk, "--workdev", "/dev/test-vdb",
		"--layout-state", layout, "--ready", (char *)ready,
		"--poweroff-cmd", poweroff, NULL };
	/* fork+exec rather than posix_spawn: the child asks for SIGTERM when
	 * this test dies, so a killed test leaves no agent behind.  Called
	 * before any thread exists. */
	pid_t parent = getpid();
	a->pid = fork();
	if (a->pid < 0)
		return -1;
	if (a->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		execv(bin, argv);
		_exit(127);
	}
	/* Wait until it accepts connections. */
	for (int i = 0; i < 150; i++) {
		int fd = unix_connect(a->sock);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		int st;
		if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
			a->pid = -1;
			return -1;
		}
		usleep(20 * 1000);
	}
	return -1;
}

static void
agent_stop(struct agent *a)
{
	if (a->pid > 0) {
		kill(a->pid, SIGTERM);
		waitpid(a->pid, NULL, 0);
		a->pid = -1;
	}
}

/* ---------- the fake hybrid vsock VMM socket ---------- */

enum fake_mode {
	FAKE_RELAY,     /* OK, then relay to the agent's Unix socket */
	FAKE_LEGACY,    /* OK, then answer PING with PONG, hang up otherwise */
	FAKE_NOACK,     /* read CONNECT, never answer */
	FAKE_HANGUP,    /* read CONNECT, close (guest not listening) */
	FAKE_CANNED,    /* OK, read the request head, send `canned`, close */
	FAKE_SLOWACK,   /* read CONNECT, answer OK 600 ms later like a slow
			 * guest; record whether the client was still there */
};

struct fake {
	char path[128];
	enum fake_mode mode;
	const char *target;   /* agent socket for FAKE_RELAY */
	const char *canned;
	int start_delay_ms;   /* bind only after this long */
	int lfd;
	int stop[2];
	pthread_t thread;
	int held[16];
	int nheld;
	int connections;      /* written by the thread, read after join */
	unsigned last_port;
	int late_ok_failed;   /* FAKE_SLOWACK: the OK write hit a closed peer */
	int late_ok_sent;
	char request_line[128];  /* FAKE_CANNED: the last request's first line */
};

static void
relay_bytes(int a, int b, int stopfd)
{
	int open_[2] = { 1, 1 };
	int fds[2] = { a, b };
	long long deadline = vsock_now_ms() + 5000;
	char buf[16384];
	while ((open_[0] || open_[1]) && vsock_now_ms() < deadline) {
		struct pollfd p[3] = {
			{ .fd = open_[0] ? a : -1, .events = POLLIN },
			{ .fd = open_[1] ? b : -1, .events = POLLIN },
			{ .fd = stopfd, .events = POLLIN },
		};
		if (poll(p, 3, 100) <= 0)
			continue;
		if (p[2].revents)
			return;
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t n = read(fds[i], buf, sizeof(buf));
			if (n <= 0) {
				shutdown(fds[1 - i], SHUT_WR);
				open_[i] = 0;
				continue;
			}
			for (ssize_t off = 0; off < n; ) {
				ssize_t w = send(fds[1 - i], buf + off,
				    (size_t)(n - off), MSG_NOSIGNAL);
				if (w <= 0)
					break;
				off += w;
			}
		}
	}
}

static void
fake_handle(struct fake *f, int c)
{
	char line[64];
	if (read_line(c, line, sizeof(line), 1000) < 0 ||
	    sscanf(line, "CONNECT %u", &f->last_port) != 1) {
		close(c);
		return;
	}
	switch (f->mode) {
	case FAKE_SLOWACK: {
		usleep(600 * 1000);
		/* vhost-device-vsock panics when this write fails (EPIPE). */
		const char ok[] = "OK 1073741826\n";
		ssize_t w = send(c, ok, sizeof(ok) - 1, MSG_NOSIGNAL);
		if (w != (ssize_t)sizeof(ok) - 1)
			f->late_ok_failed = 1;
		else
			f->late_ok_sent = 1;
		break;
	}
	case FAKE_NOACK:
		if (f->nheld < 16) {
			f->held[f->nheld++] = c;
			return;
		}
		break;
	case FAKE_HANGUP:
		break;
	case FAKE_LEGACY:
		write_str(c, "OK 1073741824\n");
		if (read_line(c, line, sizeof(line), 1000) == 0 &&
		    strcmp(line, "PING") == 0)
			write_str(c, "PONG\n");
		break;
	case FAKE_CANNED: {
		write_str(c, "OK 1073741825\n");
		char head[4096];
		for (int i = 0; i < 64; i++) {
			if (read_line(c, head, sizeof(head), 1000) < 0)
				break;
			if (i == 0)
				snprintf(f->request_line, sizeof(f->request_line),
				    "%.*s", (int)strcspn(head, "\r"), head);
			if (head[0] == '\0' || strcmp(head, "\r") == 0)
				break;
		}
		write_str(c, f->canned);
		break;
	}
	case FAKE_RELAY: {
		int g = unix_connect(f->target);
		if (g < 0)
			break;   /* like Firecracker: no listener, hang up */
		write_str(c, "OK 1073741826\n");
		relay_bytes(c, g, f->stop[0]);
		close(g);
		break;
	}
	}
	close(c);
}

static void *
fake_thread(void *arg)
{
	struct fake *f = arg;
	if (f->start_delay_ms > 0) {
		struct pollfd p = { .fd = f->stop[0], .events = POLLIN };
		if (poll(&p, 1, f->start_delay_ms) != 0)
			return NULL;
		f->lfd = unix_listen(f->path);
		if (f->lfd < 0)
			return NULL;
	}
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = f->lfd, .events = POLLIN },
			{ .fd = f->stop[0], .events = POLLIN },
		};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		int c = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		f->connections++;
		fake_handle(f, c);
	}
	return NULL;
}

/* target: the agent socket (FAKE_RELAY); canned: the reply (FAKE_CANNED). */
static int
fake_start(struct fake *f, const char *name, enum fake_mode mode,
    int delay_ms, const char *target, const char *canned)
{
	memset(f, 0, sizeof(*f));
	f->target = target;
	f->canned = canned;
	snprintf(f->path, sizeof(f->path), "%s/%s.vsock", tmpdir, name);
	f->mode = mode;
	f->start_delay_ms = delay_ms;
	f->lfd = -1;
	unlink(f->path);
	if (pipe2(f->stop, O_CLOEXEC) < 0)
		return -1;
	if (delay_ms == 0) {
		f->lfd = unix_listen(f->path);
		if (f->lfd < 0)
			return -1;
	}
	if (pthread_create(&f->thread, NULL, fake_thread, f) != 0)
		return -1;
	return 0;
}

static void
fake_stop(struct fake *f)
{
	if (write(f->stop[1], "x", 1) != 1)
		perror("fake_stop: write");
	pthread_join(f->thread, NULL);
	for (int i = 0; i < f->nheld; i++)
		close(f->held[i]);
	if (f->lfd >= 0)
		close(f->lfd);
	close(f->stop[0]);
	close(f->stop[1]);
	unlink(f->path);
}

/* ---------- tests ---------- */

static struct agent agent_ok, agent_degraded;

static int
test_status_names(void)
{
	fail_unless(strcmp(vsock_health_status_name(VSOCK_HEALTH_OK), "ok") ==
	    0, "ok");
	fail_unless(strcmp(vsock_health_status_name(VSOCK_HEALTH_DEGRADED),
	    "degraded") == 0, "degraded");
	fail_unless(strcmp(vsock_health_status_name(VSOCK_HEALTH_UNREACHABLE),
	    "unreachable") == 0, "unreachable");
	struct vsock_health h;
	memset(&h, 0, sizeof(h));
	h.agent = json_object();
	vsock_health_clear(&h);
	fail_unless(h.agent == NULL, "clear frees agent");
	vsock_health_clear(NULL);
	return 0;
}

static int
check_agent_doc(json_t *doc, const char *want_status, int want_mounted,
    const char *want_layout)
{
	fail_unless(json_is_object(doc), "agent JSON is an object");
	fail_unless(strcmp(json_string_value(json_object_get(doc, "status")),
	    want_status) == 0, "status %s", want_status);
	fail_unless(strcmp(json_string_value(json_object_get(doc,
	    "agent_version")), "0.7.0") == 0, "agent_version");
	fail_unless(json_integer_value(json_object_get(doc, "protocol")) == 7,
	    "protocol 7");
	fail_unless(json_array_size(json_object_get(doc, "capabilities")) == 8,
	    "capabilities: health, power, clock, identity, exec, files, "
	    "forward, exec_tty");
	fail_unless(json_is_boolean(json_object_get(doc, "ready")), "ready");
	fail_unless(json_is_object(json_object_get(doc, "checks")), "checks");
	fail_unless(json_is_string(json_object_get(doc, "hostname")),
	    "hostname");
	const char *bid = json_string_value(json_object_get(doc, "boot_id"));
	fail_unless(bid != NULL && strlen(bid) == 36 && !strchr(bid, '\n'),
	    "boot_id trimmed uuid: %s", bid ? bid : "(null)");
	fail_unless(json_is_number(json_object_get(doc, "uptime_s")),
	    "uptime_s");
	json_t *load = json_object_get(doc, "load");
	fail_unless(json_is_array(load) && json_array_size(load) == 3 &&
	    json_is_number(json_array_get(load, 2)), "load[3]");
	json_t *mem = json_object_get(doc, "memory");
	fail_unless(json_integer_value(json_object_get(mem, "total_bytes")) > 0,
	    "memory.total_bytes");
	fail_unless(json_integer_value(json_object_get(mem,
	    "available_bytes")) > 0, "memory.available_bytes");
	json_t *root = json_object_get(doc, "rootfs");
	fail_unless(json_integer_value(json_object_get(root,
	    "total_bytes")) > 0, "rootfs.total_bytes");
	fail_unless(json_is_integer(json_object_get(root, "free_bytes")),
	    "rootfs.free_bytes");
	json_t *wd = json_object_get(doc, "workdisk");
	fail_unless(json_is_boolean(json_object_get(wd, "mounted")) &&
	    json_is_true(json_object_get(wd, "mounted")) == want_mounted,
	    "workdisk.mounted");
	fail_unless(json_is_string(json_object_get(wd, "path")), "path");
	fail_unless(json_is_string(json_object_get(wd, "device")), "device");
	fail_unless(json_integer_value(json_object_get(wd, "total_bytes")) > 0,
	    "workdisk.total_bytes");
	fail_unless(strcmp(json_string_value(json_object_get(wd, "layout")),
	    want_layout) == 0, "layout %s", want_layout);
	if (!want_mounted)
		fail_unless(strcmp(json_string_value(json_object_get(wd,
		    "device")), "/dev/test-vdb") == 0, "device = --workdev");
	return 0;
}

static int
test_http_ok(void)
{
	if (agent_ok.pid <= 0)
		fail_unless(0, "agent %s did not start", agent_binary());
	struct fake f;
	fail_unless(fake_start(&f, "relay", FAKE_RELAY, 0,
	    agent_ok.sock, NULL) == 0, "fake");
	struct vsock_health h;
	vsock_probe_health(f.path, 1024, 3000, &h);
	fake_stop(&f);
	int rc = 0;
	if (h.status != VSOCK_HEALTH_OK || strcmp(h.reason, "ok") != 0 ||
	    strcmp(h.protocol, "http") != 0) {
		printf("#   got %s/%s/%s\n", vsock_health_status_name(h.status),
		    h.reason, h.protocol);
		rc = -1;
	}
	if (rc == 0)
		rc = check_agent_doc(h.agent, "ok", 1, "ok");
	int lat = h.latency_ms, proto = h.agent_protocol;
	unsigned caps = h.agent_caps;
	vsock_health_clear(&h);
	fail_unless(rc == 0, "health ok over http");
	fail_unless(f.last_port == 1024, "CONNECT 1024, got %u", f.last_port);
	fail_unless(f.connections == 1, "one connection, got %d",
	    f.connections);
	fail_unless(lat >= 0 && lat < 3000, "latency %d", lat);
	fail_unless(proto == 7, "agent protocol %d", proto);
	fail_unless(caps == (VSOCK_CAP_HEALTH | VSOCK_CAP_POWER |
	    VSOCK_CAP_CLOCK | VSOCK_CAP_IDENTITY | VSOCK_CAP_EXEC |
	    VSOCK_CAP_FILES | VSOCK_CAP_FORWARD | VSOCK_CAP_EXEC_TTY),
	    "capabilities 0x%x", caps);
	return 0;
}

static int
test_http_degraded(void)
{
	if (agent_degraded.pid <= 0)
		fail_unless(0, "agent %s did not start", agent_binary());
	struct fake f;
	fail_unless(fake_start(&f, "relay2", FAKE_RELAY, 0,
	    agent_degraded.sock, NULL) == 0, "fake");
	struct vsock_health h;
	vsock_probe_health(f.path, 1024, 3000, &h);
	fake_stop(&f);
	int rc = 0;
	if (h.status != VSOCK_HEALTH_DEGRADED ||
	    strcmp(h.reason, "agent_degraded") != 0 ||
	    strcmp(h.protocol, "http") != 0) {
		printf("#   got %s/%s/%s\n", vsock_health_status_name(h.status),
		    h.reason, h.protocol);
		rc = -1;
	}
	if (rc == 0)
		rc = check_agent_doc(h.agent, "degraded", 0, "conflicts");
	vsock_health_clear(&h);
	fail_unless(rc == 0, "degraded over http");
	return 0;
}

static int
test_legacy_ping(void)
{
	struct fake f;
	fail_unless(fake_start(&f, "legacy", FAKE_LEGACY, 0, NULL, NULL) == 0,
	    "fake");
	struct vsock_health h;
	vsock_probe_health(f.path, 52, 2000, &h);
	fake_stop(&f);
	enum vsock_health_status st = h.status;
	char reason[32], proto[8];
	snprintf(reason, sizeof(reason), "%s", h.reason);
	snprintf(proto, sizeof(proto), "%s", h.protocol);
	json_t *agent = h.agent;
	vsock_health_clear(&h);
	fail_unless(st == VSOCK_HEALTH_OK, "status %d", st);
	fail_unless(strcmp(reason, "legacy_ping") == 0, "reason %s", reason);
	fail_unless(strcmp(proto, "ping") == 0, "protocol %s", proto);
	fail_unless(agent == NULL, "no agent JSON");
	fail_unless(f.connections == 2, "HTTP then PING: %d", f.connections);
	fail_unless(f.last_port == 52, "port 52, got %u", f.last_port);
	return 0;
}

static int
test_no_ack(void)
{
	struct fake f;
	fail_unless(fake_start(&f, "noack", FAKE_NOACK, 0, NULL, NULL) == 0,
	    "fake");
	struct vsock_health h;
	long long t0 = vsock_now_ms();
	vsock_probe_health(f.path, 1024, 400, &h);
	long long el = vsock_now_ms() - t0;
	fake_stop(&f);
	enum vsock_health_status st = h.status;
	char reason[32], how[16];
	snprintf(reason, sizeof(reason), "%s", h.reason);
	snprintf(how, sizeof(how), "%s", h.how);
	vsock_health_clear(&h);
	fail_unless(st == VSOCK_HEALTH_UNREACHABLE, "status %d", st);
	fail_unless(strcmp(reason, "no_ack") == 0 ||
	    strcmp(reason, "timeout") == 0, "reason %s", reason);
	/* A VMM that says nothing is not one that hangs up. */
	fail_unless(strcmp(how, "timeout") == 0, "how %s", how);
	/* No answer at all: bounded by the ack floor, not by the timeout. */
	fail_unless(el >= VSOCK_ACK_MIN_MS - 50 && el < VSOCK_ACK_MIN_MS + 1000,
	    "bounded by the ack floor: %lld ms", el);
	return 0;
}

/* A guest that answers the CONNECT later than the caller's deadline: the
 * probe waits VSOCK_ACK_MIN_MS for it rather than closing under the VMM's
 * "OK" (vhost-device-vsock dies of that), then gives up on the rest. */
static int
test_late_ok_finds_us_there(void)
{
	struct fake f;
	struct vsock_health h;
	fail_unless(fake_start(&f, "slowack", FAKE_SLOWACK, 0, NULL, NULL) == 0,
	    "fake");
	long long t0 = vsock_now_ms();
	vsock_probe_health(f.path, 1024, 200, &h);
	long long el = vsock_now_ms() - t0;
	int st = h.status;
	vsock_health_clear(&h);
	fake_stop(&f);
	fail_unless(st == VSOCK_HEALTH_UNREACHABLE, "status %d", st);
	fail_unless(f.late_ok_sent && !f.late_ok_failed,
	    "the late OK hit a closed socket");
	fail_unless(el >= 550 && el < VSOCK_ACK_MIN_MS, "took %lld ms", el);
	return 0;
}

static int
test_hangup_before_ok(void)
{
	struct fake f;
	fail_unless(fake_start(&f, "hangup", FAKE_HANGUP, 0, NULL, NULL) == 0,
	    "fake");
	struct vsock_health h;
	long long t0 = vsock_now_ms();
	vsock_probe_health(f.path, 1024, 2000, &h);
	long long el = vsock_now_ms() - t0;
	enum vsock_health_status st = h.status;
	char reason[32], how[16];
	snprintf(reason, sizeof(reason), "%s", h.reason);
	snprintf(how, sizeof(how), "%s", h.how);
	vsock_health_clear(&h);
	fail_unless(strcmp(how, "eof") == 0 || strcmp(how, "reset") == 0,
	    "how %s", how);

	/* vsock_dial keeps retrying EOF-before-OK until its deadline. */
	struct bn_err err;
	memset(&err, 0, sizeof(err));
	int fd = -1;
	long long t1 = vsock_now_ms();
	int r = vsock_dial(f.path, 1024, t1 + 300, &fd, &err);
	long long el2 = vsock_now_ms() - t1;
	fake_stop(&f);
	fail_unless(st == VSOCK_HEALTH_UNREACHABLE, "status %d", st);
	fail_unless(strcmp(reason, "no_ack") == 0, "reason %s", reason);
	fail_unless(el < 1000, "fast: %lld ms", el);
	fail_unless(r == -1 && fd == -1, "dial fails");
	fail_unless(err.code == BN_ETIMEOUT, "timeout code, got %d (%s)",
	    err.code, err.msg);
	fail_unless(el2 >= 250 && el2 < 1500, "dial bounded: %lld ms", el2);
	fail_unless(f.connections >= 3, "retried: %d", f.connections);
	return 0;
}

static int
test_no_socket(void)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/does-not-exist.vsock", tmpdir);
	struct vsock_health h;
	long long t0 = vsock_now_ms();
	vsock_probe_health(path, 1024, 1000, &h);
	long long el = vsock_now_ms() - t0;
	enum vsock_health_status st = h.status;
	char reason[32], proto[8], how[16];
	snprintf(reason, sizeof(reason), "%s", h.reason);
	snprintf(proto, sizeof(proto), "%s", h.protocol);
	snprintf(how, sizeof(how), "%s", h.how);
	vsock_health_clear(&h);
	fail_unless(st == VSOCK_HEALTH_UNREACHABLE, "status %d", st);
	fail_unless(strcmp(reason, "vsock_connect_failed") == 0, "reason %s",
	    reason);
	fail_unless(strcmp(how, "no_socket") == 0, "how %s", how);
	fail_unless(proto[0] == '\0', "no protocol");
	fail_unless(el < 1000, "fast: %lld ms", el);

	/* Too long a path is invalid, not a hang. */
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	struct bn_err err;
	memset(&err, 0, sizeof(err));
	int fd = -1;
	fail_unless(vsock_dial(longp, 1, vsock_now_ms() + 1000, &fd, &err) ==
	    -1 && err.code == BN_EINVAL, "long path: %d", err.code);
	return 0;
}

static int
test_dial_retries_until_listener(void)
{
	if (agent_ok.pid <= 0)
		fail_unless(0, "agent did not start");
	struct fake f;
	fail_unless(fake_start(&f, "late", FAKE_RELAY, 300,
	    agent_ok.sock, NULL) == 0, "fake");
	struct bn_err err;
	memset(&err, 0, sizeof(err));
	int fd = -1;
	long long t0 = vsock_now_ms();
	int r = vsock_dial(f.path, 1024, t0 + 3000, &fd, &err);
	long long el = vsock_now_ms() - t0;
	char buf[64] = "";
	int flags = -1, fdflags = -1;
	if (r == 0) {
		flags = fcntl(fd, F_GETFL);
		fdflags = fcntl(fd, F_GETFD);
		write_str(fd, "PING\n");
		read_all(fd, buf, sizeof(buf), 2000);
		close(fd);
	}
	fake_stop(&f);
	fail_unless(r == 0, "dial: %s", err.msg);
	fail_unless(el >= 250 && el < 2000, "waited for listener: %lld ms", el);
	fail_unless((fdflags & FD_CLOEXEC) != 0, "O_CLOEXEC");
	fail_unless((flags & O_NONBLOCK) == 0, "blocking fd");
	fail_unless(strcmp(buf, "PONG\n") == 0, "PONG through relay: '%s'",
	    buf);
	return 0;
}

static int
test_wait_healthy(void)
{
	if (agent_ok.pid <= 0)
		fail_unless(0, "agent did not start");
	struct fake f;
	fail_unless(fake_start(&f, "late2", FAKE_RELAY, 300,
	    agent_ok.sock, NULL) == 0, "fake");
	struct vsock_health h;
	struct bn_err err;
	memset(&err, 0, sizeof(err));
	long long t0 = vsock_now_ms();
	int r = vsock_wait_healthy(f.path, 1024, t0 + 3000, &h, &err);
	long long el = vsock_now_ms() - t0;
	fake_stop(&f);
	enum vsock_health_status st = h.status;
	vsock_health_clear(&h);
	fail_unless(r == 0, "healthy: %s", err.msg);
	fail_unless(st == VSOCK_HEALTH_OK, "status %d", st);
	fail_unless(el >= 250 && el < 2000, "%lld ms", el);

	/* Nothing ever listens: BN_ETIMEOUT near the deadline. */
	char path[160];
	snprintf(path, sizeof(path), "%s/never.vsock", tmpdir);
	memset(&err, 0, sizeof(err));
	t0 = vsock_now_ms();
	r = vsock_wait_healthy(path, 1024, t0 + 300, &h, &err);
	el = vsock_now_ms() - t0;
	char reason[32];
	snprintf(reason, sizeof(reason), "%s", h.reason);
	vsock_health_clear(&h);
	fail_unless(r == -1 && err.code == BN_ETIMEOUT, "timeout: %d",
	    err.code);
	fail_unless(strcmp(reason, "vsock_connect_failed") == 0, "last %s",
	    reason);
	fail_unless(el >= 250 && el < 1500, "%lld ms", el);
	fail_unless(strstr(err.msg, "vsock_connect_failed") != NULL, "msg: %s",
	    err.msg);
	return 0;
}

static int
canned_probe(const char *canned, const char *want_reason,
    enum vsock_health_status want_status)
{
	struct fake f;
	fail_unless(fake_start(&f, "canned", FAKE_CANNED, 0, NULL,
	    canned) == 0, "fake");
	struct vsock_health h;
	vsock_probe_health(f.path, 1024, 1500, &h);
	fake_stop(&f);
	enum vsock_health_status st = h.status;
	char reason[32], proto[8];
	snprintf(reason, sizeof(reason), "%s", h.reason);
	snprintf(proto, sizeof(proto), "%s", h.protocol);
	int have_agent = h.agent != NULL;
	vsock_health_clear(&h);
	fail_unless(st == want_status, "status %s for %s",
	    vsock_health_status_name(st), canned);
	fail_unless(strcmp(reason, want_reason) == 0, "reason %s, want %s",
	    reason, want_reason);
	fail_unless(strcmp(proto, "http") == 0, "protocol %s", proto);
	fail_unless(have_agent == (want_status != VSOCK_HEALTH_UNREACHABLE),
	    "agent JSON kept only when usable");
	return 0;
}

/* A degraded agent's reason, where it gives one, is the health's detail. */
static int
test_degraded_detail(void)
{
	struct fake f;
	struct vsock_health h;

	fail_unless(fake_start(&f, "canned", FAKE_CANNED, 0, NULL,
	    "HTTP/1.1 200 OK\r\n\r\n{\"status\":\"degraded\",\"shares\":"
	    "{\"ok\":false,\"mounted\":1,\"failed\":1,\"detail\":"
	    "\"banger1 on /mnt/b: mount: no such device\"}}") == 0, "fake");
	vsock_probe_health(f.path, 1024, 1500, &h);
	fake_stop(&f);
	char detail[sizeof(h.not_ready)];
	snprintf(detail, sizeof(detail), "%s", h.not_ready);
	enum vsock_health_status st = h.status;
	vsock_health_clear(&h);
	fail_unless(st == VSOCK_HEALTH_DEGRADED, "status %d", st);
	fail_unless(strcmp(detail, "shared folder banger1 on /mnt/b: mount: "
	    "no such device") == 0, "detail '%s'", detail);
	return 0;
}

static int
test_bad_responses(void)
{
	if (canned_probe("HTTP/1.0 500 Internal Server Error\r\n"
	    "Content-Length: 2\r\n\r\n{}", "bad_response",
	    VSOCK_HEALTH_UNREACHABLE) != 0)
		return -1;
	if (canned_probe("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n{nope",
	    "bad_response", VSOCK_HEALTH_UNREACHABLE) != 0)
		return -1;
	if (canned_probe("HTTP/1.0 200 OK\r\n\r\n[1,2]", "bad_response",
	    VSOCK_HEALTH_UNREACHABLE) != 0)
		return -1;
	if (canned_probe("HTTP/1.0 200 OK\r\nContent-Length: 40\r\n\r\n"
	    "{\"status\":\"ok\"}", "bad_response",
	    VSOCK_HEALTH_UNREACHABLE) != 0)   /* truncated */
		return -1;
	if (canned_probe("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"weird\"}",
	    "agent_degraded", VSOCK_HEALTH_DEGRADED) != 0)
		return -1;
	/* Protocol 2: answering but not ready yet. */
	if (canned_probe("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\",\"ready\":"
	    "false,\"not_ready\":\"sshd: nothing listens on port 22\"}",
	    "not_ready", VSOCK_HEALTH_STARTING) != 0)
		return -1;
	if (canned_probe("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\",\"ready\":"
	    "true}", "ok", VSOCK_HEALTH_OK) != 0)
		return -1;
	/* No Content-Length: body runs to EOF. */
	if (canned_probe("HTTP/1.1 200 OK\r\nX: y\r\n\r\n{\"status\":\"ok\"}",
	    "ok", VSOCK_HEALTH_OK) != 0)
		return -1;
	return 0;
}

/* What an agent can do: its own list (names bangerd does not know are
 * left out), else what its protocol implies. */
static int
caps_of(const char *canned, int *proto, unsigned *caps)
{
	struct fake f;
	struct vsock_health h;

	fail_unless(fake_start(&f, "caps", FAKE_CANNED, 0, NULL, canned) == 0,
	    "fake");
	vsock_probe_health(f.path, 1024, 1500, &h);
	fake_stop(&f);
	*proto = h.agent_protocol;
	*caps = h.agent_caps;
	vsock_health_clear(&h);
	return 0;
}

static int
test_agent_capabilities(void)
{
	int proto;
	unsigned caps;

	caps_of("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\"}", &proto, &caps);
	fail_unless(proto == 1 && caps == VSOCK_CAP_HEALTH,
	    "protocol 1: health only (%d, 0x%x)", proto, caps);
	caps_of("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\",\"protocol\":2}",
	    &proto, &caps);
	fail_unless(proto == 2 && caps == (VSOCK_CAP_HEALTH | VSOCK_CAP_POWER),
	    "protocol 2: health and power (%d, 0x%x)", proto, caps);
	caps_of("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\",\"protocol\":3,"
	    "\"capabilities\":[\"health\",\"warp\",7,\"clock\"]}", &proto, &caps);
	fail_unless(proto == 3 && caps == (VSOCK_CAP_HEALTH | VSOCK_CAP_CLOCK),
	    "protocol 3: its list, unknown names ignored (%d, 0x%x)", proto,
	    caps);
	caps_of("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\",\"protocol\":4,"
	    "\"capabilities\":[\"health\",\"power\",\"exec\"]}", &proto, &caps);
	fail_unless(proto == 4 && caps == (VSOCK_CAP_HEALTH | VSOCK_CAP_POWER |
	    VSOCK_CAP_EXEC), "protocol 4: exec is a known name (%d, 0x%x)",
	    proto, caps);
	caps_of("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\",\"protocol\":5,"
	    "\"capabilities\":[\"health\",\"exec\",\"files\"]}", &proto, &caps);
	fail_unless(proto == 5 && caps == (VSOCK_CAP_HEALTH | VSOCK_CAP_EXEC |
	    VSOCK_CAP_FILES), "protocol 5: files is a known name (%d, 0x%x)",
	    proto, caps);
	caps_of("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\",\"protocol\":6,"
	    "\"capabilities\":[\"health\",\"forward\"]}", &proto, &caps);
	fail_unless(proto == 6 && caps == (VSOCK_CAP_HEALTH |
	    VSOCK_CAP_FORWARD), "protocol 6: forward is a known name (%d, "
	    "0x%x)", proto, caps);
	caps_of("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\",\"protocol\":7,"
	    "\"capabilities\":[\"exec\",\"exec_tty\"]}", &proto, &caps);
	fail_unless(proto == 7 && caps == (VSOCK_CAP_EXEC |
	    VSOCK_CAP_EXEC_TTY), "protocol 7: exec_tty is a known name (%d, "
	    "0x%x)", proto, caps);
	json_t *names = vsock_caps_json(VSOCK_CAP_POWER | VSOCK_CAP_CLOCK |
	    VSOCK_CAP_EXEC | VSOCK_CAP_FILES);
	char *s = json_dumps(names, JSON_COMPACT);
	json_decref(names);
	int same = s != NULL &&
	    strcmp(s, "[\"power\",\"clock\",\"exec\",\"files\"]") == 0;
	free(s);
	fail_unless(same, "vsock_caps_json names the bits");
	return 0;
}

/* A probe that answers "not ready" names the check, and waiting for it
 * ends with not_ready, not a timeout. */
static int
test_not_ready(void)
{
	struct fake f;
	struct vsock_health h;
	struct bn_err err;
	fail_unless(fake_start(&f, "notready", FAKE_CANNED, 0, NULL,
	    "HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\",\"ready\":false,"
	    "\"not_ready\":\"network: 10.0.0.2 is not up on eth0\"}") == 0, "fake");
	vsock_probe_health(f.path, 1024, 1500, &h);
	int st = h.status;
	char why[160];
	snprintf(why, sizeof(why), "%s", h.not_ready);
	vsock_health_clear(&h);
	memset(&err, 0, sizeof(err));
	int rc = vsock_wait_healthy(f.path, 1024, vsock_now_ms() + 300, &h, &err);
	vsock_health_clear(&h);
	fake_stop(&f);
	fail_unless(st == VSOCK_HEALTH_STARTING, "status %d", st);
	fail_unless(strcmp(why, "network: 10.0.0.2 is not up on eth0") == 0,
	    "detail %s", why);
	fail_unless(strcmp(vsock_health_status_name(VSOCK_HEALTH_STARTING),
	    "starting") == 0, "name");
	fail_unless(rc < 0 && err.code == BN_ENOT_READY, "code %d", err.code);
	fail_unless(strstr(err.msg, "network: 10.0.0.2") != NULL, "%s", err.msg);
	fail_unless(strcmp(f.request_line, "GET /healthz HTTP/1.0") == 0,
	    "a plain probe asks: %s", f.request_line);

	/* A probe that lets the agent wait until it is ready says so. */
	fail_unless(fake_start(&f, "notready2", FAKE_CANNED, 0, NULL,
	    "HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\",\"ready\":false,"
	    "\"not_ready\":\"sshd: nothing listens on port 22\"}") == 0, "fake");
	vsock_probe_health_wait(f.path, 1024, 1500, 700, &h);
	st = h.status;
	vsock_health_clear(&h);
	fake_stop(&f);
	fail_unless(st == VSOCK_HEALTH_STARTING, "status %d", st);
	fail_unless(strcmp(f.request_line, "GET /healthz?wait_ms=700 HTTP/1.0") ==
	    0, "a waiting probe asks: %s", f.request_line);
	return 0;
}

/* POST /poweroff through the hybrid socket: the real agent runs its
 * --poweroff-cmd with the mode; an old agent's 404 comes back as such; no
 * agent is an error.  Last: an agent powers off only once. */
static int
test_poweroff(void)
{
	if (agent_ok.pid <= 0)
		fail_unless(0, "agent did not start");
	struct fake f;
	struct bn_err err;
	int status = 0;
	char out[160], buf[64] = "";
	snprintf(out, sizeof(out), "%s/poweroff.out", tmpdir);
	fail_unless(fake_start(&f, "relay-off", FAKE_RELAY, 0, agent_ok.sock,
	    NULL) == 0, "fake");
	int rc = vsock_agent_poweroff(f.path, 1024, "bogus", 2000, &status, &err);
	fail_unless(rc == 0 && status == 400, "bad mode: %d %d", rc, status);
	rc = vsock_agent_poweroff(f.path, 1024, "reboot", 2000, &status, &err);
	fake_stop(&f);
	fail_unless(rc == 0 && status == 202, "rc %d status %d (%s)", rc, status,
	    rc ? err.msg : "");
	for (int i = 0; i < 100 && buf[0] == '\0'; i++) {
		FILE *o = fopen(out, "r");
		if (o != NULL) {
			if (fgets(buf, sizeof(buf), o) == NULL)
				buf[0] = '\0';
			fclose(o);
		}
		usleep(20 * 1000);
	}
	fail_unless(strcmp(buf, "reboot\n") == 0, "command got '%s'", buf);

	fail_unless(fake_start(&f, "old-agent", FAKE_CANNED, 0, NULL,
	    "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}") == 0, "fake");
	rc = vsock_agent_poweroff(f.path, 1024, "poweroff", 2000, &status, &err);
	fake_stop(&f);
	fail_unless(rc == 0 && status == 404, "old agent: %d %d", rc, status);

	fail_unless(fake_start(&f, "hangup-off", FAKE_HANGUP, 0, NULL, NULL) == 0,
	    "fake");
	rc = vsock_agent_poweroff(f.path, 1024, "poweroff", 1000, &status, &err);
	fake_stop(&f);
	fail_unless(rc < 0, "no agent is an error");
	return 0;
}

static int
test_agent_stuck_client(void)
{
	if (agent_ok.pid <= 0)
		fail_unless(0, "agent did not start");
	/* A client that connects and sends nothing (or half a head) must not
	 * block others. */
	int idle = unix_connect(agent_ok.sock);
	int half = unix_connect(agent_ok.sock);
	fail_unless(idle >= 0 && half >= 0, "connect");
	write_str(half, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
	int c = unix_connect(agent_ok.sock);
	fail_unless(c >= 0, "connect");
	write_str(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	char buf[4096];
	long long t0 = vsock_now_ms();
	read_all(c, buf, sizeof(buf), 2000);
	long long el = vsock_now_ms() - t0;
	close(c);
	close(idle);
	close(half);
	fail_unless(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "200: %.40s",
	    buf);
	fail_unless(strstr(buf, "Connection: close\r\n") != NULL, "close");
	fail_unless(strstr(buf, "Content-Length: ") != NULL, "length");
	fail_unless(el < 1000, "not blocked: %lld ms", el);
	return 0;
}

static int
agent_request(const char *req, char *buf, size_t cap)
{
	int c = unix_connect(agent_ok.sock);
	if (c < 0)
		return -1;
	write_str(c, req);
	read_all(c, buf, cap, 2000);
	close(c);
	return 0;
}

static int
test_agent_direct(void)
{
	if (agent_ok.pid <= 0)
		fail_unless(0, "agent did not start");
	char buf[4096];
	fail_unless(agent_request("PING\r\n", buf, sizeof(buf)) == 0, "ping");
	fail_unless(strcmp(buf, "PONG\n") == 0, "PONG: %s", buf);
	agent_request("GET / HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	fail_unless(strncmp(buf, "HTTP/1.1 404 ", 13) == 0 &&
	    strstr(buf, "\r\n\r\n{\"error\":\"not found\"}") != NULL, "404: %s",
	    buf);
	agent_request("DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", buf,
	    sizeof(buf));
	fail_unless(strncmp(buf, "HTTP/1.1 405 ", 13) == 0, "405: %.30s", buf);
	agent_request("nonsense\r\n\r\n", buf, sizeof(buf));
	fail_unless(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "400: %.30s", buf);
	agent_request("GET /healthz?x=1 HTTP/1.0\n\n", buf, sizeof(buf));
	fail_unless(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "LF-only: %.30s",
	    buf);
	agent_request("HEAD /healthz HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	fail_unless(strncmp(buf, "HTTP/1.1 200 ", 13) == 0 &&
	    strstr(buf, "\r\n\r\n")[4] == '\0', "HEAD has no body");

	/* A head over 8 KiB is refused. */
	char *big = malloc(10000);
	fail_unless(big != NULL, "malloc");
	strcpy(big, "GET /healthz HTTP/1.1\r\nX-Big: ");
	size_t n = strlen(big);
	memset(big + n, 'a', 9000);
	strcpy(big + n + 9000, "\r\n\r\n");
	agent_request(big, buf, sizeof(buf));
	free(big);
	fail_unless(strncmp(buf, "HTTP/1.1 431 ", 13) == 0, "431: %.30s", buf);
	return 0;
}

static int
count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static int
test_no_fd_leak(void)
{
	struct fake legacy, hang, noack;
	fail_unless(fake_start(&legacy, "l2", FAKE_LEGACY, 0, NULL, NULL) == 0,
	    "fake");
	fail_unless(fake_start(&hang, "h2", FAKE_HANGUP, 0, NULL, NULL) == 0,
	    "fake");
	fail_unless(fake_start(&noack, "n2", FAKE_NOACK, 0, NULL, NULL) == 0,
	    "fake");
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/missing.vsock", tmpdir);
	int before = count_fds();
	struct vsock_health h;
	for (int i = 0; i < 5; i++) {
		vsock_probe_health(legacy.path, 1024, 1000, &h);
		vsock_health_clear(&h);
		vsock_probe_health(hang.path, 1024, 1000, &h);
		vsock_health_clear(&h);
		vsock_probe_health(missing, 1024, 1000, &h);
		vsock_health_clear(&h);
	}
	vsock_probe_health(noack.path, 1024, 100, &h);
	vsock_health_clear(&h);
	int after = count_fds();
	/* The NOACK fake keeps its side of each connection open in this
	 * process; everything else must be back to the starting count. */
	fake_stop(&legacy);
	fake_stop(&hang);
	fake_stop(&noack);
	fail_unless(after - before == noack.nheld, "fds %d -> %d (held %d)",
	    before, after, noack.nheld);
	return 0;
}

static int
mkdir_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/banger-vsock-test.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static void
rm_tmp(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* ---------- a paused VM's vsock stays still (vsock_quiet.c) ---------- */

static void *
quiet_reader(void *arg)
{
	int fd = *(int *)arg;
	char buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	vsock_conn_close(fd);
	return NULL;
}

struct quiet_dial {
	const char *path;
	int fd, rc;
	long long took;
};

static void *
quiet_dialer(void *arg)
{
	struct quiet_dial *d = arg;
	struct bn_err err;
	long long t0 = vsock_now_ms();

	d->rc = vsock_dial(d->path, 1024, vsock_now_ms() + 3000, &d->fd, &err);
	d->took = vsock_now_ms() - t0;
	return NULL;
}

/* A quiesce ends the open connections and waits for their owners; a dial
 * while quiet waits and never reaches the socket; the end of the quiet
 * lets a waiting dial go on; an owner that keeps its connection makes the
 * quiesce fail and leaves nothing quiet. */
static int
test_quiet(void)
{
	struct fake f;
	struct vsock_health h;
	struct bn_err err;
	struct quiet_dial d = { 0 };
	pthread_t th;
	int fd = -1;

	if (agent_ok.pid <= 0)
		fail_unless(0, "agent %s did not start", agent_binary());
	fail_unless(fake_start(&f, "quiet", FAKE_RELAY, 0, agent_ok.sock,
	    NULL) == 0, "fake");
	d.path = f.path;
	fail_unless(vsock_dial(f.path, 1024, vsock_now_ms() + 3000, &fd,
	    &err) == 0, "dial: %s", err.msg);
	fail_unless(vsock_conn_count(f.path) == 1, "one connection counted");
	fail_unless(pthread_create(&th, NULL, quiet_reader, &fd) == 0, "thread");
	fail_unless(vsock_quiesce(f.path, true, 2000, &err) == 0, "quiesce: %s",
	    err.msg);
	pthread_join(th, NULL);
	fail_unless(vsock_conn_count(f.path) == 0 && vsock_is_quiet(f.path),
	    "quiet with nothing open");

	vsock_probe_health(f.path, 1024, 300, &h);
	int st = h.status;
	char how[16];
	snprintf(how, sizeof(how), "%s", h.how);
	vsock_health_clear(&h);
	fail_unless(st == VSOCK_HEALTH_UNREACHABLE && strcmp(how, "paused") == 0,
	    "a probe while quiet: %d %s", st, how);

	fail_unless(pthread_create(&th, NULL, quiet_dialer, &d) == 0, "thread");
	usleep(300 * 1000);
	fail_unless(vsock_conn_count(f.path) == 0, "a dial went through quiet");
	vsock_unquiesce(f.path);
	pthread_join(th, NULL);
	fail_unless(d.rc == 0 && d.took >= 250, "the waiting dial: rc %d after "
	    "%lld ms", d.rc, d.took);
	vsock_conn_close(d.fd);

	/* Its owner never closes it: the quiesce gives up, all as before. */
	fail_unless(vsock_dial(f.path, 1024, vsock_now_ms() + 3000, &fd,
	    &err) == 0, "dial: %s", err.msg);
	long long t0 = vsock_now_ms();
	fail_unless(vsock_quiesce(f.path, true, 300, &err) < 0 &&
	    err.code == BN_ESTATE, "quiesce with a connection kept open");
	fail_unless(vsock_now_ms() - t0 >= 250, "gave up too soon");
	fail_unless(!vsock_is_quiet(f.path), "left quiet after failing");
	vsock_conn_close(fd);

	/* Without end_open (the VMM paused by itself): open ones stay. */
	fail_unless(vsock_dial(f.path, 1024, vsock_now_ms() + 3000, &fd,
	    &err) == 0, "dial: %s", err.msg);
	fail_unless(vsock_quiesce(f.path, false, 0, &err) == 0, "hold");
	fail_unless(vsock_is_quiet(f.path) && vsock_conn_count(f.path) == 1,
	    "hold only");
	const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
	char buf[256];
	fail_unless(write(fd, req, sizeof(req) - 1) == sizeof(req) - 1 &&
	    read_all(fd, buf, sizeof(buf), 3000) > 0 &&
	    strncmp(buf, "HTTP/1.", 7) == 0, "the open one still works");
	vsock_unquiesce(f.path);
	vsock_conn_close(fd);
	fake_stop(&f);
	fail_unless(f.connections == 4, "connections reaching the socket: %d",
	    f.connections);
	return 0;
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	tap_begin();
	if (mkdir_tmp() < 0) {
		perror("mkdtemp");
		return 1;
	}
	char wd[160];
	snprintf(wd, sizeof(wd), "%s/workdisk", tmpdir);
	mkdir(wd, 0755);
	agent_ok.pid = agent_degraded.pid = -1;
	/* --poweroff-cmd: records what the agent was asked for. */
	char script[160];
	snprintf(script, sizeof(script), "%s/poweroff.sh", tmpdir);
	FILE *sf = fopen(script, "w");
	if (sf == NULL) {
		perror(script);
		return 1;
	}
	fprintf(sf, "#!/bin/sh\necho \"$1\" > %s/poweroff.out\n", tmpdir);
	fclose(sf);
	chmod(script, 0755);
	if (agent_start(&agent_ok, "agent-ok", "/", "ok\n", "workdisk") < 0)
		printf("# cannot start agent %s (set BANGER_AGENT)\n",
		    agent_binary());
	if (agent_start(&agent_degraded, "agent-deg", wd, "conflicts since "
	    "boot\n", "none") < 0)
		printf("# cannot start agent %s\n", agent_binary());

	RUN_TEST(test_status_names);
	RUN_TEST(test_http_ok);
	RUN_TEST(test_http_degraded);
	RUN_TEST(test_legacy_ping);
	RUN_TEST(test_agent_capabilities);
	RUN_TEST(test_no_ack);
	RUN_TEST(test_late_ok_finds_us_there);
	RUN_TEST(test_hangup_before_ok);
	RUN_TEST(test_no_socket);
	RUN_TEST(test_dial_retries_until_listener);
	RUN_TEST(test_wait_healthy);
	RUN_TEST(test_bad_responses);
	RUN_TEST(test_degraded_detail);
	RUN_TEST(test_agent_stuck_client);
	RUN_TEST(test_agent_direct);
	RUN_TEST(test_no_fd_leak);
	RUN_TEST(test_not_ready);
	RUN_TEST(test_poweroff);
	RUN_TEST(test_quiet);

	agent_stop(&agent_ok);
	agent_stop(&agent_degraded);
	rm_tmp();
	return tap_end();
}
