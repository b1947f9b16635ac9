/* vm.c - VM lifecycle: create, start, stop, restart, delete, patch, bulk,
 * health, console, and the reconcile/monitor passes.
 *
 * Every action runs as an operation in its own thread and holds the VM's
 * lock, so actions on one VM are serialized and different VMs proceed in
 * parallel.  Each step that makes something (directory, disk copies,
 * process, sockets) has an undo, run in reverse order on failure. */
#include "core/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "guest/guest.h"

int
vm_action_parse(const char *s, enum vm_action *ret)
{
	static const char *const names[] = { "start", "stop", "restart", "delete",
		"set" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum vm_action)i;
			return 0;
		}
	return -1;
}

int
vm_dir(struct core *c, const char *id, char *out, size_t outsz, struct bn_err *err)
{
	return path_join(out, outsz, err, "%s/vms/%s", c->cfg.state_dir, id);
}

/* The per-VM paths a driver needs to act on a VM that exists (stop,
 * kill, probe, pause, resume): no binary, no boot parameters. */
static int
vm_ctl_params(struct core *c, const struct vm *vm, struct vmm_params *p,
    struct bn_err *err)
{
	char dir[PATH_MAX];

	memset(p, 0, sizeof(*p));
	if (vm_dir(c, vm->id, dir, sizeof(dir), err) < 0 ||
	    vmm_params_paths(p, dir, err) < 0)
		return -1;
	p->vm_id = vm->id;
	return 0;
}

void
vm_set_state_ev(struct core *c, struct vm *vm, enum vm_state st, json_t *extra)
{
	enum vm_state prev = vm->state;
	struct bn_err err;

	vm->state = st;
	time_rfc3339(vm->updated_at);
	if (store_vm_update(c->store, vm, &err) < 0)
		log_warnx("vm '%s': %s", vm->name, err.msg);
	if (prev != st) {
		json_t *data = json_pack("{s:s, s:s}", "state", vm_state_name(st),
		    "previous", vm_state_name(prev));
		if (extra != NULL)
			json_object_update(data, extra);
		core_emit(c, "vm.state", vm->name, NULL, data);
	}
	if (extra != NULL)
		json_decref(extra);
}

void
vm_set_state(struct core *c, struct vm *vm, enum vm_state st)
{
	vm_set_state_ev(c, vm, st, NULL);
}


/* The host's first non-loopback IPv4 resolver: systemd-resolved's upstream
 * list when it runs (its stub at 127.0.0.53 is not reachable from a
 * guest), else /etc/resolv.conf. */
static bool
host_upstream_dns(char out[16])
{
	const char *files[] = { "/run/systemd/resolve/resolv.conf",
		"/etc/resolv.conf" };

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		FILE *f = fopen(files[i], "re");
		char line[256], addr[64];
		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f)) {
			struct in_addr a;
			if (sscanf(line, " nameserver %63s", addr) != 1 ||
			    inet_pton(AF_INET, addr, &a) != 1 ||
			    (ntohl(a.s_addr) >> 24) == 127)
				continue;
			snprintf(out, 16, "%s", addr);
			fclose(f);
			return true;
		}
		fclose(f);
	}
	return false;
}

static unsigned
agent_port(struct core *c)
{
	/* config.json overrides the bundle's port. */
	return (unsigned)(c->cfg.agent_port != 1024 ? c->cfg.agent_port :
	    c->bundle.agent_port);
}

int
vm_params(struct core *c, const struct vm *vm, const struct vm_net *net,
    const struct vmm_choice **ret_choice, struct vmm_params *p, char *cmdline,
    size_t cmdsz, struct bn_err *err)
{
	static __thread struct vmm_choice ch;
	char dir[PATH_MAX];
	const struct vmm_driver *drv;

	memset(p, 0, sizeof(*p));
	if (vmm_pick(c, &ch, err) < 0)
		return -1;
	drv = ch.drv;
	if (vm_dir(c, vm->id, dir, sizeof(dir), err) < 0 ||
	    vmm_params_paths(p, dir, err) < 0)
		return -1;
	struct guest_config gc = {
		.hostname = vm->name,
		.agent_port = agent_port(c),
		.vmm_adds_root = drv == &vmm_firecracker,
	};
	if (net != NULL && net->ip[0]) {
		static __thread char upstream[16];
		gc.ip = net->ip;
		gc.gateway = net->gateway;
		gc.netmask = net->netmask;
		/* bangerd answers *.vm on the bridge address and refuses other
		 * zones, so the guest's resolver moves on to the host's
		 * upstream for the rest. */
		gc.dns = c->cfg.dns_port == 53 ? net->gateway : NULL;
		gc.dns2 = host_upstream_dns(upstream) ? upstream : NULL;
		if (gc.dns == NULL && gc.dns2 != NULL) {
			gc.dns = gc.dns2;
			gc.dns2 = NULL;
		}
		p->tap = net->tap;
		p->mac = net->mac;
	}
	if (guest_cmdline(&gc, cmdline, cmdsz, err) < 0)
		return -1;
	p->vm_id = vm->id;
	p->binary = ch.binary;
	p->vsock_helper = ch.helper;
	p->kvm = ch.kvm;
	p->kernel = c->bundle.kernel;
	p->initrd = access(c->bundle.initrd, R_OK) == 0 ? c->bundle.initrd : NULL;
	p->cmdline = cmdline;
	p->vcpus = vm->vcpus;
	p->memory_mib = vm->memory_mib;
	p->cid = vm->cid;
	p->api_timeout_ms = c->cfg.vmm_api_timeout_ms;
	*ret_choice = &ch;
	return 0;
}

/* The console's last non-empty line, printable ASCII only, for an error. */
static void
console_last_line(const char *path, char *out, size_t outsz)
{
	char buf[512];
	ssize_t n = file_read_tail(path, buf, sizeof(buf));

	out[0] = '\0';
	if (n <= 0)
		return;
	/* Strip trailing blank lines, then take the last one. */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
	    buf[n - 1] == ' '))
		buf[--n] = '\0';
	char *line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	size_t j = 0;
	for (; *line && j + 1 < outsz; line++)
		if ((unsigned char)*line >= 0x20 && (unsigned char)*line < 0x7f)
			out[j++] = *line;
	out[j] = '\0';
}

/* May the boot wait connect to the guest's vsock yet?  Not while the
 * VMM's vsock backend could be broken by it (vmm.h vsock_ready). */
static bool
vsock_may_dial(const struct vm *vm, const struct vmm_params *p)
{
	const struct vmm_driver *drv = vmm_by_name(vm->vmm);

	return drv->vsock_ready == NULL || drv->vsock_ready(p) != 0;
}

/* Wait for the guest agent to answer and say it is ready (sshd listens,
 * /root is mounted, the network is up), one short probe at a time, so that
 * a VMM that dies during boot (or a cancel) ends the wait at once instead
 * of at the deadline.  Each new reason for "not ready yet" is announced as a
 * vm.health event with status "starting".
 *
 * A boot that makes no progress (the console does not grow and the agent
 * never answers) for boot_stall_s has stalled: it fails with
 * boot_stalled and the console's last line rather than holding the
 * operation for the whole health_timeout_s. */
