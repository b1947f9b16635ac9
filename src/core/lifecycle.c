/* lifecycle.c - VM operations as step tables.
 *
 * Each operation kind (create, start, stop, restart, delete) is an ordered
 * table of steps {name, stage, progress, when, run, undo}.  One runner
 * walks a table: it skips a step whose `when` says no, honours a cancel
 * before every step, announces the step's stage, runs it and, when a step
 * fails (or the operation is cancelled), undoes the steps already done in
 * reverse order.  A step that fails cleans up its own half-made work; its
 * undo is only for after it succeeded.  Steps without an undo make nothing
 * that a failure should take back (a stop is not undone: the VM stays
 * stopped).
 *
 * Steps share one struct life: the VM as it changes, the request it came
 * from (the image and the VMM picked when it was accepted) and what the
 * steps made (directory, network, VMM parameters, process).
 *
 * Tests walk every table through `bangerd --list-steps` and make each
 * step fail in turn through the failpoint file (BANGERD_FAILPOINT_FILE,
 * see life_failpoint), asserting that nothing is left behind. */
#include "core/life.h"

#include <errno.h>
#include <fcntl.h>
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

/* ---- create ---- */

/* The row recorded when the create was accepted is still this create's
 * (a delete may have taken the name while the operation waited). */
static int
record_run(struct life *l, struct bn_err *err)
{
	struct vm cur;

	if (store_vm_get(l->c->store, l->vm.name, &cur, err) < 0)
		return -1;
	if (strcmp(cur.id, l->vm.id) != 0)
		return bn_fail(err, BN_ESTATE, 0, "vm '%s' was replaced while "
		    "it was being created", l->vm.name);
	return 0;
}

/* A failed create leaves nothing behind: not even its record, if the
 * record is still its own. */
static void
record_undo(struct life *l, const struct bn_err *why)
{
	struct vm cur;

	(void)why;
	if (store_vm_get(l->c->store, l->vm.name, &cur, NULL) == 0 &&
	    strcmp(cur.id, l->vm.id) == 0 &&
	    store_vm_delete(l->c->store, l->vm.name, NULL) == 0)
		core_emit(l->c, "vm.deleted", l->vm.name, l->op->row.id, NULL);
}

static int
disks_run(struct life *l, struct bn_err *err)
{
	char rootfs[PATH_MAX];
	const struct image_view *iv = &l->req->iv;

	if (vm_dir(l->c, l->vm.id, l->dir, sizeof(l->dir), err) < 0 ||
	    path_join(rootfs, sizeof(rootfs), err, "%s/rootfs.ext4", l->dir) < 0)
		return -1;
	if (mkdir(l->dir, 0700) < 0)
		return bn_fail(err, BN_ESYS, errno, "mkdir %s", l->dir);
	if (!spares_take(l->c, iv->img.rootfs, rootfs) &&
	    fs_copy_sparse(iv->img.rootfs, rootfs, 0600, err) < 0) {
		fs_remove_tree(l->dir, NULL);
		return -1;
	}
	return 0;
}

static void
disks_undo(struct life *l, const struct bn_err *why)
{
	(void)why;
	fs_remove_tree(l->dir, NULL);
}

/* A half-written work disk goes with the directory (disks_undo). */
static int
workdisk_run(struct life *l, struct bn_err *err)
{
	char work[PATH_MAX];

	if (path_join(work, sizeof(work), err, "%s/work.ext4", l->dir) < 0)
		return -1;
	return make_workdisk(l->c, &l->req->iv, work, l->vm.disk_gib, err);
}

/* The guest would make them itself, a second or more of its first boot
 * under emulation (hostkeys.c); when bangerd cannot, it still does. */
static int
hostkeys_run(struct life *l, struct bn_err *err)
{
	char rootfs[PATH_MAX];
	struct bn_err why;

	if (path_join(rootfs, sizeof(rootfs), err, "%s/rootfs.ext4", l->dir) < 0)
		return -1;
	if (vm_host_keys(&l->vm, l->dir, rootfs, &why) < 0)
		log_warnx("vm '%s': SSH host keys not made on the host (%s); the "
		    "guest makes its own", l->vm.name, why.msg);
	return 0;
}

/* ---- start, restart, delete ---- */

static int
start_check_run(struct life *l, struct bn_err *err)
{
	struct vm *vm = &l->vm;

	if (vm->state == VM_RUNNING)
		return 1;
	if (vm->state == VM_PAUSED) {
		bn_fail(err, BN_ESTATE, 0, "vm '%s' is paused (%s)", vm->name,
		    vm->paused_reason);
		return bn_err_hint(err, "resume it: banger vm resume %s", vm->name);
	}
	return core_host_room(l->c, 0, "a start", err);
}

