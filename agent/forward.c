/* forward.c - the "forward" capability: a connection to the agent turned
 * into a byte pipe to a TCP port on the guest's own loopback, so that a
 * dev server, a database or a debugger in the guest can be reached from
 * the host.
 *
 *   POST /forward?port=N HTTP/1.1
 *   Connection: Upgrade
 *   Upgrade: tcp
 *
 * N is 1..65535, in decimal digits.  The agent connects to 127.0.0.1:N,
 * then to [::1]:N when nothing listens there (ECONNREFUSED) or the guest
 * has no IPv4 loopback (EADDRNOTAVAIL), both within FWD_CONNECT_MS, and
 * answers
 *
 *   HTTP/1.1 101 Switching Protocols
 *   Connection: Upgrade
 *   Upgrade: tcp
 *
 * From the blank line on, the connection carries the TCP connection's
 * bytes both ways; what the client sent right after its request head
 * goes first.  A side that ends its output (EOF) has the other side's
 * write half shut (shutdown SHUT_WR), and the other direction goes on,
 * so a client can send a request, shut its side and still read the whole
 * reply.  When both directions have ended, both are closed; so they are
 * when the client hangs up entirely after its EOF (nobody is left to read
 * the rest).  An error on either side (a reset, a client that left while
 * bytes were on their way to it) closes both at once, the TCP side with
 * a reset of its own.  There is no idle timeout: a dev server's websocket
 * may be quiet for hours.  (Only the request head has AGENT_IO_TIMEOUT_MS.)
 *
 * Before a 101, an error reply, {"error": ...} and Connection: close:
 * 400 (no "Connection: Upgrade" and "Upgrade: tcp", an HTTP/1.0 request,
 * whose Upgrade must be ignored, a missing or bad port, any other query
 * key, host= too: only the guest's loopback is reached; a body), 403
 * (not in a guest and no --allow-forward: the port would be the host's),
 * 502 ("guest port N: " and the connect's error), 503 (FWD_MAX forwards
 * open already: the rest of AGENT_MAX_CONNS stays for /healthz, which
 * bangerd keeps asking, and the other routes).
 *
 * The relay runs in the connection's own thread: one poll() over the two
 * sockets, one FWD_BUF buffer per direction, on the heap (the thread's
 * stack is small).  A direction reads only once its buffer is written
 * out, so a slow reader slows its writer down, and memory stays at two
 * buffers whatever goes through.  One log line per forward when it ends:
 * the port, the bytes each way, how it ended.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/uhttp_msg.h"

#define FWD_BUF (64 * 1024)             /* one direction's buffer */
#define FWD_CONNECT_MS 5000             /* both connects together */
#define FWD_MAX (AGENT_MAX_CONNS - 16)  /* open at once */
#define FWD_BAD (POLLERR | POLLHUP | POLLNVAL)

static const char switching[] = "HTTP/1.1 101 Switching Protocols\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: tcp\r\n"
    "\r\n";

static atomic_int open_forwards;

/* The port in the query, or 0 with msg set. */
static unsigned
parse_query(const char *query, char *msg, size_t msgsz)
{
	const char *pos = query, *key, *val;
	size_t klen, vlen;
	unsigned port = 0;
	int seen = 0;

	while (agent_query_next(&pos, &key, &klen, &val, &vlen)) {
		if (klen == 4 && strncmp(key, "host", 4) == 0) {
			snprintf(msg, msgsz, "host is not supported: a forward "
			    "reaches the guest's own loopback only");
			return 0;
		}
		if (klen != 4 || strncmp(key, "port", 4) != 0) {
			snprintf(msg, msgsz, "unknown query key '%.*s' (port)",
			    (int)(klen > 32 ? 32 : klen), key);
			return 0;
		}
		if (seen++) {
			snprintf(msg, msgsz, "'port' given twice");
			return 0;
		}
		if (val == NULL || vlen == 0 || vlen > 5)
			goto bad;
		for (size_t i = 0; i < vlen; i++) {
			if (val[i] < '0' || val[i] > '9')
				goto bad;
			port = port * 10 + (unsigned)(val[i] - '0');
		}
		if (port < 1 || port > 65535)
			goto bad;
	}
	if (!seen) {
		snprintf(msg, msgsz, "no port: give it as port=N");
		return 0;
	}
	return port;
bad:
	snprintf(msg, msgsz, "port must be 1..65535 (decimal digits)");
	return 0;
}

/* What keeps the request from being an upgrade to tcp, or NULL. */
static const char *
not_an_upgrade(const struct agent_request *rq)
{
	/* RFC 9110 7.8: an Upgrade in an HTTP/1.0 request is ignored. */
	if (rq->http10)
		return "POST /forward needs HTTP/1.1 (an upgrade)";
	if (!rq->connection_upgrade || rq->upgrade == NULL ||
	    !uhttp_list_has(rq->upgrade, "tcp"))
		return "POST /forward needs the headers Connection: Upgrade "
		    "and Upgrade: tcp";
	if (rq->body_len > 0)
		return "POST /forward has no body: send the bytes after "
		    "the 101";
	return NULL;
}

