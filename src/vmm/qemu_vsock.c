/* qemu_vsock.c - when bangerd may touch a QEMU VM's vsock.
 *
 * vhost-device-vsock 0.3.0 loses its vsock for good when something
 * happens on its host side (vsock.sock) while one of its rings is not
 * set up: the event makes the backend process a ring that is not ready,
 * the error goes up to vhost-user-backend's vring worker, whose loop
 * returns on any error, and that thread ends without a word.  The helper
 * and QEMU live on; the kernel still queues connections on vsock.sock,
 * but nothing reads them, so every CONNECT after that waits in vain
 * (no_ack) until the VM stops.  Later upstream releases skip such
 * events; 0.3.0 is what Debian ships.  Two windows have no rings:
 *
 * - the boot, from QEMU sending the guest's memory table (the guest's
 *   vsock driver starting) until the TX ring is set up: bangerd's boot
 *   probes wait until both rings are up (qemu_vsock_ready);
 * - a pause: QMP "stop" takes the rings back (GET_VRING_BASE) until
 *   "cont".  A new connection, a write and a close on an open one each
 *   kill the vsock then (measured in tests/unit/test_qemu.c); an open
 *   connection left alone does not.  So a pause first ends bangerd's
 *   connections to the VM and holds new ones back (vsock_quiet.c), waits
 *   until the helper has dropped them too (qemu_vsock_held), and only
 *   then stops the VM; the resume waits for the rings before it lets
 *   dials go on.
 *
 * What shows it from outside: the worker's epoll (vhost-user-backend)
 * watches its exit event under id 3 (the queue count) and the vsock
 * backend's own epoll under id 4 from the start; QEMU starting a ring
 * adds that ring's kick eventfd under its index, 0 (RX) and 1 (TX), and
 * the backend marks the ring ready just before.  The backend's epoll
 * watches vsock.sock's listening socket and each host connection it
 * accepted, until it is done with it.  /proc/PID/fdinfo of an epoll lists
 * each watched fd as "tfd: FD events: HEX data: HEX ...". */
#include "vmm/qemu_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"
#include "vmm/vsock_quiet.h"

/* The watched fds of one epoll's fdinfo: their numbers and ids. */
struct epoll_watch {
	int n;
	int tfd[64];
	unsigned long long data[64];
};

