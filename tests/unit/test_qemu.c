/* test_qemu.c - the QEMU microvm driver.
 *
 * - argv: qemu_build_argv() for TCG and KVM, disks with and without
 *   O_DIRECT, with and without a TAP, option escaping, overflow.
 * - QMP: the client against canned JSON on a socketpair (greeting,
 *   capabilities, events and foreign ids skipped, errors, split and
 *   oversized messages, EOF, deadlines).
 * - Lifecycle: spawn/configure/start/probe/stop/kill against a fake QEMU
 *   and a fake vhost-device-vsock (small Python programs written to a
 *   temporary directory): pid file, sockets, cleanup, powerdown, quit,
 *   SIGTERM fallback, a QEMU that dies at start.
 * - Real boot (only when BANGER_E2E_DIR names a directory made by
 *   tests/e2e/make-test-initrd.sh; tests/e2e/qemu-boot.sh sets it up):
 *   boots a real guest under TCG through the driver, waits for the agent
 *   over vsock, checks the disks, the console and (with BANGER_E2E_TAP)
 *   the network, then stops it with the ACPI power button.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tap.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/proc.h"
#include "common/util.h"
#include "vmm/qemu_int.h"
#include "vmm/vmm.h"
#include "vmm/vsock.h"
#include "vmm/vsock_quiet.h"

static char tmpdir[64];

/* ---------- helpers ---------- */

static bool
has_arg(const struct qemu_argv *a, const char *s)
{
	for (int i = 0; i < a->argc; i++)
		if (strcmp(a->argv[i], s) == 0)
			return true;
	return false;
}

/* The argument right after flag (the n-th occurrence, from 0). */
static const char *
arg_after(const struct qemu_argv *a, const char *flag, int n)
{
	for (int i = 0; i + 1 < a->argc; i++)
		if (strcmp(a->argv[i], flag) == 0 && n-- == 0)
			return a->argv[i + 1];
	return NULL;
}

static void
base_params(struct vmm_params *p, const char *vmdir)
{
	struct bn_err err;

	memset(p, 0, sizeof(*p));
	vmm_params_paths(p, vmdir, &err);
	p->vm_id = "0123456789abcdef";
	p->binary = "/usr/bin/qemu-system-x86_64";
	p->kernel = "/bundle/vmlinux";
	p->initrd = "/bundle/initrd.img";
	p->cmdline = "console=ttyS0 reboot=k panic=1 root=/dev/vda rw";
	p->vcpus = 2;
	p->memory_mib = 512;
	p->cid = 7;
	p->api_timeout_ms = 3000;
	p->vsock_helper = "/opt/tools/vhost-device-vsock";
}

