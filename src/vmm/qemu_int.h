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

#endif
