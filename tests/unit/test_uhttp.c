/* uhttp: one HTTP exchange over a Unix socket, with deadlines. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/uhttp.h"
#include "common/util.h"
#include "tap.h"

struct server {
	char path[108];
	int fd;
	const char *reply;     /* sent after reading the request head */
	int delay_ms;
	char request[2048];
	pthread_t th;
};

static void *
serve_one(void *arg)
{
	struct server *s = arg;
	int c = accept(s->fd, NULL, NULL);
	size_t len = 0;

	if (c < 0)
		return NULL;
	/* Read until the head and any Content-Length body are in. */
	while (len < sizeof(s->request) - 1) {
		ssize_t n = read(c, s->request + len, sizeof(s->request) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		s->request[len] = '\0';
		char *end = strstr(s->request, "\r\n\r\n");
		if (end == NULL)
			continue;
		long long cl = uhttp_content_length(s->request,
		    (size_t)(end + 4 - s->request), 65536);
		if (cl < 0 || len >= (size_t)(end + 4 - s->request) + (size_t)cl)
			break;
	}
	if (s->delay_ms)
		sleep_ms(s->delay_ms);
	if (s->reply)
		(void)!send(c, s->reply, strlen(s->reply), MSG_NOSIGNAL);
	close(c);
	return NULL;
}

static int
server_start(struct server *s, const char *reply, int delay_ms)
{
	struct sockaddr_un sa;

	memset(s, 0, sizeof(*s));
	snprintf(s->path, sizeof(s->path), "/tmp/uhttp-test-%d.sock", (int)getpid());
	unlink(s->path);
	s->reply = reply;
	s->delay_ms = delay_ms;
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uhttp_sockaddr(&sa, s->path);
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->fd, 4) < 0)
		return -1;
	return pthread_create(&s->th, NULL, serve_one, s);
}

static void
server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->th, NULL);
	close(s->fd);
	unlink(s->path);
}

static int
test_put_204(void)
{
	struct server s;
	struct uhttp_reply r;
	struct bn_err err;

	fail_unless(server_start(&s, "HTTP/1.1 204 No Content\r\n\r\n", 0) == 0, "server");
	int rc = uhttp_request(s.path, "PUT", "/drives/rootfs", "{\"a\":1}",
	    time_mono_ms() + 2000, &r, &err);
	server_stop(&s);
	fail_unless(rc == 0, "%s", err.msg);
	fail_unless(uhttp_status(&r) == 204, "status %d", uhttp_status(&r));
	fail_unless(strncmp(s.request, "PUT /drives/rootfs HTTP/1.1\r\n", 29) == 0,
	    "request line: %.40s", s.request);
	fail_unless(strstr(s.request, "Content-Length: 7\r\n") &&
	    strstr(s.request, "\r\n\r\n{\"a\":1}"), "body sent: %s", s.request);
	free(r.buf);
	return 0;
}

static int
test_error_body(void)
{
	struct server s;
	struct uhttp_reply r;
	struct bn_err err;
	const char *reply = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json"
	    "\r\nContent-Length: 27\r\n\r\n{\"fault_message\":\"nope!!\"}\n";

	fail_unless(server_start(&s, reply, 0) == 0, "server");
	int rc = uhttp_request(s.path, "GET", "/", NULL, time_mono_ms() + 2000, &r, &err);
	server_stop(&s);
	fail_unless(rc == 0, "%s", err.msg);
	fail_unless(uhttp_status(&r) == 400, "status");
	fail_unless(strcmp(r.buf + r.body, "{\"fault_message\":\"nope!!\"}\n") == 0,
	    "body %s", r.buf + r.body);
	free(r.buf);
	return 0;
}

static int
test_not_http_and_timeout(void)
{
	struct server s;
	struct uhttp_reply r;
	struct bn_err err;

	fail_unless(server_start(&s, "PONG\n", 0) == 0, "server");
	int rc = uhttp_request(s.path, "GET", "/", NULL, time_mono_ms() + 2000, &r, &err);
	server_stop(&s);
	fail_unless(rc < 0 && err.code == BN_EVMM, "not HTTP: %d %s", err.code, err.msg);

	fail_unless(server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	    1500) == 0, "server");
	long long t0 = time_mono_ms();
	rc = uhttp_request(s.path, "GET", "/", NULL, time_mono_ms() + 200, &r, &err);
	long long took = time_mono_ms() - t0;
	server_stop(&s);
	fail_unless(rc < 0 && err.code == BN_ETIMEOUT, "timeout: %s", err.msg);
	fail_unless(took < 1000, "deadline honoured (%lld ms)", took);
	return 0;
}

static int
test_no_socket(void)
{
	struct uhttp_reply r;
	struct bn_err err;

	int rc = uhttp_request("/tmp/uhttp-test-does-not-exist.sock", "GET", "/", NULL,
	    time_mono_ms() + 500, &r, &err);
	fail_unless(rc < 0 && err.code == BN_ESYS && err.sys_errno == ENOENT,
	    "ENOENT: %s", err.msg);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	rc = uhttp_request(longp, "GET", "/", NULL, time_mono_ms() + 500, &r, &err);
	fail_unless(rc < 0 && err.code == BN_EINVAL, "long path refused");
	return 0;
}

/* The request parser's Upgrade and Connection (the agent's POST
 * /forward), and the list matcher behind them. */
static int
test_upgrade_headers(void)
{
	struct uhttp_request u;
	char head[256];

	fail_unless(uhttp_list_has("keep-alive, Upgrade", "upgrade"),
	    "a list, another case");
	fail_unless(uhttp_list_has(" tcp ", "tcp"), "whitespace around");
	fail_unless(uhttp_list_has("h2c,tcp", "tcp"), "no space after a comma");
	fail_unless(!uhttp_list_has("tcpx, xtcp, ", "tcp"), "whole items only");
	fail_unless(!uhttp_list_has("", "tcp"), "an empty list");

	snprintf(head, sizeof(head), "POST /forward?port=1 HTTP/1.1\r\n"
	    "Connection: keep-alive\r\nconnection: UPGRADE\r\n"
	    "Upgrade:  tcp \r\n\r\n");
	fail_unless(uhttp_parse_request(head, 0, &u) == 0, "parsed");
	fail_unless(u.connection_upgrade, "two Connection lines are one list");
	fail_unless(u.upgrade != NULL && uhttp_list_has(u.upgrade, "tcp"),
	    "Upgrade: %s", u.upgrade ? u.upgrade : "(none)");

	snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nConnection: close\r\n"
	    "\r\n");
	fail_unless(uhttp_parse_request(head, 0, &u) == 0 &&
	    !u.connection_upgrade && u.upgrade == NULL, "neither");

	snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nUpgrade: tcp\r\n"
	    "Upgrade: h2c\r\n\r\n");
	fail_unless(uhttp_parse_request(head, 0, &u) == 400,
	    "two Upgrade lines are refused");
	return 0;
}

int
main(void)
{
	tap_begin();
	RUN_TEST(test_put_204);
	RUN_TEST(test_error_body);
	RUN_TEST(test_not_http_and_timeout);
	RUN_TEST(test_no_socket);
	RUN_TEST(test_upgrade_headers);
	return tap_end();
}
