/* fake.h - the Firecracker test double: its state and its modules.
 *
 * The double speaks Firecracker's HTTP API (v1.16.1 behaviour) on an
 * AF_UNIX socket, reads request bodies as Firecracker's serde structs do
 * (validate.c, from the table fc_schema.c generated from the swagger),
 * keeps the pre-boot / post-boot state machine, fakes a serial console and,
 * once "booted", runs the real guest agent behind a hybrid-vsock socket.
 * A paused microVM can be snapshotted into files of the double's own
 * format, and a fresh process loaded from them carries the guest on.
 *
 * Threads: main.c's event loop (signals, timers, guest lifecycle), the
 * libmicrohttpd thread that answers the API, and the vsock relay threads.
 * Everything in `fc` is guarded by fc.mu except what the comments mark;
 * relay.c's list of open connections has a lock of its own.
 *
 * Calls go one way: main -> server -> routes -> the resources (machine,
 * drives, net, vsock, mmds, logger, devices, snapshot) -> the core (keyed,
 * reply, validate with its table fc_schema.c, snapfile, log, util, state).
 * main also runs guest, relay and faults; routes asks faults.  Resources
 * never call each other: what one needs of another's state it reads from
 * `fc`.
 */
#ifndef FC_FAKE_H
#define FC_FAKE_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/un.h>

#include "schema.h"

#define FC_VERSION "1.16.1"
#define DEFAULT_API_SOCK "/run/firecracker.socket"
#define DEFAULT_INSTANCE_ID "anonymous-instance"
#define DEFAULT_PAYLOAD_LIMIT 51200
#define DEFAULT_AGENT_PORT 1024u
#define FIRST_HOST_PORT 1073741824u /* 2^30 */

#define EXIT_ARG_PARSING 153
#define EXIT_GENERIC 1
#define EXIT_SIGHUP 156

#define NOT_SUPPORTED_POST \
	"The requested operation is not supported after starting the microVM."
#define NOT_SUPPORTED_PRE \
	"The requested operation is not supported before starting the microVM."

enum vm_state { ST_NOT_STARTED, ST_RUNNING, ST_PAUSED };

enum log_level { LV_OFF = 0, LV_ERROR, LV_WARN, LV_INFO, LV_DEBUG, LV_TRACE };

/* What an API call asks of the main thread once its reply is sent. */
enum post_cmd {
	POST_NONE = 0,
	POST_STARTED = 'S',	/* InstanceStart: boot the guest */
	POST_SHUTDOWN = 'C',	/* the guest shuts down */
	POST_RESUMED = 'U',	/* PATCH /vm Resumed: the vCPUs run again */
	POST_RESTORED = 'R',	/* a snapshot was loaded */
	POST_FATAL = 'F',	/* a load failed: the process ends */
};

/* The faults file (BANGER_FAKE_FC_FAULTS), see faults.c. */
struct faults {
	bool active;		/* file present and match_id matched */
	json_t *fail;		/* array of "METHOD /path" */
	char fail_message[1024];
	long listen_delay_ms;
	bool die_after_start;
	bool exit_at_start_set;
	int exit_at_start;
	long agent_delay_ms;
	bool no_agent;
	bool ignore_ctrl_alt_del;
	bool ignore_poweroff;
	char agent_ready[64];	/* the agent's --ready, over BANGER_FAKE_READY */
	char snapshot_load_error[512]; /* a load fails so, and the process ends */
	long agent_ssh_port;	/* its --ssh-port, over BANGER_FAKE_SSH_PORT */
	long shutdown_delay_ms;
};

struct fake {
	pthread_mutex_t mu;
	char id[128];
	char api_sock[PATH_MAX];
	char exe_dir[PATH_MAX];
	size_t payload_limit;
	bool enable_pci;
	bool boot_timer;

