/* life_snap.c - the steps of a snapshot and of a restore.
 *
 * A snapshot holds the guest still (a running VM is paused for it and
 * resumed after, also when the snapshot fails), has the VMM write its
 * state and memory, copies both disks while nothing writes to them, and
 * writes the manifest last: a snapshot without a manifest is not ready
 * and is never restored.
 *
 * A restore checks the whole snapshot (manifest against this host and
 * VM, checksums) before it touches anything, ends whatever the VM is
 * running (its state is what the restore replaces), puts the snapshot's
 * disk copies in place while keeping the VM's own disks aside until the
 * guest answers, then starts a fresh VMM from the saved state with the
 * VM's own TAP and vsock socket.  A failure at any step brings the VM's
 * disks back and leaves it stopped. */
#include "core/life.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"

/* ---- snapshot ---- */

static int
snap_paths(const struct life *l, char state[PATH_MAX], char mem[PATH_MAX],
    struct bn_err *err)
{
	if (snap_file(l->snapdir, SNAP_STATE, state, PATH_MAX, err) < 0 ||
	    snap_file(l->snapdir, SNAP_MEMORY, mem, PATH_MAX, err) < 0)
		return -1;
	return 0;
}

int
snap_check_run(struct life *l, struct bn_err *err)
{
	struct vm *vm = &l->vm;
	const struct vmm_driver *drv = vmm_by_name(vm->vmm);
	char why[512];

	if (vm->state != VM_RUNNING && !(vm->state == VM_PAUSED &&
	    strcmp(vm->paused_reason, "user") == 0)) {
		bn_fail(err, BN_ESTATE, 0, "vm '%s' is %s; a snapshot needs it "
		    "running (or paused by a user)", vm->name,
		    vm->state == VM_PAUSED ? "paused by its VMM" :
		    vm_state_name(vm->state));
		return bn_err_hint(err, "start it first: banger vm start %s",
		    vm->name);
	}
	if (vm_ctl_params(l->c, vm, &l->p, err) < 0)
		return -1;
	l->p.api_timeout_ms = l->c->cfg.vmm_api_timeout_ms;
	l->p.memory_mib = vm->memory_mib;
	if (drv->snapshot == NULL) {
		struct bn_err ignored;
		if (drv->snapshot_blocked == NULL ||
		    drv->snapshot_blocked(&l->p, why, sizeof(why), &ignored) < 0)
			snprintf(why, sizeof(why), "not supported");
		bn_fail(err, BN_EUNSUPPORTED, 0, "%s cannot save vm '%s': %.400s",
		    drv->name, vm->name, why);
		return bn_err_hint(err, "snapshots need Firecracker (set \"vmm\": "
		    "\"firecracker\" and create the VM again)");
	}
	long long need = (long long)vm->memory_mib << 20;
	need += fs_allocated(l->p.rootfs) + fs_allocated(l->p.workdisk);
	if (core_host_room(l->c, need, "a snapshot", err) < 0)
		return -1;
	if (snap_facts_now(l->c, vm, &l->facts, err) < 0)
		return -1;
	snprintf(l->facts.name, sizeof(l->facts.name), "%s", l->req->snap);
	if (drv->version != NULL &&
	    drv->version(&l->p, l->facts.vmm_version,
	    sizeof(l->facts.vmm_version), err) < 0)
		return -1;
	return 0;
}

