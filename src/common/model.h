/* model.h - the records bangerd keeps and serves: VMs, images and
 * operations.  The store persists them, core acts on them, the API shows
 * them; defined here so that each floor sees them without reaching into
 * the one below it. */
#ifndef BANGER_MODEL_H
#define BANGER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/mountspec.h"
#include "common/portspec.h"

#define VM_NAME_MAX 64
#define VM_ID_LEN 16
#define VM_PORTS_MAX 16

enum vm_state {
	VM_CREATING, VM_STOPPED, VM_STARTING, VM_RUNNING, VM_STOPPING, VM_ERROR,
	VM_PAUSED,   /* the VMM holds the vCPUs (QEMU on a full host disk) */
};

/* Limits on what a VM takes of the host (spec "limits"); 0 is none.
 * cpus and memory_max_mib hold the VM's processes in a cgroup (v2); the
 * rates limit each disk and each direction of the network in the VMM. */
struct vm_limits {
	double cpus;                 /* CPU time, in CPUs (cpu.max) */
	int memory_max_mib;          /* guest memory and VMM (memory.max) */
	long long disk_bytes_per_s;  /* per disk */
	long long disk_ops_per_s;    /* per disk */
	long long net_bytes_per_s;   /* per direction */
};

struct vm {
	char id[VM_ID_LEN + 1];
	char name[VM_NAME_MAX];
	char image[VM_NAME_MAX];
	int vcpus;
	int memory_mib;
	int disk_gib;
	bool nat;
	enum vm_state state;
	char vmm[16];          /* "firecracker", "qemu" or "" */
	pid_t pid;             /* 0 when not running */
	unsigned cid;          /* vsock guest CID, >= 3 */
	char health[16];       /* ok | degraded | unreachable | unknown */
	char last_error[256];
	char created_at[32], started_at[32], stopped_at[32], updated_at[32];
	char tap[16];          /* host TAP while running, "" otherwise */
	char accel[8];         /* "kvm" | "tcg" | "" (not booted yet) */
	char accel_reason[256];
	char ip[16];           /* leased address, "" when none (read-only) */
	/* How the last stop ended: result "clean" (the guest shut down and
	 * its VMM exited) or "forced" (the VMM was ended), "" before any;
	 * method agent | acpi | ctrl_alt_del | exited | kill; how long. */
	char stop_result[8];
	char stop_method[16];
	int stop_ms;
	char paused_reason[32];  /* with VM_PAUSED: host_disk_full */
	/* Host ports bangerd forwards to the guest while it runs. */
	struct vm_port ports[VM_PORTS_MAX];
	int nports;
	struct vm_limits limits;
	/* Host directories the guest mounts (virtio-fs; QEMU only). */
	struct vm_mount mounts[VM_MOUNTS_MAX];
	int nmounts;
};

/* The store's text for limits ("cpus=1.5,memory_max_mib=2048"; "" for
 * none) and back (unknown keys are skipped). */
void vm_limits_format(const struct vm_limits *l, char *buf, size_t len);
void vm_limits_parse(const char *s, struct vm_limits *ret);

enum image_source { IMAGE_BUNDLE, IMAGE_REGISTERED, IMAGE_BUILT };

struct image {
	char name[VM_NAME_MAX];
	enum image_source source;
	bool managed;
	char rootfs[4096];
	char work_seed[4096];  /* "" when none */
	char created_at[32], updated_at[32];
};

enum op_state { OP_PENDING, OP_RUNNING, OP_SUCCEEDED, OP_FAILED };

struct op_row {
	char id[24];
	char kind[24];
	char target[VM_NAME_MAX];
	enum op_state state;
	char stage[32];
	int progress;
	char note[256];      /* for the reader: e.g. why a create booted cold */
	char *error_json;    /* owned, may be NULL */
	char *result_json;   /* owned, may be NULL */
	char created_at[32], updated_at[32], finished_at[32];
};

/* A VM's snapshot: its files live in the VM's directory under
 * snapshots/NAME (state, memory, both disks, manifest.json). */
enum snap_state { SNAP_CREATING, SNAP_READY };
struct snapshot {
	char vm_id[VM_ID_LEN + 1];
	char name[VM_NAME_MAX];
	enum snap_state state;
	char vmm[16];              /* the driver that took it */
	char vmm_version[32];
	int vcpus;
	int memory_mib;
	long long bytes;           /* on disk, all files (allocated) */
	char created_at[32];
};

/* An image's warm snapshot: a VM of the image booted once, paused and
 * saved under <state>/warm/IMAGE (the files of a snapshot); a create of
 * the image with the same shape restores a copy instead of booting. */
struct warm {
	char image[VM_NAME_MAX];
	enum snap_state state;
	char vm[VM_NAME_MAX];      /* while creating: the VM it is taken of */
	char vmm[16];
	char vmm_version[32];
	int vcpus;
	int memory_mib;
	int disk_gib;
	long long bytes;
	char image_id[128];        /* the image's files when it was taken */
	char created_at[32];
};

const char *snap_state_name(enum snap_state st);
const char *vm_state_name(enum vm_state st);
/* 0 and *ret for a known name, else -1. */
int vm_state_parse(const char *s, enum vm_state *ret);
const char *image_source_name(enum image_source src);
const char *op_state_name(enum op_state st);
int op_state_parse(const char *s, enum op_state *ret);
/* Free an operation's owned JSON texts (the row stays usable). */
void op_row_clear(struct op_row *op);

#endif
