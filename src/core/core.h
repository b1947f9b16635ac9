/* core.h - bangerd's capabilities: VM lifecycle, images, operations,
 * events, health, doctor, reconcile.  api/ calls only these. */
#ifndef BANGER_CORE_H
#define BANGER_CORE_H

#include <jansson.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "core/config.h"
#include "common/model.h"

struct core;

int core_open(const struct config *cfg, const struct bundle *bundle,
    struct core **ret, struct bn_err *err);
/* Stop background work and wait for running operations to reach a safe
 * point; VMs keep running. */
void core_close(struct core *c);
/* Wake and end long waits (SSE streams, ?wait) before the server stops. */
void core_quiesce(struct core *c);
const struct config *core_config(struct core *c);
const struct bundle *core_bundle(struct core *c);
uint64_t core_generation(struct core *c);
long long core_uptime_s(struct core *c);

/* ---- ports: a connection to a guest's TCP port (forward.c) ---- */

/* A raw byte stream to TCP port `port` on the guest's loopback, made by
 * its agent over vsock.  BN_EGUEST_PORT when nothing listens there. */
struct guest_conn;
int core_vm_connect(struct core *c, const char *name, int port,
    struct guest_conn **ret, struct bn_err *err);
/* Relay between client_fd (its first npre bytes already read into pre)
 * and the guest port until both sides are done, or the VM stops. */
int core_guest_conn_relay(struct guest_conn *g, int client_fd,
    const void *pre, size_t npre);
void core_guest_conn_close(struct guest_conn *g);
/* End every forward and relay (bangerd stops). */
void core_forwards_stop(struct core *c);

/* ---- VMs ---- */

/* A size the request did not give: the default (create) or unchanged
 * (patch). */
#define VM_SIZE_UNSET LLONG_MIN

/* A create as the client sent it: core checks it and fills defaults. */
struct vm_create_req {
	const char *name;
	const char *image;                  /* NULL = the default image */
	long long vcpus, memory_mib, disk_gib;  /* or VM_SIZE_UNSET */
	bool nat;
	/* "vm@snapshot": a clone of that snapshot instead of a boot of the
	 * image (its image, vcpus, memory and disk are the snapshot's). */
	const char *from;
	/* Host ports forwarded to the guest while it runs. */
	const struct vm_port *ports;
	int nports;
	struct vm_limits limits;            /* zeros: none */
	/* Host directories the guest mounts (QEMU only). */
	const struct vm_mount *mounts;
	int nmounts;
};

struct vm_patch {
	long long vcpus, memory_mib, disk_gib;  /* VM_SIZE_UNSET = unchanged */
	int nat;                               /* -1 = unchanged */
	/* With set_ports, the VM's forwarded ports become these (applied at
	 * once while it runs). */
	bool set_ports;
	const struct vm_port *ports;
	int nports;
	/* With set_limits, the VM's limits become these (while stopped). */
	bool set_limits;
	struct vm_limits limits;
	/* With set_mounts, the VM's shared folders become these (while
	 * stopped). */
	bool set_mounts;
	const struct vm_mount *mounts;
	int nmounts;
};

/* VM_ACT_SET (bulk only) applies a patch, e.g. nat on or off; PAUSE and
 * RESUME are bulk actions here (one VM: core_vm_pause, core_vm_resume). */
enum vm_action { VM_ACT_START, VM_ACT_STOP, VM_ACT_RESTART, VM_ACT_DELETE,
	VM_ACT_SET, VM_ACT_PAUSE, VM_ACT_RESUME };

int core_vm_get(struct core *c, const char *name, struct vm *ret,
    struct bn_err *err);
int core_vm_list(struct core *c, struct vm **ret, int *ret_n,
    struct bn_err *err);
/* Validate, reserve the name, and start the create operation. */
int core_vm_create(struct core *c, const struct vm_create_req *req,
    char ret_op_id[24], struct bn_err *err);
int core_vm_action(struct core *c, const char *name, enum vm_action act,
    bool force, int stop_timeout_s, char ret_op_id[24], struct bn_err *err);
int core_vm_patch(struct core *c, const char *name, const struct vm_patch *p,
    struct vm *ret, struct bn_err *err);
/* One action on many VMs, concurrently; nat is the value for VM_ACT_SET,
 * stop_timeout_s the grace period of stops (-1: the configured one). */
int core_vms_bulk(struct core *c, enum vm_action act, char **names, int n,
    bool force, bool nat, int stop_timeout_s, char ret_op_id[24],
    struct bn_err *err);