static int
wait_agent(struct core *c, struct op *op, struct vm *vm, pid_t pid,
    const struct vmm_params *p, struct vsock_health *h, struct bn_err *err)
{
	long long now = time_mono_ms();
	long long deadline = now + (long long)c->cfg.health_timeout_s * 1000;
	long long start = now, progress_at = now, console_size = -1;
	char said[sizeof(h->not_ready)] = "";
	char seen[sizeof(h->reason) + sizeof(h->how)] = "";
	int probes = 0;
	bool gated = false;

	for (;;) {
		/* One probe at a time, paced: each is a connection through the
		 * VMM's vsock backend, which copes worse the more of them a
		 * booting guest gets (vmm/vsock.c). */
		long long left = deadline - time_mono_ms();
		vsock_health_clear(h);
		bool dial = vsock_may_dial(vm, p);
		if (dial && gated)
			log_debug("vm '%s': vsock up after %lld ms", vm->name,
			    time_mono_ms() - start);
		gated = !dial;
		if (dial) {
			vsock_probe_health(p->vsock_uds, agent_port(c), left > 2000 ?
			    2000 : left > 100 ? (int)left : 100, h);
			probes++;
			if (h->status == VSOCK_HEALTH_OK ||
			    h->status == VSOCK_HEALTH_DEGRADED)
				return 0;
			/* Each new way a probe ends, once, for the diagnosis of
			 * a boot that never gets an answer. */
			char now_seen[sizeof(seen)];
			snprintf(now_seen, sizeof(now_seen), "%s/%s", h->reason,
			    h->how);
			if (strcmp(now_seen, seen) != 0) {
				snprintf(seen, sizeof(seen), "%s", now_seen);
				log_debug("vm '%s': agent probe %d: %s%s%s after %d ms",
				    vm->name, probes, h->reason, h->how[0] ? " " : "",
				    h->how, h->latency_ms);
			}
		}
		now = time_mono_ms();
		if (h->status == VSOCK_HEALTH_STARTING) {
			progress_at = now;   /* the agent answers */
			if (strcmp(h->not_ready, said) != 0) {
				snprintf(said, sizeof(said), "%s", h->not_ready);
				core_emit(c, "vm.health", vm->name, op->row.id,
				    json_pack("{s:s, s:s, s:s}", "status",
				    "starting", "reason", "not_ready", "detail",
				    said));
			}
		}
		struct stat st;
		if (stat(p->console_log, &st) == 0 && st.st_size != console_size) {
			console_size = st.st_size;
			progress_at = now;
		}
		if (!proc_alive(pid))
			return bn_fail(err, BN_EVMM, 0, "the VMM exited during boot");
		if (op_cancelled(op))
			return op_fail_cancelled(op, err);
		if (c->cfg.boot_stall_s > 0 &&
		    now - progress_at >= (long long)c->cfg.boot_stall_s * 1000) {
			char last[120];
			char reason[64];
			snprintf(reason, sizeof(reason), "%s%s%s%s", !dial ? "none, "
			    "the VM's vsock has not started" : h->reason[0] ?
			    h->reason : "none", h->how[0] ? " (" : "", h->how,
			    h->how[0] ? ")" : "");
			console_last_line(p->console_log, last, sizeof(last));
			bn_fail(err, BN_EBOOT_STALLED, 0, "the boot stalled: no "
			    "console output and no answer from the guest agent "
			    "for %d s (last probe: %s); console ends with: %s",
			    c->cfg.boot_stall_s, reason, last[0] ? last :
			    "(nothing)");
			bn_err_detail(err, "console_tail", last);
			bn_err_hint(err, "see banger vm console %s; boot_stall_s in "
			    "config.json sets how long a silent boot may take (0: "
			    "wait out health_timeout_s)", vm->name);
			return -1;
		}
		if (now >= deadline)
			return vsock_health_fail(h, p->vsock_uds, agent_port(c), probes,
			    err);
		/* 10 ms, doubling to VSOCK_WAIT_INTERVAL_MS: quick for a guest
		 * that is up at once (the test double), few connections for a
		 * real boot; 50 ms between looks while the vsock has not
		 * started. */
		long long pause = probes < 6 ? 10LL << (probes - 1) : 0;
		if (pause == 0 || pause > VSOCK_WAIT_INTERVAL_MS)
			pause = VSOCK_WAIT_INTERVAL_MS;
		if (!dial)
			pause = 50;
		sleep_ms((int)(now + pause < deadline ? pause : deadline - now));
	}
}

/* Boot a VM whose disks exist: spawn, configure, InstanceStart, wait for
 * the agent.  On failure the process is gone, its sockets are unlinked and
 * the VM is stopped with last_error set. */
static int
vm_boot(struct core *c, struct op *op, struct vm *vm, int base, struct bn_err *err)
{
	const struct vmm_driver *drv;
	const struct vmm_choice *ch;
	struct vmm_params p;
	struct vm_net net;
	char cmdline[1024];
	struct vsock_health h = { 0 };
	pid_t pid = 0;

	/* Nothing changed yet: a cancel leaves the VM as it was. */
	if (op_cancelled(op))
		return op_fail_cancelled(op, err);
	op_stage(c, op, "network", base);
	if (core_net_vm_up(c, vm, &net, err) < 0)
		goto fail;
	op_stage(c, op, "spawn_vmm", base + 5);
	if (op_cancelled(op)) {
		op_fail_cancelled(op, err);
		goto undo_net;
	}
	if (vm_params(c, vm, &net, &ch, &p, cmdline, sizeof(cmdline), err) < 0)
		goto undo_net;
	drv = ch->drv;
	if (access(p.kernel, R_OK) < 0) {
		bn_fail(err, BN_EIMG_UNAVAIL, errno, "kernel %s", p.kernel);
		bn_err_hint(err, "run 'make runtime-bundle' or set \"kernel\" in "
		    "bundle.json");
		goto undo_net;
	}
	snprintf(vm->vmm, sizeof(vm->vmm), "%s", drv->name);
	/* For status and doctor: the accelerator and why. */
	snprintf(vm->accel, sizeof(vm->accel), "%s", ch->accel);
	snprintf(vm->accel_reason, sizeof(vm->accel_reason), "%s",
	    ch->accel_reason);
	snprintf(vm->last_error, sizeof(vm->last_error), "%s", "");
	/* A VM being created stays "creating" until it is up: if bangerd dies
	 * meanwhile, the next start removes it instead of adopting it. */
	enum vm_state booting = vm->state == VM_CREATING ? VM_CREATING : VM_STARTING;
	vm_set_state(c, vm, booting);
	if (drv->spawn(&p, &pid, err) < 0)
		goto undo_net;
	/* Record the pid at once: a daemon crash from here on must find it. */
	vm->pid = pid;
	vm_set_state(c, vm, booting);
	op_stage(c, op, "configure", base + 10);
	if (drv->configure(&p, pid, err) < 0)
		goto undo_process;
	op_stage(c, op, "instance_start", base + 20);
	if (drv->start(&p, err) < 0)
		goto undo_process;
	op_stage(c, op, "wait_health", base + 30);
	snprintf(vm->health, sizeof(vm->health), "starting");
	vm_set_state(c, vm, booting);
	if (wait_agent(c, op, vm, pid, &p, &h, err) < 0) {
		if (err->code == BN_ENOT_READY) {
			bn_err_hint(err, "see the console log: banger vm console %s",
			    vm->name);
		} else if (err->code != BN_ECANCELLED &&
		    err->code != BN_EBOOT_STALLED) {
			bn_err_prefix(err, "waiting for the guest agent");
			bn_err_hint(err, "see the console log: banger vm console %s",
			    vm->name);
		}
		vsock_health_clear(&h);
		goto undo_process;
	}
	snprintf(vm->health, sizeof(vm->health), "%s",
	    vsock_health_status_name(h.status));
	vsock_health_clear(&h);
	time_rfc3339(vm->started_at);
	vm_set_state(c, vm, VM_RUNNING);
	if (vm->nat && core_net_nat_sync(c, err) < 0) {
		bn_err_prefix(err, "nat");
		goto undo_process;
	}
	return 0;

undo_process:
	drv->kill(&p, pid);
	vm->pid = 0;
	vm_set_state(c, vm, vm->state == VM_CREATING ? VM_CREATING : VM_STOPPING);
	if (vm->nat)
		core_net_nat_sync(c, NULL);
undo_net:
	core_net_vm_down(c, vm);
fail:
	vm->pid = 0;
	if (err->code != BN_ECANCELLED)
		snprintf(vm->last_error, sizeof(vm->last_error), "%s", err->msg);
	snprintf(vm->health, sizeof(vm->health), "unknown");
	time_rfc3339(vm->stopped_at);
	vm_set_state(c, vm, VM_STOPPED);
	return -1;
}

