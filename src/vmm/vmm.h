/* vmm.h - the VMM driver interface.  core/ drives a VM through these
 * calls only; each driver owns its process, its control socket and its
 * protocol.  Both drivers expose vsock as a Firecracker-style hybrid Unix
 * socket (vsock.h), so health code is shared. */
#ifndef BANGER_VMM_H
#define BANGER_VMM_H

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/model.h"

struct vmm_params {
	const char *vm_id;          /* 16 hex chars, also the VMM's --id */
	const char *binary;         /* VMM executable (resolved path) */
	char vmdir[PATH_MAX];
	char api_sock[108];         /* <vmdir>/fc.sock */
	char vsock_uds[108];        /* <vmdir>/vsock.sock */
	char console_log[PATH_MAX]; /* <vmdir>/console.log (VMM stdout/stderr) */
	char vmm_log[PATH_MAX];     /* <vmdir>/vmm.log */
	char rootfs[PATH_MAX];      /* <vmdir>/rootfs.ext4 */
	char workdisk[PATH_MAX];    /* <vmdir>/work.ext4 */
	const char *kernel;
	const char *initrd;         /* NULL or "" when none */
	const char *cmdline;
	int vcpus;
	int memory_mib;
	unsigned cid;
	const char *tap;            /* NULL until networking provides one */
	const char *mac;
	int api_timeout_ms;
	/* The VM's limits (its disk and network rates are the VMM's to
	 * keep); NULL: none. */
	const struct vm_limits *limits;
	/* Host directories shared with the guest (drivers with .shares). */
	const struct vm_mount *mounts;
	int nmounts;
	/* QEMU driver only. */
	const char *vsock_helper;   /* vhost-device-vsock executable (resolved) */
	const char *virtiofsd;      /* virtiofsd executable, "" when none */
	bool kvm;                   /* -accel kvm -cpu host; else TCG, -cpu max */
};

/* How a driver's stop ended. */
enum vmm_stop_how {
	VMM_STOP_GONE,      /* the process was already gone (or not ours) */
	VMM_STOP_SIGNAL,    /* it exited after the VMM's graceful signal (QEMU:
			     * ACPI power button, Firecracker: Ctrl-Alt-Del) */
	VMM_STOP_FORCED,    /* it had to be ended (QMP quit, SIGTERM, SIGKILL) */
};

