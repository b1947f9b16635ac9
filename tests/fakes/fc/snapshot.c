/* snapshot.c - PUT /snapshot/create and PUT /snapshot/load.
 *
 * create writes the state and memory files (snapfile.c) of a paused
 * microVM.  load turns a fresh process into that microVM: its machine
 * config, drives, network interfaces (with network_overrides), vsock (at
 * vsock_override's path), entropy and MMDS config, Paused or, with
 * resume_vm, Running; the guest then carries on where it was (main.c
 * wakes it and its agent).
 *
 * A load refused before the restore starts (a body with both or neither
 * memory fields, a started microVM, a boot-specific resource configured)
 * leaves the process as it was.  A restore that fails ends the process
 * once the 400 is out, as Firecracker does ("the current Firecracker
 * process is ended (as it might be in an invalid state)").
 */
#include "fake.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOT_ALLOWED "Loading a microVM snapshot not allowed after configuring " \
	"boot-specific resources."
#define RESTORE_FAILED "Load snapshot error: Failed to restore from snapshot: "
#define DEVICES_FAILED "Failed to build microVM from snapshot: Failed to " \
	"restore devices: Error restoring MMIO devices: "

/* What PUT /snapshot/load asks for, read from the body. */
struct load {
	const char *state_path;
	const char *mem_path;	/* backend_path, or the deprecated field */
	bool uffd;
	bool track_dirty_pages, resume_vm, clock_realtime;
	const char *huge_pages;	/* "Snapshot" unless given */
	json_t *net_overrides;	/* array, borrowed from the body */
	const char *vsock_path;	/* vsock_override's, or NULL */
};

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Everything a load needs, in GET /vm/config's shapes where it has one. */
static json_t *
state_of_vm(const char *id, const char *type)
{
	uint64_t wall = wall_ms();
	time_t secs = (time_t)(wall / 1000);
	struct tm tm;
	char when[32];

	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:s,s:s,s:s,s:I,s:s,s:O,s:O?,s:O,s:O,s:O?,s:O?,s:O?,"
	    "s:b,s:{s:s,s:I}}",
	    "snapshot_id", id, "snapshot_type", type, "taken_at", when,
	    "taken_at_unix_ms", (json_int_t)wall,
	    "firecracker_version", FC_VERSION,
	    "machine-config", fc.machine,
	    "boot-source", fc.guest_boot,
	    "drives", fc.drives,
	    "network-interfaces", fc.nets,
	    "vsock", fc.vsock,
	    "entropy", fc.entropy,
	    "mmds-config", fc.mmds_cfg,
	    "enable_pci", fc.enable_pci,
	    "guest", "boot_id", fc.guest_boot_id,
	    "uptime_ms", (json_int_t)(now_ms() - fc.start_ms));
}

void
snapshot_create(struct request *rq)
{
	const char *type = jstr(rq->body, "snapshot_type");
	const char *state_path = jstr(rq->body, "snapshot_path");
	const char *mem_path = jstr(rq->body, "mem_file_path");
	struct snapmem mem;
	uint64_t t0 = now_ms();
	char id[33], err[1024];
	json_t *state;

	if (!postboot_or_reply(rq))
		return;
	type = type ? type : "Full";
	/* Without track_dirty_pages a diff is taken with mincore(2), which
	 * Firecracker allows since 1.13: the double takes it too. */
	if (strcmp(type, "Diff") == 0)
		LOG_WARN("[DevPreview] Virtual machine diff snapshots is in "
		    "development preview.");
	/* The vCPUs refuse to save their state while they run. */
	if (fc.state != ST_PAUSED) {
		reply_fault(rq, "Create snapshot error: Cannot save the microVM "
		    "state: Operation not allowed: save/restore unavailable while "
		    "running");
		return;
	}
	random_hex(id, 16);
	mem = (struct snapmem){ .id = id, .type = type, .boot_id = fc.guest_boot_id,
	    .mem_mib = json_integer_value(json_object_get(fc.machine,
	    "mem_size_mib")) };
	state = state_of_vm(id, type);
	/* The state file first, then the memory: Firecracker's order. */
	if (snapfile_write_state(state_path, state, err, sizeof(err)) < 0 ||
	    snapfile_write_memory(mem_path, &mem, err, sizeof(err)) < 0) {
		reply_fault(rq, "Create snapshot error: %s", err);
	} else {
		fc.vsock_reset_pending = fc.vsock != NULL;
		LOG_INFO("'create %s snapshot' VMM action took %" PRIu64 " us.",
		    strcmp(type, "Diff") == 0 ? "diff" : "full",
		    (now_ms() - t0) * 1000 + 211);
		fake_note("snapshot %s (%s) taken: state %s, memory %s", id, type,
		    state_path, mem_path);
		reply_ok(rq);
	}
	json_decref(state);
}

