/* uhttp.h - small HTTP/1.x exchanges over Unix sockets with deadlines.
 *
 * bangerd talks HTTP to two local peers: Firecracker's API socket and the
 * guest agent behind hybrid vsock (after CONNECT/OK).  Both are a single
 * request and a Content-Length reply on a Unix socket, so this is all the
 * client they need; keeping it here keeps libcurl (and the OpenSSL it pulls
 * in, megabytes of resident memory) out of the daemon.  Every call waits
 * with poll() against an absolute CLOCK_MONOTONIC deadline in ms
 * (time_mono_ms()), so nothing can hang past its budget.
 */
#ifndef BANGER_UHTTP_H
#define BANGER_UHTTP_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

#include "common/err.h"
#include "common/uhttp_msg.h"

struct uhttp_reply {
	char *buf;
	size_t len;
	size_t cap;
	size_t scanned;  /* head searched up to here */
	size_t body;     /* offset of the body once the head is complete */
	long long clen;  /* its Content-Length (-1 none, -2 invalid) */
	size_t max;      /* largest reply accepted (set before reading) */
};

enum uhttp_outcome {
	UHTTP_DONE,      /* complete HTTP reply, or EOF after "HTTP/" */
	UHTTP_NOT_HTTP,  /* EOF with nothing, or bytes that are not "HTTP/" */
	UHTTP_TIMEOUT,
	UHTTP_TOO_BIG,
};

/* Fill a sockaddr_un; -1 when the path is empty or does not fit. */
int uhttp_sockaddr(struct sockaddr_un *sa, const char *path);
/* connect() a non-blocking socket by the deadline; -1 with errno. */
int uhttp_connect(int fd, const struct sockaddr_un *sa, long long deadline);
/* Read an HTTP reply: until EOF, or until the head and Content-Length bytes
 * of body are in, or until the first bytes show it is not HTTP.  r must be
 * zeroed with max set; free r->buf afterwards. */
enum uhttp_outcome uhttp_read_reply(int fd, long long deadline,
    struct uhttp_reply *r);
/* The status code of a reply head, or -1. */
int uhttp_status(const struct uhttp_reply *r);

/* One request on a fresh connection to the Unix socket at path: method,
 * target and an optional JSON body; the reply (at most 64 KiB) lands in
 * *ret (free ret->buf).  Fails with BN_ETIMEOUT at the deadline, BN_ESYS
 * (sys_errno set) when the socket cannot be reached, BN_EVMM when the
 * peer's answer is not HTTP. */
int uhttp_request(const char *path, const char *method, const char *target,
    const char *json_body, long long deadline, struct uhttp_reply *ret,
    struct bn_err *err);

#endif