struct vmm_driver {
	const char *name;
	/* Can it share host folders with the guest (virtio-fs)? */
	bool shares;
	/* Start the VMM process (detached, own session). */
	int (*spawn)(const struct vmm_params *p, pid_t *ret_pid, struct bn_err *err);
	/* Wait until its control API answers, then send the VM configuration. */
	int (*configure)(const struct vmm_params *p, pid_t pid, struct bn_err *err);
	/* Boot the guest. */
	int (*start)(const struct vmm_params *p, struct bn_err *err);
	/* Graceful stop, then SIGTERM/SIGKILL after grace_ms; always leaves
	 * the process gone and its sockets unlinked.  *how (may be NULL)
	 * says which step ended it. */
	int (*stop)(const struct vmm_params *p, pid_t pid, int grace_ms,
	    enum vmm_stop_how *how, struct bn_err *err);
	/* Kill at once (rollback), unlink sockets. */
	void (*kill)(const struct vmm_params *p, pid_t pid);
	/* Is pid this VM's VMM and does its API answer? (adoption) */
	int (*probe)(const struct vmm_params *p, pid_t pid, struct bn_err *err);
	/* Did the VMM pause the guest by itself?  1 with *reason set
	 * ("host_disk_full" when a disk write found no space, else
	 * "io_error"), 0 when it runs, -1 when it cannot be asked.  NULL for
	 * a VMM that never pauses on its own (Firecracker fails the I/O). */
	int (*paused)(const struct vmm_params *p, char *reason, size_t reasonsz,
	    struct bn_err *err);
	/* Hold the guest's vCPUs (a user's pause).  NULL: not supported. */
	int (*pause)(const struct vmm_params *p, struct bn_err *err);
	/* Let a paused guest run again.  NULL: not supported. */
	int (*resume)(const struct vmm_params *p, struct bn_err *err);
	/* May the host connect to the guest's vsock yet?  0 while a
	 * connection could break the VM's vsock (QEMU: vhost-device-vsock
	 * before it has set up its rings, qemu.c), else 1.  NULL: always. */
	int (*vsock_ready)(const struct vmm_params *p);
	/* The running VMM's version ("1.16.1").  NULL: unknown. */
	int (*version)(const struct vmm_params *p, char *out, size_t outsz,
	    struct bn_err *err);
	/* Save the paused guest: device state to `state`, memory to `mem`
	 * (Firecracker PUT /snapshot/create).  NULL: this driver cannot;
	 * snapshot_blocked (when set) says why for a given VM. */
	int (*snapshot)(const struct vmm_params *p, const char *state,
	    const char *mem, struct bn_err *err);
	int (*snapshot_blocked)(const struct vmm_params *p, char *why,
	    size_t whysz, struct bn_err *err);
	/* In a VMM just spawned, instead of configure and start: load a
	 * snapshot with p's TAP and vsock socket, and let the guest run. */
	int (*restore)(const struct vmm_params *p, pid_t pid, const char *state,
	    const char *mem, struct bn_err *err);
	/* The VM's processes besides the VMM and its children (QEMU's vsock
	 * helper, which bangerd starts): at most max into out, how many.
	 * NULL: none. */
	int (*helpers)(const struct vmm_params *p, pid_t *out, int max);
};

extern const struct vmm_driver vmm_firecracker;
/* QEMU microvm (qemu.c): QMP control, vsock through vhost-device-vsock
 * (hybrid Unix socket at vsock_uds, like Firecracker), serial console to
 * console_log, QEMU's and the helper's own output to vmm_log.  Per-VM
 * files in vmdir: qmp.sock, vhu.sock, vhost-vsock.pid. */
extern const struct vmm_driver vmm_qemu;

/* The driver that runs a VM, by the name recorded for it (vm.vmm); rows
 * from before the QEMU driver have "" and ran on Firecracker. */
static inline const struct vmm_driver *
vmm_by_name(const char *name)
{
	return name != NULL && strcmp(name, vmm_qemu.name) == 0 ? &vmm_qemu :
	    &vmm_firecracker;
}

/* Fill the per-VM paths of p from vmdir; fails if a socket path would not
 * fit in sun_path. */
int vmm_params_paths(struct vmm_params *p, const char *vmdir, struct bn_err *err);

/* ---- choosing a VMM (select.c) and the host facts it needs (host.c) ---- */

/* What is asked for: "auto", "firecracker" or "qemu", and where the
 * runtime bundle says each executable is (a path or a name in PATH). */
struct vmm_wants {
	const char *want;
	const char *firecracker;
	const char *qemu;
	const char *vsock_helper;
	const char *virtiofsd;      /* "" or NULL: look in the usual places */
	const char *bundle_dir;     /* for hints */
};

/* What a VM boots with: the driver, its executables and (QEMU) the
 * accelerator with the reason for it, shown in VM status and doctor. */
struct vmm_choice {
	const struct vmm_driver *drv;
	char binary[PATH_MAX];
	char helper[PATH_MAX];      /* QEMU: vhost-device-vsock */
	char virtiofsd[PATH_MAX];   /* QEMU: virtiofsd, "" when none found */
	bool kvm;                   /* QEMU: -accel kvm; else tcg */
	char accel[8];              /* "kvm" | "tcg" */
	char accel_reason[256];
};
int vmm_select(const struct vmm_wants *w, struct vmm_choice *ret,
    struct bn_err *err);

