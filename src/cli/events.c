/* events.c - following bangerd's event stream (GET /v1/events, SSE).
 *
 * Two layers: sse_* frames bytes into (id, type, data) without any I/O;
 * events_follow() runs one stream at a time on a curl multi handle, so it
 * can wait on the stream, a cancel fd and an idle timer together, parses
 * each frame's data into an Event and hands it to the caller outside of
 * libcurl's callbacks.  A dropped stream is reopened with Last-Event-ID.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define RETRY_FIRST_MS      200
#define RETRY_MAX_MS        3200
#define POLL_MS             500
#define ERRBODY_MAX         (64u << 10)

/* ---- SSE framing ---- */

void
sse_init(struct sse_parser *p)
{
	memset(p, 0, sizeof(*p));
}

void
sse_release(struct sse_parser *p)
{
	free(p->line);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

/* Append n bytes to a growable buffer, keeping it NUL-terminated. */
static int
buf_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (n > SSE_MAX - *len)
		return -1;
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 256;

		while (c < *len + n + 1)
			c *= 2;
		*buf = xrealloc(*buf, c);
		*cap = c;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

/* One complete line (without its end).  Returns like sse_feed. */
static int
sse_line(struct sse_parser *p, const char *line, size_t len, sse_frame_fn fn,
    void *ctx)
{
	const char *colon, *value;
	size_t flen, vlen;

	if (len == 0) {
		/* Dispatch.  A frame without data lines is no event. */
		int rc = 0;

		if (p->has_data) {
			/* The data buffer ends in the '\n' after its last line. */
			p->data_len--;
			p->data[p->data_len] = '\0';
			rc = fn(p->last_id, p->event[0] ? p->event : "message",
			    p->data, p->data_len, ctx);
		}
		p->data_len = 0;
		p->has_data = false;
		p->event[0] = '\0';
		return rc;
	}
	if (line[0] == ':')
		return 0;  /* comment: ": connected", ": ping" */
	colon = memchr(line, ':', len);
	if (colon != NULL) {
		flen = (size_t)(colon - line);
		value = colon + 1;
		vlen = len - flen - 1;
		if (vlen > 0 && value[0] == ' ') {
			value++;
			vlen--;
		}
	} else {
		flen = len;
		value = "";
		vlen = 0;
	}
	if (flen == 4 && memcmp(line, "data", 4) == 0) {
		if (buf_append(&p->data, &p->data_len, &p->data_cap, value,
		    vlen) < 0 ||
		    buf_append(&p->data, &p->data_len, &p->data_cap, "\n", 1) < 0)
			return -1;
		p->has_data = true;
	} else if (flen == 5 && memcmp(line, "event", 5) == 0) {
		if (vlen >= sizeof(p->event))
			vlen = sizeof(p->event) - 1;
		memcpy(p->event, value, vlen);
		p->event[vlen] = '\0';
	} else if (flen == 2 && memcmp(line, "id", 2) == 0) {
		/* The spec ignores ids containing NUL; ours are integers. */
		if (memchr(value, '\0', vlen) == NULL &&
		    vlen < sizeof(p->last_id)) {
			memcpy(p->last_id, value, vlen);
			p->last_id[vlen] = '\0';
		}
	}
	/* "retry:" and unknown fields are ignored. */
	return 0;
}

int
sse_feed(struct sse_parser *p, const char *buf, size_t n, sse_frame_fn fn,
    void *ctx)
{
	size_t i = 0;

	while (i < n) {
		char ch = buf[i];

		if (p->skip_lf) {
			p->skip_lf = false;
			if (ch == '\n') {
				i++;
				continue;
			}
		}
		if (ch == '\r' || ch == '\n') {
			int rc;

			p->skip_lf = (ch == '\r');
			rc = sse_line(p, p->line ? p->line : "", p->line_len, fn,
			    ctx);
			p->line_len = 0;
			i++;
			if (rc != 0)
				return rc;
			continue;
		}
		/* Take the run of bytes up to the next line end at once. */
		size_t j = i;
		while (j < n && buf[j] != '\r' && buf[j] != '\n')
			j++;
		if (buf_append(&p->line, &p->line_len, &p->line_cap, buf + i,
		    j - i) < 0)
			return -1;
		i = j;
	}
	return 0;
}

/* ---- the stream ---- */

enum end {
	END_NONE,
	END_STOPPED,    /* on_event asked to stop */
	END_CANCELLED,  /* cancel_fd or SIGINT */
	END_DROPPED,    /* transport failure or end of stream: reconnect */
	END_REJECTED,   /* bangerd answered with an error status */
	END_BROKEN      /* unparseable stream: reconnect */
};

struct stream {
	const struct events_opts *o;
	const char *socket_path;
	struct sse_parser sse;
	long status;              /* HTTP status, 0 until the first byte */
	bool subscribed;          /* a 200 arrived on this connection */
	bool announced;           /* EVENTS_CONNECTED sent for it */
	char *errbody;            /* body of an error reply */
	size_t errlen, errcap;
	struct queued {
		json_t *ev;
		char id[64];
	} *queue;                 /* Events parsed, not yet handed over */
	size_t nq, capq;
	bool ever_subscribed;
	char last_id[64];         /* of the last Event handed over */
	long long last_byte_ms;
	bool bad_frame;
	char why[CURL_ERROR_SIZE + 64];
};

static int
on_frame(const char *id, const char *type, const char *data, size_t len,
    void *ctx)
{
	struct stream *st = ctx;
	json_error_t jerr;
	json_t *ev;

	(void)type;
	ev = json_loadb(data, len, 0, &jerr);
	if (!json_is_object(ev)) {
		/* bangerd only sends Events; anything else means the stream is
		 * not what we think it is.  Reopen it from the last good id. */
		if (ev != NULL)
			json_decref(ev);
		snprintf(st->why, sizeof(st->why), "bangerd sent an event that is "
		    "not a JSON object (%s)", jerr.text);
		st->bad_frame = true;
		return 1;
	}
	if (st->nq == st->capq) {
		st->capq = st->capq ? st->capq * 2 : 8;
		st->queue = xrealloc(st->queue, st->capq * sizeof(*st->queue));
	}
	/* Keep the id with the event: a reconnect resumes after the last
	 * one handed over, not the last one parsed. */
	st->queue[st->nq].ev = ev;
	snprintf(st->queue[st->nq].id, sizeof(st->queue[st->nq].id), "%s", id);
	st->nq++;
	return 0;
}

static size_t
on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct stream *st = userdata;
	size_t n = size * nmemb;

	st->last_byte_ms = time_mono_ms();
	if (st->status != 200) {
		if (n > ERRBODY_MAX - st->errlen)
			n = ERRBODY_MAX - st->errlen;
		if (n > 0) {
			if (st->errlen + n + 1 > st->errcap) {
				st->errcap = st->errlen + n + 1;
				st->errbody = xrealloc(st->errbody, st->errcap);
			}
			memcpy(st->errbody + st->errlen, data, n);
			st->errlen += n;
			st->errbody[st->errlen] = '\0';
		}
		return size * nmemb;
	}
	st->subscribed = true;
	if (sse_feed(&st->sse, data, n, on_frame, st) != 0) {
		if (!st->bad_frame)
			snprintf(st->why, sizeof(st->why), "an event stream line "
			    "longer than %u bytes", SSE_MAX);
		st->bad_frame = true;
		return 0;  /* CURLE_WRITE_ERROR ends this connection */
	}
	return n;
}

