/* request.c - what every handler reads from a request (query
 * parameters, the JSON body, ?wait, an upgrade) and the replies for an
 * operation and for an upgraded stream to a guest. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"

const char *
query(struct api_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

int
query_int(struct api_req *r, const char *key, long lo, long hi, long def,
    long *ret, struct bn_err *err)
{
	const char *v = query(r, key);
	char *end;

	if (v == NULL) {
		*ret = def;
		return 0;
	}
	long x = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
		bn_fail(err, BN_EINVAL, 0, "query parameter '%s' must be an integer "
		    "between %ld and %ld", key, lo, hi);
		return bn_err_detail(err, "parameter", key);
	}
	*ret = x;
	return 0;
}

int
query_bool(struct api_req *r, const char *key, bool *ret, struct bn_err *err)
{
	const char *v = query(r, key);

	*ret = false;
	if (v == NULL || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		return 0;
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || *v == '\0') {
		*ret = true;
		return 0;
	}
	bn_fail(err, BN_EINVAL, 0, "query parameter '%s' must be true or false", key);
	return bn_err_detail(err, "parameter", key);
}

int
body_object(struct api_req *r, bool allow_empty, const struct json_field *fields,
    int n, json_t **ret, struct bn_err *err)
{
	if (json_parse_object(r->body ? r->body : "", r->len, allow_empty, ret,
	    err) < 0)
		return -1;
	if (json_check_fields(*ret, fields, n, err) < 0) {
		json_decref(*ret);
		*ret = NULL;
		return -1;
	}
	return 0;
}

/* Reply with an operation: 202 + Location while it runs; with ?wait, hold
 * the reply until it ends (200) or the wait runs out (202). */
enum MHD_Result
reply_op(struct api_req *r, const char *op_id, bool waited_param, long wait_s)
{
	struct bn_err err;
	struct op_row op;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char loc[64], *text;
	json_t *j;

	if (core_op_get(r->core, op_id, waited_param ? (int)wait_s : 0, &op, &err) < 0)
		return api_reply_error(r->conn, &err);
	unsigned status = waited_param && core_op_finished(&op) ? 200 : 202;
	j = op_to_json(&op);
	op_row_clear(&op);
	text = json_dump_compact(j);
	json_decref(j);
	snprintf(loc, sizeof(loc), "/v1/operations/%s", op_id);
	resp = MHD_create_response_from_buffer(strlen(text), text,
	    MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int
wait_param(struct api_req *r, bool *ret_given, long *ret_wait, struct bn_err *err)
{
	*ret_given = query(r, "wait") != NULL;
	return query_int(r, "wait", 0, 3600, 0, ret_wait, err);
}

/* Whether a comma-separated header value lists token (any case). */
static bool
header_lists(const char *value, const char *token)
{
	size_t tl = strlen(token);

	while (value != NULL && *value != '\0') {
		value += strspn(value, " \t,");
		size_t n = strcspn(value, ",");
		size_t e = n;
		while (e > 0 && (value[e - 1] == ' ' || value[e - 1] == '\t'))
			e--;
		if (e == tl && strncasecmp(value, token, tl) == 0)
			return true;
		value += n;
	}
	return false;
}

bool
upgrade_tcp(struct api_req *r)
{
	const char *up = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_UPGRADE);
	const char *co = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONNECTION);

	return header_lists(up, "tcp") && header_lists(co, "upgrade");
}

static void
conn_free(void *arg)
{
	core_guest_conn_close(arg);
}

/* After the 101: the relay, in the connection's own thread (allowed in
 * thread-per-connection mode), until both sides are done. */
static void
tunnel_run(void *cls, struct MHD_Connection *connection, void *con_cls,
    const char *extra_in, size_t extra_in_size, MHD_socket sock,
    struct MHD_UpgradeResponseHandle *urh)
{
	struct guest_conn *g = api_ctx_take(con_cls);

	(void)cls;
	(void)connection;
	if (g != NULL) {
		core_guest_conn_relay(g, sock, extra_in, extra_in_size);
		core_guest_conn_close(g);
	}
	MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

enum MHD_Result
reply_tunnel(struct api_req *r, struct guest_conn *g)
{
	struct MHD_Response *resp = MHD_create_response_for_upgrade(tunnel_run,
	    NULL);
	if (resp == NULL) {
		core_guest_conn_close(g);
		return MHD_NO;
	}
	/* Until tunnel_run takes it: a client gone before the 101 left. */
	api_req_on_end(r, conn_free, g);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "tcp");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
	enum MHD_Result ret = MHD_queue_response(r->conn,
	    MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	MHD_destroy_response(resp);
	return ret;
}
