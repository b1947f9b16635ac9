/* doctor.c - structured readiness checks, one per prerequisite. */
#include "core/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/capability.h>
#include <sys/syscall.h>

#include "common/proc.h"
#include "common/util.h"
#include "net/dns.h"
#include "net/link.h"
#include "net/nat.h"

enum chk { CHK_OK, CHK_WARN, CHK_FAIL };

static void add(json_t *checks, const char *name, const char *feature,
    enum chk st, const char *msg, const char *fix);

static bool
has_cap_net_admin(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	return (data[CAP_NET_ADMIN / 32].effective >> (CAP_NET_ADMIN % 32)) & 1;
}

/* systemd-resolved keeps per-link settings in /run/systemd/resolve/netif/
 * <ifindex>: the bridge should route ~vm to our responder. */
static void
check_resolver(struct core *c, json_t *checks)
{
	char path[128], msg[512], fix[512];
	unsigned idx = if_nametoindex(c->cfg.bridge);
	char *text = NULL;

	char addr[32];

	snprintf(addr, sizeof(addr), "%s", c->cfg.bridge_cidr);
	addr[strcspn(addr, "/")] = '\0';
	snprintf(fix, sizeof(fix), "resolvectl dns %s %s; resolvectl domain %s "
	    "'~vm' (or send your resolver's vm zone to %s)", c->cfg.bridge, addr,
	    c->cfg.bridge, addr);
	if (access("/run/systemd/resolve", F_OK) < 0) {
		add(checks, "resolver", "dns", CHK_WARN, "systemd-resolved is not "
		    "running: the host does not send *.vm queries to bangerd", fix);
		return;
	}
	snprintf(path, sizeof(path), "/run/systemd/resolve/netif/%u", idx);
	if (idx == 0 || file_read_all(path, 65536, &text, NULL, NULL) < 0) {
		add(checks, "resolver", "dns", CHK_WARN, "systemd-resolved has no "
		    "settings for the bridge", fix);
		return;
	}
	bool ok = strstr(text, "~vm") != NULL && strstr(text, "DNS=") != NULL;
	free(text);
	snprintf(msg, sizeof(msg), ok ? "systemd-resolved sends *.vm to %s" :
	    "systemd-resolved does not route ~vm to %s", c->cfg.bridge);
	add(checks, "resolver", "dns", ok ? CHK_OK : CHK_WARN, msg, ok ? NULL : fix);
}

static void
add(json_t *checks, const char *name, const char *feature, enum chk st,
    const char *msg, const char *fix)
{
	static const char *const names[] = { "ok", "warn", "fail" };

	json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:s, s:s}",
	    "name", name, "feature", feature, "status", names[st],
	    "message", msg, "fix", fix ? fix : ""));
}

/* Without a usable KVM, QEMU runs VMs with TCG: that is a warning then,
 * not a failure. */
static void
check_kvm(json_t *checks, bool qemu_runs_vms)
{
	char msg[256];
	enum chk bad = qemu_runs_vms ? CHK_WARN : CHK_FAIL;

	switch (vmm_kvm_state(msg, sizeof(msg))) {
	case KVM_OK:
		add(checks, "kvm", "vms", CHK_OK, msg, NULL);
		break;
	case KVM_PVM:
		add(checks, "kvm", "vms", CHK_WARN, msg, "VMs need the QEMU driver "
		    "with TCG here (slower); on a machine with VT-x/AMD-V, KVM "
		    "runs them at full speed");
		break;
	case KVM_MISSING:
		add(checks, "kvm", "vms", bad, msg, "enable virtualization "
		    "(VT-x/AMD-V) in the firmware, or nested virtualization for a "
		    "VM host, and load the kvm module");
		break;
	default:
		add(checks, "kvm", "vms", bad, msg, "add your user to the kvm "
		    "group or run: setfacl -m u:$USER:rw /dev/kvm");
	}
}

