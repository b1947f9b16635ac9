/* vsock.c - hybrid vsock dial and the guest agent health probe.
 *
 * Sockets are non-blocking internally and every read/write waits with poll()
 * against an absolute deadline, so no call can hang past its budget.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vmm/vsock.h"
#include "vmm/vsock_quiet.h"

#include "common/uhttp.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

long long
vsock_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
vsock_health_status_name(enum vsock_health_status s)
{
	switch (s) {
	case VSOCK_HEALTH_OK: return "ok";
	case VSOCK_HEALTH_DEGRADED: return "degraded";
	case VSOCK_HEALTH_UNREACHABLE: return "unreachable";
	case VSOCK_HEALTH_STARTING: return "starting";
	}
	return "unknown";
}

void
vsock_health_clear(struct vsock_health *h)
{
	if (h == NULL)
		return;
	if (h->agent != NULL)
		json_decref(h->agent);
	memset(h, 0, sizeof(*h));
	h->status = VSOCK_HEALTH_UNREACHABLE;
}

static void
sleep_until(long long deadline)
{
	for (;;) {
		long long left = deadline - time_mono_ms();
		if (left <= 0)
			return;
		struct timespec ts = { .tv_sec = left / 1000,
			.tv_nsec = (left % 1000) * 1000000 };
		if (nanosleep(&ts, NULL) == 0)
			return;
		if (errno != EINTR)
			return;
	}
}

/* ---- dialing ---- */

enum attempt_result {
	ATTEMPT_OK,
	ATTEMPT_RETRY_CONNECT,  /* socket missing/refused/backlog full */
	ATTEMPT_RETRY_ACK,      /* connected; EOF or reset before OK */
	ATTEMPT_TIMEOUT_ACK,    /* connected; no OK before the deadline */
	ATTEMPT_FAIL_CONNECT,   /* hard connect error */
	ATTEMPT_BAD_ACK,        /* the VMM answered something else than OK */
	ATTEMPT_PAUSED,         /* the VM stayed paused (vsock_quiet.c) */
};

struct attempt {
	enum attempt_result res;
	int sys_errno;
	char detail[64];        /* bad ack text, sanitized */
};

