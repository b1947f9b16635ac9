/* snapshots.c - the snapshot entry points: names checked, the operation
 * started (taking and restoring run as step tables, life_snap.c), and the
 * quick calls (list, get, delete). */
#include "core/snap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"

static int
names_check(struct core *c, const char *vm, const char *snap, struct vm *ret,
    struct bn_err *err)
{
	if (name_check("vm", vm, err) < 0 ||
	    (snap != NULL && name_check("snapshot", snap, err) < 0))
		return -1;
	return store_vm_get(c->store, vm, ret, err);
}

static int
start_op(struct core *c, enum life_kind kind, const char *vm,
    const char *snap, char ret_op_id[24], struct bn_err *err)
{
	struct vm v;

	if (names_check(c, vm, snap, &v, err) < 0)
		return -1;
	struct life_req *lr = xcalloc(1, sizeof(*lr));
	lr->kind = kind;
	snprintf(lr->name, sizeof(lr->name), "%s", vm);
	snprintf(lr->snap, sizeof(lr->snap), "%s", snap);
	return op_start(c, life_kind_name(kind), vm, life_op, lr, free,
	    ret_op_id, err);
}

int
core_snapshot_create(struct core *c, const char *vm, const char *snap,
    char ret_op_id[24], struct bn_err *err)
{
	struct vm v;
	struct snapshot sn;

	/* A taken name is refused now, not after the operation started. */
	if (names_check(c, vm, snap, &v, err) < 0)
		return -1;
	if (store_snap_get(c->store, v.id, snap, &sn, NULL) == 0)
		return bn_fail(err, BN_ESNAP_EXISTS, 0, "vm '%s' already has a "
		    "snapshot '%s'", vm, snap);
	return start_op(c, LIFE_SNAPSHOT, vm, snap, ret_op_id, err);
}

int
core_vm_restore(struct core *c, const char *vm, const char *snap,
    char ret_op_id[24], struct bn_err *err)
{
	struct vm v;
	struct snapshot sn;

	if (names_check(c, vm, snap, &v, err) < 0 ||
	    store_snap_get(c->store, v.id, snap, &sn, err) < 0)
		return -1;
	return start_op(c, LIFE_RESTORE, vm, snap, ret_op_id, err);
}

int
core_snapshot_list(struct core *c, const char *vm, struct snapshot **ret,
    int *ret_n, struct bn_err *err)
{
	struct vm v;

	if (names_check(c, vm, NULL, &v, err) < 0)
		return -1;
	return store_snap_list(c->store, v.id, ret, ret_n, err);
}

int
core_snapshot_get(struct core *c, const char *vm, const char *snap,
    struct snapshot *ret, struct bn_err *err)
{
	struct vm v;

	if (names_check(c, vm, snap, &v, err) < 0)
		return -1;
	return store_snap_get(c->store, v.id, snap, ret, err);
}

/* Under the VM's lock: no snapshot or restore of it is under way, so a
 * row still "creating" is a crash's leftover and goes too. */
int
core_snapshot_delete(struct core *c, const char *vm, const char *snap,
    struct bn_err *err)
{
	struct vm v;
	struct snapshot sn;
	char dir[PATH_MAX];
	int rc = -1;

	if (names_check(c, vm, snap, &v, err) < 0)
		return -1;
	vm_lock(c, vm);
	if (store_vm_get(c->store, vm, &v, err) < 0 ||
	    store_snap_get(c->store, v.id, snap, &sn, err) < 0 ||
	    snap_dir(c, v.id, snap, dir, sizeof(dir), err) < 0 ||
	    fs_remove_tree(dir, err) < 0 ||
	    store_snap_delete(c->store, v.id, snap, err) < 0)
		goto out;
	rc = 0;
out:
	vm_unlock(c, vm);
	return rc;
}

/* What an interrupted snapshot or restore left of vm, set right at daemon
 * start (alive: its VMM runs on).  A snapshot never finished goes; a
 * restore whose VMM runs kept the snapshot's disks, one whose VMM does
 * not gets its own disks back (they were set aside as *.prev). */
void
snap_reconcile(struct core *c, const struct vm *vm, bool alive)
{
	static const char *const disks[] = { SNAP_ROOTFS, SNAP_WORK };
	struct snapshot *list = NULL;
	char dir[PATH_MAX], live[PATH_MAX], prev[PATH_MAX];
	int n = 0;

	if (store_snap_list(c->store, vm->id, &list, &n, NULL) == 0) {
		for (int i = 0; i < n; i++) {
			if (list[i].state == SNAP_READY ||
			    snap_dir(c, vm->id, list[i].name, dir, sizeof(dir),
			    NULL) < 0)
				continue;
			fs_remove_tree(dir, NULL);
			store_snap_delete(c->store, vm->id, list[i].name, NULL);
			log_info("reconcile: removed unfinished snapshot '%s' of "
			    "vm '%s'", list[i].name, vm->name);
		}
		free(list);
	}
	if (vm_dir(c, vm->id, dir, sizeof(dir), NULL) < 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(disks); i++) {
		if (path_join(live, sizeof(live), NULL, "%s/%s", dir, disks[i]) < 0 ||
		    path_join(prev, sizeof(prev), NULL, "%s.prev", live) < 0 ||
		    access(prev, F_OK) != 0)
			continue;
		if (alive) {
			unlink(prev);
		} else {
			unlink(live);
			if (rename(prev, live) < 0)
				log_warn("reconcile: putting back %s", live);
			else
				log_info("reconcile: vm '%s' has its own %s back "
				    "(a restore did not finish)", vm->name, disks[i]);
		}
	}
}