/* /dev/kvm: usable, nested PVM (no standard guests), missing, denied;
 * why says which in words. */
enum { KVM_OK, KVM_PVM, KVM_MISSING, KVM_DENIED };
int vmm_kvm_state(char *why, size_t whysz);
/* bundled (a path, or a name looked up in PATH), else name in PATH. */
bool vmm_find_exe(const char *bundled, const char *name, char *out,
    size_t outsz);
/* virtiofsd: bundled (as above), else in PATH, /usr/libexec (Rust, newer
 * Debian) or /usr/lib/qemu (C, bookworm's QEMU); out "" and false when
 * none is found. */
bool vmm_find_virtiofsd(const char *bundled, char *out, size_t outsz);
/* Can a disk at path be opened with O_DIRECT (cache=none)?  tmpfs cannot. */
bool vmm_host_direct_io(const char *path);
/* The host's TSC rate in kHz (0 when it is not invariant) and whether it
 * is reliable, measured once: what a TCG guest reads with rdtsc. */
void vmm_host_tsc(unsigned long *khz, bool *reliable);

/* ---- QEMU driver internals (qemu.c), exposed for tests/unit/test_qemu.c ---- */

struct json_t;

/* Host facts the driver decides at spawn time, passed to the pure argv
 * builder. */
struct qemu_opts {
	bool direct_root;           /* rootfs allows O_DIRECT: cache=none */
	bool direct_work;           /* same for the work disk */
	unsigned long tsc_khz;      /* TCG: tsc_early_khz= for the guest (0: none) */
	bool tsc_reliable;          /* TCG: add tsc=reliable */
};

#define QEMU_ARGV_MAX 112

struct qemu_argv {
	char *argv[QEMU_ARGV_MAX + 1];  /* NULL-terminated, points into buf */
	int argc;
	bool overflow;
	size_t used;
	char buf[16384];
};

/* Build QEMU's argv for p (argv[0] = p->binary) into *ret.  Pure: touches
 * no file.  Fails with BN_EINVAL when a required parameter is missing or
 * the command line does not fit. */
int qemu_build_argv(const struct vmm_params *p, const struct qemu_opts *o,
    struct qemu_argv *ret, struct bn_err *err);

/* A QMP client connection: one command at a time, every read and write
 * bounded by the connection's deadline (CLOCK_MONOTONIC ms). */
struct qmp_conn;
/* Connect to QEMU's QMP socket at path, read the greeting and negotiate
 * capabilities.  BN_ESYS (sys_errno ENOENT/ECONNREFUSED) while nothing
 * listens, BN_ETIMEOUT at the deadline, BN_EVMM for a bad peer. */
int qmp_connect(const char *path, long long deadline, struct qmp_conn **ret,
    struct bn_err *err);
/* Wrap a connected stream socket (owned from now on). */
struct qmp_conn *qmp_attach(int fd, long long deadline);
void qmp_set_deadline(struct qmp_conn *q, long long deadline);
/* Read the greeting ({"QMP": ...}) and run qmp_capabilities. */
int qmp_handshake(struct qmp_conn *q, struct bn_err *err);
/* Run one command: args (consumed, may be NULL) become "arguments"; the
 * reply with this command's id is awaited, skipping asynchronous events
 * and replies to other ids.  *ret (may be NULL) gets the "return" value
 * (a new reference).  An "error" reply fails with BN_EVMM and QEMU's
 * description. */
int qmp_execute(struct qmp_conn *q, const char *cmd, struct json_t *args,
    struct json_t **ret, struct bn_err *err);
/* Close and free; NULL is fine. */
void qmp_close(struct qmp_conn *q);
/* One epoll's /proc/PID/fdinfo text from vhost-device-vsock: -1 when it is
 * not its vring worker's epoll, 0 when it is and the RX and TX rings are
 * not both set up yet, 1 when they are (qemu.c says why it matters). */
int qemu_helper_epoll_state(const char *fdinfo);

#endif
