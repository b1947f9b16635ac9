/* vsock_stream.c - a request to the guest agent whose reply is read as it
 * comes: the request goes out as HTTP/1.0, so the agent sends its body
 * unframed and ends it by closing (agent/http.c), and the caller reads
 * the body in pieces while the command behind it runs. */
#include "vmm/vsock.h"
#include "vmm/vsock_quiet.h"

#include "common/json.h"
#include "common/uhttp_msg.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEAD_MAX 8192

/* Read until the end of the head ("\r\n\r\n"); what came after it stays
 * in s->pending. */
static int
read_head(struct vsock_stream *s, long long deadline, struct bn_err *err)
{
	char *buf = xmalloc(HEAD_MAX);
	size_t len = 0;
	char *end = NULL;

	while (end == NULL) {
		if (len == HEAD_MAX) {
			free(buf);
			return bn_fail(err, BN_EVMM, 0, "the agent's reply head is "
			    "longer than %d bytes", HEAD_MAX);
		}
		ssize_t n = vsock_stream_wait_read(s->fd, buf + len, HEAD_MAX - len,
		    deadline, -1);
		if (n <= 0) {
			free(buf);
			return bn_fail(err, n == -2 ? BN_ETIMEOUT : BN_EVMM, 0,
			    "the agent closed before its reply");
		}
		len += (size_t)n;
		end = memmem(buf, len, "\r\n\r\n", 4);
	}
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') {
		free(buf);
		return bn_fail(err, BN_EVMM, 0, "the agent's reply is not HTTP");
	}
	s->status = atoi(buf + 9);
	size_t body = (size_t)(end + 4 - buf);
	s->npending = len - body;
	s->pending = s->npending > 0 ? xmalloc(s->npending) : NULL;
	if (s->npending > 0)
		memcpy(s->pending, buf + body, s->npending);
	free(buf);
	return 0;
}

ssize_t
vsock_stream_wait_read(int fd, void *buf, size_t len, long long deadline,
    int watch_fd)
{
	for (;;) {
		long long now = time_mono_ms();
		int wait = deadline < 0 ? 1000 : deadline <= now ? 0 :
		    (int)(deadline - now > 1000 ? 1000 : deadline - now);
		struct pollfd pf[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = watch_fd, .events = POLLIN | POLLRDHUP },
		};
		int rc = poll(pf, watch_fd >= 0 ? 2 : 1, wait);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -1;
		if (watch_fd >= 0 && (pf[1].revents & (POLLRDHUP | POLLHUP |
		    POLLERR | POLLIN)))
			return -3;
		if (pf[0].revents != 0) {
			ssize_t n = read(fd, buf, len);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			return n < 0 ? -1 : n;
		}
		if (deadline >= 0 && time_mono_ms() >= deadline)
			return -2;
	}
}

#define BODY_CHUNKED (-1)
#define BODY_UPGRADE (-2)

/* Dial and send the request head: HTTP/1.0 with a Content-Length, or
 * HTTP/1.1 with a chunked body (BODY_CHUNKED) or asking to turn the
 * connection into a raw TCP stream (BODY_UPGRADE). */
static int
send_head(const char *uds_path, unsigned port, const char *method,
    const char *target, long long blen, long long deadline,
    struct vsock_stream *ret, struct bn_err *err)
{
	char *head;
	int fd;

	memset(ret, 0, sizeof(*ret));
	ret->fd = -1;
	if (blen == BODY_UPGRADE)
		head = xasprintf("%s %s HTTP/1.1\r\nHost: banger-agent\r\n"
		    "User-Agent: bangerd\r\nConnection: Upgrade\r\n"
		    "Upgrade: tcp\r\nContent-Length: 0\r\n\r\n", method, target);
	else if (blen == BODY_CHUNKED)
		head = xasprintf("%s %s HTTP/1.1\r\nHost: banger-agent\r\n"
		    "User-Agent: bangerd\r\nConnection: close\r\n"
		    "Content-Type: application/octet-stream\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", method, target);
	else
		head = xasprintf("%s %s HTTP/1.0\r\nHost: banger-agent\r\n"
		    "User-Agent: bangerd\r\nContent-Type: "
		    "application/octet-stream\r\nContent-Length: %lld\r\n\r\n",
		    method, target, blen);
	if (vsock_dial(uds_path, port, deadline, &fd, err) < 0) {
		free(head);
		return -1;
	}
	ret->fd = fd;
	int wrc = uhttp_write(fd, head, strlen(head), deadline);
	free(head);
	if (wrc < 0) {
		vsock_stream_close(ret);
		return bn_fail(err, BN_EVMM, 0, "vsock %s port %u: the agent "
		    "closed before the %s request", uds_path, port, method);
	}
	return 0;
}

