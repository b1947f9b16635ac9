/* boot.c - what a boot and a stop say to the VMM and the guest: the
 * VMM's parameters and the kernel command line, the wait for the guest
 * agent (readiness, stalls), the agent's power-off request. */
#include "core/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "guest/guest.h"

/* The host's first non-loopback IPv4 resolver: systemd-resolved's upstream
 * list when it runs (its stub at 127.0.0.53 is not reachable from a
 * guest), else /etc/resolv.conf. */
static bool
host_upstream_dns(char out[16])
{
	const char *files[] = { "/run/systemd/resolve/resolv.conf",
		"/etc/resolv.conf" };

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		FILE *f = fopen(files[i], "re");
		char line[256], addr[64];
		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f)) {
			struct in_addr a;
			if (sscanf(line, " nameserver %63s", addr) != 1 ||
			    inet_pton(AF_INET, addr, &a) != 1 ||
			    (ntohl(a.s_addr) >> 24) == 127)
				continue;
			snprintf(out, 16, "%s", addr);
			fclose(f);
			return true;
		}
		fclose(f);
	}
	return false;
}

unsigned
agent_port(struct core *c)
{
	/* config.json overrides the bundle's port. */
	return (unsigned)(c->cfg.agent_port != 1024 ? c->cfg.agent_port :
	    c->bundle.agent_port);
}

int
vm_params(struct core *c, const struct vm *vm, const struct vm_net *net,
    const struct vmm_choice *ch, struct vmm_params *p, char *cmdline,
    size_t cmdsz, struct bn_err *err)
{
	char dir[PATH_MAX], upstream[16];
	const struct vmm_driver *drv = ch->drv;

	memset(p, 0, sizeof(*p));
	if (vm_dir(c, vm->id, dir, sizeof(dir), err) < 0 ||
	    vmm_params_paths(p, dir, err) < 0)
		return -1;
	struct guest_config gc = {
		.hostname = vm->name,
		.agent_port = agent_port(c),
		.vmm_adds_root = drv == &vmm_firecracker,
		.mounts = vm->mounts,
		.nmounts = vm->nmounts,
	};
	if (net != NULL && net->ip[0]) {
		gc.ip = net->ip;
		gc.gateway = net->gateway;
		gc.netmask = net->netmask;
		/* bangerd answers *.vm on the bridge address and refuses other
		 * zones, so the guest's resolver moves on to the host's
		 * upstream for the rest. */
		gc.dns = c->cfg.dns_port == 53 ? net->gateway : NULL;
		gc.dns2 = host_upstream_dns(upstream) ? upstream : NULL;
		if (gc.dns == NULL && gc.dns2 != NULL) {
			gc.dns = gc.dns2;
			gc.dns2 = NULL;
		}
		p->tap = net->tap;
		p->mac = net->mac;
	}
	if (guest_cmdline(&gc, cmdline, cmdsz, err) < 0)
		return -1;
	p->vm_id = vm->id;
	p->binary = ch->binary;
	p->vsock_helper = ch->helper;
	p->kvm = ch->kvm;
	p->kernel = c->bundle.kernel;
	p->initrd = access(c->bundle.initrd, R_OK) == 0 ? c->bundle.initrd : NULL;
	p->cmdline = cmdline;
	p->vcpus = vm->vcpus;
	p->memory_mib = vm->memory_mib;
	p->limits = &vm->limits;
	p->mounts = vm->mounts;
	p->nmounts = vm->nmounts;
	p->virtiofsd = ch->virtiofsd;
	p->cid = vm->cid;
	p->api_timeout_ms = c->cfg.vmm_api_timeout_ms;
	return 0;
}

/* The console's last non-empty line, printable ASCII only, for an error. */
static void
console_last_line(const char *path, char *out, size_t outsz)
{
	char buf[512];
	ssize_t n = file_read_tail(path, buf, sizeof(buf));

	out[0] = '\0';
	if (n <= 0)
		return;
	/* Strip trailing blank lines, then take the last one. */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
	    buf[n - 1] == ' '))
		buf[--n] = '\0';
	char *line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	size_t j = 0;
	for (; *line && j + 1 < outsz; line++)
		if ((unsigned char)*line >= 0x20 && (unsigned char)*line < 0x7f)
			out[j++] = *line;
	out[j] = '\0';
}

/* How long an agent that is not ready yet may hold a boot probe (its
 * /healthz?wait_ms=): short, since cancels and a dead VMM are noticed
 * between probes. */
