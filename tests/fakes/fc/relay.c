/* relay.c - Firecracker's hybrid vsock from the host side: a client sends
 * "CONNECT <port>\n", gets "OK <host port>\n" and then talks to the guest's
 * port.  The guest agent's port leads to its Unix socket; nothing else
 * listens.  One detached thread per connection, two pumps each.  The open
 * connections are listed (under their own lock, not fc.mu) so that a
 * vsock transport reset can end them all. */
#include "fake.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Firecracker's limit of connections per vsock device. */
#define MAX_CONNS 1023

static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER;
static int conns[MAX_CONNS];	/* host ends of the open connections */
static size_t nconns;

struct pump {
	int from, to;
	int a, b;	/* both ends, shut down when this direction ends */
};

static void *
pump_run(void *arg)
{
	struct pump *p = arg;
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = recv(p->from, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || send_all(p->to, buf, (size_t)n) < 0)
			break;
	}
	/* Either side closing ends the whole connection: a host-side EOF makes
	 * Firecracker send VSOCK_OP_SHUTDOWN(RCV|SEND) to the guest, and a
	 * guest shutdown makes it close the host stream after flushing. */
	shutdown(p->a, SHUT_RDWR);
	shutdown(p->b, SHUT_RDWR);
	return NULL;
}

/* One line; -1 without a newline in Firecracker's 32-byte buffer. */
static int
read_line(int fd, char *line, size_t cap)
{
	size_t n = 0;
	ssize_t r;
	char c;

	while (n + 1 < cap) {
		r = recv(fd, &c, 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (c == '\n') {
			line[n] = '\0';
			return 0;
		}
		line[n++] = c;
	}
	return -1;
}

/* The guest port a "CONNECT <port>" line asks for; -1 for anything else. */
static long
connect_port(char *line)
{
	char *save = NULL, *end;
	char *verb = strtok_r(line, " \t\r", &save);
	char *port = strtok_r(NULL, " \t\r", &save);
	unsigned long p;

	if (verb == NULL || port == NULL || strtok_r(NULL, " \t\r", &save) ||
	    strcasecmp(verb, "connect") != 0 || !isdigit((unsigned char)port[0]))
		return -1;
	errno = 0;
	p = strtoul(port, &end, 10);
	if (*end || errno || p > UINT32_MAX)
		return -1;
	return (long)p;
}

static int
dial_agent(void)
{
	struct sockaddr_un sa;
	int fd;

	if ((fd = unix_socket(fc.agent_sock, &sa)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* List c among the open connections; -1 when there are too many. */
static int
conn_add(int c)
{
	int rc = -1;

	pthread_mutex_lock(&conns_mu);
	if (nconns < MAX_CONNS) {
		conns[nconns++] = c;
		rc = 0;
	}
	pthread_mutex_unlock(&conns_mu);
	return rc;
}

/* Before c is closed, so that a reset never touches a reused fd. */
static void
conn_del(int c)
{
	pthread_mutex_lock(&conns_mu);
	for (size_t k = 0; k < nconns; k++)
		if (conns[k] == c) {
			conns[k] = conns[--nconns];
			break;
		}
	pthread_mutex_unlock(&conns_mu);
}

void
relay_reset(void)
{
	pthread_mutex_lock(&conns_mu);
	for (size_t k = 0; k < nconns; k++)
		shutdown(conns[k], SHUT_RDWR);
	pthread_mutex_unlock(&conns_mu);
}

static void *
relay_conn(void *arg)
{
	int c = (int)(intptr_t)arg, a = -1, n;
	char line[33], ok[32];
	struct pump up, down;
	pthread_t th;

	log_thread_name("fc_vmm");
	/* A wrong port resets the connection; an agent not up (yet) closes
	 * it with no message: both look the same from the host. */
	if (read_line(c, line, sizeof(line)) < 0 ||
	    connect_port(line) != (long)fc.agent_port || (a = dial_agent()) < 0)
		goto out;
	if (conn_add(c) < 0)
		goto out;
	n = snprintf(ok, sizeof(ok), "OK %u\n",
	    atomic_fetch_add(&fc.next_host_port, 1));
	up = (struct pump){ .from = c, .to = a, .a = c, .b = a };
	down = (struct pump){ .from = a, .to = c, .a = c, .b = a };
	if (send_all(c, ok, (size_t)n) == 0 &&
	    pthread_create(&th, NULL, pump_run, &down) == 0) {
		pump_run(&up);
		pthread_join(th, NULL);
	}
	conn_del(c);
out:
	if (a >= 0)
		close(a);
	close(c);
	return NULL;
}

static void *
relay_accept(void *arg)
{
	int lfd = (int)(intptr_t)arg, c;
	pthread_attr_t at;
	pthread_t th;

	log_thread_name("fc_vmm");
	for (;;) {
		c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0 && (errno == EINTR || errno == ECONNABORTED ||
		    errno == EMFILE || errno == ENFILE))
			continue;
		if (c < 0)
			break;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 256 * 1024);
		if (pthread_create(&th, &at, relay_conn, (void *)(intptr_t)c) != 0)
			close(c);
		pthread_attr_destroy(&at);
	}
	return NULL;
}

void
relay_start(void)
{
	pthread_t th;

	if (fc.relay_started || fc.vsock_fd < 0)
		return;
	if (pthread_create(&th, NULL, relay_accept,
	    (void *)(intptr_t)fc.vsock_fd) == 0) {
		pthread_detach(th);
		fc.relay_started = true;
	}
}
