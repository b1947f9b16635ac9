/* internal.h - state shared between the core/ source files only. */
#ifndef BANGER_CORE_INTERNAL_H
#define BANGER_CORE_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "store/store.h"
#include "vmm/vsock.h"
#include "vmm/vmm.h"

#define EVENT_RING 1024
/* The runtime bundle's image, always there. */
#define DEFAULT_IMAGE "default"
#define SPARE_WANTED_MAX 4

struct vm_lock {
	char name[VM_NAME_MAX];
	pthread_mutex_t mu;
	int refs;
	struct vm_lock *next;
};

struct op {
	struct op_row row;
	long long started_ms;
	_Atomic bool cancel;   /* POST /v1/operations/{id}/cancel was asked */
	pid_t child;           /* a child process cancel kills (ops_mu), or 0 */
	struct op *next;
};

struct event {
	uint64_t id;
	char type[32];
	char vm[VM_NAME_MAX];
	char *frame;          /* full SSE frame */
};

struct core {
	struct config cfg;
	struct bundle bundle;
	struct store *store;
	long long started_ms;

	pthread_mutex_t locks_mu;
	struct vm_lock *locks;

	/* Operations: all live ones and recent finished ones in memory. */
	pthread_mutex_t ops_mu;
	pthread_cond_t ops_cond;
	struct op *ops;
	int nops;
	int running_ops;

	pthread_mutex_t ev_mu;
	pthread_cond_t ev_cond;
	struct event ring[EVENT_RING];
	uint64_t ev_last;

	pthread_t monitor;
	_Atomic bool stopping;
	/* A cold create of the default image succeeded: the monitor thread
	 * warms it (warm_default_image). */
	_Atomic bool warm_wanted;

	/* networking (core/net.c) */
	pthread_mutex_t net_mu;    /* pool changes, bridge_ready */
	pthread_mutex_t nat_mu;    /* one nft rebuild at a time */
	pthread_cond_t net_cond;
	bool bridge_ready;
	bool pool_dirty;
	bool pool_started;
	pthread_t pool_thread;
	struct dns_server *dns;
	int64_t host_mem_mib;

	struct metrics *metrics;   /* core/metrics.c */

	/* forwarded host ports (core/forward.c) */
	pthread_mutex_t fwd_mu;
	pthread_cond_t fwd_cond;
	struct fwd_listener *fwds;
	struct fwd_conn *fwd_conns;
	int nfwd_conns;

	/* spare rootfs copies (core/spares.c) */
	pthread_mutex_t spare_mu;
	pthread_cond_t spare_cond;
	pthread_t spare_thread;
	bool spare_started;
	bool spare_dirty;
	int spare_nwanted;
	char spare_wanted[SPARE_WANTED_MAX][PATH_MAX];  /* most recent first */
};

/* ---- usage.c: what a running VM uses ---- */

struct vm_usage {
	bool running;              /* its VMM is alive (else all zero) */
	int processes;             /* counted: the VMM, below it, helpers */
	double cpu_seconds;        /* user + system */
	long long memory_bytes;    /* resident */
	long long disk_read_bytes, disk_write_bytes;
	long long net_to_guest_bytes, net_from_guest_bytes;
	long long net_to_guest_packets, net_from_guest_packets;
};
/* Every process's parent; one table serves many vm_usage_read calls. */
struct proc_table;
struct proc_table *proc_table_read(void);
void proc_table_free(struct proc_table *t);
/* vm's usage now; procs NULL: read the process table for it alone. */
void vm_usage_read(struct core *c, const struct vm *vm,
    const struct proc_table *procs, struct vm_usage *u);

/* ---- cgroup.c: a VM's processes in a cgroup, its limits ---- */

/* limits against the VM's vcpus and memory (BN_EINVAL). */
int vm_limits_check(struct core *c, const struct vm *vm, struct bn_err *err);
/* Move pids into the VM's cgroup with its cpu and memory limits (cgroup
 * v2, or a hybrid host's v1 memory and cpu hierarchies); without either
 * nothing, unless the VM has such limits (BN_EUNSUPPORTED). */
int cg_place(struct core *c, const struct vm *vm, const pid_t *pids, int n,
    struct bn_err *err);
/* Remove the VM's cgroups, in each hierarchy (its processes gone). */
void cg_remove(struct core *c, const struct vm *vm);
/* Whether VM limits can be kept here, and a line saying so. */
bool cg_doctor(struct core *c, char *msg, size_t len);

/* ---- shares.c: shared folders where they touch the host ---- */

