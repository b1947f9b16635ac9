/* body.c - a request body read as it arrives, for the routes that ask
 * for it (stream_body in routes.c): a Content-Length of up to
 * AGENT_MAX_STREAM_BODY bytes, or Transfer-Encoding: chunked (RFC 9112
 * 7.1: hex sizes, extensions ignored, trailers read and dropped).
 *
 * Memory is one buffer of BODY_BUF bytes whatever the body's size; reads
 * larger than what the buffer holds go straight into the caller's.  Each
 * read from the socket waits at most AGENT_BODY_IDLE_MS.  The first
 * error sticks: every later read returns -1 with the same reason. */
#include "agent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/uhttp_msg.h"

#define BODY_BUF (16 * 1024)   /* more than AGENT_MAX_HEAD: the head's leftovers */
#define BODY_LINE_MAX 4096     /* a chunk-size line, a trailer line */
#define BODY_MAX_DIGITS 15     /* a chunk size: below 2^60 */

enum body_state {
	BODY_DATA,      /* `left` bytes of data (of the body, or of a chunk) */
	BODY_SIZE,      /* a chunk-size line */
	BODY_CRLF,      /* the line end after a chunk's data */
	BODY_TRAILER,   /* trailer lines, up to the empty one */
	BODY_DONE,
	BODY_ERR,
};

struct agent_body {
	int fd;
	int chunked;
	enum body_state state;
	unsigned long long left;
	unsigned long long total;   /* data bytes so far */
	size_t trailer_bytes;
	const char *error;
	size_t off, len;            /* the unread bytes in buf */
	char buf[BODY_BUF];
};

struct agent_body *
agent_body_new(int fd, const char *pre, size_t npre, int chunked,
    long long content_length)
{
	struct agent_body *b = calloc(1, sizeof(*b));

	if (b == NULL || npre > sizeof(b->buf)) {
		free(b);
		return NULL;
	}
	b->fd = fd;
	b->chunked = chunked;
	b->state = chunked ? BODY_SIZE : content_length > 0 ? BODY_DATA :
	    BODY_DONE;
	b->left = chunked || content_length < 0 ? 0 :
	    (unsigned long long)content_length;
	memcpy(b->buf, pre, npre);
	b->len = npre;
	return b;
}

void
agent_body_free(struct agent_body *b)
{
	free(b);
}

static ssize_t
fail(struct agent_body *b, const char *why)
{
	if (b->state != BODY_ERR) {
		b->state = BODY_ERR;
		b->error = why;
	}
	errno = EPROTO;
	return -1;
}

/* Read from the socket into dst; >0, or -1 with the reason set. */
static ssize_t
sock_read(struct agent_body *b, void *dst, size_t cap)
{
	ssize_t n = uhttp_read(b->fd, dst, cap,
	    agent_now_ms() + AGENT_BODY_IDLE_MS);

	if (n > 0)
		return n;
	if (n == 0)
		return fail(b, "the request body was cut short");
	if (n == -2)
		return fail(b, "the request body stalled");
	return fail(b, "reading the request body failed");
}

/* A whole line at the front of buf (LF or CRLF): its length without the
 * line end, NUL-terminated in place, and *used the bytes it takes; -1
 * when none comes within BODY_LINE_MAX bytes. */
static ssize_t
take_line(struct agent_body *b, size_t *used)
{
	for (;;) {
		char *nl = memchr(b->buf + b->off, '\n', b->len - b->off);
		if (nl != NULL) {
			size_t n = (size_t)(nl - (b->buf + b->off));
			*used = n + 1;
			if (n > 0 && nl[-1] == '\r')
				n--;
			b->buf[b->off + n] = '\0';
			return (ssize_t)n;
		}
		if (b->len - b->off >= BODY_LINE_MAX)
			return fail(b, "a chunk line is too long");
		if (b->off > 0) {
			memmove(b->buf, b->buf + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		ssize_t r = sock_read(b, b->buf + b->len, sizeof(b->buf) - b->len);
		if (r < 0)
			return -1;
		b->len += (size_t)r;
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Move through the framing until there is data to read or the end. */
static int
advance(struct agent_body *b)
{
	size_t used;
	ssize_t n;

	while (b->state != BODY_DATA && b->state != BODY_DONE) {
		if (b->state == BODY_ERR)
			return -1;
		if ((n = take_line(b, &used)) < 0)
			return -1;
		const char *line = b->buf + b->off;
		b->off += used;
		if (b->state == BODY_CRLF) {
			if (n != 0)
				return (int)fail(b, "a chunk is longer than its size");
			b->state = BODY_SIZE;
		} else if (b->state == BODY_TRAILER) {
			if ((b->trailer_bytes += used) > AGENT_MAX_HEAD)
				return (int)fail(b, "the trailers are too long");
			if (n == 0)
				b->state = BODY_DONE;
		} else {
			unsigned long long v = 0;
			int d, digits = 0;
			while ((d = hexval(line[digits])) >= 0) {
				if (++digits > BODY_MAX_DIGITS)
					return (int)fail(b, "a chunk size is too large");
				v = v << 4 | (unsigned)d;
			}
			char c = line[digits];
			if (digits == 0 || (c != '\0' && c != ';' && c != ' ' &&
			    c != '\t'))
				return (int)fail(b, "a bad chunk size");
			if (v > AGENT_MAX_STREAM_BODY - b->total)
				return (int)fail(b, "the request body is too large");
			b->left = v;
			b->state = v == 0 ? BODY_TRAILER : BODY_DATA;
		}
	}
	return 0;
}

ssize_t
agent_body_read(struct agent_request *rq, void *dst, size_t cap)
{
	struct agent_body *b = rq->stream;
	size_t n;

	if (b == NULL)
		return 0;
	if (advance(b) < 0)
		return -1;
	if (b->state == BODY_DONE || cap == 0)
		return 0;
	n = cap < b->left ? cap : (size_t)b->left;
	if (b->off < b->len) {
		if (n > b->len - b->off)
			n = b->len - b->off;
		memcpy(dst, b->buf + b->off, n);
		b->off += n;
	} else {
		ssize_t r = sock_read(b, dst, n);
		if (r < 0)
			return -1;
		n = (size_t)r;
	}
	b->left -= n;
	b->total += n;
	if (b->left == 0)
		b->state = b->chunked ? BODY_CRLF : BODY_DONE;
	return (ssize_t)n;
}

int
agent_body_skip(struct agent_request *rq, unsigned long long max)
{
	char junk[4096];
	unsigned long long seen = 0;
	ssize_t n;

	while ((n = agent_body_read(rq, junk, sizeof(junk))) > 0)
		if ((seen += (unsigned long long)n) > max) {
			errno = EFBIG;
			return -1;
		}
	return n == 0 ? 0 : -1;
}

const char *
agent_body_error(const struct agent_request *rq)
{
	const struct agent_body *b = rq->stream;

	return b != NULL && b->error != NULL ? b->error : "no error";
}
