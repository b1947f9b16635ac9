/* uhttp_msg.c - HTTP/1.1 message pieces shared by bangerd's clients and
 * the guest agent's server (uhttp_msg.h).  libc only. */
#include "common/uhttp_msg.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

long long
uhttp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd.  1 ready, 0 deadline passed, -1 error (errno).
 * A passed deadline still gets one non-waiting poll. */
int
uhttp_wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - uhttp_now_ms();
		if (left < 0)
			left = 0;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r > 0)
			return 1;
		if (left == 0)
			return 0;
	}
}

/* >0 bytes read, 0 EOF, -1 error (errno; ECONNRESET counts as EOF for
 * callers that care), -2 deadline passed. */
ssize_t
uhttp_read(int fd, void *buf, size_t cap, long long deadline)
{
	for (;;) {
		int w = uhttp_wait_fd(fd, POLLIN, deadline);
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

/* 0 written, -1 error (errno), -2 deadline passed. */
int
uhttp_write(int fd, const void *buf, size_t len, long long deadline)
{
	const char *p = buf;
	while (len > 0) {
		int w = uhttp_wait_fd(fd, POLLOUT, deadline);
		if (w == 0)
			return -2;
		if (w < 0)
			return -1;
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

size_t
uhttp_head_end(const char *buf, size_t len, size_t from)
{
	for (size_t i = from; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Content-Length from a complete head; -1 when absent, -2 when invalid. */
long long
uhttp_content_length(const char *head, size_t head_len, size_t max)
{
	const char *p = head;
	const char *end = head + head_len;
	long long found = -1;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		static const char key[] = "content-length:";
		size_t kl = sizeof(key) - 1;
		if ((size_t)(nl - p) > kl && strncasecmp(p, key, kl) == 0) {
			const char *v = p + kl;
			while (v < nl && (*v == ' ' || *v == '\t'))
				v++;
			long long val = 0;
			int digits = 0;
			while (v < nl && *v >= '0' && *v <= '9') {
				if (val > (long long)max)
					return -2;
				val = val * 10 + (*v - '0');
				v++;
				digits++;
			}
			while (v < nl && (*v == ' ' || *v == '\t' || *v == '\r'))
				v++;
			if (!digits || v != nl)
				return -2;
			if (found >= 0 && found != val)
				return -2;
			found = val;
		}
		p = nl + 1;
	}
	return found;
}

/* RFC 9110 token characters. */
static bool
is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Cut the line at s (LF or CRLF); the next line, or NULL at the end. */
static char *
line_cut(char *s)
{
	char *nl = strchr(s, '\n');

	if (nl == NULL)
		return NULL;
	*nl = '\0';
	if (nl > s && nl[-1] == '\r')
		nl[-1] = '\0';
	return nl + 1;
}

/* Whether a header's value (after the colon) is word, ignoring case and
 * the whitespace around it. */
static bool
value_is(const char *v, const char *word)
{
	size_t n = strlen(word);

	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, word, n) != 0)
		return false;
	for (v += n; *v == ' ' || *v == '\t'; v++)
		;
	return *v == '\0';
}

bool
uhttp_list_has(const char *list, const char *token)
{
	size_t n = strlen(token);

	for (const char *p = list; *p; ) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t len = strcspn(p, ",");
		const char *next = p + len;
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(p, token, n) == 0)
			return true;
		p = next;
	}
	return false;
}

static int
parse_request_line(char *line, struct uhttp_request *r)
{
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;

	if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 ||
	    strchr(sp2 + 1, ' ') != NULL)
		return 400;
	*sp1 = '\0';
	*sp2 = '\0';
	char *target = sp1 + 1, *version = sp2 + 1;
	for (char *p = line; *p; p++)
		if (!is_tchar((unsigned char)*p))
			return 400;
	for (char *p = target; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 400;
	if (strncmp(version, "HTTP/", 5) != 0 || version[5] < '0' ||
	    version[5] > '9' || version[6] != '.' || version[7] < '0' ||
	    version[7] > '9' || version[8] != '\0')
		return 400;
	if (version[5] != '1')
		return 505;
	/* Origin-form, or absolute-form (http://host/path). */
	char *path = target;
	if (strncmp(path, "http://", 7) == 0) {
		path = strchr(path + 7, '/');
		if (path == NULL)
			path = (char *)"/";
	}
	if (*path != '/' && strcmp(path, "*") != 0)
		return 400;
	r->http10 = version[7] == '0';
	r->method = line;
	r->path = path;
	r->path_len = strcspn(path, "?#");
	if (path[r->path_len] == '?') {
		char *q = (char *)path + r->path_len + 1;
		q[strcspn(q, "#")] = '\0';
		r->query = q;
	}
	return 0;
}

int
uhttp_parse_request(char *head, size_t max_body, struct uhttp_request *r)
{
	char *rest = line_cut(head);
	const char *hstart;
	int st;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	if (rest == NULL)
		return 400;
	hstart = rest;
	if ((st = parse_request_line(head, r)) != 0)
		return st;
	/* Content-Length over the header lines before they are cut up. */
	r->content_length = uhttp_content_length(hstart, strlen(hstart),
	    (size_t)1 << 60);
	if (r->content_length == -2)
		return 400;
	if (r->content_length > (long long)max_body)
		return 413;
	while (rest != NULL && *rest) {
		char *hl = rest;
		rest = line_cut(hl);
		if (*hl == '\0')
			break;           /* the blank line */
		char *colon = strchr(hl, ':');
		if (colon == NULL || colon == hl)
			return 400;
		for (char *p = hl; p < colon; p++)
			if (!is_tchar((unsigned char)*p))
				return 400;
		if ((size_t)(colon - hl) == 17 &&
		    strncasecmp(hl, "transfer-encoding", 17) == 0) {
			if (value_is(colon + 1, "chunked"))
				r->chunked = true;
			else
				r->te_other = true;
		}
		if ((size_t)(colon - hl) == 6 &&
		    strncasecmp(hl, "expect", 6) == 0 &&
		    value_is(colon + 1, "100-continue"))
			r->expect_continue = true;
		/* Several Connection lines make one list (RFC 9110 5.3). */
		if ((size_t)(colon - hl) == 10 &&
		    strncasecmp(hl, "connection", 10) == 0 &&
		    uhttp_list_has(colon + 1, "upgrade"))
			r->connection_upgrade = true;
		/* So would several Upgrade lines, but one is kept: the rare
		 * client that splits it is refused rather than half read. */
		if ((size_t)(colon - hl) == 7 &&
		    strncasecmp(hl, "upgrade", 7) == 0) {
			if (r->upgrade != NULL)
				return 400;
			r->upgrade = colon + 1 + strspn(colon + 1, " \t");
		}
	}
	/* RFC 9112 6.1: a message with both may be an attempt at request
	 * smuggling; the server may reject it. */
	if ((r->chunked || r->te_other) && r->content_length >= 0)
		return 400;
	return 0;
}
