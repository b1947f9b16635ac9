/* monitor.c - the store against the processes: reconcile at daemon start
 * (adopt live VMMs, clear dead ones), the monitor thread that notices VMs
 * that exited or were paused by their VMM, and resuming such a VM. */
#include "core/snap.h"

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
		bool alive = vm->pid > 0 && drv->probe(&p, vm->pid, &err) == 0;
		snap_reconcile(c, vm, alive);
		if (alive && strcmp(vm->paused_reason, "snapshot") == 0 &&
		    drv->resume != NULL) {
			/* Paused by a snapshot that will never finish. */
			p.api_timeout_ms = c->cfg.vmm_api_timeout_ms;
			if (drv->resume(&p, &err) == 0) {
				vm->paused_reason[0] = '\0';
				vm->state = VM_RUNNING;
				time_rfc3339(vm->updated_at);
				store_vm_update(c->store, vm, NULL);
				log_info("reconcile: resumed vm '%s' (a snapshot "
				    "did not finish)", vm->name);
			}
		}
		if (alive) {
			/* A VM the VMM paused stays paused; the monitor
			 * looks again. */
			if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
				vm->state = VM_RUNNING;
				time_rfc3339(vm->updated_at);
				store_vm_update(c->store, vm, NULL);
			}
			log_info("reconcile: adopted vm '%s' (pid %d)", vm->name,
			    (int)vm->pid);
			if (vm->nports > 0 && fwd_apply(c, vm, &err) < 0)
				log_warnx("reconcile: vm '%s': %s", vm->name,
				    err.msg);
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
		warm_auto(c);

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
				fwd_close(c, vm.name);
				cg_remove(c, &vm);
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
