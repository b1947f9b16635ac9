/* vm.c - the VM entry points: requests are checked here and run as
 * operations whose steps live in lifecycle.c; patch, bulk actions,
 * health, SSH details and the console.
 *
 * Every action runs as an operation in its own thread and holds the VM's
 * lock, so actions on one VM are serialized and different VMs proceed in
 * parallel. */
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
#include "common/wire.h"
#include "guest/guest.h"

int
vm_action_parse(const char *s, enum vm_action *ret)
{
	static const char *const names[] = { "start", "stop", "restart", "delete",
		"set", "pause", "resume" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum vm_action)i;
			return 0;
		}
	return -1;
}

/* ---- entry points ---- */

int
core_vm_get(struct core *c, const char *name, struct vm *ret, struct bn_err *err)
{
	if (name_check("vm", name, err) < 0)
		return -1;
	return store_vm_get(c->store, name, ret, err);
}

/* What needs a guest (ssh, exec): the VM, or BN_ESTATE unless it runs. */
int
vm_get_running(struct core *c, const char *name, struct vm *ret,
    struct bn_err *err)
{
	if (core_vm_get(c, name, ret, err) < 0)
		return -1;
	if (ret->state != VM_RUNNING) {
		bn_fail(err, BN_ESTATE, 0, "vm '%s' is %s, not running", name,
		    vm_state_name(ret->state));
		return bn_err_hint(err, "start it first: banger vm start %s", name);
	}
	return 0;
}

int
core_vm_list(struct core *c, struct vm **ret, int *ret_n, struct bn_err *err)
{
	return store_vm_list(c->store, ret, ret_n, err);
}

/* The sizes a request asks for, checked against the one table of limits
 * (core/config.h) and this host's memory.  With defaults, unset sizes
 * become config.json's defaults; without, they stay unset. */
static int
vm_sizes(struct core *c, long long *vcpus, long long *memory_mib,
    long long *disk_gib, bool defaults, struct bn_err *err)
{
	const struct {
		const char *field;
		long long *v, lo, hi, def;
	} f[] = {
		{ "vcpus", vcpus, VM_VCPUS_MIN, VM_VCPUS_MAX,
		    c->cfg.default_vcpus },
		{ "memory_mib", memory_mib, VM_MEMORY_MIB_MIN, VM_MEMORY_MIB_MAX,
		    c->cfg.default_memory_mib },
		{ "disk_gib", disk_gib, VM_DISK_GIB_MIN, VM_DISK_GIB_MAX,
		    c->cfg.default_disk_gib },
	};

	for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
		if (*f[i].v == VM_SIZE_UNSET) {
			if (defaults)
				*f[i].v = f[i].def;
			continue;
		}
		if (*f[i].v < f[i].lo || *f[i].v > f[i].hi) {
			bn_fail(err, BN_EINVAL, 0, "field '%s' must be between %lld "
			    "and %lld (got %lld)", f[i].field, f[i].lo, f[i].hi,
			    *f[i].v);
			return bn_err_detail(err, "field", f[i].field);
		}
	}
	if (*memory_mib > c->host_mem_mib) {
		bn_fail(err, BN_EINVAL, 0, "memory_mib %lld is more than this host "
		    "has (%lld MiB)", *memory_mib, (long long)c->host_mem_mib);
		return bn_err_detail(err, "field", "memory_mib");
	}
	return 0;
}

/* A clone of "vm@snap": the snapshot's shape, image and VMM.  Sizes the
 * request gives must be the snapshot's (its memory holds a guest of that
 * shape); the disk is the copy's. */
