/* firecracker.c - the Firecracker driver: process + REST API over its
 * Unix socket (common/uhttp).  Call order follows Firecracker's API: every
 * pre-boot PUT, then InstanceStart. */
#include "vmm.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/proc.h"
#include "common/uhttp.h"
#include "common/util.h"

struct fc_buf {
	char data[4096];
};

/* One API call.  Returns 0 on 2xx; a 4xx carries Firecracker's
 * fault_message into err (BN_EVMM).  *ret_connect_failed tells the
 * readiness loop that nothing listens yet. */
static int
fc_call(const struct vmm_params *p, const char *method, const char *path,
    json_t *body, int timeout_ms, struct fc_buf *resp, bool *ret_connect_failed,
    struct bn_err *err)
{
	struct uhttp_reply r;
	char *text = body ? json_dump_compact(body) : NULL;
	int rc, status;

	if (ret_connect_failed)
		*ret_connect_failed = false;
	rc = uhttp_request(p->api_sock, method, path, text,
	    time_mono_ms() + timeout_ms, &r, err);
	free(text);
	if (rc < 0) {
		if (ret_connect_failed && err->code == BN_ESYS &&
		    (err->sys_errno == ENOENT || err->sys_errno == ECONNREFUSED))
			*ret_connect_failed = true;
		if (err->code == BN_ESYS)
			err->code = BN_EVMM;
		bn_err_prefix(err, "firecracker");
		return bn_err_detail(err, "call", path);
	}
	status = uhttp_status(&r);
	const char *rbody = r.body ? r.buf + r.body : "";
	if (resp != NULL)
		snprintf(resp->data, sizeof(resp->data), "%s", rbody);
	if (status < 200 || status >= 300) {
		json_t *j = json_loads(rbody, 0, NULL);
		const char *fm = j ? json_get_str(j, "fault_message") : NULL;
		char call[64];
		rc = bn_fail(err, BN_EVMM, 0, "firecracker refused %s %s (HTTP %d): %s",
		    method, path, status, fm ? fm : rbody);
		snprintf(call, sizeof(call), "%s %s", method, path);
		bn_err_detail(err, "call", call);
		json_decref(j);
	}
	free(r.buf);
	return rc;
}

/* A file of the VM's directory as Firecracker is told it: relative to
 * the directory it runs in (the VM's), so that the paths a snapshot
 * records hold for a clone loaded in another VM's directory. */
