/* server.c - the API socket: libmicrohttpd, bodies up to the payload limit,
 * Firecracker's log lines per request, the request log tests read, and the
 * hand-off of a started or shut-down guest to the main thread. */
#include "fake.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct upload {
	char *body;
	size_t len, cap;
	size_t total;		/* bytes sent, kept or not */
	enum post_cmd post;
};

static const char *
status_text(unsigned s)
{
	switch (s) {
	case 200: return "200 OK";
	case 204: return "204 No Content";
	case 400: return "400 Bad Request";
	default: return "500 Internal Server Error";
	}
}

/* "The API server received a Put "/drives/x" with body "{...}"." */
static void
log_received(const char *method, const char *url, const struct upload *up)
{
	char *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);

	if (f == NULL)
		return;
	/* Rust's Debug of the method: "Put". */
	fprintf(f, "The API server received a %c", method[0]);
	for (const char *m = method[0] ? method + 1 : method; *m; m++)
		fputc(tolower((unsigned char)*m), f);
	fputs(" request on ", f);
	rust_debug_str(f, url, strlen(url));
	if (up->len > 0) {
		fputs(" with body ", f);
		rust_debug_str(f, up->body, up->len);
	}
	fputc('.', f);
	fclose(f);
	LOG_INFO("%s", line);
	free(line);
}

static void
log_answered(const struct request *rq)
{
	json_t *rb;

	if (rq->status < 400) {
		LOG_INFO("The request was executed successfully. Status code: %s.",
		    status_text(rq->status));
		return;
	}
	rb = json_loads(rq->reply, 0, NULL);
	LOG_ERROR("Received Error. Status code: %s. Message: %s",
	    status_text(rq->status),
	    rb ? json_string_value(json_object_get(rb, "fault_message")) : "");
	json_decref(rb);
}

/* One JSON line per call to BANGER_FAKE_FC_LOG. */
static void
log_request_json(const struct request *rq, const struct upload *up)
{
	struct timespec ts;
	json_t *o, *rb, *body;
	char *line;

	if (fc.reqlog_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	body = up->len ? json_stringn(up->body, up->len) : json_null();
	o = json_pack("{s:f,s:s,s:s,s:s,s:o,s:i}",
	    "ts", (double)ts.tv_sec + (double)ts.tv_nsec / 1e9,
	    "id", fc.id, "method", rq->method, "path", rq->url,
	    "body", body ? body : json_string("<invalid utf-8>"),
	    "status", (int)rq->status);
	if (o == NULL)
		return;
	if (rq->reply != NULL && rq->status >= 400) {
		rb = json_loads(rq->reply, 0, NULL);
		if (json_object_get(rb, "fault_message") != NULL)
			json_object_set(o, "fault_message",
			    json_object_get(rb, "fault_message"));
		json_decref(rb);
	}
	line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (line == NULL)
		return;
	size_t n = strlen(line);
	line[n] = '\n';		/* json_dumps' NUL: written as one line */
	write_all_fd(fc.reqlog_fd, line, n + 1);
	free(line);
}

/* Keep what fits in the payload limit; count all of it. */
static int
upload_add(struct upload *up, const char *data, size_t n)
{
	size_t cap;
	char *nb;

	up->total += n;
	if (up->total > fc.payload_limit)
		return 0;
	if (up->len + n + 1 > up->cap) {
		cap = up->cap ? up->cap * 2 : 1024;
		while (cap < up->len + n + 1)
			cap *= 2;
		if ((nb = realloc(up->body, cap)) == NULL)
			return -1;
		up->body = nb;
		up->cap = cap;
	}
	memcpy(up->body + up->len, data, n);
	up->len += n;
	up->body[up->len] = '\0';
	return 0;
}

static enum MHD_Result
queue_reply(struct MHD_Connection *conn, struct request *rq)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(rq->reply ? strlen(rq->reply) : 0,
	    rq->reply ? rq->reply : (void *)"",
	    rq->reply ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(rq->reply);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Server", "Firecracker API");
	MHD_add_response_header(resp, "Connection", "keep-alive");
	if (rq->reply != NULL)
		MHD_add_response_header(resp, "Content-Type", "application/json");
	if (rq->deprecation)
		MHD_add_response_header(resp, "Deprecation", "true");
	ret = MHD_queue_response(conn, rq->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *data,
    size_t *data_size, void **con_cls)
{
	struct upload *up = *con_cls;
	struct request rq = { .method = method, .url = url, .status = 500 };

	(void)cls;
	(void)version;
	log_thread_name("fc_api");
	if (up == NULL) {
		if ((up = calloc(1, sizeof(*up))) == NULL)
			return MHD_NO;
		*con_cls = up;
		return MHD_YES;
	}
	if (*data_size) {
		if (upload_add(up, data, *data_size) < 0)
			return MHD_NO;
		*data_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&fc.mu);
	log_received(method, url, up);
	if (up->total > fc.payload_limit)
		reply_fault(&rq, "Request payload with size %zu is larger than the "
		    "limit of %zu allowed by server.\nAll previous unanswered "
		    "requests will be dropped.", up->total, fc.payload_limit);
	else
		routes_dispatch(&rq, up->body ? up->body : "", up->len);
	log_answered(&rq);
	log_request_json(&rq, up);
	pthread_mutex_unlock(&fc.mu);
	up->post = rq.post;
	return queue_reply(conn, &rq);
}

/* After the reply is out: tell the main thread what the call started. */
static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct upload *up = *con_cls;
	char c;

	(void)cls;
	(void)conn;
	(void)toe;
	if (up == NULL)
		return;
	if (up->post != POST_NONE && fc.cmd_pipe[1] >= 0) {
		c = (char)up->post;
		while (write(fc.cmd_pipe[1], &c, 1) < 0 && errno == EINTR)
			;
	}
	free(up->body);
	free(up);
	*con_cls = NULL;
}

int
server_start(int lfd)
{
	fc.mhd = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD,
	    0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_LISTEN_SOCKET, lfd,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)131072,
	    MHD_OPTION_END);
	return fc.mhd ? 0 : -1;
}

void
server_stop(void)
{
	if (fc.mhd != NULL) {
		MHD_stop_daemon(fc.mhd);
		fc.mhd = NULL;
	}
}
