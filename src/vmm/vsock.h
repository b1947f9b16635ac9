/* vsock.h - host side of the guest agent channel: Firecracker-style hybrid
 * vsock (also spoken by vhost-device-vsock for QEMU) and the health probe.
 *
 * Hybrid vsock: connect() to the VMM's Unix socket, write "CONNECT <port>\n",
 * read "OK <hostport>\n"; from then on the stream is raw bytes to and from the
 * guest's AF_VSOCK listener on <port>.  EOF before OK means "nothing listens
 * in the guest yet" and is retried by vsock_dial().
 *
 * All I/O is bounded by poll() deadlines; every fd is O_CLOEXEC; nothing here
 * blocks forever.  Times are CLOCK_MONOTONIC milliseconds (vsock_now_ms()).
 */
#ifndef BANGER_VMM_VSOCK_H
#define BANGER_VMM_VSOCK_H

#include <jansson.h>
#include <sys/types.h>

#include "common/err.h"

/* Used by vsock_probe_health() when timeout_ms <= 0. */
#define VSOCK_PROBE_DEFAULT_TIMEOUT_MS 2000
/* vsock_wait_healthy() bounds each probe by this (and the deadline). */
#define VSOCK_WAIT_PROBE_TIMEOUT_MS 3000
/* Once "CONNECT <port>" is written, the VMM's answer is waited for at
 * least this long, past the caller's deadline if need be (vsock.c says
 * why: closing under a late "OK" kills vhost-device-vsock's vsock). */
#define VSOCK_ACK_MIN_MS 2500
/* Pause between dial attempts. */
#define VSOCK_RETRY_INTERVAL_MS 75
/* Longest pause between vsock_wait_healthy probes (they back off from
 * 1 ms): every probe is a connection through the VMM's vsock backend,
 * and vhost-device-vsock copes worse the more of them a booting guest
 * gets (vsock.c). */
#define VSOCK_WAIT_INTERVAL_MS 250
/* Largest /healthz reply accepted. */
#define VSOCK_MAX_REPLY (256 * 1024)

/* CLOCK_MONOTONIC in milliseconds. */
long long vsock_now_ms(void);

/* Connect to a hybrid vsock Unix socket and open a stream to guest port
 * `port`: connect(uds); write "CONNECT <port>\n"; read "OK <n>\n".  Retries
 * every VSOCK_RETRY_INTERVAL_MS on ENOENT/ECONNREFUSED/EAGAIN and on EOF or
 * reset before OK, until deadline_ms (absolute, vsock_now_ms() clock)
 * passes; at least one attempt is made even when the deadline has passed.
 * On success *ret_fd is a connected, blocking, O_CLOEXEC stream positioned
 * just after the OK line.  On failure: BN_ETIMEOUT when the deadline passed
 * while retrying, BN_EINVAL for an unusable path, BN_ESYS for a hard
 * connect error (e.g. EACCES), BN_EVMM when the peer answered something
 * other than "OK <n>". */
int vsock_dial(const char *uds_path, unsigned port, long long deadline_ms,
    int *ret_fd, struct bn_err *err);

enum vsock_health_status {
	VSOCK_HEALTH_OK,
	VSOCK_HEALTH_DEGRADED,
	VSOCK_HEALTH_UNREACHABLE,
	/* The agent answers but says it is not ready ("ready": false): a
	 * readiness check (sshd, work disk, network) has not passed yet. */
	VSOCK_HEALTH_STARTING,
};

/* What a guest agent can do.  Protocol 3 and later agents list it in
 * /healthz ("capabilities"); older ones are known by their protocol: 1
 * serves /healthz, 2 adds POST /poweroff.  A capability is a bit here once
 * bangerd has code that uses it; names it does not know are ignored. */
