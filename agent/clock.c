/* clock.c - POST /clock: the host sets the guest's wall clock.
 *
 * A guest that was paused or restored from a snapshot wakes with its
 * clock where it stopped: TLS, make and anything that compares mtimes
 * goes wrong.  bangerd sends its own CLOCK_REALTIME right after a resume,
 * as {"realtime_ns": N}; the agent steps the clock to it and answers with
 * how far it was off.  Outside a guest (a Unix socket: tests, the
 * Firecracker test double) it never touches the host's clock: with
 * --clock-file it writes the time asked for there, else it refuses. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The body is exactly one object with one non-negative integer member:
 * {"realtime_ns": N}.  0 and *ret set, or -1. */
static int
parse_body(const char *s, long long *ret)
{
	static const char key[] = "\"realtime_ns\"";
	long long v = 0;
	int digits = 0;

	while (isspace((unsigned char)*s))
		s++;
	if (*s++ != '{')
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	if (strncmp(s, key, sizeof(key) - 1) != 0)
		return -1;
	s += sizeof(key) - 1;
	while (isspace((unsigned char)*s))
		s++;
	if (*s++ != ':')
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		if (v > (__LONG_LONG_MAX__ - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	while (isspace((unsigned char)*s))
		s++;
	if (digits == 0 || *s++ != '}')
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	if (*s != '\0')
		return -1;
	*ret = v;
	return 0;
}

static int
write_clock_file(const char *path, long long ns)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%lld\n", ns);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	int rc = write(fd, line, (size_t)n) == n ? 0 : -1;
	if (close(fd) < 0)
		rc = -1;
	return rc;
}

void
clock_route(struct agent_request *rq)
{
	long long want;
	struct timespec now;
	char body[160];

	if (parse_body(rq->body, &want) < 0) {
		agent_reply_error(rq, 400, "the body must be {\"realtime_ns\": N}");
		return;
	}
	if (!rq->cfg->in_guest && rq->cfg->clock_file == NULL) {
		agent_reply_error(rq, 403, "not in a guest: the host's clock is "
		    "not the agent's to set");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	long long was = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	int rc;
	if (rq->cfg->in_guest) {
		struct timespec ts = { .tv_sec = (time_t)(want / 1000000000LL),
			.tv_nsec = (long)(want % 1000000000LL) };
		rc = clock_settime(CLOCK_REALTIME, &ts);
	} else {
		rc = write_clock_file(rq->cfg->clock_file, want);
	}
	if (rc < 0) {
		char msg[96];
		snprintf(msg, sizeof(msg), "setting the clock: %s",
		    strerror(errno));
		agent_log("%s", msg);
		agent_reply_error(rq, 500, msg);
		return;
	}
	long long step_ms = (want - was) / 1000000LL;
	if (step_ms > 1000 || step_ms < -1000)
		agent_log("clock stepped by %lld ms", step_ms);
	int n = snprintf(body, sizeof(body), "{\"realtime_ns\":%lld,"
	    "\"step_ms\":%lld}", want, step_ms);
	agent_reply(rq, 200, body, (size_t)n);
}