/* How to reach a running VM over SSH. */
struct vm_ssh {
	char id[VM_ID_LEN + 1];
	char host[16];
	int port;
	char user[8];
	char key_path[PATH_MAX];
	char known_hosts_path[PATH_MAX];
	/* The VM's host public keys when bangerd made them (a new
	 * reference; an empty array otherwise). */
	json_t *host_keys;
};
int core_vm_ssh(struct core *c, const char *name, struct vm_ssh *ret,
    struct bn_err *err);
/* The VM's health as GET /v1/vms/{name}/health shows it (asks the guest
 * agent of a running or booting VM), or NULL with err. */
json_t *core_vm_health(struct core *c, const char *name, struct bn_err *err);
/* Last tail bytes of the serial console log (malloc'd). */
int core_vm_console(struct core *c, const char *name, long tail, char **ret,
    size_t *ret_len, struct bn_err *err);
int vm_action_parse(const char *s, enum vm_action *ret);

/* ---- exec: a command in a VM through its agent (core/exec.c) ---- */
#define EXEC_ARGS_MAX 7168          /* argv, env, cwd, user percent-encoded */
#define EXEC_STDIN_MAX (64 * 1024)
struct exec_req {
	const char *const *argv;
	size_t argc;
	const char *const *env;     /* "KEY=VALUE" */
	size_t nenv;
	const char *cwd, *user;     /* NULL: the user's home, root */
	const void *stdin_data;
	size_t stdin_len;
	int timeout_s;              /* 0: none */
	int peer_uid;               /* who asked (the event's audit trail) */
	bool tty;                   /* core_vm_exec_tty: a terminal session */
	int rows, cols;             /* its first size; 0: the agent's 24x80 */
};
enum exec_kind { EXEC_STDOUT = 1, EXEC_STDERR = 2, EXEC_EXIT = 3 };
struct exec_frame {
	enum exec_kind kind;
	const char *data;           /* stdout, stderr: len bytes */
	size_t len;
	int exit_code;              /* exit: -1 when a signal ended it */
	int signal;
	bool timed_out;
};
struct exec_stream;
/* A tar of PATH (a file or a directory) in VM name, read as the agent
 * sends it (core/files.c): 0 and *ret; BN_EGUEST_PATH when PATH is not
 * there. */
struct file_stream;
int core_vm_files_get(struct core *c, const char *name, const char *path,
    struct file_stream **ret, struct bn_err *err);
/* > 0 bytes, 0 the end, -1 broken, -2 watch_fd (>= 0) hung up. */
ssize_t core_files_read(struct file_stream *s, void *buf, size_t len,
    int watch_fd);
void core_files_close(struct file_stream *s);
/* A tar into directory PATH in VM name, sent as it comes: begin, put each
 * piece, then end (the agent's summary {"files", "dirs", "links",
 * "bytes"}, or NULL with err: the agent's refusal of an entry is 400
 * invalid_request); close either way. */
int core_vm_files_put_begin(struct core *c, const char *name,
    const char *path, struct file_stream **ret, struct bn_err *err);
void core_files_put(struct file_stream *s, const void *data, size_t len);
json_t *core_files_put_end(struct file_stream *s, struct bn_err *err);
/* Start req in VM name (an event vm.exec records it): 0 and *ret. */
int core_vm_exec(struct core *c, const char *name, const struct exec_req *req,
    struct exec_stream **ret, struct bn_err *err);
/* Start req in VM name on a pseudo-terminal (the agent's POST
 * /exec?tty=1), an event vm.exec with tty true recording it: 0 and *ret,
 * the agent's upgraded stream, whose frames core_guest_conn_relay passes
 * between it and the client as they are (the agent checks them).
 * BN_EUNSUPPORTED when the VM's agent predates terminal sessions. */
struct guest_conn;
int core_vm_exec_tty(struct core *c, const char *name,
    const struct exec_req *req, struct guest_conn **ret, struct bn_err *err);
/* The next frame: 1 and *f (valid until the next call), 0 after the exit
 * frame, -1 the stream broke (err), -2 watch_fd (>= 0) hung up. */
int core_exec_next(struct exec_stream *s, int watch_fd, struct exec_frame *f,
    struct bn_err *err);
/* Closing before the exit frame makes the agent kill the command. */
void core_exec_close(struct exec_stream *s);

/* ---- images ---- */
struct image_view {
	struct image img;
	bool is_default;
	bool available;
	bool has_warm;              /* warm: its warm snapshot (or warming) */
	struct warm warm;
};
int core_image_list(struct core *c, struct image_view **ret, int *ret_n,
    struct bn_err *err);
int core_image_get(struct core *c, const char *name, struct image_view *ret,
    struct bn_err *err);
/* Warm an image (operation image.warm): boot it once, keep a snapshot
 * that creates of its shape restore; cool drops that snapshot. */
int core_image_warm(struct core *c, const char *name, char ret_op_id[24],
    struct bn_err *err);
