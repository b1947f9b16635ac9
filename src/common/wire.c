/* wire.c - the socket path and allocation shared by bangerd and banger. */
#include "wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
wire_socket_default(char *buf, size_t len)
{
	const char *xdg;

	if (geteuid() == 0) {
		snprintf(buf, len, "/run/banger/bangerd.sock");
		return;
	}
	xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg != NULL && xdg[0] != '\0')
		snprintf(buf, len, "%s/banger/bangerd.sock", xdg);
	else
		snprintf(buf, len, "/run/user/%u/banger/bangerd.sock",
		    (unsigned)getuid());
}

const char *
wire_socket_env(void)
{
	const char *env = getenv(WIRE_SOCKET_ENV);

	return env != NULL && env[0] != '\0' ? env : NULL;
}

void
wire_socket_resolve(const char *flag, char *buf, size_t len)
{
	const char *env = wire_socket_env();

	if (flag != NULL)
		snprintf(buf, len, "%s", flag);
	else if (env != NULL)
		snprintf(buf, len, "%s", env);
	else
		wire_socket_default(buf, len);
}

static void __attribute__((noreturn))
oom(void)
{
	fprintf(stderr, "%s: out of memory\n", program_invocation_short_name);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		oom();
	return p;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		oom();
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	return s;
}
