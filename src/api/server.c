/* server.c - libmicrohttpd setup, peer credentials, bodies, dispatch. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"

struct api_server {
	struct MHD_Daemon *mhd;
	struct core *core;
	gid_t banger_gid;
	bool have_group;
};

struct req_ctx {
	char *body;
	size_t len, cap;
	bool too_big;
	/* a route with an api_upload: its state, or the error its begin
	 * gave (replied once the body has been read) */
	const struct api_route *upload;
	struct api_req req;
	void *state;
	bool failed, replied;
	struct bn_err err;
	/* api_req_on_end */
	void (*end_fn)(void *);
	void *end_arg;
	/* for the metrics: when the request began, its method and route */
	long long t0_us;
	char method[8];
	const char *route;     /* the matched route's pattern (static) */
};

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
api_req_on_end(struct api_req *r, void (*fn)(void *), void *arg)
{
	struct req_ctx *rc = r->ctx;

	rc->end_fn = fn;
	rc->end_arg = arg;
}

void *
api_ctx_take(void *con_cls)
{
	struct req_ctx *rc = con_cls;
	void *arg = rc != NULL ? rc->end_arg : NULL;

	if (rc != NULL)
		rc->end_fn = NULL;
	return arg;
}

/* Root, our own uid, and members of group "banger" may talk to us. */
static bool
peer_allowed(struct api_server *s, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED,
	    &cred, &len) < 0)
		return false;
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	if (!s->have_group)
		return false;
	if (cred.gid == s->banger_gid)
		return true;
	/* Supplementary groups of the peer process. */
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)cred.pid);
	FILE *f = fopen(path, "re");
	bool ok = false;
	if (f == NULL)
		return false;
	while (!ok && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		char *save = NULL;
		for (char *tok = strtok_r(line + 7, " \t\n", &save); tok;
		    tok = strtok_r(NULL, " \t\n", &save))
			if ((gid_t)strtoul(tok, NULL, 10) == s->banger_gid)
				ok = true;
	}
	fclose(f);
	return ok;
}

const struct api_route *
api_route_match(const char *method, const char *path, char *param,
    size_t paramsz, bool *ret_path_matched, char *allow, size_t allowsz)
{
	int n;
	const struct api_route *routes = api_routes(&n);
	const struct api_route *found = NULL;
	size_t alen = 0;

	*ret_path_matched = false;
	if (allow && allowsz)
		allow[0] = '\0';
	for (int i = 0; i < n; i++) {
		const char *p = routes[i].pattern, *q = path;
		char val[256];
		size_t vlen = 0;
		bool ok = true;

		val[0] = '\0';
		while (*p && ok) {
			if (*p == '{') {
				/* A parameter is one non-empty path segment;
				 * several are joined with '/'. */
				const char *end = strchr(q, '/');
				size_t seg = end ? (size_t)(end - q) : strlen(q);
				size_t sep = vlen > 0 ? 1 : 0;
				if (seg == 0 || vlen + sep + seg >= sizeof(val)) {
					ok = false;
					break;
				}
				if (sep)
					val[vlen] = '/';
				memcpy(val + vlen + sep, q, seg);
				vlen += sep + seg;
				val[vlen] = '\0';
				q += seg;
				p = strchr(p, '}') + 1;
			} else if (*p++ != *q++) {
				ok = false;
			}
		}
		if (!ok || *q != '\0')
			continue;
		*ret_path_matched = true;
		if (allow && alen < allowsz)
			alen += (size_t)snprintf(allow + alen, allowsz - alen, "%s%s",
			    alen ? ", " : "", routes[i].method);
		if (strcmp(routes[i].method, method) == 0 && found == NULL) {
			found = &routes[i];
			if (param)
				snprintf(param, paramsz, "%.*s", (int)vlen, val);
		}
	}
	return found;
}

static bool
content_type_ok(struct MHD_Connection *conn)
{
	const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);

	/* curl -d sends form-urlencoded unless told otherwise; the body is
	 * still read as JSON, so accept it along with application/json. */
	return ct == NULL || strncasecmp(ct, "application/json", 16) == 0 ||
	    strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
}

