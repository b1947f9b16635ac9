/* warming.c - taking an image's warm snapshot (operation image.warm)
 * and the calls around it: warm, cool, the automatic warming of the
 * default image and what a restart finds of an unfinished warming.
 *
 * Warming boots a VM of the image the ordinary way, snapshots it once
 * its agent answers, moves the snapshot's files to <state>/warm/IMAGE
 * and deletes the VM: three step tables run one after the other in one
 * operation, with the VM deleted again if any of them fails. */
#include "core/snap.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"

struct warm_req {
	struct image_view iv;
	char vm[VM_NAME_MAX];       /* the VM booted to be snapshotted */
	char id[128];               /* the image's identity at the start */
};

/* Delete the warming VM, whatever state it is in and even when the
 * operation was cancelled. */
static void
warm_vm_delete(struct core *c, struct op *op, const char *vm)
{
	struct life_req *lr;
	struct bn_err err;
	struct vm v;
	json_t *j;

	if (store_vm_get(c->store, vm, &v, NULL) < 0)
		return;         /* a failed create took its record back */
	lr = xcalloc(1, sizeof(*lr));
	lr->kind = LIFE_DELETE;
	lr->force = true;
	lr->grace_s = 0;
	lr->uncancellable = true;
	snprintf(lr->name, sizeof(lr->name), "%s", vm);
	if ((j = life_run(c, op, lr, &err)) == NULL)
		log_warnx("image warm: deleting vm '%s': %s", vm, err.msg);
	json_decref(j);
	free(lr);
}

static int
warm_life(struct core *c, struct op *op, struct life_req *lr,
    struct bn_err *err)
{
	json_t *j = life_run(c, op, lr, err);

	free(lr);
	if (j == NULL)
		return -1;
	json_decref(j);
	return 0;
}

/* The snapshot's files to <state>/warm/IMAGE; its row goes. */
static int
warm_take_files(struct core *c, const char *vm_name, const char *dir,
    struct warm *w, struct bn_err *err)
{
	struct vm vm;
	struct snapshot sn;
	char from[PATH_MAX], parent[PATH_MAX];

	if (store_vm_get(c->store, vm_name, &vm, err) < 0 ||
	    store_snap_get(c->store, vm.id, WARM_SNAP, &sn, err) < 0 ||
	    snap_dir(c, vm.id, WARM_SNAP, from, sizeof(from), err) < 0 ||
	    path_join(parent, sizeof(parent), err, "%s/warm",
	    c->cfg.state_dir) < 0 || mkdir_p(parent, 0700, err) < 0)
		return -1;
	if (rename(from, dir) < 0)
		return bn_fail(err, BN_ESYS, errno, "rename %s to %s", from, dir);
	store_snap_delete(c->store, vm.id, WARM_SNAP, NULL);
	w->vcpus = vm.vcpus;
	w->memory_mib = vm.memory_mib;
	w->disk_gib = vm.disk_gib;
	w->bytes = sn.bytes;
	snprintf(w->vmm_version, sizeof(w->vmm_version), "%s", sn.vmm_version);
	return 0;
}

static json_t *
warm_op(struct core *c, struct op *op, void *arg, struct bn_err *err)
{
	struct warm_req *wr = arg;
	const char *image = wr->iv.img.name;
	struct life_req *lr;
	struct warm w;
	struct image_view iv;
	char dir[PATH_MAX], id[128];
	bool have_vm = false;

	if (store_warm_get(c->store, image, &w, err) < 0 ||
	    warm_dir(c, image, dir, sizeof(dir), err) < 0)
		return NULL;
	fs_remove_tree(dir, NULL);

	/* 1. a VM of the image, booted until its agent answers */
	struct vm_create_req req = {
		.name = wr->vm, .image = image, .vcpus = VM_SIZE_UNSET,
		.memory_mib = VM_SIZE_UNSET, .disk_gib = VM_SIZE_UNSET,
	};
	if (vm_create_prepare(c, &req, &lr, err) < 0)
		goto fail;
	have_vm = true;
	if (lr->kind != LIFE_CREATE) {
		free(lr);
		bn_fail(err, BN_EINTERNAL, 0, "image warm: not a cold boot");
		goto fail;
	}
	if (warm_life(c, op, lr, err) < 0)
		goto fail;

	/* 2. its snapshot */
	lr = xcalloc(1, sizeof(*lr));
	lr->kind = LIFE_SNAPSHOT;
	snprintf(lr->name, sizeof(lr->name), "%s", wr->vm);
	snprintf(lr->snap, sizeof(lr->snap), WARM_SNAP);
	if (warm_life(c, op, lr, err) < 0)
		goto fail;
	op_stage(c, op, "keep", 95);
	if (warm_take_files(c, wr->vm, dir, &w, err) < 0)
		goto fail;

	/* 3. the VM goes; the snapshot is the image's if the image is still
	 * the one it was taken of */
	warm_vm_delete(c, op, wr->vm);
	have_vm = false;
	warm_image_identity(c, &wr->iv, id);
	if (strcmp(id, wr->id) != 0) {
		bn_fail(err, BN_ESTATE, 0, "image '%s' changed while it was "
		    "warmed", image);
		bn_err_hint(err, "warm it again");
		goto fail;
	}
	w.state = SNAP_READY;
	w.vm[0] = '\0';
	time_rfc3339(w.created_at);
	if (store_warm_put(c->store, &w, err) < 0)
		goto fail;
	log_info("image '%s': warm (%d vcpus, %d MiB, %lld bytes)", image,
	    w.vcpus, w.memory_mib, w.bytes);
	if (core_image_get(c, image, &iv, err) < 0)
		return NULL;
	json_t *j = image_to_json(&iv);
	core_emit(c, "image.warmed", NULL, op->row.id, json_incref(j));
	return j;
fail:
	if (have_vm)
		warm_vm_delete(c, op, wr->vm);
	fs_remove_tree(dir, NULL);
	if (store_warm_get(c->store, image, &w, NULL) == 0 &&
	    strcmp(w.vm, wr->vm) == 0)
		store_warm_delete(c->store, image, NULL);
	return NULL;
}

