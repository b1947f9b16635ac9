/* host.c - the host's disk as VMs see it: free space, what sparse VM disks
 * may still claim ("committed"), and the reserve that creates keep.
 *
 * VM disks are sparse copies, so a host can promise more than it has.
 * Creates and starts keep disk_reserve_mib free; a QEMU VM that still
 * hits a full disk is paused by QEMU (werror=enospc) and shown paused with
 * host_disk_full until it is resumed.  Firecracker cannot pause on ENOSPC
 * (the guest gets the I/O error), so for it the reserve is the only guard.
 */
#include "core/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/util.h"

/* How far a sparse file may still grow: its length minus what it has. */
static long long
file_committed(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	long long left = (long long)st.st_size - (long long)st.st_blocks * 512;
	return left > 0 ? left : 0;
}

/* Blocks a file really holds (a sparse copy allocates just these). */
static long long
file_allocated(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_blocks * 512 : 0;
}

/* Free bytes where VM disks live: <state>/vms, which may be a file
 * system of its own; the state dir itself before the first VM. */
static long long
state_free(struct core *c)
{
	struct statvfs vfs;
	char vms[PATH_MAX + 8];

	snprintf(vms, sizeof(vms), "%s/vms", c->cfg.state_dir);
	if (statvfs(vms, &vfs) < 0 && statvfs(c->cfg.state_dir, &vfs) < 0)
		return -1;
	return (long long)vfs.f_bavail * (long long)vfs.f_frsize;
}

int
core_host_capacity(struct core *c, struct host_capacity *ret, json_t *per_vm,
    struct bn_err *err)
{
	struct vm *vms = NULL;
	int n = 0;

	memset(ret, 0, sizeof(*ret));
	ret->reserve = (long long)c->cfg.disk_reserve_mib << 20;
	ret->free = state_free(c);
	if (ret->free < 0)
		return bn_fail(err, BN_ESYS, errno, "statvfs %s", c->cfg.state_dir);
	if (store_vm_list(c->store, &vms, &n, err) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		char dir[PATH_MAX], path[PATH_MAX + 16];
		long long vm_left = 0;
		if (vm_dir(c, vms[i].id, dir, sizeof(dir), NULL) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/rootfs.ext4", dir);
		vm_left += file_committed(path);
		snprintf(path, sizeof(path), "%s/work.ext4", dir);
		vm_left += file_committed(path);
		ret->committed += vm_left;
		if (per_vm != NULL)
			json_array_append_new(per_vm, json_pack("{s:s, s:I}", "name",
			    vms[i].name, "committed_bytes", (json_int_t)vm_left));
	}
	free(vms);
	return 0;
}

int
core_host_room(struct core *c, long long need, const char *what,
    struct bn_err *err)
{
	long long reserve = (long long)c->cfg.disk_reserve_mib << 20;
	long long free_b = state_free(c);

	if (reserve == 0 || free_b < 0)
		return 0;
	if (free_b - need >= reserve)
		return 0;
	bn_fail(err, BN_EHOST_DISK_FULL, 0, "%s needs %lld MiB on %s, which has "
	    "%lld MiB free of which %d MiB are kept in reserve", what,
	    (need + (1 << 20) - 1) >> 20, c->cfg.state_dir, free_b >> 20,
	    c->cfg.disk_reserve_mib);
	return bn_err_hint(err, "free space on the host (delete unused VMs or "
	    "images), or lower disk_reserve_mib in config.json");
}

long long
core_image_allocated(const struct image_view *iv)
{
	return file_allocated(iv->img.rootfs) + (iv->img.work_seed[0] ?
	    file_allocated(iv->img.work_seed) : 0);
}

/* What VMs ask of the host: those that run (or are paused, holding
 * their memory) and all that exist. */
static json_t *
allocated_json(struct core *c, struct bn_err *err)
{
	struct vm *vms = NULL;
	int n = 0;
	long long run[3] = { 0 }, all[4] = { 0 };  /* vms, vcpus, mib, gib */

	if (store_vm_list(c->store, &vms, &n, err) < 0)
		return NULL;
	for (int i = 0; i < n; i++) {
		const struct vm *v = &vms[i];
		all[0]++;
		all[1] += v->vcpus;
		all[2] += v->memory_mib;
		all[3] += v->disk_gib;
		if (v->state == VM_RUNNING || v->state == VM_PAUSED ||
		    v->state == VM_STARTING || v->state == VM_STOPPING) {
			run[0]++;
			run[1] += v->vcpus;
			run[2] += v->memory_mib;
		}
	}
	free(vms);
	return json_pack("{s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}}",
	    "running", "vms", (json_int_t)run[0], "vcpus", (json_int_t)run[1],
	    "memory_mib", (json_int_t)run[2],
	    "defined", "vms", (json_int_t)all[0], "vcpus", (json_int_t)all[1],
	    "memory_mib", (json_int_t)all[2], "disk_gib", (json_int_t)all[3]);
}

json_t *
core_host_json(struct core *c, struct bn_err *err)
{
	struct host_capacity hc;
	struct statvfs vfs;
	json_t *per_vm = json_array(), *alloc;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (core_host_capacity(c, &hc, per_vm, err) < 0 ||
	    (alloc = allocated_json(c, err)) == NULL) {
		json_decref(per_vm);
		return NULL;
	}
	long long disk = statvfs(c->cfg.state_dir, &vfs) == 0 ?
	    (long long)vfs.f_blocks * (long long)vfs.f_frsize : 0;
	return json_pack("{s:s, s:I, s:I, s:I, s:b, s:o, "
	    "s:{s:i, s:I, s:I, s:i}, s:o}",
	    "state_dir", c->cfg.state_dir, "free_bytes", (json_int_t)hc.free,
	    "committed_bytes", (json_int_t)hc.committed,
	    "reserve_bytes", (json_int_t)hc.reserve,
	    "overcommitted", hc.committed > hc.free - hc.reserve,
	    "vms", per_vm,
	    "capacity", "vcpus", (int)(cpus > 0 ? cpus : 1),
	    "memory_mib", (json_int_t)c->host_mem_mib,
	    "disk_bytes", (json_int_t)disk, "max_vms", c->cfg.max_vms,
	    "allocated", alloc);
}
