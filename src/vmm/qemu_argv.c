/* qemu_argv.c - QEMU's command line for a microvm guest: pure string
 * building from vmm_params and the host facts the driver measured
 * (qemu_opts), so tests can check every argument without a QEMU. */
#include "vmm/qemu_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

/* Double every ',' (QEMU's option syntax).  -1 when out is too small. */
static int
opt_escape(char *out, size_t outsz, const char *v)
{
	size_t n = 0;

	for (; *v; v++) {
		if (n + (*v == ',' ? 2 : 1) >= outsz)
			return -1;
		if (*v == ',')
			out[n++] = ',';
		out[n++] = *v;
	}
	out[n] = '\0';
	return 0;
}

static void
av_addf(struct qemu_argv *a, const char *fmt, ...)
{
	size_t room = sizeof(a->buf) - a->used;
	va_list ap;
	int n;

	if (a->overflow || a->argc >= QEMU_ARGV_MAX) {
		a->overflow = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(a->buf + a->used, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		a->overflow = true;
		return;
	}
	a->argv[a->argc++] = a->buf + a->used;
	a->argv[a->argc] = NULL;
	a->used += (size_t)n + 1;
}

/* The escaped value of a path inside an option list, or NULL. */
static const char *
av_esc(struct qemu_argv *a, char *tmp, size_t tmpsz, const char *v)
{
	if (opt_escape(tmp, tmpsz, v) < 0) {
		a->overflow = true;
		return "";
	}
	return tmp;
}


int
qemu_build_argv(const struct vmm_params *p, const struct qemu_opts *o,
    struct qemu_argv *a, struct bn_err *err)
{
	struct qemu_files f;
	char e1[PATH_MAX * 2];

	memset(a, 0, sizeof(*a));
	if (p->binary == NULL || !*p->binary || p->kernel == NULL || !*p->kernel ||
	    p->cmdline == NULL || p->vcpus < 1 || p->memory_mib < 1 || !p->vmdir[0])
		return bn_fail(err, BN_EINVAL, 0, "qemu: incomplete vm parameters");
	if (qemu_files(p->vmdir, &f, err) < 0)
		return -1;
	const struct vm_limits *l = p->limits;
	if (l != NULL && l->net_bytes_per_s > 0) {
		bn_fail(err, BN_EUNSUPPORTED, 0, "QEMU cannot limit a VM's network "
		    "rate (limits.net_bytes_per_s)");
		return bn_err_hint(err, "drop limits.net_bytes_per_s, or run the "
		    "VM on Firecracker");
	}
	/* Disk rates: QEMU's block throttling, per drive. */
	char thr[96] = "";
	if (l != NULL && l->disk_bytes_per_s > 0)
		snprintf(thr, sizeof(thr), ",throttling.bps-total=%lld",
		    l->disk_bytes_per_s);
	if (l != NULL && l->disk_ops_per_s > 0)
		snprintf(thr + strlen(thr), sizeof(thr) - strlen(thr),
		    ",throttling.iops-total=%lld", l->disk_ops_per_s);

	av_addf(a, "%s", p->binary);
	if (p->vm_id != NULL && *p->vm_id) {
		av_addf(a, "-name");
		av_addf(a, "banger-%s", av_esc(a, e1, sizeof(e1), p->vm_id));
	}
	/* microvm: no PCI, no firmware; virtio-mmio devices found through
	 * ACPI.  vhost-user needs guest memory it can map: a shared memfd. */
	av_addf(a, "-M");
	av_addf(a, "microvm,memory-backend=mem");
	av_addf(a, "-accel");
	av_addf(a, "%s", p->kvm ? "kvm" : "tcg");
	av_addf(a, "-cpu");
	av_addf(a, "%s", p->kvm ? "host" : "max");
	av_addf(a, "-smp");
	av_addf(a, "%d", p->vcpus);
	av_addf(a, "-m");
	av_addf(a, "%dM", p->memory_mib);
	av_addf(a, "-object");
	av_addf(a, "memory-backend-memfd,id=mem,size=%dM,share=on", p->memory_mib);
	av_addf(a, "-nodefaults");
	av_addf(a, "-no-user-config");
	av_addf(a, "-nographic");
	/* A guest reboot ends QEMU, like Firecracker: bangerd restarts VMs. */
	av_addf(a, "-no-reboot");
	/* Paused until start ("cont"). */
	av_addf(a, "-S");
	av_addf(a, "-kernel");
	av_addf(a, "%s", p->kernel);
	if (p->initrd != NULL && *p->initrd) {
		av_addf(a, "-initrd");
		av_addf(a, "%s", p->initrd);
	}
	av_addf(a, "-append");
	/* Under TCG the guest's TSC is the host's, but a stock kernel cannot
	 * calibrate it against the emulated PIT when the host is busy (it then
	 * hangs without a clock): tell it the rate, and that it is stable. */
	if (!p->kvm && o->tsc_khz > 0)
		av_addf(a, "%s tsc_early_khz=%lu%s", p->cmdline, o->tsc_khz,
		    o->tsc_reliable ? " tsc=reliable" : "");
	else
		av_addf(a, "%s", p->cmdline);

	/* Disks: vda = rootfs, vdb = work disk.  cache=none (O_DIRECT) keeps
	 * the host page cache out of it; file systems without O_DIRECT
	 * (tmpfs) get the default writeback cache instead.  A write that
	 * finds the host disk full pauses the VM (werror=enospc: QEMU's
	 * default for virtio-blk, said out loud because bangerd relies on it
	 * to show the VM paused with host_disk_full) instead of handing the
	 * guest an I/O error that its file system would not survive; other
	 * errors are reported to the guest. */
	av_addf(a, "-drive");
	av_addf(a, "id=rootfs,file=%s,format=raw,if=none,cache=%s,aio=threads,"
	    "werror=enospc,rerror=report%s",
	    av_esc(a, e1, sizeof(e1), p->rootfs), o->direct_root ? "none" :
	    "writeback", thr);
	av_addf(a, "-device");
	av_addf(a, "virtio-blk-device,drive=rootfs");
	av_addf(a, "-drive");
	av_addf(a, "id=work,file=%s,format=raw,if=none,cache=%s,aio=threads,"
	    "werror=enospc,rerror=report%s",
	    av_esc(a, e1, sizeof(e1), p->workdisk), o->direct_work ? "none" :
	    "writeback", thr);
	av_addf(a, "-device");
	av_addf(a, "virtio-blk-device,drive=work");

	if (p->tap != NULL && *p->tap) {
		av_addf(a, "-netdev");
		av_addf(a, "tap,id=net0,ifname=%s,script=no,downscript=no",
		    av_esc(a, e1, sizeof(e1), p->tap));
		av_addf(a, "-device");
		if (p->mac != NULL && *p->mac)
			av_addf(a, "virtio-net-device,netdev=net0,mac=%s",
			    av_esc(a, e1, sizeof(e1), p->mac));
		else
			av_addf(a, "virtio-net-device,netdev=net0");
	}

	av_addf(a, "-chardev");
	av_addf(a, "socket,id=vhu,path=%s", av_esc(a, e1, sizeof(e1), f.vhu));
	av_addf(a, "-device");
	av_addf(a, "vhost-user-vsock-device,chardev=vhu");

	/* Shared folders: virtiofsd (virtiofs.c) behind each socket.  The
	 * C virtiofsd of bookworm (libvhost-user) refuses legacy virtio
	 * devices, and microvm's virtio-mmio ones are legacy unless told:
	 * without this the guest mounts the share and its first read hangs
	 * as virtiofsd exits.  (Only for VMs with shares: the other devices
	 * are proven on the legacy transport.) */
	if (p->nmounts > 0) {
		av_addf(a, "-global");
		av_addf(a, "virtio-mmio.force-legacy=false");
	}
	for (int i = 0; i < p->nmounts; i++) {
		char sock[108];
		if (qemu_fs_sock(p->vmdir, i, sock, sizeof(sock), err) < 0)
			return bn_err_prefix(err, "qemu");
		av_addf(a, "-chardev");
		av_addf(a, "socket,id=fs%d,path=%s", i, av_esc(a, e1,
		    sizeof(e1), sock));
		av_addf(a, "-device");
		av_addf(a, "vhost-user-fs-device,chardev=fs%d,tag=" MOUNT_TAG_FMT,
		    i, i);
	}

	av_addf(a, "-chardev");
	av_addf(a, "file,id=ser0,path=%s,append=on",
	    av_esc(a, e1, sizeof(e1), p->console_log));
	av_addf(a, "-serial");
	av_addf(a, "chardev:ser0");

	av_addf(a, "-qmp");
	av_addf(a, "%s", f.qmp_arg);

	if (a->overflow)
		return bn_fail(err, BN_EINVAL, 0, "qemu: command line too long");
	return 0;
}

int
qemu_files(const char *vmdir, struct qemu_files *f, struct bn_err *err)
{
	char esc[sizeof(f->qmp) * 2];

	if (path_join(f->qmp, sizeof(f->qmp), err, "%s/qmp.sock", vmdir) < 0 ||
	    path_join(f->vhu, sizeof(f->vhu), err, "%s/vhu.sock", vmdir) < 0 ||
	    path_join(f->helper_pid, sizeof(f->helper_pid), err,
	    "%s/vhost-vsock.pid", vmdir) < 0)
		return bn_err_prefix(err, "qemu: socket path too long");
	if (opt_escape(esc, sizeof(esc), f->qmp) < 0 ||
	    path_join(f->qmp_arg, sizeof(f->qmp_arg), err,
	    "unix:%s,server=on,wait=off", esc) < 0 ||
	    path_join(f->vhu_arg, sizeof(f->vhu_arg), err, "--socket=%s", f->vhu) < 0)
		return bn_fail(err, BN_EINVAL, 0, "qemu: socket path too long");
	return 0;
}
