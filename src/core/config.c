/* config.c - table-driven config.json and bundle.json parsing. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"
#include "common/util.h"
#include "common/wire.h"

enum cfg_type { CFG_INT, CFG_STR, CFG_ENUM };

struct cfg_entry {
	const char *name;
	const char *alias;      /* legacy name, read with a deprecation */
	enum cfg_type type;
	size_t offset;
	size_t size;            /* for strings */
	long long min, max;
	const char *choices;    /* for enums: "a|b|c" */
};

#define CSTR(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define CINT(f) offsetof(struct config, f), 0

static const struct cfg_entry config_table[] = {
	{ "vmm", NULL, CFG_ENUM, CSTR(vmm), 0, 0, "auto|firecracker|qemu" },
	{ "agent_port", "ping_port", CFG_INT, CINT(agent_port), 1, 0x7fffffff, NULL },
	{ "agent", "ping_helper", CFG_STR, CSTR(agent), 0, 0, NULL },
	{ "health_timeout_s", NULL, CFG_INT, CINT(health_timeout_s), 1, 3600, NULL },
	{ "boot_stall_s", NULL, CFG_INT, CINT(boot_stall_s), 0, 3600, NULL },
	{ "disk_reserve_mib", NULL, CFG_INT, CINT(disk_reserve_mib), 0, 1048576, NULL },
	{ "stop_grace_s", NULL, CFG_INT, CINT(stop_grace_s), 0, 600, NULL },
	{ "vmm_api_timeout_ms", NULL, CFG_INT, CINT(vmm_api_timeout_ms), 100, 600000, NULL },
	{ "default_vcpus", NULL, CFG_INT, CINT(default_vcpus), VM_VCPUS_MIN, VM_VCPUS_MAX, NULL },
	{ "default_memory_mib", NULL, CFG_INT, CINT(default_memory_mib), VM_MEMORY_MIB_MIN, VM_MEMORY_MIB_MAX, NULL },
	{ "default_disk_gib", NULL, CFG_INT, CINT(default_disk_gib), VM_DISK_GIB_MIN, VM_DISK_GIB_MAX, NULL },
	{ "max_vms", NULL, CFG_INT, CINT(max_vms), 1, 4096, NULL },
	{ "log_level", NULL, CFG_ENUM, CSTR(log_level), 0, 0, "error|warn|info|debug" },
	{ "network", NULL, CFG_ENUM, CSTR(network), 0, 0, "on|off" },
	{ "bridge", NULL, CFG_STR, CSTR(bridge), 0, 0, NULL },
	{ "bridge_cidr", NULL, CFG_STR, CSTR(bridge_cidr), 0, 0, NULL },
	{ "tap_pool_size", NULL, CFG_INT, CINT(tap_pool_size), 0, 64, NULL },
	{ "rootfs_spares", NULL, CFG_INT, CINT(rootfs_spares), 0, 8, NULL },
	{ "warm_default_image", NULL, CFG_ENUM, CSTR(warm_default_image), 0, 0,
	    "off|on" },
	{ "dns_port", NULL, CFG_INT, CINT(dns_port), 0, 65535, NULL },
	{ "cgroup_root", NULL, CFG_STR, CSTR(cgroup_root), 0, 0, NULL },
};