/* Ask the guest agent to shut the guest down.  Firecracker on x86 has no
 * power management: a guest that powers off halts and Firecracker stays,
 * while a reboot (reboot=k) ends it; QEMU runs with -no-reboot and exits on
 * either, so it gets a real poweroff.  0 when the agent took the request. */
static int
agent_poweroff(struct core *c, const struct vm *vm, const struct vmm_driver *drv,
    const struct vmm_params *p, int timeout_ms)
{
	struct bn_err err;
	int status = 0;
	const char *mode = drv == &vmm_firecracker ? "reboot" : "poweroff";

	memset(&err, 0, sizeof(err));
	if (vsock_agent_poweroff(p->vsock_uds, agent_port(c), mode, timeout_ms,
	    &status, &err) < 0) {
		log_info("vm '%s': no agent to ask for a %s (%s); using the "
		    "VMM's signal", vm->name, mode, err.msg);
		return -1;
	}
	if (status != 202) {
		/* 404: an agent from before the route. */
		log_info("vm '%s': the agent answered %d to %s; using the "
		    "VMM's signal", vm->name, status, mode);
		return -1;
	}
	return 0;
}

/* Stop a VM, keeping its disks whole.  In order, each step only when the
 * one before did not end the VMM:
 *   1. the agent's POST /poweroff: the guest syncs and its init system
 *      stops services and unmounts (most of the grace is left for it);
 *   2. the VMM's own signal, which images also act on: QEMU's ACPI power
 *      button (the agent or the tiny guest's init watches the key),
 *      Firecracker's Ctrl-Alt-Del (init reboots, Firecracker exits);
 *   3. after the grace, the kill.
 * The VM records how it ended (stop_result/stop_method/stop_ms), the
 * vm.state event carries it, and the image's stop history gets a row. */
static int
vm_halt(struct core *c, struct op *op, struct vm *vm, int grace_s,
    struct bn_err *err)
{
	const struct vmm_driver *drv;
	struct vmm_params p;
	enum vmm_stop_how how;
	bool asked = false;

	if (vm->state == VM_STOPPED || vm->state == VM_CREATING)
		return 0;
	op_stage(c, op, "stopping", 10);
	vm_set_state(c, vm, VM_STOPPING);
	/* The driver that started it, whatever vmm says now; stopping needs
	 * no binary, only the per-VM paths. */
	drv = vmm_by_name(vm->vmm);
	if (vm_ctl_params(c, vm, &p, err) < 0)
		return -1;
	p.api_timeout_ms = c->cfg.vmm_api_timeout_ms;

	/* A guest the VMM paused cannot hear a request to power off.  With
	 * space back it runs again first and stops cleanly; on a host that is
	 * still full, running it would only fail its writes, so it is ended
	 * where it stands (its disks hold what was written before the pause). */
	if (vm->paused_reason[0] != '\0') {
		struct bn_err ignored;
		if (drv->resume != NULL &&
		    core_host_room(c, 0, "a resume", &ignored) == 0 &&
		    drv->resume(&p, &ignored) == 0)
			log_info("vm '%s': resumed to stop it cleanly", vm->name);
		else
			grace_s = 0;
		vm->paused_reason[0] = '\0';
	}

	long long t0 = time_mono_ms();
	long long grace_ms = (long long)grace_s * 1000;
	if (grace_ms > 0 && vm->pid > 0 && proc_alive(vm->pid)) {
		op_stage(c, op, "guest_poweroff", 15);
		asked = agent_poweroff(c, vm, drv, &p,
		    grace_ms < 2000 ? (int)grace_ms : 2000) == 0;
		long long wait = t0 + grace_ms * 2 / 3 - time_mono_ms();
		if (asked && wait > 0)
			proc_wait_gone(vm->pid, (int)wait);
	}
	long long left = t0 + grace_ms - time_mono_ms();
	if (vm->pid > 0 && proc_alive(vm->pid))
		op_stage(c, op, drv == &vmm_qemu ? "power_button" : "ctrl_alt_del",
		    40);
	if (drv->stop(&p, vm->pid, left > 0 ? (int)left : 0, &how, err) < 0) {
		snprintf(vm->last_error, sizeof(vm->last_error), "%s", err->msg);
		vm_set_state(c, vm, VM_ERROR);
		return -1;
	}
	long long took = time_mono_ms() - t0;
	vm->stop_ms = took > 0x7fffffff ? 0x7fffffff : (int)took;
	snprintf(vm->stop_result, sizeof(vm->stop_result), "%s",
	    how == VMM_STOP_FORCED ? "forced" : "clean");
	snprintf(vm->stop_method, sizeof(vm->stop_method), "%s",
	    how == VMM_STOP_FORCED ? "kill" : asked ? "agent" :
	    how == VMM_STOP_GONE ? "exited" :
	    drv == &vmm_qemu ? "acpi" : "ctrl_alt_del");
	json_t *stop = vm_last_stop_json(vm);
	if (how == VMM_STOP_FORCED)
		log_warnx("vm '%s': stop %s: the guest did not shut down", vm->name,
		    json_string_value(json_object_get(stop, "summary")));
	if (store_stop_record(c->store, vm, err) < 0)
		log_warnx("vm '%s': %s", vm->name, err->msg);
	vm->pid = 0;
	core_net_vm_down(c, vm);
	snprintf(vm->health, sizeof(vm->health), "unknown");
	time_rfc3339(vm->stopped_at);
	vm_set_state_ev(c, vm, VM_STOPPED, json_pack("{s:o}", "stop", stop));
	if (vm->nat && core_net_nat_sync(c, err) < 0)
		return bn_err_prefix(err, "nat");
	return 0;
}

