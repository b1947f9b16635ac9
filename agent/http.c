/* http.c - one agent connection: legacy PING line or a minimal HTTP/1.x request.
 *
 * The connection reads at most AGENT_MAX_HEAD bytes within AGENT_IO_TIMEOUT_MS,
 * answers exactly once and closes ("Connection: close", always a
 * Content-Length).  Routes are a table (GET /healthz, POST /poweroff).
 * Request bodies are never read; the reply is followed by a
 * short, bounded drain so that unread input cannot turn the close into a reset
 * that destroys the reply in flight.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_MS 250
#define DRAIN_MAX (64 * 1024)

long long
agent_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
agent_log(const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s: ", AGENT_NAME);
	if (n < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write per line so lines from concurrent threads never mix. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

/* Wait for fd to become readable/writable until deadline; 1 ready, 0 timeout,
 * -1 error. */
static int
wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - agent_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r > 0)
			return 1;
	}
}

/* Read what is available; >0 bytes, 0 EOF, -1 error, -2 timeout. */
static ssize_t
read_some(int fd, char *buf, size_t cap, long long deadline)
{
	for (;;) {
		int w = wait_fd(fd, POLLIN, deadline);
		if (w == 0)
			return -2;
		if (w < 0)
			return -1;
		ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			continue;
		return -1;
	}
}

