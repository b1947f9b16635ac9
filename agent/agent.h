/* agent.h - shared declarations of banger-vsock-agent (the guest health agent).
 *
 * The agent is a small static binary: libc, and libarchive for the tar
 * streams of files.c (linked statically with what it needs; only its format
 * code is used, not its disk code and its user-name lookups), and no NSS
 * calls, so that it runs in any guest.  A musl build (`musl-gcc -static`)
 * needs a libarchive built for musl.
 */
#ifndef BANGER_AGENT_H
#define BANGER_AGENT_H

#include <stddef.h>
#include <sys/types.h>

#define AGENT_NAME "banger-vsock-agent"
#define AGENT_VERSION "0.7.0"
/* 1: GET /healthz.  2: readiness ("ready", "not_ready", "checks") in
 * /healthz, and POST /poweroff.  3: "capabilities" in /healthz, request
 * bodies (Content-Length), streamed (chunked) replies.  4: POST /exec
 * (capability "exec").  5: GET and PUT /files (capability "files"), and
 * request bodies of any size, chunked ones too, on the routes that
 * stream them.  6: POST /forward (capability "forward": the connection
 * upgraded to a byte pipe to a TCP port of the guest's loopback).
 * 7: POST /exec?tty=1 (capability "exec_tty": a command on a
 * pseudo-terminal over the connection upgraded, with resize and
 * signals). */
#define AGENT_PROTOCOL 7

#define AGENT_DEFAULT_PORT 1024u
#define AGENT_DEFAULT_LAYOUT_STATE "/run/banger/layout-state"
#define AGENT_DEFAULT_WORKDISK "/root"
#define AGENT_DEFAULT_WORKDEV "/dev/vdb"
#define AGENT_DEFAULT_SSH_PORT 22u
#define AGENT_DEFAULT_INPUT_DIR "/dev/input"

/* Readiness checks: "ready" in /healthz is true when all enabled pass. */
enum {
	READY_SSHD = 1 << 0,      /* something listens on the ssh port */
	READY_WORKDISK = 1 << 1,  /* the work disk is mounted */
	READY_NETWORK = 1 << 2,   /* the boot address is up */
};
#define READY_ALL (READY_SSHD | READY_WORKDISK | READY_NETWORK)

/* Limits of one connection. */
#define AGENT_MAX_HEAD 8192        /* request line + headers */
#define AGENT_IO_TIMEOUT_MS 5000   /* whole request head, and the reply */
/* Concurrent connections.  A forwarded port holds its connection for as
 * long as it is open (a dev server's websocket: hours), so there is room
 * for many; each is a thread whose stack is small (THREAD_STACK in
 * banger-vsock-agent.c: 256 of them reserve 64 MiB of address space, and
 * only the pages touched take memory) and whose big buffers are on the
 * heap.  Two descriptors per forward: 512 and a few, below the usual
 * limit of 1024 open files. */
#define AGENT_MAX_CONNS 256
#define AGENT_MAX_BODY (64 * 1024) /* a request body read whole */
/* A body the route reads as it comes (stream_body): Content-Length or
 * chunked, and how long one read of it may wait. */
#define AGENT_MAX_STREAM_BODY (64ULL << 30)
#define AGENT_BODY_IDLE_MS 30000

struct agent_config {
	const char *layout_state;
	const char *workdisk;
	const char *workdev;
	unsigned ready;             /* READY_* mask */
	unsigned ssh_port;
	int in_guest;               /* listening on vsock: a real guest */
	const char *poweroff_cmd;   /* NULL: the system's poweroff/reboot */
	int power_key;              /* watch evdev devices for KEY_POWER */
	const char *input_dir;
	int test_routes;            /* serve the transport's test routes */
	const char *clock_file;     /* not in a guest: POST /clock writes here */
	const char *identity_file;  /* not in a guest: POST /identity too */
	int allow_exec;             /* not in a guest: POST /exec runs anyway */
	int allow_files;            /* not in a guest: /files serves anyway */
	int allow_forward;          /* not in a guest: POST /forward too */
};

