/* vmm.c - shared driver helpers. */
#include "vmm.h"

#include "common/util.h"

int
vmm_params_paths(struct vmm_params *p, const char *vmdir, struct bn_err *err)
{
	if (path_join(p->vmdir, sizeof(p->vmdir), err, "%s", vmdir) < 0 ||
	    path_join(p->api_sock, sizeof(p->api_sock), err, "%s/fc.sock", vmdir) < 0 ||
	    path_join(p->vsock_uds, sizeof(p->vsock_uds), err, "%s/vsock.sock", vmdir) < 0 ||
	    path_join(p->console_log, sizeof(p->console_log), err, "%s/console.log", vmdir) < 0 ||
	    path_join(p->vmm_log, sizeof(p->vmm_log), err, "%s/vmm.log", vmdir) < 0 ||
	    path_join(p->rootfs, sizeof(p->rootfs), err, "%s/rootfs.ext4", vmdir) < 0 ||
	    path_join(p->workdisk, sizeof(p->workdisk), err, "%s/work.ext4", vmdir) < 0) {
		bn_err_prefix(err, "state directory path too long for a Unix socket");
		return bn_err_hint(err, "use a shorter --state-dir (socket paths "
		    "must fit in 107 bytes)");
	}
	return 0;
}
