/* guest.c - kernel command line for banger guests. */
#include "guest.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

static int
check_ipv4(const char *what, const char *s, struct bn_err *err)
{
	struct in_addr a;

	if (s == NULL || inet_pton(AF_INET, s, &a) != 1)
		return bn_fail(err, BN_EINTERNAL, 0, "guest config: bad %s '%s'",
		    what, s ? s : "(null)");
	return 0;
}

static int
append(char *out, size_t outsz, size_t *len, struct bn_err *err,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out + *len, outsz - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outsz - *len)
		return bn_fail(err, BN_EINTERNAL, 0, "kernel command line too long");
	*len += (size_t)n;
	return 0;
}

int
guest_cmdline(const struct guest_config *gc, char *out, size_t outsz,
    struct bn_err *err)
{
	size_t len = 0;

	if (!name_valid(gc->hostname))
		return bn_fail(err, BN_EINTERNAL, 0, "guest config: bad hostname");
	if (gc->agent_port == 0)
		return bn_fail(err, BN_EINTERNAL, 0, "guest config: agent port 0");
	out[0] = '\0';
	/* eth0 is configured before udev runs (by the kernel or the initrd):
	 * keep its name. */
	if (append(out, outsz, &len, err, "console=ttyS0 reboot=k panic=1 "
	    "net.ifnames=0") < 0)
		return -1;
	if (!gc->vmm_adds_root &&
	    append(out, outsz, &len, err, " root=/dev/vda rw") < 0)
		return -1;
	if (gc->ip != NULL) {
		if (check_ipv4("ip", gc->ip, err) < 0 ||
		    check_ipv4("gateway", gc->gateway, err) < 0 ||
		    check_ipv4("netmask", gc->netmask, err) < 0)
			return -1;
		/* ip=<client>:<server>:<gw>:<netmask>:<hostname>:<dev>:<autoconf>
		 * [:<dns0>]: the kernel configures eth0 before init runs. */
		if (append(out, outsz, &len, err, " ip=%s::%s:%s:%s:eth0:off",
		    gc->ip, gc->gateway, gc->netmask, gc->hostname) < 0)
			return -1;
		if (gc->dns != NULL) {
			if (check_ipv4("dns", gc->dns, err) < 0 ||
			    append(out, outsz, &len, err, ":%s", gc->dns) < 0)
				return -1;
			if (gc->dns2 != NULL &&
			    (check_ipv4("dns2", gc->dns2, err) < 0 ||
			    append(out, outsz, &len, err, ":%s", gc->dns2) < 0))
				return -1;
		}
	}
	if (append(out, outsz, &len, err,
	    " banger.hostname=%s banger.agent_port=%u banger.workdev=/dev/vdb",
	    gc->hostname, gc->agent_port) < 0)
		return -1;
	for (int i = 0; i < gc->nmounts; i++) {
		const char *why = mount_guest_why(gc->mounts[i].guest);
		if (why != NULL || i >= VM_MOUNTS_MAX)
			return bn_fail(err, BN_EINVAL, 0, "mounts[%d]: %s", i,
			    why != NULL ? why : "too many shared folders");
		if (append(out, outsz, &len, err, " banger.mount=" MOUNT_TAG_FMT
		    ":%s%s", i, gc->mounts[i].guest, gc->mounts[i].readonly ?
		    ":ro" : "") < 0)
			return -1;
	}
	return 0;
}
