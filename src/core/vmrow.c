/* vmrow.c - a VM's directory, the driver parameters to act on it, and
 * its recorded state (store row plus vm.state event). */
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
vm_dir(struct core *c, const char *id, char *out, size_t outsz, struct bn_err *err)
{
	return path_join(out, outsz, err, "%s/vms/%s", c->cfg.state_dir, id);
}

/* The per-VM paths a driver needs to act on a VM that exists (stop,
 * kill, probe, pause, resume): no binary, no boot parameters. */
int
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