enum vsock_agent_cap {
	VSOCK_CAP_HEALTH = 1 << 0,   /* GET /healthz */
	VSOCK_CAP_POWER = 1 << 1,    /* POST /poweroff */
	VSOCK_CAP_CLOCK = 1 << 2,    /* POST /clock */
	VSOCK_CAP_IDENTITY = 1 << 3, /* POST /identity (clones) */
	VSOCK_CAP_EXEC = 1 << 4,     /* POST /exec (protocol 4) */
	VSOCK_CAP_FILES = 1 << 5,    /* GET and PUT /files (protocol 5) */
	VSOCK_CAP_FORWARD = 1 << 6,  /* POST /forward (protocol 6) */
	VSOCK_CAP_EXEC_TTY = 1 << 7, /* POST /exec?tty=1 (protocol 7) */
};

struct vsock_health {
	enum vsock_health_status status;
	/* ok | vsock_connect_failed | no_ack | timeout | bad_response |
	 * legacy_ping | agent_degraded | not_ready | vsock_not_started (set
	 * by core for a booting VM whose vsock is not up: no probe made) */
	char reason[32];
	/* With not_ready: the agent's first failing check, "sshd: ...". */
	char not_ready[160];
	/* With no_ack / vsock_connect_failed: how the dial ended, for logs:
	 * eof | reset | epipe | read_error | timeout (the VMM never
	 * answered) | no_socket | refused | backlog_full | connect_timeout |
	 * connect_error | bad_ack; else "". */
	char how[16];
	char protocol[8];   /* "http", "ping" or "" */
	int latency_ms;
	json_t *agent;      /* parsed /healthz object, owned; NULL if none */
	/* From a /healthz that was understood, else 0: the agent's
	 * "protocol" (1 when it names none) and its VSOCK_CAP_* bits. */
	int agent_protocol;
	unsigned agent_caps;
};

/* The names of the VSOCK_CAP_* bits in caps, as a JSON array (new ref). */
json_t *vsock_caps_json(unsigned caps);

/* Probe the agent once.  One dial attempt (no retry: vsock_wait_healthy()
 * is the retrying caller), then "GET /healthz HTTP/1.0" on the stream.  When
 * the reply does not start with "HTTP/" or is EOF, re-dial once and send
 * "PING\n", expecting "PONG" (an agent from before the HTTP protocol).
 * timeout_ms bounds the whole probe (<= 0: VSOCK_PROBE_DEFAULT_TIMEOUT_MS).
 *
 * Never fails: always fills *ret (which it first resets; it does not free a
 * previous ret->agent, call vsock_health_clear() for that) and returns 0.
 *   ok/ok              HTTP 200 whose JSON "status" is "ok"
 *   degraded/agent_degraded  HTTP 200 whose JSON "status" is anything else
 *   ok/legacy_ping     PING answered with PONG (agent NULL)
 *   unreachable/vsock_connect_failed  the Unix socket did not accept
 *   unreachable/no_ack the VMM closed or never sent "OK" (guest not
 *                      listening yet, or a hung VMM)
 *   unreachable/timeout  connected to the guest, no complete answer in time
 *   unreachable/bad_response  the guest answered something unusable
 *                      (non-200, invalid JSON, no "status", junk to PING)
 *   starting/not_ready HTTP 200 with "ready": false (protocol 2 agents);
 *                      not_ready names the failing check.  Agents without
 *                      the field count as ready. */
int vsock_probe_health(const char *uds_path, unsigned port, int timeout_ms,
    struct vsock_health *ret);
/* The same, asking an agent that is not ready yet to answer when it is,
 * or after wait_ms ("GET /healthz?wait_ms=N"; older agents answer at
 * once).  timeout_ms must leave room for the wait. */
int vsock_probe_health_wait(const char *uds_path, unsigned port,
    int timeout_ms, int wait_ms, struct vsock_health *ret);

/* Probe repeatedly until the agent is reachable and ready (status OK or
 * DEGRADED) or deadline_ms passes.  0 when reachable; -1 otherwise: with
 * BN_ENOT_READY when the agent answered but a readiness check never passed
 * (the message names it), else BN_ETIMEOUT.
 * *ret holds the last probe either way (clear it with vsock_health_clear()). */
int vsock_wait_healthy(const char *uds_path, unsigned port,
    long long deadline_ms, struct vsock_health *ret, struct bn_err *err);