static void
sanitize(char *dst, size_t cap, const char *src, size_t n)
{
	size_t j = 0;
	for (size_t i = 0; i < n && j + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[j] = '\0';
}

/* "OK <digits>" (the newline already stripped). */
static int
ack_is_ok(const char *line, size_t n)
{
	if (n < 4 || strncasecmp(line, "OK ", 3) != 0)
		return 0;
	for (size_t i = 3; i < n; i++)
		if (line[i] < '0' || line[i] > '9')
			return 0;
	return 1;
}

/* One connect + CONNECT + OK exchange; on success returns a non-blocking fd. */
static int
dial_attempt(const struct sockaddr_un *sa, unsigned port, long long deadline,
    struct attempt *at)
{
	struct bn_err err;

	memset(at, 0, sizeof(*at));
	int fd = vsock_conn_socket(sa->sun_path, deadline, &err);
	if (fd < 0) {
		at->res = err.code == BN_ESTATE ? ATTEMPT_PAUSED :
		    ATTEMPT_FAIL_CONNECT;
		at->sys_errno = err.sys_errno;
		return -1;
	}
	if (uhttp_connect(fd, sa, deadline) < 0) {
		at->sys_errno = errno;
		switch (errno) {
		case ENOENT:
		case ECONNREFUSED:
		case EAGAIN:
		case ETIMEDOUT:
			at->res = ATTEMPT_RETRY_CONNECT;
			break;
		default:
			at->res = ATTEMPT_FAIL_CONNECT;
			break;
		}
		vsock_conn_close(fd);
		return -1;
	}

	char req[32];
	int rl = snprintf(req, sizeof(req), "CONNECT %u\n", port);
	int w = uhttp_write(fd, req, (size_t)rl, deadline);
	if (w < 0) {
		at->res = w == -2 ? ATTEMPT_TIMEOUT_ACK : ATTEMPT_RETRY_ACK;
		at->sys_errno = w == -2 ? ETIMEDOUT : errno;
		vsock_conn_close(fd);
		return -1;
	}

	/* Once CONNECT is out, the VMM asks the guest, and when the guest
	 * accepts it writes "OK <port>" to this socket.  vhost-device-vsock
	 * (0.3.0, QEMU's vsock here) unwraps that write: had we closed our
	 * end by then, it fails with EPIPE, the backend's vring worker
	 * panics and the VM's vsock is dead until it stops, every later probe
	 * ending in no_ack.  So the answer gets at least VSOCK_ACK_MIN_MS,
	 * whatever the caller's deadline (a probe near the end of its slice
	 * used to give a slow guest a few milliseconds).  A guest that is not
	 * listening answers with a reset at once; one that is, within that
	 * time even under heavy load.  (Keeping the socket open longer does
	 * not help: the backend busy-polls every pending connection.) */
	long long ack_deadline = time_mono_ms() + VSOCK_ACK_MIN_MS;
	if (ack_deadline < deadline)
		ack_deadline = deadline;
	/* Byte at a time: whatever follows the newline belongs to the guest. */
	char line[40];
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = uhttp_read(fd, &c, 1, ack_deadline);
		if (r == 1) {
			if (c == '\n')
				break;
			if (n + 1 >= sizeof(line)) {
				at->res = ATTEMPT_BAD_ACK;
				sanitize(at->detail, sizeof(at->detail), line, n);
				vsock_conn_close(fd);
				return -1;
			}
			line[n++] = c;
			continue;
		}
		if (r == -2) {
			at->res = ATTEMPT_TIMEOUT_ACK;
			at->sys_errno = ETIMEDOUT;
		} else {
			/* EOF or reset: nothing listens in the guest (yet). */
			at->res = ATTEMPT_RETRY_ACK;
			at->sys_errno = r == 0 ? 0 : errno;
		}
		vsock_conn_close(fd);
		return -1;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (!ack_is_ok(line, n)) {
		at->res = ATTEMPT_BAD_ACK;
		sanitize(at->detail, sizeof(at->detail), line, n);
		vsock_conn_close(fd);
		return -1;
	}
	at->res = ATTEMPT_OK;
	return fd;
}

enum dial_stage {
	STAGE_NONE,     /* success */
	STAGE_CONNECT,  /* never connected to the Unix socket */
	STAGE_ACK,      /* connected, but no OK */
};

/* Dial, retrying when `retry` is set.  Returns a non-blocking fd or -1 with
 * *stage and err filled. */
static int
dial_internal(const char *uds_path, unsigned port, long long deadline,
    int retry, enum dial_stage *stage, struct attempt *last, struct bn_err *err)
{
	struct sockaddr_un sa;
	*stage = STAGE_CONNECT;
	if (uds_path == NULL || uhttp_sockaddr(&sa, uds_path) < 0)
		return bn_fail(err, BN_EINVAL, 0,
		    "vsock socket path is empty or too long: %s",
		    uds_path ? uds_path : "(null)");

	int connected_once = 0;
	int attempts = 0;
	struct attempt at = { .res = ATTEMPT_FAIL_CONNECT, .sys_errno = EINVAL };
	for (;;) {
		attempts++;
		int fd = dial_attempt(&sa, port, deadline, &at);
		if (last != NULL)
			*last = at;
		if (fd >= 0) {
			*stage = STAGE_NONE;
			return fd;
		}
		if (at.res != ATTEMPT_RETRY_CONNECT &&
		    at.res != ATTEMPT_FAIL_CONNECT)
			connected_once = 1;
		*stage = connected_once ? STAGE_ACK : STAGE_CONNECT;

		switch (at.res) {
		case ATTEMPT_FAIL_CONNECT:
			return bn_fail(err, BN_ESYS, at.sys_errno,
			    "vsock connect %s", uds_path);
		case ATTEMPT_PAUSED:
			return bn_fail(err, BN_ESTATE, 0, "vsock %s port %u: "
			    "the VM is paused", uds_path, port);
		case ATTEMPT_BAD_ACK:
			return bn_fail(err, BN_EVMM, 0,
			    "vsock %s port %u: unexpected reply to CONNECT: "
			    "\"%s\"", uds_path, port, at.detail);
		default:
			break;
		}
		long long now = time_mono_ms();
		if (!retry || at.res == ATTEMPT_TIMEOUT_ACK || now >= deadline)
			break;
		long long next = now + VSOCK_RETRY_INTERVAL_MS;
		sleep_until(next < deadline ? next : deadline);
		if (time_mono_ms() >= deadline)
			break;   /* one more try would have no time left */
	}

	const char *what = at.res == ATTEMPT_RETRY_CONNECT ?
	    "cannot connect" : "no OK from the VMM (guest not listening?)";
	int code = (retry || at.res == ATTEMPT_TIMEOUT_ACK) ? BN_ETIMEOUT :
	    (at.res == ATTEMPT_RETRY_CONNECT ? BN_ESYS : BN_EVMM);
	if (at.sys_errno != 0 && at.sys_errno != ETIMEDOUT)
		bn_fail(err, code, at.sys_errno,
		    "vsock %s port %u: %s after %d attempt%s", uds_path, port,
		    what, attempts, attempts == 1 ? "" : "s");
	else
		bn_fail(err, code, 0, "vsock %s port %u: %s after %d attempt%s",
		    uds_path, port, what, attempts, attempts == 1 ? "" : "s");
	return -1;
}

int
vsock_dial(const char *uds_path, unsigned port, long long deadline_ms,
    int *ret_fd, struct bn_err *err)
{
	enum dial_stage stage;
	int fd = dial_internal(uds_path, port, deadline_ms, 1, &stage, NULL,
	    err);
	if (fd < 0)
		return -1;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		vsock_conn_close(fd);
		return bn_fail(err, BN_ESYS, e, "vsock %s: fcntl", uds_path);
	}
	*ret_fd = fd;
	return 0;
}

