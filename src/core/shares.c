/* shares.c - a VM's shared folders (spec "mounts") where they touch the
 * host: each host directory must exist, be a directory, and be neither /
 * nor anything holding or held by bangerd's state (VM disks, sockets,
 * keys); it is recorded as its real path.  Checked when the spec is set
 * and again just before a boot starts virtiofsd on it.  Only a VMM with
 * virtio-fs (QEMU) can share folders. */
#include "core/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/wire.h"

static int
host_fail(struct bn_err *err, int i, const char *host, const char *why)
{
	bn_fail(err, BN_EINVAL, 0, "mounts[%d]: host path %s %s", i, host, why);
	return bn_err_detail(err, "field", WIRE_MOUNTS);
}

int
vm_mounts_host_check(struct core *c, struct vm_mount *m, int n,
    struct bn_err *err)
{
	char state[PATH_MAX], real[PATH_MAX];
	struct stat sb;

	if (realpath(c->cfg.state_dir, state) == NULL)
		snprintf(state, sizeof(state), "%s", c->cfg.state_dir);
	for (int i = 0; i < n; i++) {
		if (realpath(m[i].host, real) == NULL)
			return host_fail(err, i, m[i].host, errno == ENOENT ?
			    "does not exist" : strerror(errno));
		if (stat(real, &sb) < 0 || !S_ISDIR(sb.st_mode))
			return host_fail(err, i, m[i].host, "is not a directory");
		if (strcmp(real, "/") == 0)
			return host_fail(err, i, m[i].host, "is the host's root");
		if (mount_guest_within(real, state) ||
		    mount_guest_within(state, real)) {
			host_fail(err, i, m[i].host, "holds or is inside "
			    "bangerd's state directory");
			return bn_err_hint(err, "share a directory outside %s",
			    state);
		}
		if (strlen(real) >= sizeof(m[i].host))
			return host_fail(err, i, m[i].host, "is too long once "
			    "resolved (at most 511 bytes)");
		snprintf(m[i].host, sizeof(m[i].host), "%s", real);
	}
	return 0;
}

int
vm_mounts_supported(const struct vmm_driver *drv, const char *name, int n,
    struct bn_err *err)
{
	if (n == 0 || drv->shares)
		return 0;
	bn_fail(err, BN_EUNSUPPORTED, 0, "vm '%s' has shared folders (mounts), "
	    "and %s has no virtio-fs", name, drv->name);
	bn_err_detail(err, "field", WIRE_MOUNTS);
	return bn_err_hint(err, "copy files in and out with 'banger vm cp', "
	    "or run the VM on QEMU (\"vmm\": \"qemu\" in bundle.json)");
}
