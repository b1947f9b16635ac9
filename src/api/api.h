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
	/* path parameters from the route pattern */
	const char *param;
	char param_buf[256];
};

typedef enum MHD_Result (*api_handler)(struct api_req *r);

struct api_route {
	const char *method;
	const char *pattern;     /* "/v1/vms/{name}/start" */
	api_handler fn;
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

/* Route matching, exposed for unit tests: returns the route for method and
 * path, or NULL with *ret_path_matched telling 405 from 404.  The path
 * parameter (at most one per route) is copied into param. */
const struct api_route *api_route_match(const char *method, const char *path,
    char *param, size_t paramsz, bool *ret_path_matched, char *allow,
    size_t allowsz);

#endif