static int
restart_check_run(struct life *l, struct bn_err *err)
{
	return core_host_room(l->c, 0, "a restart", err);
}

static int
delete_check_run(struct life *l, struct bn_err *err)
{
	struct vm *vm = &l->vm;

	if ((vm->state == VM_RUNNING || vm->state == VM_STARTING ||
	    vm->state == VM_PAUSED) && !l->req->force) {
		bn_fail(err, BN_EVM_RUNNING, 0, "vm '%s' is %s", vm->name,
		    vm_state_name(vm->state));
		return bn_err_hint(err, "stop it first or delete with --force");
	}
	return 0;
}

static int
remove_run(struct life *l, struct bn_err *err)
{
	if (vm_dir(l->c, l->vm.id, l->dir, sizeof(l->dir), err) < 0 ||
	    fs_remove_tree(l->dir, err) < 0 ||
	    store_vm_delete(l->c->store, l->vm.name, err) < 0)
		return -1;
	core_emit(l->c, "vm.deleted", l->vm.name, l->op->row.id, NULL);
	l->result = json_null();
	return 0;
}

/* ---- the tables ----
 *
 * Columns: name, stage (announced, or NULL), progress, made_at_request,
 * when (NULL: always), run, undo (NULL: nothing to take back).  Boot and
 * stop steps are shared by the tables that boot or stop; their progress
 * is relative to where the table puts them. */

#define BOOT_STEPS(base) \
	{ "boot", NULL, 0, false, NULL, boot_begin_run, boot_failed }, \
	{ "ports", NULL, 0, false, has_ports, ports_run, ports_undo }, \
	{ "network", "network", (base), false, NULL, network_run, network_undo }, \
	{ "spawn_vmm", "spawn_vmm", (base) + 5, false, NULL, spawn_run, spawn_undo }, \
	{ "cgroup", NULL, 0, false, NULL, cgroup_run, NULL }, \
	{ "configure", "configure", (base) + 10, false, NULL, configure_run, NULL }, \
	{ "instance_start", "instance_start", (base) + 20, false, NULL, \
	    instance_start_run, NULL }, \
	{ "wait_health", "wait_health", (base) + 30, false, NULL, wait_health_run, \
	    NULL }, \
	{ "running", NULL, 0, false, NULL, running_run, running_undo }, \
	{ "nat", NULL, 0, false, has_nat, nat_run, NULL }

#define HALT_STEPS \
	{ "stopping", "stopping", 10, false, is_up, halt_begin_run, halt_undo }, \
	{ "guest_poweroff", "guest_poweroff", 15, false, may_ask_guest, \
	    guest_poweroff_run, NULL }, \
	{ "vmm_stop", NULL, 0, false, halting, vmm_stop_run, NULL }, \
	{ "stopped", NULL, 0, false, halting, halt_end_run, NULL }

static const struct step create_steps[] = {
	{ "record", NULL, 0, true, NULL, record_run, record_undo },
	{ "prepare_disks", "prepare_disks", 5, false, NULL, disks_run, disks_undo },
	{ "prepare_work_disk", "prepare_work_disk", 15, false, NULL, workdisk_run,
	    NULL },
	{ "host_keys", NULL, 0, false, NULL, hostkeys_run, NULL },
	BOOT_STEPS(30),
};

static const struct step start_steps[] = {
	{ "check", NULL, 0, false, NULL, start_check_run, NULL },
	BOOT_STEPS(10),
};

static const struct step stop_steps[] = {
	HALT_STEPS,
};

static const struct step restart_steps[] = {
	{ "check", NULL, 0, false, NULL, restart_check_run, NULL },
	HALT_STEPS,
	BOOT_STEPS(40),
};

static const struct step delete_steps[] = {
	{ "check", NULL, 0, false, NULL, delete_check_run, NULL },
	HALT_STEPS,
	{ "remove_disks", "remove_disks", 60, false, NULL, remove_run, NULL },
};

/* A snapshot undoes its pause (the VM runs on) and its files. */
static const struct step snapshot_steps[] = {
	{ "check", NULL, 0, false, NULL, snap_check_run, NULL },
	{ "record", "record", 5, false, NULL, snap_record_run, snap_record_undo },
	{ "pause", "pause", 10, false, snap_vm_running, snap_pause_run,
	    snap_pause_undo },
	{ "save_state", "save_state", 20, false, NULL, snap_save_run, NULL },
	{ "copy_disks", "copy_disks", 50, false, NULL, snap_copy_run, NULL },
	{ "manifest", "manifest", 80, false, NULL, snap_manifest_run, NULL },
	{ "resume", "resume", 90, false, snap_paused_here, snap_resume_run,
	    NULL },
};