/* Each host directory exists, is a directory, is not / and neither holds
 * nor is inside the state directory; each becomes its real path
 * (BN_EINVAL naming mounts[i]). */
int vm_mounts_host_check(struct core *c, struct vm_mount *m, int n,
    struct bn_err *err);
/* n shared folders on drv: BN_EUNSUPPORTED unless it has virtio-fs. */
int vm_mounts_supported(const struct vmm_driver *drv, const char *name,
    int n, struct bn_err *err);

/* ---- metrics.c ---- */
void metrics_init(struct core *c);
void metrics_free(struct core *c);
void metrics_op_done(struct core *c, const char *kind, bool ok, long long ms);

/* ---- forward.c: the host ports of running VMs ---- */

/* Listen on vm's ports (vm->ports) and on nothing else for vm: new ones
 * are bound first, so that a port in use (BN_EPORT_TAKEN) changes
 * nothing; dropped ones stop, and a kept one takes its new guest port. */
int fwd_apply(struct core *c, const struct vm *vm, struct bn_err *err);
#define FWD_DIAL_MS 5000    /* vsock dial and the agent's answer */

/* A relay listed so that fwd_close() can end it (shut down both fds). */
struct fwd_conn {
	char vm[VM_NAME_MAX];
	int host_fd, guest_fd;
	struct fwd_conn *next;
};
void fwd_conn_list(struct core *c, struct fwd_conn *fc);
/* Unlisted before its fds close (a reused number is never shut down). */
void fwd_conn_unlist(struct core *c, struct fwd_conn *fc);
/* An upgraded stream to the VM's agent, relayed for an API client
 * (connect.c relays and closes it; exec.c opens a terminal session). */
struct guest_conn {
	struct core *c;
	char vm[VM_NAME_MAX];
	struct vsock_stream vs;
};
/* Stop listening for vm (every VM with NULL) and end its relays. */
void fwd_close(struct core *c, const char *vm);
/* Ports for VM name: at most VM_PORTS_MAX, valid, none twice
 * (BN_EINVAL), none another VM forwards (BN_EPORT_TAKEN). */
int vm_ports_check(struct core *c, const char *name,
    const struct vm_port *ports, int n, struct bn_err *err);
/* At bangerd's stop: fwd_close(NULL) and wait for the relays' threads. */
void fwd_shutdown(struct core *c);

/* Per-VM serialization: actions on one VM run one at a time. */
void vm_lock(struct core *c, const char *name);
void vm_unlock(struct core *c, const char *name);
bool vm_trylock(struct core *c, const char *name);
/* The lock within ms milliseconds: what holds it briefly (the monitor's
 * checks, a health probe) is waited out, an operation is not. */
bool vm_lock_within(struct core *c, const char *name, long ms);

/* Operations: fn runs in its own thread; it returns a result (consumed)
 * or NULL with *err filled to fail the operation. */
typedef json_t *(*op_fn)(struct core *c, struct op *op, void *arg,
    struct bn_err *err);
/* arg belongs to the operation from the call on: arg_free runs when it
 * ends, or at once when it cannot start. */
int op_start(struct core *c, const char *kind, const char *target, op_fn fn,
    void *arg, void (*arg_free)(void *), char ret_id[24], struct bn_err *err);
void op_stage(struct core *c, struct op *op, const char *stage, int progress);
/* A line for whoever reads the operation (why a create booted cold). */
void op_note(struct core *c, struct op *op, const char *note);
/* Whether an operation on VM vm ("vm.*", target vm) is queued or running;
 * its id in op_id.  Set before op_start returns, unlike the VM's lock,
 * which the operation's thread takes a moment later. */
bool op_active_on(struct core *c, const char *vm, char op_id[24]);
/* Cancellation is cooperative: operation bodies call op_cancelled() at
 * their safe points (between steps, in waits) and stop there, undoing
 * what they made, with op_fail_cancelled().  A child process registered
 * with op_set_child() gets SIGTERM (its whole process group) on cancel;
 * pass 0 once it is reaped. */
bool op_cancelled(struct op *op);
int op_fail_cancelled(struct op *op, struct bn_err *err);
void op_set_child(struct core *c, struct op *op, pid_t pgid);

/* A VM's directory, driver parameters and recorded state (vmrow.c). */
struct vm_net;
int vm_dir(struct core *c, const char *id, char *out, size_t outsz,
    struct bn_err *err);
/* The per-VM paths a driver needs to act on a VM that exists (stop,
 * kill, probe, pause, resume): no binary, no boot parameters. */
int vm_ctl_params(struct core *c, const struct vm *vm, struct vmm_params *p,
    struct bn_err *err);
