/* doctor.c - structured readiness checks, one per prerequisite. */
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"

enum chk { CHK_OK, CHK_WARN, CHK_FAIL };

static void
add(json_t *checks, const char *name, const char *feature, enum chk st,
    const char *msg, const char *fix)
{
	static const char *const names[] = { "ok", "warn", "fail" };

	json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:s, s:s}",
	    "name", name, "feature", feature, "status", names[st],
	    "message", msg, "fix", fix ? fix : ""));
}

static void
check_kvm(json_t *checks)
{
	char msg[256];
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		add(checks, "kvm", "vms", CHK_OK, "/dev/kvm is present and "
		    "writable", NULL);
		return;
	}
	snprintf(msg, sizeof(msg), "/dev/kvm: %s", strerror(errno));
	add(checks, "kvm", "vms", CHK_FAIL, msg, errno == ENOENT ?
	    "enable virtualization (VT-x/AMD-V) in the firmware, or nested "
	    "virtualization for a VM host, and load the kvm module" :
	    "add your user to the kvm group or run: setfacl -m u:$USER:rw /dev/kvm");
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
check_firecracker(struct core *c, json_t *checks)
{
	char bin[PATH_MAX], out[256], msg[PATH_MAX + 300];
	struct bn_err err;

	if (proc_find_exe(c->bundle.firecracker, bin, sizeof(bin), &err) < 0 &&
	    proc_find_exe("firecracker", bin, sizeof(bin), &err) < 0) {
		snprintf(msg, sizeof(msg), "firecracker not found at %s or in PATH",
		    c->bundle.firecracker);
		add(checks, "vmm_firecracker", "vms", CHK_FAIL, msg,
		    "install Firecracker (a release binary) and set \"firecracker\" "
		    "in bundle.json, or set BANGER_FIRECRACKER");
		return;
	}
	char *argv[] = { bin, "--version", NULL };
	if (proc_run(argv, 5000, out, sizeof(out), NULL, &err) < 0) {
		snprintf(msg, sizeof(msg), "%s --version failed: %s", bin, err.msg);
		add(checks, "vmm_firecracker", "vms", CHK_FAIL, msg,
		    "reinstall Firecracker");
		return;
	}
	out[strcspn(out, "\n")] = '\0';
	snprintf(msg, sizeof(msg), "%s (%s)", bin, out);
	add(checks, "vmm_firecracker", "vms", CHK_OK, msg, NULL);
}

json_t *
core_doctor(struct core *c)
{
	json_t *checks = json_array();
	char msg[512];
	const char *worst = "ok";

	check_kvm(checks);
	check_firecracker(c, checks);
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

	if (access(c->cfg.state_dir, W_OK) == 0) {
		snprintf(msg, sizeof(msg), "%s is writable", c->cfg.state_dir);
		add(checks, "state_dir", "daemon", CHK_OK, msg, NULL);
	} else {
		snprintf(msg, sizeof(msg), "%s: %s", c->cfg.state_dir, strerror(errno));
		add(checks, "state_dir", "daemon", CHK_FAIL, msg,
		    "fix the permissions or pass --state-dir");
	}
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