static const char *
vm_file(const struct vmm_params *p, const char *path)
{
	size_t n = strlen(p->vmdir);

	if (n > 0 && strncmp(path, p->vmdir, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

static void
fc_unlink_sockets(const struct vmm_params *p)
{
	/* Firecracker leaves both sockets behind when it exits. */
	unlink(p->api_sock);
	unlink(p->vsock_uds);
}

static int
fc_spawn(const struct vmm_params *p, pid_t *ret_pid, struct bn_err *err)
{
	char *argv[] = {
		(char *)p->binary, "--api-sock", (char *)p->api_sock,
		"--id", (char *)p->vm_id, NULL
	};

	if (p->nmounts > 0)
		return bn_fail(err, BN_EUNSUPPORTED, 0, "firecracker has no "
		    "virtio-fs: it cannot share folders (mounts)");
	fc_unlink_sockets(p);
	/* In the VM's directory: the disks are named relative to it (see
	 * vm_file), so a snapshot loads the disks of whichever VM's
	 * directory its Firecracker runs in. */
	if (proc_spawn_detached_in(argv, p->vmdir, p->console_log, ret_pid,
	    err) < 0) {
		if (err->code == BN_EVMM_MISSING)
			bn_err_hint(err, "install Firecracker or set \"firecracker\" "
			    "in bundle.json (or BANGER_FIRECRACKER)");
		return bn_err_prefix(err, "spawn firecracker");
	}
	return 0;
}

/* The socket file appears at bind(), before listen(): poll by connecting
 * and asking GET / until it answers, the process dies, or time runs out. */
static int
fc_wait_ready(const struct vmm_params *p, pid_t pid, struct bn_err *err)
{
	long long deadline = time_mono_ms() + p->api_timeout_ms;
	struct bn_err last = { 0 };
	int attempt = 0;

	for (;;) {
		bool refused = false;
		if (fc_call(p, "GET", "/", NULL, 500, NULL, &refused, &last) == 0)
			return 0;
		if (!proc_alive(pid)) {
			bn_fail(err, BN_EVMM, 0, "firecracker exited before its API "
			    "was ready");
			return bn_err_hint(err, "see %s", p->console_log);
		}
		if (!refused && last.code != BN_EVMM) {
			*err = last;
			return -1;
		}
		if (time_mono_ms() >= deadline) {
			bn_fail(err, BN_ETIMEOUT, 0, "firecracker API not ready after "
			    "%d ms: %s", p->api_timeout_ms, last.msg);
			return bn_err_hint(err, "see %s", p->console_log);
		}
		/* 1, 2, 4, 8, then every 10 ms: Firecracker usually listens
		 * within a few milliseconds of exec. */
		sleep_ms(attempt < 4 ? 1 << attempt : 10);
		attempt++;
	}
}

static int
fc_put(const struct vmm_params *p, const char *path, json_t *body,
    struct bn_err *err)
{
	int rc = fc_call(p, "PUT", path, body, p->api_timeout_ms, NULL, NULL, err);

	json_decref(body);
	return rc;
}

/* The first call to a fresh Firecracker, booting or loading alike. */
static int
fc_logger(const struct vmm_params *p, struct bn_err *err)
{
	return fc_put(p, "/logger", json_pack("{s:s, s:s, s:b, s:b}",
	    "log_path", p->vmm_log, "level", "Info", "show_level", 1,
	    "show_log_origin", 0), err);
}


/* A token bucket per second (Firecracker's RateLimiter): bytes and/or
 * operations, each refilled every 1000 ms; 0 leaves one out. */
static json_t *
rate_limiter(long long bytes, long long ops)
{
	json_t *rl = json_object();

	if (bytes > 0)
		json_object_set_new(rl, "bandwidth", json_pack("{s:I, s:i}",
		    "size", (json_int_t)bytes, "refill_time", 1000));
	if (ops > 0)
		json_object_set_new(rl, "ops", json_pack("{s:I, s:i}", "size",
		    (json_int_t)ops, "refill_time", 1000));
	return rl;
}

static json_t *
drive_body(const struct vmm_params *p, const char *id, const char *path,
    int root)
{
	json_t *d = json_pack("{s:s, s:s, s:b, s:b}", "drive_id", id,
	    "path_on_host", vm_file(p, path), "is_root_device", root,
	    "is_read_only", 0);
	const struct vm_limits *l = p->limits;

	if (l != NULL && (l->disk_bytes_per_s > 0 || l->disk_ops_per_s > 0))
		json_object_set_new(d, "rate_limiter",
		    rate_limiter(l->disk_bytes_per_s, l->disk_ops_per_s));
	return d;
}

static int
fc_configure(const struct vmm_params *p, pid_t pid, struct bn_err *err)
{
	json_t *boot;

	if (fc_wait_ready(p, pid, err) < 0)
		return -1;
	if (fc_logger(p, err) < 0)
		return -1;
	if (fc_put(p, "/machine-config", json_pack("{s:i, s:i, s:b}",
	    "vcpu_count", p->vcpus, "mem_size_mib", p->memory_mib, "smt", 0), err) < 0)
		return -1;
	boot = json_pack("{s:s, s:s}", "kernel_image_path", p->kernel,
	    "boot_args", p->cmdline);
	if (p->initrd && *p->initrd)
		json_object_set_new(boot, "initrd_path", json_string(p->initrd));
	if (fc_put(p, "/boot-source", boot, err) < 0)
		return -1;
	if (fc_put(p, "/drives/rootfs", drive_body(p, "rootfs", p->rootfs, 1),
	    err) < 0 ||
	    fc_put(p, "/drives/work", drive_body(p, "work", p->workdisk, 0),
	    err) < 0)
		return -1;
	if (p->tap != NULL) {
		json_t *net = json_pack("{s:s, s:s, s:s}", "iface_id", "eth0",
		    "host_dev_name", p->tap, "guest_mac", p->mac);
		long long bps = p->limits != NULL ? p->limits->net_bytes_per_s : 0;
		if (bps > 0) {
			json_object_set_new(net, "rx_rate_limiter",
			    rate_limiter(bps, 0));
			json_object_set_new(net, "tx_rate_limiter",
			    rate_limiter(bps, 0));
		}
		if (fc_put(p, "/network-interfaces/eth0", net, err) < 0)
			return -1;
	}
	/* Firecracker binds uds_path while handling this call. */
	unlink(p->vsock_uds);
	return fc_put(p, "/vsock", json_pack("{s:i, s:s}", "guest_cid", (int)p->cid,
	    "uds_path", p->vsock_uds), err);
}

static int
fc_start(const struct vmm_params *p, struct bn_err *err)
{
	return fc_put(p, "/actions", json_pack("{s:s}", "action_type",
	    "InstanceStart"), err);
}

static void
fc_kill(const struct vmm_params *p, pid_t pid)
{
	if (pid > 0 && proc_alive(pid)) {
		kill(pid, SIGKILL);
		proc_wait_gone(pid, 2000);
	}
	fc_unlink_sockets(p);
}

static int
fc_stop(const struct vmm_params *p, pid_t pid, int grace_ms,
    enum vmm_stop_how *how, struct bn_err *err)
{
	struct bn_err ignored;
	enum vmm_stop_how dummy;

	if (how == NULL)
		how = &dummy;
	*how = VMM_STOP_GONE;
	if (pid <= 0 || !proc_alive(pid)) {
		fc_unlink_sockets(p);
		return 0;
	}
	*how = VMM_STOP_SIGNAL;
	/* Ctrl-Alt-Del lets the guest shut down; Firecracker exits on the
	 * resulting reset.  A guest that ignores it gets SIGTERM, then KILL. */
	if (grace_ms > 0 && fc_put(p, "/actions", json_pack("{s:s}", "action_type",
	    "SendCtrlAltDel"), &ignored) == 0 && proc_wait_gone(pid, grace_ms))
		goto done;
	if (!proc_alive(pid))
		goto done;
	*how = VMM_STOP_FORCED;
	kill(pid, SIGTERM);
	if (proc_wait_gone(pid, 2000))
		goto done;
	kill(pid, SIGKILL);
	if (!proc_wait_gone(pid, 5000))
		return bn_fail(err, BN_ESYS, 0, "firecracker pid %d did not exit "
		    "after SIGKILL", (int)pid);
done:
	fc_unlink_sockets(p);
	return 0;
}

static int
fc_probe(const struct vmm_params *p, pid_t pid, struct bn_err *err)
{
	const char *needles[] = { "--id", p->vm_id, "--api-sock", p->api_sock };
	struct fc_buf resp;
	json_t *j;
	int rc;

	if (!proc_alive(pid))
		return bn_fail(err, BN_ESTATE, 0, "pid %d is not running", (int)pid);
	if (!proc_cmdline_has(pid, needles, 4))
		return bn_fail(err, BN_ESTATE, 0, "pid %d is not this vm's "
		    "firecracker", (int)pid);
	if (fc_call(p, "GET", "/", NULL, 1000, &resp, NULL, err) < 0)
		return -1;
	j = json_loads(resp.data, 0, NULL);
	rc = j && json_get_str(j, "id") && strcmp(json_get_str(j, "id"), p->vm_id) == 0 ?
	    0 : bn_fail(err, BN_ESTATE, 0, "firecracker at %s reports another id",
	    p->api_sock);
	json_decref(j);
	return rc;
}

/* PATCH /vm: "Paused" holds the vCPUs, "Resumed" lets them run again. */
static int
fc_vm_state(const struct vmm_params *p, const char *state, struct bn_err *err)
{
	json_t *body = json_pack("{s:s}", "state", state);
	int rc = fc_call(p, "PATCH", "/vm", body, p->api_timeout_ms > 0 ?
	    p->api_timeout_ms : 2000, NULL, NULL, err);

	json_decref(body);
	return rc < 0 ? bn_err_prefix(err, "firecracker %s", state) : 0;
}

static int
fc_pause(const struct vmm_params *p, struct bn_err *err)
{
	return fc_vm_state(p, "Paused", err);
}

static int
fc_resume(const struct vmm_params *p, struct bn_err *err)
{
	return fc_vm_state(p, "Resumed", err);
}

static int
fc_version(const struct vmm_params *p, char *out, size_t outsz,
    struct bn_err *err)
{
	struct fc_buf resp;

	if (fc_call(p, "GET", "/version", NULL, p->api_timeout_ms > 0 ?
	    p->api_timeout_ms : 2000, &resp, NULL, err) < 0)
		return -1;
	json_t *j = json_loads(resp.data, 0, NULL);
	const char *v = j ? json_get_str(j, "firecracker_version") : NULL;
	int rc = v != NULL ? 0 : bn_fail(err, BN_EVMM, 0, "firecracker: GET "
	    "/version has no firecracker_version");
	if (v != NULL)
		snprintf(out, outsz, "%s", v);
	json_decref(j);
	return rc;
}

/* Writing guest memory takes time in proportion to its size. */
static int
fc_snapshot_timeout(const struct vmm_params *p)
{
	int t = 30000 + p->memory_mib * 20;

	return p->api_timeout_ms > t ? p->api_timeout_ms : t;
}

/* A full snapshot of the paused guest (Firecracker refuses one of a
 * running guest).  Diff snapshots would need dirty-page tracking from
 * boot on; every snapshot here stands alone. */
static int
fc_snapshot(const struct vmm_params *p, const char *state, const char *mem,
    struct bn_err *err)
{
	json_t *body = json_pack("{s:s, s:s, s:s}", "snapshot_type", "Full",
	    "snapshot_path", state, "mem_file_path", mem);
	int rc = fc_call(p, "PUT", "/snapshot/create", body,
	    fc_snapshot_timeout(p), NULL, NULL, err);

	json_decref(body);
	return rc;
}

/* A fresh Firecracker may be given its logger, then the snapshot: no
 * other configuration is allowed before a load.  The TAP and the vsock
 * socket are this VM's, not the ones recorded in the snapshot. */
static int
fc_restore(const struct vmm_params *p, pid_t pid, const char *state,
    const char *mem, struct bn_err *err)
{
	if (fc_wait_ready(p, pid, err) < 0)
		return -1;
	if (fc_logger(p, err) < 0)
		return -1;
	json_t *body = json_pack("{s:s, s:{s:s, s:s}, s:b, s:{s:s}}",
	    "snapshot_path", state, "mem_backend", "backend_type", "File",
	    "backend_path", mem, "resume_vm", 1, "vsock_override", "uds_path",
	    p->vsock_uds);
	if (p->tap != NULL)
		json_object_set_new(body, "network_overrides", json_pack(
		    "[{s:s, s:s}]", "iface_id", "eth0", "host_dev_name", p->tap));
	unlink(p->vsock_uds);
	int rc = fc_call(p, "PUT", "/snapshot/load", body,
	    fc_snapshot_timeout(p), NULL, NULL, err);
	json_decref(body);
	return rc;
}

const struct vmm_driver vmm_firecracker = {
	.name = "firecracker",
	.spawn = fc_spawn,
	.configure = fc_configure,
	.start = fc_start,
	.stop = fc_stop,
	.kill = fc_kill,
	.probe = fc_probe,
	.pause = fc_pause,
	.resume = fc_resume,
	.version = fc_version,
	.snapshot = fc_snapshot,
	.restore = fc_restore,
};
