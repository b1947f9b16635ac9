/* test_relay.c - relay_run (src/common/relay.c) between two socket pairs:
 * the test holds the far end of each, a thread runs the relay. */
#include "tap.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/relay.h"
#include "common/util.h"

struct pairs {
	int a, a_far;       /* the relay's end a, and the test's */
	int b, b_far;
	struct relay_end ea, eb;
	pthread_t th;
	int rc;
	bool ended;
};

static void *
relay_thread(void *arg)
{
	struct pairs *p = arg;

	p->rc = relay_run(&p->ea, &p->eb);
	__atomic_store_n(&p->ended, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static int
pairs_start(struct pairs *p)
{
	int s[2], t[2];

	memset(p, 0, sizeof(*p));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t) < 0)
		return -1;
	p->a = s[0];
	p->a_far = s[1];
	p->b = t[0];
	p->b_far = t[1];
	p->ea.fd = p->a;
	p->eb.fd = p->b;
	return pthread_create(&p->th, NULL, relay_thread, p) == 0 ? 0 : -1;
}

/* Has the relay returned within ms? */
static bool
pairs_ended(struct pairs *p, int ms)
{
	long long deadline = time_mono_ms() + ms;

	while (!__atomic_load_n(&p->ended, __ATOMIC_SEQ_CST)) {
		if (time_mono_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
	pthread_join(p->th, NULL);
	return true;
}

static void
pairs_close(struct pairs *p)
{
	if (!__atomic_load_n(&p->ended, __ATOMIC_SEQ_CST)) {
		/* The relay's own ends, shut both ways: it must end. */
		shutdown(p->a, SHUT_RDWR);
		shutdown(p->b, SHUT_RDWR);
		pthread_join(p->th, NULL);
	}
	close(p->a);
	close(p->a_far);
	close(p->b);
	close(p->b_far);
}

/* What fd has to read within ms: bytes into buf, 0 at EOF, -1 for
 * nothing in time. */
static ssize_t
read_within(int fd, char *buf, size_t len, int ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };

	if (poll(&pfd, 1, ms) <= 0)
		return -1;
	return read(fd, buf, len);
}

/* Bytes go both ways. */
static int
test_both_ways(void)
{
	struct pairs p;
	char buf[16];

	fail_unless(pairs_start(&p) == 0, "start");
	fail_unless(write(p.a_far, "ping", 4) == 4, "write");
	fail_unless(read_within(p.b_far, buf, sizeof(buf), 2000) == 4 &&
	    memcmp(buf, "ping", 4) == 0, "a to b");
	fail_unless(write(p.b_far, "pong", 4) == 4, "write");
	fail_unless(read_within(p.a_far, buf, sizeof(buf), 2000) == 4 &&
	    memcmp(buf, "pong", 4) == 0, "b to a");
	pairs_close(&p);
	return 0;
}

/* A half-close is passed on, and the other direction goes on. */
static int
test_half_close(void)
{
	struct pairs p;
	char buf[16];

	fail_unless(pairs_start(&p) == 0, "start");
	fail_unless(shutdown(p.b_far, SHUT_WR) == 0, "shutdown");
	fail_unless(read_within(p.a_far, buf, sizeof(buf), 2000) == 0,
	    "a sees the EOF");
	fail_unless(!pairs_ended(&p, 200), "the relay ended at a half-close");
	fail_unless(write(p.a_far, "more", 4) == 4, "write");
	fail_unless(read_within(p.b_far, buf, sizeof(buf), 2000) == 4 &&
	    memcmp(buf, "more", 4) == 0, "a to b after b's half-close");
	fail_unless(shutdown(p.a_far, SHUT_WR) == 0, "shutdown");
	fail_unless(pairs_ended(&p, 2000), "both ended, the relay goes on");
	fail_unless(p.rc == 0, "two EOFs are a clean end: %d", p.rc);
	pairs_close(&p);
	return 0;
}

/* b's peer closes for good while a sends nothing: what b sent still
 * reaches a, then a sees the end, and the relay returns without waiting
 * for a byte from a. */
static int
test_peer_gone(void)
{
	struct pairs p;
	char buf[16];

	fail_unless(pairs_start(&p) == 0, "start");
	fail_unless(write(p.b_far, "exit", 4) == 4, "write");
	close(p.b_far);
	p.b_far = -1;
	fail_unless(read_within(p.a_far, buf, sizeof(buf), 2000) == 4 &&
	    memcmp(buf, "exit", 4) == 0, "what b sent before it left");
	fail_unless(read_within(p.a_far, buf, sizeof(buf), 2000) == 0,
	    "then the end");
	fail_unless(pairs_ended(&p, 2000), "the relay waits on a silent a");
	pairs_close(&p);
	return 0;
}

/* The relay's own end b shut down both ways (bangerd ending a VM's vsock
 * connections before a pause): the relay returns while a sends nothing. */
static int
test_own_end_shut(void)
{
	struct pairs p;
	char buf[16];

	fail_unless(pairs_start(&p) == 0, "start");
	sleep_ms(50);
	fail_unless(shutdown(p.b, SHUT_RDWR) == 0, "shutdown");
	fail_unless(pairs_ended(&p, 2000), "the relay waits on a silent a");
	fail_unless(read_within(p.a_far, buf, sizeof(buf), 2000) == 0,
	    "a sees the end");
	pairs_close(&p);
	return 0;
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	tap_begin();
	RUN_TEST(test_both_ways);
	RUN_TEST(test_half_close);
	RUN_TEST(test_peer_gone);
	RUN_TEST(test_own_end_shut);
	return tap_end();
}
