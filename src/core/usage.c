/* usage.c - what a running VM uses, as the host sees it.
 *
 * A VM's processes are its VMM, every process below it, and the helpers
 * its driver names (QEMU's vsock helper).  CPU time and storage I/O are
 * theirs summed (/proc/PID/stat, /proc/PID/io: what they made the kernel
 * read from and write to storage), memory their resident sets; network
 * bytes are the TAP's counters turned to the guest's side.  Read afresh
 * on every call: no sampler thread, nothing kept. */
#include "core/internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/proc.h"
#include "common/util.h"
#include "net/link.h"

#define USAGE_PROCS_MAX 64

/* ppid of pid from /proc/PID/stat; -1 when gone. */
static pid_t
stat_ppid(pid_t pid)
{
	char path[64], buf[512];
	int ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (file_read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	/* The name may hold anything: fields start after its last ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/* Every process's parent, read once for all the VMs a caller asks
 * about (GET /v1/metrics walks /proc one time, not once per VM). */
struct proc_table {
	struct { pid_t pid, ppid; } *v;
	size_t n;
};

struct proc_table *
proc_table_read(void)
{
	struct proc_table *t = xcalloc(1, sizeof(*t));
	size_t cap = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (d == NULL)
		return t;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)atoi(de->d_name), ppid = stat_ppid(pid);
		if (ppid <= 0)
			continue;
		if (t->n == cap) {
			cap = cap ? cap * 2 : 256;
			t->v = xrealloc(t->v, cap * sizeof(*t->v));
		}
		t->v[t->n].pid = pid;
		t->v[t->n].ppid = ppid;
		t->n++;
	}
	closedir(d);
	return t;
}

void
proc_table_free(struct proc_table *t)
{
	if (t == NULL)
		return;
	free(t->v);
	free(t);
}

/* root and every process below it, into out (at most max). */
static int
proc_tree(const struct proc_table *t, pid_t root, pid_t *out, int max)
{
	int n = 0;

	out[n++] = root;
	/* Breadth first: out[i]'s children are appended after it. */
	for (int i = 0; i < n; i++)
		for (size_t k = 0; k < t->n && n < max; k++)
			if (t->v[k].ppid == out[i])
				out[n++] = t->v[k].pid;
	return n;
}

/* One process's share; false when it is gone. */
static bool
proc_usage(pid_t pid, struct vm_usage *u)
{
	char path[64], buf[1024];
	unsigned long long ut, st;
	long long rss;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (file_read_small(path, buf, sizeof(buf)) < 0)
		return false;
	char *p = strrchr(buf, ')');
	/* After the name: state(3) ... utime(14) stime(15) ... rss(24). */
	if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u "
	    "%*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %*u %*u %lld", &ut, &st,
	    &rss) != 3)
		return false;
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	u->cpu_seconds += (double)(ut + st) / (double)(hz > 0 ? hz : 100);
	u->memory_bytes += rss * (page > 0 ? page : 4096);
	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	if (file_read_small(path, buf, sizeof(buf)) == 0) {
		const char *r = strstr(buf, "\nread_bytes:");
		const char *w = strstr(buf, "\nwrite_bytes:");
		if (r != NULL)
			u->disk_read_bytes += strtoll(r + 12, NULL, 10);
		if (w != NULL)
			u->disk_write_bytes += strtoll(w + 13, NULL, 10);
	}
	u->processes++;
	return true;
}

static long long
tap_counter(const char *tap, const char *name)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", tap,
	    name);
	return file_read_small(path, buf, sizeof(buf)) == 0 ?
	    strtoll(buf, NULL, 10) : 0;
}

void
vm_usage_read(struct core *c, const struct vm *vm,
    const struct proc_table *procs, struct vm_usage *u)
{
	pid_t pids[USAGE_PROCS_MAX];
	struct vmm_params p;
	int n;

	memset(u, 0, sizeof(*u));
	if (vm->pid <= 0 || !proc_alive(vm->pid))
		return;
	u->running = true;
	struct proc_table *own = procs == NULL ? proc_table_read() : NULL;
	n = proc_tree(procs != NULL ? procs : own, vm->pid, pids,
	    USAGE_PROCS_MAX);
	proc_table_free(own);
	const struct vmm_driver *drv = vmm_by_name(vm->vmm);
	if (drv->helpers != NULL && vm_ctl_params(c, vm, &p, NULL) == 0)
		n += drv->helpers(&p, pids + n, USAGE_PROCS_MAX - n);
	for (int i = 0; i < n; i++)
		proc_usage(pids[i], u);
	if (vm->tap[0] != '\0' && net_ifname_valid(vm->tap)) {
		/* The TAP's receive is what the guest sent. */
		u->net_from_guest_bytes = tap_counter(vm->tap, "rx_bytes");
		u->net_to_guest_bytes = tap_counter(vm->tap, "tx_bytes");
		u->net_from_guest_packets = tap_counter(vm->tap, "rx_packets");
		u->net_to_guest_packets = tap_counter(vm->tap, "tx_packets");
	}
}

json_t *
core_vm_usage_json(struct core *c, const char *name, struct bn_err *err)
{
	struct vm vm;
	struct vm_usage u;
	char now[32];

	if (core_vm_get(c, name, &vm, err) < 0)
		return NULL;
	vm_usage_read(c, &vm, NULL, &u);
	time_rfc3339(now);
	return json_pack("{s:s, s:s, s:s, s:b, s:i, s:f, s:I, "
	    "s:{s:I, s:I}, s:{s:I, s:I, s:I, s:I}}",
	    "name", vm.name, "state", vm_state_name(vm.state), "sampled_at", now,
	    "running", u.running, "processes", u.processes,
	    "cpu_seconds", u.cpu_seconds,
	    "memory_bytes", (json_int_t)u.memory_bytes,
	    "disk", "read_bytes", (json_int_t)u.disk_read_bytes,
	    "write_bytes", (json_int_t)u.disk_write_bytes,
	    "network", "to_guest_bytes", (json_int_t)u.net_to_guest_bytes,
	    "from_guest_bytes", (json_int_t)u.net_from_guest_bytes,
	    "to_guest_packets", (json_int_t)u.net_to_guest_packets,
	    "from_guest_packets", (json_int_t)u.net_from_guest_packets);
}
