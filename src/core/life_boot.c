/* life_boot.c - the steps that boot a VM (network, VMM, configuration,
 * the guest's health) and the steps that stop one (the agent's power-off,
 * the VMM's signal, the kill), shared by the tables of lifecycle.c. */
#include "core/life.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"

/* Nothing to do; its undo is what every failed boot ends with. */
int
boot_begin_run(struct life *l, struct bn_err *err)
{
	(void)err;
	l->booting = l->vm.state == VM_CREATING ? VM_CREATING : VM_STARTING;
	return 0;
}

void
boot_failed(struct life *l, const struct bn_err *why)
{
	struct vm *vm = &l->vm;

	vm->pid = 0;
	if (why->code != BN_ECANCELLED)
		snprintf(vm->last_error, sizeof(vm->last_error), "%s", why->msg);
	snprintf(vm->health, sizeof(vm->health), "unknown");
	time_rfc3339(vm->stopped_at);
	vm_set_state(l->c, vm, VM_STOPPED);
	cg_remove(l->c, vm);
}

int
network_run(struct life *l, struct bn_err *err)
{
	return core_net_vm_up(l->c, &l->vm, &l->net, err);
}

void
network_undo(struct life *l, const struct bn_err *why)
{
	(void)why;
	core_net_vm_down(l->c, &l->vm);
}

int
spawn_run(struct life *l, struct bn_err *err)
{
	const struct vmm_choice *ch = &l->req->choice;
	struct vm *vm = &l->vm;

	/* The shared folders again, where they touch the host: one may
	 * have gone, or become a link elsewhere, since the spec was set. */
	if (vm_mounts_supported(ch->drv, vm->name, vm->nmounts, err) < 0 ||
	    vm_mounts_host_check(l->c, vm->mounts, vm->nmounts, err) < 0)
		return -1;
	if (vm_params(l->c, vm, &l->net, ch, &l->p, l->cmdline,
	    sizeof(l->cmdline), err) < 0)
		return -1;
	if (access(l->p.kernel, R_OK) < 0) {
		bn_fail(err, BN_EIMG_UNAVAIL, errno, "kernel %s", l->p.kernel);
		return bn_err_hint(err, "run 'make runtime-bundle' or set "
		    "\"kernel\" in bundle.json");
	}
	snprintf(vm->vmm, sizeof(vm->vmm), "%s", ch->drv->name);
	/* For status and doctor: the accelerator and why. */
	snprintf(vm->accel, sizeof(vm->accel), "%s", ch->accel);
	snprintf(vm->accel_reason, sizeof(vm->accel_reason), "%s",
	    ch->accel_reason);
	snprintf(vm->last_error, sizeof(vm->last_error), "%s", "");
	/* A VM being created stays "creating" until it is up: if bangerd dies
	 * meanwhile, the next start removes it instead of adopting it. */
	vm_set_state(l->c, vm, l->booting);
	if (ch->drv->spawn(&l->p, &l->pid, err) < 0)
		return -1;
	/* Record the pid at once: a daemon crash from here on must find it. */
	vm->pid = l->pid;
	vm_set_state(l->c, vm, l->booting);
	return 0;
}

/* The VMM (and helpers) into the VM's cgroup, before the guest boots. */
int
cgroup_run(struct life *l, struct bn_err *err)
{
	const struct vmm_driver *drv = l->req->choice.drv;
	pid_t pids[2 + VM_MOUNTS_MAX] = { l->pid };
	int n = 1;

	if (drv->helpers != NULL)
		n += drv->helpers(&l->p, pids + 1, 1 + VM_MOUNTS_MAX);
	return cg_place(l->c, &l->vm, pids, n, err);
}

void
spawn_undo(struct life *l, const struct bn_err *why)
{
	(void)why;
	l->req->choice.drv->kill(&l->p, l->pid);
	l->vm.pid = 0;
	vm_set_state(l->c, &l->vm, l->booting == VM_CREATING ? VM_CREATING :
	    VM_STOPPING);
}

int
configure_run(struct life *l, struct bn_err *err)
{
	return l->req->choice.drv->configure(&l->p, l->pid, err);
}

int
instance_start_run(struct life *l, struct bn_err *err)
{
	return l->req->choice.drv->start(&l->p, err);
}