/* The body's fields; -1 after replying when the memory fields are both
 * there or both missing, which Firecracker refuses while parsing. */
static int
load_params(struct request *rq, struct load *ld)
{
	json_t *b = rq->body, *backend = json_object_get(b, "mem_backend");
	const char *mem_file = jstr(b, "mem_file_path");

	if (backend != NULL && mem_file != NULL) {
		reply_fault(rq, "An error occurred when deserializing the json body "
		    "of a request: too many fields: either `mem_backend` or "
		    "`mem_file_path` exclusively is required.");
		return -1;
	}
	if (backend == NULL && mem_file == NULL) {
		reply_fault(rq, "An error occurred when deserializing the json body "
		    "of a request: missing field: either `mem_backend` or "
		    "`mem_file_path` is required.");
		return -1;
	}
	if (mem_file != NULL || jbool(b, "enable_diff_snapshots", false)) {
		rq->deprecation = true;
		LOG_WARN("PUT /snapshot/load: mem_file_path and enable_diff_snapshots "
		    "fields are deprecated.");
	}
	*ld = (struct load){
		.state_path = jstr(b, "snapshot_path"),
		.mem_path = mem_file ? mem_file : jstr(backend, "backend_path"),
		.uffd = backend && strcmp(jstr(backend, "backend_type"), "Uffd") == 0,
		.track_dirty_pages = jbool(b, "track_dirty_pages", false) ||
		    jbool(b, "enable_diff_snapshots", false),
		.resume_vm = jbool(b, "resume_vm", false),
		.clock_realtime = jbool(b, "clock_realtime", false),
		.huge_pages = jstr(b, "huge_pages") ? jstr(b, "huge_pages") : "Snapshot",
		.net_overrides = json_object_get(b, "network_overrides"),
		.vsock_path = jstr(json_object_get(b, "vsock_override"), "uds_path"),
	};
	return 0;
}

static json_t *
find_iface(json_t *nets, const char *id)
{
	size_t k;
	json_t *n;

	json_array_foreach(nets, k, n)
		if (strcmp(jstr(n, "iface_id"), id) == 0)
			return n;
	return NULL;
}

/* network_overrides and vsock_override, applied to the state read. */
static int
override(json_t *st, const struct load *ld, char *err, size_t cap)
{
	json_t *nets = json_object_get(st, "network-interfaces"), *o, *dev;
	json_t *vs = json_object_get(st, "vsock");
	size_t k;

	json_array_foreach(ld->net_overrides, k, o) {
		if ((dev = find_iface(nets, jstr(o, "iface_id"))) == NULL) {
			snprintf(err, cap, "Failed to get snapshot state from file: "
			    "Unknown Network Device.");
			return -1;
		}
		json_object_set(dev, "host_dev_name", json_object_get(o,
		    "host_dev_name"));
	}
	if (ld->vsock_path == NULL)
		return 0;
	if (!json_is_object(vs)) {
		snprintf(err, cap, "Failed to get snapshot state from file: Unknown "
		    "Vsock Device.");
		return -1;
	}
	json_object_set_new(vs, "uds_path", json_string(ld->vsock_path));
	return 0;
}

/* The guest's memory: hugetlbfs pages cannot map a file, and the file must
 * be this snapshot's. */