/* Parse a comma-separated list of check names ("sshd,workdisk,network",
 * "all", "none") into a READY_* mask; -1 on an unknown name. */
int ready_parse(const char *s, unsigned *ret);

/* ---- strbuf.c: a growable byte buffer and JSON writer ---- */

struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
	int oom;           /* sticky: an allocation failed */
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_add(struct strbuf *sb, const char *s, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_printf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append s as a quoted JSON string: escapes quotes, backslashes and
 * control characters, and replaces invalid UTF-8 with U+FFFD. NULL -> null. */
void sb_json_str(struct strbuf *sb, const char *s);

/* ---- health.c: gathers the /healthz document ---- */

/* Build the /healthz JSON object into sb (appended). */
void health_json(const struct agent_config *cfg, struct strbuf *sb);

/* Helpers exposed for reuse. */
/* Read a small file (at most cap-1 bytes) NUL-terminated; -1 on error. */
int read_small_file(const char *path, char *buf, size_t cap);

/* ---- power.c: clean poweroff through the init system ---- */

enum power_mode { POWER_OFF, POWER_REBOOT };

const char *power_mode_name(enum power_mode m);
/* "poweroff" or "reboot" (n bytes of s); -1 otherwise. */
int power_mode_parse(const char *s, size_t n, enum power_mode *ret);
/* Whether this agent may power its machine off (a guest, or a test
 * command given with --poweroff-cmd). */
int power_allowed(const struct agent_config *cfg);
/* Sync and ask init to power off or reboot, in the background.  0 when
 * started, 1 when one was already under way, -1 when not allowed. */
int power_request(const struct agent_config *cfg, enum power_mode mode);
/* Watch input devices for the power key (ACPI power button). */
int power_key_start(const struct agent_config *cfg);

/* ---- user.c: who a command runs as ---- */

#define AGENT_MAX_GROUPS 64

struct agent_user {
	char name[64];
	uid_t uid;
	gid_t gid;
	char home[256];
	char shell[256];
	gid_t groups[AGENT_MAX_GROUPS];  /* the primary group first */
	int ngroups;
};

/* Look name up in /etc/passwd and its supplementary groups in /etc/group
 * (the files themselves, no NSS).  0 and *ret set; -1 with errno ENOENT
 * when there is no such user (root is uid 0 even when not listed), else
 * the error reading the file. */
int agent_user_lookup(const char *name, struct agent_user *ret);

/* ---- http.c: the server core ---- */

struct agent_body;

/* One request as a handler sees it. */
struct agent_request {
	int fd;
	const char *method;
	const char *query;          /* after '?', or NULL */
	const char *body;           /* Content-Length bytes, NUL-terminated */
	size_t body_len;
	struct agent_body *stream;  /* stream_body routes: body and body_len
	                             * are unset, agent_body_read reads it */
	int head_only;              /* HEAD of a GET route: no body sent */
	int http10;                 /* an HTTP/1.0 client: no chunks */
	int streaming;              /* agent_stream_begin sent the head */
	const char *upgrade;        /* the Upgrade header's value, or NULL */
	int connection_upgrade;     /* Connection lists "upgrade" */
	/* What the client sent past the head (and the body) before the
	 * handler ran: the first bytes of an upgraded connection.  Unset on
	 * stream_body routes, whose body reader has them. */
	const char *extra;
	size_t extra_len;
	const struct agent_config *cfg;
	/* Run once the reply has left and the connection is closed. */
	void (*after)(const struct agent_config *cfg, int arg);
	int after_arg;
};

/* Answer once: status and a JSON body (Content-Length, Connection: close). */
void agent_reply(struct agent_request *rq, int status, const char *body,
    size_t len);
/* {"error": msg} with status. */
void agent_reply_error(struct agent_request *rq, int status, const char *msg);
/* A streamed reply instead: the head (Transfer-Encoding: chunked; to an
 * HTTP/1.0 client no framing, the close ends it), then any number of
 * writes, each sent at once as one chunk within AGENT_IO_TIMEOUT_MS, then
 * the end.  Each returns -1 once the client is gone (the handler stops). */
int agent_stream_begin(struct agent_request *rq, int status,
    const char *content_type);
int agent_stream_write(struct agent_request *rq, const void *buf, size_t len);
int agent_stream_end(struct agent_request *rq);
/* The value of key in a query string ("a=1&b=2"); its length, or -1. */
int agent_query_value(const char *query, const char *key, const char **ret);
/* The decimal value of key in the query, within [lo, hi]: 1 and *ret set,
 * 0 when absent, -1 when malformed or out of range. */
int agent_query_long(const char *query, const char *key, long lo, long hi,
    long *ret);
/* Walk a query string ("a=1&b&c=3") pair by pair: from *pos (the query
 * at first; NULL is an empty one), the next pair, still percent-encoded,
 * and *pos moved past it.  1 with the key and value (NULL and 0 when the
 * pair has no '='), 0 at the end.  Empty pairs ("&&") are skipped. */
int agent_query_next(const char **pos, const char **ret_key,
    size_t *ret_klen, const char **ret_val, size_t *ret_vlen);
/* Decode n bytes of a query value (%XX escapes, '+' a space, as in a
 * form) into out, which has room for n + 1 bytes; NUL-terminated.  The
 * decoded length, or -1 for a bad escape or an encoded NUL (%00). */
int agent_query_decode(const char *s, size_t n, char *out);
/* Read up to cap bytes of a streamed request body: how many, 0 at its
 * end, -1 when it is cut short, malformed (chunk framing), larger than
 * AGENT_MAX_STREAM_BODY or idle for AGENT_BODY_IDLE_MS (agent_body_error
 * says which; every later read fails the same way). */
ssize_t agent_body_read(struct agent_request *rq, void *buf, size_t cap);
/* Read and drop the rest of a streamed body: 0 at its end, -1 when more
 * than max bytes are left (errno EFBIG) or it fails. */
int agent_body_skip(struct agent_request *rq, unsigned long long max);
const char *agent_body_error(const struct agent_request *rq);
/* (http.c) A reader over fd for a body of content_length bytes, or a
 * chunked one, whose first npre bytes were read with the head (at most
 * AGENT_MAX_HEAD).  NULL when out of memory. */
struct agent_body *agent_body_new(int fd, const char *pre, size_t npre,
    int chunked, long long content_length);
void agent_body_free(struct agent_body *b);
/* Serve one accepted connection to its end. */
void serve_connection(int fd, const struct agent_config *cfg);

/* ---- routes.c: method, path, capability, handler ---- */

struct agent_route {
	const char *method;
	const char *path;
	const char *capability;     /* listed in /healthz "capabilities" */
	void (*fn)(struct agent_request *rq);
	int test_only;              /* served only with --test-routes */
	int stream_body;            /* the handler reads the body itself
	                             * (agent_body_read), of any size */
};
extern const struct agent_route agent_routes[];
extern const size_t agent_nroutes;
/* Capabilities that are options of a route rather than routes of their
 * own (exec_tty is POST /exec?tty=1): listed after the routes'. */
extern const char *const agent_option_caps[];
extern const size_t agent_noption_caps;
/* Whether this agent serves the route (test routes need --test-routes). */
int agent_route_served(const struct agent_route *rt,
    const struct agent_config *cfg);

/* The handlers, one file per capability. */
void health_route(struct agent_request *rq);   /* health.c: GET /healthz */
void power_route(struct agent_request *rq);    /* power.c: POST /poweroff */
void clock_route(struct agent_request *rq);    /* clock.c: POST /clock */
void identity_route(struct agent_request *rq); /* identity.c */
void exec_route(struct agent_request *rq);     /* exec.c: POST /exec */
                                               /* (exec_tty.c: tty=1) */
void files_get_route(struct agent_request *rq); /* files.c: GET /files */
void files_put_route(struct agent_request *rq); /* files.c: PUT /files */
void forward_route(struct agent_request *rq);  /* forward.c: POST /forward */
void echo_route(struct agent_request *rq);     /* echo.c: POST /echo (test) */
void sink_route(struct agent_request *rq);     /* echo.c: POST /sink (test) */

/* ---- log.c: logging, clock ---- */
long long agent_now_ms(void);
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
