/* log.c - the agent's log lines (stderr, one write each) and its clock. */
#include "agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "common/uhttp_msg.h"

long long
agent_now_ms(void)
{
	return uhttp_now_ms();
}

void
agent_log(const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s: ", AGENT_NAME);
	if (n < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write per line so lines from concurrent threads never mix. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