static bool
enum_has(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = choices; *p;) {
		const char *end = strchrnul(p, '|');
		if ((size_t)(end - p) == n && strncmp(p, v, n) == 0)
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

static void
legacy_note(struct legacy_keys *lk, const char *file, const char *key)
{
	if (lk->n < LEGACY_MAX)
		snprintf(lk->keys[lk->n++], sizeof(lk->keys[0]), "%s:%s", file, key);
}

/* The installed layout (make install): <prefix>/bin/bangerd with the
 * bundle in <prefix>/lib/banger/runtime, whatever the prefix (and
 * DESTDIR) was.  Fills 'out' when that directory exists. */
static bool
runtime_near_exe(char *out, size_t outsz)
{
	char exe[PATH_MAX], cand[PATH_MAX + 32], real[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct stat st;
	char *slash;

	if (n <= 0)
		return false;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return false;
	*slash = '\0';
	snprintf(cand, sizeof(cand), "%s/../lib/banger/runtime", exe);
	if (stat(cand, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    realpath(cand, real) == NULL)
		return false;
	snprintf(out, outsz, "%s", real);
	return true;
}

void
config_defaults(struct config *cfg)
{
	const char *home = getenv("HOME");
	const char *xdg;
	bool root = geteuid() == 0;
	char tmp[PATH_MAX];

	memset(cfg, 0, sizeof(*cfg));
	wire_socket_default(cfg->socket, sizeof(cfg->socket));
	if (root) {
		snprintf(cfg->state_dir, sizeof(cfg->state_dir), "/var/lib/banger");
		snprintf(cfg->config_path, sizeof(cfg->config_path), "/etc/banger/config.json");
	} else {
		xdg = getenv("XDG_STATE_HOME");
		if (xdg && *xdg)
			snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/banger", xdg);
		else
			snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/.local/state/banger",
			    home ? home : "/tmp");
		xdg = getenv("XDG_CONFIG_HOME");
		if (xdg && *xdg)
			snprintf(cfg->config_path, sizeof(cfg->config_path),
			    "%s/banger/config.json", xdg);
		else
			snprintf(cfg->config_path, sizeof(cfg->config_path),
			    "%s/.config/banger/config.json", home ? home : "/tmp");
	}
	/* In a checkout (./runtime/ next to the Makefile) use it; then the
	 * installed layout; then the packaged default. */
	struct stat st;
	if (stat("runtime", &st) == 0 && S_ISDIR(st.st_mode) && getcwd(tmp, sizeof(tmp)))
		snprintf(cfg->runtime_dir, sizeof(cfg->runtime_dir), "%s/runtime", tmp);
	else if (!runtime_near_exe(cfg->runtime_dir, sizeof(cfg->runtime_dir)))
		snprintf(cfg->runtime_dir, sizeof(cfg->runtime_dir), "/usr/lib/banger/runtime");
	snprintf(cfg->vmm, sizeof(cfg->vmm), "auto");
	cfg->agent_port = 1024;
	cfg->health_timeout_s = 90;
	cfg->boot_stall_s = 60;
	cfg->disk_reserve_mib = 1024;
	cfg->stop_grace_s = 10;
	cfg->vmm_api_timeout_ms = 3000;
	cfg->default_vcpus = 2;
	cfg->default_memory_mib = 1024;
	cfg->default_disk_gib = 8;
	cfg->max_vms = 256;
	snprintf(cfg->log_level, sizeof(cfg->log_level), "info");
	snprintf(cfg->network, sizeof(cfg->network), "on");
	snprintf(cfg->bridge, sizeof(cfg->bridge), "banger0");
	snprintf(cfg->bridge_cidr, sizeof(cfg->bridge_cidr), "172.30.0.1/24");
	cfg->tap_pool_size = 4;
	cfg->rootfs_spares = 1;
	snprintf(cfg->warm_default_image, sizeof(cfg->warm_default_image), "off");
	cfg->dns_port = 53;
	snprintf(cfg->cgroup_root, sizeof(cfg->cgroup_root), "/sys/fs/cgroup");
}

void
config_apply_env(struct config *cfg)
{
	const char *v;

	if ((v = wire_socket_env()) != NULL)
		snprintf(cfg->socket, sizeof(cfg->socket), "%s", v);
	if ((v = getenv("BANGER_STATE_DIR")) && *v)
		snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", v);
	if ((v = getenv("BANGER_RUNTIME_DIR")) && *v)
		snprintf(cfg->runtime_dir, sizeof(cfg->runtime_dir), "%s", v);
	if ((v = getenv("BANGER_CONFIG")) && *v)
		snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", v);
}

int
config_parse(struct config *cfg, const char *text, size_t len, struct bn_err *err)
{
	json_t *root = NULL, *v;
	const char *key;
	int rc = -1;

	if (json_parse_object(text, len, true, &root, err) < 0)
		return bn_err_prefix(err, "config.json");
	json_object_foreach(root, key, v) {
		const struct cfg_entry *e = NULL;
		for (size_t i = 0; i < ARRAY_SIZE(config_table); i++) {
			if (strcmp(config_table[i].name, key) == 0 ||
			    (config_table[i].alias && strcmp(config_table[i].alias, key) == 0)) {
				e = &config_table[i];
				break;
			}
		}
		if (e == NULL) {
			bn_fail(err, BN_EINVAL, 0, "config.json: unknown key '%.64s'", key);
			goto out;
		}
		if (e->alias && strcmp(e->alias, key) == 0) {
			/* The new name wins when both are present. */
			legacy_note(&cfg->legacy, "config.json", key);
			if (json_object_get(root, e->name) != NULL)
				continue;
		}
		char *field = (char *)cfg + e->offset;
		if (e->type == CFG_INT) {
			if (!json_is_integer(v) || json_integer_value(v) < e->min ||
			    json_integer_value(v) > e->max) {
				bn_fail(err, BN_EINVAL, 0, "config.json: '%s' must be an "
				    "integer between %lld and %lld", key, e->min, e->max);
				goto out;
			}
			*(int *)field = (int)json_integer_value(v);
		} else {
			if (!json_is_string(v) || (e->type == CFG_ENUM &&
			    !enum_has(e->choices, json_string_value(v)))) {
				bn_fail(err, BN_EINVAL, 0, "config.json: '%s' must be %s%s",
				    key, e->type == CFG_ENUM ? "one of " : "a string",
				    e->type == CFG_ENUM ? e->choices : "");
				goto out;
			}
			if (strlen(json_string_value(v)) >= e->size) {
				bn_fail(err, BN_EINVAL, 0, "config.json: '%s' is too long", key);
				goto out;
			}
			snprintf(field, e->size, "%s", json_string_value(v));
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int
config_load_file(struct config *cfg, struct bn_err *err)
{
	char *text = NULL;
	size_t len;
	int rc;

	if (access(cfg->config_path, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (file_read_all(cfg->config_path, 1 << 20, &text, &len, err) < 0)
		return -1;
	cfg->config_found = true;
	rc = config_parse(cfg, text, len, err);
	free(text);
	if (rc < 0)
		bn_err_prefix(err, "%s", cfg->config_path);
	return rc;
}

/* ---- bundle.json ---- */

#define BSTR(f) offsetof(struct bundle, f)

static const struct {
	const char *name;
	const char *alias;
	size_t offset;
	const char *def;
} bundle_parts[] = {
	{ "firecracker", NULL, BSTR(firecracker), "firecracker" },
	{ "qemu", NULL, BSTR(qemu), "qemu-system-x86_64" },
	{ "vhost_user_vsock", NULL, BSTR(vhost_user_vsock), "vhost-device-vsock" },
	{ "virtiofsd", NULL, BSTR(virtiofsd), "tools/virtiofsd" },
	{ "kernel", NULL, BSTR(kernel), "vmlinux" },
	{ "initrd", NULL, BSTR(initrd), "initrd.img" },
	{ "rootfs", NULL, BSTR(rootfs), "rootfs-docker.ext4" },
	{ "work_seed", NULL, BSTR(work_seed), "work-seed.ext4" },
	{ "ssh_key", NULL, BSTR(ssh_key), "id_ed25519" },
	{ "agent", "ping_helper", BSTR(agent), "banger-vsock-agent" },
};

static void
bundle_set_part(struct bundle *b, size_t offset, const char *dir, const char *v)
{
	char *field = (char *)b + offset;

	/* Absolute parts stay; relative ones live in the bundle directory.
	 * VMM names without a '/' are also looked up in PATH at spawn time. */
	if (v[0] == '/')
		snprintf(field, PATH_MAX, "%s", v);
	else
		snprintf(field, PATH_MAX, "%s/%s", dir, v);
}

int
bundle_parse(struct bundle *b, const char *dir, const char *text, size_t len,
    struct bn_err *err)
{
	json_t *root = NULL, *v;
	const char *key;
	int rc = -1;

	if (text != NULL && json_parse_object(text, len, true, &root, err) < 0)
		return bn_err_prefix(err, "bundle.json");
	for (size_t i = 0; i < ARRAY_SIZE(bundle_parts); i++)
		bundle_set_part(b, bundle_parts[i].offset, dir, bundle_parts[i].def);
	if (root == NULL)
		return 0;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "vmm") == 0) {
			if (!json_is_string(v) || !enum_has("auto|firecracker|qemu",
			    json_string_value(v))) {
				bn_fail(err, BN_EINVAL, 0, "bundle.json: 'vmm' must be "
				    "one of auto|firecracker|qemu");
				goto out;
			}
			snprintf(b->vmm, sizeof(b->vmm), "%s", json_string_value(v));
			continue;
		}
		if (strcmp(key, "agent_port") == 0 || strcmp(key, "ping_port") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > 0x7fffffff) {
				bn_fail(err, BN_EINVAL, 0, "bundle.json: '%s' must be a "
				    "positive integer", key);
				goto out;
			}
			if (key[0] == 'p') {
				legacy_note(&b->legacy, "bundle.json", key);
				if (json_object_get(root, "agent_port"))
					continue;
			}
			b->agent_port = (int)json_integer_value(v);
			continue;
		}
		size_t i;
		for (i = 0; i < ARRAY_SIZE(bundle_parts); i++)
			if (strcmp(bundle_parts[i].name, key) == 0 ||
			    (bundle_parts[i].alias && strcmp(bundle_parts[i].alias, key) == 0))
				break;
		if (i == ARRAY_SIZE(bundle_parts)) {
			bn_fail(err, BN_EINVAL, 0, "bundle.json: unknown key '%.64s'", key);
			goto out;
		}
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) >= PATH_MAX / 2) {
			bn_fail(err, BN_EINVAL, 0, "bundle.json: '%s' must be a "
			    "non-empty path", key);
			goto out;
		}
		if (bundle_parts[i].alias && strcmp(bundle_parts[i].alias, key) == 0) {
			legacy_note(&b->legacy, "bundle.json", key);
			if (json_object_get(root, bundle_parts[i].name))
				continue;
		}
		bundle_set_part(b, bundle_parts[i].offset, dir, json_string_value(v));
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int
bundle_load(struct bundle *b, const char *dir, struct bn_err *err)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	const char *v;

	memset(b, 0, sizeof(*b));
	snprintf(b->dir, sizeof(b->dir), "%s", dir);
	snprintf(b->vmm, sizeof(b->vmm), "auto");
	b->agent_port = 1024;
	if (path_join(path, sizeof(path), err, "%s/bundle.json", dir) < 0)
		return -1;
	if (access(path, F_OK) == 0) {
		if (file_read_all(path, 1 << 20, &text, &len, err) < 0)
			return -1;
		b->found = true;
	}
	int rc = bundle_parse(b, dir, text, len, err);
	free(text);
	if (rc < 0)
		return bn_err_prefix(err, "%s", path);
	if ((v = getenv("BANGER_FIRECRACKER")) && *v)
		snprintf(b->firecracker, sizeof(b->firecracker), "%s", v);
	if ((v = getenv("BANGER_QEMU")) && *v)
		snprintf(b->qemu, sizeof(b->qemu), "%s", v);
	if ((v = getenv("BANGER_VMM")) && *v) {
		if (!enum_has("auto|firecracker|qemu", v))
			return bn_fail(err, BN_EINVAL, 0, "BANGER_VMM must be one of "
			    "auto|firecracker|qemu");
		snprintf(b->vmm, sizeof(b->vmm), "%s", v);
	}
	return 0;
}

char *
config_dump(const struct config *cfg, const struct bundle *b)
{
	json_t *j = json_object(), *legacy = json_array(), *bj = json_object();

	json_object_set_new(j, "socket", json_string(cfg->socket));
	json_object_set_new(j, "state_dir", json_string(cfg->state_dir));
	json_object_set_new(j, "runtime_dir", json_string(cfg->runtime_dir));
	json_object_set_new(j, "config", json_string(cfg->config_path));
	json_object_set_new(j, "config_found", json_boolean(cfg->config_found));
	for (size_t i = 0; i < ARRAY_SIZE(config_table); i++) {
		const struct cfg_entry *e = &config_table[i];
		const char *field = (const char *)cfg + e->offset;
		if (e->type == CFG_INT)
			json_object_set_new(j, e->name, json_integer(*(const int *)field));
		else
			json_object_set_new(j, e->name, json_string(field));
	}
	for (int i = 0; i < cfg->legacy.n; i++)
		json_array_append_new(legacy, json_string(cfg->legacy.keys[i]));
	for (int i = 0; i < b->legacy.n; i++)
		json_array_append_new(legacy, json_string(b->legacy.keys[i]));
	json_object_set_new(j, "deprecated_keys", legacy);
	json_object_set_new(bj, "dir", json_string(b->dir));
	json_object_set_new(bj, "found", json_boolean(b->found));
	json_object_set_new(bj, "vmm", json_string(b->vmm));
	for (size_t i = 0; i < ARRAY_SIZE(bundle_parts); i++)
		json_object_set_new(bj, bundle_parts[i].name,
		    json_string((const char *)b + bundle_parts[i].offset));
	json_object_set_new(bj, "agent_port", json_integer(b->agent_port));
	json_object_set_new(j, "bundle", bj);
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	return s;
}
