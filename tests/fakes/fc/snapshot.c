/* snapshot.c - PUT /snapshot/create: the state and memory files
 * (snapfile.c) of a paused microVM.
 */
#include "fake.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

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