static int
clone_source(struct core *c, const struct vm_create_req *req,
    struct life_req *lr, long long *vcpus, long long *memory_mib,
    long long *disk_gib, struct bn_err *err)
{
	const char *at = strchr(req->from, '@');
	char src[VM_NAME_MAX];
	struct vm sv;
	struct snapshot sn;

	if (at == NULL || (size_t)(at - req->from) >= sizeof(src)) {
		bn_fail(err, BN_EINVAL, 0, "'from' must be VM@SNAPSHOT");
		return bn_err_detail(err, "field", "from");
	}
	snprintf(src, sizeof(src), "%.*s", (int)(at - req->from), req->from);
	if (name_check("vm", src, err) < 0 || name_check("snapshot", at + 1,
	    err) < 0 || store_vm_get(c->store, src, &sv, err) < 0 ||
	    store_snap_get(c->store, sv.id, at + 1, &sn, err) < 0)
		return -1;
	if (sn.state != SNAP_READY)
		return bn_fail(err, BN_ESNAP_UNUSABLE, 0, "snapshot '%s' of vm "
		    "'%s' was never finished", sn.name, src);
	if ((req->vcpus != VM_SIZE_UNSET && req->vcpus != sn.vcpus) ||
	    (req->memory_mib != VM_SIZE_UNSET && req->memory_mib != sn.memory_mib) ||
	    (req->disk_gib != VM_SIZE_UNSET && req->disk_gib != sv.disk_gib)) {
		bn_fail(err, BN_EINVAL, 0, "a clone of '%s' has %d vcpus, %d MiB "
		    "and a %d GiB disk, as the snapshot holds", req->from,
		    sn.vcpus, sn.memory_mib, sv.disk_gib);
		return bn_err_hint(err, "leave vcpus, memory_mib and disk_gib "
		    "out, or change them on the clone once it is stopped");
	}
	*vcpus = sn.vcpus;
	*memory_mib = sn.memory_mib;
	*disk_gib = sv.disk_gib;
	lr->kind = LIFE_CLONE;
	snprintf(lr->snap, sizeof(lr->snap), "%s", sn.name);
	snprintf(lr->src_id, sizeof(lr->src_id), "%s", sv.id);
	snprintf(lr->iv.img.name, sizeof(lr->iv.img.name), "%s", sv.image);
	return vmm_pick_kind(c, sn.vmm, &lr->choice, err);
}

/* Everything a create decides before its operation: the request checked,
 * sizes, image, VMM and whether it boots or restores the image's warm
 * snapshot; the VM recorded (state creating).  *ret is the operation's
 * request. */
int
vm_create_prepare(struct core *c, const struct vm_create_req *req,
    struct life_req **ret, struct bn_err *err)
{
	char dir[PATH_MAX];
	struct vmm_params *p = NULL;
	int count;

	long long vcpus = req->vcpus, memory_mib = req->memory_mib,
	    disk_gib = req->disk_gib;

	if (req->name == NULL)
		return bn_fail(err, BN_EINVAL, 0, "a create needs a name");
	if (name_check("vm", req->name, err) < 0 ||
	    vm_sizes(c, &vcpus, &memory_mib, &disk_gib, req->from == NULL,
	    err) < 0 ||
	    vm_ports_check(c, req->name, req->ports, req->nports, err) < 0)
		return -1;
	struct life_req *lr = xcalloc(1, sizeof(*lr));
	struct image_view *ivp = &lr->iv;
	struct vm *vmp = &lr->vm;
	lr->kind = LIFE_CREATE;
	if (req->from != NULL) {
		if (req->image != NULL) {
			bn_fail(err, BN_EINVAL, 0, "a clone has its snapshot's "
			    "image: give 'image' or 'from', not both");
			bn_err_detail(err, "field", "image");
			goto fail;
		}
		if (clone_source(c, req, lr, &vcpus, &memory_mib, &disk_gib,
		    err) < 0)
			goto fail;
		goto checked;
	}
	if (core_image_get(c, req->image != NULL ? req->image : DEFAULT_IMAGE,
	    ivp, err) < 0)
		goto fail;
	/* The image's files may have changed since it was registered: check
	 * them again where they touch the host, just before use. */
	if (fs_check_ext4_image("rootfs", ivp->img.rootfs, err) < 0 ||
	    (ivp->img.work_seed[0] != '\0' &&
	    fs_check_ext4_image("work_seed", ivp->img.work_seed, err) < 0)) {
		char why[sizeof(err->msg)];
		snprintf(why, sizeof(why), "%s", err->msg);
		bn_fail(err, BN_EIMG_UNAVAIL, 0, "image '%s': %s", ivp->img.name, why);
		bn_err_hint(err, ivp->is_default ? "run 'make runtime-bundle'" :
		    "register the image again with an ext4 rootfs");
		goto fail;
	}
	if (core_host_room(c, core_image_allocated(ivp), "a create", err) < 0)
		goto fail;
	if (vmm_pick(c, &lr->choice, err) < 0)
		goto fail;
	warm_choose(c, req->name, lr, vcpus, memory_mib, disk_gib);
checked:
	if (store_vm_count(c->store, &count, err) < 0)
		goto fail;
	if (count >= c->cfg.max_vms) {
		bn_fail(err, BN_ELIMIT, 0, "this host already has %d vms (max_vms)",
		    count);
		bn_err_hint(err, "delete unused vms or raise max_vms in "
		    "config.json");
		goto fail;
	}