/* Grow an ext4 image to its file's size.  A seed that was never mounted
 * resizes directly; one that was (or looks unclean) is checked first. */
static int
grow_ext4(const char *path, struct bn_err *err)
{
	char out[512];
	char *resize[] = { "/sbin/resize2fs", (char *)path, NULL };
	char *fsck[] = { "/sbin/e2fsck", "-f", "-p", (char *)path, NULL };

	if (proc_run(resize, 60000, out, sizeof(out), NULL, err) == 0)
		return 0;
	if (proc_run(fsck, 60000, out, sizeof(out), NULL, err) < 0 ||
	    proc_run(resize, 60000, out, sizeof(out), NULL, err) < 0)
		return bn_err_prefix(err, "grow work disk");
	return 0;
}

/* Format an empty work disk image of the file's size. */
static int
format_ext4(const char *path, struct bn_err *err)
{
	char out[512];
	char *mkfs[] = { "/sbin/mkfs.ext4", "-q", "-F", "-L", "banger-work",
		(char *)path, NULL };

	if (proc_run(mkfs, 60000, out, sizeof(out), NULL, err) < 0)
		return bn_err_prefix(err, "format work disk");
	return 0;
}

/* A work disk template of a size, kept under <state>/cache: the image's
 * seed grown to disk_gib, or an empty ext4 when the image has no seed.
 * Making one takes tens of milliseconds (resize2fs, mkfs), cloning it a
 * few (it is sparse: ~1.5 MiB allocated for 8 GiB).  The name carries the
 * seed's identity (device, inode, size, mtime), so a changed seed misses. */