static bool
file_has(const char *path, const char *needle)
{
	char *buf = NULL;
	size_t len = 0;
	struct bn_err err;
	bool found;

	if (file_read_all(path, 1 << 20, &buf, &len, &err) < 0)
		return false;
	found = strstr(buf, needle) != NULL;
	free(buf);
	return found;
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* ---------- argv ---------- */

static int
test_argv_tcg(void)
{
	struct vmm_params p;
	struct qemu_opts o = { .direct_root = true, .direct_work = false,
		.tsc_khz = 2445404, .tsc_reliable = true };
	struct qemu_argv a;
	struct bn_err err;

	base_params(&p, "/var/lib/banger/vms/0123456789abcdef");
	p.tap = "tap-pool-3";
	p.mac = "06:00:ac:1e:00:05";
	fail_unless(qemu_build_argv(&p, &o, &a, &err) == 0, "%s", err.msg);
	fail_unless(a.argv[a.argc] == NULL, "argv not NULL-terminated");
	fail_unless(strcmp(a.argv[0], p.binary) == 0, "argv[0] %s", a.argv[0]);
	fail_unless(strcmp(arg_after(&a, "-M", 0), "microvm,memory-backend=mem") == 0,
	    "-M %s", arg_after(&a, "-M", 0));
	fail_unless(strcmp(arg_after(&a, "-accel", 0), "tcg") == 0, "accel");
	fail_unless(strcmp(arg_after(&a, "-cpu", 0), "max") == 0, "cpu");
	fail_unless(strcmp(arg_after(&a, "-smp", 0), "2") == 0, "smp");
	fail_unless(strcmp(arg_after(&a, "-m", 0), "512M") == 0, "-m");
	fail_unless(strcmp(arg_after(&a, "-object", 0),
	    "memory-backend-memfd,id=mem,size=512M,share=on") == 0, "memfd %s",
	    arg_after(&a, "-object", 0));
	fail_unless(has_arg(&a, "-S") && has_arg(&a, "-nodefaults") &&
	    has_arg(&a, "-no-user-config") && has_arg(&a, "-nographic") &&
	    has_arg(&a, "-no-reboot"), "fixed flags");
	fail_unless(strcmp(arg_after(&a, "-kernel", 0), "/bundle/vmlinux") == 0, "kernel");
	fail_unless(strcmp(arg_after(&a, "-initrd", 0), "/bundle/initrd.img") == 0,
	    "initrd");
	fail_unless(strcmp(arg_after(&a, "-append", 0), "console=ttyS0 reboot=k "
	    "panic=1 root=/dev/vda rw tsc_early_khz=2445404 tsc=reliable") == 0,
	    "append '%s'", arg_after(&a, "-append", 0));
	fail_unless(strcmp(arg_after(&a, "-drive", 0), "id=rootfs,file=/var/lib/"
	    "banger/vms/0123456789abcdef/rootfs.ext4,format=raw,if=none,cache=none,"
	    "aio=threads,werror=enospc,rerror=report") == 0, "rootfs drive %s",
	    arg_after(&a, "-drive", 0));
	fail_unless(strcmp(arg_after(&a, "-drive", 1), "id=work,file=/var/lib/"
	    "banger/vms/0123456789abcdef/work.ext4,format=raw,if=none,"
	    "cache=writeback,aio=threads,werror=enospc,rerror=report") == 0,
	    "work drive %s",
	    arg_after(&a, "-drive", 1));
	fail_unless(strcmp(arg_after(&a, "-device", 0),
	    "virtio-blk-device,drive=rootfs") == 0, "vda first");
	fail_unless(strcmp(arg_after(&a, "-device", 1),
	    "virtio-blk-device,drive=work") == 0, "vdb second");
	fail_unless(strcmp(arg_after(&a, "-netdev", 0), "tap,id=net0,ifname="
	    "tap-pool-3,script=no,downscript=no") == 0, "netdev %s",
	    arg_after(&a, "-netdev", 0));
	fail_unless(strcmp(arg_after(&a, "-device", 2), "virtio-net-device,"
	    "netdev=net0,mac=06:00:ac:1e:00:05") == 0, "nic %s",
	    arg_after(&a, "-device", 2));
	fail_unless(strcmp(arg_after(&a, "-chardev", 0), "socket,id=vhu,path="
	    "/var/lib/banger/vms/0123456789abcdef/vhu.sock") == 0, "vhu %s",
	    arg_after(&a, "-chardev", 0));
	fail_unless(strcmp(arg_after(&a, "-device", 3),
	    "vhost-user-vsock-device,chardev=vhu") == 0, "vsock device");
	fail_unless(strcmp(arg_after(&a, "-chardev", 1), "file,id=ser0,path="
	    "/var/lib/banger/vms/0123456789abcdef/console.log,append=on") == 0,
	    "serial %s", arg_after(&a, "-chardev", 1));
	fail_unless(strcmp(arg_after(&a, "-serial", 0), "chardev:ser0") == 0, "serial");
	fail_unless(strcmp(arg_after(&a, "-qmp", 0), "unix:/var/lib/banger/vms/"
	    "0123456789abcdef/qmp.sock,server=on,wait=off") == 0, "qmp %s",
	    arg_after(&a, "-qmp", 0));
	fail_unless(strcmp(arg_after(&a, "-name", 0), "banger-0123456789abcdef") == 0,
	    "name");
	return 0;
}

static int
test_argv_kvm_no_net(void)
{
	struct vmm_params p;
	struct qemu_opts o = { .direct_root = false, .direct_work = true,
		.tsc_khz = 2445404, .tsc_reliable = true };
	struct qemu_argv a;
	struct bn_err err;

	base_params(&p, "/srv/vms/x");
	p.kvm = true;
	p.initrd = "";
	fail_unless(qemu_build_argv(&p, &o, &a, &err) == 0, "%s", err.msg);
	fail_unless(strcmp(arg_after(&a, "-accel", 0), "kvm") == 0, "accel");
	fail_unless(strcmp(arg_after(&a, "-cpu", 0), "host") == 0, "cpu");
	/* KVM guests have kvmclock: the cmdline is passed as is. */
	fail_unless(strcmp(arg_after(&a, "-append", 0), p.cmdline) == 0, "append %s",
	    arg_after(&a, "-append", 0));
	fail_unless(!has_arg(&a, "-initrd"), "empty initrd must be left out");
	fail_unless(!has_arg(&a, "-netdev"), "no TAP, no NIC");
	fail_unless(strstr(arg_after(&a, "-drive", 0), "cache=writeback") != NULL,
	    "rootfs without O_DIRECT");
	fail_unless(strstr(arg_after(&a, "-drive", 1), "cache=none") != NULL,
	    "work with O_DIRECT");

	/* TCG without a known TSC rate: no extra cmdline. */
	p.kvm = false;
	o.tsc_khz = 0;
	fail_unless(qemu_build_argv(&p, &o, &a, &err) == 0, "%s", err.msg);
	fail_unless(strcmp(arg_after(&a, "-append", 0), p.cmdline) == 0, "append");
	return 0;
}

static int
test_argv_escape_and_limits(void)
{
	struct vmm_params p;
	struct qemu_opts o = { .direct_root = true, .direct_work = true };
	struct qemu_argv a;
	struct bn_err err;
	static char huge[20000];

	base_params(&p, "/tmp/a,b");
	fail_unless(qemu_build_argv(&p, &o, &a, &err) == 0, "%s", err.msg);
	fail_unless(strcmp(arg_after(&a, "-qmp", 0),
	    "unix:/tmp/a,,b/qmp.sock,server=on,wait=off") == 0, "qmp %s",
	    arg_after(&a, "-qmp", 0));
	fail_unless(strstr(arg_after(&a, "-drive", 0), "file=/tmp/a,,b/rootfs.ext4,") !=
	    NULL, "drive %s", arg_after(&a, "-drive", 0));
	fail_unless(strstr(arg_after(&a, "-chardev", 1), "path=/tmp/a,,b/console.log,") !=
	    NULL, "serial %s", arg_after(&a, "-chardev", 1));
	/* -kernel and -append are plain values: no escaping. */
	p.kernel = "/k,1/vmlinux";
	fail_unless(qemu_build_argv(&p, &o, &a, &err) == 0, "%s", err.msg);
	fail_unless(strcmp(arg_after(&a, "-kernel", 0), "/k,1/vmlinux") == 0, "kernel");

	memset(huge, 'x', sizeof(huge) - 1);
	p.cmdline = huge;
	fail_unless(qemu_build_argv(&p, &o, &a, &err) < 0, "overflow accepted");
	fail_unless(err.code == BN_EINVAL, "code %d", err.code);
	base_params(&p, "/tmp/x");
	p.kernel = NULL;
	fail_unless(qemu_build_argv(&p, &o, &a, &err) < 0 && err.code == BN_EINVAL,
	    "missing kernel accepted");
	return 0;
}

/* Shared folders: a vhost-user-fs device per mount, tagged by index. */
static int
test_argv_mounts(void)
{
	struct vmm_params p;
	struct qemu_opts o = { 0 };
	struct qemu_argv a;
	struct bn_err err;
	struct vm_mount m[2] = {
		{ .host = "/srv/a", .guest = "/mnt/a", .readonly = true },
		{ .host = "/srv/b", .guest = "/root/b" },
	};
	int devices = 0, fs = 0;

	base_params(&p, "/tmp/vm,1");
	p.mounts = m;
	p.nmounts = 2;
	fail_unless(qemu_build_argv(&p, &o, &a, &err) == 0, "%s", err.msg);
	for (int i = 0; i < a.argc; i++) {
		if (strcmp(a.argv[i], "vhost-user-fs-device,chardev=fs0,tag=banger0")
		    == 0 || strcmp(a.argv[i],
		    "vhost-user-fs-device,chardev=fs1,tag=banger1") == 0)
			devices++;
		if (strcmp(a.argv[i], "socket,id=fs0,path=/tmp/vm,,1/fs0.sock") == 0 ||
		    strcmp(a.argv[i], "socket,id=fs1,path=/tmp/vm,,1/fs1.sock") == 0)
			fs++;
	}
	fail_unless(devices == 2 && fs == 2, "devices %d, sockets %d", devices,
	    fs);
	const char *g = arg_after(&a, "-global", 0);
	fail_unless(g != NULL && strcmp(g, "virtio-mmio.force-legacy=false") == 0,
	    "modern virtio-mmio for virtiofsd: %s", g ? g : "(none)");
	/* Eight mounts still fit the argv. */
	struct vm_mount eight[VM_MOUNTS_MAX];
	for (int i = 0; i < VM_MOUNTS_MAX; i++)
		eight[i] = m[0];
	p.mounts = eight;
	p.nmounts = VM_MOUNTS_MAX;
	fail_unless(qemu_build_argv(&p, &o, &a, &err) == 0, "%s", err.msg);
	return 0;
}

/* Does /proc/PID/mountinfo have a line with both words? */
static bool
mountinfo_has(const char *pid, const char *a, const char *b)
{
	char path[64], line[4096];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/mountinfo", pid);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, a) != NULL && (b == NULL ||
		    strstr(line, b) != NULL);
	fclose(f);
	return found;
}

/* The real virtiofsd (bookworm's QEMU ships one): it listens on fs<N>.sock
 * with the share bound in a mount namespace of its own, read-only when
 * asked and never visible on the host; a stop leaves nothing; a share
 * that vanished fails the start with nothing left running. */
