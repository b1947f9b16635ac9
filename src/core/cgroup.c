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
 * Without cgroup v2 (none, or the hybrid layout whose controllers sit in
 * v1 hierarchies), VMs run where bangerd runs, and a VM whose spec asks
 * for cpus or memory_max_mib does not start: it says why. */
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static void
vm_cgroup_dir(struct core *c, const struct vm *vm, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" SLICE "/vm-%s", c->cfg.cgroup_root, vm->id);
}

int
cg_place(struct core *c, const struct vm *vm, const pid_t *pids, int n,
    struct bn_err *err)
{
	const struct vm_limits *l = &vm->limits;
	bool want = l->cpus > 0 || l->memory_max_mib > 0;
	char have[256], slice[PATH_MAX + 16], dir[PATH_MAX + 64], v[64];

	if (controllers(c, have, sizeof(have)) < 0 ||
	    (want && ((l->cpus > 0 && !listed(have, "cpu")) ||
	    (l->memory_max_mib > 0 && !listed(have, "memory"))))) {
		if (!want)
			return 0;  /* accounting only: not without v2 */
		bn_fail(err, BN_EUNSUPPORTED, 0, "vm '%s' has cpu or memory "
		    "limits, and %s is no cgroup v2 hierarchy with the cpu and "
		    "memory controllers", vm->name, c->cfg.cgroup_root);
		return bn_err_hint(err, "boot the host with the unified cgroup "
		    "hierarchy (systemd's default), set cgroup_root in "
		    "config.json, or drop the VM's limits");
	}
	delegate(c->cfg.cgroup_root, have);
	snprintf(slice, sizeof(slice), "%s/" SLICE, c->cfg.cgroup_root);
	if (mkdir(slice, 0755) < 0 && errno != EEXIST)
		return bn_fail(err, BN_ESYS, errno, "mkdir %s", slice);
	delegate(slice, have);
	vm_cgroup_dir(c, vm, dir, sizeof(dir));
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return bn_fail(err, BN_ESYS, errno, "mkdir %s", dir);
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
	for (int i = 0; i < n; i++) {
		snprintf(v, sizeof(v), "%d", (int)pids[i]);
		if (pids[i] > 0 && write_str(dir, "cgroup.procs", v, err) < 0)
			return -1;
	}
	log_info("vm '%s': in cgroup %s (cpu.max %s)", vm->name, dir,
	    l->cpus > 0 ? "limited" : "unlimited");
	return 0;
}

void
cg_remove(struct core *c, const struct vm *vm)
{
	char dir[PATH_MAX + 64];

	vm_cgroup_dir(c, vm, dir, sizeof(dir));
	/* A real cgroup goes with rmdir once empty; a plain directory (a
	 * cgroup_root that is not cgroupfs) needs its files gone first. */
	if (rmdir(dir) < 0 && errno == ENOTEMPTY) {
		char probe[PATH_MAX + 32];
		struct stat st;
		snprintf(probe, sizeof(probe), "%s/cgroup.events", dir);
		if (stat(probe, &st) < 0)
			fs_remove_tree(dir, NULL);
	}
}

bool
cg_doctor(struct core *c, char *msg, size_t len)
{
	char have[256];

	if (controllers(c, have, sizeof(have)) < 0) {
		snprintf(msg, len, "%s is no cgroup v2 hierarchy: VMs run in "
		    "bangerd's cgroup, and those with cpu or memory limits do "
		    "not start", c->cfg.cgroup_root);
		return false;
	}
	if (!listed(have, "cpu") || !listed(have, "memory")) {
		snprintf(msg, len, "cgroup v2 at %s offers \"%.*s\", without cpu "
		    "or memory: VMs with such limits do not start",
		    c->cfg.cgroup_root, (int)strcspn(have, "\n"), have);
		return false;
	}
	snprintf(msg, len, "cgroup v2 at %s: each VM in %s/vm-ID, its cpu and "
	    "memory limits kept", c->cfg.cgroup_root, SLICE);
	return true;
}