static void
check_network(struct core *c, json_t *checks)
{
	char msg[512];
	struct bn_err err;
	struct in_addr addr;
	int prefix;

	if (!core_net_enabled(c)) {
		add(checks, "network", "network", CHK_WARN, "networking is off "
		    "(\"network\": \"off\" in config.json): VMs boot without a NIC",
		    "set \"network\": \"on\" in config.json");
		return;
	}
	if (access("/dev/net/tun", R_OK | W_OK) == 0)
		add(checks, "tun", "network", CHK_OK, "/dev/net/tun is usable", NULL);
	else {
		snprintf(msg, sizeof(msg), "/dev/net/tun: %s", strerror(errno));
		add(checks, "tun", "network", CHK_FAIL, msg, errno == ENOENT ?
		    "load the tun module: modprobe tun" :
		    "run bangerd as root or with CAP_NET_ADMIN");
	}
	if (has_cap_net_admin())
		add(checks, "cap_net_admin", "network", CHK_OK, "bangerd has "
		    "CAP_NET_ADMIN", NULL);
	else
		add(checks, "cap_net_admin", "network", CHK_FAIL, "bangerd lacks "
		    "CAP_NET_ADMIN: it cannot make the bridge, TAPs or NAT rules",
		    "run bangerd as root (systemd unit) or grant it CAP_NET_ADMIN");
	/* Without CAP_NET_ADMIN libnftables prints to our stderr: skip it. */
	if (!has_cap_net_admin())
		add(checks, "nftables", "nat", CHK_FAIL, "nftables needs "
		    "CAP_NET_ADMIN", "run bangerd as root or grant it CAP_NET_ADMIN");
	else if (nat_probe(&err) == 0)
		add(checks, "nftables", "nat", CHK_OK, "libnftables can reach the "
		    "kernel", NULL);
	else
		add(checks, "nftables", "nat", CHK_FAIL, err.msg, err.hint[0] ?
		    err.hint : "enable nf_tables in the kernel and run bangerd as root");
	if (net_parse_cidr(c->cfg.bridge_cidr, &addr, &prefix, &err) < 0) {
		add(checks, "bridge", "network", CHK_FAIL, err.msg,
		    "fix \"bridge_cidr\" in config.json");
		return;
	}
	struct in_addr net = { htonl(ntohl(addr.s_addr) & (~0u << (32 - prefix))) };
	if (net_check_subnet(net, prefix, c->cfg.bridge, &err) < 0) {
		add(checks, "subnet", "network", CHK_FAIL, err.msg, err.hint);
	} else {
		snprintf(msg, sizeof(msg), "%s does not overlap a host route",
		    c->cfg.bridge_cidr);
		add(checks, "subnet", "network", CHK_OK, msg, NULL);
	}
	if (net_link_exists(c->cfg.bridge)) {
		snprintf(msg, sizeof(msg), "bridge %s is up with %s", c->cfg.bridge,
		    c->cfg.bridge_cidr);
		add(checks, "bridge", "network", CHK_OK, msg, NULL);
	} else {
		snprintf(msg, sizeof(msg), "bridge %s does not exist yet",
		    c->cfg.bridge);
		add(checks, "bridge", "network", CHK_WARN, msg, "it is made when "
		    "the first VM starts; see the cap_net_admin and tun checks");
	}
	if (c->cfg.dns_port == 0) {
		add(checks, "dns", "dns", CHK_WARN, ".vm DNS is off (dns_port 0)",
		    "set \"dns_port\" in config.json");
	} else if (c->dns != NULL) {
		snprintf(msg, sizeof(msg), "answering *.vm on %s port %u",
		    c->cfg.bridge_cidr, dns_server_port(c->dns));
		add(checks, "dns", "dns", CHK_OK, msg, NULL);
	} else {
		snprintf(msg, sizeof(msg), "the .vm responder is not running (port "
		    "%d on the bridge address)", c->cfg.dns_port);
		add(checks, "dns", "dns", CHK_FAIL, msg, "free the port or set "
		    "\"dns_port\" in config.json; see bangerd's log");
	}
	check_resolver(c, checks);
}
static void
check_file(json_t *checks, const char *name, const char *path, bool exec,
    enum chk missing, const char *fix)
{
	char msg[PATH_MAX + 64];

	if (access(path, exec ? X_OK : R_OK) == 0) {
		snprintf(msg, sizeof(msg), "%s", path);
		add(checks, name, "runtime_bundle", CHK_OK, msg, NULL);
	} else {
		snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
		add(checks, name, "runtime_bundle", missing, msg, fix);
	}
}