static int
test_virtiofsd(void)
{
	char bin[PATH_MAX], vmdir[PATH_MAX], share[PATH_MAX], sock[PATH_MAX];
	char pidfile[PATH_MAX], pidtxt[32], dir[PATH_MAX];
	struct vmm_params p;
	struct bn_err err;
	struct vm_mount m = { .guest = "/mnt/s", .readonly = true };
	pid_t pids[4];

	if (geteuid() != 0)
		skip_test("virtiofsd needs root (mount namespaces)");
	if (!vmm_find_virtiofsd(NULL, bin, sizeof(bin)))
		skip_test("no virtiofsd (apt-get install qemu-system-x86)");
	snprintf(vmdir, sizeof(vmdir), "%s/fsvm", tmpdir);
	snprintf(share, sizeof(share), "%s/share", tmpdir);
	fail_unless(mkdir(vmdir, 0700) == 0 && mkdir(share, 0755) == 0, "mkdir");
	snprintf(m.host, sizeof(m.host), "%s", share);
	base_params(&p, vmdir);
	p.mounts = &m;
	p.nmounts = 1;
	p.virtiofsd = bin;
	fail_unless(qemu_fs_start(&p, &err) == 0, "%s (%s)", err.msg, err.hint);
	snprintf(sock, sizeof(sock), "%s/fs0.sock", vmdir);
	snprintf(pidfile, sizeof(pidfile), "%s/fs0.pid", vmdir);
	snprintf(dir, sizeof(dir), "%s/fs0.dir", vmdir);
	fail_unless(qemu_unix_listening(sock), "not listening on %s", sock);
	fail_unless(qemu_fs_pids(&p, pids, 4) == 1 && proc_alive(pids[0]),
	    "pids");
	snprintf(pidtxt, sizeof(pidtxt), "%d", (int)pids[0]);
	/* The bind is in virtiofsd's namespace only, read-only.  (Until a
	 * frontend connects: then the C virtiofsd pivots into it.) */
	fail_unless(!mountinfo_has("self", dir, NULL), "bind leaked to the host");
	fail_unless(mountinfo_has(pidtxt, share, NULL), "no bind of the share");
	fail_unless(mountinfo_has(pidtxt, dir, " ro,"), "share not read-only "
	    "in virtiofsd's namespace");
	qemu_fs_stop(&p, false);
	fail_unless(!proc_alive(pids[0]) || proc_wait_gone(pids[0], 2000),
	    "virtiofsd still runs");
	fail_unless(!exists(sock) && !exists(pidfile) && !exists(dir),
	    "files left");

	/* A share gone between the check and the start. */
	fail_unless(rmdir(share) == 0, "rmdir");
	fail_unless(qemu_fs_start(&p, &err) < 0, "started without its share");
	fail_unless(strstr(err.msg, "prepare") != NULL, "%s", err.msg);
	fail_unless(qemu_fs_pids(&p, pids, 4) == 0 && !exists(dir) &&
	    !exists(pidfile), "left behind");
	/* No virtiofsd at all. */
	p.virtiofsd = "";
	fail_unless(qemu_fs_start(&p, &err) < 0 && err.code == BN_EVMM_MISSING,
	    "code %d", err.code);
	return 0;
}

/* ---------- QMP over a socketpair ---------- */

struct pair {
	int client;   /* given to qmp_attach */
	int peer;     /* the test plays QEMU here */
};