/* ---- the probe ---- */

static void
set_result(struct vsock_health *h, enum vsock_health_status st,
    const char *reason, const char *protocol)
{
	h->status = st;
	snprintf(h->reason, sizeof(h->reason), "%s", reason);
	snprintf(h->protocol, sizeof(h->protocol), "%s", protocol);
}

/* How a dial attempt ended, for the logs: a VMM that hangs up (eof,
 * reset) has no guest listener yet; one that says nothing (timeout) may
 * be wedged. */
static const char *
attempt_how(const struct attempt *at)
{
	switch (at->res) {
	case ATTEMPT_OK: return "ok";
	case ATTEMPT_TIMEOUT_ACK: return "timeout";
	case ATTEMPT_BAD_ACK: return "bad_ack";
	case ATTEMPT_PAUSED: return "paused";
	case ATTEMPT_RETRY_ACK:
		return at->sys_errno == 0 ? "eof" : at->sys_errno == ECONNRESET ?
		    "reset" : at->sys_errno == EPIPE ? "epipe" : "read_error";
	case ATTEMPT_RETRY_CONNECT:
	case ATTEMPT_FAIL_CONNECT:
		switch (at->sys_errno) {
		case ENOENT: return "no_socket";
		case ECONNREFUSED: return "refused";
		case EAGAIN: return "backlog_full";
		case ETIMEDOUT: return "connect_timeout";
		default: return "connect_error";
		}
	}
	return "";
}

static void
set_dial_failure(struct vsock_health *h, enum dial_stage stage,
    const struct attempt *at)
{
	set_result(h, VSOCK_HEALTH_UNREACHABLE,
	    stage == STAGE_ACK ? "no_ack" : "vsock_connect_failed", "");
	snprintf(h->how, sizeof(h->how), "%s", attempt_how(at));
}