static void
check_firecracker(struct core *c, json_t *checks, enum chk bad)
{
	char bin[PATH_MAX], out[256], msg[PATH_MAX + 300];
	struct bn_err err;

	if (!vmm_find_exe(c->bundle.firecracker, "firecracker", bin, sizeof(bin))) {
		snprintf(msg, sizeof(msg), "firecracker not found at %s or in PATH",
		    c->bundle.firecracker);
		add(checks, "vmm_firecracker", "vms", bad, msg,
		    "install Firecracker (a release binary) and set \"firecracker\" "
		    "in bundle.json, or set BANGER_FIRECRACKER");
		return;
	}
	char *argv[] = { bin, "--version", NULL };
	if (proc_run(argv, 5000, out, sizeof(out), NULL, &err) < 0) {
		snprintf(msg, sizeof(msg), "%s --version failed: %s", bin, err.msg);
		add(checks, "vmm_firecracker", "vms", bad, msg,
		    "reinstall Firecracker");
		return;
	}
	out[strcspn(out, "\n")] = '\0';
	snprintf(msg, sizeof(msg), "%s (%s)", bin, out);
	add(checks, "vmm_firecracker", "vms", CHK_OK, msg, NULL);
}

/* The QEMU driver's parts: qemu-system-x86_64 with the microvm machine,
 * and vhost-device-vsock. */
static void
check_qemu(struct core *c, json_t *checks, enum chk bad)
{
	char bin[PATH_MAX], helper[PATH_MAX], msg[PATH_MAX + 300];
	static __thread char out[16384];
	struct bn_err err;

	if (!vmm_find_exe(c->bundle.qemu, "qemu-system-x86_64", bin, sizeof(bin))) {
		snprintf(msg, sizeof(msg), "qemu-system-x86_64 not found at %s or "
		    "in PATH", c->bundle.qemu);
		add(checks, "vmm_qemu", "vms", bad, msg, "apt-get install "
		    "qemu-system-x86, or set \"qemu\" in bundle.json");
	} else {
		char *mh[] = { bin, "-machine", "help", NULL };
		char *ver[] = { bin, "--version", NULL };
		if (proc_run(mh, 10000, out, sizeof(out), NULL, &err) < 0 ||
		    strstr(out, "\nmicrovm ") == NULL) {
			snprintf(msg, sizeof(msg), "%s has no microvm machine", bin);
			add(checks, "vmm_qemu", "vms", bad, msg, "install QEMU 4.2 "
			    "or newer (Debian's qemu-system-x86)");
		} else if (proc_run(ver, 5000, out, sizeof(out), NULL, &err) < 0) {
			snprintf(msg, sizeof(msg), "%s --version failed: %s", bin,
			    err.msg);
			add(checks, "vmm_qemu", "vms", bad, msg, "reinstall "
			    "qemu-system-x86");
		} else {
			out[strcspn(out, "\n")] = '\0';
			snprintf(msg, sizeof(msg), "%s (%s)", bin, out);
			add(checks, "vmm_qemu", "vms", CHK_OK, msg, NULL);
		}
	}
	if (!vmm_find_exe(c->bundle.vhost_user_vsock, "vhost-device-vsock", helper,
	    sizeof(helper))) {
		snprintf(msg, sizeof(msg), "vhost-device-vsock not found at %s or in "
		    "PATH (QEMU VMs need it for vsock)", c->bundle.vhost_user_vsock);
		add(checks, "vsock_helper", "vms", bad, msg, "run "
		    "rootfs/fetch-vhost-device-vsock.sh --out <bundle>/tools and set "
		    "\"vhost_user_vsock\": \"tools/vhost-device-vsock\" in bundle.json");
		return;
	}
	char *hv[] = { helper, "--version", NULL };
	if (proc_run(hv, 5000, out, sizeof(out), NULL, &err) < 0) {
		snprintf(msg, sizeof(msg), "%s --version failed: %s", helper, err.msg);
		add(checks, "vsock_helper", "vms", bad, msg, "fetch it again: "
		    "rootfs/fetch-vhost-device-vsock.sh --force");
		return;
	}
	out[strcspn(out, "\n")] = '\0';
	snprintf(msg, sizeof(msg), "%s (%s)", helper, out);
	add(checks, "vsock_helper", "vms", CHK_OK, msg, NULL);
}

/* Shared folders: which virtiofsd QEMU VMs would get; on Firecracker,
 * that it has none (a VM with mounts is refused). */