int
wait_health_run(struct life *l, struct bn_err *err)
{
	struct vm *vm = &l->vm;
	struct vsock_health h = { 0 };

	snprintf(vm->health, sizeof(vm->health), "starting");
	vm_set_state(l->c, vm, l->booting);
	int rc = wait_agent(l->c, l->op, vm, l->pid, &l->p, &h, err);
	if (rc < 0) {
		if (err->code == BN_ENOT_READY) {
			bn_err_hint(err, "see the console log: banger vm console %s",
			    vm->name);
		} else if (err->code != BN_ECANCELLED &&
		    err->code != BN_EBOOT_STALLED) {
			bn_err_prefix(err, "waiting for the guest agent");
			bn_err_hint(err, "see the console log: banger vm console %s",
			    vm->name);
		}
	} else {
		snprintf(vm->health, sizeof(vm->health), "%s",
		    vsock_health_status_name(h.status));
	}
	vsock_health_clear(&h);
	return rc;
}

int
running_run(struct life *l, struct bn_err *err)
{
	(void)err;
	time_rfc3339(l->vm.started_at);
	vm_set_state(l->c, &l->vm, VM_RUNNING);
	return 0;
}

/* No longer running: a NAT VM's rules go with that. */
void
running_undo(struct life *l, const struct bn_err *why)
{
	(void)why;
	vm_set_state(l->c, &l->vm, l->booting == VM_CREATING ? VM_CREATING :
	    VM_STOPPING);
	if (l->vm.nat)
		core_net_nat_sync(l->c, NULL);
}

bool
has_nat(const struct life *l)
{
	return l->vm.nat;
}

int
nat_run(struct life *l, struct bn_err *err)
{
	if (core_net_nat_sync(l->c, err) < 0)
		return bn_err_prefix(err, "nat");
	return 0;
}

/* A VM's forwarded host ports are bound before it boots, so that a port
 * taken on the host fails the start at once; connections before the
 * agent answers are reset. */
bool
has_ports(const struct life *l)
{
	return l->vm.nports > 0;
}

int
ports_run(struct life *l, struct bn_err *err)
{
	if (fwd_apply(l->c, &l->vm, err) < 0)
		return bn_err_prefix(err, "ports");
	return 0;
}

void
ports_undo(struct life *l, const struct bn_err *why)
{
	(void)why;
	fwd_close(l->c, l->vm.name);
}

/* ---- stop ---- */

bool
is_up(const struct life *l)
{
	return l->vm.state != VM_STOPPED && l->vm.state != VM_CREATING;
}

bool
halting(const struct life *l)
{
	return l->halting;
}

int
halt_begin_run(struct life *l, struct bn_err *err)
{
	struct vm *vm = &l->vm;
	/* The driver that started it, whatever vmm says now; stopping needs
	 * no binary, only the per-VM paths. */
	const struct vmm_driver *drv = vmm_by_name(vm->vmm);

	if (vm_ctl_params(l->c, vm, &l->p, err) < 0)
		return -1;
	l->halting = true;
	l->grace_s = l->req->grace_s;
	vm_set_state(l->c, vm, VM_STOPPING);
	l->p.api_timeout_ms = l->c->cfg.vmm_api_timeout_ms;
	/* A guest the VMM paused cannot hear a request to power off.  With
	 * space back it runs again first and stops cleanly; on a host that is
	 * still full, running it would only fail its writes, so it is ended
	 * where it stands (its disks hold what was written before the pause). */
	if (vm->paused_reason[0] != '\0') {
		struct bn_err ignored;
		if (drv->resume != NULL &&
		    core_host_room(l->c, 0, "a resume", &ignored) == 0 &&
		    drv->resume(&l->p, &ignored) == 0)
			log_info("vm '%s': resumed to stop it cleanly", vm->name);
		else
			l->grace_s = 0;
		vm->paused_reason[0] = '\0';
	}
	l->halt_t0 = time_mono_ms();
	return 0;
}

/* A stop that failed or was cancelled leaves the VM recorded as it is: a
 * VMM that still runs is running (with the failure as its last error),
 * one that is gone is cleaned up as stopped.  A failed VMM stop has
 * already said so (error). */
