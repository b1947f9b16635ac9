/* qemu.c - the QEMU microvm driver: qemu-system-x86_64 -M microvm with
 * virtio-mmio disks and NIC, controlled over QMP (JSON lines on a Unix
 * socket), with vsock served by a vhost-device-vsock process that speaks
 * Firecracker's hybrid protocol on <vmdir>/vsock.sock.
 *
 * Order: spawn starts the vsock helper, waits until its vhost-user socket
 * listens, then starts QEMU paused (-S); configure waits for QMP and checks
 * the VM is in prelaunch; start sends "cont".  Everything the VM needs is
 * on QEMU's command line: there is nothing to configure over QMP. */
#include "vmm/qemu_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/proc.h"
#include "common/uhttp.h"
#include "common/util.h"
#include "vmm/vsock_quiet.h"

/* Written to vmm.log before each spawn: error messages quote only what
 * QEMU and the helper printed after it. */
#define LOG_MARK "--- banger: spawning vhost-device-vsock and qemu ---"


/* query-status: "prelaunch", "running", "paused", "shutdown", ... */
static int
qmp_status(struct qmp_conn *q, char *out, size_t outsz, struct bn_err *err)
{
	json_t *r = NULL;

	if (qmp_execute(q, "query-status", NULL, &r, err) < 0)
		return -1;
	const char *st = json_get_str(r, "status");
	snprintf(out, outsz, "%s", st ? st : "unknown");
	json_decref(r);
	return 0;
}

/* ---------- the helper (vhost-device-vsock) ---------- */

static pid_t
helper_pid_read(const struct qemu_files *f)
{
	return qemu_pid_read(f->helper_pid);
}