	if (random_hex(vmp->id, VM_ID_LEN / 2, err) < 0)
		goto fail;
	/* Check socket paths fit before promising anything. */
	p = xmalloc(sizeof(*p));
	if (vm_dir(c, vmp->id, dir, sizeof(dir), err) < 0 ||
	    vmm_params_paths(p, dir, err) < 0)
		goto fail;
	snprintf(vmp->name, sizeof(vmp->name), "%s", req->name);
	snprintf(vmp->image, sizeof(vmp->image), "%s", ivp->img.name);
	vmp->vcpus = (int)vcpus;
	vmp->memory_mib = (int)memory_mib;
	vmp->disk_gib = (int)disk_gib;
	vmp->nat = req->nat;
	vmp->limits = req->limits;
	if (vm_limits_check(c, vmp, err) < 0)
		goto fail;
	if (req->nmounts > 0 && req->from != NULL) {
		bn_fail(err, BN_EINVAL, 0, "a clone has its snapshot's devices: "
		    "it cannot add shared folders");
		bn_err_detail(err, "field", WIRE_MOUNTS);
		goto fail;
	}
	vmp->nmounts = req->nmounts;
	if (req->nmounts > 0)
		memcpy(vmp->mounts, req->mounts, sizeof(*req->mounts) *
		    (size_t)req->nmounts);
	if (vm_mounts_host_check(c, vmp->mounts, vmp->nmounts, err) < 0 ||
	    vm_mounts_supported(lr->choice.drv, req->name, vmp->nmounts,
	    err) < 0)
		goto fail;
	vmp->nports = req->nports;
	if (req->nports > 0)
		memcpy(vmp->ports, req->ports, sizeof(*req->ports) *
		    (size_t)req->nports);
	vmp->state = VM_CREATING;
	snprintf(vmp->health, sizeof(vmp->health), "unknown");
	time_rfc3339(vmp->created_at);
	memcpy(vmp->updated_at, vmp->created_at, sizeof(vmp->updated_at));

	/* The CID and the name are taken under one lock so two creates cannot
	 * pick the same CID; the UNIQUE constraints back this up. */
	static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&create_mu);
	int rc = store_vm_free_cid(c->store, &vmp->cid, err);
	if (rc == 0)
		rc = store_vm_insert(c->store, vmp, err);
	pthread_mutex_unlock(&create_mu);
	if (rc < 0)
		goto fail;
	core_emit(c, "vm.created", vmp->name, NULL, vm_to_json(vmp));
	snprintf(lr->name, sizeof(lr->name), "%s", vmp->name);
	free(p);
	*ret = lr;
	return 0;
fail:
	free(p);
	free(lr);
	return -1;
}

int
core_vm_create(struct core *c, const struct vm_create_req *req, char ret_op_id[24],
    struct bn_err *err)
{
	struct life_req *lr;

	if (vm_create_prepare(c, req, &lr, err) < 0)
		return -1;
	/* The operation owns lr from here, whatever op_start returns. */
	if (op_start(c, life_kind_name(lr->kind), lr->name, life_op, lr, free,
	    ret_op_id, err) < 0) {
		store_vm_delete(c->store, req->name, NULL);
		return -1;
	}
	return 0;
}

int
core_vm_action(struct core *c, const char *name, enum vm_action act, bool force,
    int stop_timeout_s, char ret_op_id[24], struct bn_err *err)
{
	static const enum life_kind kinds[] = { LIFE_START, LIFE_STOP,
		LIFE_RESTART, LIFE_DELETE };
	struct vm vm;

	if (core_vm_get(c, name, &vm, err) < 0)
		return -1;
	if (act == VM_ACT_DELETE && !force &&
	    (vm.state == VM_RUNNING || vm.state == VM_STARTING)) {
		bn_fail(err, BN_EVM_RUNNING, 0, "vm '%s' is running", name);
		return bn_err_hint(err, "stop it first, or delete with force "
		    "(banger vm delete --force)");
	}
	if (act == VM_ACT_SET || act == VM_ACT_PAUSE || act == VM_ACT_RESUME)
		return bn_fail(err, BN_EINTERNAL, 0, "not a single-VM operation");
	struct life_req *lr = xcalloc(1, sizeof(*lr));
	lr->kind = kinds[act];
	snprintf(lr->name, sizeof(lr->name), "%s", name);
	lr->force = force;
	lr->grace_s = stop_timeout_s >= 0 ? stop_timeout_s : c->cfg.stop_grace_s;
	if ((act == VM_ACT_START || act == VM_ACT_RESTART) &&
	    vmm_pick(c, &lr->choice, err) < 0) {
		free(lr);
		return -1;
	}
	return op_start(c, life_kind_name(lr->kind), name, life_op, lr, free,
	    ret_op_id, err);
}