static int
workdisk_template(struct core *c, const char *seed, int disk_gib, char *out,
    size_t outsz, struct bn_err *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	off_t want = (off_t)disk_gib << 30;
	struct stat st = { 0 };

	if (seed != NULL && stat(seed, &st) < 0)
		return bn_fail(err, BN_ESYS, errno, "stat %s", seed);
	uint64_t h = file_identity_hash(seed, &st);
	if (path_join(dir, sizeof(dir), err, "%s/cache", c->cfg.state_dir) < 0 ||
	    path_join(out, outsz, err, "%s/work-%016llx-%dg.ext4", dir,
	    (unsigned long long)h, disk_gib) < 0)
		return -1;
	if (access(out, R_OK) == 0)
		return 0;
	/* Built under a temporary name and renamed: concurrent creates may
	 * both build, and either result is whole. */
	if (mkdir_p(dir, 0700, err) < 0 ||
	    path_join(tmp, sizeof(tmp), err, "%s.%d.%lx.tmp", out, (int)getpid(),
	    (unsigned long)pthread_self()) < 0)
		return -1;
	unlink(tmp);
	if (seed != NULL) {
		if (fs_copy_sparse(seed, tmp, 0600, err) < 0)
			return -1;
		if (st.st_size < want && (truncate(tmp, want) < 0 ?
		    bn_fail(err, BN_ESYS, errno, "grow %s", tmp) :
		    grow_ext4(tmp, err)) < 0)
			goto fail;
	} else {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return bn_fail(err, BN_ESYS, errno, "create %s", tmp);
		int rc = ftruncate(fd, want);
		close(fd);
		if (rc < 0) {
			bn_fail(err, BN_ESYS, errno, "size %s", tmp);
			goto fail;
		}
		if (format_ext4(tmp, err) < 0)
			goto fail;
	}
	if (rename(tmp, out) < 0) {
		bn_fail(err, BN_ESYS, errno, "rename %s", out);
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	return -1;
}

/* Work disk: a clone of the image's seed grown to disk_gib, or an empty
 * ext4 of that size. */
static int
make_workdisk(struct core *c, const struct image_view *iv, const char *path,
    int disk_gib, struct bn_err *err)
{
	const char *seed = iv->img.work_seed[0] &&
	    access(iv->img.work_seed, R_OK) == 0 ? iv->img.work_seed : NULL;
	char tmpl[PATH_MAX];

	if (workdisk_template(c, seed, disk_gib, tmpl, sizeof(tmpl), err) < 0)
		return bn_err_prefix(err, "work disk");
	return fs_copy_sparse(tmpl, path, 0600, err);
}

/* ---- operation bodies ---- */

struct act_arg {
	char name[VM_NAME_MAX];
	enum vm_action act;
	bool force;
	int grace_s;
};

static json_t *
op_create(struct core *c, struct op *op, void *arg, struct bn_err *err)
{
	const char *name = arg;
	struct image_view iv;
	struct vm vm;
	char dir[PATH_MAX], rootfs[PATH_MAX], work[PATH_MAX];
	json_t *res = NULL;

	vm_lock(c, name);
	if (store_vm_get(c->store, name, &vm, err) < 0)
		goto out;
	if (op_cancelled(op)) {
		op_fail_cancelled(op, err);
		goto undo_row;
	}
	op_stage(c, op, "prepare_disks", 5);
	if (core_image_get(c, vm.image, &iv, err) < 0)
		goto undo_row;
	if (vm_dir(c, vm.id, dir, sizeof(dir), err) < 0 ||
	    path_join(rootfs, sizeof(rootfs), err, "%s/rootfs.ext4", dir) < 0 ||
	    path_join(work, sizeof(work), err, "%s/work.ext4", dir) < 0)
		goto undo_row;
	if (mkdir(dir, 0700) < 0) {
		bn_fail(err, BN_ESYS, errno, "mkdir %s", dir);
		goto undo_row;
	}
	if (!spares_take(c, iv.img.rootfs, rootfs) &&
	    fs_copy_sparse(iv.img.rootfs, rootfs, 0600, err) < 0)
		goto undo_dir;
	if (op_cancelled(op)) {
		op_fail_cancelled(op, err);
		goto undo_dir;
	}
	op_stage(c, op, "prepare_work_disk", 15);
	if (make_workdisk(c, &iv, work, vm.disk_gib, err) < 0)
		goto undo_dir;
	if (vm_boot(c, op, &vm, 30, err) < 0)
		goto undo_dir;
	res = vm_to_json(&vm);
	goto out;

undo_dir:
	fs_remove_tree(dir, NULL);
undo_row:
	/* A failed create leaves nothing behind: not even its record. */
	if (store_vm_delete(c->store, name, NULL) == 0)
		core_emit(c, "vm.deleted", name, op->row.id, NULL);
out:
	vm_unlock(c, name);
	return res;
}

static json_t *
op_action(struct core *c, struct op *op, void *arg, struct bn_err *err)
{
	struct act_arg *a = arg;
	struct vm vm;
	char dir[PATH_MAX];
	json_t *res = NULL;

	vm_lock(c, a->name);
	if (store_vm_get(c->store, a->name, &vm, err) < 0)
		goto out;
	/* Cancelled while it waited for the VM: nothing was done. */
	if (a->act != VM_ACT_SET && op_cancelled(op)) {
		op_fail_cancelled(op, err);
		goto out;
	}
	switch (a->act) {
	case VM_ACT_START:
		if (vm.state == VM_RUNNING) {
			res = vm_to_json(&vm);
			break;
		}
		if (vm.state == VM_PAUSED) {
			bn_fail(err, BN_ESTATE, 0, "vm '%s' is paused (%s)", vm.name,
			    vm.paused_reason);
			bn_err_hint(err, "resume it: banger vm resume %s", vm.name);
			break;
		}
		if (core_host_room(c, 0, "a start", err) < 0)
			break;
		if (vm_boot(c, op, &vm, 10, err) == 0)
			res = vm_to_json(&vm);
		break;
	case VM_ACT_STOP:
		if (vm_halt(c, op, &vm, a->grace_s, err) == 0)
			res = vm_to_json(&vm);
		break;
	case VM_ACT_RESTART:
		if (core_host_room(c, 0, "a restart", err) < 0)
			break;
		if (vm_halt(c, op, &vm, a->grace_s, err) == 0 &&
		    vm_boot(c, op, &vm, 40, err) == 0)
			res = vm_to_json(&vm);
		break;
	case VM_ACT_DELETE:
		if ((vm.state == VM_RUNNING || vm.state == VM_STARTING ||
		    vm.state == VM_PAUSED) && !a->force) {
			bn_fail(err, BN_EVM_RUNNING, 0, "vm '%s' is %s", vm.name,
			    vm_state_name(vm.state));
			bn_err_hint(err, "stop it first or delete with --force");
			break;
		}
		if (vm_halt(c, op, &vm, a->grace_s, err) < 0)
			break;
		/* A shutdown is not undone; the VM stays, stopped. */
		if (op_cancelled(op)) {
			op_fail_cancelled(op, err);
			break;
		}
		op_stage(c, op, "remove_disks", 60);
		if (vm_dir(c, vm.id, dir, sizeof(dir), err) < 0 ||
		    fs_remove_tree(dir, err) < 0 ||
		    store_vm_delete(c->store, vm.name, err) < 0)
			break;
		core_emit(c, "vm.deleted", vm.name, op->row.id, NULL);
		res = json_null();
		break;
	case VM_ACT_SET:
		/* Bulk only: handled by bulk_one_main through core_vm_patch. */
		bn_fail(err, BN_EINTERNAL, 0, "set is not a single-VM action");
		break;
	}
out:
	vm_unlock(c, a->name);
	return res;
}

/* ---- entry points ---- */

int
core_vm_get(struct core *c, const char *name, struct vm *ret, struct bn_err *err)
{
	if (name_check("vm", name, err) < 0)
		return -1;
	return store_vm_get(c->store, name, ret, err);
}

int
core_vm_list(struct core *c, struct vm **ret, int *ret_n, struct bn_err *err)
{
	return store_vm_list(c->store, ret, ret_n, err);
}

int
core_vm_create(struct core *c, const struct vm_create_req *req, char ret_op_id[24],
    struct bn_err *err)
{
	struct image_view iv;
	struct vm vm;
	static __thread struct vmm_choice pick;
	char dir[PATH_MAX];
	struct vmm_params p;
	int count;

	if (name_check("vm", req->name, err) < 0)
		return -1;
	if (req->memory_mib > c->host_mem_mib) {
		bn_fail(err, BN_EINVAL, 0, "memory_mib %d is more than this host "
		    "has (%lld MiB)", req->memory_mib, (long long)c->host_mem_mib);
		return bn_err_detail(err, "field", "memory_mib");
	}
	if (core_image_get(c, req->image, &iv, err) < 0)
		return -1;
	/* The image's files may have changed since it was registered: check
	 * them again where they touch the host, just before use. */
	if (fs_check_ext4_image("rootfs", iv.img.rootfs, err) < 0 ||
	    (iv.img.work_seed[0] != '\0' &&
	    fs_check_ext4_image("work_seed", iv.img.work_seed, err) < 0)) {
		char why[sizeof(err->msg)];
		snprintf(why, sizeof(why), "%s", err->msg);
		bn_fail(err, BN_EIMG_UNAVAIL, 0, "image '%s': %s", iv.img.name, why);
		return bn_err_hint(err, iv.is_default ? "run 'make runtime-bundle'" :
		    "register the image again with an ext4 rootfs");
	}
	if (core_host_room(c, core_image_allocated(&iv), "a create", err) < 0)
		return -1;
	if (vmm_pick(c, &pick, err) < 0)
		return -1;
	if (store_vm_count(c->store, &count, err) < 0)
		return -1;
	if (count >= c->cfg.max_vms) {
		bn_fail(err, BN_ELIMIT, 0, "this host already has %d vms (max_vms)",
		    count);
		return bn_err_hint(err, "delete unused vms or raise max_vms in "
		    "config.json");
	}

	memset(&vm, 0, sizeof(vm));
	if (random_hex(vm.id, VM_ID_LEN / 2, err) < 0)
		return -1;
	/* Check socket paths fit before promising anything. */
	if (vm_dir(c, vm.id, dir, sizeof(dir), err) < 0 ||
	    vmm_params_paths(&p, dir, err) < 0)
		return -1;
	snprintf(vm.name, sizeof(vm.name), "%s", req->name);
	snprintf(vm.image, sizeof(vm.image), "%s", iv.img.name);
	vm.vcpus = req->vcpus;
	vm.memory_mib = req->memory_mib;
	vm.disk_gib = req->disk_gib;
	vm.nat = req->nat;
	vm.state = VM_CREATING;
	snprintf(vm.health, sizeof(vm.health), "unknown");
	time_rfc3339(vm.created_at);
	memcpy(vm.updated_at, vm.created_at, sizeof(vm.updated_at));

	/* The CID and the name are taken under one lock so two creates cannot
	 * pick the same CID; the UNIQUE constraints back this up. */
	static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&create_mu);
	int rc = store_vm_free_cid(c->store, &vm.cid, err);
	if (rc == 0)
		rc = store_vm_insert(c->store, &vm, err);
	pthread_mutex_unlock(&create_mu);
	if (rc < 0)
		return -1;
	core_emit(c, "vm.created", vm.name, NULL, vm_to_json(&vm));
	if (op_start(c, "vm.create", vm.name, op_create, xstrdup(vm.name), free,
	    ret_op_id, err) < 0) {
		store_vm_delete(c->store, vm.name, NULL);
		return -1;
	}
	return 0;
}