static void
check_shares(struct core *c, json_t *checks, const struct vmm_choice *ch)
{
	char bin[PATH_MAX], msg[PATH_MAX + 200];
	static const char *hint = "apt-get install qemu-system-x86 (bookworm's "
	    "ships /usr/lib/qemu/virtiofsd) or virtiofsd (trixie and later), "
	    "or set \"virtiofsd\" in bundle.json";

	if (ch != NULL && ch->drv == &vmm_firecracker) {
		add(checks, "shared_folders", "vms", CHK_WARN, "firecracker has no "
		    "virtio-fs: a VM with mounts is refused (unsupported_by_vmm)",
		    "copy files with 'banger vm cp', or use QEMU (\"vmm\": "
		    "\"qemu\" in bundle.json)");
		return;
	}
	if (!vmm_find_virtiofsd(c->bundle.virtiofsd, bin, sizeof(bin))) {
		add(checks, "shared_folders", "vms", CHK_WARN, "no virtiofsd: QEMU "
		    "VMs with mounts will not start", hint);
		return;
	}
	snprintf(msg, sizeof(msg), "virtiofsd %s", bin);
	add(checks, "shared_folders", "vms", CHK_OK, msg, NULL);
}

/* What VMs boot with now: driver, accelerator and why. */
static void
check_vmm(json_t *checks, const struct vmm_choice *ch, const struct bn_err *perr)
{
	char msg[PATH_MAX + 400];

	if (ch == NULL) {
		add(checks, "vmm", "vms", CHK_FAIL, perr->msg, perr->hint[0] ?
		    perr->hint : NULL);
		return;
	}
	snprintf(msg, sizeof(msg), "VMs boot with %s (%s), accel %s: %s",
	    ch->drv->name, ch->binary, ch->accel, ch->accel_reason);
	add(checks, "vmm", "vms", strcmp(ch->accel, "kvm") == 0 ? CHK_OK : CHK_WARN,
	    msg, strcmp(ch->accel, "kvm") == 0 ? NULL : "TCG emulates the CPU: "
	    "boots take seconds longer; on a host with VT-x/AMD-V and /dev/kvm, "
	    "QEMU and Firecracker use KVM");
}

/* Images whose guests do not shut down when asked: every one of their
 * last DOCTOR_STOPS stops had to be forced, so their users lose unsynced
 * writes and every boot replays journals. */
#define DOCTOR_STOPS 3

static void
check_stops(struct core *c, json_t *checks)
{
	struct image_stops *rows = NULL;
	struct bn_err err;
	char msg[512];
	int n = 0, bad = 0;

	if (store_stop_summary(c->store, DOCTOR_STOPS, &rows, &n, &err) < 0) {
		add(checks, "clean_stops", "vms", CHK_WARN, err.msg, NULL);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (rows[i].stops == 0 || rows[i].forced < rows[i].stops)
			continue;
		bad++;
		snprintf(msg, sizeof(msg), "image '%s': its last %d stop%s %s "
		    "forced: the guest did not shut down when asked",
		    rows[i].image, rows[i].stops, rows[i].stops == 1 ? "" : "s",
		    rows[i].stops == 1 ? "was" : "were");
		add(checks, "clean_stops", "vms", CHK_WARN, msg, "rebuild the "
		    "image with a current banger-vsock-agent (make rootfs), or "
		    "see the VM's console (banger vm console NAME) for what "
		    "blocks its shutdown");
	}
	if (bad == 0) {
		snprintf(msg, sizeof(msg), n == 0 ? "no VM has been stopped yet" :
		    "the last stops of every image were clean");
		add(checks, "clean_stops", "vms", CHK_OK, msg, NULL);
	}
	free(rows);
}