static int
check_memory(json_t *st, const struct load *ld, const char *huge, char *err,
    size_t cap)
{
	json_t *m = json_object_get(st, "machine-config");
	json_t *guest = json_object_get(st, "guest");
	struct snapmem want = {
		.id = jstr(st, "snapshot_id"),
		.mem_mib = json_integer_value(json_object_get(m, "mem_size_mib")),
		.boot_id = jstr(guest, "boot_id"),
	};

	if (strcmp(huge, "2M") == 0) {
		snprintf(err, cap, "Failed to load guest memory: Error creating guest "
		    "memory from file: Cannot restore hugetlbfs backed snapshot by "
		    "mapping the memory file. Please use uffd.");
		return -1;
	}
	return snapfile_check_memory(ld->mem_path, &want, err, cap);
}

/* Every drive's file opens as the guest will use it, relative paths from
 * our working directory, as Firecracker reopens them. */
static int
check_drives(json_t *st, char *err, size_t cap)
{
	json_t *drives = json_object_get(st, "drives"), *d;
	const char *path;
	char e[128];
	size_t k;
	int fd;

	json_array_foreach(drives, k, d) {
		if ((path = jstr(d, "path_on_host")) == NULL)
			continue;
		fd = open(path, (jbool(d, "is_read_only", false) ? O_RDONLY : O_RDWR) |
		    O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			continue;
		}
		io_err_str(e, sizeof(e), errno);
		snprintf(err, cap, DEVICES_FAILED "Block: Virtio backend error: Error "
		    "manipulating the backing file: %s %s", e, path);
		return -1;
	}
	return 0;
}

/* The vsock backend binds its socket as the device is restored: a file
 * left there (by the VM snapshotted, say) is in the way. */
static int
bind_vsock(json_t *st, int *ret_fd, char *err, size_t cap)
{
	json_t *vs = json_object_get(st, "vsock");
	char e[128];

	*ret_fd = -1;
	if (!json_is_object(vs))
		return 0;
	if ((*ret_fd = unix_listen(jstr(vs, "uds_path"))) >= 0)
		return 0;
	if (errno == ENAMETOOLONG)
		snprintf(e, sizeof(e), "path must be shorter than SUN_LEN");
	else
		io_err_str(e, sizeof(e), errno);
	snprintf(err, cap, DEVICES_FAILED "VsockUnixBackend: Error binding to the "
	    "host-side Unix socket: %s", e);
	return -1;
}

/* Firecracker's restore, in its order; the state with the overrides in
 * it, or NULL with the words after RESTORE_FAILED. */
static json_t *
restore(const struct load *ld, const char **ret_huge, int *ret_vsock_fd,
    char *err, size_t cap)
{
	json_t *st, *m;

	if (fc.faults.active && fc.faults.snapshot_load_error[0]) {
		snprintf(err, cap, "%s", fc.faults.snapshot_load_error);
		return NULL;
	}
	if ((st = snapfile_read_state(ld->state_path, err, cap)) == NULL)
		return NULL;
	m = json_object_get(st, "machine-config");
	*ret_huge = strcmp(ld->huge_pages, "Snapshot") != 0 ? ld->huge_pages :
	    jstr(m, "huge_pages") ? jstr(m, "huge_pages") : "None";
	if (override(st, ld, err, cap) < 0 ||
	    check_memory(st, ld, *ret_huge, err, cap) < 0 ||
	    check_drives(st, err, cap) < 0 ||
	    bind_vsock(st, ret_vsock_fd, err, cap) < 0) {
		json_decref(st);
		return NULL;
	}
	return st;
}

static json_t *
copy_member(json_t *st, const char *key)
{
	json_t *v = json_object_get(st, key);

	return json_is_null(v) || v == NULL ? NULL : json_deep_copy(v);
}

/* The process becomes the microVM of the snapshot.  GET /vm/config shows
 * no boot source and SMT off with no CPU template, as the swagger says of
 * restored microVMs. */