/* The status line arrives before any body byte. */
static size_t
on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct stream *st = userdata;
	size_t n = size * nmemb;

	st->last_byte_ms = time_mono_ms();
	if (n > 9 && strncmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', n);

		if (sp != NULL)
			st->status = strtol(sp + 1, NULL, 10);
	}
	return n;
}

/* Hand over the queued Events.  Returns true when on_event said stop. */
static bool
dispatch(struct stream *st)
{
	const struct events_opts *o = st->o;
	size_t i;
	bool stop = false;

	for (i = 0; i < st->nq; i++) {
		json_t *ev = st->queue[i].ev;

		/* After a stop the rest is dropped, not handed over. */
		if (!stop) {
			if (st->queue[i].id[0] != '\0')
				memcpy(st->last_id, st->queue[i].id,
				    sizeof(st->last_id));
			if (o->on_event(ev, o->ctx) != 0)
				stop = true;
		}
		json_decref(ev);
	}
	st->nq = 0;
	return stop;
}

static bool
cancelled(const struct events_opts *o, short revents)
{
	return cli_interrupted || (o->cancel_fd >= 0 && (revents & POLLIN));
}

/* Why a connection ended, in words (curl only says "Couldn't
 * connect"). */
static void
drop_reason(struct stream *st, CURLcode rc, const char *errbuf)
{
	int e = 0;

	if (rc == CURLE_OK) {
		snprintf(st->why, sizeof(st->why), "bangerd closed the stream");
		return;
	}
	if (rc == CURLE_COULDNT_CONNECT)
		e = client_connect_errno(st->socket_path);
	if (e != 0) {
		snprintf(st->why, sizeof(st->why), "cannot connect to %s: %s",
		    st->socket_path, strerror(e));
		return;
	}
	snprintf(st->why, sizeof(st->why), "%s",
	    errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* Run one connection until it ends. */
static enum end
run_connection(struct stream *st, CURLM *multi, CURL *easy)
{
	const struct events_opts *o = st->o;
	char errbuf[CURL_ERROR_SIZE];
	enum end end = END_NONE;

	errbuf[0] = '\0';
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
	curl_multi_add_handle(multi, easy);
	st->last_byte_ms = time_mono_ms();
	while (end == END_NONE) {
		struct curl_waitfd wfd = { o->cancel_fd, CURL_WAIT_POLLIN, 0 };
		int running = 0, left;
		CURLMsg *msg;
		CURLMcode mc;

		mc = curl_multi_perform(multi, &running);
		if (st->subscribed && !st->announced) {
			st->announced = true;
			if (o->on_status != NULL)
				o->on_status(EVENTS_CONNECTED, st->ever_subscribed ?
				    "reconnected" : "connected", 0, 0, o->ctx);
			st->ever_subscribed = true;
		}
		if (dispatch(st)) {
			end = END_STOPPED;
			break;
		}
		if (mc != CURLM_OK) {
			snprintf(st->why, sizeof(st->why), "%s",
			    curl_multi_strerror(mc));
			end = END_DROPPED;
			break;
		}
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURLcode rc = msg->data.result;

			if (st->bad_frame)
				end = END_BROKEN;
			else if (st->status != 0 && st->status != 200 &&
			    (rc == CURLE_OK || rc == CURLE_PARTIAL_FILE))
				end = END_REJECTED;
			else {
				end = END_DROPPED;
				drop_reason(st, rc, errbuf);
			}
		}
		if (end != END_NONE)
			break;
		if (running == 0) {
			snprintf(st->why, sizeof(st->why), "the transfer ended");
			end = END_DROPPED;
			break;
		}
		if (time_mono_ms() - st->last_byte_ms > EVENTS_IDLE_S * 1000LL) {
			snprintf(st->why, sizeof(st->why), "no data (not even a "
			    "keep-alive) for %d s", EVENTS_IDLE_S);
			end = END_DROPPED;
			break;
		}
		if (cli_interrupted) {
			end = END_CANCELLED;
			break;
		}
		mc = curl_multi_poll(multi, o->cancel_fd >= 0 ? &wfd : NULL,
		    o->cancel_fd >= 0 ? 1 : 0, POLL_MS, NULL);
		/* EINTR is not an error here (curl turns it into CURLM_OK). */
		if (mc != CURLM_OK) {
			snprintf(st->why, sizeof(st->why), "%s",
			    curl_multi_strerror(mc));
			end = END_DROPPED;
		} else if (cancelled(o, wfd.revents)) {
			end = END_CANCELLED;
		}
	}
	curl_multi_remove_handle(multi, easy);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
	/* Events parsed together with a failure are still good. */
	if (end == END_DROPPED || end == END_BROKEN)
		if (dispatch(st))
			end = END_STOPPED;
	return end;
}

/* bangerd's error reply: report it like any API error. */
static int
rejected(struct cli *cli, struct stream *st)
{
	const struct events_opts *o = st->o;
	json_error_t jerr;
	json_t *body = st->errlen ? json_loadb(st->errbody, st->errlen, 0, &jerr) :
	    NULL;
	char msg[512];
	int rc;

	(void)cli;
	if (json_is_object(body) && jstr(body, WIRE_MESSAGE) != NULL) {
		out_clean(jstr(body, WIRE_MESSAGE), msg, sizeof(msg));
		rc = api_exit_status(jstr(body, WIRE_CODE), st->status);
		if (!o->silent)
			api_report_error(body, st->status);
	} else {
		snprintf(msg, sizeof(msg), "bangerd answered HTTP %ld to GET "
		    "/v1/events", st->status);
		rc = api_exit_status(NULL, st->status);
		if (!o->silent) {
			out_status_clear();
			fprintf(stderr, "banger: %s\n", msg);
		}
	}
	if (body != NULL)
		json_decref(body);
	if (o->on_status != NULL)
		o->on_status(EVENTS_FAILED, msg, 0, 0, o->ctx);
	return rc;
}

/* Wait ms for a retry unless cancelled first.  True when cancelled. */
static bool
backoff(const struct events_opts *o, int ms)
{
	long long until = time_mono_ms() + ms;

	for (;;) {
		long long left = until - time_mono_ms();
		struct pollfd pfd = { o->cancel_fd, POLLIN, 0 };

		if (cli_interrupted)
			return true;
		if (left <= 0)
			return false;
		if (left > POLL_MS)
			left = POLL_MS;
		/* fd -1 makes poll() a plain sleep that signals interrupt. */
		if (poll(&pfd, 1, (int)left) == 1 && (pfd.revents & POLLIN))
			return true;
	}
}

static char *
events_url(CURL *easy, const struct events_opts *o)
{
	char *types = NULL, *vm = NULL, *url;

	if (o->types != NULL)
		types = curl_easy_escape(easy, o->types, 0);
	if (o->vm != NULL)
		vm = curl_easy_escape(easy, o->vm, 0);
	if ((o->types != NULL && types == NULL) || (o->vm != NULL && vm == NULL)) {
		fputs("banger: out of memory\n", stderr);
		abort();
	}
	url = xasprintf("http://localhost/v1/events%s%s%s%s%s",
	    (types || vm) ? "?" : "", types ? "type=" : "", types ? types : "",
	    (types && vm) ? "&" : "", vm ? "vm=" : "");
	if (vm != NULL) {
		char *full = xasprintf("%s%s", url, vm);

		free(url);
		url = full;
	}
	curl_free(types);
	curl_free(vm);
	return url;
}

int
events_follow(struct cli *cli, const struct events_opts *o)
{
	struct stream st;
	CURLM *multi = NULL;
	CURL *easy = NULL;
	char *url = NULL;
	int failures = 0, rc = CLI_EXIT_OK;
	int max = o->max_retries == 0 ? EVENTS_RETRIES : o->max_retries;

	memset(&st, 0, sizeof(st));
	st.o = o;
	if (cli->socket_path[0] == '\0')
		cli_socket_resolve(cli);
	st.socket_path = cli->socket_path;
	multi = curl_multi_init();
	easy = curl_easy_init();
	if (multi == NULL || easy == NULL) {
		if (!o->silent)
			fputs("banger: cannot initialize libcurl\n", stderr);
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	url = events_url(easy, o);
	if (o->since != NULL)
		snprintf(st.last_id, sizeof(st.last_id), "%s", o->since);

	for (;;) {
		struct curl_slist *hdrs = NULL;
		char idhdr[96];
		bool was_subscribed;
		enum end end;

		hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
		if (st.last_id[0] != '\0') {
			snprintf(idhdr, sizeof(idhdr), "Last-Event-ID: %s",
			    st.last_id);
			hdrs = curl_slist_append(hdrs, idhdr);
		}
		if (hdrs == NULL) {
			fputs("banger: out of memory\n", stderr);
			abort();
		}
		curl_easy_reset(easy);
		client_curl_setup(easy, cli->socket_path);
		curl_easy_setopt(easy, CURLOPT_URL, url);
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
		curl_easy_setopt(easy, CURLOPT_WRITEDATA, &st);
		curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(easy, CURLOPT_HEADERDATA, &st);

		sse_release(&st.sse);
		sse_init(&st.sse);
		st.status = 0;
		st.subscribed = st.announced = st.bad_frame = false;
		st.errlen = 0;
		st.why[0] = '\0';

		end = run_connection(&st, multi, easy);
		curl_slist_free_all(hdrs);
		was_subscribed = st.subscribed;

		if (end == END_STOPPED) {
			rc = CLI_EXIT_OK;
			break;
		}
		if (end == END_CANCELLED) {
			rc = CLI_EXIT_INTERRUPTED;
			break;
		}
		if (end == END_REJECTED) {
			rc = rejected(cli, &st);
			break;
		}
		/* Dropped: reconnect.  A connection that got through starts
		 * the count again, unless it broke on a bad frame, which the
		 * replay would only bring back. */
		if (was_subscribed && end != END_BROKEN)
			failures = 0;
		if (max >= 0 && failures >= max) {
			char msg[sizeof(st.why) + 128];

			snprintf(msg, sizeof(msg), "lost the event stream: %s; "
			    "gave up after %d reconnect attempts", st.why, failures);
			if (o->on_status != NULL)
				o->on_status(EVENTS_FAILED, msg, failures, 0, o->ctx);
			if (!o->silent) {
				char log[4096];

				out_status_clear();
				autostart_log_path(cli->socket_path, log, sizeof(log));
				fprintf(stderr, "banger: %s\n"
				    "hint: is bangerd running at %s? if banger started "
				    "it, its log is %s\n", msg, cli->socket_path, log);
			}
			rc = CLI_EXIT_UNREACHABLE;
			break;
		}
		failures++;
		int delay = RETRY_FIRST_MS;
		for (int k = 1; k < failures && delay < RETRY_MAX_MS; k++)
			delay *= 2;
		if (delay > RETRY_MAX_MS)
			delay = RETRY_MAX_MS;
		if (o->on_status != NULL)
			o->on_status(EVENTS_DISCONNECTED, st.why, failures, delay,
			    o->ctx);
		if (backoff(o, delay)) {
			rc = CLI_EXIT_INTERRUPTED;
			break;
		}
	}
out:
	for (size_t i = 0; i < st.nq; i++)
		json_decref(st.queue[i].ev);
	free(st.queue);
	free(st.errbody);
	sse_release(&st.sse);
	free(url);
	if (easy != NULL)
		curl_easy_cleanup(easy);
	if (multi != NULL)
		curl_multi_cleanup(multi);
	return rc;
}