void
halt_undo(struct life *l, const struct bn_err *why)
{
	struct vm *vm = &l->vm;

	if (vm->state == VM_STOPPED || vm->state == VM_ERROR)
		return;
	if (vm->pid > 0 && proc_alive(vm->pid)) {
		if (why->code != BN_ECANCELLED)
			snprintf(vm->last_error, sizeof(vm->last_error), "%s",
			    why->msg);
		vm_set_state(l->c, vm, VM_RUNNING);
		return;
	}
	/* Gone by itself: its sockets (and QEMU's helper) go too. */
	vmm_by_name(vm->vmm)->kill(&l->p, 0);
	vm->pid = 0;
	core_net_vm_down(l->c, vm);
	/* Its host ports close with it, its cgroup goes. */
	fwd_close(l->c, vm->name);
	cg_remove(l->c, vm);
	snprintf(vm->health, sizeof(vm->health), "unknown");
	time_rfc3339(vm->stopped_at);
	vm_set_state(l->c, vm, VM_STOPPED);
	if (vm->nat)
		core_net_nat_sync(l->c, NULL);
}

bool
may_ask_guest(const struct life *l)
{
	return l->halting && l->grace_s > 0 && l->vm.pid > 0 &&
	    proc_alive(l->vm.pid);
}

/* The agent gets the first 2/3 of the grace to power the guest off. */
int
guest_poweroff_run(struct life *l, struct bn_err *err)
{
	long long grace_ms = (long long)l->grace_s * 1000;

	(void)err;
	l->asked = agent_poweroff(l->c, &l->vm, vmm_by_name(l->vm.vmm), &l->p,
	    grace_ms < 2000 ? (int)grace_ms : 2000) == 0;
	long long wait = l->halt_t0 + grace_ms * 2 / 3 - time_mono_ms();
	if (l->asked && wait > 0)
		proc_wait_gone(l->vm.pid, (int)wait);
	return 0;
}

/* The VMM's own signal for the rest of the grace, then the kill. */
int
vmm_stop_run(struct life *l, struct bn_err *err)
{
	struct vm *vm = &l->vm;
	const struct vmm_driver *drv = vmm_by_name(vm->vmm);
	enum vmm_stop_how how;
	long long left = l->halt_t0 + (long long)l->grace_s * 1000 -
	    time_mono_ms();

	if (vm->pid > 0 && proc_alive(vm->pid))
		op_stage(l->c, l->op, drv == &vmm_qemu ? "power_button" :
		    "ctrl_alt_del", 40);
	if (drv->stop(&l->p, vm->pid, left > 0 ? (int)left : 0, &how, err) < 0) {
		snprintf(vm->last_error, sizeof(vm->last_error), "%s", err->msg);
		vm_set_state(l->c, vm, VM_ERROR);
		return -1;
	}
	long long took = time_mono_ms() - l->halt_t0;
	vm->stop_ms = took > 0x7fffffff ? 0x7fffffff : (int)took;
	snprintf(vm->stop_result, sizeof(vm->stop_result), "%s",
	    how == VMM_STOP_FORCED ? "forced" : "clean");
	snprintf(vm->stop_method, sizeof(vm->stop_method), "%s",
	    how == VMM_STOP_FORCED ? "kill" : l->asked ? "agent" :
	    how == VMM_STOP_GONE ? "exited" :
	    drv == &vmm_qemu ? "acpi" : "ctrl_alt_del");
	return 0;
}

int
halt_end_run(struct life *l, struct bn_err *err)
{
	struct vm *vm = &l->vm;
	json_t *stop = vm_last_stop_json(vm);

	if (strcmp(vm->stop_result, "forced") == 0)
		log_warnx("vm '%s': stop %s: the guest did not shut down", vm->name,
		    json_string_value(json_object_get(stop, "summary")));
	if (store_stop_record(l->c->store, vm, err) < 0)
		log_warnx("vm '%s': %s", vm->name, err->msg);
	vm->pid = 0;
	core_net_vm_down(l->c, vm);
	/* Its host ports close with it, its cgroup goes. */
	fwd_close(l->c, vm->name);
	cg_remove(l->c, vm);
	snprintf(vm->health, sizeof(vm->health), "unknown");
	time_rfc3339(vm->stopped_at);
	vm_set_state_ev(l->c, vm, VM_STOPPED, json_pack("{s:o}", "stop", stop));
	if (vm->nat && core_net_nat_sync(l->c, err) < 0)
		return bn_err_prefix(err, "nat");
	return 0;
}