int
core_vm_action(struct core *c, const char *name, enum vm_action act, bool force,
    int stop_timeout_s, char ret_op_id[24], struct bn_err *err)
{
	static const char *const kinds[] = { "vm.start", "vm.stop", "vm.restart",
		"vm.delete" };
	struct vm vm;
	static __thread struct vmm_choice pick;

	if (core_vm_get(c, name, &vm, err) < 0)
		return -1;
	if (act == VM_ACT_DELETE && !force &&
	    (vm.state == VM_RUNNING || vm.state == VM_STARTING)) {
		bn_fail(err, BN_EVM_RUNNING, 0, "vm '%s' is running", name);
		return bn_err_hint(err, "stop it first, or delete with force "
		    "(banger vm delete --force)");
	}
	if ((act == VM_ACT_START || act == VM_ACT_RESTART) &&
	    vmm_pick(c, &pick, err) < 0)
		return -1;
	struct act_arg *a = xcalloc(1, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->act = act;
	a->force = force;
	a->grace_s = stop_timeout_s >= 0 ? stop_timeout_s : c->cfg.stop_grace_s;
	return op_start(c, kinds[act], name, op_action, a, free, ret_op_id, err);
}

int
core_vm_patch(struct core *c, const char *name, const struct vm_patch *p,
    struct vm *ret, struct bn_err *err)
{
	struct vm vm;
	int rc = -1;

	if (name_check("vm", name, err) < 0)
		return -1;
	if (p->memory_mib > c->host_mem_mib) {
		bn_fail(err, BN_EINVAL, 0, "memory_mib %d is more than this host "
		    "has (%lld MiB)", p->memory_mib, (long long)c->host_mem_mib);
		return bn_err_detail(err, "field", "memory_mib");
	}
	vm_lock(c, name);
	if (store_vm_get(c->store, name, &vm, err) < 0)
		goto out;
	bool sizing = p->vcpus || p->memory_mib || p->disk_gib;
	if (sizing && vm.state != VM_STOPPED) {
		bn_fail(err, BN_EVM_RUNNING, 0, "vm '%s' is %s; vcpus, memory and "
		    "disk change only while it is stopped", name,
		    vm_state_name(vm.state));
		bn_err_hint(err, "banger vm stop %s", name);
		goto out;
	}
	if (p->disk_gib && p->disk_gib < vm.disk_gib) {
		bn_fail(err, BN_EINVAL, 0, "disk_gib can only grow (now %d)",
		    vm.disk_gib);
		bn_err_detail(err, "field", "disk_gib");
		goto out;
	}
	if (p->disk_gib && p->disk_gib > vm.disk_gib) {
		char dir[PATH_MAX], work[PATH_MAX];
		if (vm_dir(c, vm.id, dir, sizeof(dir), err) < 0 ||
		    path_join(work, sizeof(work), err, "%s/work.ext4", dir) < 0)
			goto out;
		if (truncate(work, (off_t)p->disk_gib << 30) < 0) {
			bn_fail(err, BN_ESYS, errno, "grow %s", work);
			goto out;
		}
		if (grow_ext4(work, err) < 0)
			goto out;
		vm.disk_gib = p->disk_gib;
	}
	if (p->vcpus)
		vm.vcpus = p->vcpus;
	if (p->memory_mib)
		vm.memory_mib = p->memory_mib;
	if (p->nat >= 0)
		vm.nat = p->nat != 0;
	time_rfc3339(vm.updated_at);
	if (store_vm_update(c->store, &vm, err) < 0)
		goto out;
	core_emit(c, "vm.updated", vm.name, NULL, vm_to_json(&vm));
	if (p->nat >= 0 && core_net_nat_sync(c, err) < 0) {
		bn_err_prefix(err, "nat");
		goto out;
	}
	*ret = vm;
	rc = 0;
out:
	vm_unlock(c, name);
	return rc;
}

/* ---- bulk actions ---- */

struct bulk_arg {
	enum vm_action act;
	bool force;
	bool nat;
	int grace_s;
	int n;
	char (*names)[VM_NAME_MAX];
};

struct bulk_one {
	struct core *c;
	struct op *op;
	struct bulk_arg *b;
	int i;
	json_t *result;
};

static void *
bulk_one_main(void *arg)
{
	struct bulk_one *o = arg;
	struct act_arg a = { .act = o->b->act, .force = o->b->force,
		.grace_s = o->b->grace_s };
	struct bn_err err = { 0 };
	json_t *vmj;

	snprintf(a.name, sizeof(a.name), "%s", o->b->names[o->i]);
	/* Each VM's action takes that VM's lock, like a single action. */
	if (o->b->act == VM_ACT_SET) {
		struct vm_patch p = { 0, 0, 0, o->b->nat };
		struct vm vm;
		vmj = core_vm_patch(o->c, a.name, &p, &vm, &err) == 0 ?
		    vm_to_json(&vm) : NULL;
	} else {
		vmj = op_action(o->c, o->op, &a, &err);
	}
	if (vmj != NULL)
		o->result = json_pack("{s:s, s:b, s:n, s:o}", "name", a.name, "ok", 1,
		    "error", "vm", vmj);
	else
		o->result = json_pack("{s:s, s:b, s:o, s:n}", "name", a.name, "ok", 0,
		    "error", err_to_json(&err), "vm");
	return NULL;
}

static json_t *
op_bulk(struct core *c, struct op *op, void *arg, struct bn_err *err)
{
	struct bulk_arg *b = arg;
	struct bulk_one *ones = xcalloc((size_t)b->n, sizeof(*ones));
	pthread_t *th = xcalloc((size_t)b->n, sizeof(*th));
	json_t *results = json_array();

	(void)err;
	op_stage(c, op, "running", 10);
	for (int i = 0; i < b->n; i++) {
		ones[i] = (struct bulk_one){ c, op, b, i, NULL };
		if (pthread_create(&th[i], NULL, bulk_one_main, &ones[i]) != 0) {
			th[i] = 0;
			bulk_one_main(&ones[i]);
		}
	}
	for (int i = 0; i < b->n; i++) {
		if (th[i])
			pthread_join(th[i], NULL);
		json_array_append_new(results, ones[i].result);
	}
	free(ones);
	free(th);
	return json_pack("{s:o}", "results", results);
}

static void
bulk_free(void *arg)
{
	struct bulk_arg *b = arg;

	free(b->names);
	free(b);
}

int
core_vms_bulk(struct core *c, enum vm_action act, char **names, int n, bool force,
    bool nat, int stop_timeout_s, char ret_op_id[24], struct bn_err *err)
{
	struct bulk_arg *b;

	if (n < 1 || n > 1024)
		return bn_fail(err, BN_EINVAL, 0, "names must list 1 to 1024 vms");
	for (int i = 0; i < n; i++) {
		if (name_check("vm", names[i], err) < 0)
			return -1;
		for (int j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0) {
				bn_fail(err, BN_EINVAL, 0, "vm '%s' is listed twice",
				    names[i]);
				return bn_err_detail(err, "field", "names");
			}
	}
	b = xcalloc(1, sizeof(*b));
	b->act = act;
	b->force = force;
	b->nat = nat;
	b->grace_s = stop_timeout_s >= 0 ? stop_timeout_s : c->cfg.stop_grace_s;
	b->n = n;
	b->names = xcalloc((size_t)n, sizeof(*b->names));
	for (int i = 0; i < n; i++)
		snprintf(b->names[i], VM_NAME_MAX, "%s", names[i]);
	return op_start(c, "vms.actions", NULL, op_bulk, b, bulk_free, ret_op_id, err);
}

/* ---- health and console ---- */

int
core_vm_health(struct core *c, const char *name, struct vsock_health *ret,
    char ret_checked_at[32], struct bn_err *err)
{
	struct vm vm;

	if (core_vm_get(c, name, &vm, err) < 0)
		return -1;
	memset(ret, 0, sizeof(*ret));
	time_rfc3339(ret_checked_at);
	/* A booting VM is probed too, so users see why it is not up yet
	 * (status "starting", reason not_ready, the failing check). */
	bool booting = (vm.state == VM_STARTING || vm.state == VM_CREATING) &&
	    vm.pid > 0;
	if (!booting && (vm.state != VM_RUNNING || vm.pid <= 0)) {
		ret->status = VSOCK_HEALTH_UNREACHABLE;
		snprintf(ret->reason, sizeof(ret->reason), "vm_not_running");
		return 0;
	}
	struct vmm_params *p = xcalloc(1, sizeof(*p));
	if (vm_ctl_params(c, &vm, p, err) < 0) {
		free(p);
		return -1;
	}
	if (booting && !vsock_may_dial(&vm, p)) {
		/* Not a connection the VM's vsock could die of. */
		free(p);
		ret->status = VSOCK_HEALTH_STARTING;
		snprintf(ret->reason, sizeof(ret->reason), "vsock_not_started");
		return 0;
	}
	vsock_probe_health(p->vsock_uds, agent_port(c), 2000, ret);
	free(p);
	if (booting)
		return 0;   /* its operation records the outcome */
	/* A running VM was ready once: a check failing now (sshd died) makes
	 * it degraded, not "starting" again. */
	if (ret->status == VSOCK_HEALTH_STARTING)
		ret->status = VSOCK_HEALTH_DEGRADED;
	const char *st = vsock_health_status_name(ret->status);
	/* Record and announce changes only, so polling is cheap. */
	if (strcmp(st, vm.health) != 0 && vm_trylock(c, name)) {
		struct vm cur;
		if (store_vm_get(c->store, name, &cur, NULL) == 0 &&
		    cur.state == VM_RUNNING) {
			snprintf(cur.health, sizeof(cur.health), "%s", st);
			time_rfc3339(cur.updated_at);
			store_vm_update(c->store, &cur, NULL);
			core_emit(c, "vm.health", name, NULL, json_pack("{s:s, s:s}",
			    "status", st, "reason", ret->reason));
		}
		vm_unlock(c, name);
	}
	return 0;
}

/* The guest's sshd listens on 22 and takes the bundle's key for root
 * (AuthorizedKeysFile /etc/ssh/banger/%u.keys in every image).  Host keys
 * are per VM, so are the known hosts: a file in the VM's directory, which
 * goes with the VM on delete (and a new VM of the same name gets a new
 * directory). */
int
core_vm_ssh(struct core *c, const char *name, struct vm_ssh *ret,
    struct bn_err *err)
{
	struct vm vm;
	char dir[PATH_MAX], real[PATH_MAX];

	if (core_vm_get(c, name, &vm, err) < 0)
		return -1;
	if (vm.state != VM_RUNNING) {
		bn_fail(err, BN_ESTATE, 0, "vm '%s' is %s, not running", name,
		    vm_state_name(vm.state));
		return bn_err_hint(err, "start it first: banger vm start %s", name);
	}
	if (vm.ip[0] == '\0') {
		bn_fail(err, BN_ESTATE, 0, "vm '%s' has no network address", name);
		return bn_err_hint(err, "bangerd runs VMs without a network when "
		    "\"network\" is \"off\" or it lacks CAP_NET_ADMIN; see "
		    "'banger doctor'");
	}
	memset(ret, 0, sizeof(*ret));
	/* Absolute, whatever directory bangerd was started from. */
	if (realpath(c->bundle.ssh_key, ret->key_path) == NULL) {
		bn_fail(err, BN_EIMG_UNAVAIL, errno, "ssh key %s",
		    c->bundle.ssh_key);
		return bn_err_hint(err, "run 'make runtime-bundle' or set "
		    "\"ssh_key\" in bundle.json");
	}
	if (vm_dir(c, vm.id, dir, sizeof(dir), err) < 0)
		return -1;
	if (realpath(dir, real) == NULL)
		return bn_fail(err, BN_ESYS, errno, "%s", dir);
	if (path_join(ret->known_hosts_path, sizeof(ret->known_hosts_path), err,
	    "%s/known_hosts", real) < 0)
		return -1;
	snprintf(ret->id, sizeof(ret->id), "%s", vm.id);
	snprintf(ret->host, sizeof(ret->host), "%s", vm.ip);
	snprintf(ret->user, sizeof(ret->user), "root");
	ret->port = 22;
	return 0;
}

int
core_vm_console(struct core *c, const char *name, long tail, char **ret,
    size_t *ret_len, struct bn_err *err)
{
	struct vm vm;
	char dir[PATH_MAX], path[PATH_MAX];
	struct stat st;
	int fd;

	if (core_vm_get(c, name, &vm, err) < 0)
		return -1;
	if (vm_dir(c, vm.id, dir, sizeof(dir), err) < 0 ||
	    path_join(path, sizeof(path), err, "%s/console.log", dir) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return bn_fail(err, BN_ESYS, errno, "open %s", path);
		*ret = xstrdup("");
		*ret_len = 0;
		return 0;
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return bn_fail(err, BN_ESYS, errno, "stat %s", path);
	}
	off_t start = st.st_size > tail ? st.st_size - tail : 0;
	size_t want = (size_t)(st.st_size - start);
	char *buf = xmalloc(want + 1);
	ssize_t got = pread(fd, buf, want, start);
	close(fd);
	if (got < 0) {
		free(buf);
		return bn_fail(err, BN_ESYS, errno, "read %s", path);
	}
	buf[got] = '\0';
	*ret = buf;
	*ret_len = (size_t)got;
	return 0;
}

/* ---- reconcile and monitor ---- */

void
core_reconcile(struct core *c)
{
	struct vm *vms = NULL;
	struct bn_err err;
	int n = 0, failed = 0;
	json_t *ej;
	char *etext;

	bn_fail(&err, BN_EINTERNAL, 0, "interrupted: bangerd stopped before the "
	    "operation finished");
	ej = err_to_json(&err);
	etext = json_dump_compact(ej);
	json_decref(ej);
	if (store_op_fail_unfinished(c->store, etext, &failed, &err) < 0)
		log_warnx("reconcile: %s", err.msg);
	else if (failed > 0)
		log_info("reconcile: %d interrupted operations marked failed", failed);
	free(etext);
	store_op_prune(c->store, 1000, NULL);

	if (store_vm_list(c->store, &vms, &n, &err) < 0) {
		log_warnx("reconcile: %s", err.msg);
		return;
	}
	for (int i = 0; i < n; i++) {
		struct vm *vm = &vms[i];
		struct vmm_params p;
		char dir[PATH_MAX];

		if (vm_ctl_params(c, vm, &p, &err) < 0 ||
		    vm_dir(c, vm->id, dir, sizeof(dir), &err) < 0)
			continue;
		const struct vmm_driver *drv = vmm_by_name(vm->vmm);
		if (vm->state == VM_CREATING) {
			/* Never finished: it was not the user's yet. */
			drv->kill(&p, vm->pid > 0 && drv->probe(&p, vm->pid, &err) == 0 ?
			    vm->pid : 0);
			fs_remove_tree(dir, NULL);
			store_vm_delete(c->store, vm->name, NULL);
			log_info("reconcile: removed half-created vm '%s'", vm->name);
			continue;
		}
		if (vm->pid > 0 && drv->probe(&p, vm->pid, &err) == 0) {
			/* A VM the VMM paused stays paused; the monitor
			 * looks again. */
			if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
				vm->state = VM_RUNNING;
				time_rfc3339(vm->updated_at);
				store_vm_update(c->store, vm, NULL);
			}
			log_info("reconcile: adopted vm '%s' (pid %d)", vm->name,
			    (int)vm->pid);
			continue;
		}
		if (vm->state == VM_STOPPED && vm->pid == 0)
			continue;
		if (vm->state == VM_RUNNING || vm->state == VM_STARTING ||
		    vm->state == VM_PAUSED)
			snprintf(vm->last_error, sizeof(vm->last_error),
			    "the VMM was not running when bangerd started");
		vm->paused_reason[0] = '\0';
		vm->state = VM_STOPPED;
		vm->pid = 0;
		vm->tap[0] = '\0';  /* the TAP itself goes in core_net_start */
		snprintf(vm->health, sizeof(vm->health), "unknown");
		time_rfc3339(vm->stopped_at);
		time_rfc3339(vm->updated_at);
		/* pid 0: no process to kill; sockets and (QEMU) the vsock
		 * helper go. */
		drv->kill(&p, 0);
		store_vm_update(c->store, vm, NULL);
		log_info("reconcile: vm '%s' is stopped", vm->name);
	}
	free(vms);
}

