/* vsock_quiet.c - bangerd's open connections to each VM's vsock socket,
 * and a way to keep them all still while the VM is paused.
 *
 * vhost-device-vsock 0.3.0 (QEMU's vsock here) stops serving a guest's
 * vsock for good when anything happens on a host connection while the
 * VM is paused.  QEMU's "stop" takes the rings away from the backend,
 * and the next event on its side of vsock.sock makes its vring worker
 * process a ring that is not ready; the worker ends on that error and
 * every later dial waits in vain (qemu.c tells the rest of the bug).
 * Measured on a real boot (tests/unit/test_qemu.c): a new connection, a
 * write on an open one and a close of an open one each did it; an open
 * connection left alone did not.
 *
 * So every socket vsock.c dials with comes from here and goes back
 * here, keyed by the VM's vsock.sock path.  A pause first quiesces the
 * path: new dials wait (or fail at their deadline), and the open
 * connections are shut down and waited for, so that nothing is left to
 * stir while the VM is paused.  The resume lets dials go on. */
#include "vmm/vsock_quiet.h"

#include "common/util.h"
#include "common/wire.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define QUIET_PATH_MAX 108   /* sun_path */

struct conn {
	int fd;
	char uds[QUIET_PATH_MAX];
	struct conn *next;
};

struct quiet {
	char uds[QUIET_PATH_MAX];
	struct quiet *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static struct conn *conns;
static struct quiet *quiets;

static struct quiet *
quiet_find(const char *uds)
{
	for (struct quiet *q = quiets; q != NULL; q = q->next)
		if (strcmp(q->uds, uds) == 0)
			return q;
	return NULL;
}

static int
count_locked(const char *uds)
{
	int n = 0;

	for (struct conn *c = conns; c != NULL; c = c->next)
		n += strcmp(c->uds, uds) == 0;
	return n;
}

int
vsock_conn_socket(const char *uds_path, long long deadline_ms,
    struct bn_err *err)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	snprintf(c->uds, sizeof(c->uds), "%s", uds_path);
	pthread_mutex_lock(&mu);
	while (quiet_find(c->uds) != NULL) {
		long long left = deadline_ms - time_mono_ms();
		if (left <= 0) {
			pthread_mutex_unlock(&mu);
			free(c);
			return bn_fail(err, BN_ESTATE, 0, "vsock %s: the VM is "
			    "paused", uds_path);
		}
		cond_wait_ms(&changed, &mu, left < 100 ? left : 100);
	}
	/* Made and listed under the lock: a quiesce sees every socket. */
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		int e = errno;
		pthread_mutex_unlock(&mu);
		free(c);
		return bn_fail(err, BN_ESYS, e, "vsock %s: socket", uds_path);
	}
	c->next = conns;
	conns = c;
	pthread_mutex_unlock(&mu);
	return c->fd;
}

void
vsock_conn_close(int fd)
{
	struct conn *found = NULL;

	if (fd < 0)
		return;
	pthread_mutex_lock(&mu);
	for (struct conn **pp = &conns; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->fd == fd) {
			found = *pp;
			*pp = found->next;
			break;
		}
	/* Closed under the lock: a quiesce never shuts down a number that
	 * has been reused. */
	close(fd);
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&mu);
	free(found);
}

int
vsock_conn_count(const char *uds_path)
{
	pthread_mutex_lock(&mu);
	int n = count_locked(uds_path);
	pthread_mutex_unlock(&mu);
	return n;
}

int
vsock_quiesce(const char *uds_path, bool end_open, int wait_ms,
    struct bn_err *err)
{
	long long deadline = time_mono_ms() + wait_ms;
	bool made = false;

	pthread_mutex_lock(&mu);
	if (quiet_find(uds_path) == NULL) {
		struct quiet *q = xcalloc(1, sizeof(*q));
		snprintf(q->uds, sizeof(q->uds), "%s", uds_path);
		q->next = quiets;
		quiets = q;
		made = true;
	}
	if (!end_open) {
		pthread_mutex_unlock(&mu);
		return 0;
	}
	/* Their owners see the end of the stream and close them. */
	for (struct conn *c = conns; c != NULL; c = c->next)
		if (strcmp(c->uds, uds_path) == 0)
			shutdown(c->fd, SHUT_RDWR);
	int n;
	while ((n = count_locked(uds_path)) > 0) {
		long long left = deadline - time_mono_ms();
		if (left <= 0)
			break;
		cond_wait_ms(&changed, &mu, left < 100 ? left : 100);
	}
	pthread_mutex_unlock(&mu);
	if (n == 0)
		return 0;
	if (made)
		vsock_unquiesce(uds_path);
	return bn_fail(err, BN_ESTATE, 0, "vsock %s: %d connection%s did not "
	    "end within %d ms", uds_path, n, n == 1 ? "" : "s", wait_ms);
}

void
vsock_unquiesce(const char *uds_path)
{
	struct quiet *found = NULL;

	pthread_mutex_lock(&mu);
	for (struct quiet **pp = &quiets; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->uds, uds_path) == 0) {
			found = *pp;
			*pp = found->next;
			break;
		}
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&mu);
	free(found);
}

bool
vsock_is_quiet(const char *uds_path)
{
	pthread_mutex_lock(&mu);
	bool q = quiet_find(uds_path) != NULL;
	pthread_mutex_unlock(&mu);
	return q;
}
