/* cgroup.c - a VM's processes in a cgroup of their own, and its limits.
 *
 * On a host with the cgroup v2 hierarchy (cgroup_root, /sys/fs/cgroup),
 * a VM's VMM and helpers move to banger.slice/vm-ID right after the VMM
 * starts (children it forks later are born there).  Its spec's limits
 * become cpu.max (cpus: a quota per 100 ms period) and memory.max
 * (memory_max_mib, guest memory and the VMM's own); memory.swap.max is
 * 0 with a memory limit, so the limit is not a slow swap.  Disk and
 * network rates are the VMM's (vmm/ rate limiters and throttling).
 *
 * A hybrid host has cgroup v1 hierarchies under cgroup_root (memory,
 * cpu, ...) and a v2 one without those controllers: there the VM gets
 * banger.slice/vm-ID in both the memory and the cpu hierarchy, with
 * memory.limit_in_bytes (and memory.memsw.limit_in_bytes, the same:
 * no swap beyond it) and cpu.cfs_quota_us per 100 ms cpu.cfs_period_us.
 * Only VMs with cpu or memory limits go there: banger reads usage from
 * /proc, so a v1 cgroup would only add two host hierarchies to touch
 * (and fail on) for every VM.  v2 comes first when it has both
 * controllers, and holds every VM as before.
 *
 * With neither, VMs run where bangerd runs, and a VM whose spec asks for
 * cpus or memory_max_mib does not start: it says why. */
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"

#define SLICE "banger.slice"
#define CPU_PERIOD_US 100000
/* The VMM's own memory on top of the guest's, at the least. */
#define VMM_OVERHEAD_MIB 64

int
vm_limits_check(struct core *c, const struct vm *vm, struct bn_err *err)
{
	const struct vm_limits *l = &vm->limits;

	(void)c;
	if (l->cpus > 0 && (l->cpus < 0.01 || l->cpus > vm->vcpus)) {
		bn_fail(err, BN_EINVAL, 0, "limits.cpus is %.2f; it must be "
		    "from 0.01 to the VM's %d vCPUs (0: no limit)", l->cpus,
		    vm->vcpus);
		return bn_err_detail(err, "field", "limits");
	}
	if (l->memory_max_mib > 0 &&
	    l->memory_max_mib < vm->memory_mib + VMM_OVERHEAD_MIB) {
		bn_fail(err, BN_EINVAL, 0, "limits.memory_max_mib is %d; it "
		    "holds the guest's %d MiB and the VMM's own, so at least %d",
		    l->memory_max_mib, vm->memory_mib,
		    vm->memory_mib + VMM_OVERHEAD_MIB);
		return bn_err_detail(err, "field", "limits");
	}
	if ((l->disk_bytes_per_s > 0 && l->disk_bytes_per_s < 4096) ||
	    (l->net_bytes_per_s > 0 && l->net_bytes_per_s < 4096)) {
		bn_fail(err, BN_EINVAL, 0, "limits: a rate below 4096 bytes a "
		    "second would stall the guest");
		return bn_err_detail(err, "field", "limits");
	}
	return 0;
}

/* The controllers cgroup_root offers ("cpu io memory pids"), or -1 when
 * it is no cgroup v2 hierarchy. */
static int
controllers(struct core *c, char *buf, size_t len)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/cgroup.controllers", c->cfg.cgroup_root);
	return file_read_small(path, buf, len);
}

static bool
listed(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' ||
		    p[n] == '\n'))
			return true;
	return false;
}

