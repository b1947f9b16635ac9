/* select.c - which VMM a VM boots with: the driver, its executables and
 * (QEMU) the accelerator with the reason for it. */
#include "vmm/vmm.h"

#include <stdio.h>
#include <string.h>

/* want "firecracker" or "qemu" is taken as asked; "auto" is Firecracker
 * when its binary and a KVM that boots standard guests exist, else QEMU,
 * with KVM when it is usable and TCG otherwise. */
int
vmm_select(const struct vmm_wants *w, struct vmm_choice *ch, struct bn_err *err)
{
	char why[256];
	int kvm;
	bool have_fc;

	memset(ch, 0, sizeof(*ch));
	kvm = vmm_kvm_state(why, sizeof(why));
	have_fc = strcmp(w->want, "qemu") != 0 && vmm_find_exe(w->firecracker,
	    "firecracker", ch->binary, sizeof(ch->binary));
	if (strcmp(w->want, "firecracker") == 0 || (have_fc && kvm == KVM_OK)) {
		if (!have_fc) {
			bn_fail(err, BN_EVMM_MISSING, 0, "firecracker not found (%s)",
			    w->firecracker);
			return bn_err_hint(err, "install Firecracker, set "
			    "\"firecracker\" in bundle.json or BANGER_FIRECRACKER, "
			    "and run 'banger doctor'");
		}
		ch->drv = &vmm_firecracker;
		snprintf(ch->accel, sizeof(ch->accel), "kvm");
		snprintf(ch->accel_reason, sizeof(ch->accel_reason), "%s", why);
		return 0;
	}
	if (!vmm_find_exe(w->qemu, "qemu-system-x86_64", ch->binary,
	    sizeof(ch->binary))) {
		if (strcmp(w->want, "auto") == 0) {
			bn_fail(err, BN_EVMM_MISSING, 0, "no usable VMM: %s%s, and "
			    "qemu-system-x86_64 was not found (%s)", have_fc ?
			    "firecracker needs a usable KVM: " : "firecracker was "
			    "not found", have_fc ? why : "", w->qemu);
			return bn_err_hint(err, "apt-get install qemu-system-x86 "
			    "(it runs without KVM), and run 'banger doctor'");
		}
		bn_fail(err, BN_EVMM_MISSING, 0, "qemu-system-x86_64 not found (%s)",
		    w->qemu);
		return bn_err_hint(err, "apt-get install qemu-system-x86, or set "
		    "\"qemu\" in bundle.json");
	}
	if (!vmm_find_exe(w->vsock_helper, "vhost-device-vsock", ch->helper,
	    sizeof(ch->helper))) {
		bn_fail(err, BN_EVMM_MISSING, 0, "vhost-device-vsock not found (%s): "
		    "the QEMU driver needs it for vsock", w->vsock_helper);
		return bn_err_hint(err, "run rootfs/fetch-vhost-device-vsock.sh --out "
		    "%s/tools and set \"vhost_user_vsock\": \"tools/vhost-device-vsock\" "
		    "in bundle.json", w->bundle_dir);
	}
	vmm_find_virtiofsd(w->virtiofsd, ch->virtiofsd, sizeof(ch->virtiofsd));
	ch->drv = &vmm_qemu;
	ch->kvm = kvm == KVM_OK;
	snprintf(ch->accel, sizeof(ch->accel), "%s", ch->kvm ? "kvm" : "tcg");
	snprintf(ch->accel_reason, sizeof(ch->accel_reason), "%s%s",
	    ch->kvm ? "" : "TCG (slower): ", why);
	return 0;
}