/* A restore boots like a start, with a load in place of configure and
 * InstanceStart; the VM's own disks come back on any failure. */
static const struct step restore_steps[] = {
	{ "check", "check", 5, false, NULL, restore_check_run, NULL },
	{ "discard", "discard", 10, false, is_up, discard_run, NULL },
	{ "restore_disks", "restore_disks", 20, false, NULL, restore_disks_run,
	    restore_disks_undo },
	{ "boot", NULL, 0, false, NULL, boot_begin_run, boot_failed },
	{ "ports", NULL, 0, false, has_ports, ports_run, ports_undo },
	{ "network", "network", 40, false, NULL, network_run, network_undo },
	{ "spawn_vmm", "spawn_vmm", 45, false, NULL, spawn_run, spawn_undo },
	{ "cgroup", NULL, 0, false, NULL, cgroup_run, NULL },
	{ "load", "load", 50, false, NULL, load_run, NULL },
	{ "wait_health", "wait_health", 70, false, NULL, wait_health_run, NULL },
	{ "clock", NULL, 0, false, NULL, clock_run, NULL },
	{ "running", NULL, 0, false, NULL, running_run, running_undo },
	{ "nat", NULL, 0, false, has_nat, nat_run, NULL },
	{ "keep_disks", NULL, 0, false, NULL, keep_disks_run, NULL },
};

/* A clone is a create from a snapshot: its row was recorded with the
 * request; it gets its own copies of the snapshot's disks, its own TAP,
 * lease and vsock socket, and from the agent its own identity. */
static const struct step clone_steps[] = {
	{ "record", NULL, 0, true, NULL, record_run, record_undo },
	{ "check", "check", 5, false, NULL, clone_check_run, NULL },
	{ "clone_disks", "clone_disks", 15, false, NULL, clone_disks_run,
	    clone_disks_undo },
	{ "boot", NULL, 0, false, NULL, boot_begin_run, boot_failed },
	{ "ports", NULL, 0, false, has_ports, ports_run, ports_undo },
	{ "network", "network", 40, false, NULL, network_run, network_undo },
	{ "spawn_vmm", "spawn_vmm", 45, false, NULL, spawn_run, spawn_undo },
	{ "cgroup", NULL, 0, false, NULL, cgroup_run, NULL },
	{ "load", "load", 50, false, NULL, load_run, NULL },
	{ "wait_health", "wait_health", 70, false, NULL, wait_health_run, NULL },
	{ "reidentify", "reidentify", 85, false, NULL, reidentify_run, NULL },
	{ "clock", NULL, 0, false, NULL, clock_run, NULL },
	{ "running", NULL, 0, false, NULL, running_run, running_undo },
	{ "nat", NULL, 0, false, has_nat, nat_run, NULL },
};

/* A create of a warm image is a clone of the image's warm snapshot
 * (clone_check_run finds it under warm/IMAGE). */
#define warm_create_steps clone_steps

#define LIFE_STEPS_MAX 32
_Static_assert(ARRAY_SIZE(create_steps) <= LIFE_STEPS_MAX &&
    ARRAY_SIZE(start_steps) <= LIFE_STEPS_MAX &&
    ARRAY_SIZE(stop_steps) <= LIFE_STEPS_MAX &&
    ARRAY_SIZE(restart_steps) <= LIFE_STEPS_MAX &&
    ARRAY_SIZE(delete_steps) <= LIFE_STEPS_MAX &&
    ARRAY_SIZE(snapshot_steps) <= LIFE_STEPS_MAX &&
    ARRAY_SIZE(restore_steps) <= LIFE_STEPS_MAX &&
    ARRAY_SIZE(clone_steps) <= LIFE_STEPS_MAX, "raise LIFE_STEPS_MAX");