/* A TCP connection to the loopback of family af, made by deadline; -1
 * and errno (ETIMEDOUT at the deadline) when it cannot be. */
static int
connect_loopback(int af, unsigned port, long long deadline)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr *sa;
	socklen_t salen;
	int fd, err = 0, one = 1;
	socklen_t errlen = sizeof(err);

	if (af == AF_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa = (struct sockaddr *)&sin, salen = sizeof(sin);
	} else {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		sin6.sin6_addr = in6addr_loopback;
		sa = (struct sockaddr *)&sin6, salen = sizeof(sin6);
	}
	fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Non-blocking, so that the wait has a deadline; an EINTR leaves
	 * the connect going on as well. */
	if (connect(fd, sa, salen) < 0) {
		int w;
		if (errno != EINPROGRESS && errno != EINTR)
			err = errno;
		else if ((w = uhttp_wait_fd(fd, POLLOUT, deadline)) <= 0)
			err = w == 0 ? ETIMEDOUT : errno;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
		    &errlen) < 0)
			err = errno;
	}
	if (err != 0) {
		close(fd);
		errno = err;
		return -1;
	}
	/* The relay passes bytes on as they come: how they are grouped is
	 * the ends' business, and Nagle's delay would only add to it. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* 127.0.0.1:port, else [::1]:port; -1 and errno (the first one's, unless
 * the second tells more than that there is no IPv6). */
static int
connect_port(unsigned port)
{
	long long deadline = agent_now_ms() + FWD_CONNECT_MS;
	int fd = connect_loopback(AF_INET, port, deadline);

	if (fd >= 0 || (errno != ECONNREFUSED && errno != EADDRNOTAVAIL))
		return fd;
	int err4 = errno;
	if ((fd = connect_loopback(AF_INET6, port, deadline)) >= 0)
		return fd;
	if (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL ||
	    errno == ENETUNREACH || errno == ECONNREFUSED)
		errno = err4;
	return -1;
}

/* One direction of the relay: from one socket into buf, out to the
 * other.  fds[from] and fds[to] are the sockets. */
struct fwd_dir {
	int from, to;
	char *buf;
	size_t off, len;            /* what is read and not yet written */
	int eof;                    /* from has ended */
	int done;                   /* and all of it went out; to is shut */
	unsigned long long bytes;   /* written to `to` */
};

/* How the relay ended: err 0 when both directions did, else the error
 * and the side (an fds index) it came from; gone when the client hung up
 * entirely after its EOF. */
struct fwd_end {
	int err;
	int side;
	int gone;
};

/* The error pending on fd, for a hang-up that came without one. */
static int
pending_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
		err = EPIPE;
	return err;
}

/* Write what d holds, as much as fd takes now.  0, or -1 and errno. */
static int
dir_write(struct fwd_dir *d, const int *fds, short revents)
{
	while (d->len > 0) {
		ssize_t n = send(fds[d->to], d->buf + d->off, d->len,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0) {
			d->off += (size_t)n;
			d->len -= (size_t)n;
			d->bytes += (unsigned long long)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		/* Not writable after all.  With a hang-up reported and no
		 * POLLOUT, poll would say the same at once, for ever. */
		if ((revents & FWD_BAD) && !(revents & POLLOUT)) {
			errno = pending_error(fds[d->to]);
			return -1;
		}
		return 0;
	}
	d->off = 0;
	return 0;
}

/* Fill d's empty buffer from its socket (EOF sets eof), then send what
 * came at once.  0, or -1 and errno; *side says which socket failed. */
static int
dir_read(struct fwd_dir *d, const int *fds, short revents, int *side)
{
	ssize_t n;

	*side = d->from;
	do
		n = recv(fds[d->from], d->buf, FWD_BUF, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		d->eof = 1;
		return 0;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if ((revents & FWD_BAD) && !(revents & POLLIN)) {
			errno = pending_error(fds[d->from]);
			return -1;
		}
		return 0;
	}
	d->off = 0;
	d->len = (size_t)n;
	*side = d->to;
	return dir_write(d, fds, POLLOUT);
}

/* Relay between fds[0] (the client) and fds[1] (the guest port) until
 * both directions have ended or one side fails. */
static struct fwd_end
relay(const int *fds, struct fwd_dir *d)
{
	struct fwd_end end = { 0, 0, 0 };

	for (;;) {
		struct pollfd p[2] = { { .fd = fds[0] }, { .fd = fds[1] } };
		for (int i = 0; i < 2; i++) {
			if (d[i].eof && d[i].len == 0 && !d[i].done) {
				/* ENOTCONN when it is gone already: its own
				 * poll says so. */
				shutdown(fds[d[i].to], SHUT_WR);
				d[i].done = 1;
			}
			if (d[i].done)
				continue;
			if (d[i].len > 0)
				p[d[i].to].events |= POLLOUT;
			else if (!d[i].eof)
				p[d[i].from].events |= POLLIN;
		}
		if (d[0].done && d[1].done)
			return end;
		/* A socket nobody waits on is left out, as poll would report
		 * its hang-up at once, again and again.  But the client once
		 * its EOF is read: its hang-up then means it is gone entirely
		 * (not only half-closed), and nobody is left to read the
		 * guest port's reply. */
		if (p[0].events == 0 && !d[0].done)
			p[0].fd = -1;
		if (p[1].events == 0)
			p[1].fd = -1;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			end.err = errno;
			return end;
		}
		if (p[0].events == 0 && (p[0].revents & FWD_BAD)) {
			end.err = pending_error(fds[0]);
			end.gone = 1;
			return end;
		}
		for (int i = 0; i < 2; i++) {
			short rf = p[d[i].from].revents;
			short rt = p[d[i].to].revents;
			int rc = 0, side = d[i].to;
			if (d[i].done)
				continue;
			if (d[i].len == 0 && !d[i].eof && rf)
				rc = dir_read(&d[i], fds, rf, &side);
			else if (d[i].len > 0 && rt)
				rc = dir_write(&d[i], fds, rt);
			if (rc < 0) {
				end.err = errno;
				end.side = side;
				return end;
			}
		}
	}
}