#define AGENT_LONG_POLL_MS 1000

/* May the boot wait connect to the guest's vsock yet?  Not while the
 * VMM's vsock backend could be broken by it (vmm.h vsock_ready). */
bool
vsock_may_dial(const struct vm *vm, const struct vmm_params *p)
{
	const struct vmm_driver *drv = vmm_by_name(vm->vmm);

	return drv->vsock_ready == NULL || drv->vsock_ready(p) != 0;
}

/* Wait for the guest agent to answer and say it is ready (sshd listens,
 * /root is mounted, the network is up), one short probe at a time, so that
 * a VMM that dies during boot (or a cancel) ends the wait at once instead
 * of at the deadline.  Each new reason for "not ready yet" is announced as a
 * vm.health event with status "starting".
 *
 * A boot that makes no progress (the console does not grow and the agent
 * never answers) for boot_stall_s has stalled: it fails with
 * boot_stalled and the console's last line rather than holding the
 * operation for the whole health_timeout_s. */
int
wait_agent(struct core *c, struct op *op, struct vm *vm, pid_t pid,
    const struct vmm_params *p, struct vsock_health *h, struct bn_err *err)
{
	long long now = time_mono_ms();
	long long deadline = now + (long long)c->cfg.health_timeout_s * 1000;
	long long start = now, progress_at = now, console_size = -1;
	char said[sizeof(h->not_ready)] = "";
	char seen[sizeof(h->reason) + sizeof(h->how)] = "";
	int probes = 0;
	bool gated = false, starting = false;

	for (;;) {
		/* One probe at a time, paced: each is a connection through the
		 * VMM's vsock backend, which copes worse the more of them a
		 * booting guest gets (vmm/vsock.c). */
		long long left = deadline - time_mono_ms();
		vsock_health_clear(h);
		bool dial = vsock_may_dial(vm, p);
		if (dial && gated)
			log_debug("vm '%s': vsock up after %lld ms", vm->name,
			    time_mono_ms() - start);
		gated = !dial;
		/* An agent that said "not ready" is asked to answer when it
		 * is ready (within AGENT_LONG_POLL_MS) rather than again and
		 * again: the boot is over the moment sshd listens, not up to
		 * a probe interval later. */
		int wait = starting && left > AGENT_LONG_POLL_MS + 2000 ?
		    AGENT_LONG_POLL_MS : 0;
		if (dial) {
			vsock_probe_health_wait(p->vsock_uds, agent_port(c), wait > 0 ?
			    wait + 2000 : left > 2000 ? 2000 : left > 100 ? (int)left :
			    100, wait, h);
			probes++;
			starting = h->status == VSOCK_HEALTH_STARTING;
			if (h->status == VSOCK_HEALTH_OK ||
			    h->status == VSOCK_HEALTH_DEGRADED)
				return 0;
			/* Each new way a probe ends, once, for the diagnosis of
			 * a boot that never gets an answer. */
			char now_seen[sizeof(seen)];
			snprintf(now_seen, sizeof(now_seen), "%s/%s", h->reason,
			    h->how);
			if (strcmp(now_seen, seen) != 0) {
				snprintf(seen, sizeof(seen), "%s", now_seen);
				log_debug("vm '%s': agent probe %d: %s%s%s after %d ms",
				    vm->name, probes, h->reason, h->how[0] ? " " : "",
				    h->how, h->latency_ms);
			}
		}
		now = time_mono_ms();
		if (h->status == VSOCK_HEALTH_STARTING) {
			progress_at = now;   /* the agent answers */
			if (strcmp(h->not_ready, said) != 0) {
				snprintf(said, sizeof(said), "%s", h->not_ready);
				core_emit(c, "vm.health", vm->name, op->row.id,
				    json_pack("{s:s, s:s, s:s}", "status",
				    "starting", "reason", "not_ready", "detail",
				    said));
			}
		}
		struct stat st;
		if (stat(p->console_log, &st) == 0 && st.st_size != console_size) {
			console_size = st.st_size;
			progress_at = now;
		}
		if (!proc_alive(pid))
			return bn_fail(err, BN_EVMM, 0, "the VMM exited during boot");
		if (op_cancelled(op))
			return op_fail_cancelled(op, err);
		if (c->cfg.boot_stall_s > 0 &&
		    now - progress_at >= (long long)c->cfg.boot_stall_s * 1000) {
			char last[120];
			char reason[64];
			snprintf(reason, sizeof(reason), "%s%s%s%s", !dial ? "none, "
			    "the VM's vsock has not started" : h->reason[0] ?
			    h->reason : "none", h->how[0] ? " (" : "", h->how,
			    h->how[0] ? ")" : "");
			console_last_line(p->console_log, last, sizeof(last));
			bn_fail(err, BN_EBOOT_STALLED, 0, "the boot stalled: no "
			    "console output and no answer from the guest agent "
			    "for %d s (last probe: %s); console ends with: %s",
			    c->cfg.boot_stall_s, reason, last[0] ? last :
			    "(nothing)");
			bn_err_detail(err, "console_tail", last);
			bn_err_hint(err, "see banger vm console %s; boot_stall_s in "
			    "config.json sets how long a silent boot may take (0: "
			    "wait out health_timeout_s)", vm->name);
			return -1;
		}
		if (now >= deadline)
			return vsock_health_fail(h, p->vsock_uds, agent_port(c), probes,
			    err);
		/* 10 ms, doubling to VSOCK_WAIT_INTERVAL_MS: quick for a guest
		 * that is up at once (the test double), few connections for a
		 * real boot; 50 ms between looks while the vsock has not
		 * started. */
		long long pause = probes >= 1 && probes < 6 ?
		    10LL << (probes - 1) : VSOCK_WAIT_INTERVAL_MS;
		if (pause > VSOCK_WAIT_INTERVAL_MS)
			pause = VSOCK_WAIT_INTERVAL_MS;
		if (!dial)
			pause = 50;
		if (starting && wait > 0)
			pause = 0;   /* it has waited already */
		sleep_ms((int)(now + pause < deadline ? pause : deadline - now));
	}
}

