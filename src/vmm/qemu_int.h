/* qemu_int.h - shared by the QEMU driver's files only (qemu.c, the driver
 * and its vsock helper; qemu_argv.c, the command line). */
#ifndef BANGER_VMM_QEMU_INT_H
#define BANGER_VMM_QEMU_INT_H

#include <limits.h>

#include "vmm/vmm.h"

/* The per-VM files of a QEMU VM and the arguments that name them. */
struct qemu_files {
	char qmp[108];        /* <vmdir>/qmp.sock */
	char vhu[108];        /* <vmdir>/vhu.sock: vhost-user, QEMU <-> helper */
	char helper_pid[PATH_MAX];
	char qmp_arg[160];    /* the -qmp argument, also the probe's needle */
	char vhu_arg[128];    /* the helper's --socket=, its identity */
};

/* Fill f from vmdir; fails when a path would not fit in a socket address. */
int qemu_files(const char *vmdir, struct qemu_files *f, struct bn_err *err);

/* ---- shared folders (virtiofs.c) ---- */

/* Start one virtiofsd per mount of p (none: nothing), each listening on
 * its socket before this returns; on failure none is left. */
int qemu_fs_start(const struct vmm_params *p, struct bn_err *err);
/* Stop this VM's virtiofsds and remove their files. */
void qemu_fs_stop(const struct vmm_params *p, bool hard);
/* Their pids, at most max into out; how many. */
int qemu_fs_pids(const struct vmm_params *p, pid_t *out, int max);
/* Mount i's vhost-user socket, which QEMU connects to. */
int qemu_fs_sock(const char *vmdir, int i, char *out, size_t outsz,
    struct bn_err *err);
/* The pid in a helper's pid file, 0 when there is none. */
pid_t qemu_pid_read(const char *path);
/* Is there a listening Unix socket bound to path (/proc/net/unix)? */
bool qemu_unix_listening(const char *path);

/* ---- the vsock helper's rings and connections (qemu_vsock.c) ---- */

/* 1 when a host connection cannot break the VM's vsock now, 0 while the
 * helper's rings are not set up. */
int qemu_vsock_ready(const struct vmm_params *p);
/* Host connections the helper still holds; -1 when that cannot be seen. */
int qemu_vsock_held(const struct vmm_params *p);
/* Before a pause: end and hold back host connections; fails (BN_ESTATE)
 * with nothing changed when they do not end within wait_ms. */
int qemu_vsock_quiesce(const struct vmm_params *p, int wait_ms,
    struct bn_err *err);
/* After a resume: wait up to wait_ms for the rings, then let dials go. */
void qemu_vsock_wake(const struct vmm_params *p, int wait_ms);

#endif
