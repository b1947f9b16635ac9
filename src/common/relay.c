/* relay.c - two sockets joined both ways with poll(2), in the caller's
 * thread: one buffer per direction, half-close passed on. */
#include "common/relay.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

#define RELAY_BUF (64 * 1024)

/* One direction: from `in` to `out`. */
struct dir {
	struct relay_end *in, *out;
	char *buf;
	const char *data;     /* what waits to be written: pending, or buf */
	size_t len;
	bool eof;             /* `in` said EOF */
	bool done;            /* and all of it went out; `out` shut for writes */
	bool broke;           /* ended by an error, not an EOF */
};

/* An error on one direction (its peer gone: EPIPE, ECONNRESET) ends that
 * direction only, dropping what it still held.  The other one goes on:
 * what the gone peer sent before it left (an exec's exit frame, say) is
 * still delivered. */
static void
dir_broke(struct dir *d)
{
	d->len = 0;
	d->eof = true;
	d->broke = true;
}

/* Move what can be moved now. */
static void
dir_step(struct dir *d, short in_ev, short out_ev)
{
	if (d->len > 0 && (out_ev & (POLLOUT | POLLERR | POLLHUP))) {
		ssize_t n = send(d->out->fd, d->data, d->len, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			dir_broke(d);
		if (n > 0) {
			d->data += n;
			d->len -= (size_t)n;
			d->in->sent += (unsigned long long)n;
		}
	} else if (d->len == 0 && !d->eof &&
	    (in_ev & (POLLIN | POLLERR | POLLHUP))) {
		ssize_t n = recv(d->in->fd, d->buf, RELAY_BUF, MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			dir_broke(d);
		if (n == 0)
			d->eof = true;
		if (n > 0) {
			d->data = d->buf;
			d->len = (size_t)n;
		}
	}
	if (d->eof && d->len == 0 && !d->done) {
		/* The other side may be gone already: nothing to tell it. */
		shutdown(d->out->fd, SHUT_WR);
		d->done = true;
	}
}

int
relay_run(struct relay_end *a, struct relay_end *b)
{
	struct dir d[2] = {
		{ a, b, NULL, a->pending, a->npending, false, false, false },
		{ b, a, NULL, b->pending, b->npending, false, false, false },
	};
	int rc = 0;

	d[0].buf = malloc(RELAY_BUF);
	d[1].buf = malloc(RELAY_BUF);
	if (d[0].buf == NULL || d[1].buf == NULL) {
		rc = -1;
		goto out;
	}
	if (d[0].data == NULL)
		d[0].len = 0;
	if (d[1].data == NULL)
		d[1].len = 0;
	while (!d[0].done || !d[1].done) {
		/* pfd[0] is a, pfd[1] is b. */
		struct pollfd pfd[2] = { { a->fd, 0, 0 }, { b->fd, 0, 0 } };
		for (int i = 0; i < 2; i++) {
			if (d[i].done)
				continue;
			if (d[i].len > 0)
				pfd[1 - i].events |= POLLOUT;
			else if (!d[i].eof)
				pfd[i].events |= POLLIN;
		}
		/* An end polled for nothing is left out once nothing more
		 * goes into it: its HUP would wake the poll again and again
		 * while the other end is slow.  While something may still go
		 * into it, its HUP is watched for (below). */
		for (int i = 0; i < 2; i++)
			if (pfd[i].events == 0 && d[1 - i].done)
				pfd[i].fd = -1;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		/* An end hung up for good (its peer closed, or it was shut
		 * down both ways, as bangerd does to a VM's vsock before a
		 * pause) takes nothing more: the direction into it ends now,
		 * not at the next byte the other end may never send.  What
		 * it sent before still goes out. */
		for (int i = 0; i < 2; i++)
			if ((pfd[i].revents & POLLHUP) && !d[1 - i].done &&
			    d[1 - i].len == 0)
				d[1 - i].eof = true;
		dir_step(&d[0], pfd[0].revents, pfd[1].revents);
		dir_step(&d[1], pfd[1].revents, pfd[0].revents);
	}
	if (d[0].broke || d[1].broke)
		rc = -1;
out:
	free(d[0].buf);
	free(d[1].buf);
	return rc;
}
