/* machine.c - the microVM itself: instance info, machine-config,
 * boot-source, actions, pause and resume, and GET /vm/config. */
#include "fake.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

static const char *const state_names[] = {
	[ST_NOT_STARTED] = "Not started",
	[ST_RUNNING] = "Running",
	[ST_PAUSED] = "Paused",
};

static void
reply_new(struct request *rq, json_t *o)
{
	reply_json(rq, o);
	json_decref(o);
}

void
machine_get_instance(struct request *rq)
{
	reply_new(rq, json_pack("{s:s,s:s,s:s,s:s}", "id", fc.id,
	    "state", state_names[fc.state], "vmm_version", FC_VERSION,
	    "app_name", "Firecracker"));
}

void
machine_get_version(struct request *rq)
{
	reply_new(rq, json_pack("{s:s}", "firecracker_version", FC_VERSION));
}

void
machine_get_config(struct request *rq)
{
	reply_json(rq, fc.machine);
}

static json_t *
copy_or_null(json_t *v)
{
	return v ? json_deep_copy(v) : json_null();
}

void
machine_get_vm_config(struct request *rq)
{
	json_t *bs = fc.boot_source ? json_deep_copy(fc.boot_source) :
	    json_pack("{s:s}", "kernel_image_path", "");

	if (json_object_get(bs, "initrd_path") == NULL)
		json_object_set_new(bs, "initrd_path", json_null());
	if (json_object_get(bs, "boot_args") == NULL)
		json_object_set_new(bs, "boot_args", json_null());
	reply_new(rq, json_pack("{s:n,s:o,s:o,s:n,s:o,s:o,s:o,s:o,s:o,s:o,s:o,"
	    "s:[],s:n}",
	    "balloon",
	    "drives", json_deep_copy(fc.drives),
	    "boot-source", bs,
	    "cpu-config",
	    "logger", copy_or_null(fc.logger_cfg),
	    "machine-config", json_deep_copy(fc.machine),
	    "metrics", copy_or_null(fc.metrics_cfg),
	    "mmds-config", copy_or_null(fc.mmds_cfg),
	    "network-interfaces", json_deep_copy(fc.nets),
	    "vsock", copy_or_null(fc.vsock),
	    "entropy", copy_or_null(fc.entropy),
	    "pmem",
	    "memory-hotplug"));
}

/* Firecracker's checks on the configuration as it would become. */
static int
machine_check(struct request *rq, json_t *m)
{
	const struct fc_field *range = schema_field("MachineConfiguration",
	    "vcpu_count");
	json_int_t vcpu = json_integer_value(json_object_get(m, "vcpu_count"));
	json_t *mem = json_object_get(m, "mem_size_mib");
	const char *pages = jstr(m, "huge_pages");
	bool smt = jbool(m, "smt", false);

	if (vcpu < range->min || vcpu > range->max ||
	    (smt && vcpu > 1 && vcpu % 2 == 1)) {
		reply_fault(rq, "Machine config error: The number of vCPUs must be "
		    "greater than 0, less than 32 and must be 1 or an even number "
		    "if SMT is enabled.");
		return -1;
	}
	if (json_is_integer(mem) && (json_integer_value(mem) == 0 ||
	    (pages && strcmp(pages, "2M") == 0 && json_integer_value(mem) % 2))) {
		reply_fault(rq, "Machine config error: The memory size (MiB) is "
		    "either 0, or not a multiple of the configured page size.");
		return -1;
	}
	return 0;
}

/* PUT replaces the whole configuration (the optional fields left out go
 * back to their defaults), PATCH changes the fields it names. */
static void
machine_set(struct request *rq, bool patch)
{
	json_t *m;

	if (patch && json_object_size(rq->body) == 0) {
		reply_fault(rq, "Empty PATCH request.");
		return;
	}
	if (json_object_get(rq->body, "cpu_template") != NULL) {
		rq->deprecation = true;
		LOG_WARN("%s /machine-config: cpu_template field is deprecated.",
		    rq->method);
	}
	if (!boot_resource_or_reply(rq))
		return;
	m = json_deep_copy(fc.machine);
	if (!patch) {
		json_object_del(m, "cpu_template");
		json_object_update_new(m, json_pack("{s:b,s:b,s:s}", "smt", 0,
		    "track_dirty_pages", 0, "huge_pages", "None"));
	}
	json_object_update(m, rq->body);
	if (machine_check(rq, m) < 0) {
		json_decref(m);
		return;
	}
	if (jstr(m, "cpu_template") && strcmp(jstr(m, "cpu_template"), "None") == 0)
		json_object_del(m, "cpu_template");
	json_decref(fc.machine);
	fc.machine = m;
	reply_ok(rq);
}

