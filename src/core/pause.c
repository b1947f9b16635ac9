/* pause.c - pausing and resuming a running VM: by a user's request, or
 * (resume only) after the VMM paused it on a full host disk. */
#include "core/internal.h"

#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

/* Pause and resume answer at once: they wait this long for a VM's lock
 * (held for a moment by the monitor or a health probe) and refuse a VM
 * that an operation holds. */
#define PAUSE_LOCK_MS 3000

/* An operation on the VM (queued or running) refuses at once; otherwise
 * wait out the monitor or a health probe. */
static int
vm_lock_for_pause(struct core *c, const char *name, struct bn_err *err)
{
	char op_id[24];

	if (op_active_on(c, name, op_id))
		return bn_fail(err, BN_ESTATE, 0, "vm '%s' is busy with operation "
		    "%s", name, op_id);
	if (!vm_lock_within(c, name, PAUSE_LOCK_MS))
		return bn_fail(err, BN_ESTATE, 0, "vm '%s' is busy with another "
		    "operation", name);
	return 0;
}

/* A user's pause: the VMM holds the guest's vCPUs; memory and devices
 * stay as they are until a resume (or a stop, which resumes first). */
int
core_vm_pause(struct core *c, const char *name, struct vm *ret,
    struct bn_err *err)
{
	struct vm vm;
	struct vmm_params p;
	int rc = -1;

	if (name_check("vm", name, err) < 0)
		return -1;
	if (vm_lock_for_pause(c, name, err) < 0)
		return -1;
	if (store_vm_get(c->store, name, &vm, err) < 0)
		goto out;
	if (vm.state != VM_RUNNING) {
		bn_fail(err, BN_ESTATE, 0, "vm '%s' is %s, not running", name,
		    vm_state_name(vm.state));
		goto out;
	}
	const struct vmm_driver *drv = vmm_by_name(vm.vmm);
	if (drv->pause == NULL) {
		bn_fail(err, BN_ESTATE, 0, "%s cannot pause vm '%s'", drv->name,
		    name);
		goto out;
	}
	if (vm_ctl_params(c, &vm, &p, err) < 0)
		goto out;
	p.api_timeout_ms = c->cfg.vmm_api_timeout_ms;
	if (drv->pause(&p, err) < 0)
		goto out;
	snprintf(vm.paused_reason, sizeof(vm.paused_reason), "user");
	vm_set_state_ev(c, &vm, VM_PAUSED, json_pack("{s:s}", "reason", "user"));
	log_info("vm '%s': paused", name);
	*ret = vm;
	rc = 0;
out:
	vm_unlock(c, name);
	return rc;
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

	if (vm_lock_for_pause(c, name, err) < 0)
		return -1;
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
	rc = 0;
out:
	vm_unlock(c, name);
	if (rc == 0) {
		/* The guest's clock stood still while it was paused. */
		long long step_ms = 0;
		struct bn_err cerr;
		if (agent_set_clock(c, &vm, &p, &step_ms, &cerr) < 0)
			log_warnx("vm '%s': clock not corrected after the resume: "
			    "%s", name, cerr.msg);
		else
			log_info("vm '%s': clock corrected by %lld ms", name,
			    step_ms);
		/* Ask the agent again: health (and its vm.health event) says
		 * whether the guest came back well. */
		struct bn_err ignored;
		json_decref(core_vm_health(c, name, &ignored));
		if (store_vm_get(c->store, name, ret, err) < 0)
			*ret = vm;
	}
	return rc;
}