int core_image_cool(struct core *c, const char *name, struct bn_err *err);
int core_image_register(struct core *c, const char *name, const char *rootfs,
    const char *work_seed, struct image_view *ret, bool *ret_created,
    struct bn_err *err);
int core_image_delete(struct core *c, const char *name, struct bn_err *err);
/* Build an image with rootfs/make-rootfs.sh (distro "debian", the default)
 * or make-rootfs-void.sh ("void") as an operation; registers a managed
 * image. */
int core_image_build(struct core *c, const char *name, const char *distro,
    char ret_op_id[24], struct bn_err *err);

/* ---- operations ---- */
/* Wait up to wait_s for the operation to finish; *ret is a snapshot. */
int core_op_get(struct core *c, const char *id, int wait_s,
    struct op_row *ret, struct bn_err *err);
int core_op_list(struct core *c, struct op_row **ret, int *ret_n,
    struct bn_err *err);
bool core_op_finished(const struct op_row *op);
/* Ask a running operation to stop at its next safe point (see
 * op_cancelled() in internal.h); *ret is a snapshot.  Fails with
 * BN_ESTATE when it has already finished, BN_EOP_NOTFOUND when unknown. */
int core_op_cancel(struct core *c, const char *id, struct op_row *ret,
    struct bn_err *err);

/* ---- events ---- */
struct event_filter {
	char types[8][32];
	int ntypes;
	char vm[VM_NAME_MAX];
};
/* Copy the next event after *cursor matching f into a malloc'd SSE frame,
 * waiting up to wait_ms.  Returns 1 with *ret set, 0 on timeout, -1 when
 * the daemon is shutting down. */
int core_events_next(struct core *c, uint64_t *cursor,
    const struct event_filter *f, int wait_ms, char **ret);
uint64_t core_events_last_id(struct core *c);
void core_emit(struct core *c, const char *type, const char *vm,
    const char *op_id, json_t *data);

/* Every VM operation's steps in order, for tests and docs:
 * [{"kind": "vm.create", "steps": [{"name", "undo", "conditional"}]}]. */
json_t *core_lifecycle_steps(void);

/* ---- doctor ---- */
json_t *core_doctor(struct core *c);
/* GET /v1/host: free, committed and reserved bytes of the state dir's
 * file system, and what each VM may still claim. */
json_t *core_host_json(struct core *c, struct bn_err *err);
/* GET /v1/vms/{name}/usage: what the VM's processes use now (usage.c). */
json_t *core_vm_usage_json(struct core *c, const char *name,
    struct bn_err *err);
/* GET /v1/metrics: the Prometheus text (malloc'd), NULL when out of
 * memory (metrics.c). */
char *core_metrics_text(struct core *c, size_t *ret_len);
/* One API request done: its method, route pattern and time taken. */
void core_metrics_api(struct core *c, const char *method, const char *route,
    long long us);
/* Pause a running VM (paused_reason "user"). */
int core_vm_pause(struct core *c, const char *name, struct vm *ret,
    struct bn_err *err);
/* Let a paused VM run again: one a user paused, or one the VMM paused on
 * a full host disk once there is room; then ask its agent again. */
int core_vm_resume(struct core *c, const char *name, struct vm *ret,
    struct bn_err *err);
/* Snapshots of a VM (core/snapshots.c): taking one and restoring one
 * are operations (vm.snapshot, vm.restore); list, get and delete answer
 * at once. */
int core_snapshot_create(struct core *c, const char *vm, const char *snap,
    char ret_op_id[24], struct bn_err *err);
int core_snapshot_list(struct core *c, const char *vm,
    struct snapshot **ret, int *ret_n, struct bn_err *err);
int core_snapshot_get(struct core *c, const char *vm, const char *snap,
    struct snapshot *ret, struct bn_err *err);
int core_snapshot_delete(struct core *c, const char *vm, const char *snap,
    struct bn_err *err);
int core_vm_restore(struct core *c, const char *vm, const char *snap,
    char ret_op_id[24], struct bn_err *err);

/* Which bangerd this is: pid, binary, socket, state and runtime dirs, and
 * the runtime bundle's identity (a hash of its files' identities), so a
 * client can tell which daemon and which bundle answered. */
json_t *core_daemon_info(struct core *c);

/* JSON views (shared by api/ and events). */
json_t *vm_to_json(const struct vm *vm);
/* status.last_stop: {result, method, duration_ms, summary} or null. */
json_t *vm_last_stop_json(const struct vm *vm);
json_t *image_to_json(const struct image_view *iv);
json_t *snapshot_to_json(const char *vm_name, const struct snapshot *sn);
json_t *op_to_json(const struct op_row *op);
json_t *err_to_json(const struct bn_err *err);

#endif
