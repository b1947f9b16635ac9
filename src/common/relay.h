/* relay.h - two connected sockets joined into one byte pipe, both ways.
 *
 * Used wherever a forwarded TCP connection crosses banger: bangerd joins
 * a host connection to the guest agent's vsock stream, and the CLI's
 * port-forward joins a local connection to bangerd's upgraded API
 * connection.  libc only. */
#ifndef BANGER_COMMON_RELAY_H
#define BANGER_COMMON_RELAY_H

#include <stddef.h>

struct relay_end {
	int fd;
	/* Bytes already read from this end (with an HTTP head) that go to
	 * the other end first; the relay does not free them. */
	const void *pending;
	size_t npending;
	unsigned long long sent;   /* out: bytes that left this end for the other */
};

/* Copy between a and b until both directions have ended: when one end
 * reaches EOF, the other's write side is shut down (half-close) and the
 * other direction goes on.  An error (a peer gone) ends the direction it
 * broke, dropping what that direction still held, and the other one goes
 * on with what the peer sent before it left.  An end that hangs up for
 * good (closed by its peer, or shut down both ways) ends the direction
 * into it at once, even while the other end sends nothing.  No idle
 * timeout: a forwarded connection may stay quiet for hours.  The fds stay
 * open (the caller closes them).  0 when both directions ended with EOF,
 * -1 when one ended on an error or poll failed. */
int relay_run(struct relay_end *a, struct relay_end *b);

#endif
