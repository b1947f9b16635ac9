/* http.c - the agent's HTTP server core: one connection per thread (see
 * banger-vsock-agent.c), the legacy PING line or one HTTP/1.1 request.
 *
 * The head (at most AGENT_MAX_HEAD bytes) is parsed by the parser shared
 * with bangerd (src/common/uhttp_msg.c).  For most routes a Content-Length
 * body of at most AGENT_MAX_BODY bytes is read whole before the handler
 * runs (413 above it, 501 for chunked request bodies); a stream_body route
 * reads its body itself as it comes (body.c: Content-Length or chunked, up
 * to AGENT_MAX_STREAM_BODY).  The route table is routes.c; handlers
 * answer once through agent_reply (a Content-Length) or stream through
 * agent_stream_* (chunked); either way "Connection: close"; or, once,
 * take the connection over after a 101 (forward.c: the Upgrade headers
 * and the bytes read past the head are in the request).  After the
 * reply a short, bounded drain keeps unread input from
 * turning the close into a reset that destroys the reply in flight; then
 * the handler's after-reply action runs (a power-off). */
#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/uhttp_msg.h"

#define DRAIN_MS 250
#define DRAIN_MAX (64 * 1024)

/* Half-close, then swallow whatever the peer still sends for a moment. */
static void
finish(int fd)
{
	long long deadline = agent_now_ms() + DRAIN_MS;
	char junk[4096];
	size_t total = 0;

	shutdown(fd, SHUT_WR);
	while (total < DRAIN_MAX) {
		ssize_t n = uhttp_read(fd, junk, sizeof(junk), deadline);
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
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* The head of a reply: a Content-Length (len >= 0), chunked (len -1) or
 * neither (len -2: the close ends the body). */
static void
put_head(struct strbuf *sb, int status, const char *content_type,
    long long len, const char *extra_headers)
{
	sb_printf(sb,
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n",
	    status, reason_phrase(status), content_type);
	if (len >= 0)
		sb_printf(sb, "Content-Length: %lld\r\n", len);
	else if (len == -1)
		sb_puts(sb, "Transfer-Encoding: chunked\r\n");
	sb_printf(sb,
	    "Cache-Control: no-store\r\n"
	    "Connection: close\r\n"
	    "Server: " AGENT_NAME "/" AGENT_VERSION "\r\n"
	    "%s"
	    "\r\n",
	    extra_headers ? extra_headers : "");
}

/* Send what sb holds; -1 when it could not be (logged unless the client
 * simply left). */
static int
send_buf(int fd, struct strbuf *sb, const char *what)
{
	if (sb->oom) {
		agent_log("out of memory building %s", what);
		return -1;
	}
	if (uhttp_write(fd, sb->buf, sb->len,
	    agent_now_ms() + AGENT_IO_TIMEOUT_MS) != 0) {
		/* A client that already left is not worth a log line. */
		if (errno != EPIPE && errno != ECONNRESET)
			agent_log("writing %s: %s", what, strerror(errno));
		return -1;
	}
	return 0;
}

static void
send_response(int fd, int status, const char *body, size_t body_len,
    int head_only, const char *extra_headers)
{
	struct strbuf sb;
	char what[32];

	sb_init(&sb);
	put_head(&sb, status, "application/json", (long long)body_len,
	    extra_headers);
	if (!head_only)
		sb_add(&sb, body, body_len);
	snprintf(what, sizeof(what), "a %d reply", status);
	send_buf(fd, &sb, what);
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

void
agent_reply(struct agent_request *rq, int status, const char *body,
    size_t len)
{
	send_response(rq->fd, status, body, len, rq->head_only, NULL);
}

void
agent_reply_error(struct agent_request *rq, int status, const char *msg)
{
	send_error(rq->fd, status, msg, NULL);
}

int
agent_stream_begin(struct agent_request *rq, int status,
    const char *content_type)
{
	struct strbuf sb;

	sb_init(&sb);
	put_head(&sb, status, content_type, rq->http10 ? -2 : -1, NULL);
	int rc = send_buf(rq->fd, &sb, "a stream's head");
	sb_free(&sb);
	rq->streaming = rc == 0 && !rq->head_only;
	return rq->streaming ? 0 : -1;
}

int
agent_stream_write(struct agent_request *rq, const void *buf, size_t len)
{
	struct strbuf sb;

	if (!rq->streaming)
		return -1;
	if (len == 0)
		return 0;   /* an empty chunk would end the stream */
	sb_init(&sb);
	if (!rq->http10)
		sb_printf(&sb, "%zx\r\n", len);
	sb_add(&sb, buf, len);
	if (!rq->http10)
		sb_puts(&sb, "\r\n");
	int rc = send_buf(rq->fd, &sb, "a stream");
	sb_free(&sb);
	if (rc < 0)
		rq->streaming = 0;
	return rc;
}

int
agent_stream_end(struct agent_request *rq)
{
	if (!rq->streaming)
		return -1;
	rq->streaming = 0;
	if (rq->http10)
		return 0;
	struct strbuf sb;
	sb_init(&sb);
	sb_puts(&sb, "0\r\n\r\n");
	int rc = send_buf(rq->fd, &sb, "a stream's end");
	sb_free(&sb);
	return rc;
}

int
agent_query_value(const char *query, const char *key, const char **ret)
{
	size_t kl = strlen(key);
	for (const char *q = query; q != NULL && *q; ) {
		size_t n = strcspn(q, "&");
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

/* The decimal value of key in the query, within [lo, hi]: 1 and *ret set,
 * 0 when absent, -1 when malformed or out of range. */
int
agent_query_long(const char *query, const char *key, long lo, long hi,
    long *ret)
{
	const char *v;
	int n = agent_query_value(query, key, &v);
	long x = 0;

	if (n < 0)
		return 0;
	if (n == 0 || n > 9)
		return -1;
	for (int i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	if (x < lo || x > hi)
		return -1;
	*ret = x;
	return 1;
}

int
agent_query_next(const char **pos, const char **ret_key, size_t *ret_klen,
    const char **ret_val, size_t *ret_vlen)
{
	const char *q = *pos;

	while (q != NULL && *q == '&')
		q++;
	if (q == NULL || *q == '\0') {
		*pos = q;
		return 0;
	}
	size_t n = strcspn(q, "&");
	const char *eq = memchr(q, '=', n);
	*ret_key = q;
	*ret_klen = eq != NULL ? (size_t)(eq - q) : n;
	*ret_val = eq != NULL ? eq + 1 : NULL;
	*ret_vlen = eq != NULL ? n - *ret_klen - 1 : 0;
	*pos = q + n;
	return 1;
}

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
agent_query_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%') {
			int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1;
			int lo = i + 2 < n ? hex_digit(s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return (int)o;
}

int
agent_route_served(const struct agent_route *rt, const struct agent_config *cfg)
{
	return !rt->test_only || cfg->test_routes;
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

static const char *
status_text(int status)
{
	switch (status) {
	case 413: return "request body too large";
	case 505: return "http version not supported";
	default: return "bad request";
	}
}

/* The route for the request, or an error reply sent and NULL.  A path
 * may have a row per method; HEAD is served by the GET row. */
static const struct agent_route *
route_of(int fd, const struct uhttp_request *u, const struct agent_config *cfg,
    int *head_only)
{
	const struct agent_route *rt = NULL;
	char allow[64] = "";
	int found = 0;

	*head_only = 0;
	for (size_t i = 0; i < agent_nroutes; i++) {
		const struct agent_route *r = &agent_routes[i];
		if (!agent_route_served(r, cfg) || strlen(r->path) != u->path_len ||
		    strncmp(u->path, r->path, u->path_len) != 0)
			continue;
		found = 1;
		int head = strcmp(u->method, "HEAD") == 0 &&
		    strcmp(r->method, "GET") == 0;
		if (strcmp(u->method, r->method) == 0 || head) {
			rt = r;
			*head_only = head;
		}
		size_t n = strlen(allow);
		snprintf(allow + n, sizeof(allow) - n, "%s%s%s", n ? ", " : "",
		    r->method, strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
	}
	if (!found) {
		send_error(fd, 404, "not found", NULL);
		return NULL;
	}
	if (rt == NULL) {
		char hdr[96];
		snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
		send_error(fd, 405, "method not allowed", hdr);
		return NULL;
	}
	return rt;
}

static void
fill_request(struct agent_request *rq, int fd, const struct uhttp_request *u,
    const struct agent_config *cfg, int head_only)
{
	rq->fd = fd;
	rq->method = u->method;
	rq->query = u->query;
	rq->head_only = head_only;
	rq->http10 = u->http10;
	rq->upgrade = u->upgrade;
	rq->connection_upgrade = u->connection_upgrade;
	rq->cfg = cfg;
}

/* Run a stream_body route: its body (pre holds its first npre bytes) is
 * read by the handler as it comes. */
static void
stream_request(int fd, const struct uhttp_request *u, const char *pre,
    size_t npre, const struct agent_config *cfg, int head_only,
    const struct agent_route *rt, struct agent_request *rq)
{
	/* The client waits for this before it sends the body (curl does,
	 * for a second, with large uploads). */
	if (u->expect_continue && (u->chunked || u->content_length > 0) &&
	    uhttp_write(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25,
	    agent_now_ms() + AGENT_IO_TIMEOUT_MS) != 0)
		return;
	rq->stream = agent_body_new(fd, pre, npre, u->chunked,
	    u->content_length);
	if (rq->stream == NULL) {
		send_error(fd, 500, "out of memory", NULL);
		return;
	}
	fill_request(rq, fd, u, cfg, head_only);
	rt->fn(rq);
	agent_body_free(rq->stream);
	rq->stream = NULL;
}

/* Answer the request whose head is buf[0..end) (NUL at end); have bytes
 * already read past it.  Reads the body (or leaves it to a stream_body
 * route), runs the route. */
static void
handle_http(int fd, char *buf, size_t end, size_t have,
    const struct agent_config *cfg, long long deadline,
    struct agent_request *rq)
{
	struct uhttp_request u;
	char saved = buf[end];
	int st, head_only = 0;

	buf[end] = '\0';
	if (memchr(buf, '\0', end) != NULL) {
		agent_log("NUL byte in request");
		send_error(fd, 400, "bad request", NULL);
		return;
	}
	if ((st = uhttp_parse_request(buf, AGENT_MAX_STREAM_BODY, &u)) != 0) {
		agent_log("rejected a request: %d %s", st, status_text(st));
		send_error(fd, st, status_text(st), NULL);
		return;
	}
	const struct agent_route *rt = route_of(fd, &u, cfg, &head_only);
	if (rt == NULL)
		return;
	if (u.te_other) {
		send_error(fd, 501, "only chunked is supported as a "
		    "Transfer-Encoding", NULL);
		return;
	}
	if (rt->stream_body) {
		buf[end] = saved;
		stream_request(fd, &u, buf + end, have - end, cfg, head_only,
		    rt, rq);
		return;
	}
	if (u.chunked) {
		send_error(fd, 501, "chunked request bodies are not supported "
		    "here", NULL);
		return;
	}
	if (u.content_length > AGENT_MAX_BODY) {
		send_error(fd, 413, status_text(413), NULL);
		return;
	}
	size_t blen = u.content_length > 0 ? (size_t)u.content_length : 0;
	char *body = calloc(1, blen + 1);
	if (body == NULL) {
		send_error(fd, 500, "out of memory", NULL);
		return;
	}
	buf[end] = saved;
	size_t got = have - end < blen ? have - end : blen;
	size_t inbuf = got;
	memcpy(body, buf + end, got);
	while (got < blen) {
		ssize_t n = uhttp_read(fd, body + got, blen - got, deadline);
		if (n <= 0) {
			if (n == -2)
				send_error(fd, 408, "request timeout", NULL);
			else
				agent_log("request body cut short");
			free(body);
			return;
		}
		got += (size_t)n;
	}
	fill_request(rq, fd, &u, cfg, head_only);
	rq->body = body;
	rq->body_len = blen;
	rq->extra = buf + end + inbuf;
	rq->extra_len = have - end - inbuf;
	rt->fn(rq);
	free(body);
	rq->body = NULL;
}

static void
send_pong(int fd)
{
	if (uhttp_write(fd, "PONG\n", 5, agent_now_ms() + AGENT_IO_TIMEOUT_MS) != 0)
		agent_log("writing PONG: %s", strerror(errno));
}

void
serve_connection(int fd, const struct agent_config *cfg)
{
	char buf[AGENT_MAX_HEAD + 1];
	size_t len = 0;
	long long deadline = agent_now_ms() + AGENT_IO_TIMEOUT_MS;
	struct agent_request rq = { 0 };

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
				send_pong(fd);
				finish(fd);
				return;
			}
			size_t end = pm == PING_NO ? uhttp_head_end(buf, len, 0) : 0;
			if (end > 0) {
				handle_http(fd, buf, end, len, cfg, deadline, &rq);
				finish(fd);
				if (rq.after != NULL)
					rq.after(cfg, rq.after_arg);
				return;
			}
		}
		if (len >= AGENT_MAX_HEAD) {
			agent_log("request head larger than %d bytes",
			    AGENT_MAX_HEAD);
			send_error(fd, 431, "request header too large", NULL);
			finish(fd);
			return;
		}
		ssize_t n = uhttp_read(fd, buf + len, AGENT_MAX_HEAD - len,
		    deadline);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0) {
			/* EOF: a bare "PING" without newline still gets PONG. */
			if (len == 4 && memcmp(buf, "PING", 4) == 0) {
				send_pong(fd);
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
