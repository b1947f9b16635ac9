/* portspec.h - a forwarded port: a host address and port that lead to a
 * TCP port on the guest's loopback.  Written "[ADDR:]HOST:GUEST" on the
 * command line and in the store ("[::1]:8080:80" for IPv6), as
 * {"host", "guest", "address"} in the API. */
#ifndef BANGER_COMMON_PORTSPEC_H
#define BANGER_COMMON_PORTSPEC_H

#include <stdbool.h>
#include <stddef.h>

#define PORT_ADDR_MAX 46          /* INET6_ADDRSTRLEN */
#define PORT_DEFAULT_ADDR "127.0.0.1"

struct vm_port {
	char addr[PORT_ADDR_MAX];   /* a numeric IPv4 or IPv6 address */
	int host;                   /* 1..65535 */
	int guest;                  /* 1..65535 */
};

/* Whether s is a numeric IPv4 or IPv6 address (no brackets). */
bool port_addr_ok(const char *s);
/* Parse "[ADDR:]HOST:GUEST" (n bytes of s; ADDR defaults to 127.0.0.1,
 * an IPv6 one in brackets).  0, or -1 with why (a static string). */
int port_parse(const char *s, size_t n, struct vm_port *ret,
    const char **why);
/* "ADDR:HOST:GUEST" ("[ADDR]:..." for IPv6) into buf. */
void port_format(const struct vm_port *p, char *buf, size_t len);
/* A listening TCP socket on the host side of p (SO_REUSEADDR, IPv6 only
 * for an IPv6 address), close-on-exec; -1 with errno. */
int port_listen(const struct vm_port *p, int backlog);
/* Whether two forwards would listen on the same socket (the same port
 * on the same address, or either on the wildcard of its family). */
bool port_clash(const struct vm_port *a, const struct vm_port *b);

#endif