int
vsock_agent_open(const char *uds_path, unsigned port, const char *method,
    const char *target, const void *body, size_t blen, int timeout_ms,
    struct vsock_stream *ret, struct bn_err *err)
{
	long long deadline = time_mono_ms() + timeout_ms;

	if (send_head(uds_path, port, method, target, (long long)blen, deadline,
	    ret, err) < 0)
		return -1;
	if (blen > 0 && uhttp_write(ret->fd, body, blen, deadline) < 0) {
		vsock_stream_close(ret);
		return bn_fail(err, BN_EVMM, 0, "vsock %s port %u: the agent "
		    "closed before the %s request", uds_path, port, method);
	}
	if (read_head(ret, deadline, err) < 0) {
		vsock_stream_close(ret);
		return -1;
	}
	return 0;
}

int
vsock_agent_begin(const char *uds_path, unsigned port, const char *method,
    const char *target, int timeout_ms, struct vsock_stream *ret,
    struct bn_err *err)
{
	return send_head(uds_path, port, method, target, BODY_CHUNKED,
	    time_mono_ms() + timeout_ms, ret, err);
}

int
vsock_agent_upgrade(const char *uds_path, unsigned port, const char *target,
    int timeout_ms, struct vsock_stream *ret, struct bn_err *err)
{
	long long deadline = time_mono_ms() + timeout_ms;

	if (send_head(uds_path, port, "POST", target, BODY_UPGRADE, deadline,
	    ret, err) < 0)
		return -1;
	if (read_head(ret, deadline, err) < 0) {
		vsock_stream_close(ret);
		return -1;
	}
	return 0;
}

int
vsock_stream_send(struct vsock_stream *s, const void *data, size_t len,
    int timeout_ms)
{
	char size[24];
	long long deadline = time_mono_ms() + timeout_ms;
	int n = snprintf(size, sizeof(size), "%zx\r\n", len);

	if (uhttp_write(s->fd, size, (size_t)n, deadline) < 0 ||
	    (len > 0 && uhttp_write(s->fd, data, len, deadline) < 0) ||
	    uhttp_write(s->fd, "\r\n", 2, deadline) < 0)
		return -1;
	return 0;
}

int
vsock_stream_finish(struct vsock_stream *s, int timeout_ms, struct bn_err *err)
{
	long long deadline = time_mono_ms() + timeout_ms;

	/* The last chunk may not go out (the agent refused and closed): its
	 * reply may be waiting all the same. */
	uhttp_write(s->fd, "0\r\n\r\n", 5, deadline);
	return read_head(s, deadline, err);
}

ssize_t
vsock_stream_read(struct vsock_stream *s, void *buf, size_t len,
    long long deadline, int watch_fd)
{
	if (s->off < s->npending) {
		size_t n = s->npending - s->off < len ? s->npending - s->off : len;
		memcpy(buf, s->pending + s->off, n);
		s->off += n;
		return (ssize_t)n;
	}
	return vsock_stream_wait_read(s->fd, buf, len, deadline, watch_fd);
}

void
vsock_stream_close(struct vsock_stream *s)
{
	vsock_conn_close(s->fd);
	s->fd = -1;
	free(s->pending);
	s->pending = NULL;
	s->npending = s->off = 0;
}

void
vsock_stream_why(struct vsock_stream *s, char *buf, size_t len)
{
	char msg[512];
	ssize_t n = vsock_stream_read(s, msg, sizeof(msg) - 1,
	    time_mono_ms() + 1000, -1);
	json_t *j;
	const char *why;

	msg[n > 0 ? n : 0] = '\0';
	j = json_loads(msg, 0, NULL);
	why = json_string_value(json_object_get(j, "error"));
	snprintf(buf, len, "%s", why != NULL ? why : msg);
	json_decref(j);
}
