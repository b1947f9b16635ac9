/* test_sse.c - the CLI's server-sent events framing (events.c). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "../tap.h"

#define MAXF 16

struct got {
	int n;
	char id[MAXF][64];
	char type[MAXF][64];
	char data[MAXF][256];
	int stop_at;  /* return 7 from this frame (1-based), 0 never */
};

static int
collect(const char *id, const char *type, const char *data, size_t len,
    void *ctx)
{
	struct got *g = ctx;

	if (g->n < MAXF) {
		snprintf(g->id[g->n], sizeof(g->id[0]), "%s", id);
		snprintf(g->type[g->n], sizeof(g->type[0]), "%s", type);
		snprintf(g->data[g->n], sizeof(g->data[0]), "%.*s", (int)len, data);
	}
	g->n++;
	return g->n == g->stop_at ? 7 : 0;
}

/* Feed 'text' in pieces of 'step' bytes (0: all at once). */
static int
feed(struct got *g, const char *text, size_t step)
{
	struct sse_parser p;
	size_t n = strlen(text), off = 0;
	int rc = 0;

	sse_init(&p);
	while (off < n && rc == 0) {
		size_t k = step == 0 || n - off < step ? n - off : step;

		rc = sse_feed(&p, text + off, k, collect, g);
		off += k;
	}
	sse_release(&p);
	return rc;
}

static const char stream[] =
    ": connected\n\n"
    "id: 1\nevent: vm.created\ndata: {\"id\":1}\n\n"
    ": ping\n\n"
    "id: 2\nevent: vm.state\ndata: {\"id\":2,\"type\":\"vm.state\"}\n\n";

static int
test_frames(void)
{
	struct got g = { 0 };

	fail_unless(feed(&g, stream, 0) == 0, "feed failed");
	fail_unless(g.n == 2, "want 2 frames, got %d", g.n);
	fail_unless(strcmp(g.id[0], "1") == 0, "id %s", g.id[0]);
	fail_unless(strcmp(g.type[0], "vm.created") == 0, "type %s", g.type[0]);
	fail_unless(strcmp(g.data[0], "{\"id\":1}") == 0, "data %s", g.data[0]);
	fail_unless(strcmp(g.id[1], "2") == 0, "id %s", g.id[1]);
	fail_unless(strcmp(g.data[1], "{\"id\":2,\"type\":\"vm.state\"}") == 0,
	    "data %s", g.data[1]);
	return 0;
}

/* Frames split anywhere (one byte at a time, odd chunks) come out the
 * same. */
static int
test_split_anywhere(void)
{
	for (size_t step = 1; step <= 7; step++) {
		struct got g = { 0 };

		fail_unless(feed(&g, stream, step) == 0, "step %zu", step);
		fail_unless(g.n == 2, "step %zu: %d frames", step, g.n);
		fail_unless(strcmp(g.data[1], "{\"id\":2,\"type\":\"vm.state\"}") == 0,
		    "step %zu: data %s", step, g.data[1]);
		fail_unless(strcmp(g.type[1], "vm.state") == 0, "step %zu", step);
	}
	return 0;
}

static int
test_line_ends(void)
{
	struct got g = { 0 };

	/* CRLF, then bare CR, and a CRLF split between two feeds. */
	fail_unless(feed(&g, "id: 5\r\nevent: a\r\ndata: x\r\n\r\n"
	    "event: b\rdata: y\r\r", 0) == 0, "feed");
	fail_unless(g.n == 2, "%d frames", g.n);
	fail_unless(strcmp(g.type[0], "a") == 0 && strcmp(g.data[0], "x") == 0,
	    "%s %s", g.type[0], g.data[0]);
	fail_unless(strcmp(g.type[1], "b") == 0 && strcmp(g.data[1], "y") == 0,
	    "%s %s", g.type[1], g.data[1]);
	memset(&g, 0, sizeof(g));
	fail_unless(feed(&g, "data: z\r\n\r\n", 8) == 0, "split CRLF");
	fail_unless(g.n == 1 && strcmp(g.data[0], "z") == 0, "n %d", g.n);
	return 0;
}

static int
test_fields(void)
{
	struct got g = { 0 };

	fail_unless(feed(&g,
	    "data: one\ndata: two\n\n"         /* joined with \n */
	    "data:tight\n\n"                   /* no space after ':' */
	    "data:  two spaces\n\n"            /* only one space is dropped */
	    "retry: 10\nfoo: bar\ndata\n\n"    /* ignored fields; empty data */
	    "event: lonely\n\n"                /* no data: no frame */
	    "data: after\n\n", 0) == 0, "feed");
	fail_unless(g.n == 5, "%d frames", g.n);
	fail_unless(strcmp(g.data[0], "one\ntwo") == 0, "%s", g.data[0]);
	fail_unless(strcmp(g.data[1], "tight") == 0, "%s", g.data[1]);
	fail_unless(strcmp(g.data[2], " two spaces") == 0, "%s", g.data[2]);
	fail_unless(strcmp(g.data[3], "") == 0, "%s", g.data[3]);
	fail_unless(strcmp(g.type[3], "message") == 0, "%s", g.type[3]);
	/* The event name does not leak into the next frame. */
	fail_unless(strcmp(g.type[4], "message") == 0, "%s", g.type[4]);
	return 0;
}

static int
test_id_persists(void)
{
	struct got g = { 0 };

	fail_unless(feed(&g, "id: 9\ndata: a\n\ndata: b\n\nid: 10\ndata: c\n\n",
	    0) == 0, "feed");
	fail_unless(g.n == 3, "%d", g.n);
	fail_unless(strcmp(g.id[1], "9") == 0, "last id kept: %s", g.id[1]);
	fail_unless(strcmp(g.id[2], "10") == 0, "%s", g.id[2]);
	return 0;
}

static int
test_stop(void)
{
	struct got g = { 0 };

	g.stop_at = 1;
	fail_unless(feed(&g, stream, 0) == 7, "the callback's value comes back");
	fail_unless(g.n == 1, "nothing after a stop: %d", g.n);
	return 0;
}

static int
test_too_long(void)
{
	struct sse_parser p;
	size_t n = SSE_MAX + 16;
	char *big = malloc(n);
	struct got g = { 0 };
	int rc;

	fail_unless(big != NULL, "malloc");
	memset(big, 'a', n);
	memcpy(big, "data: ", 6);
	sse_init(&p);
	rc = sse_feed(&p, big, n, collect, &g);
	sse_release(&p);
	free(big);
	fail_unless(rc == -1, "an endless line is an error, got %d", rc);
	fail_unless(g.n == 0, "no frame");
	return 0;
}

int
main(void)
{
	tap_begin();
	RUN_TEST(test_frames);
	RUN_TEST(test_split_anywhere);
	RUN_TEST(test_line_ends);
	RUN_TEST(test_fields);
	RUN_TEST(test_id_persists);
	RUN_TEST(test_stop);
	RUN_TEST(test_too_long);
	return tap_end();
}