static int
write_str(const char *dir, const char *file, const char *value,
    struct bn_err *err)
{
	char path[PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	/* O_CREAT and O_TRUNC only matter to a cgroup_root that is a plain
	 * directory (tests); cgroupfs files exist and ignore truncation. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0)
		return bn_fail(err, BN_ESYS, errno, "open %s", path);
	ssize_t n = write(fd, value, strlen(value));
	int e = errno;
	close(fd);
	if (n != (ssize_t)strlen(value))
		return bn_fail(err, BN_ESYS, n < 0 ? e : EIO, "write %s to %s",
		    value, path);
	return 0;
}

/* Enable controllers for the children of dir ("+cpu +memory ..."), in
 * one write: the kernel takes the list whole. */
static void
delegate(const char *dir, const char *have)
{
	static const char *const want[] = { "cpu", "memory", "io", "pids" };
	char line[64] = "";

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (listed(have, want[i]))
			snprintf(line + strlen(line), sizeof(line) - strlen(line),
			    "%s+%s", line[0] ? " " : "", want[i]);
	if (line[0] != '\0')
		write_str(dir, "cgroup.subtree_control", line, NULL);
}

/* The VM's cgroup in the hierarchy at cgroup_root, or in its v1
 * hierarchy sub ("memory", "cpu"; NULL: the v2 one). */
static void
vm_cgroup_dir(struct core *c, const struct vm *vm, const char *sub, char *buf,
    size_t len)
{
	snprintf(buf, len, "%s%s%s/" SLICE "/vm-%s", c->cfg.cgroup_root,
	    sub != NULL ? "/" : "", sub != NULL ? sub : "", vm->id);
}

static bool
has_file(const char *root, const char *sub, const char *file)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s/%s", root, sub, file);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A hybrid host's v1 memory and cpu hierarchies under cgroup_root ("cpu"
 * may be a link to "cpu,cpuacct": the path goes through it). */
static bool
v1_hierarchies(struct core *c)
{
	return has_file(c->cfg.cgroup_root, "memory", "memory.limit_in_bytes") &&
	    has_file(c->cfg.cgroup_root, "cpu", "cpu.cfs_quota_us");
}

enum cg_kind { CG_NONE, CG_V1, CG_V2 };

/* Where VMs' cgroups go: v2 with cpu and memory; else the v1 hierarchies;
 * else v2 with what it offers (have: its controllers, "" without). */
static enum cg_kind
cg_kind(struct core *c, char *have, size_t len)
{
	bool v2 = controllers(c, have, len) >= 0;

	if (!v2)
		have[0] = '\0';
	if (v2 && listed(have, "cpu") && listed(have, "memory"))
		return CG_V2;
	if (v1_hierarchies(c))
		return CG_V1;
	return v2 ? CG_V2 : CG_NONE;
}

/* mkdir the VM's cgroup, and banger.slice above it, in one hierarchy. */
static int
make_cgroup(struct core *c, const struct vm *vm, const char *sub, char *dir,
    size_t len, struct bn_err *err)
{
	char slice[PATH_MAX + 32];

	snprintf(slice, sizeof(slice), "%s%s%s/" SLICE, c->cfg.cgroup_root,
	    sub != NULL ? "/" : "", sub != NULL ? sub : "");
	if (mkdir(slice, 0755) < 0 && errno != EEXIST)
		return bn_fail(err, BN_ESYS, errno, "mkdir %s", slice);
	vm_cgroup_dir(c, vm, sub, dir, len);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return bn_fail(err, BN_ESYS, errno, "mkdir %s", dir);
	return 0;
}

static int
move_pids(const char *dir, const pid_t *pids, int n, struct bn_err *err)
{
	char v[32];

	for (int i = 0; i < n; i++) {
		snprintf(v, sizeof(v), "%d", (int)pids[i]);
		if (pids[i] > 0 && write_str(dir, "cgroup.procs", v, err) < 0)
			return -1;
	}
	return 0;
}

/* The v1 way: a cgroup in each of the memory and cpu hierarchies.  Charges
 * a process made before the move stay where they were (as on v2); the VMM
 * moves before the guest runs, so its memory is charged here. */
static int
place_v1(struct core *c, const struct vm *vm, const pid_t *pids, int n,
    struct bn_err *err)
{
	const struct vm_limits *l = &vm->limits;
	char mem[PATH_MAX + 64], cpu[PATH_MAX + 64], v[64], period[16];
	bool memsw = has_file(c->cfg.cgroup_root, "memory",
	    "memory.memsw.limit_in_bytes");

	if (make_cgroup(c, vm, "memory", mem, sizeof(mem), err) < 0 ||
	    make_cgroup(c, vm, "cpu", cpu, sizeof(cpu), err) < 0)
		return -1;
	snprintf(v, sizeof(v), "-1");
	if (l->memory_max_mib > 0)
		snprintf(v, sizeof(v), "%lld", (long long)l->memory_max_mib << 20);
	/* The kernel keeps limit_in_bytes <= memsw.limit_in_bytes: memsw
	 * opens first (a cgroup left from before may hold a lower one), then
	 * follows the limit down, so the guest cannot swap past it. */
	if (memsw)
		write_str(mem, "memory.memsw.limit_in_bytes", "-1", NULL);
	if (write_str(mem, "memory.limit_in_bytes", v, err) < 0 ||
	    (memsw && l->memory_max_mib > 0 &&
	    write_str(mem, "memory.memsw.limit_in_bytes", v, err) < 0))
		return -1;
	snprintf(v, sizeof(v), "-1");
	if (l->cpus > 0)
		snprintf(v, sizeof(v), "%lld",
		    (long long)(l->cpus * CPU_PERIOD_US + 0.5));
	snprintf(period, sizeof(period), "%d", CPU_PERIOD_US);
	if (write_str(cpu, "cpu.cfs_period_us", period, err) < 0 ||
	    write_str(cpu, "cpu.cfs_quota_us", v, err) < 0)
		return -1;
	if (move_pids(mem, pids, n, err) < 0 || move_pids(cpu, pids, n, err) < 0)
		return -1;
	log_info("vm '%s': in cgroup v1 %s and %s (cpu %s, memory %s)", vm->name,
	    mem, cpu, l->cpus > 0 ? "limited" : "unlimited",
	    l->memory_max_mib > 0 ? "limited" : "unlimited");
	return 0;
}

int
cg_place(struct core *c, const struct vm *vm, const pid_t *pids, int n,
    struct bn_err *err)
{
	const struct vm_limits *l = &vm->limits;
	bool want = l->cpus > 0 || l->memory_max_mib > 0;
	char have[256], dir[PATH_MAX + 64], v[64];
	enum cg_kind kind = cg_kind(c, have, sizeof(have));