	enum vm_state state;
	/* A boot-specific resource was configured (even when refused after
	 * the state check): from then on no snapshot may be loaded.  The
	 * logger, metrics, serial and the MMDS data store leave it alone. */
	bool boot_path;
	/* The configuration as accepted, in GET /vm/config's shape. */
	json_t *boot_source;	/* object or NULL */
	/* The boot source the guest runs with: boot_source at InstanceStart,
	 * the snapshot's after a load (when boot_source stays NULL). */
	json_t *guest_boot;
	char guest_boot_id[33];	/* made at InstanceStart, kept by snapshots */
	char restored_from[33];	/* the id of the snapshot loaded, or "" */
	/* Loaded from a snapshot, the guest has not run yet: it carries on
	 * (console line, agent) when its vCPUs first run. */
	bool wake_pending;
	json_t *drives;		/* array, the root device first */
	json_t *machine;	/* object */
	json_t *nets;		/* array */
	json_t *vsock;		/* object or NULL */
	json_t *logger_cfg;	/* object or NULL */
	json_t *metrics_cfg;	/* object or NULL */
	json_t *entropy;	/* object or NULL */
	json_t *mmds;		/* the data store or NULL */
	json_t *mmds_cfg;	/* object or NULL */
	json_t *serial_cfg;	/* object or NULL */

	/* Firecracker's own log. */
	bool logger_configured;
	int log_fd;		/* -1: stdout */
	enum log_level level;
	bool show_level, show_origin;
	char module[256];

	int metrics_fd;
	int console_fd;		/* stdout or serial_out_path */

	/* vsock: the listener PUT /vsock binds, the agent behind it.  The
	 * relay threads read agent_sock and agent_port without the lock:
	 * both are set before boot and never change after. */
	int vsock_fd;
	char vsock_path[PATH_MAX];
	char agent_sock[PATH_MAX + 16];
	bool agent_sock_created;
	atomic_uint next_host_port;	/* relay threads, no lock */
	unsigned agent_port;
	bool relay_started;
	pid_t agent_pid;

	int cmd_pipe[2];	/* API thread -> main: enum post_cmd bytes */
	bool ctrl_alt_del_pending; /* received while paused */
	/* A snapshot was taken: the guest's vsock driver ends every
	 * connection when it next runs. */
	bool vsock_reset_pending;
	int reqlog_fd;		/* BANGER_FAKE_FC_LOG */

	struct faults faults;
	struct MHD_Daemon *mhd;
	uint64_t start_ms;	/* InstanceStart, for console timestamps */
};

extern struct fake fc;

/* state.c: a fresh Firecracker's configuration; dropped on an orderly exit. */
void state_init(void);
void state_free(void);
/* The vsock device is fd, listening at path, for guest cid: it replaces
 * the one before (whose socket file stays) and says where the agent
 * listens. */
void state_set_vsock(int fd, const char *path, json_int_t cid);

/* One API call.  Handlers read method, id and body and fill in the reply. */
struct request {
	const char *method;
	const char *url;
	const char *id;		/* the {id} path segment, or NULL */
	const struct fc_body *spec; /* the route's body in the table, or NULL */
	json_t *body;		/* validated against spec's schema */
	unsigned status;
	char *reply;		/* JSON text or NULL; owned */
	bool deprecation;	/* answer with "Deprecation: true" */
	enum post_cmd post;
};

typedef void (*handler_fn)(struct request *rq);

/* ---- util.c ---------------------------------------------------------- */

/* strerror as musl words it: Firecracker is built against musl. */
const char *os_strerror(int e);
/* Rust's Display of an OS io::Error: "No such file or directory (os error 2)". */
void io_err_str(char *buf, size_t cap, int e);
uint64_t now_ms(void);
/* nbytes (at most 64) random bytes as 2 * nbytes lowercase hex digits and
 * a NUL in out. */
void random_hex(char *out, size_t nbytes);
void write_all_fd(int fd, const char *buf, size_t len);
int send_all(int fd, const char *buf, size_t len);
/* Append-only, non-blocking: how Firecracker opens logs, metrics and fifos. */
int open_append(const char *path);
/* An AF_UNIX stream socket and the address of path, to bind or connect;
 * -1 with errno (ENAMETOOLONG: path does not fit in sun_path). */