void
machine_put_config(struct request *rq)
{
	machine_set(rq, false);
}

void
machine_patch_config(struct request *rq)
{
	machine_set(rq, true);
}

static int
can_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

void
machine_put_boot_source(struct request *rq)
{
	const char *initrd = jstr(rq->body, "initrd_path");
	const char *args = jstr(rq->body, "boot_args");
	char e[128];

	if (!boot_resource_or_reply(rq))
		return;
	if (can_open(jstr(rq->body, "kernel_image_path")) < 0) {
		io_err_str(e, sizeof(e), errno);
		reply_fault(rq, "Boot source error: The kernel file cannot be "
		    "opened: %s", e);
		return;
	}
	if (initrd != NULL && can_open(initrd) < 0) {
		io_err_str(e, sizeof(e), errno);
		reply_fault(rq, "Boot source error: The initrd file cannot be "
		    "opened: %s", e);
		return;
	}
	for (const char *q = args; q != NULL && *q; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e) {
			reply_fault(rq, "Boot source error: The kernel command line "
			    "is invalid: String contains an invalid character");
			return;
		}
	json_decref(fc.boot_source);
	fc.boot_source = json_incref(rq->body);
	reply_ok(rq);
}

static void
instance_start(struct request *rq)
{
	char e[128];

	if (fc.boot_source == NULL) {
		reply_fault(rq, "Start microvm error: Cannot start microvm without "
		    "kernel configuration.");
		return;
	}
	/* The loader reads the kernel now; the file may be gone since. */
	if (can_open(jstr(fc.boot_source, "kernel_image_path")) < 0) {
		io_err_str(e, sizeof(e), errno);
		reply_fault(rq, "Start microvm error: Cannot load kernel due to "
		    "invalid memory configuration or invalid kernel image: Failed "
		    "to read kernel image: %s", e);
		return;
	}
	fc.state = ST_RUNNING;
	fc.start_ms = now_ms();
	fc.guest_boot = json_incref(fc.boot_source);
	random_hex(fc.guest_boot_id, 16);
	rq->post = POST_STARTED;
	reply_ok(rq);
}

static void
send_ctrl_alt_del(struct request *rq)
{
	if (!(fc.faults.active && fc.faults.ignore_ctrl_alt_del)) {
		/* A paused guest reacts once it is resumed. */
		if (fc.state == ST_PAUSED)
			fc.ctrl_alt_del_pending = true;
		else
			rq->post = POST_SHUTDOWN;
	}
	reply_ok(rq);
}

static void
flush_metrics(struct request *rq)
{
	metrics_flush();
	reply_ok(rq);
}

static const struct {
	const char *type;
	bool booted;		/* after InstanceStart only, else before only */
	void (*fn)(struct request *rq);
} actions[] = {
	{ "FlushMetrics", true, flush_metrics },
	{ "InstanceStart", false, instance_start },
	{ "SendCtrlAltDel", true, send_ctrl_alt_del },
};

void
machine_put_actions(struct request *rq)
{
	const char *type = jstr(rq->body, "action_type");

	/* The schema's enum admits these only. */
	for (size_t k = 0; k < sizeof(actions) / sizeof(actions[0]); k++) {
		if (strcmp(actions[k].type, type) != 0)
			continue;
		if (actions[k].booted ? postboot_or_reply(rq) : preboot_or_reply(rq))
			actions[k].fn(rq);
		return;
	}
	reply_fault(rq, "unknown action %s", type);
}

void
machine_patch_vm(struct request *rq)
{
	uint64_t t0 = now_ms();

	if (!postboot_or_reply(rq))
		return;
	if (strcmp(jstr(rq->body, "state"), "Paused") == 0) {
		fc.state = ST_PAUSED;
		LOG_INFO("'pause vm' VMM action took %" PRIu64 " us.",
		    (now_ms() - t0) * 1000 + 37);
	} else {
		fc.state = ST_RUNNING;
		LOG_INFO("'resume vm' VMM action took %" PRIu64 " us.",
		    (now_ms() - t0) * 1000 + 41);
		rq->post = POST_RESUMED;
		if (fc.ctrl_alt_del_pending) {
			fc.ctrl_alt_del_pending = false;
			rq->post = POST_SHUTDOWN;
		}
	}
	reply_ok(rq);
}