static int
write_all(int fd, const char *buf, size_t len, long long deadline)
{
	while (len > 0) {
		int w = wait_fd(fd, POLLOUT, deadline);
		if (w <= 0) {
			if (w == 0)
				errno = ETIMEDOUT;
			return -1;
		}
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Half-close, then swallow whatever the peer still sends for a moment. */
static void
finish(int fd)
{
	shutdown(fd, SHUT_WR);
	long long deadline = agent_now_ms() + DRAIN_MS;
	char junk[4096];
	size_t total = 0;
	while (total < DRAIN_MAX) {
		ssize_t n = read_some(fd, junk, sizeof(junk), deadline);
		if (n <= 0)
			break;
		total += (size_t)n;
	}
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

static void
send_response(int fd, int status, const char *body, size_t body_len,
    int head_only, const char *extra_headers)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_printf(&sb,
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "Connection: close\r\n"
	    "Server: " AGENT_NAME "/" AGENT_VERSION "\r\n"
	    "%s"
	    "\r\n",
	    status, reason_phrase(status), body_len,
	    extra_headers ? extra_headers : "");
	if (!head_only)
		sb_add(&sb, body, body_len);
	if (sb.oom) {
		agent_log("out of memory building a %d reply", status);
	} else if (write_all(fd, sb.buf, sb.len,
	    agent_now_ms() + AGENT_IO_TIMEOUT_MS) < 0 && errno != EPIPE &&
	    errno != ECONNRESET) {
		/* A client that already left is not worth a log line. */
		agent_log("writing %d reply: %s", status, strerror(errno));
	}
	sb_free(&sb);
}

static void
send_error(int fd, int status, const char *msg, const char *extra_headers)
{
	struct strbuf body;
	sb_init(&body);
	sb_puts(&body, "{\"error\":");
	sb_json_str(&body, msg);
	sb_puts(&body, "}");
	if (body.oom)
		agent_log("out of memory building an error body");
	else
		send_response(fd, status, body.buf, body.len, 0, extra_headers);
	sb_free(&body);
}

/* RFC 9110 token characters. */
static int
is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Position just past the blank line that ends the head, or 0. */
static size_t
head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

enum ping_match { PING_NO, PING_PARTIAL, PING_YES };

static enum ping_match
match_ping(const char *buf, size_t len)
{
	static const char *const forms[] = { "PING\n", "PING\r\n" };
	enum ping_match best = PING_NO;
	for (size_t i = 0; i < 2; i++) {
		size_t fl = strlen(forms[i]);
		if (len >= fl && memcmp(buf, forms[i], fl) == 0)
			return PING_YES;
		if (len < fl && memcmp(buf, forms[i], len) == 0)
			best = PING_PARTIAL;
	}
	return best;
}

/* What a handler leaves to be done once its reply is out. */
struct after_reply {
	int power;
	enum power_mode mode;
};

struct request {
	int fd;
	const char *query;          /* after '?', or NULL */
	int head_only;
	const struct agent_config *cfg;
	struct after_reply *after;
};

static void route_healthz(const struct request *rq);
static void route_poweroff(const struct request *rq);

/* Every route the agent serves (HEAD is implied by GET). */
static const struct route {
	const char *method;
	const char *path;
	void (*fn)(const struct request *rq);
} routes[] = {
	{ "GET", "/healthz", route_healthz },
	{ "POST", "/poweroff", route_poweroff },
};

/* Parse and answer a complete request head (NUL-terminated, len bytes). */
static void
handle_http(int fd, char *head, const struct agent_config *cfg,
    struct after_reply *after)
{
	/* Request line. */
	char *line = head;
	char *nl = strchr(line, '\n');
	if (nl == NULL) {
		send_error(fd, 400, "bad request", NULL);
		return;
	}
	*nl = '\0';
	if (nl > line && nl[-1] == '\r')
		nl[-1] = '\0';
	char *rest = nl + 1;

	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 ||
	    strchr(sp2 + 1, ' ') != NULL) {
		agent_log("malformed request line");
		send_error(fd, 400, "bad request", NULL);
		return;
	}
	*sp1 = '\0';
	*sp2 = '\0';
	char *method = line, *target = sp1 + 1, *version = sp2 + 1;
	for (char *p = method; *p; p++) {
		if (!is_tchar((unsigned char)*p)) {
			agent_log("malformed request method");
			send_error(fd, 400, "bad request", NULL);
			return;
		}
	}
	for (char *p = target; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f) {
			agent_log("malformed request target");
			send_error(fd, 400, "bad request", NULL);
			return;
		}
	}
	if (strncmp(version, "HTTP/", 5) != 0 || version[5] < '0' ||
	    version[5] > '9' || version[6] != '.' || version[7] < '0' ||
	    version[7] > '9' || version[8] != '\0') {
		agent_log("malformed HTTP version");
		send_error(fd, 400, "bad request", NULL);
		return;
	}
	if (version[5] != '1') {
		agent_log("unsupported HTTP version %s", version);
		send_error(fd, 505, "http version not supported", NULL);
		return;
	}

	/* Header lines: only validated, none is needed. */
	while (*rest) {
		char *hl = rest;
		char *e = strchr(hl, '\n');
		if (e == NULL)
			break;
		*e = '\0';
		if (e > hl && e[-1] == '\r')
			e[-1] = '\0';
		rest = e + 1;
		if (*hl == '\0')
			break;           /* the blank line */
		char *colon = strchr(hl, ':');
		int ok = colon != NULL && colon != hl;
		for (char *p = hl; ok && p < colon; p++)
			ok = is_tchar((unsigned char)*p);
		if (!ok) {
			agent_log("malformed header line");
			send_error(fd, 400, "bad request", NULL);
			return;
		}
	}

	/* Origin-form, or absolute-form (http://host/path). */
	char *path = target;
	if (strncmp(path, "http://", 7) == 0) {
		path = strchr(path + 7, '/');
		if (path == NULL)
			path = "/";
	}
	if (*path != '/' && strcmp(path, "*") != 0) {
		agent_log("malformed request target");
		send_error(fd, 400, "bad request", NULL);
		return;
	}
	size_t plen = strcspn(path, "?#");
	const char *query = path[plen] == '?' ? path + plen + 1 : NULL;

	const struct route *rt = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strlen(routes[i].path) == plen &&
		    strncmp(path, routes[i].path, plen) == 0)
			rt = &routes[i];
	if (rt == NULL) {
		send_error(fd, 404, "not found", NULL);
		return;
	}
	int head_only = strcmp(method, "HEAD") == 0 &&
	    strcmp(rt->method, "GET") == 0;
	if (strcmp(method, rt->method) != 0 && !head_only) {
		char allow[64];
		snprintf(allow, sizeof(allow), "Allow: %s%s\r\n", rt->method,
		    strcmp(rt->method, "GET") == 0 ? ", HEAD" : "");
		send_error(fd, 405, "method not allowed", allow);
		return;
	}
	struct request rq = { .fd = fd, .query = query, .head_only = head_only,
		.cfg = cfg, .after = after };
	rt->fn(&rq);
}