/* Sparse VM disks may promise more than the host has. */
static void
check_disk(struct core *c, json_t *checks, bool on_qemu)
{
	struct host_capacity hc;
	struct bn_err err;
	char msg[512];
	long long mib = 1 << 20;

	if (core_host_capacity(c, &hc, NULL, &err) < 0) {
		add(checks, "disk", "vms", CHK_WARN, err.msg, NULL);
		return;
	}
	if (hc.committed <= hc.free - hc.reserve) {
		snprintf(msg, sizeof(msg), "%lld MiB free on %s; VM disks may still "
		    "claim %lld MiB; %lld MiB kept in reserve", hc.free / mib,
		    c->cfg.state_dir, hc.committed / mib, hc.reserve / mib);
		add(checks, "disk", "vms", hc.free < hc.reserve ? CHK_WARN : CHK_OK,
		    msg, hc.free < hc.reserve ? "free space on the host: creates "
		    "and starts are refused below the reserve" : NULL);
		return;
	}
	snprintf(msg, sizeof(msg), "overcommitted: VM disks may still claim %lld "
	    "MiB, %lld MiB are free on %s above the reserve of %lld MiB; %s",
	    hc.committed / mib, (hc.free - hc.reserve) / mib, c->cfg.state_dir,
	    hc.reserve / mib, on_qemu ? "a QEMU VM that fills it is paused "
	    "(host_disk_full) until it is resumed" : "Firecracker cannot pause "
	    "a VM on a full disk: its guest gets I/O errors");
	add(checks, "disk", "vms", CHK_WARN, msg, "free space, delete unused "
	    "VMs, or give VMs smaller work disks (disk_gib)");
}

/* FNV-1a over the identities (device, inode, size, mtime, path) of the
 * bundle's files: it changes when any part is rebuilt or replaced. */
static void
bundle_identity(struct core *c, char out[17])
{
	const char *parts[] = { NULL, c->bundle.kernel, c->bundle.initrd,
		c->bundle.rootfs, c->bundle.work_seed, c->bundle.agent,
		c->bundle.ssh_key };
	char manifest[PATH_MAX + 16];
	uint64_t h = 1469598103934665603ULL;

	snprintf(manifest, sizeof(manifest), "%s/bundle.json", c->bundle.dir);
	parts[0] = manifest;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		struct stat st;
		uint64_t v = stat(parts[i], &st) == 0 ?
		    file_identity_hash(parts[i], &st) : 0;
		for (int b = 0; b < 8; b++)
			h = (h ^ ((v >> (8 * b)) & 0xff)) * 1099511628211ULL;
	}
	snprintf(out, 17, "%016" PRIx64, h);
}

json_t *
core_daemon_info(struct core *c)
{
	char exe[PATH_MAX], id[17];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	exe[n > 0 ? n : 0] = '\0';
	bundle_identity(c, id);
	/* Absolute, so a client can compare them with its own. */
	char state[PATH_MAX], runtime[PATH_MAX];
	if (realpath(c->cfg.state_dir, state) == NULL)
		snprintf(state, sizeof(state), "%s", c->cfg.state_dir);
	if (realpath(c->bundle.dir, runtime) == NULL)
		snprintf(runtime, sizeof(runtime), "%s", c->bundle.dir);
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:{s:b, s:s, s:s, s:s}}",
	    "pid", (int)getpid(), "binary", exe, "socket", c->cfg.socket,
	    "state_dir", state, "runtime_dir", runtime,
	    "bundle", "found", c->bundle.found, "id", id,
	    "kernel", c->bundle.kernel, "rootfs", c->bundle.rootfs);
}