int
core_image_warm(struct core *c, const char *name, char ret_op_id[24],
    struct bn_err *err)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct warm_req *wr = xcalloc(1, sizeof(*wr));
	struct vmm_choice choice;
	struct warm w;
	char hex[9];
	int rc = -1;

	if (core_image_get(c, name, &wr->iv, err) < 0)
		goto out;
	if (!wr->iv.available) {
		bn_fail(err, BN_EIMG_UNAVAIL, 0, "image '%s' has no usable rootfs",
		    name);
		goto out;
	}
	if (vmm_pick(c, &choice, err) < 0)
		goto out;
	if (choice.drv->snapshot == NULL || choice.drv->restore == NULL) {
		bn_fail(err, BN_EUNSUPPORTED, 0, "%s cannot snapshot a VM and "
		    "load it again: no warm snapshots with it", choice.drv->name);
		bn_err_hint(err, "warm starts need Firecracker");
		goto out;
	}
	if (random_hex(hex, 4, err) < 0)
		goto out;
	snprintf(wr->vm, sizeof(wr->vm), "warm-%s", hex);
	warm_image_identity(c, &wr->iv, wr->id);
	/* One warming per image: the row is taken now, not in the operation. */
	pthread_mutex_lock(&mu);
	if (store_warm_get(c->store, name, &w, NULL) == 0 &&
	    w.state != SNAP_READY) {
		pthread_mutex_unlock(&mu);
		bn_fail(err, BN_ESTATE, 0, "image '%s' is being warmed (vm '%s')",
		    name, w.vm);
		goto out;
	}
	warm_drop(c, name, "warmed again");
	memset(&w, 0, sizeof(w));
	snprintf(w.image, sizeof(w.image), "%s", wr->iv.img.name);
	w.state = SNAP_CREATING;
	snprintf(w.vm, sizeof(w.vm), "%s", wr->vm);
	snprintf(w.vmm, sizeof(w.vmm), "%s", choice.drv->name);
	snprintf(w.image_id, sizeof(w.image_id), "%s", wr->id);
	time_rfc3339(w.created_at);
	rc = store_warm_put(c->store, &w, err);
	pthread_mutex_unlock(&mu);
	if (rc < 0)
		goto out;
	if ((rc = op_start(c, "image.warm", name, warm_op, wr, free, ret_op_id,
	    err)) < 0)
		store_warm_delete(c->store, name, NULL);
	return rc;
out:
	free(wr);
	return rc;
}

int
core_image_cool(struct core *c, const char *name, struct bn_err *err)
{
	struct image_view iv;
	struct warm w;

	if (core_image_get(c, name, &iv, err) < 0 ||
	    store_warm_get(c->store, name, &w, err) < 0)
		return -1;
	if (w.state != SNAP_READY) {
		bn_fail(err, BN_ESTATE, 0, "image '%s' is being warmed", name);
		return bn_err_hint(err, "cancel its image.warm operation");
	}
	warm_drop(c, name, "asked");
	return 0;
}

/* From the monitor thread, after a cold create of the default image
 * (c->warm_wanted): warm it when warm_default_image is on and it is not
 * warm yet. */
void
warm_auto(struct core *c)
{
	struct warm w;
	struct bn_err err;
	char op_id[24];

	if (!atomic_exchange(&c->warm_wanted, false) ||
	    strcmp(c->cfg.warm_default_image, "on") != 0 ||
	    store_warm_get(c->store, DEFAULT_IMAGE, &w, NULL) == 0)
		return;
	if (core_image_warm(c, DEFAULT_IMAGE, op_id, &err) < 0)
		log_info("image '%s': not warmed (warm_default_image): %s",
		    DEFAULT_IMAGE, err.msg);
	else
		log_info("image '%s': warming it (warm_default_image), operation "
		    "%s", DEFAULT_IMAGE, op_id);
}

/* At daemon start: a warming the daemon did not see end is undone (its
 * VM deleted, its files and row removed). */
void
warm_reconcile(struct core *c)
{
	struct warm *list = NULL;
	char dir[PATH_MAX], op_id[24];
	struct bn_err err;
	struct vm vm;
	int n = 0;

	if (store_warm_list(c->store, &list, &n, NULL) < 0)
		return;
	for (int i = 0; i < n; i++) {
		if (list[i].state == SNAP_READY)
			continue;
		if (warm_dir(c, list[i].image, dir, sizeof(dir), NULL) == 0)
			fs_remove_tree(dir, NULL);
		store_warm_delete(c->store, list[i].image, NULL);
		log_info("reconcile: the warming of image '%s' did not finish",
		    list[i].image);
		if (list[i].vm[0] != '\0' &&
		    store_vm_get(c->store, list[i].vm, &vm, NULL) == 0 &&
		    core_vm_action(c, list[i].vm, VM_ACT_DELETE, true, 0, op_id,
		    &err) < 0)
			log_warnx("reconcile: deleting vm '%s': %s", list[i].vm,
			    err.msg);
	}
	free(list);
}
