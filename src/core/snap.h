/* snap.h - private to core's snapshot files: where a snapshot's files
 * are and what its manifest says (snapfiles.c). */
#ifndef BANGER_CORE_SNAP_H
#define BANGER_CORE_SNAP_H

#include "core/internal.h"

/* The files of a snapshot, in its directory. */
#define SNAP_STATE "vmstate"
#define SNAP_MEMORY "memory"
#define SNAP_ROOTFS "rootfs.ext4"
#define SNAP_WORK "work.ext4"
#define SNAP_MANIFEST "manifest.json"

/* What a manifest records; also what the host and the VM are now, to
 * check a manifest against. */
struct snap_facts {
	char name[VM_NAME_MAX];
	char created_at[32];
	char vm_id[VM_ID_LEN + 1];
	char vm_name[VM_NAME_MAX];
	char image[VM_NAME_MAX];
	int vcpus;
	int memory_mib;
	char vmm[16];
	char vmm_version[32];
	char cpu_flags[65];        /* SHA-256 of the host CPU's flags */
	char kernel[PATH_MAX];
	char kernel_sha256[65];
	bool network;              /* the guest had a network interface */
};

/* <VM dir>/snapshots/NAME, and a file in a snapshot's directory. */
int snap_dir(struct core *c, const char *vm_id, const char *name, char *out,
    size_t outsz, struct bn_err *err);
int snap_file(const char *dir, const char *file, char *out, size_t outsz,
    struct bn_err *err);
/* The SHA-256 of this host CPU's flags (/proc/cpuinfo). */
int snap_cpu_flags(char hex[65], struct bn_err *err);
/* The host and VM facts a snapshot of vm taken now would record, all but
 * name, created_at and vmm_version (core/life_snap.c fills those). */
int snap_facts_now(struct core *c, const struct vm *vm, struct snap_facts *f,
    struct bn_err *err);
/* Write dir's manifest.json (0600, atomically) from f and the files in
 * dir; *ret_bytes what the snapshot holds on disk. */
int snap_manifest_write(const char *dir, const struct snap_facts *f,
    long long *ret_bytes, struct bn_err *err);
/* Read dir's manifest into *ret and check it against now (VMM, vcpus and
 * memory, CPU flags, kernel) and the files against it (sizes, the state
 * and memory checksums): BN_ESNAP_UNUSABLE saying what does not match. */
int snap_manifest_check(const char *dir, const struct snap_facts *now,
    struct snap_facts *ret, struct bn_err *err);

/* At daemon start, what an interrupted snapshot or restore left of vm
 * (alive: its VMM still runs) is cleared (snapshots.c). */
void snap_reconcile(struct core *c, const struct vm *vm, bool alive);

#endif