/* The snapshot's row (creating) and its empty directory. */
int
snap_record_run(struct life *l, struct bn_err *err)
{
	struct snapshot *sn = &l->sn;
	char parent[PATH_MAX], vmdir[PATH_MAX];

	if (vm_dir(l->c, l->vm.id, vmdir, sizeof(vmdir), err) < 0 ||
	    path_join(parent, sizeof(parent), err, "%s/snapshots", vmdir) < 0 ||
	    snap_dir(l->c, l->vm.id, l->req->snap, l->snapdir,
	    sizeof(l->snapdir), err) < 0)
		return -1;
	memset(sn, 0, sizeof(*sn));
	snprintf(sn->vm_id, sizeof(sn->vm_id), "%s", l->vm.id);
	snprintf(sn->name, sizeof(sn->name), "%s", l->req->snap);
	sn->state = SNAP_CREATING;
	snprintf(sn->vmm, sizeof(sn->vmm), "%s", l->facts.vmm);
	snprintf(sn->vmm_version, sizeof(sn->vmm_version), "%s",
	    l->facts.vmm_version);
	sn->vcpus = l->vm.vcpus;
	sn->memory_mib = l->vm.memory_mib;
	time_rfc3339(sn->created_at);
	snprintf(l->facts.created_at, sizeof(l->facts.created_at), "%s",
	    sn->created_at);
	if (mkdir(parent, 0700) < 0 && errno != EEXIST)
		return bn_fail(err, BN_ESYS, errno, "mkdir %s", parent);
	if (store_snap_insert(l->c->store, sn, err) < 0)
		return -1;
	/* No row, so a directory there is a crash's leftover. */
	fs_remove_tree(l->snapdir, NULL);
	if (mkdir(l->snapdir, 0700) < 0) {
		bn_fail(err, BN_ESYS, errno, "mkdir %s", l->snapdir);
		store_snap_delete(l->c->store, sn->vm_id, sn->name, NULL);
		return -1;
	}
	return 0;
}

void
snap_record_undo(struct life *l, const struct bn_err *why)
{
	(void)why;
	fs_remove_tree(l->snapdir, NULL);
	store_snap_delete(l->c->store, l->sn.vm_id, l->sn.name, NULL);
}

bool
snap_vm_running(const struct life *l)
{
	return l->vm.state == VM_RUNNING;
}

int
snap_pause_run(struct life *l, struct bn_err *err)
{
	const struct vmm_driver *drv = vmm_by_name(l->vm.vmm);

	if (drv->pause == NULL || drv->pause(&l->p, err) < 0)
		return drv->pause == NULL ? bn_fail(err, BN_EUNSUPPORTED, 0,
		    "%s cannot pause vm '%s'", drv->name, l->vm.name) : -1;
	l->snap_paused = true;
	snprintf(l->vm.paused_reason, sizeof(l->vm.paused_reason), "snapshot");
	vm_set_state_ev(l->c, &l->vm, VM_PAUSED, json_pack("{s:s}", "reason",
	    "snapshot"));
	return 0;
}

/* The guest runs on (and its clock is set) whether or not the snapshot
 * was made. */
static int
snap_unpause(struct life *l, struct bn_err *err)
{
	const struct vmm_driver *drv = vmm_by_name(l->vm.vmm);
	long long step_ms = 0;
	struct bn_err cerr;

	if (drv->resume(&l->p, err) < 0)
		return -1;
	l->snap_paused = false;
	l->vm.paused_reason[0] = '\0';
	vm_set_state_ev(l->c, &l->vm, VM_RUNNING, json_pack("{s:s}", "reason",
	    "snapshot_done"));
	if (agent_set_clock(l->c, &l->vm, &l->p, &step_ms, &cerr) < 0)
		log_warnx("vm '%s': clock not corrected after the snapshot: %s",
		    l->vm.name, cerr.msg);
	return 0;
}

void
snap_pause_undo(struct life *l, const struct bn_err *why)
{
	struct bn_err err;

	(void)why;
	if (l->snap_paused && snap_unpause(l, &err) < 0)
		log_warnx("vm '%s': not resumed after a failed snapshot: %s",
		    l->vm.name, err.msg);
}

int
snap_save_run(struct life *l, struct bn_err *err)
{
	const struct vmm_driver *drv = vmm_by_name(l->vm.vmm);
	char state[PATH_MAX], mem[PATH_MAX];

	if (snap_paths(l, state, mem, err) < 0 ||
	    drv->snapshot(&l->p, state, mem, err) < 0)
		return -1;
	/* The VMM made them with its own umask: a guest's memory is the
	 * user's alone. */
	if (chmod(state, 0600) < 0 || chmod(mem, 0600) < 0)
		return bn_fail(err, BN_ESYS, errno, "chmod %s", l->snapdir);
	return 0;
}

int
snap_copy_run(struct life *l, struct bn_err *err)
{
	char root[PATH_MAX], work[PATH_MAX];

	if (snap_file(l->snapdir, SNAP_ROOTFS, root, sizeof(root), err) < 0 ||
	    snap_file(l->snapdir, SNAP_WORK, work, sizeof(work), err) < 0)
		return -1;
	if (fs_copy_sparse(l->p.rootfs, root, 0600, err) < 0 ||
	    fs_copy_sparse(l->p.workdisk, work, 0600, err) < 0)
		return -1;
	return 0;
}

