/* portspec.c - forwarded ports written as text (portspec.h). */
#include "common/portspec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool
port_addr_ok(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

/* A port number of n bytes of s: 1..65535, digits only; -1 otherwise. */
static int
port_number(const char *s, size_t n)
{
	int v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= 65535 ? v : -1;
}

int
port_parse(const char *s, size_t n, struct vm_port *ret, const char **why)
{
	const char *end = s + n, *c2, *c1 = NULL;

	memset(ret, 0, sizeof(*ret));
	c2 = memrchr(s, ':', n);
	if (c2 == NULL) {
		*why = "expected [ADDR:]HOST_PORT:GUEST_PORT";
		return -1;
	}
	c1 = c2 > s ? memrchr(s, ':', (size_t)(c2 - s)) : NULL;
	const char *hp = c1 != NULL ? c1 + 1 : s;
	if ((ret->host = port_number(hp, (size_t)(c2 - hp))) < 0) {
		*why = "the host port must be a number from 1 to 65535";
		return -1;
	}
	if ((ret->guest = port_number(c2 + 1, (size_t)(end - c2 - 1))) < 0) {
		*why = "the guest port must be a number from 1 to 65535";
		return -1;
	}
	if (c1 == NULL) {
		snprintf(ret->addr, sizeof(ret->addr), "%s", PORT_DEFAULT_ADDR);
		return 0;
	}
	const char *a = s, *ae = c1;
	if (ae - a >= 2 && a[0] == '[' && ae[-1] == ']') {
		a++;
		ae--;
	}
	if (ae - a <= 0 || (size_t)(ae - a) >= sizeof(ret->addr)) {
		*why = "the host address must be a numeric IPv4 or IPv6 address";
		return -1;
	}
	memcpy(ret->addr, a, (size_t)(ae - a));
	ret->addr[ae - a] = '\0';
	if (!port_addr_ok(ret->addr)) {
		*why = "the host address must be a numeric IPv4 or IPv6 address "
		    "(IPv6 in brackets)";
		return -1;
	}
	return 0;
}

void
port_format(const struct vm_port *p, char *buf, size_t len)
{
	bool v6 = strchr(p->addr, ':') != NULL;

	snprintf(buf, len, "%s%s%s:%d:%d", v6 ? "[" : "", p->addr, v6 ? "]" : "",
	    p->host, p->guest);
}

/* The family of a numeric address, and whether it is the wildcard. */
static int
addr_kind(const char *s, bool *any)
{
	unsigned char buf[16], zero[16] = { 0 };

	if (inet_pton(AF_INET, s, buf) == 1) {
		*any = memcmp(buf, zero, 4) == 0;
		return AF_INET;
	}
	inet_pton(AF_INET6, s, buf);
	*any = memcmp(buf, zero, 16) == 0;
	return AF_INET6;
}

bool
port_clash(const struct vm_port *a, const struct vm_port *b)
{
	bool any_a, any_b;

	if (a->host != b->host)
		return false;
	int fa = addr_kind(a->addr, &any_a), fb = addr_kind(b->addr, &any_b);
	if (fa != fb)
		/* An IPv6 wildcard takes IPv4 too unless IPV6_V6ONLY is set;
		 * bangerd sets it, so the families do not meet. */
		return false;
	if (any_a || any_b)
		return true;
	unsigned char x[16], y[16];
	inet_pton(fa, a->addr, x);
	inet_pton(fb, b->addr, y);
	return memcmp(x, y, fa == AF_INET ? 4 : 16) == 0;
}

/* The host side of p as a socket address; -1 for a bad address. */
static int
port_sockaddr(const struct vm_port *p, struct sockaddr_storage *ret,
    socklen_t *ret_len)
{
	memset(ret, 0, sizeof(*ret));
	if (strchr(p->addr, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ret;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p->host);
		*ret_len = sizeof(*s6);
		return inet_pton(AF_INET6, p->addr, &s6->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ret;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)p->host);
	*ret_len = sizeof(*s4);
	return inet_pton(AF_INET, p->addr, &s4->sin_addr) == 1 ? 0 : -1;
}

int
port_listen(const struct vm_port *p, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd;

	if (port_sockaddr(p, &ss, &sl) < 0) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
	    listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}
