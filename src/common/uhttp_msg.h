/* uhttp_msg.h - HTTP/1.1 messages over stream sockets, for bangerd's
 * clients (uhttp.h) and the guest agent's server alike: deadline I/O, the
 * end of a head, Content-Length, and a request head parser.
 *
 * libc only, so that the static agent links it as it is.  Deadlines are
 * absolute CLOCK_MONOTONIC milliseconds (uhttp_now_ms()). */
#ifndef BANGER_UHTTP_MSG_H
#define BANGER_UHTTP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

long long uhttp_now_ms(void);
/* 1 ready, 0 deadline passed, -1 error (errno).  A passed deadline still
 * gets one non-waiting poll. */
int uhttp_wait_fd(int fd, short events, long long deadline);
/* >0 bytes read, 0 EOF, -1 error (errno), -2 deadline passed. */
ssize_t uhttp_read(int fd, void *buf, size_t cap, long long deadline);
/* 0 written, -1 error (errno), -2 deadline passed. */
int uhttp_write(int fd, const void *buf, size_t len, long long deadline);
/* Offset just past the blank line that ends a head (LF or CRLF lines),
 * searching from `from`; 0 while the head is not complete. */
size_t uhttp_head_end(const char *buf, size_t len, size_t from);
/* Content-Length from a complete head; -1 when absent, -2 when invalid
 * (not a number, above max, or two different values). */
long long uhttp_content_length(const char *head, size_t head_len, size_t max);

/* A request head, parsed in place (the pointers are into the buffer). */
struct uhttp_request {
	const char *method;
	const char *path;          /* origin-form, or the path of absolute-form */
	size_t path_len;           /* without the query */
	const char *query;         /* after '?', NUL-terminated, or NULL */
	long long content_length;  /* -1 when absent */
	bool chunked;              /* Transfer-Encoding: chunked */
	bool te_other;             /* another Transfer-Encoding (unsupported) */
	bool expect_continue;      /* Expect: 100-continue */
	bool http10;               /* HTTP/1.0: no chunked replies to it */
	bool connection_upgrade;   /* Connection lists the token "upgrade" */
	const char *upgrade;       /* the Upgrade header's value, or NULL */
};
/* Parse the NUL-terminated head (request line and header lines, up to and
 * with the blank line) in place.  0, or the HTTP status that rejects it:
 * 400 (malformed, a bad Content-Length, or one with a Transfer-Encoding,
 * two Upgrade lines), 413 (a body above max_body), 505 (not HTTP/1.x). */
int uhttp_parse_request(char *head, size_t max_body, struct uhttp_request *ret);
/* Whether a header value that is a comma-separated list (RFC 9110 5.6.1:
 * "keep-alive, Upgrade") holds token, ignoring case and the whitespace
 * around the items. */
bool uhttp_list_has(const char *list, const char *token);

#endif
