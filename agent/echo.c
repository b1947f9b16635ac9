/* echo.c - the transport's own test routes (served only with
 * --test-routes).  POST /echo: the request body comes back as a stream of
 * ?chunk=N byte pieces with ?delay_ms=M between them, so a test sees a
 * body read within its limit, a chunked reply, and other connections
 * served while a stream is slow.  POST /sink: a body of any size read as
 * it comes (a stream_body route), answered with its size and its 64-bit
 * FNV-1a hash, {"bytes": N, "fnv1a": "16 hex digits"}, or 400 with why
 * the body could not be read. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <stdio.h>
#include <time.h>

void
echo_route(struct agent_request *rq)
{
	long chunk = 1024, delay_ms = 0;

	if (agent_query_long(rq->query, "chunk", 1, AGENT_MAX_BODY, &chunk) < 0 ||
	    agent_query_long(rq->query, "delay_ms", 0, 1000, &delay_ms) < 0) {
		agent_reply_error(rq, 400, "chunk must be 1..65536 and delay_ms "
		    "0..1000");
		return;
	}
	if (agent_stream_begin(rq, 200, "application/octet-stream") < 0)
		return;
	for (size_t off = 0; off < rq->body_len; off += (size_t)chunk) {
		if (off > 0 && delay_ms > 0) {
			struct timespec ts = { .tv_sec = delay_ms / 1000,
				.tv_nsec = (delay_ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
		size_t n = rq->body_len - off;
		if (n > (size_t)chunk)
			n = (size_t)chunk;
		if (agent_stream_write(rq, rq->body + off, n) < 0)
			return;
	}
	agent_stream_end(rq);
}

void
sink_route(struct agent_request *rq)
{
	unsigned long long bytes = 0, h = 0xcbf29ce484222325ULL;
	unsigned char buf[32 * 1024];
	ssize_t n;
	char out[96];

	while ((n = agent_body_read(rq, buf, sizeof(buf))) > 0) {
		bytes += (unsigned long long)n;
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ULL;
	}
	if (n < 0) {
		agent_reply_error(rq, 400, agent_body_error(rq));
		return;
	}
	int len = snprintf(out, sizeof(out), "{\"bytes\":%llu,\"fnv1a\":"
	    "\"%016llx\"}", bytes, h);
	agent_reply(rq, 200, out, (size_t)len);
}