int
snap_manifest_run(struct life *l, struct bn_err *err)
{
	if (snap_manifest_write(l->snapdir, &l->facts, &l->sn.bytes, err) < 0)
		return -1;
	l->sn.state = SNAP_READY;
	if (store_snap_update(l->c->store, &l->sn, err) < 0)
		return -1;
	log_info("vm '%s': snapshot '%s' taken (%lld bytes)", l->vm.name,
	    l->sn.name, l->sn.bytes);
	l->result = snapshot_to_json(l->vm.name, &l->sn);
	return 0;
}

bool
snap_paused_here(const struct life *l)
{
	return l->snap_paused;
}

int
snap_resume_run(struct life *l, struct bn_err *err)
{
	return snap_unpause(l, err);
}

/* ---- restore ---- */

int
restore_check_run(struct life *l, struct bn_err *err)
{
	struct vm *vm = &l->vm;
	struct snap_facts now;
	char root[PATH_MAX], work[PATH_MAX];

	if (vm->state == VM_CREATING || vm->state == VM_STARTING ||
	    vm->state == VM_STOPPING)
		return bn_fail(err, BN_ESTATE, 0, "vm '%s' is %s", vm->name,
		    vm_state_name(vm->state));
	if (store_snap_get(l->c->store, vm->id, l->req->snap, &l->sn, err) < 0)
		return -1;
	if (l->sn.state != SNAP_READY)
		return bn_fail(err, BN_ESNAP_UNUSABLE, 0, "snapshot '%s' was "
		    "never finished", l->sn.name);
	if (snap_dir(l->c, vm->id, l->sn.name, l->snapdir, sizeof(l->snapdir),
	    err) < 0 || snap_facts_now(l->c, vm, &now, err) < 0)
		return -1;
	snprintf(now.name, sizeof(now.name), "%s", l->sn.name);
	if (snap_manifest_check(l->snapdir, &now, &l->facts, err) < 0)
		return -1;
	const struct vmm_driver *drv = vmm_by_name(vm->vmm);
	if (drv->restore == NULL)
		return bn_fail(err, BN_EUNSUPPORTED, 0, "%s cannot restore a "
		    "snapshot", drv->name);
	if (vmm_pick_kind(l->c, drv->name, &l->req->choice, err) < 0)
		return -1;
	if (snap_file(l->snapdir, SNAP_ROOTFS, root, sizeof(root), err) < 0 ||
	    snap_file(l->snapdir, SNAP_WORK, work, sizeof(work), err) < 0)
		return -1;
	return core_host_room(l->c, fs_allocated(root) + fs_allocated(work),
	    "a restore", err);
}

/* What the VM runs now is what the restore replaces: ended at once, no
 * shutdown (its disks are set aside, not kept). */
int
discard_run(struct life *l, struct bn_err *err)
{
	struct vm *vm = &l->vm;

	if (vm_ctl_params(l->c, vm, &l->p, err) < 0)
		return -1;
	vmm_by_name(vm->vmm)->kill(&l->p, vm->pid);
	vm->pid = 0;
	vm->paused_reason[0] = '\0';
	core_net_vm_down(l->c, vm);
	fwd_close(l->c, vm->name);
	cg_remove(l->c, vm);
	snprintf(vm->health, sizeof(vm->health), "unknown");
	time_rfc3339(vm->stopped_at);
	vm_set_state_ev(l->c, vm, VM_STOPPED, json_pack("{s:s}", "reason",
	    "restore"));
	if (vm->nat)
		core_net_nat_sync(l->c, NULL);
	return 0;
}

struct disk_pair {
	char live[PATH_MAX], prev[PATH_MAX], copy[PATH_MAX];
};

static int
disk_pairs(struct life *l, struct disk_pair d[2], struct bn_err *err)
{
	static const char *const names[] = { SNAP_ROOTFS, SNAP_WORK };
	char dir[PATH_MAX];

	if (vm_dir(l->c, l->vm.id, dir, sizeof(dir), err) < 0)
		return -1;
	for (int i = 0; i < 2; i++)
		if (path_join(d[i].live, PATH_MAX, err, "%s/%s", dir, names[i]) < 0 ||
		    path_join(d[i].prev, PATH_MAX, err, "%s.prev", d[i].live) < 0 ||
		    snap_file(l->snapdir, names[i], d[i].copy, PATH_MAX, err) < 0)
			return -1;
	return 0;
}