/* Has the VMM paused this running VM by itself (QEMU on a full host
 * disk)?  Then show it: state paused, the reason, an event.  VM lock held
 * by the caller. */
static void
watch_paused(struct core *c, struct vm *vm)
{
	const struct vmm_driver *drv = vmm_by_name(vm->vmm);
	struct vmm_params p;
	char reason[32];
	struct bn_err err;

	if (drv->paused == NULL || vm_ctl_params(c, vm, &p, NULL) < 0)
		return;
	p.api_timeout_ms = 1000;
	if (drv->paused(&p, reason, sizeof(reason), &err) != 1)
		return;
	snprintf(vm->paused_reason, sizeof(vm->paused_reason), "%s", reason);
	snprintf(vm->health, sizeof(vm->health), "unknown");
	log_warnx("vm '%s': the VMM paused it (%s)", vm->name, reason);
	vm_set_state_ev(c, vm, VM_PAUSED, json_pack("{s:s}", "reason", reason));
}

/* A paused VM whose host disk has room again is not resumed behind the
 * user's back: it waits for POST /v1/vms/NAME/resume. */
int
core_vm_resume(struct core *c, const char *name, struct vm *ret,
    struct bn_err *err)
{
	struct vm vm;
	struct vmm_params p;
	int rc = -1;

