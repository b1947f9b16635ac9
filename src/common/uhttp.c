/* uhttp.c - HTTP/1.x over Unix sockets with deadlines (see uhttp.h). */
#include "common/uhttp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"

int
uhttp_sockaddr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(sa->sun_path))
		return -1;
	memcpy(sa->sun_path, path, n);
	return 0;
}

int
uhttp_connect(int fd, const struct sockaddr_un *sa, long long deadline)
{
	for (;;) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		break;
	}
	if (errno != EINPROGRESS)
		return -1;
	int w = uhttp_wait_fd(fd, POLLOUT, deadline);
	if (w <= 0) {
		if (w == 0)
			errno = ETIMEDOUT;
		return -1;
	}
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -1;
	if (soerr != 0) {
		errno = soerr;
		return -1;
	}
	return 0;
}

/* Make room for at least one more byte plus a NUL; -1 at the size cap. */
static int
reply_reserve(struct uhttp_reply *r)
{
	if (r->len + 1 < r->cap)
		return 0;
	if (r->cap >= r->max + 1)
		return -1;
	size_t ncap = r->cap ? r->cap * 2 : 16384;
	if (ncap > r->max + 1)
		ncap = r->max + 1;
	char *nb = realloc(r->buf, ncap);
	if (nb == NULL)
		return -1;
	r->buf = nb;
	r->cap = ncap;
	return 0;
}

/* Read an HTTP reply: until EOF, or until the head and Content-Length bytes
 * of body are in, or until the first bytes show it is not HTTP. */
enum uhttp_outcome
uhttp_read_reply(int fd, long long deadline, struct uhttp_reply *r)
{
	static const char magic[] = "HTTP/";
	const size_t ml = sizeof(magic) - 1;
	for (;;) {
		size_t cmp = r->len < ml ? r->len : ml;
		if (memcmp(r->buf ? r->buf : "", magic, cmp) != 0)
			return UHTTP_NOT_HTTP;
		if (r->len >= ml && r->body == 0) {
			/* Resume a little early: the blank line may straddle
			 * two reads. */
			size_t from = r->scanned > 2 ? r->scanned - 2 : 0;
			r->body = uhttp_head_end(r->buf, r->len, from);
			r->scanned = r->len;
			if (r->body > 0)
				r->clen = uhttp_content_length(r->buf, r->body, r->max);
		}
		if (r->body > 0 && r->clen >= 0 &&
		    r->len - r->body >= (size_t)r->clen)
			return UHTTP_DONE;
		if (reply_reserve(r) < 0)
			return UHTTP_TOO_BIG;
		size_t room = r->cap - r->len - 1;
		ssize_t n = uhttp_read(fd, r->buf + r->len, room, deadline);
		if (n == -2)
			return UHTTP_TIMEOUT;
		if (n <= 0)   /* EOF or reset */
			return r->len >= ml ? UHTTP_DONE : UHTTP_NOT_HTTP;
		r->len += (size_t)n;
		r->buf[r->len] = '\0';
	}
}

int
uhttp_status(const struct uhttp_reply *r)
{
	int major, minor, status;

	if (r->buf == NULL || sscanf(r->buf, "HTTP/%d.%d %d", &major, &minor,
	    &status) != 3 || status < 100 || status > 999)
		return -1;
	return status;
}

int
uhttp_request(const char *path, const char *method, const char *target,
    const char *json_body, long long deadline, struct uhttp_reply *ret,
    struct bn_err *err)
{
	struct sockaddr_un sa;
	char head[512];
	size_t blen = json_body ? strlen(json_body) : 0;
	int fd, n, rc;

	memset(ret, 0, sizeof(*ret));
	ret->max = 64 * 1024;
	if (uhttp_sockaddr(&sa, path) < 0)
		return bn_fail(err, BN_EINVAL, 0, "socket path does not fit: %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return bn_fail(err, BN_ESYS, errno, "socket");
	if (uhttp_connect(fd, &sa, deadline) < 0) {
		rc = bn_fail(err, errno == ETIMEDOUT ? BN_ETIMEOUT : BN_ESYS, errno,
		    "connect %s", path);
		goto out;
	}
	n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: localhost\r\n"
	    "Accept: application/json\r\nConnection: close\r\n", method, target);
	if (json_body != NULL)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Type: "
		    "application/json\r\nContent-Length: %zu\r\n", blen);
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	if ((size_t)n >= sizeof(head)) {
		rc = bn_fail(err, BN_EINVAL, 0, "request target too long");
		goto out;
	}
	rc = uhttp_write(fd, head, (size_t)n, deadline);
	if (rc == 0 && blen > 0)
		rc = uhttp_write(fd, json_body, blen, deadline);
	if (rc < 0) {
		rc = rc == -2 ? bn_fail(err, BN_ETIMEOUT, 0, "%s %s: timed out "
		    "sending", method, target) : bn_fail(err, BN_ESYS, errno,
		    "%s %s: send", method, target);
		goto out;
	}
	switch (uhttp_read_reply(fd, deadline, ret)) {
	case UHTTP_DONE:
		rc = uhttp_status(ret) < 0 ? bn_fail(err, BN_EVMM, 0, "%s %s: bad "
		    "status line", method, target) : 0;
		break;
	case UHTTP_TIMEOUT:
		rc = bn_fail(err, BN_ETIMEOUT, 0, "%s %s: no reply in time", method,
		    target);
		break;
	case UHTTP_NOT_HTTP:
		rc = bn_fail(err, BN_EVMM, 0, "%s %s: the peer closed or did not "
		    "answer HTTP", method, target);
		break;
	case UHTTP_TOO_BIG:
		rc = bn_fail(err, BN_EVMM, 0, "%s %s: reply too large", method,
		    target);
		break;
	}
out:
	close(fd);
	if (rc < 0) {
		free(ret->buf);
		memset(ret, 0, sizeof(*ret));
	}
	return rc;
}