static enum MHD_Result
dispatch(struct api_server *s, struct MHD_Connection *conn, const char *url,
    const char *method, struct req_ctx *rc)
{
	struct bn_err err = { 0 };
	struct api_req r = { .conn = conn, .core = s->core, .ctx = rc,
		.method = method,
		.path = url, .body = rc->body, .len = rc->len };
	char allow[128];
	bool path_matched;
	const struct api_route *route;

	if (rc->too_big) {
		bn_fail(&err, BN_ETOOBIG, 0, "request body is larger than %d bytes",
		    API_MAX_BODY);
		return api_reply_error(conn, &err);
	}
	route = api_route_match(method, url, r.param_buf, sizeof(r.param_buf),
	    &path_matched, allow, sizeof(allow));
	if (route == NULL && path_matched) {
		struct MHD_Response *resp;
		enum MHD_Result ret;
		json_t *j;
		char *text;

		bn_fail(&err, BN_EMETHOD, 0, "method %.16s is not allowed on %.128s",
		    method, url);
		bn_err_detail(&err, "allow", allow);
		j = err_to_json(&err);
		text = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		resp = MHD_create_response_from_buffer(strlen(text), text,
		    MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    "application/json");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
		ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (route == NULL) {
		bn_fail(&err, BN_EROUTE, 0, "no route for %.16s %.128s", method, url);
		bn_err_hint(&err, "see openapi.yaml for the routes bangerd serves");
		return api_reply_error(conn, &err);
	}
	if (rc->len > 0 && !content_type_ok(conn)) {
		bn_fail(&err, BN_EMEDIA, 0, "request bodies must be application/json");
		return api_reply_error(conn, &err);
	}
	r.param = r.param_buf;
	rc->route = route->pattern;
	return route->fn(&r);
}

/* The first call of a request to a route with an api_upload: start it
 * (a refusal is kept and replied once the body has been read). */
static bool
upload_begin(struct api_server *s, struct MHD_Connection *conn,
    const char *url, const char *method, struct req_ctx *rc)
{
	bool path_matched;
	char allow[128], param[sizeof(rc->req.param_buf)];
	const struct api_route *route = api_route_match(method, url, param,
	    sizeof(param), &path_matched, allow, sizeof(allow));

	if (route == NULL || route->upload == NULL)
		return false;
	rc->upload = route;
	rc->route = route->pattern;
	rc->req = (struct api_req){ .conn = conn, .core = s->core,
		.method = method, .path = url };
	memcpy(rc->req.param_buf, param, sizeof(param));
	rc->req.param = rc->req.param_buf;
	if (!peer_allowed(s, conn)) {
		bn_fail(&rc->err, BN_EFORBIDDEN, 0, "permission denied: only root, "
		    "the daemon's user and members of group 'banger' may use this "
		    "socket");
		rc->failed = true;
	} else if (route->upload->begin(&rc->req, &rc->state, &rc->err) < 0) {
		rc->failed = true;
	}
	return true;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct api_server *s = cls;
	struct req_ctx *rc = *req_cls;

	(void)version;
	if (rc == NULL) {
		/* First call: headers only.  Replying now would make MHD close
		 * the connection, so only set up (keep-alive stays fast). */
		rc = xcalloc(1, sizeof(*rc));
		*req_cls = rc;
		rc->t0_us = now_us();
		snprintf(rc->method, sizeof(rc->method), "%s", method);
		if (upload_begin(s, conn, url, method, rc))
			return MHD_YES;
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY)
			rc->too_big = true;
		return MHD_YES;
	}
	if (rc->upload != NULL) {
		if (*upload_data_size > 0) {
			if (!rc->failed)
				rc->upload->upload->piece(rc->state, upload_data,
				    *upload_data_size);
			*upload_data_size = 0;
			return MHD_YES;
		}
		rc->replied = true;
		if (rc->failed)
			return api_reply_error(conn, &rc->err);
		enum MHD_Result ret = rc->upload->upload->end(&rc->req, rc->state);
		rc->state = NULL;
		return ret;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		if (!rc->too_big && rc->len + n > API_MAX_BODY) {
			rc->too_big = true;
			free(rc->body);
			rc->body = NULL;
			rc->len = rc->cap = 0;
		}
		if (!rc->too_big) {
			if (rc->len + n + 1 > rc->cap) {
				rc->cap = (rc->len + n + 1) * 2;
				if (rc->cap > API_MAX_BODY + 1)
					rc->cap = API_MAX_BODY + 1;
				char *nb = realloc(rc->body, rc->cap);
				if (nb == NULL)
					fatalx("out of memory");
				rc->body = nb;
			}
			memcpy(rc->body + rc->len, upload_data, n);
			rc->len += n;
			rc->body[rc->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!peer_allowed(s, conn)) {
		struct bn_err err;
		bn_fail(&err, BN_EFORBIDDEN, 0, "permission denied: only root, the "
		    "daemon's user and members of group 'banger' may use this socket");
		bn_err_hint(&err, "add your user to the 'banger' group");
		return api_reply_error(conn, &err);
	}
	return dispatch(s, conn, url, method, rc);
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct api_server *s = cls;
	struct req_ctx *rc = *req_cls;

	(void)conn;
	(void)toe;
	if (rc == NULL)
		return;
	core_metrics_api(s->core, rc->method, rc->route != NULL ? rc->route :
	    "unmatched", now_us() - rc->t0_us);
	if (rc->upload != NULL && rc->state != NULL)
		rc->upload->upload->abort(rc->state);
	if (rc->end_fn != NULL)
		rc->end_fn(rc->end_arg);
	free(rc->body);
	free(rc);
	*req_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("httpd: %s", buf);
}

int
api_server_start(struct core *c, int listen_fd, struct api_server **ret,
    struct bn_err *err)
{
	struct api_server *s = xcalloc(1, sizeof(*s));
	s->core = c;
	s->have_group = banger_group(&s->banger_gid);
	s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ERROR_LOG |
	    MHD_ALLOW_UPGRADE,
	    0, NULL, NULL, access_cb, s,
	    MHD_OPTION_LISTEN_SOCKET, listen_fd,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024),
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_END);
	if (s->mhd == NULL) {
		free(s);
		return bn_fail(err, BN_ESYS, 0, "could not start the HTTP server");
	}
	*ret = s;
	return 0;
}

void
api_server_stop(struct api_server *s)
{
	if (s == NULL)
		return;
	/* Upgraded connections (connect.c) relay in their threads until
	 * ended; MHD waits for them. */
	core_forwards_stop(s->core);
	MHD_stop_daemon(s->mhd);
	free(s);
}