/* The status code of an HTTP reply ("HTTP/x.y SSS ..."), or -1. */
static int
http_status(const struct uhttp_reply *r)
{
	const char *p = r->buf;
	const char *sp = memchr(p, ' ', r->len < 16 ? r->len : 16);
	if (sp == NULL || (size_t)(sp - p) + 4 > r->len)
		return -1;
	if (sp[1] < '0' || sp[1] > '9' || sp[2] < '0' || sp[2] > '9' ||
	    sp[3] < '0' || sp[3] > '9')
		return -1;
	return (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
}

static const struct {
	const char *name;
	unsigned cap;
} cap_names[] = {
	{ "health", VSOCK_CAP_HEALTH },
	{ "power", VSOCK_CAP_POWER },
	{ "clock", VSOCK_CAP_CLOCK },
	{ "identity", VSOCK_CAP_IDENTITY },
	{ "exec", VSOCK_CAP_EXEC },
	{ "files", VSOCK_CAP_FILES },
	{ "forward", VSOCK_CAP_FORWARD },
	{ "exec_tty", VSOCK_CAP_EXEC_TTY },
};

json_t *
vsock_caps_json(unsigned caps)
{
	json_t *a = json_array();

	for (size_t k = 0; k < ARRAY_SIZE(cap_names); k++)
		if (caps & cap_names[k].cap)
			json_array_append_new(a, json_string(cap_names[k].name));
	return a;
}

/* The agent's protocol and capabilities from its /healthz document: the
 * list when it sends one (protocol 3 and later: exec came with 4 and
 * files with 5, always in the list), else what its protocol implies. */
static void
read_capabilities(json_t *doc, struct vsock_health *h)
{
	json_t *proto = json_object_get(doc, "protocol");
	json_int_t pv = json_is_integer(proto) ? json_integer_value(proto) : 1;
	json_t *caps = json_object_get(doc, "capabilities");
	size_t i;
	json_t *v;

	h->agent_protocol = pv < 1 ? 1 : pv > 1000 ? 1000 : (int)pv;
	if (!json_is_array(caps)) {
		h->agent_caps = VSOCK_CAP_HEALTH;
		if (h->agent_protocol >= 2)
			h->agent_caps |= VSOCK_CAP_POWER;
		return;
	}
	h->agent_caps = 0;
	json_array_foreach(caps, i, v) {
		const char *name = json_string_value(v);
		for (size_t k = 0; name != NULL && k < ARRAY_SIZE(cap_names); k++)
			if (strcmp(name, cap_names[k].name) == 0)
				h->agent_caps |= cap_names[k].cap;
	}
}

/* Judge a complete HTTP reply; fills *h. */
static void
judge_http(const struct uhttp_reply *r, struct vsock_health *h)
{
	set_result(h, VSOCK_HEALTH_UNREACHABLE, "bad_response", "http");
	if (http_status(r) != 200)
		return;
	size_t body = r->body;
	if (body == 0)
		return;
	long long cl = uhttp_content_length(r->buf, body, r->max);
	if (cl == -2)
		return;
	size_t blen = r->len - body;
	if (cl >= 0) {
		if ((size_t)cl > blen)
			return;   /* truncated */
		blen = (size_t)cl;
	}
	json_error_t jerr;
	json_t *doc = json_loadb(r->buf + body, blen, 0, &jerr);
	if (doc == NULL)
		return;
	if (!json_is_object(doc)) {
		json_decref(doc);
		return;
	}
	const char *st = json_string_value(json_object_get(doc, "status"));
	if (st == NULL) {
		json_decref(doc);
		return;
	}
	h->agent = doc;
	read_capabilities(doc, h);
	json_t *ready = json_object_get(doc, "ready");
	if (json_is_false(ready)) {
		const char *why = json_string_value(json_object_get(doc,
		    "not_ready"));
		set_result(h, VSOCK_HEALTH_STARTING, "not_ready", "http");
		snprintf(h->not_ready, sizeof(h->not_ready), "%s",
		    why ? why : "the agent says it is not ready");
	} else if (strcmp(st, "ok") == 0) {
		set_result(h, VSOCK_HEALTH_OK, "ok", "http");
	} else {
		/* Say why where the agent does: a shared folder that did
		 * not mount (protocol 7's "shares"). */
		const char *sd = json_string_value(json_object_get(
		    json_object_get(doc, "shares"), "detail"));
		set_result(h, VSOCK_HEALTH_DEGRADED, "agent_degraded", "http");
		if (sd != NULL)
			snprintf(h->not_ready, sizeof(h->not_ready), "shared "
			    "folder %s", sd);
	}
}

/* Legacy fallback: "PING\n" -> "PONG". */
static void
probe_ping(const char *uds_path, unsigned port, long long deadline,
    struct vsock_health *h)
{
	struct bn_err err;
	enum dial_stage stage;
	struct attempt at = { .res = ATTEMPT_FAIL_CONNECT, .sys_errno = EINVAL };
	memset(&err, 0, sizeof(err));
	int fd = dial_internal(uds_path, port, deadline, 0, &stage, &at, &err);
	if (fd < 0) {
		set_dial_failure(h, stage, &at);
		return;
	}
	int w = uhttp_write(fd, "PING\n", 5, deadline);
	if (w == -2) {
		set_result(h, VSOCK_HEALTH_UNREACHABLE, "timeout", "");
		vsock_conn_close(fd);
		return;
	}
	char buf[64];
	size_t len = 0;
	int timed_out = 0;
	while (w == 0 && len + 1 < sizeof(buf) &&
	    memchr(buf, '\n', len) == NULL) {
		ssize_t n = uhttp_read(fd, buf + len, sizeof(buf) - 1 - len,
		    deadline);
		if (n == -2)
			timed_out = 1;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	vsock_conn_close(fd);
	if (len >= 4 && memcmp(buf, "PONG", 4) == 0)
		set_result(h, VSOCK_HEALTH_OK, "legacy_ping", "ping");
	else if (timed_out && len < 4 && memcmp(buf, "PONG", len) == 0)
		set_result(h, VSOCK_HEALTH_UNREACHABLE, "timeout", "");
	else
		set_result(h, VSOCK_HEALTH_UNREACHABLE, "bad_response", "");
}

int
vsock_probe_health(const char *uds_path, unsigned port, int timeout_ms,
    struct vsock_health *ret)
{
	return vsock_probe_health_wait(uds_path, port, timeout_ms, 0, ret);
}

int
vsock_probe_health_wait(const char *uds_path, unsigned port, int timeout_ms,
    int wait_ms, struct vsock_health *ret)
{
	char http_request[160], query[32] = "";

	if (wait_ms > 0)
		snprintf(query, sizeof(query), "?wait_ms=%d", wait_ms);
	int reqlen = snprintf(http_request, sizeof(http_request),
	    "GET /healthz%s HTTP/1.0\r\nHost: banger-agent\r\n"
	    "User-Agent: bangerd\r\nAccept: application/json\r\n\r\n",
	    query);
	memset(ret, 0, sizeof(*ret));
	long long start = time_mono_ms();
	if (timeout_ms <= 0)
		timeout_ms = VSOCK_PROBE_DEFAULT_TIMEOUT_MS;
	long long deadline = start + timeout_ms;

	struct bn_err err;
	enum dial_stage stage;
	struct attempt at = { .res = ATTEMPT_FAIL_CONNECT, .sys_errno = EINVAL };
	memset(&err, 0, sizeof(err));
	int fd = dial_internal(uds_path, port, deadline, 0, &stage, &at, &err);
	if (fd < 0) {
		set_dial_failure(ret, stage, &at);
		goto out;
	}

	int fallback = 0;
	int w = uhttp_write(fd, http_request, (size_t)reqlen, deadline);
	if (w == -2) {
		set_result(ret, VSOCK_HEALTH_UNREACHABLE, "timeout", "");
	} else if (w == -1) {
		/* The guest closed right after accepting: maybe an agent that
		 * only knew PING and hung up on our request. */
		fallback = 1;
	} else {
		struct uhttp_reply r = { .max = VSOCK_MAX_REPLY };
		switch (uhttp_read_reply(fd, deadline, &r)) {
		case UHTTP_DONE:
			judge_http(&r, ret);
			break;
		case UHTTP_NOT_HTTP:
			fallback = 1;
			break;
		case UHTTP_TIMEOUT:
			set_result(ret, VSOCK_HEALTH_UNREACHABLE, "timeout",
			    r.len > 0 ? "http" : "");
			break;
		case UHTTP_TOO_BIG:
			set_result(ret, VSOCK_HEALTH_UNREACHABLE,
			    "bad_response", "http");
			break;
		}
		free(r.buf);
	}
	vsock_conn_close(fd);
	if (fallback)
		probe_ping(uds_path, port, deadline, ret);
out:;
	long long el = time_mono_ms() - start;
	ret->latency_ms = el < 0 ? 0 : (el > 0x7fffffff ? 0x7fffffff : (int)el);
	return 0;
}

int
vsock_health_fail(const struct vsock_health *ret, const char *uds_path,
    unsigned port, int probes, struct bn_err *err)
{
	if (ret->status == VSOCK_HEALTH_STARTING) {
		bn_fail(err, BN_ENOT_READY, 0, "the guest did not become ready "
		    "in time: %s", ret->not_ready);
		bn_err_detail(err, "check", ret->not_ready);
		bn_err_hint(err, "the guest agent answers but a readiness check "
		    "fails; look at the console for the failing service");
		return -1;
	}
	bn_fail(err, BN_ETIMEOUT, 0,
	    "guest agent on %s port %u not reachable before the deadline "
	    "(%d probe%s, last: %s)", uds_path ? uds_path : "(null)", port,
	    probes, probes == 1 ? "" : "s", ret->reason[0] ? ret->reason :
	    "none");
	bn_err_hint(err, "check the VM's console log: the guest needs "
	    "virtio-vsock and banger-vsock-agent listening on port %u", port);
	return -1;
}

int
vsock_wait_healthy(const char *uds_path, unsigned port, long long deadline_ms,
    struct vsock_health *ret, struct bn_err *err)
{
	memset(ret, 0, sizeof(*ret));
	ret->status = VSOCK_HEALTH_UNREACHABLE;
	int probes = 0;
	for (;;) {
		long long now = time_mono_ms();
		long long left = deadline_ms - now;
		/* At least one short probe even when the deadline has passed. */
		if (left < 100)
			left = probes == 0 ? 100 : left;
		if (left > VSOCK_WAIT_PROBE_TIMEOUT_MS)
			left = VSOCK_WAIT_PROBE_TIMEOUT_MS;
		if (left <= 0)
			break;
		vsock_health_clear(ret);
		vsock_probe_health(uds_path, port, (int)left, ret);
		probes++;
		if (ret->status == VSOCK_HEALTH_OK ||
		    ret->status == VSOCK_HEALTH_DEGRADED)
			return 0;
		now = time_mono_ms();
		if (now >= deadline_ms)
			break;
		/* Back off from 1 ms: a fast guest (or the test double) is up
		 * within milliseconds, a real boot takes seconds. */
		int pause = 1 << (probes < 9 ? probes - 1 : 8);
		if (pause > VSOCK_WAIT_INTERVAL_MS)
			pause = VSOCK_WAIT_INTERVAL_MS;
		long long next = now + pause;
		sleep_until(next < deadline_ms ? next : deadline_ms);
		if (time_mono_ms() >= deadline_ms)
			break;
	}
	return vsock_health_fail(ret, uds_path, port, probes, err);
}

int
vsock_agent_call(const char *uds_path, unsigned port, const char *method,
    const char *target, const char *body, int timeout_ms, int *ret_status,
    json_t **ret_doc, struct bn_err *err)
{
	long long deadline = time_mono_ms() + (timeout_ms > 0 ? timeout_ms :
	    VSOCK_PROBE_DEFAULT_TIMEOUT_MS);
	size_t blen = body ? strlen(body) : 0;
	enum dial_stage stage;
	char head[512];

	if (ret_doc != NULL)
		*ret_doc = NULL;
	int n = snprintf(head, sizeof(head), "%s %s HTTP/1.0\r\n"
	    "Host: banger-agent\r\nUser-Agent: bangerd\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n\r\n", method, target,
	    body != NULL && body[0] != '{' ? "application/x-www-form-urlencoded" :
	    "application/json", blen);
	if (n < 0 || (size_t)n >= sizeof(head))
		return bn_fail(err, BN_EINTERNAL, 0, "agent request %s %s too "
		    "long", method, target);
	int fd = dial_internal(uds_path, port, deadline, 0, &stage, NULL, err);
	if (fd < 0)
		return -1;
	if (uhttp_write(fd, head, (size_t)n, deadline) < 0 ||
	    (blen > 0 && uhttp_write(fd, body, blen, deadline) < 0)) {
		vsock_conn_close(fd);
		return bn_fail(err, BN_EVMM, 0, "vsock %s port %u: the agent "
		    "closed before the %s %s request", uds_path, port, method,
		    target);
	}
	struct uhttp_reply r = { .max = 64 * 1024 };
	enum uhttp_outcome res = uhttp_read_reply(fd, deadline, &r);
	vsock_conn_close(fd);
	int status = res == UHTTP_DONE ? http_status(&r) : -1;
	if (status >= 0 && ret_doc != NULL && r.body > 0) {
		size_t have = r.len - r.body;
		size_t len = r.clen >= 0 && (size_t)r.clen < have ?
		    (size_t)r.clen : have;
		*ret_doc = json_loadb(r.buf + r.body, len, 0, NULL);
	}
	free(r.buf);
	if (status < 0)
		return bn_fail(err, res == UHTTP_TIMEOUT ? BN_ETIMEOUT : BN_EVMM,
		    0, "vsock %s port %u: no HTTP answer to %s %s", uds_path,
		    port, method, target);
	*ret_status = status;
	return 0;
}

int
vsock_agent_poweroff(const char *uds_path, unsigned port, const char *mode,
    int timeout_ms, int *ret_status, struct bn_err *err)
{
	char target[64];

	snprintf(target, sizeof(target), "/poweroff?mode=%s", mode);
	return vsock_agent_call(uds_path, port, "POST", target, NULL,
	    timeout_ms, ret_status, NULL, err);
}
