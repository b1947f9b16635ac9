/* guest.h - the guest-config builder: kernel command line and the facts
 * the guest's units read from it (banger.* keys). */
#ifndef BANGER_GUEST_H
#define BANGER_GUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/mountspec.h"

struct guest_config {
	const char *hostname;     /* VM name, a DNS label */
	unsigned agent_port;
	/* IPv4 networking; all NULL when the VM has no network yet. */
	const char *ip;           /* guest address, dotted quad */
	const char *gateway;
	const char *netmask;
	const char *dns;          /* resolver for the guest, may be NULL */
	const char *dns2;         /* second resolver (needs dns), may be NULL */
	/* Firecracker appends root=/dev/vda rw itself for the root drive. */
	bool vmm_adds_root;
	/* Shared folders: one banger.mount=TAG:PATH[:ro] each, TAG the
	 * virtio-fs tag of its index (MOUNT_TAG_FMT). */
	const struct vm_mount *mounts;
	int nmounts;
};

/* Build the kernel command line into out.  Validates every value (no
 * spaces, quotes or control characters can reach the cmdline). */
int guest_cmdline(const struct guest_config *gc, char *out, size_t outsz,
    struct bn_err *err);

#endif