int
core_vm_patch(struct core *c, const char *name, const struct vm_patch *req,
    struct vm *ret, struct bn_err *err)
{
	struct vm vm;
	int rc = -1;
	long long vcpus = req->vcpus, memory_mib = req->memory_mib,
	    disk_gib = req->disk_gib;

	if (name_check("vm", name, err) < 0 ||
	    vm_sizes(c, &vcpus, &memory_mib, &disk_gib, false, err) < 0 ||
	    (req->set_ports && vm_ports_check(c, name, req->ports, req->nports,
	    err) < 0))
		return -1;
	/* 0 = unchanged from here on. */
	struct vm_patch pv = *req;
	pv.vcpus = vcpus == VM_SIZE_UNSET ? 0 : vcpus;
	pv.memory_mib = memory_mib == VM_SIZE_UNSET ? 0 : memory_mib;
	pv.disk_gib = disk_gib == VM_SIZE_UNSET ? 0 : disk_gib;
	const struct vm_patch *p = &pv;
	vm_lock(c, name);
	if (store_vm_get(c->store, name, &vm, err) < 0)
		goto out;
	bool sizing = p->vcpus || p->memory_mib || p->disk_gib ||
	    p->set_limits || p->set_mounts;
	if (sizing && vm.state != VM_STOPPED) {
		bn_fail(err, BN_EVM_RUNNING, 0, "vm '%s' is %s; vcpus, memory, "
		    "disk, limits and mounts change only while it is stopped",
		    name, vm_state_name(vm.state));
		bn_err_hint(err, "banger vm stop %s", name);
		goto out;
	}
	/* The new sizes against the limits, before anything changes. */
	struct vm want = vm;
	if (p->vcpus)
		want.vcpus = (int)p->vcpus;
	if (p->memory_mib)
		want.memory_mib = (int)p->memory_mib;
	if (p->set_limits)
		want.limits = p->limits;
	if (vm_limits_check(c, &want, err) < 0)
		goto out;
	if (p->set_mounts) {
		struct vmm_choice ch;
		want.nmounts = p->nmounts;
		if (p->nmounts > 0)
			memcpy(want.mounts, p->mounts, sizeof(*p->mounts) *
			    (size_t)p->nmounts);
		/* Shared on the VMM the VM would start with now. */
		if (vm_mounts_host_check(c, want.mounts, want.nmounts, err) < 0 ||
		    (want.nmounts > 0 && (vmm_pick(c, &ch, err) < 0 ||
		    vm_mounts_supported(ch.drv, name, want.nmounts, err) < 0)))
			goto out;
		memcpy(vm.mounts, want.mounts, sizeof(vm.mounts));
		vm.nmounts = want.nmounts;
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
		vm.disk_gib = (int)p->disk_gib;
	}
	if (p->vcpus)
		vm.vcpus = (int)p->vcpus;
	if (p->memory_mib)
		vm.memory_mib = (int)p->memory_mib;
	if (p->nat >= 0)
		vm.nat = p->nat != 0;
	if (p->set_limits)
		vm.limits = p->limits;
	if (p->set_ports) {
		vm.nports = p->nports;
		if (p->nports > 0)
			memcpy(vm.ports, p->ports, sizeof(*p->ports) *
			    (size_t)p->nports);
		/* A port in use fails the patch before anything changed. */
		if ((vm.state == VM_RUNNING || vm.state == VM_PAUSED) &&
		    fwd_apply(c, &vm, err) < 0)
			goto out;
	}
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

/* ---- health and console ---- */

static int
vm_probe_health(struct core *c, const char *name, struct vsock_health *ret,
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

json_t *
core_vm_health(struct core *c, const char *name, struct bn_err *err)
{
	struct vsock_health h;
	char checked[32];

	if (vm_probe_health(c, name, &h, checked, err) < 0)
		return NULL;
	json_t *j = health_to_json(name, &h, checked);
	vsock_health_clear(&h);
	return j;
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

	if (vm_get_running(c, name, &vm, err) < 0)
		return -1;
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
	vm_host_keys_read(real, &ret->host_keys);
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