/* Back to the VM's own disks: the copies go, the set-aside ones return. */
static void
disks_back(const struct disk_pair d[2])
{
	for (int i = 0; i < 2; i++)
		if (access(d[i].prev, F_OK) == 0) {
			unlink(d[i].live);
			if (rename(d[i].prev, d[i].live) < 0)
				log_warn("restore: putting back %s", d[i].live);
		}
}

int
restore_disks_run(struct life *l, struct bn_err *err)
{
	struct disk_pair d[2];

	if (disk_pairs(l, d, err) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		unlink(d[i].prev);   /* an earlier crash's leftover */
		if (rename(d[i].live, d[i].prev) < 0) {
			bn_fail(err, BN_ESYS, errno, "set aside %s", d[i].live);
			disks_back(d);
			return -1;
		}
	}
	l->disks_swapped = true;
	for (int i = 0; i < 2; i++)
		if (fs_copy_sparse(d[i].copy, d[i].live, 0600, err) < 0) {
			disks_back(d);
			l->disks_swapped = false;
			return -1;
		}
	return 0;
}

void
restore_disks_undo(struct life *l, const struct bn_err *why)
{
	struct disk_pair d[2];

	(void)why;
	if (l->disks_swapped && disk_pairs(l, d, NULL) == 0)
		disks_back(d);
	l->disks_swapped = false;
}

/* A fresh VMM of the version that took it loads the saved state. */
int
load_run(struct life *l, struct bn_err *err)
{
	const struct vmm_driver *drv = l->req->choice.drv;
	char state[PATH_MAX], mem[PATH_MAX], version[32] = "";

	if (snap_paths(l, state, mem, err) < 0)
		return -1;
	if (drv->version != NULL && l->facts.vmm_version[0] != '\0') {
		/* The API answers once the process is up. */
		long long deadline = time_mono_ms() + l->c->cfg.vmm_api_timeout_ms;
		struct bn_err verr;
		while (drv->version(&l->p, version, sizeof(version), &verr) < 0 &&
		    time_mono_ms() < deadline && proc_alive(l->pid))
			sleep_ms(10);
		if (strcmp(version, l->facts.vmm_version) != 0)
			return bn_fail(err, BN_ESNAP_UNUSABLE, 0, "snapshot '%s' "
			    "was taken by %s %s, this host runs %s %s",
			    l->sn.name, drv->name, l->facts.vmm_version, drv->name,
			    version[0] ? version : "(no answer)");
	}
	return drv->restore(&l->p, l->pid, state, mem, err);
}

/* The guest's clock is where the snapshot left it. */
int
clock_run(struct life *l, struct bn_err *err)
{
	long long step_ms = 0;
	struct bn_err cerr;

	(void)err;
	if (agent_set_clock(l->c, &l->vm, &l->p, &step_ms, &cerr) < 0)
		log_warnx("vm '%s': clock not set after the restore: %s",
		    l->vm.name, cerr.msg);
	else
		log_info("vm '%s': restored from '%s', clock stepped %lld ms",
		    l->vm.name, l->sn.name, step_ms);
	return 0;
}

/* The restored VM answers: its old disks can go. */
int
keep_disks_run(struct life *l, struct bn_err *err)
{
	struct disk_pair d[2];

	if (disk_pairs(l, d, err) < 0)
		return -1;
	for (int i = 0; i < 2; i++)
		unlink(d[i].prev);
	l->disks_swapped = false;
	return 0;
}

/* ---- clone ---- */

/* The source's snapshot, checked as a restore checks it, for a VM of
 * the snapshot's shape on this host. */
