/* config.h - bangerd settings (config.json + flags + env) and the runtime
 * bundle (bundle.json), both with the legacy ping-helper keys. */
#ifndef BANGER_CONFIG_H
#define BANGER_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define LEGACY_MAX 4

/* What a VM may ask for: the ranges that creates, patches and
 * config.json's default_* settings (core/config.c) are checked against. */
#define VM_VCPUS_MIN 1
#define VM_VCPUS_MAX 32
#define VM_MEMORY_MIB_MIN 128
#define VM_MEMORY_MIB_MAX 1048576
#define VM_DISK_GIB_MIN 1
#define VM_DISK_GIB_MAX 1024

struct legacy_keys {
	int n;
	char keys[LEGACY_MAX][32];  /* "config.json: ping_port" etc. */
};

struct config {
	/* where things live (flags > env > config.json > defaults) */
	char socket[108];
	char state_dir[PATH_MAX];
	char runtime_dir[PATH_MAX];
	char config_path[PATH_MAX];
	bool config_found;
	/* settings from config.json */
	char vmm[16];              /* auto | firecracker | qemu */
	int agent_port;
	char agent[PATH_MAX];      /* agent binary override, "" = bundle's */
	int health_timeout_s;
	/* A boot with no new console output and no answer from the agent for
	 * this long has stalled: fail it (boot_stalled) instead of waiting
	 * out health_timeout_s.  0: wait out the deadline. */
	int boot_stall_s;
	/* Free space (MiB) creates and starts leave on the state dir's file
	 * system; 0: none. */
	int disk_reserve_mib;
	int stop_grace_s;
	int vmm_api_timeout_ms;
	int default_vcpus;
	int default_memory_mib;
	int default_disk_gib;
	int max_vms;
	char log_level[8];
	/* host networking */
	char network[8];           /* on | off */
	char bridge[16];
	char bridge_cidr[20];      /* bridge address/prefix, e.g. 172.30.0.1/24 */
	int tap_pool_size;
	int rootfs_spares;         /* ready rootfs copies per recent image */
	/* on: the first cold create of the default image warms it (a warm
	 * snapshot, core/warm.c) in the background */
	char warm_default_image[4];
	int dns_port;              /* 0: no .vm DNS responder */
	/* Where the cgroup v2 hierarchy is mounted: VMs' processes go to
	 * banger.slice/vm-ID below it (limits, accounting). */
	char cgroup_root[PATH_MAX];
	struct legacy_keys legacy;
};

struct bundle {
	char dir[PATH_MAX];
	bool found;                /* bundle.json exists */
	char vmm[16];
	char firecracker[PATH_MAX];
	char qemu[PATH_MAX];
	char vhost_user_vsock[PATH_MAX];
	char virtiofsd[PATH_MAX];  /* QEMU's shared folders; optional */
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
	char rootfs[PATH_MAX];
	char work_seed[PATH_MAX];
	char ssh_key[PATH_MAX];
	char agent[PATH_MAX];
	int agent_port;
	struct legacy_keys legacy;
};

/* Defaults for the running user (root or not), from DESIGN.md. */
void config_defaults(struct config *cfg);
/* Apply BANGER_* environment variables over the defaults. */
void config_apply_env(struct config *cfg);
/* Read config.json at cfg->config_path; a missing file is fine, a bad one
 * (syntax, unknown key, wrong type, out of range) is an error. */
int config_load_file(struct config *cfg, struct bn_err *err);
/* Parse config JSON text (exposed for tests). */
int config_parse(struct config *cfg, const char *text, size_t len,
    struct bn_err *err);

/* Load <dir>/bundle.json (missing file: defaults), resolve parts relative
 * to dir, then apply BANGER_FIRECRACKER/BANGER_QEMU/BANGER_VMM. */
int bundle_load(struct bundle *b, const char *dir, struct bn_err *err);
int bundle_parse(struct bundle *b, const char *dir, const char *text,
    size_t len, struct bn_err *err);

/* Print the effective configuration as JSON (bangerd -n). */
char *config_dump(const struct config *cfg, const struct bundle *b);

#endif