	if (!vm_trylock(c, name))
		return bn_fail(err, BN_ESTATE, 0, "vm '%s' is busy with another "
		    "operation", name);
	if (store_vm_get(c->store, name, &vm, err) < 0)
		goto out;
	if (vm.state != VM_PAUSED) {
		bn_fail(err, BN_ESTATE, 0, "vm '%s' is %s, not paused", name,
		    vm_state_name(vm.state));
		goto out;
	}
	const struct vmm_driver *drv = vmm_by_name(vm.vmm);
	if (drv->resume == NULL) {
		bn_fail(err, BN_ESTATE, 0, "%s cannot resume vm '%s'", drv->name,
		    name);
		goto out;
	}
	if (strcmp(vm.paused_reason, "host_disk_full") == 0 &&
	    core_host_room(c, 0, "a resume", err) < 0) {
		bn_err_prefix(err, "the host disk is still full");
		goto out;
	}
	if (vm_ctl_params(c, &vm, &p, err) < 0)
		goto out;
	p.api_timeout_ms = c->cfg.vmm_api_timeout_ms;
	if (drv->resume(&p, err) < 0)
		goto out;
	vm.paused_reason[0] = '\0';
	vm_set_state_ev(c, &vm, VM_RUNNING, json_pack("{s:s}", "reason",
	    "resumed"));
	log_info("vm '%s': resumed", name);
	*ret = vm;
	rc = 0;
out:
	vm_unlock(c, name);
	return rc;
}

void *
core_monitor_main(void *arg)
{
	struct core *c = arg;
	unsigned round = 0;

	for (;;) {
		pthread_mutex_lock(&c->ev_mu);
		bool stop = c->stopping;
		if (!stop) {
			cond_wait_ms(&c->ev_cond, &c->ev_mu, 500);
			stop = c->stopping;
		}
		pthread_mutex_unlock(&c->ev_mu);
		if (stop)
			return NULL;

		struct vm *vms = NULL;
		int n = 0;
		if (store_vm_list(c->store, &vms, &n, NULL) < 0)
			continue;
		/* Every 2 s: has a VMM paused a guest on a full disk? */
		bool ask = ++round % 4 == 0;
		for (int i = 0; i < n; i++) {
			if (ask && vms[i].state == VM_RUNNING && vms[i].pid > 0 &&
			    proc_alive(vms[i].pid) && vm_trylock(c, vms[i].name)) {
				struct vm vm;
				if (store_vm_get(c->store, vms[i].name, &vm, NULL) == 0 &&
				    vm.state == VM_RUNNING && vm.pid == vms[i].pid)
					watch_paused(c, &vm);
				vm_unlock(c, vms[i].name);
			}
			if ((vms[i].state != VM_RUNNING &&
			    vms[i].state != VM_PAUSED) || vms[i].pid <= 0 ||
			    proc_alive(vms[i].pid))
				continue;
			/* Busy VMs are handled by their operation. */
			if (!vm_trylock(c, vms[i].name))
				continue;
			struct vm vm;
			if (store_vm_get(c->store, vms[i].name, &vm, NULL) == 0 &&
			    (vm.state == VM_RUNNING || vm.state == VM_PAUSED) &&
			    vm.pid == vms[i].pid && !proc_alive(vm.pid)) {
				vm.paused_reason[0] = '\0';
				struct vmm_params p;
				/* The VMM is gone; its sockets and (QEMU) its
				 * vsock helper are not. */
				if (vm_ctl_params(c, &vm, &p, NULL) == 0)
					vmm_by_name(vm.vmm)->kill(&p, 0);
				vm.pid = 0;
				core_net_vm_down(c, &vm);
				snprintf(vm.health, sizeof(vm.health), "unknown");
				snprintf(vm.last_error, sizeof(vm.last_error),
				    "the VMM exited (guest shut down or crashed)");
				time_rfc3339(vm.stopped_at);
				vm_set_state(c, &vm, VM_STOPPED);
				if (vm.nat)
					core_net_nat_sync(c, NULL);
				log_info("vm '%s': VMM exited; now stopped", vm.name);
			}
			vm_unlock(c, vms[i].name);
		}
		free(vms);
	}
}