static void
adopt(json_t *st, const struct load *ld, const char *huge, int vsock_fd)
{
	json_t *m = json_object_get(st, "machine-config");
	json_t *vs = json_object_get(st, "vsock"), *guest = json_object_get(st, "guest");
	uint64_t uptime = (uint64_t)json_integer_value(json_object_get(guest,
	    "uptime_ms"));
	uint64_t taken = (uint64_t)json_integer_value(json_object_get(st,
	    "taken_at_unix_ms"));

	json_decref(fc.machine);
	fc.machine = json_pack("{s:O,s:O,s:b,s:b,s:s}",
	    "vcpu_count", json_object_get(m, "vcpu_count"),
	    "mem_size_mib", json_object_get(m, "mem_size_mib"),
	    "smt", 0, "track_dirty_pages", ld->track_dirty_pages, "huge_pages", huge);
	json_decref(fc.drives);
	fc.drives = copy_member(st, "drives");
	json_decref(fc.nets);
	fc.nets = copy_member(st, "network-interfaces");
	json_decref(fc.entropy);
	fc.entropy = copy_member(st, "entropy");
	json_decref(fc.mmds_cfg);
	fc.mmds_cfg = copy_member(st, "mmds-config");
	json_decref(fc.guest_boot);
	fc.guest_boot = copy_member(st, "boot-source");
	if (vsock_fd >= 0)
		state_set_vsock(vsock_fd, jstr(vs, "uds_path"),
		    json_integer_value(json_object_get(vs, "guest_cid")));
	if (jbool(st, "enable_pci", false) != fc.enable_pci)
		LOG_WARN("The snapshot's PCI configuration does not match "
		    "--enable-pci; following the snapshot configuration.");
	fc.enable_pci = jbool(st, "enable_pci", false);
	snprintf(fc.guest_boot_id, sizeof(fc.guest_boot_id), "%s",
	    jstr(guest, "boot_id") ? jstr(guest, "boot_id") : "");
	snprintf(fc.restored_from, sizeof(fc.restored_from), "%s",
	    jstr(st, "snapshot_id"));
	/* The guest's clock goes on from the snapshot; clock_realtime moves
	 * kvmclock on by the wall time since. */
	if (ld->clock_realtime && wall_ms() > taken)
		uptime += wall_ms() - taken;
	fc.start_ms = now_ms() - uptime;
	fc.wake_pending = true;
	fc.state = ld->resume_vm ? ST_RUNNING : ST_PAUSED;
}

void
snapshot_load(struct request *rq)
{
	const char *huge = "None";
	uint64_t t0 = now_ms();
	char err[1536];
	struct load ld;
	int vsock_fd;
	json_t *st;

	if (load_params(rq, &ld) < 0 || !preboot_or_reply(rq))
		return;
	if (fc.boot_path) {
		LOG_INFO("%s", NOT_ALLOWED);
		reply_fault(rq, "Load snapshot error: %s", NOT_ALLOWED);
		return;
	}
	/* Serving guest memory through a UFFD handler is beyond the double:
	 * refused, and the process stays usable. */
	if (ld.uffd) {
		reply_fault(rq, RESTORE_FAILED "Failed to load guest memory: Error "
		    "creating guest memory from uffd: the banger Firecracker test "
		    "double has no UFFD support; use the File memory backend.");
		return;
	}
	if ((st = restore(&ld, &huge, &vsock_fd, err, sizeof(err))) == NULL) {
		reply_fault(rq, RESTORE_FAILED "%s", err);
		rq->post = POST_FATAL;
		return;
	}
	adopt(st, &ld, huge, vsock_fd);
	json_decref(st);
	fake_note("restored from snapshot %s (%s), %s", fc.restored_from,
	    ld.state_path, ld.resume_vm ? "running" : "paused");
	LOG_DEBUG("'load snapshot' VMM action took %" PRIu64 " us.",
	    (now_ms() - t0) * 1000 + 523);
	rq->post = POST_RESTORED;
	reply_ok(rq);
}

/* PUT /snapshot or /snapshot/<anything else>, as Firecracker's parser
 * answers them. */
void
snapshot_other(struct request *rq)
{
	if (rq->id == NULL)
		reply_fault(rq, "Missing snapshot operation type.");
	else
		reply_fault(rq, "Invalid request method and/or path: PUT /snapshot/%s.",
		    rq->id);
}