int unix_socket(const char *path, struct sockaddr_un *ret_sa);
/* A listening AF_UNIX socket bound at path; -1 with errno (EADDRINUSE when
 * the file exists, as a socket Firecracker left behind does). */
int unix_listen(const char *path);
/* Rust's {:?} of a str (quoted, escaped) to f. */
void rust_debug_str(FILE *f, const char *s, size_t n);
/* String member of o, or NULL. */
const char *jstr(json_t *o, const char *key);
/* Boolean member of o, or dflt when absent. */
bool jbool(json_t *o, const char *key, bool dflt);

/* ---- log.c ----------------------------------------------------------- */

void fc_log_at(enum log_level lvl, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define LOG_ERROR(...) fc_log_at(LV_ERROR, __LINE__, __VA_ARGS__)
#define LOG_WARN(...) fc_log_at(LV_WARN, __LINE__, __VA_ARGS__)
#define LOG_INFO(...) fc_log_at(LV_INFO, __LINE__, __VA_ARGS__)
#define LOG_DEBUG(...) fc_log_at(LV_DEBUG, __LINE__, __VA_ARGS__)
/* Name the thread in Firecracker's log lines ("fc_api", "fc_vmm"). */
void log_thread_name(const char *name);
/* The double's own remarks, on stderr: "[fake-firecracker <id>] ...". */
void fake_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "Info", "warning", ... in any case; -1 when unknown. */
int log_parse_level(const char *s, enum log_level *ret);
const char *log_level_name(enum log_level l);
/* One metrics line, as FlushMetrics writes it. */
void metrics_flush(void);

/* ---- validate.c ------------------------------------------------------ */

/* The body table row of a spec route ("PUT", "/drives/{drive_id}"). */
const struct fc_body *schema_body(const char *method, const char *path);
/* A field of a swagger definition; aborts when the table lacks it. */
const struct fc_field *schema_field(const char *def, const char *name);
/* Read text as serde_json reads the route's body: the value, or NULL with
 * Firecracker's fault message ("An error occurred when deserializing the
 * json body of a request: ... at line L column C.") in fault. */
json_t *validate_body(const struct fc_body *b, const char *text, size_t len,
    char *fault, size_t faultsz);

/* ---- reply.c --------------------------------------------------------- */

/* A 400 with {"fault_message": ...}. */
void reply_fault(struct request *rq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void reply_json(struct request *rq, json_t *o);
void reply_ok(struct request *rq);
/* True before InstanceStart; otherwise replies NOT_SUPPORTED_POST. */
bool preboot_or_reply(struct request *rq);
/* preboot_or_reply for a boot-specific resource: true also marks
 * fc.boot_path, as Firecracker does before it checks the body. */
bool boot_resource_or_reply(struct request *rq);
/* True after InstanceStart; otherwise replies NOT_SUPPORTED_PRE. */
bool postboot_or_reply(struct request *rq);

/* ---- keyed.c: devices with an id in the path ------------------------- */

/* Drives and network interfaces: PUT /<kind>/{id} adds or replaces one
 * before boot, PATCH updates one after.  The router has checked the id and
 * that the body repeats it in the member rq->spec->id_field names, which
 * names the device in the stored array too. */
struct keyed {
	json_t **items;		/* the array in fc */
	const char *patch_missing; /* fault when a PATCH names no device */
	/* Check a PUT against the other devices and build what is stored;
	 * NULL after replying.  idx: the device replaced, or -1. */
	json_t *(*build)(struct request *rq, ssize_t idx);
	/* Store it (NULL: replace in place or append). */
	void (*store)(json_t *dev, ssize_t idx);
	/* Check a PATCH before its fields are copied (NULL: none); -1 after
	 * replying. */
	int (*patch_check)(struct request *rq, json_t *dev);
};

void keyed_put(const struct keyed *k, struct request *rq);
/* Copies the body's members over the device after patch_check. */
void keyed_patch(const struct keyed *k, struct request *rq);

/* ---- resources: the route handlers ----------------------------------- */

/* machine.c */
void machine_get_instance(struct request *rq);
void machine_get_version(struct request *rq);
void machine_get_config(struct request *rq);
void machine_get_vm_config(struct request *rq);
void machine_put_config(struct request *rq);
void machine_patch_config(struct request *rq);
void machine_put_boot_source(struct request *rq);
void machine_put_actions(struct request *rq);
void machine_patch_vm(struct request *rq);
/* drives.c, net.c: routed to keyed_put and keyed_patch */
extern const struct keyed drives_keyed;
extern const struct keyed net_keyed;
/* vsock.c */
void vsock_put(struct request *rq);
/* mmds.c */
void mmds_get(struct request *rq);
void mmds_put(struct request *rq);
void mmds_patch(struct request *rq);
void mmds_put_config(struct request *rq);
/* logger.c */
void logger_put(struct request *rq);
void metrics_put(struct request *rq);
/* devices.c */
void serial_put(struct request *rq);
void entropy_put(struct request *rq);
/* snapshot.c */
void snapshot_create(struct request *rq);
void snapshot_load(struct request *rq);
void snapshot_other(struct request *rq);

/* ---- routes.c, server.c ---------------------------------------------- */

/* Answer one call: fault injection, routing, body validation, handler. */
void routes_dispatch(struct request *rq, const char *body, size_t len);
/* Serve the API on the listening socket lfd; -1 when MHD cannot start. */
int server_start(int lfd);
void server_stop(void);

/* ---- faults.c -------------------------------------------------------- */

/* Read BANGER_FAKE_FC_FAULTS (after fc.id is set); exits 2 on a bad file. */
void faults_read(void);
/* The faults file asks "METHOD url" to fail. */
bool faults_fail_matches(const char *method, const char *url);

/* ---- snapfile.c: the two files of a snapshot ------------------------- */

/* What the memory file's first page says of it. */
struct snapmem {
	const char *id;		/* the snapshot's, in the state file too */
	const char *type;	/* "Full" or "Diff" */
	json_int_t mem_mib;	/* the file's size */
	const char *boot_id;	/* the guest's */
};

/* Write the state file (magic, format version, state as JSON, CRC64);
 * -1 with Firecracker's words after "Create snapshot error: " in err. */
int snapfile_write_state(const char *path, json_t *state, char *err,
    size_t cap);
/* Write the memory file: m->mem_mib MiB, sparse, the header first; -1 as
 * snapfile_write_state. */
int snapfile_write_memory(const char *path, const struct snapmem *m,
    char *err, size_t cap);
/* The state a state file holds, checked as Firecracker checks it; NULL
 * with the words after "Failed to restore from snapshot: " in err. */
json_t *snapfile_read_state(const char *path, char *err, size_t cap);
/* 0 when path is the memory file of the snapshot want describes; -1 as
 * snapfile_read_state. */
int snapfile_check_memory(const char *path, const struct snapmem *want,
    char *err, size_t cap);

/* ---- guest.c, relay.c ------------------------------------------------ */

/* Send the console to serial_out_path when PUT /serial asked for it. */
void guest_open_console(void);
/* The guest of a snapshot runs again: one line on its console. */
void guest_resume_console(void);
/* The kernel's first lines on the console, as the guest boots. */
void guest_boot_console(void);
/* One console line at t seconds since boot, when console=ttyS0. */
void guest_console_line(double t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Start the guest agent behind the vsock socket (unless faulted). */
void guest_spawn_agent(void);
/* Signal the agent and reap it; SIGKILL when it lingers. */
void guest_kill_agent(int sig);
/* Remove the agent's socket and layout file. */
void guest_cleanup_files(void);
/* Accept hybrid-vsock connections on fc.vsock_fd from now on. */
void relay_start(void);
/* End every open vsock connection, as the guest's driver does after a
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (the listener stays). */
void relay_reset(void);

#endif