int
clone_check_run(struct life *l, struct bn_err *err)
{
	struct snap_facts now;
	char root[PATH_MAX], work[PATH_MAX];

	if ((l->req->warm ? warm_dir(l->c, l->req->iv.img.name, l->snapdir,
	    sizeof(l->snapdir), err) : snap_dir(l->c, l->req->src_id,
	    l->req->snap, l->snapdir, sizeof(l->snapdir), err)) < 0 ||
	    snap_facts_now(l->c, &l->vm, &now, err) < 0)
		return -1;
	snprintf(now.vmm, sizeof(now.vmm), "%s", l->req->choice.drv->name);
	snprintf(now.name, sizeof(now.name), "%s", l->req->snap);
	if (snap_manifest_check(l->snapdir, &now, &l->facts, err) < 0)
		return -1;
	if (l->req->choice.drv->restore == NULL)
		return bn_fail(err, BN_EUNSUPPORTED, 0, "%s cannot load a "
		    "snapshot", l->req->choice.drv->name);
	snprintf(l->sn.name, sizeof(l->sn.name), "%s", l->req->snap);
	if (snap_file(l->snapdir, SNAP_ROOTFS, root, sizeof(root), err) < 0 ||
	    snap_file(l->snapdir, SNAP_WORK, work, sizeof(work), err) < 0)
		return -1;
	return core_host_room(l->c, fs_allocated(root) + fs_allocated(work),
	    "a clone", err);
}

/* The clone's own copies of the snapshot's disks, in its own directory
 * (Firecracker opens them relative to it). */
int
clone_disks_run(struct life *l, struct bn_err *err)
{
	static const char *const names[] = { SNAP_ROOTFS, SNAP_WORK };
	char from[PATH_MAX], to[PATH_MAX];

	if (vm_dir(l->c, l->vm.id, l->dir, sizeof(l->dir), err) < 0)
		return -1;
	if (mkdir(l->dir, 0700) < 0)
		return bn_fail(err, BN_ESYS, errno, "mkdir %s", l->dir);
	for (int i = 0; i < 2; i++)
		if (snap_file(l->snapdir, names[i], from, sizeof(from), err) < 0 ||
		    path_join(to, sizeof(to), err, "%s/%s", l->dir, names[i]) < 0 ||
		    fs_copy_sparse(from, to, 0600, err) < 0) {
			fs_remove_tree(l->dir, NULL);
			return -1;
		}
	return 0;
}

void
clone_disks_undo(struct life *l, const struct bn_err *why)
{
	(void)why;
	fs_remove_tree(l->dir, NULL);
}

/* The guest still thinks it is the VM the snapshot was taken of: its
 * agent gives it the clone's name, MAC, address, machine-id, host keys
 * and a fresh RNG seed before anyone can reach it by name. */
int
reidentify_run(struct life *l, struct bn_err *err)
{
	char machine_id[33], seed[129], body[512];
	struct in_addr mask;
	int status = 0, prefix = 0;
	json_t *doc = NULL;

	if (!(agent_caps(l->c, l->p.vsock_uds, NULL) & VSOCK_CAP_IDENTITY)) {
		bn_fail(err, BN_EUNSUPPORTED, 0, "the agent of image '%s' cannot "
		    "give a clone its own identity (it predates POST /identity)",
		    l->vm.image);
		return bn_err_hint(err, "rebuild the image, then take the "
		    "snapshot again");
	}
	if (l->net.ip[0] == '\0')
		return bn_fail(err, BN_ESTATE, 0, "a clone needs the network "
		    "(its address is the one thing it must not share)");
	if (inet_pton(AF_INET, l->net.netmask, &mask) != 1)
		return bn_fail(err, BN_EINTERNAL, 0, "netmask %s", l->net.netmask);
	for (uint32_t m = ntohl(mask.s_addr); m & 0x80000000u; m <<= 1)
		prefix++;
	if (random_hex(machine_id, 16, err) < 0 || random_hex(seed, 64, err) < 0)
		return -1;
	snprintf(body, sizeof(body), "hostname=%s&mac=%s&address=%s/%d&"
	    "gateway=%s&machine_id=%s&seed=%s", l->vm.name, l->net.mac,
	    l->net.ip, prefix, l->net.gateway, machine_id, seed);
	if (vsock_agent_call(l->p.vsock_uds, agent_port(l->c), "POST",
	    "/identity", body, 30000, &status, &doc, err) < 0)
		return bn_err_prefix(err, "giving the clone its identity");
	const char *msg = json_string_value(json_object_get(doc, "error"));
	if (status != 200)
		bn_fail(err, BN_EVMM, 0, "the agent answered %d to the clone's "
		    "identity: %s", status, msg ? msg : "");
	json_decref(doc);
	if (status != 200)
		return -1;
	log_info("vm '%s': cloned from %s, now %s", l->vm.name, l->sn.name,
	    l->net.ip);
	return 0;
}
