/* bulk.c - one action on many VMs at once (POST /v1/vms/actions): one
 * operation, a thread per VM, each taking that VM's lock as a single
 * action would, and a result per VM in the order of the names. */
#include "core/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"

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
	static const enum life_kind kinds[] = { LIFE_START, LIFE_STOP,
		LIFE_RESTART, LIFE_DELETE };
	const char *name = o->b->names[o->i];
	struct bn_err err = { 0 };
	json_t *vmj = NULL;

	/* Each VM's action takes that VM's lock, like a single action. */
	if (o->b->act == VM_ACT_PAUSE || o->b->act == VM_ACT_RESUME) {
		struct vm vm;
		int rc = o->b->act == VM_ACT_PAUSE ?
		    core_vm_pause(o->c, name, &vm, &err) :
		    core_vm_resume(o->c, name, &vm, &err);
		vmj = rc == 0 ? vm_to_json(&vm) : NULL;
	} else if (o->b->act == VM_ACT_SET) {
		struct vm_patch p = { .vcpus = VM_SIZE_UNSET,
			.memory_mib = VM_SIZE_UNSET, .disk_gib = VM_SIZE_UNSET,
			.nat = o->b->nat };
		struct vm vm;
		vmj = core_vm_patch(o->c, name, &p, &vm, &err) == 0 ?
		    vm_to_json(&vm) : NULL;
	} else {
		struct life_req *lr = xcalloc(1, sizeof(*lr));
		lr->kind = kinds[o->b->act];
		snprintf(lr->name, sizeof(lr->name), "%s", name);
		lr->force = o->b->force;
		lr->grace_s = o->b->grace_s;
		if ((lr->kind != LIFE_START && lr->kind != LIFE_RESTART) ||
		    vmm_pick(o->c, &lr->choice, &err) == 0)
			vmj = life_run(o->c, o->op, lr, &err);
		free(lr);
	}
	if (vmj != NULL)
		o->result = json_pack("{s:s, s:b, s:n, s:o}", "name", name, "ok", 1,
		    "error", "vm", vmj);
	else
		o->result = json_pack("{s:s, s:b, s:o, s:n}", "name", name, "ok", 0,
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