/* The error for a wait that ended with *ret (the last probe) after
 * `probes` probes: BN_ENOT_READY naming the failing check when the agent
 * answered "not ready", else BN_ETIMEOUT with the last reason.  -1. */
int vsock_health_fail(const struct vsock_health *ret, const char *uds_path,
    unsigned port, int probes, struct bn_err *err);

/* One request to the guest agent: METHOD TARGET with an optional body
 * (JSON when it starts with '{', else a form), on one dial (no retry), bounded by timeout_ms.  0 with
 * *ret_status the HTTP status and, when ret_doc is given, *ret_doc the
 * reply's JSON (new ref, NULL when the body is not JSON); -1 when no
 * agent could be reached or the reply was not HTTP. */
int vsock_agent_call(const char *uds_path, unsigned port, const char *method,
    const char *target, const char *body, int timeout_ms, int *ret_status,
    json_t **ret_doc, struct bn_err *err);

/* Ask the guest agent to shut the guest down: "POST /poweroff?mode=MODE"
 * (poweroff | reboot).  One dial, no retry, bounded by timeout_ms.  0 with
 * *ret_status the HTTP status (202 when accepted; 404 from an agent that
 * predates the route); -1 when no agent could be reached or the reply was
 * not HTTP. */
int vsock_agent_poweroff(const char *uds_path, unsigned port, const char *mode,
    int timeout_ms, int *ret_status, struct bn_err *err);

/* A request whose reply body is read as it comes (vsock_stream.c): sent
 * as HTTP/1.0 with body (blen bytes, octet-stream), so the agent ends
 * the body by closing.  0 with *ret open (its status set) once the reply's
 * head arrived within timeout_ms; close it with vsock_stream_close. */
struct vsock_stream {
	int fd;
	int status;
	char *pending;      /* body bytes read with the head */
	size_t npending, off;
};
int vsock_agent_open(const char *uds_path, unsigned port, const char *method,
    const char *target, const void *body, size_t blen, int timeout_ms,
    struct vsock_stream *ret, struct bn_err *err);
/* Up to len bytes of the body: > 0 read, 0 the end, -1 an error, -2 the
 * deadline (absolute, monotonic ms; < 0 none) passed, -3 watch_fd (when
 * >= 0: the client the bytes go to) hung up or sent something. */
ssize_t vsock_stream_read(struct vsock_stream *s, void *buf, size_t len,
    long long deadline, int watch_fd);
ssize_t vsock_stream_wait_read(int fd, void *buf, size_t len,
    long long deadline, int watch_fd);
void vsock_stream_close(struct vsock_stream *s);
/* After a refusal (a status other than the one asked for): the agent's
 * reason, its JSON "error" or the body as it came, into buf. */
void vsock_stream_why(struct vsock_stream *s, char *buf, size_t len);
/* A request whose body is sent as it comes (HTTP/1.1, chunked):
 * vsock_agent_begin sends the head, vsock_stream_send each piece (-1 when
 * the agent stopped reading), vsock_stream_finish the end, then reads the
 * reply's head (its body with vsock_stream_read). */
int vsock_agent_begin(const char *uds_path, unsigned port, const char *method,
    const char *target, int timeout_ms, struct vsock_stream *ret,
    struct bn_err *err);
int vsock_stream_send(struct vsock_stream *s, const void *data, size_t len,
    int timeout_ms);
int vsock_stream_finish(struct vsock_stream *s, int timeout_ms,
    struct bn_err *err);

/* POST target asking for "Upgrade: tcp" (the agent's /forward): 0 with
 * *ret open and its status set once the reply's head arrived within
 * timeout_ms.  With status 101 the stream is a raw byte pipe from here
 * (ret->pending holds what came after the head); otherwise the body says
 * why. */
int vsock_agent_upgrade(const char *uds_path, unsigned port,
    const char *target, int timeout_ms, struct vsock_stream *ret,
    struct bn_err *err);

/* Free ret->agent and reset *h. */
void vsock_health_clear(struct vsock_health *h);

/* "ok", "degraded", "unreachable", "starting" (the API's wire names). */
const char *vsock_health_status_name(enum vsock_health_status s);

#endif