/* Ask the guest agent to shut the guest down.  Firecracker on x86 has no
 * power management: a guest that powers off halts and Firecracker stays,
 * while a reboot (reboot=k) ends it; QEMU runs with -no-reboot and exits on
 * either, so it gets a real poweroff.  0 when the agent took the request. */
int
agent_poweroff(struct core *c, const struct vm *vm, const struct vmm_driver *drv,
    const struct vmm_params *p, int timeout_ms)
{
	struct bn_err err;
	int status = 0;
	const char *mode = drv == &vmm_firecracker ? "reboot" : "poweroff";

	memset(&err, 0, sizeof(err));
	if (vsock_agent_poweroff(p->vsock_uds, agent_port(c), mode, timeout_ms,
	    &status, &err) < 0) {
		log_info("vm '%s': no agent to ask for a %s (%s); using the "
		    "VMM's signal", vm->name, mode, err.msg);
		return -1;
	}
	if (status != 202) {
		/* 404: an agent from before the route. */
		log_info("vm '%s': the agent answered %d to %s; using the "
		    "VMM's signal", vm->name, status, mode);
		return -1;
	}
	return 0;
}

unsigned
agent_caps(struct core *c, const char *uds, bool *ret_reached)
{
	struct vsock_health h;

	vsock_probe_health(uds, agent_port(c), 2000, &h);
	unsigned caps = h.agent_caps;
	if (ret_reached != NULL)
		*ret_reached = h.status == VSOCK_HEALTH_OK ||
		    h.status == VSOCK_HEALTH_DEGRADED;
	vsock_health_clear(&h);
	return caps;
}

int
agent_set_clock(struct core *c, const struct vm *vm,
    const struct vmm_params *p, long long *ret_step_ms, struct bn_err *err)
{
	struct timespec now;
	char body[64];
	int status = 0;
	json_t *doc = NULL;

	if (!(agent_caps(c, p->vsock_uds, NULL) & VSOCK_CAP_CLOCK))
		return bn_fail(err, BN_EVMM, 0, "vm '%s': its agent "
		    "cannot set the clock (an image from before the clock "
		    "route, or no agent answered)", vm->name);
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(body, sizeof(body), "{\"realtime_ns\": %lld}",
	    (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
	if (vsock_agent_call(p->vsock_uds, agent_port(c), "POST", "/clock",
	    body, 2000, &status, &doc, err) < 0)
		return -1;
	json_t *step = json_object_get(doc, "step_ms");
	*ret_step_ms = json_is_integer(step) ? json_integer_value(step) : 0;
	const char *msg = json_string_value(json_object_get(doc, "error"));
	if (status != 200)
		bn_fail(err, BN_EVMM, 0, "vm '%s': the agent answered %d to "
		    "setting the clock: %s", vm->name, status, msg ? msg : "");
	json_decref(doc);
	return status == 200 ? 0 : -1;
}