static int
pair_open(struct pair *sp)
{
	int fds[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		return -1;
	sp->client = fds[0];
	sp->peer = fds[1];
	return 0;
}

static void
peer_say(struct pair *sp, const char *s)
{
	(void)!write(sp->peer, s, strlen(s));
}

/* Everything the client sent so far. */
static void
peer_heard(struct pair *sp, char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		struct pollfd p = { .fd = sp->peer, .events = POLLIN };
		if (n + 1 >= cap || poll(&p, 1, 0) <= 0)
			break;
		ssize_t r = read(sp->peer, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
}

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, " \
	"\"major\": 7}, \"package\": \"Debian 1:7.2+dfsg-7\"}, \"capabilities\": " \
	"[\"oob\"]}}\r\n"

static int
test_qmp_handshake(void)
{
	struct pair sp;
	struct qmp_conn *q;
	struct bn_err err;
	char heard[1024];

	fail_unless(pair_open(&sp) == 0, "socketpair");
	peer_say(&sp, GREETING "{\"return\": {}, \"id\": 1}\r\n");
	q = qmp_attach(sp.client, time_mono_ms() + 2000);
	fail_unless(qmp_handshake(q, &err) == 0, "%s", err.msg);
	peer_heard(&sp, heard, sizeof(heard));
	fail_unless(strcmp(heard, "{\"execute\":\"qmp_capabilities\",\"id\":1}\n") == 0,
	    "sent '%s'", heard);
	qmp_close(q);
	close(sp.peer);

	/* Anything but a greeting is not QEMU. */
	fail_unless(pair_open(&sp) == 0, "socketpair");
	peer_say(&sp, "{\"hello\": 1}\n");
	q = qmp_attach(sp.client, time_mono_ms() + 2000);
	fail_unless(qmp_handshake(q, &err) < 0, "bad greeting accepted");
	fail_unless(err.code == BN_EVMM, "code %d (%s)", err.code, err.msg);
	qmp_close(q);
	close(sp.peer);

	/* Not JSON at all. */
	fail_unless(pair_open(&sp) == 0, "socketpair");
	peer_say(&sp, "SSH-2.0-OpenSSH_9.2\r\n");
	q = qmp_attach(sp.client, time_mono_ms() + 2000);
	fail_unless(qmp_handshake(q, &err) < 0 && err.code == BN_EVMM,
	    "junk accepted: %s", err.msg);
	qmp_close(q);
	close(sp.peer);
	return 0;
}

static int
test_qmp_execute_skips_events(void)
{
	struct pair sp;
	struct qmp_conn *q;
	struct bn_err err;
	json_t *r = NULL;
	char heard[1024];

	fail_unless(pair_open(&sp) == 0, "socketpair");
	q = qmp_attach(sp.client, time_mono_ms() + 2000);
	/* An event, a blank line, a stale reply with another id, then ours
	 * split across two writes. */
	peer_say(&sp, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
	    "\"event\": \"RESUME\"}\r\n\r\n{\"return\": {}, \"id\": 41}\r\n"
	    "{\"return\": {\"status\": \"run");
	peer_say(&sp, "ning\", \"singlestep\": false, \"running\": true}, "
	    "\"id\": 1}\r\n");
	fail_unless(qmp_execute(q, "query-status", NULL, &r, &err) == 0, "%s", err.msg);
	fail_unless(r != NULL && json_is_object(r), "no return object");
	fail_unless(strcmp(json_string_value(json_object_get(r, "status")),
	    "running") == 0, "status");
	json_decref(r);
	peer_heard(&sp, heard, sizeof(heard));
	fail_unless(strcmp(heard, "{\"execute\":\"query-status\",\"id\":1}\n") == 0,
	    "sent '%s'", heard);

	/* Arguments are sent; ids increase. */
	peer_say(&sp, "{\"return\": {}, \"id\": 2}\n");
	fail_unless(qmp_execute(q, "human-monitor-command", json_pack("{s:s}",
	    "command-line", "info version"), NULL, &err) == 0, "%s", err.msg);
	peer_heard(&sp, heard, sizeof(heard));
	fail_unless(strstr(heard, "\"arguments\":{\"command-line\":\"info version\"}") &&
	    strstr(heard, "\"id\":2"), "sent '%s'", heard);
	qmp_close(q);
	close(sp.peer);
	return 0;
}

static int
test_qmp_errors(void)
{
	struct pair sp;
	struct qmp_conn *q;
	struct bn_err err;
	long long t0;

	/* QEMU's error reply: class and description reach the message. */
	fail_unless(pair_open(&sp) == 0, "socketpair");
	q = qmp_attach(sp.client, time_mono_ms() + 2000);
	peer_say(&sp, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
	    "\"The command bogus has not been found\"}, \"id\": 1}\r\n");
	fail_unless(qmp_execute(q, "bogus", NULL, NULL, &err) < 0, "error accepted");
	fail_unless(err.code == BN_EVMM, "code %d", err.code);
	fail_unless(strstr(err.msg, "has not been found") &&
	    strstr(err.msg, "CommandNotFound"), "msg '%s'", err.msg);
	/* An error without id (QEMU could not parse our line) fails too. */
	peer_say(&sp, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
	    "\"JSON parse error\"}}\r\n");
	fail_unless(qmp_execute(q, "cont", NULL, NULL, &err) < 0 &&
	    strstr(err.msg, "JSON parse error"), "msg '%s'", err.msg);
	/* A reply with neither return nor error. */
	peer_say(&sp, "{\"id\": 3}\r\n");
	fail_unless(qmp_execute(q, "cont", NULL, NULL, &err) < 0 &&
	    err.code == BN_EVMM, "bare id accepted");

	/* Silence: the deadline holds. */
	qmp_set_deadline(q, time_mono_ms() + 150);
	t0 = time_mono_ms();
	fail_unless(qmp_execute(q, "cont", NULL, NULL, &err) < 0, "no reply accepted");
	fail_unless(err.code == BN_ETIMEOUT, "code %d (%s)", err.code, err.msg);
	fail_unless(time_mono_ms() - t0 < 1500, "took %lld ms", time_mono_ms() - t0);

	/* EOF. */
	qmp_set_deadline(q, time_mono_ms() + 2000);
	close(sp.peer);
	fail_unless(qmp_execute(q, "cont", NULL, NULL, &err) < 0, "EOF accepted");
	fail_unless(err.code == BN_EVMM && strstr(err.msg, "closed"), "code %d (%s)",
	    err.code, err.msg);
	qmp_close(q);

	/* A message over 64 KiB without a newline. */
	fail_unless(pair_open(&sp) == 0, "socketpair");
	int sz = 256 * 1024;
	setsockopt(sp.peer, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	q = qmp_attach(sp.client, time_mono_ms() + 2000);
	static char big[70 * 1024];
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	peer_say(&sp, big);
	fail_unless(qmp_execute(q, "cont", NULL, NULL, &err) < 0, "huge accepted");
	fail_unless(err.code == BN_EVMM && strstr(err.msg, "over"), "code %d (%s)",
	    err.code, err.msg);
	qmp_close(q);
	close(sp.peer);

	/* Nothing listens. */
	char path[128];
	struct qmp_conn *c = NULL;
	snprintf(path, sizeof(path), "%s/nothing.sock", tmpdir);
	fail_unless(qmp_connect(path, time_mono_ms() + 500, &c, &err) < 0, "connected");
	fail_unless(err.code == BN_ESYS && err.sys_errno == ENOENT, "code %d errno %d",
	    err.code, err.sys_errno);
	return 0;
}

/* ---------- lifecycle against fakes ---------- */

/* A fake vhost-device-vsock: listens on --socket and --uds-path, like the
 * real one, until killed. */
/* A fake vhost-device-vsock: listens on both sockets and, like the real
 * one (vhost-user-backend's vring worker), has an epoll watching an exit
 * event under id 3, the backend's events under 4 and a sibling doorbell
 * under 5; SIGUSR1 starts "the rings": eventfds under ids 0 and 1, as
 * QEMU's SET_VRING_KICK does.  FAKE_HELPER_LAYOUT=none: no such epoll. */
static const char fake_helper_py[] =
"#!/usr/bin/python3\n"
"import ctypes, os, platform, signal, socket, struct, sys\n"
"a = dict(x.split('=', 1) for x in sys.argv[1:])\n"
"socks = []\n"
"for k in ('--socket', '--uds-path'):\n"
"    s = socket.socket(socket.AF_UNIX)\n"
"    try: os.unlink(a[k])\n"
"    except FileNotFoundError: pass\n"
"    s.bind(a[k]); s.listen(4); socks.append(s)\n"
"libc = ctypes.CDLL(None, use_errno=True)\n"
"ep = libc.epoll_create1(0)\n"
"fmt = '=IQ' if platform.machine() == 'x86_64' else '@IQ'\n"
"def watch(data):\n"
"    ev = ctypes.create_string_buffer(struct.pack(fmt, 1, data))\n"
"    if libc.epoll_ctl(ep, 1, os.eventfd(0), ev) != 0:\n"
"        raise OSError(ctypes.get_errno(), 'epoll_ctl')\n"
"if os.environ.get('FAKE_HELPER_LAYOUT') != 'none':\n"
"    for d in (3, 4, 5): watch(d)\n"
"signal.signal(signal.SIGUSR1, lambda *_: [watch(d) for d in (0, 1)])\n"
"print('fake helper: cid', a['--guest-cid'], flush=True)\n"
"while True: signal.pause()\n";

/* A fake QEMU: records its argv, connects to the vhost-user socket, serves
 * QMP.  FAKE_QEMU_MODE: normal (powerdown ends it), deaf (never answers),
 * stubborn (ignores powerdown), die (fails at start like a bad -drive),
 * enospc (the first cont meets a full disk: io-error, nospace; the next
 * one runs). */
static const char fake_qemu_py[] =
"#!/usr/bin/python3\n"
"import json, os, socket, sys, time\n"
"mode = os.environ.get('FAKE_QEMU_MODE', 'normal')\n"
"rec = os.environ.get('FAKE_QEMU_ARGV')\n"
"if rec:\n"
"    open(rec, 'w').write('\\n'.join(sys.argv))\n"
"if mode == 'die':\n"
"    print(\"qemu-system-x86_64: -drive id=rootfs: Could not open 'x': \"\n"
"          'No such file or directory', file=sys.stderr, flush=True)\n"
"    sys.exit(1)\n"
"arg = lambda f: sys.argv[sys.argv.index(f) + 1]\n"
"vhu = [v for i, v in enumerate(sys.argv) if sys.argv[i - 1] == '-chardev'\n"
"       and v.startswith('socket,id=vhu,')][0].split('path=')[1]\n"
"v = socket.socket(socket.AF_UNIX); v.connect(vhu)\n"
"path = arg('-qmp')[5:].split(',')[0]\n"
"l = socket.socket(socket.AF_UNIX); l.bind(path); l.listen(4)\n"
"state = 'prelaunch' if '-S' in sys.argv else 'running'\n"
"while True:\n"
"    c, _ = l.accept()\n"
"    if mode == 'deaf':\n"
"        continue\n"
"    f = c.makefile('rwb')\n"
"    def say(o):\n"
"        f.write(json.dumps(o).encode() + b'\\r\\n'); f.flush()\n"
"    say({'QMP': {'version': {}, 'capabilities': []}})\n"
"    for line in f:\n"
"        m = json.loads(line); cmd = m['execute']; i = m.get('id')\n"
"        if cmd == 'query-status':\n"
"            say({'event': 'NOISE', 'timestamp': {}})\n"
"            say({'return': {'status': state, 'running': state == 'running'}, 'id': i})\n"
"        elif cmd in ('qmp_capabilities',):\n"
"            say({'return': {}, 'id': i})\n"
"        elif cmd == 'cont':\n"
"            full = mode == 'enospc' and state == 'prelaunch'\n"
"            state = 'io-error' if full else 'running'\n"
"            say({'return': {}, 'id': i})\n"
"        elif cmd == 'stop':\n"
"            state = 'paused'\n"
"            say({'return': {}, 'id': i})\n"
"        elif cmd == 'query-block':\n"
"            io = 'nospace' if state == 'io-error' else 'ok'\n"
"            say({'return': [{'device': 'rootfs', 'io-status': 'ok'},\n"
"                            {'device': 'work', 'io-status': io}], 'id': i})\n"
"        elif cmd == 'system_powerdown':\n"
"            say({'return': {}, 'id': i})\n"
"            if mode == 'normal':\n"
"                say({'event': 'POWERDOWN', 'timestamp': {}}); time.sleep(0.1); sys.exit(0)\n"
"        elif cmd == 'quit':\n"
"            say({'return': {}, 'id': i}); sys.exit(0)\n"
"        else:\n"
"            say({'error': {'class': 'CommandNotFound', 'desc': cmd}, 'id': i})\n"
"    c.close()\n";

static char fake_qemu[128], fake_helper[128];

static int
write_exe(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static bool
have_python(void)
{
	return access("/usr/bin/python3", X_OK) == 0;
}

static int
fake_vm(struct vmm_params *p, const char *name, char *dir, size_t dirsz)
{
	struct bn_err err;

	snprintf(dir, dirsz, "%s/%s", tmpdir, name);
	if (mkdir(dir, 0700) < 0)
		return -1;
	base_params(p, dir);
	p->binary = fake_qemu;
	p->vsock_helper = fake_helper;
	p->kernel = "/nonexistent/vmlinux";
	p->vcpus = 1;
	p->memory_mib = 128;
	p->api_timeout_ms = 5000;
	return vmm_params_paths(p, dir, &err);
}

static pid_t
helper_pid(const char *dir)
{
	char path[256], *buf = NULL;
	size_t len;
	struct bn_err err;
	pid_t pid = 0;

	snprintf(path, sizeof(path), "%s/vhost-vsock.pid", dir);
	if (file_read_all(path, 64, &buf, &len, &err) == 0)
		pid = (pid_t)atoi(buf);
	free(buf);
	return pid;
}

static int
check_clean(const char *dir, pid_t qpid, pid_t hpid)
{
	char path[256];
	static const char *const left[] = { "qmp.sock", "vhu.sock", "vsock.sock",
		"vhost-vsock.pid" };

	fail_unless(!proc_alive(qpid), "qemu pid %d still alive", (int)qpid);
	fail_unless(hpid <= 0 || !proc_alive(hpid), "helper pid %d still alive",
	    (int)hpid);
	for (size_t i = 0; i < ARRAY_SIZE(left); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, left[i]);
		fail_unless(!exists(path), "%s left behind", path);
	}
	return 0;
}

static int
test_lifecycle_fake(void)
{
	struct vmm_params p;
	struct bn_err err;
	char dir[128], rec[160];
	pid_t pid = 0, hpid;
	long long t0;

	if (!have_python())
		skip_test("no /usr/bin/python3 for the fake qemu");
	fail_unless(fake_vm(&p, "life", dir, sizeof(dir)) == 0, "vm dir");
	snprintf(rec, sizeof(rec), "%s/argv", dir);
	setenv("FAKE_QEMU_ARGV", rec, 1);
	setenv("FAKE_QEMU_MODE", "normal", 1);

	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s", err.msg);
	hpid = helper_pid(dir);
	fail_unless(hpid > 0 && proc_alive(hpid), "helper pid file/process");
	fail_unless(exists(p.vsock_uds), "vsock.sock missing");
	fail_unless(vmm_qemu.configure(&p, pid, &err) == 0, "configure: %s", err.msg);
	fail_unless(vmm_qemu.probe(&p, pid, &err) == 0, "probe: %s", err.msg);
	fail_unless(vmm_qemu.start(&p, &err) == 0, "start: %s", err.msg);
	fail_unless(file_has(rec, "-S") && file_has(rec, "vhost-user-vsock-device"),
	    "argv not recorded");
	fail_unless(file_has(p.vmm_log, "fake helper: cid 7"), "helper output not in "
	    "vmm.log");

	/* Not ours: another process, or our pid with other paths. */
	fail_unless(vmm_qemu.probe(&p, getpid(), &err) < 0 && err.code == BN_ESTATE,
	    "probe accepted the test process");

	t0 = time_mono_ms();
	fail_unless(vmm_qemu.stop(&p, pid, 5000, NULL, &err) == 0, "stop: %s", err.msg);
	fail_unless(time_mono_ms() - t0 < 3000, "powerdown took %lld ms",
	    time_mono_ms() - t0);
	if (check_clean(dir, pid, hpid) < 0)
		return -1;
	/* Stopping again is a no-op. */
	fail_unless(vmm_qemu.stop(&p, pid, 5000, NULL, &err) == 0, "second stop: %s", err.msg);
	fail_unless(vmm_qemu.probe(&p, pid, &err) < 0, "probe of a stopped vm");
	unsetenv("FAKE_QEMU_ARGV");
	return 0;
}

/* QEMU pauses a VM whose write meets a full disk (werror=enospc):
 * paused() sees io-error and nospace, resume() lets it run. */
static int
test_paused_on_enospc(void)
{
	struct vmm_params p;
	struct bn_err err;
	char dir[128], reason[32];
	pid_t pid = 0, hpid;

	if (!have_python())
		skip_test("no /usr/bin/python3 for the fake qemu");
	fail_unless(fake_vm(&p, "enospc", dir, sizeof(dir)) == 0, "vm dir");
	setenv("FAKE_QEMU_MODE", "enospc", 1);
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s", err.msg);
	hpid = helper_pid(dir);
	fail_unless(vmm_qemu.configure(&p, pid, &err) == 0, "configure: %s", err.msg);
	fail_unless(vmm_qemu.paused(&p, reason, sizeof(reason), &err) == 0,
	    "prelaunch is not paused by the VMM");
	fail_unless(vmm_qemu.start(&p, &err) == 0, "start: %s", err.msg);
	fail_unless(vmm_qemu.paused(&p, reason, sizeof(reason), &err) == 1,
	    "io-error not seen: %s", err.msg);
	fail_unless(strcmp(reason, "host_disk_full") == 0, "reason %s", reason);
	fail_unless(vmm_qemu.resume(&p, &err) == 0, "resume: %s", err.msg);
	fail_unless(vmm_qemu.paused(&p, reason, sizeof(reason), &err) == 0,
	    "still paused after cont");
	/* A user's pause is not the VMM's own: the monitor leaves it alone. */
	fail_unless(vmm_qemu.pause(&p, &err) == 0, "pause: %s", err.msg);
	fail_unless(vmm_qemu.paused(&p, reason, sizeof(reason), &err) == 0,
	    "a user's pause taken for an I/O error");
	fail_unless(vmm_qemu.resume(&p, &err) == 0, "resume: %s", err.msg);
	fail_unless(vmm_firecracker.paused == NULL,
	    "Firecracker never pauses on its own");
	fail_unless(vmm_firecracker.pause != NULL && vmm_firecracker.resume != NULL,
	    "Firecracker pauses and resumes on request (PATCH /vm)");
	fail_unless(vmm_qemu.stop(&p, pid, 0, NULL, &err) == 0, "stop: %s", err.msg);
	unsetenv("FAKE_QEMU_MODE");
	return check_clean(dir, pid, hpid);
}

static int
test_stop_fallbacks(void)
{
	struct vmm_params p;
	struct bn_err err;
	char dir[128];
	pid_t pid = 0, hpid;
	long long t0;

	if (!have_python())
		skip_test("no /usr/bin/python3 for the fake qemu");

	/* A guest that ignores the power button: quit after the grace. */
	fail_unless(fake_vm(&p, "stubborn", dir, sizeof(dir)) == 0, "vm dir");
	setenv("FAKE_QEMU_MODE", "stubborn", 1);
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s", err.msg);
	hpid = helper_pid(dir);
	fail_unless(vmm_qemu.configure(&p, pid, &err) == 0, "configure: %s", err.msg);
	fail_unless(vmm_qemu.start(&p, &err) == 0, "start: %s", err.msg);
	t0 = time_mono_ms();
	fail_unless(vmm_qemu.stop(&p, pid, 300, NULL, &err) == 0, "stop: %s", err.msg);
	fail_unless(time_mono_ms() - t0 < 2500, "took %lld ms", time_mono_ms() - t0);
	if (check_clean(dir, pid, hpid) < 0)
		return -1;

	/* QMP never answers: SIGTERM. */
	fail_unless(fake_vm(&p, "deaf", dir, sizeof(dir)) == 0, "vm dir");
	setenv("FAKE_QEMU_MODE", "deaf", 1);
	p.api_timeout_ms = 300;
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s", err.msg);
	hpid = helper_pid(dir);
	fail_unless(vmm_qemu.configure(&p, pid, &err) < 0, "deaf qemu configured");
	fail_unless(err.code == BN_ETIMEOUT, "code %d (%s)", err.code, err.msg);
	fail_unless(vmm_qemu.stop(&p, pid, 200, NULL, &err) == 0, "stop: %s", err.msg);
	if (check_clean(dir, pid, hpid) < 0)
		return -1;

	/* A vm that never ran (still in prelaunch) cannot see the power
	 * button: quit at once instead of waiting out the grace. */
	fail_unless(fake_vm(&p, "prelaunch", dir, sizeof(dir)) == 0, "vm dir");
	setenv("FAKE_QEMU_MODE", "stubborn", 1);
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s", err.msg);
	hpid = helper_pid(dir);
	fail_unless(vmm_qemu.configure(&p, pid, &err) == 0, "configure: %s", err.msg);
	t0 = time_mono_ms();
	fail_unless(vmm_qemu.stop(&p, pid, 30000, NULL, &err) == 0, "stop: %s", err.msg);
	fail_unless(time_mono_ms() - t0 < 2500, "took %lld ms", time_mono_ms() - t0);
	if (check_clean(dir, pid, hpid) < 0)
		return -1;

	/* kill: at once, both processes. */
	fail_unless(fake_vm(&p, "killed", dir, sizeof(dir)) == 0, "vm dir");
	setenv("FAKE_QEMU_MODE", "normal", 1);
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s", err.msg);
	hpid = helper_pid(dir);
	fail_unless(vmm_qemu.configure(&p, pid, &err) == 0, "configure: %s", err.msg);
	vmm_qemu.kill(&p, pid);
	if (check_clean(dir, pid, hpid) < 0)
		return -1;
	return 0;
}

/* vhost-device-vsock's vring worker epoll, as /proc/PID/fdinfo shows it
 * (taken from a real one), before and after QEMU starts the rings. */
static int
test_helper_epoll_state(void)
{
	static const char head[] = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\n"
	    "ino:\t1038\n";
	static const char worker[] =
	    "tfd:       10 events:       19 data:                3  pos:0 ino:40e sdev:10\n"
	    "tfd:        5 events:       19 data:                5  pos:0 ino:40e sdev:10\n"
	    "tfd:        4 events:       19 data:                4  pos:0 ino:40e sdev:10\n";
	static const char rx[] =
	    "tfd:       22 events:       19 data:                0  pos:0 ino:40e sdev:10\n";
	static const char tx[] =
	    "tfd:       23 events:       19 data:                1  pos:0 ino:40e sdev:10\n";
	/* The backend's own epoll: the listener and streams, by fd number. */
	static const char backend[] =
	    "tfd:        3 events:       19 data:                3  pos:0 ino:ab132 sdev:9\n"
	    "tfd:       21 events:       19 data:               15  pos:0 ino:abbc1 sdev:9\n";
	char buf[2048];

	snprintf(buf, sizeof(buf), "%s%s", head, worker);
	fail_unless(qemu_helper_epoll_state(buf) == 0, "worker, no rings: %d",
	    qemu_helper_epoll_state(buf));
	snprintf(buf, sizeof(buf), "%s%s%s", head, worker, rx);
	fail_unless(qemu_helper_epoll_state(buf) == 0, "RX ring alone is not up");
	snprintf(buf, sizeof(buf), "%s%s%s", head, worker, tx);
	fail_unless(qemu_helper_epoll_state(buf) == 0, "TX ring alone is not up");
	snprintf(buf, sizeof(buf), "%s%s%s%s", head, tx, worker, rx);
	fail_unless(qemu_helper_epoll_state(buf) == 1, "both rings: %d",
	    qemu_helper_epoll_state(buf));
	snprintf(buf, sizeof(buf), "%s%s", head, backend);
	fail_unless(qemu_helper_epoll_state(buf) == -1, "backend epoll taken "
	    "for the worker's");
	fail_unless(qemu_helper_epoll_state(head) == -1, "empty epoll");
	fail_unless(qemu_helper_epoll_state("") == -1, "empty text");
	fail_unless(qemu_helper_epoll_state("tfd: 4 events: 19 data: zz\n"
	    "tfd: 3 events: 19 data:\n") == -1, "junk data");
	return 0;
}

/* The boot wait connects to a QEMU VM's vsock only once the helper's
 * rings are up (qemu.c: earlier connections kill vhost-device-vsock
 * 0.3.0's vsock); a helper whose layout is unknown is not held back. */
static int
test_vsock_gate(void)
{
	struct vmm_params p;
	struct bn_err err;
	char dir[128];
	pid_t pid = 0, hpid;
	int ready = 0;

	if (!have_python())
		skip_test("no /usr/bin/python3 for the fake qemu");
	fail_unless(vmm_qemu.vsock_ready != NULL, "qemu has no vsock gate");
	fail_unless(fake_vm(&p, "gate", dir, sizeof(dir)) == 0, "vm dir");
	setenv("FAKE_QEMU_MODE", "normal", 1);
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s", err.msg);
	hpid = helper_pid(dir);
	fail_unless(hpid > 0, "helper pid");
	/* The fake sets its epoll up after it listens: wait for it. */
	for (int i = 0; i < 100 && !ready; i++) {
		char line[128];
		FILE *f = fopen(p.vmm_log, "r");
		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			ready |= strstr(line, "fake helper: cid") != NULL;
		if (f != NULL)
			fclose(f);
		if (!ready)
			usleep(20000);
	}
	fail_unless(ready, "the fake helper never started");
	fail_unless(vmm_qemu.vsock_ready(&p) == 0, "gate open before the rings");
	kill(hpid, SIGUSR1);
	ready = 0;
	for (int i = 0; i < 150 && !ready; i++) {
		ready = vmm_qemu.vsock_ready(&p);
		if (!ready)
			usleep(20000);
	}
	fail_unless(ready == 1, "gate still closed with both rings up");
	fail_unless(vmm_qemu.stop(&p, pid, 5000, NULL, &err) == 0, "stop: %s",
	    err.msg);
	/* No helper running: nothing to hold the probe back for. */
	fail_unless(vmm_qemu.vsock_ready(&p) == 1, "gate closed without a helper");

	/* A helper of another make: no vring worker epoll to read. */
	setenv("FAKE_HELPER_LAYOUT", "none", 1);
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s", err.msg);
	unsetenv("FAKE_HELPER_LAYOUT");
	usleep(300000);
	fail_unless(vmm_qemu.vsock_ready(&p) == 1, "unknown helper held back");
	fail_unless(vmm_qemu.stop(&p, pid, 5000, NULL, &err) == 0, "stop: %s",
	    err.msg);
	return 0;
}

static int
test_spawn_failures(void)
{
	struct vmm_params p;
	struct bn_err err;
	char dir[128];
	pid_t pid = 0, hpid;

	if (!have_python())
		skip_test("no /usr/bin/python3 for the fake qemu");

	/* QEMU dies at start: configure says why, from vmm.log. */
	fail_unless(fake_vm(&p, "dies", dir, sizeof(dir)) == 0, "vm dir");
	setenv("FAKE_QEMU_MODE", "die", 1);
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s", err.msg);
	hpid = helper_pid(dir);
	fail_unless(vmm_qemu.configure(&p, pid, &err) < 0, "dead qemu configured");
	fail_unless(err.code == BN_EVMM, "code %d", err.code);
	fail_unless(strstr(err.msg, "Could not open 'x'") != NULL, "msg '%s'", err.msg);
	vmm_qemu.kill(&p, pid);
	if (check_clean(dir, pid, hpid) < 0)
		return -1;

	/* A second boot's error does not quote the first's. */
	setenv("FAKE_QEMU_MODE", "deaf", 1);
	p.api_timeout_ms = 200;
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s", err.msg);
	hpid = helper_pid(dir);
	kill(pid, SIGKILL);
	proc_wait_gone(pid, 2000);
	fail_unless(vmm_qemu.configure(&p, pid, &err) < 0, "configured");
	fail_unless(strstr(err.msg, "Could not open") == NULL, "stale log: %s", err.msg);
	vmm_qemu.kill(&p, pid);
	if (check_clean(dir, pid, hpid) < 0)
		return -1;

	/* No helper binary: nothing is started. */
	fail_unless(fake_vm(&p, "nohelper", dir, sizeof(dir)) == 0, "vm dir");
	p.vsock_helper = "/nonexistent/vhost-device-vsock";
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) < 0, "spawned without helper");
	fail_unless(err.code == BN_EVMM_MISSING, "code %d (%s)", err.code, err.msg);
	p.vsock_helper = NULL;
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) < 0 &&
	    err.code == BN_EVMM_MISSING, "spawned with NULL helper");

	/* No QEMU binary: the helper started for it is stopped again. */
	p.vsock_helper = fake_helper;
	p.binary = "/nonexistent/qemu-system-x86_64";
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) < 0, "spawned without qemu");
	fail_unless(err.code == BN_EVMM_MISSING, "code %d (%s)", err.code, err.msg);
	if (check_clean(dir, 0, 0) < 0)
		return -1;
	unsetenv("FAKE_QEMU_MODE");
	return 0;
}