	if (kind == CG_V1)
		return want ? place_v1(c, vm, pids, n, err) : 0;
	if (kind == CG_NONE || (want && ((l->cpus > 0 && !listed(have, "cpu")) ||
	    (l->memory_max_mib > 0 && !listed(have, "memory"))))) {
		if (!want)
			return 0;  /* accounting only: not without a cgroup */
		bn_fail(err, BN_EUNSUPPORTED, 0, "vm '%s' has cpu or memory "
		    "limits, and %s is no cgroup v2 hierarchy with the cpu and "
		    "memory controllers, nor holds cgroup v1 memory and cpu "
		    "hierarchies", vm->name, c->cfg.cgroup_root);
		return bn_err_hint(err, "boot the host with the unified cgroup "
		    "hierarchy (systemd's default), set cgroup_root in "
		    "config.json, or drop the VM's limits");
	}
	delegate(c->cfg.cgroup_root, have);
	snprintf(dir, sizeof(dir), "%s/" SLICE, c->cfg.cgroup_root);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return bn_fail(err, BN_ESYS, errno, "mkdir %s", dir);
	delegate(dir, have);
	if (make_cgroup(c, vm, NULL, dir, sizeof(dir), err) < 0)
		return -1;
	snprintf(v, sizeof(v), "max %d", CPU_PERIOD_US);
	if (l->cpus > 0)
		snprintf(v, sizeof(v), "%lld %d",
		    (long long)(l->cpus * CPU_PERIOD_US + 0.5), CPU_PERIOD_US);
	if (listed(have, "cpu") && write_str(dir, "cpu.max", v, err) < 0)
		return -1;
	if (listed(have, "memory")) {
		if (l->memory_max_mib > 0)
			snprintf(v, sizeof(v), "%lld",
			    (long long)l->memory_max_mib << 20);
		else
			snprintf(v, sizeof(v), "max");
		if (write_str(dir, "memory.max", v, err) < 0)
			return -1;
		/* Without swap accounting the file is not there: fine. */
		if (l->memory_max_mib > 0)
			write_str(dir, "memory.swap.max", "0", NULL);
	}
	if (move_pids(dir, pids, n, err) < 0)
		return -1;
	log_info("vm '%s': in cgroup %s (cpu.max %s)", vm->name, dir,
	    l->cpus > 0 ? "limited" : "unlimited");
	return 0;
}

/* A real cgroup goes with rmdir once empty; a plain directory (a
 * cgroup_root that is not cgroupfs: tests) needs its files gone first.
 * Gone already, or never made in this hierarchy: nothing to do. */
static void
remove_cgroup(const char *dir)
{
	struct statfs fs;

	if (rmdir(dir) < 0 && errno == ENOTEMPTY && statfs(dir, &fs) == 0 &&
	    fs.f_type != CGROUP_SUPER_MAGIC && fs.f_type != CGROUP2_SUPER_MAGIC)
		fs_remove_tree(dir, NULL);
}

void
cg_remove(struct core *c, const struct vm *vm)
{
	static const char *const subs[] = { NULL, "memory", "cpu" };
	char dir[PATH_MAX + 64];

	/* Each hierarchy cg_place may have used: which one it did is not
	 * kept, and the host's layout does not change under a VM. */
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		vm_cgroup_dir(c, vm, subs[i], dir, sizeof(dir));
		remove_cgroup(dir);
	}
}

bool
cg_doctor(struct core *c, char *msg, size_t len)
{
	char have[256];
	const char *root = c->cfg.cgroup_root;
	int h = 0;

	switch (cg_kind(c, have, sizeof(have))) {
	case CG_V1:
		snprintf(msg, len, "cgroup v1 (hybrid host): memory and cpu "
		    "hierarchies at %s/memory and %s/cpu: a VM with cpu or memory "
		    "limits in %s/vm-ID of both, its limits kept", root, root, SLICE);
		return true;
	case CG_NONE:
		snprintf(msg, len, "%s is no cgroup v2 hierarchy and holds no "
		    "cgroup v1 memory and cpu hierarchies: VMs run in bangerd's "
		    "cgroup, and those with cpu or memory limits do not start",
		    root);
		return false;
	case CG_V2:
		break;
	}
	h = (int)strcspn(have, "\n");
	if (!listed(have, "cpu") || !listed(have, "memory")) {
		snprintf(msg, len, "cgroup v2 at %s offers \"%.*s\", without cpu "
		    "or memory, and no v1 memory and cpu hierarchies are there: "
		    "VMs with such limits do not start", root, h, have);
		return false;
	}
	snprintf(msg, len, "cgroup v2: %.*s (at %s): each VM in %s/vm-ID, its "
	    "cpu and memory limits kept", h, have, root, SLICE);
	return true;
}