/* The value of key in a query string ("a=1&b=2"); its length, or -1. */
static int
query_value(const char *query, const char *key, const char **ret)
{
	size_t kl = strlen(key);
	for (const char *q = query; q != NULL && *q && *q != '#'; ) {
		size_t n = strcspn(q, "&#");
		if (n > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
			*ret = q + kl + 1;
			return (int)(n - kl - 1);
		}
		q += n;
		if (*q == '&')
			q++;
	}
	return -1;
}

static void
route_healthz(const struct request *rq)
{
	struct strbuf body;
	sb_init(&body);
	health_json(rq->cfg, &body);
	if (body.oom) {
		agent_log("out of memory building /healthz");
		send_error(rq->fd, 500, "internal error", NULL);
	} else {
		send_response(rq->fd, 200, body.buf, body.len, rq->head_only,
		    NULL);
	}
	sb_free(&body);
}

/* POST /poweroff[?mode=poweroff|reboot]: 202 now, the shutdown after the
 * reply has left (serve_connection runs rq->after). */
static void
route_poweroff(const struct request *rq)
{
	enum power_mode mode = POWER_OFF;
	const char *v;
	int n = query_value(rq->query, "mode", &v);
	if (n >= 0 && power_mode_parse(v, (size_t)n, &mode) < 0) {
		send_error(rq->fd, 400, "mode must be poweroff or reboot", NULL);
		return;
	}
	if (!power_allowed(rq->cfg)) {
		send_error(rq->fd, 403, "this agent does not run in a guest "
		    "(no --poweroff-cmd): refusing to power off its host",
		    NULL);
		return;
	}
	char body[64];
	int bl = snprintf(body, sizeof(body),
	    "{\"status\":\"accepted\",\"mode\":\"%s\"}", power_mode_name(mode));
	send_response(rq->fd, 202, body, (size_t)bl, 0, NULL);
	rq->after->power = 1;
	rq->after->mode = mode;
}

void
serve_connection(int fd, const struct agent_config *cfg)
{
	char buf[AGENT_MAX_HEAD + 1];
	size_t len = 0;
	long long deadline = agent_now_ms() + AGENT_IO_TIMEOUT_MS;
	struct after_reply after = { 0 };

	for (;;) {
		/* RFC 9112 2.2: ignore empty lines before the request line. */
		size_t skip = 0;
		while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n'))
			skip++;
		if (skip > 0) {
			memmove(buf, buf + skip, len - skip);
			len -= skip;
		}

		if (len > 0) {
			enum ping_match pm = match_ping(buf, len);
			if (pm == PING_YES) {
				if (write_all(fd, "PONG\n", 5,
				    agent_now_ms() + AGENT_IO_TIMEOUT_MS) < 0)
					agent_log("writing PONG: %s",
					    strerror(errno));
				finish(fd);
				return;
			}
			if (pm == PING_NO) {
				size_t end = head_end(buf, len);
				if (end > 0) {
					buf[end] = '\0';
					if (memchr(buf, '\0', end) != NULL) {
						agent_log("NUL byte in request");
						send_error(fd, 400,
						    "bad request", NULL);
					} else {
						handle_http(fd, buf, cfg,
						    &after);
					}
					finish(fd);
					if (after.power)
						power_request(cfg, after.mode);
					return;
				}
			}
		}
		if (len >= AGENT_MAX_HEAD) {
			agent_log("request head larger than %d bytes",
			    AGENT_MAX_HEAD);
			send_error(fd, 431, "request header too large", NULL);
			finish(fd);
			return;
		}

		ssize_t n = read_some(fd, buf + len, AGENT_MAX_HEAD - len,
		    deadline);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0) {
			/* EOF: a bare "PING" without newline still gets PONG. */
			if (len == 4 && memcmp(buf, "PING", 4) == 0) {
				if (write_all(fd, "PONG\n", 5,
				    agent_now_ms() + AGENT_IO_TIMEOUT_MS) < 0)
					agent_log("writing PONG: %s",
					    strerror(errno));
			} else if (len > 0) {
				agent_log("incomplete request before EOF");
				send_error(fd, 400, "bad request", NULL);
			}
			return;
		}
		if (n == -2) {
			agent_log("request timed out after %d ms",
			    AGENT_IO_TIMEOUT_MS);
			if (len > 0)
				send_error(fd, 408, "request timeout", NULL);
			return;
		}
		if (errno != ECONNRESET)
			agent_log("reading request: %s", strerror(errno));
		return;
	}
}