void vm_set_state(struct core *c, struct vm *vm, enum vm_state st);
/* The same; extra (consumed, may be NULL) is merged into the vm.state
 * event's data. */
void vm_set_state_ev(struct core *c, struct vm *vm, enum vm_state st,
    json_t *extra);
/* What VMs boot with now: config.json's vmm unless the bundle names one,
 * and the bundle's executables (vmm/select.c decides). */
static inline int
vmm_pick(struct core *c, struct vmm_choice *ret, struct bn_err *err)
{
	struct vmm_wants w = {
		.want = strcmp(c->bundle.vmm, "auto") == 0 ? c->cfg.vmm :
		    c->bundle.vmm,
		.firecracker = c->bundle.firecracker,
		.qemu = c->bundle.qemu,
		.vsock_helper = c->bundle.vhost_user_vsock,
		.virtiofsd = c->bundle.virtiofsd,
		.bundle_dir = c->bundle.dir,
	};
	return vmm_select(&w, ret, err);
}

/* What a boot and a stop say to the VMM and the guest (boot.c). */
/* The VMM of this kind ("firecracker", "qemu"), whatever the config
 * would pick for a new VM: a restore needs the one that saved it. */
static inline int
vmm_pick_kind(struct core *c, const char *kind, struct vmm_choice *ret,
    struct bn_err *err)
{
	struct vmm_wants w = {
		.want = kind,
		.firecracker = c->bundle.firecracker,
		.qemu = c->bundle.qemu,
		.vsock_helper = c->bundle.vhost_user_vsock,
		.virtiofsd = c->bundle.virtiofsd,
		.bundle_dir = c->bundle.dir,
	};
	return vmm_select(&w, ret, err);
}

/* The VMM's parameters and the kernel command line for booting vm with
 * the VMM ch (p points into ch and cmdline: keep them alive). */
int vm_params(struct core *c, const struct vm *vm, const struct vm_net *net,
    const struct vmm_choice *ch, struct vmm_params *p, char *cmdline,
    size_t cmdsz, struct bn_err *err);
unsigned agent_port(struct core *c);
/* Ask the agent behind uds what it can do: its VSOCK_CAP_* bits (0 when
 * nothing answered; *ret_reached, when given, says whether it did). */
unsigned agent_caps(struct core *c, const char *uds, bool *ret_reached);
/* May bangerd connect to the VM's vsock yet (vmm.h vsock_ready)? */
bool vsock_may_dial(const struct vm *vm, const struct vmm_params *p);
/* Wait until the guest agent says the VM is ready, the VMM dies, the op
 * is cancelled, the boot stalls or the deadline passes. */
int wait_agent(struct core *c, struct op *op, struct vm *vm, pid_t pid,
    const struct vmm_params *p, struct vsock_health *h, struct bn_err *err);
/* Ask the guest agent to power the guest off; 0 when it took the request. */
int agent_poweroff(struct core *c, const struct vm *vm,
    const struct vmm_driver *drv, const struct vmm_params *p, int timeout_ms);
/* Set the guest's wall clock to the host's through the agent (a resumed
 * or restored guest wakes with the time it stopped at).  Skipped, with a
 * log line, when the agent lacks the "clock" capability.  0 when set;
 * *ret_step_ms how far the guest was off. */
int agent_set_clock(struct core *c, const struct vm *vm,
    const struct vmm_params *p, long long *ret_step_ms, struct bn_err *err);
/* The work disk at path for a VM of disk_gib from the image (disks.c). */
struct image_view;
/* ---- hostkeys.c: a new VM's SSH host keys, made on the host ---- */

/* Make SSH host keys for vm and write them into its rootfs copy (an image
 * with sshd only); the public halves stay in vmdir/hostkeys.  On failure
 * nothing is kept (the guest then makes its own). */
int vm_host_keys(const struct vm *vm, const char *vmdir, const char *rootfs,
    struct bn_err *err);
/* The VM's host public keys ("TYPE BASE64" strings) as a new JSON array,
 * empty when bangerd did not make them; how many. */
int vm_host_keys_read(const char *vmdir, json_t **ret);

int make_workdisk(struct core *c, const struct image_view *iv,
    const char *path, int disk_gib, struct bn_err *err);
/* Grow the ext4 file system in the image at path to the file's size. */
int grow_ext4(const char *path, struct bn_err *err);

/* VM operations as step tables (lifecycle.c).  A request is checked and
 * filled in by vm.c, then run as an operation: life_op takes the VM's
 * lock and runs the kind's table; life_run is the same without the
 * operation's own thread (bulk actions). */
