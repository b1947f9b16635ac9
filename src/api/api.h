/* api.h - the HTTP API: libmicrohttpd on a listening AF_UNIX socket. */
#ifndef BANGER_API_H
#define BANGER_API_H

#include <microhttpd.h>
#include <jansson.h>

#include "common/err.h"
#include "core/core.h"

#define API_MAX_BODY (1 << 20)

struct api_server;

/* Serve on listen_fd (already bound and listening; ownership passes). */
int api_server_start(struct core *c, int listen_fd, struct api_server **ret,
    struct bn_err *err);
void api_server_stop(struct api_server *s);

/* ---- used by the handlers (api/routes.c) ---- */

struct api_req {
	struct MHD_Connection *conn;
	struct core *core;
	const char *method;
	const char *path;
	char *body;
	size_t len;
	/* path parameters from the route pattern, joined with '/' when the
	 * pattern has several ("web/s1" for /v1/vms/{name}/snapshots/{snap}) */
	const char *param;
	char param_buf[256];
	void *ctx;          /* server.c's state of the request */
};

/* Run fn(arg) when the request ends, unless api_ctx_take() took it back
 * first (a handler's state that an upgrade handler may never get). */
void api_req_on_end(struct api_req *r, void (*fn)(void *), void *arg);
/* From an upgrade handler (its con_cls): the arg of api_req_on_end, now
 * the caller's to free; NULL when none. */
void *api_ctx_take(void *con_cls);

typedef enum MHD_Result (*api_handler)(struct api_req *r);

/* A route whose body is passed on as it arrives instead of being read
 * whole (PUT .../files): begin with the request's head (0, or -1 with
 * err: the body is then read and dropped, and err is the reply), each
 * piece, then end, which replies; abort when the client left first. */
struct api_upload {
	int (*begin)(struct api_req *r, void **state, struct bn_err *err);
	void (*piece)(void *state, const char *data, size_t len);
	enum MHD_Result (*end)(struct api_req *r, void *state);
	void (*abort)(void *state);
};

struct api_route {
	const char *method;
	const char *pattern;     /* "/v1/vms/{name}/start" */
	api_handler fn;
	const struct api_upload *upload;   /* NULL: the body is read whole */
};

const struct api_route *api_routes(int *ret_n);

/* Replies; each queues exactly one response.  *_json consume j. */
enum MHD_Result api_reply_json(struct MHD_Connection *conn, unsigned status,
    json_t *j);
enum MHD_Result api_reply_error(struct MHD_Connection *conn,
    const struct bn_err *err);
enum MHD_Result api_reply_text(struct MHD_Connection *conn, unsigned status,
    char *text, size_t len, const char *ctype);
enum MHD_Result api_reply_empty(struct MHD_Connection *conn, unsigned status);

/* Reading a request (request.c).  Each fails with BN_EINVAL naming the
 * parameter.  query: a query parameter's value, or NULL. */
struct json_field;
const char *query(struct api_req *r, const char *key);
int query_int(struct api_req *r, const char *key, long lo, long hi, long def,
    long *ret, struct bn_err *err);
int query_bool(struct api_req *r, const char *key, bool *ret,
    struct bn_err *err);
/* The body as a JSON object with only the given fields (empty allowed
 * when allow_empty); *ret a new reference. */
int body_object(struct api_req *r, bool allow_empty,
    const struct json_field *fields, int n, json_t **ret, struct bn_err *err);
/* ?wait=S: whether given, and its seconds (0..3600). */
int wait_param(struct api_req *r, bool *ret_given, long *ret_wait,
    struct bn_err *err);
/* Reply with an operation: 202 + Location while it runs; with ?wait, hold
 * the reply until it ends (200) or the wait runs out (202). */
enum MHD_Result reply_op(struct api_req *r, const char *op_id,
    bool waited_param, long wait_s);
/* Whether the request asks for "Connection: Upgrade", "Upgrade: tcp" (as
 * Docker's attach does). */
bool upgrade_tcp(struct api_req *r);
/* 101, then g relayed to the client as it is until both sides are done
 * (g is the reply's now, closed at its end or the request's). */
enum MHD_Result reply_tunnel(struct api_req *r, struct guest_conn *g);

/* POST /v1/vms/{name}/connect?port=N, upgraded to a raw TCP stream
 * (ports.c). */
enum MHD_Result h_vm_connect(struct api_req *r);
/* "ports": [{"host", "guest", "address"}] of a create or patch body into
 * ret (room for VM_PORTS_MAX); *ret_n -1 when absent.  Core checks them
 * against each other and other VMs. */
int ports_field(json_t *j, struct vm_port *ret, int *ret_n,
    struct bn_err *err);
/* "mounts": [{"host", "guest", "readonly"}] of a create or patch body
 * into ret (room for VM_MOUNTS_MAX), their syntax checked (mounts.c);
 * *ret_n -1 when absent. */
int mounts_field(json_t *j, struct vm_mount *ret, int *ret_n,
    struct bn_err *err);
/* "limits": {...} of a create or patch body (limits.c); *present says
 * whether the body had it (null or {} clears them). */
int limits_field(json_t *j, struct vm_limits *ret, bool *present,
    struct bn_err *err);

/* GET /v1/metrics and GET /v1/vms/{name}/usage (metrics.c). */
enum MHD_Result h_metrics(struct api_req *r);
enum MHD_Result h_vm_usage(struct api_req *r);

/* The snapshot routes' handlers (snapshots.c). */
enum MHD_Result h_snap_create(struct api_req *r);
enum MHD_Result h_snap_list(struct api_req *r);
enum MHD_Result h_snap_get(struct api_req *r);
enum MHD_Result h_snap_delete(struct api_req *r);
enum MHD_Result h_vm_restore(struct api_req *r);
/* exec.c */
enum MHD_Result h_vm_exec(struct api_req *r);
/* files.c */
enum MHD_Result h_vm_files_get(struct api_req *r);
extern const struct api_upload files_put_upload;

/* Route matching, exposed for unit tests: returns the route for method and
 * path, or NULL with *ret_path_matched telling 405 from 404.  The path
 * parameters are copied into param, joined with '/' when several. */
const struct api_route *api_route_match(const char *method, const char *path,
    char *param, size_t paramsz, bool *ret_path_matched, char *allow,
    size_t allowsz);

#endif