static int
helper_pid_write(const struct qemu_files *f, pid_t pid, struct bn_err *err)
{
	char tmp[PATH_MAX + 8], buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	int fd;

	if (path_join(tmp, sizeof(tmp), err, "%s.tmp", f->helper_pid) < 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return bn_fail(err, BN_ESYS, errno, "create %s", tmp);
	if (write(fd, buf, (size_t)n) != n) {
		bn_fail(err, BN_ESYS, errno, "write %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, f->helper_pid) < 0) {
		bn_fail(err, BN_ESYS, errno, "rename %s", f->helper_pid);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Stop this VM's helper, if its pid file names a live process that is
 * really it (pids get reused), and forget it. */
static void
helper_stop(const struct qemu_files *f, bool hard)
{
	pid_t pid = helper_pid_read(f);
	const char *needle[] = { f->vhu_arg };

	if (pid > 0 && proc_alive(pid) && proc_cmdline_has(pid, needle, 1)) {
		if (!hard) {
			kill(pid, SIGTERM);
			if (proc_wait_gone(pid, 1000))
				goto gone;
		}
		kill(pid, SIGKILL);
		proc_wait_gone(pid, 2000);
	}
gone:
	unlink(f->helper_pid);
}

static void
qemu_unlink_sockets(const struct vmm_params *p, const struct qemu_files *f)
{
	unlink(f->qmp);
	unlink(f->vhu);
	unlink(p->vsock_uds);
}

static void
qemu_cleanup(const struct vmm_params *p, bool hard)
{
	struct qemu_files f;
	struct bn_err ignored;

	if (qemu_files(p->vmdir, &f, &ignored) < 0)
		return;
	helper_stop(&f, hard);
	qemu_fs_stop(p, hard);
	qemu_unlink_sockets(p, &f);
	/* A VM stopped while paused: its next boot dials freely. */
	vsock_unquiesce(p->vsock_uds);
}

static int
qemu_helpers(const struct vmm_params *p, pid_t *out, int max)
{
	struct qemu_files f;
	struct bn_err ignored;
	pid_t pid;
	int n = 0;

	if (max >= 1 && qemu_files(p->vmdir, &f, &ignored) == 0 &&
	    (pid = helper_pid_read(&f)) > 0)
		out[n++] = pid;
	return n + qemu_fs_pids(p, out + n, max - n);
}

/* ---------- vmm.log ---------- */

static void
log_mark(const struct vmm_params *p)
{
	int fd = open(p->vmm_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	char line[128];
	char ts[32];

	if (fd < 0)
		return;
	time_rfc3339(ts);
	int n = snprintf(line, sizeof(line), "%s %s\n", LOG_MARK, ts);
	(void)!write(fd, line, (size_t)n);
	close(fd);
}

/* The last line QEMU or the helper printed since the last spawn: usually
 * why QEMU exited ("Could not open ...").  Empty when there is none. */
static void
log_last_line(const struct vmm_params *p, char *out, size_t outsz)
{
	char buf[8192];
	ssize_t n = file_read_tail(p->vmm_log, buf, sizeof(buf));

	out[0] = '\0';
	if (n <= 0)
		return;
	char *start = buf, *m;
	while ((m = strstr(start, LOG_MARK)) != NULL)
		start = m + strlen(LOG_MARK);
	start += strcspn(start, "\n");
	/* Trim trailing blank lines, then take the last one. */
	char *end = buf + n;
	while (end > start && (end[-1] == '\n' || end[-1] == '\r' ||
	    end[-1] == ' '))
		*--end = '\0';
	char *line = end;
	while (line > start && line[-1] != '\n')
		line--;
	snprintf(out, outsz, "%s", line);
}

static int
fail_with_log(const struct vmm_params *p, struct bn_err *err, enum bn_code code,
    const char *what)
{
	char last[200];

	log_last_line(p, last, sizeof(last));
	if (last[0])
		bn_fail(err, code, 0, "%s: %s", what, last);
	else
		bn_fail(err, code, 0, "%s", what);
	return bn_err_hint(err, "see %s", p->vmm_log);
}

/* ---------- driver ---------- */

static int
helper_start(const struct vmm_params *p, const struct qemu_files *f,
    struct bn_err *err)
{
	char cid[32], sock[160], uds[160];
	char *argv[] = { (char *)p->vsock_helper, cid, sock, uds, NULL };
	long long deadline;
	pid_t pid;
	int attempt = 0;

	if (p->vsock_helper == NULL || !*p->vsock_helper) {
		bn_fail(err, BN_EVMM_MISSING, 0, "vhost-device-vsock is not "
		    "available (the QEMU driver needs it for vsock)");
		return bn_err_hint(err, "run rootfs/fetch-vhost-device-vsock.sh "
		    "--out runtime/tools, or set \"vhost_user_vsock\" in bundle.json");
	}
	snprintf(cid, sizeof(cid), "--guest-cid=%u", p->cid);
	snprintf(sock, sizeof(sock), "%s", f->vhu_arg);
	if (path_join(uds, sizeof(uds), err, "--uds-path=%s", p->vsock_uds) < 0)
		return -1;
	if (proc_spawn_detached(argv, p->vmm_log, &pid, err) < 0) {
		if (err->code == BN_EVMM_MISSING)
			bn_err_hint(err, "run rootfs/fetch-vhost-device-vsock.sh, or "
			    "set \"vhost_user_vsock\" in bundle.json");
		return bn_err_prefix(err, "spawn vhost-device-vsock");
	}
	if (helper_pid_write(f, pid, err) < 0) {
		kill(pid, SIGKILL);
		return -1;
	}
	/* It binds and listens within milliseconds of exec. */
	deadline = time_mono_ms() + (p->api_timeout_ms > 0 ? p->api_timeout_ms : 3000);
	while (!qemu_unix_listening(f->vhu)) {
		if (!proc_alive(pid)) {
			helper_stop(f, true);
			return fail_with_log(p, err, BN_EVMM, "vhost-device-vsock "
			    "exited at start");
		}
		if (time_mono_ms() >= deadline) {
			helper_stop(f, true);
			return fail_with_log(p, err, BN_ETIMEOUT, "vhost-device-vsock "
			    "did not listen in time");
		}
		sleep_ms(attempt < 4 ? 1 << attempt : 10);
		attempt++;
	}
	return 0;
}

static int
qemu_spawn(const struct vmm_params *p, pid_t *ret_pid, struct bn_err *err)
{
	struct qemu_files f;
	struct qemu_opts o = { 0 };
	struct qemu_argv *a;
	int rc;

	if (qemu_files(p->vmdir, &f, err) < 0)
		return -1;
	/* Leftovers of a VMM that died without a stop. */
	helper_stop(&f, true);
	qemu_unlink_sockets(p, &f);

	o.direct_root = vmm_host_direct_io(p->rootfs);
	o.direct_work = vmm_host_direct_io(p->workdisk);
	if (!p->kvm)
		vmm_host_tsc(&o.tsc_khz, &o.tsc_reliable);
	a = xmalloc(sizeof(*a));
	if (qemu_build_argv(p, &o, a, err) < 0) {
		free(a);
		return -1;
	}
	log_mark(p);
	if (helper_start(p, &f, err) < 0) {
		free(a);
		return -1;
	}
	if (qemu_fs_start(p, err) < 0) {
		helper_stop(&f, true);
		free(a);
		return -1;
	}
	rc = proc_spawn_detached(a->argv, p->vmm_log, ret_pid, err);
	free(a);
	if (rc < 0) {
		qemu_cleanup(p, true);
		if (err->code == BN_EVMM_MISSING)
			bn_err_hint(err, "apt-get install qemu-system-x86, or set "
			    "\"qemu\" in bundle.json (or BANGER_QEMU)");
		return bn_err_prefix(err, "spawn qemu");
	}
	return 0;
}

/* QMP listens once QEMU has parsed its options; it answers once the main
 * loop runs.  Retry connecting until it does, QEMU dies, or time is up. */
static int
qmp_wait(const struct vmm_params *p, const struct qemu_files *f, pid_t pid,
    long long deadline, struct qmp_conn **ret, struct bn_err *err)
{
	struct bn_err last = { 0 };
	int attempt = 0;

	for (;;) {
		if (qmp_connect(f->qmp, deadline, ret, &last) == 0)
			return 0;
		bool absent = last.code == BN_ESYS && (last.sys_errno == ENOENT ||
		    last.sys_errno == ECONNREFUSED);
		if (!proc_alive(pid))
			return fail_with_log(p, err, BN_EVMM, "qemu exited before "
			    "QMP was ready");
		if (!absent) {
			*err = last;
			return bn_err_prefix(err, "qemu");
		}
		if (time_mono_ms() >= deadline) {
			bn_fail(err, BN_ETIMEOUT, 0, "qemu QMP not ready after %d ms",
			    p->api_timeout_ms);
			return bn_err_hint(err, "see %s", p->vmm_log);
		}
		sleep_ms(attempt < 4 ? 1 << attempt : 10);
		attempt++;
	}
}

static int
qemu_configure(const struct vmm_params *p, pid_t pid, struct bn_err *err)
{
	struct qemu_files f;
	struct qmp_conn *q;
	char st[32];
	int rc;

	if (qemu_files(p->vmdir, &f, err) < 0)
		return -1;
	if (qmp_wait(p, &f, pid, time_mono_ms() + p->api_timeout_ms, &q, err) < 0)
		return -1;
	rc = qmp_status(q, st, sizeof(st), err);
	qmp_close(q);
	if (rc < 0)
		return bn_err_prefix(err, "qemu");
	/* -S: everything is set up and no guest code has run. */
	if (strcmp(st, "prelaunch") != 0 && strcmp(st, "paused") != 0)
		return bn_fail(err, BN_EVMM, 0, "qemu is '%s' before start, "
		    "expected 'prelaunch'", st);
	return 0;
}

static int
qemu_start(const struct vmm_params *p, struct bn_err *err)
{
	struct qemu_files f;
	struct qmp_conn *q;
	int rc;

	if (qemu_files(p->vmdir, &f, err) < 0)
		return -1;
	if (qmp_connect(f.qmp, time_mono_ms() + p->api_timeout_ms, &q, err) < 0)
		return bn_err_prefix(err, "qemu");
	rc = qmp_execute(q, "cont", NULL, NULL, err);
	qmp_close(q);
	return rc;
}

/* Is pid this VM's QEMU?  Its command line carries our QMP socket. */
static bool
is_ours(const struct qemu_files *f, pid_t pid)
{
	const char *needles[] = { "-qmp", f->qmp_arg };

	return proc_cmdline_has(pid, needles, 2);
}

static void
qemu_kill(const struct vmm_params *p, pid_t pid)
{
	struct qemu_files f;
	struct bn_err ignored;

	if (qemu_files(p->vmdir, &f, &ignored) == 0 && pid > 0 &&
	    proc_alive(pid) && is_ours(&f, pid)) {
		kill(pid, SIGKILL);
		proc_wait_gone(pid, 2000);
	}
	qemu_cleanup(p, true);
}

static int
qemu_stop(const struct vmm_params *p, pid_t pid, int grace_ms,
    enum vmm_stop_how *how, struct bn_err *err)
{
	struct qemu_files f;
	struct qmp_conn *q;
	struct bn_err ignored;
	int api_ms = p->api_timeout_ms > 0 ? p->api_timeout_ms : 2000;
	enum vmm_stop_how dummy;

	if (how == NULL)
		how = &dummy;
	*how = VMM_STOP_GONE;
	if (qemu_files(p->vmdir, &f, err) < 0)
		return -1;
	if (pid <= 0 || !proc_alive(pid) || !is_ours(&f, pid))
		goto done;
	*how = VMM_STOP_SIGNAL;
	/* The ACPI power button: systemd, runit and our test init shut down,
	 * and the guest's poweroff ends QEMU.  A guest that never ran (still
	 * in prelaunch) cannot react: go straight to quit. */
	if (grace_ms > 0 && qmp_connect(f.qmp, time_mono_ms() +
	    (grace_ms < api_ms ? grace_ms : api_ms), &q, &ignored) == 0) {
		char st[32];
		bool sent = qmp_status(q, st, sizeof(st), &ignored) == 0 &&
		    strcmp(st, "running") == 0 &&
		    qmp_execute(q, "system_powerdown", NULL, NULL, &ignored) == 0;
		qmp_close(q);
		if (sent && proc_wait_gone(pid, grace_ms))
			goto done;
	}
	/* Gone on its own meanwhile (a guest already shutting down)? */
	if (!proc_alive(pid))
		goto done;
	*how = VMM_STOP_FORCED;
	if (qmp_connect(f.qmp, time_mono_ms() + 2000, &q, &ignored) == 0) {
		bool sent = qmp_execute(q, "quit", NULL, NULL, &ignored) == 0;
		qmp_close(q);
		if (sent && proc_wait_gone(pid, 3000))
			goto done;
	}
	kill(pid, SIGTERM);
	if (proc_wait_gone(pid, 2000))
		goto done;
	kill(pid, SIGKILL);
	if (!proc_wait_gone(pid, 5000))
		return bn_fail(err, BN_ESYS, 0, "qemu pid %d did not exit after "
		    "SIGKILL", (int)pid);
done:
	qemu_cleanup(p, false);
	return 0;
}

static int
qemu_probe(const struct vmm_params *p, pid_t pid, struct bn_err *err)
{
	struct qemu_files f;
	struct qmp_conn *q;
	char st[32];
	int rc;

	if (qemu_files(p->vmdir, &f, err) < 0)
		return -1;
	if (!proc_alive(pid))
		return bn_fail(err, BN_ESTATE, 0, "pid %d is not running", (int)pid);
	if (!is_ours(&f, pid))
		return bn_fail(err, BN_ESTATE, 0, "pid %d is not this vm's qemu",
		    (int)pid);
	if (qmp_connect(f.qmp, time_mono_ms() + (p->api_timeout_ms > 0 ?
	    p->api_timeout_ms : 2000), &q, err) < 0)
		return bn_err_prefix(err, "qemu");
	rc = qmp_status(q, st, sizeof(st), err);
	qmp_close(q);
	if (rc < 0)
		return bn_err_prefix(err, "qemu");
	/* Adopted paused (bangerd restarted): its vsock stays still until
	 * the resume, as after our own pause. */
	if (strcmp(st, "paused") == 0 || strcmp(st, "io-error") == 0)
		vsock_quiesce(p->vsock_uds, false, 0, NULL);
	return 0;
}

/* QEMU stops the VM with status io-error when a drive with werror=enospc
 * fails a write; query-block says whether for lack of space. */
static int
qemu_paused(const struct vmm_params *p, char *reason, size_t reasonsz,
    struct bn_err *err)
{
	struct qemu_files f;
	struct qmp_conn *q;
	json_t *blocks = NULL;
	char st[32];

	if (qemu_files(p->vmdir, &f, err) < 0 ||
	    qmp_connect(f.qmp, time_mono_ms() + (p->api_timeout_ms > 0 ?
	    p->api_timeout_ms : 2000), &q, err) < 0)
		return -1;
	if (qmp_status(q, st, sizeof(st), err) < 0) {
		qmp_close(q);
		return -1;
	}
	if (strcmp(st, "io-error") != 0) {
		qmp_close(q);
		return 0;
	}
	snprintf(reason, reasonsz, "io_error");
	/* Too late to end its connections (a close would be an event on a
	 * stopped ring, qemu_vsock.c); new ones at least wait. */
	vsock_quiesce(p->vsock_uds, false, 0, NULL);
	if (qmp_execute(q, "query-block", NULL, &blocks, err) == 0) {
		size_t i;
		json_t *b;
		json_array_foreach(blocks, i, b) {
			const char *io = json_get_str(b, "io-status");
			if (io != NULL && strcmp(io, "nospace") == 0)
				snprintf(reason, reasonsz, "host_disk_full");
		}
		json_decref(blocks);
	}
	qmp_close(q);
	return 1;
}

/* One QMP query on a fresh connection; *ret the "return" value. */
static int
qemu_query(const struct vmm_params *p, const char *cmd, json_t **ret,
    struct bn_err *err)
{
	struct qemu_files f;
	struct qmp_conn *q;
	int rc;

	if (qemu_files(p->vmdir, &f, err) < 0 ||
	    qmp_connect(f.qmp, time_mono_ms() + (p->api_timeout_ms > 0 ?
	    p->api_timeout_ms : 2000), &q, err) < 0)
		return bn_err_prefix(err, "qemu");
	rc = qmp_execute(q, cmd, NULL, ret, err);
	qmp_close(q);
	return rc < 0 ? bn_err_prefix(err, "qemu %s", cmd) : 0;
}

/* One QMP command with no arguments and no answer: stop or cont. */
static int
qemu_run_state(const struct vmm_params *p, const char *cmd, struct bn_err *err)
{
	return qemu_query(p, cmd, NULL, err);
}

/* How long a pause waits for the VM's vsock connections to end, and a
 * resume for the helper's rings (qemu_vsock.c). */
#define QUIESCE_MS 3000

static int
qemu_pause(const struct vmm_params *p, struct bn_err *err)
{
	if (qemu_vsock_quiesce(p, QUIESCE_MS, err) < 0)
		return -1;
	if (qemu_run_state(p, "stop", err) < 0) {
		vsock_unquiesce(p->vsock_uds);
		return -1;
	}
	return 0;
}

static int
qemu_resume(const struct vmm_params *p, struct bn_err *err)
{
	if (qemu_run_state(p, "cont", err) < 0)
		return -1;
	qemu_vsock_wake(p, QUIESCE_MS);
	return 0;
}

static int
qemu_version(const struct vmm_params *p, char *out, size_t outsz,
    struct bn_err *err)
{
	json_t *v = NULL;

	if (qemu_query(p, "query-version", &v, err) < 0)
		return -1;
	json_t *q = json_object_get(v, "qemu");
	snprintf(out, outsz, "%d.%d.%d",
	    (int)json_integer_value(json_object_get(q, "major")),
	    (int)json_integer_value(json_object_get(q, "minor")),
	    (int)json_integer_value(json_object_get(q, "micro")));
	json_decref(v);
	return 0;
}

/* Saving a QEMU VM is a migration to a file, and QEMU refuses one while
 * a device cannot be migrated.  QEMU 7.2's vhost-user-vsock device is
 * marked unmigratable, and vhost-device-vsock 0.3.0 lacks the dirty-log
 * feature (VHOST_USER_PROTOCOL_F_LOG_SHMFD) migration needs: both are
 * listed by query-migrate's blocked-reasons, which is what we report.
 * There is no snapshot call for QEMU until a QEMU and vsock backend that
 * can migrate are at hand to build and test it against. */
static int
qemu_snapshot_blocked(const struct vmm_params *p, char *why, size_t whysz,
    struct bn_err *err)
{
	json_t *m = NULL, *r;
	size_t i, used = 0;

	if (qemu_query(p, "query-migrate", &m, err) < 0)
		return -1;
	why[0] = '\0';
	json_array_foreach(json_object_get(m, "blocked-reasons"), i, r) {
		const char *s = json_string_value(r);
		if (s == NULL || used + 3 >= whysz)
			continue;
		used += (size_t)snprintf(why + used, whysz - used, "%s%s",
		    used > 0 ? "; " : "", s);
		if (used >= whysz)
			used = whysz - 1;
	}
	json_decref(m);
	if (why[0] == '\0')
		snprintf(why, whysz, "bangerd does not save QEMU VMs yet "
		    "(migration to a file is not built)");
	return 0;
}

const struct vmm_driver vmm_qemu = {
	.name = "qemu",
	.shares = true,
	.paused = qemu_paused,
	.pause = qemu_pause,
	.resume = qemu_resume,
	.spawn = qemu_spawn,
	.configure = qemu_configure,
	.start = qemu_start,
	.stop = qemu_stop,
	.kill = qemu_kill,
	.probe = qemu_probe,
	.vsock_ready = qemu_vsock_ready,
	.version = qemu_version,
	.snapshot_blocked = qemu_snapshot_blocked,
	.helpers = qemu_helpers,
};