/* ---------- a real boot (TCG) ---------- */

static int
copy_file(const char *from, const char *to)
{
	char *argv[] = { "/bin/cp", "--sparse=always", (char *)from, (char *)to, NULL };
	struct bn_err err;

	return proc_run(argv, 60000, NULL, 0, NULL, &err);
}

/* GET / from the guest's busybox httpd over the TAP. */
static int
http_get(const char *ip, int port, char *out, size_t outsz, int timeout_ms)
{
	long long deadline = time_mono_ms() + timeout_ms;

	for (;;) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
		struct timeval tv = { 2, 0 };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		size_t n = 0;

		inet_pton(AF_INET, ip, &sa.sin_addr);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			const char *req = "GET / HTTP/1.0\r\n\r\n";
			(void)!write(fd, req, strlen(req));
			ssize_t r;
			while (n + 1 < outsz && (r = read(fd, out + n, outsz - 1 - n)) > 0)
				n += (size_t)r;
			out[n] = '\0';
			close(fd);
			return 0;
		}
		close(fd);
		if (time_mono_ms() >= deadline)
			return -1;
		sleep_ms(200);
	}
}

/* The last 40 lines of a log as TAP comments: what a failed boot got to,
 * before the temporary directory goes. */
static void
print_tail(const char *path)
{
	struct bn_err err;
	char *buf = NULL, *line, *save = NULL;
	size_t len, from = 0;
	int nl = 0;

	if (file_read_all(path, 16u << 20, &buf, &len, &err) < 0) {
		printf("# %s\n", err.msg);
		return;
	}
	for (size_t i = len; i > 0; i--) {
		if (buf[i - 1] == '\n' && ++nl > 40) {
			from = i;
			break;
		}
	}
	printf("# %s, last lines:\n", path);
	for (line = strtok_r(buf + from, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		printf("#   %s\n", line);
	free(buf);
}

static bool
wait_console(const char *path, const char *needle, int timeout_ms)
{
	long long deadline = time_mono_ms() + timeout_ms;

	while (!file_has(path, needle)) {
		if (time_mono_ms() >= deadline)
			return false;
		sleep_ms(50);
	}
	return true;
}

/* The reader of a connection open across a pause: like bangerd's relays,
 * it closes its end once the stream ends. */
static void *
pause_reader(void *arg)
{
	int fd = *(int *)arg;
	char buf[512];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	vsock_conn_close(fd);
	return NULL;
}

/* A pause under a busy vsock (qemu_vsock.c says why it matters): the open
 * connection is ended before QEMU stops, a dial while paused is held back
 * without reaching the helper, and after the resume the agent answers at
 * once.  Before the fix each of these left the guest's vsock dead. */
static bool
pause_keeps_vsock(const struct vmm_params *p)
{
	struct vsock_health h = { 0 };
	struct bn_err err;
	pthread_t th;
	int fd = -1;
	bool ok = true;

	if (vsock_dial(p->vsock_uds, 1024, vsock_now_ms() + 5000, &fd, &err) < 0) {
		printf("# pause: dial: %s\n", err.msg);
		return false;
	}
	const char *part = "GET /healthz HTTP/1.1\r\nHost: e2e\r\n";
	if (write(fd, part, strlen(part)) < 0 ||
	    pthread_create(&th, NULL, pause_reader, &fd) != 0) {
		vsock_conn_close(fd);
		return false;
	}
	/* The helper has taken the connection. */
	long long until = time_mono_ms() + 2000;
	while (qemu_vsock_held(p) < 1 && time_mono_ms() < until)
		sleep_ms(10);
	int held = qemu_vsock_held(p);
	printf("# pause: the helper holds %d connection(s) before\n", held);
	ok &= held == 1;
	if (vmm_qemu.pause(p, &err) < 0) {
		printf("# pause: %s\n", err.msg);
		ok = false;
	}
	/* Ended by the pause; if not, end it here so the test goes on. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	if (pthread_timedjoin_np(th, NULL, &ts) != 0) {
		printf("# pause: the open connection was not ended\n");
		ok = false;
		shutdown(fd, SHUT_RDWR);
		pthread_join(th, NULL);
	}
	held = qemu_vsock_held(p);
	printf("# pause: paused; ours open %d, the helper holds %d\n",
	    vsock_conn_count(p->vsock_uds), held);
	ok &= held == 0 && vsock_conn_count(p->vsock_uds) == 0;
	vsock_probe_health(p->vsock_uds, 1024, 500, &h);
	printf("# pause: a probe while paused: %s/%s %s\n",
	    vsock_health_status_name(h.status), h.reason, h.how);
	ok &= strcmp(h.how, "paused") == 0 && qemu_vsock_held(p) == 0;
	vsock_health_clear(&h);
	long long r0 = time_mono_ms();
	if (vmm_qemu.resume(p, &err) < 0) {
		printf("# resume: %s\n", err.msg);
		ok = false;
	}
	vsock_probe_health(p->vsock_uds, 1024, 3000, &h);
	printf("# resume: %lld ms, then a probe: %s/%s\n", time_mono_ms() - r0,
	    vsock_health_status_name(h.status), h.reason);
	ok &= h.status == VSOCK_HEALTH_OK;
	vsock_health_clear(&h);
	return ok;
}

static int
test_real_boot(void)
{
	const char *e2e = getenv("BANGER_E2E_DIR");
	const char *tapname = getenv("BANGER_E2E_TAP");
	const char *gip = getenv("BANGER_E2E_GUEST_IP");
	const char *gw = getenv("BANGER_E2E_GATEWAY");
	const char *helper = getenv("BANGER_VHOST_VSOCK");
	static char qemu[PATH_MAX], kernel[PATH_MAX], initrd[PATH_MAX], src[PATH_MAX],
	    token[64], cmdline[512], dir[PATH_MAX], want[128], body[4096];
	struct vmm_params p;
	struct vsock_health h = { 0 };
	struct bn_err err;
	char *tok = NULL;
	size_t toklen;
	pid_t pid = 0, hpid;

	if (e2e == NULL || !*e2e)
		skip_test("BANGER_E2E_DIR is not set (tests/e2e/qemu-boot.sh sets it "
		    "up and runs this test)");
	if (proc_find_exe(getenv("BANGER_QEMU") ? getenv("BANGER_QEMU") :
	    "qemu-system-x86_64", qemu, sizeof(qemu), &err) < 0)
		skip_test("qemu-system-x86_64 is not installed");
	if (helper == NULL || access(helper, X_OK) < 0)
		skip_test("BANGER_VHOST_VSOCK does not name vhost-device-vsock");
	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", e2e);
	snprintf(initrd, sizeof(initrd), "%s/initrd.img", e2e);
	if (access(kernel, R_OK) < 0 || access(initrd, R_OK) < 0)
		skip_test("no kernel/initrd in BANGER_E2E_DIR");
	snprintf(src, sizeof(src), "%s/token", e2e);
	fail_unless(file_read_all(src, 64, &tok, &toklen, &err) == 0, "%s", err.msg);
	snprintf(token, sizeof(token), "%.*s", (int)strcspn(tok, "\n"), tok);
	free(tok);

	snprintf(dir, sizeof(dir), "%s/real", tmpdir);
	fail_unless(mkdir(dir, 0700) == 0, "mkdir %s", dir);
	memset(&p, 0, sizeof(p));
	fail_unless(vmm_params_paths(&p, dir, &err) == 0, "%s", err.msg);
	snprintf(src, sizeof(src), "%s/rootfs.ext4", e2e);
	fail_unless(copy_file(src, p.rootfs) == 0, "copy rootfs");
	snprintf(src, sizeof(src), "%s/work.ext4", e2e);
	fail_unless(copy_file(src, p.workdisk) == 0, "copy work disk");
	/* As the guest-config builder writes it for QEMU (root= included). */
	if (tapname && *tapname)
		snprintf(cmdline, sizeof(cmdline), "console=ttyS0 reboot=k panic=1 "
		    "root=/dev/vda rw ip=%s::%s:255.255.255.0:e2e:eth0:off "
		    "banger.hostname=e2e banger.agent_port=1024 banger.workdev=/dev/vdb",
		    gip ? gip : "172.30.0.2", gw ? gw : "172.30.0.1");
	else
		snprintf(cmdline, sizeof(cmdline), "console=ttyS0 reboot=k panic=1 "
		    "root=/dev/vda rw banger.hostname=e2e banger.agent_port=1024 "
		    "banger.workdev=/dev/vdb");
	p.vm_id = "e2e0e2e0e2e0e2e0";
	p.binary = qemu;
	p.vsock_helper = helper;
	p.kernel = kernel;
	p.initrd = initrd;
	p.cmdline = cmdline;
	p.vcpus = 2;
	p.memory_mib = 512;
	p.cid = 3;
	p.api_timeout_ms = 5000;
	p.kvm = false;
	if (tapname && *tapname) {
		p.tap = tapname;
		p.mac = "06:00:ac:1e:00:02";
	}

	long long t0 = time_mono_ms();
	fail_unless(vmm_qemu.spawn(&p, &pid, &err) == 0, "spawn: %s (%s)", err.msg,
	    err.hint);
	long long t_spawn = time_mono_ms();
	hpid = helper_pid(dir);
	if (vmm_qemu.configure(&p, pid, &err) < 0) {
		vmm_qemu.kill(&p, pid);
		fail_unless(0, "configure: %s", err.msg);
	}
	long long t_conf = time_mono_ms();
	if (vmm_qemu.start(&p, &err) < 0) {
		vmm_qemu.kill(&p, pid);
		fail_unless(0, "start: %s", err.msg);
	}
	long long t_start = time_mono_ms();
	int rc = vsock_wait_healthy(p.vsock_uds, 1024, vsock_now_ms() + 60000, &h, &err);
	long long t_health = time_mono_ms();
	printf("# real boot: spawn %lld ms, configure %lld ms, start %lld ms, "
	    "start-to-healthy %lld ms, total %lld ms (%s/%s)\n", t_spawn - t0,
	    t_conf - t_spawn, t_start - t_conf, t_health - t_start, t_health - t0,
	    vsock_health_status_name(h.status), h.reason);
	bool h_ok = h.status == VSOCK_HEALTH_OK;
	if (h.agent != NULL) {
		char *aj = json_dumps(h.agent, JSON_COMPACT);
		printf("# agent: %.900s\n", aj ? aj : "?");
		free(aj);
	}
	vsock_health_clear(&h);
	if (rc < 0) {
		vmm_qemu.kill(&p, pid);
		print_tail(p.console_log);
		print_tail(p.vmm_log);
		fail_unless(0, "agent not healthy: %s (console %s)", err.msg,
		    p.console_log);
	}
	snprintf(want, sizeof(want), "banger-e2e: token %s", token);
	bool disks = wait_console(p.console_log, want, 5000) &&
	    file_has(p.console_log, "banger-e2e: vdb mounted");
	bool net = true;
	if (tapname && *tapname) {
		snprintf(want, sizeof(want), "banger-e2e-http-%s", token);
		net = http_get(gip ? gip : "172.30.0.2", 8080, body, sizeof(body),
		    10000) == 0 && strstr(body, want) != NULL;
		printf("# network: GET http://%s:8080/ %s\n", gip ? gip : "172.30.0.2",
		    net ? "answered with the token" : "FAILED");
	} else {
		printf("# network: not tested (BANGER_E2E_TAP unset)\n");
	}
	bool probed = vmm_qemu.probe(&p, pid, &err) == 0;
	bool healthy = h_ok;

	bool paused_well = pause_keeps_vsock(&p);

	long long s0 = time_mono_ms();
	int src_rc = vmm_qemu.stop(&p, pid, 20000, NULL, &err);
	long long s1 = time_mono_ms();
	bool button = file_has(p.console_log, "banger-e2e: power button");
	printf("# stop: %lld ms (%s)\n", s1 - s0, button ? "ACPI power button, "
	    "guest powered off" : "guest did not react to the power button");
	fail_unless(src_rc == 0, "stop: %s", err.msg);
	fail_unless(disks, "console lacks the rootfs token or vdb (%s)", p.console_log);
	fail_unless(net, "the guest did not answer over the TAP");
	fail_unless(probed, "probe of the running vm failed");
	fail_unless(healthy, "the agent reported degraded health");
	fail_unless(button, "the guest did not see the power button");
	fail_unless(paused_well, "the vsock did not survive a pause");
	return check_clean(dir, pid, hpid);
}

/* Whatever a failed test left running: the processes whose command line
 * names our own temporary directory (fakes, QEMU, helpers), by pid. */
static void
kill_leftovers(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[64], buf[8192];
		pid_t pid = (pid_t)atoi(e->d_name);
		ssize_t n;
		int fd;

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[n] = '\0';
		if (strstr(buf, tmpdir) != NULL) {
			printf("# killing leftover pid %d\n", (int)pid);
			kill(pid, SIGKILL);
		}
	}
	closedir(d);
}

static void
cleanup_tmpdir(void)
{
	char *argv[] = { "/bin/rm", "-rf", tmpdir, NULL };
	struct bn_err err;

	if (tmpdir[0] && getenv("BANGER_KEEP_TMP") == NULL)
		proc_run(argv, 30000, NULL, 0, NULL, &err);
}

int
main(void)
{
	tap_begin();
	signal(SIGPIPE, SIG_IGN);
	/* $TMPDIR on tmpfs (/dev/shm) exercises the no-O_DIRECT disks. */
	const char *tmp = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/banger-qemu-XXXXXX",
	    tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(fake_qemu, sizeof(fake_qemu), "%s/fake-qemu", tmpdir);
	snprintf(fake_helper, sizeof(fake_helper), "%s/fake-vhost-device-vsock", tmpdir);
	if (write_exe(fake_qemu, fake_qemu_py) < 0 ||
	    write_exe(fake_helper, fake_helper_py) < 0) {
		perror("write fakes");
		return 1;
	}

	RUN_TEST(test_argv_tcg);
	RUN_TEST(test_argv_kvm_no_net);
	RUN_TEST(test_argv_escape_and_limits);
	RUN_TEST(test_argv_mounts);
	RUN_TEST(test_virtiofsd);
	RUN_TEST(test_qmp_handshake);
	RUN_TEST(test_qmp_execute_skips_events);
	RUN_TEST(test_qmp_errors);
	RUN_TEST(test_helper_epoll_state);
	RUN_TEST(test_lifecycle_fake);
	RUN_TEST(test_vsock_gate);
	RUN_TEST(test_stop_fallbacks);
	RUN_TEST(test_paused_on_enospc);
	RUN_TEST(test_spawn_failures);
	RUN_TEST(test_real_boot);

	kill_leftovers();
	cleanup_tmpdir();
	return tap_end();
}