json_t *
core_doctor(struct core *c)
{
	json_t *checks = json_array();
	char msg[512];
	const char *worst = "ok";

	struct vmm_choice *ch = xmalloc(sizeof(*ch));
	struct bn_err perr = { 0 };
	bool picked = vmm_pick(c, ch, &perr) == 0;
	bool on_qemu = picked && ch->drv == &vmm_qemu;

	/* A part the chosen driver does not use is a warning, not a failure;
	 * when none can be chosen, both drivers' parts are failures. */
	check_kvm(checks, on_qemu);
	check_firecracker(c, checks, picked && on_qemu ? CHK_WARN : CHK_FAIL);
	check_qemu(c, checks, picked && !on_qemu ? CHK_WARN : CHK_FAIL);
	check_vmm(checks, picked ? ch : NULL, &perr);
	check_shares(c, checks, picked ? ch : NULL);
	free(ch);
	check_network(c, checks);
	bool cg = cg_doctor(c, msg, sizeof(msg));
	add(checks, "cgroups", "vm_limits", cg ? CHK_OK : CHK_WARN, msg, cg ? NULL :
	    "boot with the unified cgroup hierarchy (systemd's default) or set "
	    "cgroup_root in config.json");
	if (c->bundle.found)
		snprintf(msg, sizeof(msg), "%s/bundle.json", c->bundle.dir);
	else
		snprintf(msg, sizeof(msg), "no bundle.json in %s (defaults apply)",
		    c->bundle.dir);
	add(checks, "bundle", "runtime_bundle", c->bundle.found ? CHK_OK : CHK_WARN,
	    msg, c->bundle.found ? NULL : "run 'make runtime-bundle'");
	check_file(checks, "kernel", c->bundle.kernel, false, CHK_FAIL,
	    "run 'make runtime-bundle'");
	check_file(checks, "initrd", c->bundle.initrd, false, CHK_WARN,
	    "run 'make runtime-bundle' (needed when the kernel has virtio as modules)");
	check_file(checks, "rootfs", c->bundle.rootfs, false, CHK_FAIL,
	    "run 'make runtime-bundle' or register an image");
	check_file(checks, "work_seed", c->bundle.work_seed, false, CHK_WARN,
	    "run 'make runtime-bundle'; without it work disks start empty");
	check_file(checks, "ssh_key", c->bundle.ssh_key, false, CHK_WARN,
	    "run 'make runtime-bundle' to generate the bundle's SSH key");
	check_file(checks, "agent", c->bundle.agent, true, CHK_WARN,
	    "run 'make build' (the agent is built into runtime/)");
	/* core/hostkeys.c */
	if (access("/usr/bin/ssh-keygen", X_OK) == 0 &&
	    access("/sbin/debugfs", X_OK) == 0)
		add(checks, "host_keys", "ssh", CHK_OK, "new VMs' SSH host keys "
		    "are made on the host (ssh-keygen, debugfs) and pinned by "
		    "'banger vm ssh'", NULL);
	else
		add(checks, "host_keys", "ssh", CHK_WARN, "no /usr/bin/ssh-keygen "
		    "or /sbin/debugfs: guests make their own SSH host keys on "
		    "their first boot (slower) and 'banger vm ssh' trusts them "
		    "on first use", "apt-get install openssh-client e2fsprogs");

	if (access(c->cfg.state_dir, W_OK) == 0) {
		snprintf(msg, sizeof(msg), "%s is writable", c->cfg.state_dir);
		add(checks, "state_dir", "daemon", CHK_OK, msg, NULL);
	} else {
		snprintf(msg, sizeof(msg), "%s: %s", c->cfg.state_dir, strerror(errno));
		add(checks, "state_dir", "daemon", CHK_FAIL, msg,
		    "fix the permissions or pass --state-dir");
	}
	check_stops(c, checks);
	check_disk(c, checks, on_qemu);
	char id[17], exe[PATH_MAX];
	ssize_t xn = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[xn > 0 ? xn : 0] = '\0';
	bundle_identity(c, id);
	snprintf(msg, sizeof(msg), "bangerd pid %d (%s), runtime %s (bundle %s), "
	    "state %s", (int)getpid(), exe, c->bundle.dir, id, c->cfg.state_dir);
	add(checks, "daemon", "daemon", CHK_OK, msg, NULL);
	int nlegacy = c->cfg.legacy.n + c->bundle.legacy.n;
	if (nlegacy == 0) {
		add(checks, "legacy_keys", "config", CHK_OK, "no deprecated keys in "
		    "config.json or bundle.json", NULL);
	} else {
		size_t len = (size_t)snprintf(msg, sizeof(msg), "deprecated keys:");
		for (int i = 0; i < c->cfg.legacy.n && len < sizeof(msg); i++)
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, " %s",
			    c->cfg.legacy.keys[i]);
		for (int i = 0; i < c->bundle.legacy.n && len < sizeof(msg); i++)
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, " %s",
			    c->bundle.legacy.keys[i]);
		add(checks, "legacy_keys", "config", CHK_WARN, msg,
		    "rename ping_helper to agent and ping_port to agent_port");
	}

	size_t i;
	json_t *chk;
	json_array_foreach(checks, i, chk) {
		const char *s = json_string_value(json_object_get(chk, "status"));
		if (strcmp(s, "fail") == 0)
			worst = "fail";
		else if (strcmp(s, "warn") == 0 && strcmp(worst, "ok") == 0)
			worst = "warn";
	}
	return json_pack("{s:s, s:o}", "status", worst, "checks", checks);
}
