/* reply.c - the one place errors become HTTP replies. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"

enum MHD_Result
api_reply_text(struct MHD_Connection *conn, unsigned status, char *text,
    size_t len, const char *ctype)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
api_reply_json(struct MHD_Connection *conn, unsigned status, json_t *j)
{
	char *text = json_dump_compact(j);

	json_decref(j);
	return api_reply_text(conn, status, text, strlen(text), "application/json");
}

enum MHD_Result
api_reply_empty(struct MHD_Connection *conn, unsigned status)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
api_reply_error(struct MHD_Connection *conn, const struct bn_err *err)
{
	const struct bn_code_info *ci = bn_code_info(err->code);

	if (ci->http_status >= 500)
		log_warnx("%d %s: %s", ci->http_status, ci->name, err->msg);
	else
		log_debug("%d %s: %s", ci->http_status, ci->name, err->msg);
	return api_reply_json(conn, (unsigned)ci->http_status, err_to_json(err));
}