static const struct {
	const char *kind;
	const struct step *steps;
	size_t n;
} tables[LIFE_KINDS] = {
	[LIFE_CREATE] = { "vm.create", create_steps, ARRAY_SIZE(create_steps) },
	[LIFE_START] = { "vm.start", start_steps, ARRAY_SIZE(start_steps) },
	[LIFE_STOP] = { "vm.stop", stop_steps, ARRAY_SIZE(stop_steps) },
	[LIFE_RESTART] = { "vm.restart", restart_steps,
	    ARRAY_SIZE(restart_steps) },
	[LIFE_DELETE] = { "vm.delete", delete_steps, ARRAY_SIZE(delete_steps) },
	[LIFE_SNAPSHOT] = { "vm.snapshot", snapshot_steps,
	    ARRAY_SIZE(snapshot_steps) },
	[LIFE_RESTORE] = { "vm.restore", restore_steps,
	    ARRAY_SIZE(restore_steps) },
	[LIFE_CLONE] = { "vm.clone", clone_steps, ARRAY_SIZE(clone_steps) },
	[LIFE_WARM_CREATE] = { "vm.create_warm", warm_create_steps,
	    ARRAY_SIZE(warm_create_steps) },
};

const char *
life_kind_name(enum life_kind k)
{
	return tables[k].kind;
}

json_t *
core_lifecycle_steps(void)
{
	json_t *arr = json_array();

	for (int k = 0; k < LIFE_KINDS; k++) {
		json_t *steps = json_array();
		for (size_t i = 0; i < tables[k].n; i++) {
			const struct step *s = &tables[k].steps[i];
			json_array_append_new(steps, json_pack("{s:s, s:b, s:b}",
			    "name", s->name, "undo", s->undo != NULL,
			    "conditional", s->when != NULL));
		}
		json_array_append_new(arr, json_pack("{s:s, s:o}", "kind",
		    tables[k].kind, "steps", steps));
	}
	return arr;
}

/* ---- the runner ---- */

/* Tests make a step fail: the file named by BANGERD_FAILPOINT_FILE
 * (read at each step, so one daemon serves many cases) holds
 * "KIND:STEP", e.g. "vm.create:spawn_vmm".  Without the variable this
 * is one getenv. */
static bool
life_failpoint(const char *kind, const char *step)
{
	const char *path = getenv("BANGERD_FAILPOINT_FILE");
	char want[96], buf[96];

	if (path == NULL || *path == '\0')
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	snprintf(want, sizeof(want), "%s:%s", kind, step);
	return strcmp(buf, want) == 0;
}

static int
steps_run(struct life *l, enum life_kind k, struct bn_err *err)
{
	const struct step *t = tables[k].steps;
	size_t n = tables[k].n;
	size_t done[LIFE_STEPS_MAX], ndone = 0;

	for (size_t i = 0; i < n && t[i].made_at_request; i++)
		done[ndone++] = i;
	for (size_t i = 0; i < n; i++) {
		const struct step *s = &t[i];
		if (s->when != NULL && !s->when(l))
			continue;
		if (!l->req->uncancellable && op_cancelled(l->op)) {
			op_fail_cancelled(l->op, err);
			goto undo;
		}
		if (s->stage != NULL)
			op_stage(l->c, l->op, s->stage, s->progress);
		if (life_failpoint(tables[k].kind, s->name)) {
			bn_fail(err, BN_EINTERNAL, 0, "failpoint %s:%s",
			    tables[k].kind, s->name);
			goto undo;
		}
		int rc = s->run(l, err);
		if (rc < 0)
			goto undo;
		if (!s->made_at_request)
			done[ndone++] = i;
		if (rc > 0)
			break;
	}
	return 0;
undo:
	while (ndone > 0) {
		const struct step *s = &t[done[--ndone]];
		if (s->undo != NULL)
			s->undo(l, err);
	}
	return -1;
}

json_t *
life_run(struct core *c, struct op *op, struct life_req *req,
    struct bn_err *err)
{
	struct life *l = xcalloc(1, sizeof(*l));
	json_t *res = NULL;

	l->c = c;
	l->op = op;
	l->req = req;
	if (req->note[0] != '\0')
		op_note(c, op, req->note);
	vm_lock(c, req->name);
	/* A create acts on the VM it recorded; any other action on the VM as
	 * it is now that it holds the lock. */
	if (req->kind == LIFE_CREATE || req->kind == LIFE_CLONE ||
	    req->kind == LIFE_WARM_CREATE)
		l->vm = req->vm;
	else if (store_vm_get(c->store, req->name, &l->vm, err) < 0)
		goto out;
	if (steps_run(l, req->kind, err) == 0)
		res = l->result != NULL ? l->result : vm_to_json(&l->vm);
	else
		json_decref(l->result);  /* set by a step that was undone */
out:
	vm_unlock(c, req->name);
	free(l);
	if (res != NULL && req->kind == LIFE_CREATE && req->iv.is_default)
		c->warm_wanted = true;
	return res;
}

json_t *
life_op(struct core *c, struct op *op, void *arg, struct bn_err *err)
{
	return life_run(c, op, arg, err);
}