/* Relay, then close the guest port's socket: with a reset after an
 * error, so that its service sees a cut, not an end. */
static void
forward(struct agent_request *rq, unsigned port, int tfd)
{
	int fds[2] = { rq->fd, tfd };
	struct fwd_dir d[2] = {
		{ .from = 0, .to = 1, .buf = malloc(FWD_BUF) },
		{ .from = 1, .to = 0, .buf = malloc(FWD_BUF) },
	};
	struct fwd_end end = { 0, 0, 0 };
	char how[96];
	int rc;

	if (d[0].buf == NULL || d[1].buf == NULL) {
		agent_reply_error(rq, 500, "out of memory");
		goto out;
	}
	if ((rc = uhttp_write(rq->fd, switching, sizeof(switching) - 1,
	    agent_now_ms() + AGENT_IO_TIMEOUT_MS)) != 0) {
		end.err = rc == -2 ? ETIMEDOUT : errno;
		snprintf(how, sizeof(how), "the client, before the 101: %s",
		    strerror(end.err));
		goto log;
	}
	/* What came with the head goes first (at most AGENT_MAX_HEAD). */
	memcpy(d[0].buf, rq->extra, rq->extra_len);
	d[0].len = rq->extra_len;
	end = relay(fds, d);
	if (end.err == 0)
		snprintf(how, sizeof(how), "both sides ended");
	else if (end.gone)
		snprintf(how, sizeof(how), "the client left");
	else
		snprintf(how, sizeof(how), "%s: %s", end.side == 0 ?
		    "the client" : "the guest port", strerror(end.err));
log:
	agent_log("forward to port %u: %llu bytes to it, %llu back; %s",
	    port, d[0].bytes, d[1].bytes, how);
	if (end.err != 0 && !end.gone) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(tfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		/* The client's socket is closed by its thread, after a
		 * drain that this makes short. */
		shutdown(rq->fd, SHUT_RDWR);
	}
out:
	close(tfd);
	free(d[0].buf);
	free(d[1].buf);
}

void
forward_route(struct agent_request *rq)
{
	const char *why;
	char msg[128];
	unsigned port;
	int tfd;

	if ((why = not_an_upgrade(rq)) != NULL) {
		agent_reply_error(rq, 400, why);
		return;
	}
	if ((port = parse_query(rq->query, msg, sizeof(msg))) == 0) {
		agent_reply_error(rq, 400, msg);
		return;
	}
	if (!rq->cfg->in_guest && !rq->cfg->allow_forward) {
		agent_reply_error(rq, 403, "not in a guest: the port would be "
		    "this host's (start the agent with --allow-forward to "
		    "allow it)");
		return;
	}
	if (atomic_fetch_add(&open_forwards, 1) >= FWD_MAX) {
		atomic_fetch_sub(&open_forwards, 1);
		agent_log("forward to port %u: refused, %d open already", port,
		    FWD_MAX);
		snprintf(msg, sizeof(msg), "%d forwards are open already",
		    FWD_MAX);
		agent_reply_error(rq, 503, msg);
		return;
	}
	if ((tfd = connect_port(port)) < 0) {
		snprintf(msg, sizeof(msg), "guest port %u: %s", port,
		    strerror(errno));
		agent_log("forward to port %u: %s", port, strerror(errno));
		agent_reply_error(rq, 502, msg);
	} else {
		forward(rq, port, tfd);
	}
	atomic_fetch_sub(&open_forwards, 1);
}
