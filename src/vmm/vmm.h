/* vmm.h - the VMM driver interface.  core/ drives a VM through these
 * calls only; each driver owns its process, its control socket and its
 * protocol.  Both drivers expose vsock as a Firecracker-style hybrid Unix
 * socket (vsock.h), so health code is shared. */
#ifndef BANGER_VMM_H
#define BANGER_VMM_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"

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
};

struct vmm_driver {
	const char *name;
	/* Start the VMM process (detached, own session). */
	int (*spawn)(const struct vmm_params *p, pid_t *ret_pid, struct bn_err *err);
	/* Wait until its control API answers, then send the VM configuration. */
	int (*configure)(const struct vmm_params *p, pid_t pid, struct bn_err *err);
	/* Boot the guest. */
	int (*start)(const struct vmm_params *p, struct bn_err *err);
	/* Graceful stop, then SIGTERM/SIGKILL after grace_ms; always leaves
	 * the process gone and its sockets unlinked. */
	int (*stop)(const struct vmm_params *p, pid_t pid, int grace_ms,
	    struct bn_err *err);
	/* Kill at once (rollback), unlink sockets. */
	void (*kill)(const struct vmm_params *p, pid_t pid);
	/* Is pid this VM's VMM and does its API answer? (adoption) */
	int (*probe)(const struct vmm_params *p, pid_t pid, struct bn_err *err);
};

extern const struct vmm_driver vmm_firecracker;

/* Fill the per-VM paths of p from vmdir; fails if a socket path would not
 * fit in sun_path. */
int vmm_params_paths(struct vmm_params *p, const char *vmdir, struct bn_err *err);

#endif