static void
epoll_parse(const char *fdinfo, struct epoll_watch *w)
{
	const char *line = fdinfo;

	w->n = 0;
	while (line != NULL && *line && w->n < 64) {
		const char *d;
		char *end;
		if (strncmp(line, "tfd:", 4) == 0 &&
		    (d = strstr(line, " data:")) != NULL) {
			long fd = strtol(line + 4, &end, 10);
			unsigned long long v = strtoull(d + 6, &end, 16);
			if (end != d + 6 && fd >= 0) {
				w->tfd[w->n] = (int)fd;
				w->data[w->n++] = v;
			}
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
}

int
qemu_helper_epoll_state(const char *fdinfo)
{
	struct epoll_watch w;
	unsigned long long ids = 0;

	epoll_parse(fdinfo, &w);
	for (int i = 0; i < w.n; i++)
		if (w.data[i] < 64)
			ids |= 1ULL << w.data[i];
	if ((ids & 0x18) != 0x18)
		return -1;      /* not the vring worker's epoll */
	return (ids & 0x3) == 0x3 ? 1 : 0;
}

/* The helper's pid, when it runs and is this VM's; else 0. */
static pid_t
helper_running(const struct vmm_params *p)
{
	struct qemu_files f;
	struct bn_err ignored;

	if (qemu_files(p->vmdir, &f, &ignored) < 0)
		return 0;
	pid_t pid = qemu_pid_read(f.helper_pid);
	const char *needle[] = { f.vhu_arg };
	if (pid <= 0 || !proc_cmdline_has(pid, needle, 1))
		return 0;
	return pid;
}

/* fd's fdinfo in pid, when fd is an epoll: 0 and the text, else -1. */
static int
epoll_fdinfo(pid_t pid, int fd, char *buf, size_t bufsz)
{
	char path[64], link[64];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return -1;
	link[n] = '\0';
	if (strcmp(link, "anon_inode:[eventpoll]") != 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	n = read(f, buf, bufsz - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* The vring worker's epoll in pid: its watches, 0; -1 when not found. */
static int
worker_epoll(pid_t pid, struct epoll_watch *w)
{
	char dirpath[64], buf[8192];
	int found = -1;

	snprintf(dirpath, sizeof(dirpath), "/proc/%d/fd", (int)pid);
	DIR *dir = opendir(dirpath);
	if (dir == NULL)
		return -1;
	struct dirent *de;
	while (found < 0 && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' || epoll_fdinfo(pid, atoi(de->d_name),
		    buf, sizeof(buf)) < 0)
			continue;
		if (qemu_helper_epoll_state(buf) >= 0) {
			epoll_parse(buf, w);
			found = 0;
		}
	}
	closedir(dir);
	return found;
}

/* 1 when the helper's rings are up (or it is not ours to judge: no helper
 * running, an unknown layout), 0 while a connection could still kill its
 * vsock. */
int
qemu_vsock_ready(const struct vmm_params *p)
{
	struct epoll_watch w;
	unsigned long long ids = 0;
	pid_t pid = helper_running(p);

	if (pid <= 0 || worker_epoll(pid, &w) < 0)
		return 1;
	for (int i = 0; i < w.n; i++)
		if (w.data[i] < 64)
			ids |= 1ULL << w.data[i];
	return (ids & 0x3) == 0x3;
}

/* Is socket inode ino, in pid's network namespace, a connected stream? */
static int
unix_connected(pid_t pid, const unsigned long *inos, int nino)
{
	char path[64], line[512];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/net/unix", (int)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned st;
		unsigned long ino;
		if (sscanf(line, "%*s %*s %*s %*x %*x %x %lu", &st, &ino) != 2)
			continue;
		for (int i = 0; i < nino; i++)
			n += inos[i] == ino && st == 3;   /* SS_CONNECTED */
	}
	fclose(f);
	return n;
}

/* How many host connections the helper's backend still watches: 0 when
 * it is done with all of them, -1 when that cannot be seen (no helper, a
 * layout we do not know). */
int
qemu_vsock_held(const struct vmm_params *p)
{
	struct epoll_watch w, b;
	char buf[8192], path[64], link[64];
	unsigned long inos[64];
	int nino = 0, backend = -1;
	pid_t pid = helper_running(p);

	if (pid <= 0 || worker_epoll(pid, &w) < 0)
		return -1;
	for (int i = 0; i < w.n; i++)
		if (w.data[i] == 4)
			backend = w.tfd[i];
	if (backend < 0 || epoll_fdinfo(pid, backend, buf, sizeof(buf)) < 0)
		return -1;
	epoll_parse(buf, &b);
	for (int i = 0; i < b.n; i++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, b.tfd[i]);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (sscanf(link, "socket:[%lu]", &inos[nino]) == 1)
			nino++;
	}
	return unix_connected(pid, inos, nino);
}

/* Before QMP stop: end bangerd's connections, hold new ones back, and
 * wait until the helper has let go of them too (it answers each close
 * by telling the guest, which needs the rings). */
int
qemu_vsock_quiesce(const struct vmm_params *p, int wait_ms, struct bn_err *err)
{
	long long deadline = time_mono_ms() + wait_ms;
	int held;

	if (vsock_quiesce(p->vsock_uds, true, wait_ms, err) < 0)
		return bn_err_prefix(err, "cannot pause");
	while ((held = qemu_vsock_held(p)) > 0) {
		if (time_mono_ms() >= deadline) {
			vsock_unquiesce(p->vsock_uds);
			bn_fail(err, BN_ESTATE, 0, "cannot pause: the vsock helper "
			    "still holds %d connection%s after %d ms", held,
			    held == 1 ? "" : "s", wait_ms);
			return bn_err_hint(err, "try again");
		}
		sleep_ms(10);
	}
	return 0;
}

/* After QMP cont: dials go on once the rings are back. */
void
qemu_vsock_wake(const struct vmm_params *p, int wait_ms)
{
	long long deadline = time_mono_ms() + wait_ms;

	while (!qemu_vsock_ready(p) && time_mono_ms() < deadline)
		sleep_ms(5);
	vsock_unquiesce(p->vsock_uds);
}