enum life_kind { LIFE_CREATE, LIFE_START, LIFE_STOP, LIFE_RESTART,
	LIFE_DELETE, LIFE_SNAPSHOT, LIFE_RESTORE, LIFE_CLONE, LIFE_WARM_CREATE,
	LIFE_KINDS };
struct life_req {
	enum life_kind kind;
	char name[VM_NAME_MAX];
	struct vm vm;               /* create: the VM as recorded */
	struct image_view iv;       /* create: the image it was checked with */
	struct vmm_choice choice;   /* create, start, restart: the VMM picked */
	bool force;                 /* delete: a running VM too */
	int grace_s;                /* stop, restart, delete */
	char snap[VM_NAME_MAX];     /* snapshot, restore, clone: the snapshot */
	char src_id[VM_ID_LEN + 1]; /* clone: the VM the snapshot is of */
	bool warm;                  /* the snapshot is the image's warm one */
	bool uncancellable;         /* a clean-up: runs to its end */
	char note[256];             /* set on the operation as it starts */
};
json_t *life_op(struct core *c, struct op *op, void *arg, struct bn_err *err);
/* A query pair for a request to the agent, percent-encoded (exec.c). */
void agent_query_add(FILE *f, bool *first, const char *key,
    const char *value);
/* The VM, or BN_ESTATE (with a hint) unless it is running (vm.c). */
int vm_get_running(struct core *c, const char *name, struct vm *ret,
    struct bn_err *err);
/* A create's checks, choices and record, without its operation (vm.c). */
int vm_create_prepare(struct core *c, const struct vm_create_req *req,
    struct life_req **ret, struct bn_err *err);

/* Images' warm snapshots: where they are, whether a create uses one,
 * dropping one (warm.c); taking one (warming.c). */
#define WARM_SNAP "warm"            /* the name it has while it is taken */
int warm_dir(struct core *c, const char *image, char *out, size_t outsz,
    struct bn_err *err);
/* The identity of an image's files and the bundle's kernel. */
void warm_image_identity(struct core *c, const struct image_view *iv,
    char out[128]);
void warm_choose(struct core *c, const char *name, struct life_req *lr,
    long long vcpus, long long memory_mib, long long disk_gib);
void warm_drop(struct core *c, const char *image, const char *why);
void warm_auto(struct core *c);
void warm_reconcile(struct core *c);
json_t *life_run(struct core *c, struct op *op, struct life_req *req,
    struct bn_err *err);
const char *life_kind_name(enum life_kind k);

/* The host's disk (core/host.c). */
struct host_capacity {
	long long free;        /* bytes free for us on the state dir's fs */
	long long committed;   /* what VMs' sparse disks may still claim */
	long long reserve;     /* disk_reserve_mib in bytes */
};
int core_host_capacity(struct core *c, struct host_capacity *ret,
    json_t *per_vm, struct bn_err *err);
/* Room for need more bytes above the reserve, or BN_EHOST_DISK_FULL
 * saying what (e.g. "a create of 'web'") and how much. */
int core_host_room(struct core *c, long long need, const char *what,
    struct bn_err *err);
/* What copying an image into a new VM allocates (sparse copies). */
struct image_view;
long long core_image_allocated(const struct image_view *iv);

/* Networking (core/net.c). */
struct vm_net {
	char tap[16];
	char ip[16];
	char gateway[16];
	char netmask[16];
	char mac[18];
};
bool core_net_enabled(struct core *c);
int net_parse_cidr(const char *cidr, struct in_addr *ret_addr, int *ret_prefix,
    struct bn_err *err);
int core_net_ensure(struct core *c, struct bn_err *err);
int core_net_vm_up(struct core *c, struct vm *vm, struct vm_net *ret,
    struct bn_err *err);
void core_net_vm_down(struct core *c, struct vm *vm);
int core_net_nat_sync(struct core *c, struct bn_err *err);
/* Spare rootfs copies (core/spares.c): take one for src into dst (1), or
 * 0 when none is ready (then copy); either way src is remembered as
 * wanted and the background filler tops its spares up. */
void spares_start(struct core *c);
void spares_stop(struct core *c);
int spares_take(struct core *c, const char *src, const char *dst);
/* Stop keeping spares of src (its image was deleted). */
void spares_forget(struct core *c, const char *src);
void core_net_start(struct core *c);
void core_net_stop(struct core *c);


/* GET /v1/vms/{name}/health's body (views.c). */
json_t *health_to_json(const char *name, const struct vsock_health *h,
    const char *checked_at);

/* Reconcile the store with running processes (daemon start). */
void core_reconcile(struct core *c);
void *core_monitor_main(void *arg);

#endif
