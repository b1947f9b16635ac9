/* files.c - GET /v1/vms/{name}/files?path=ABS: a tar of ABS in the VM
 * (a file, or a directory and all below it), streamed as the guest agent
 * makes it.  A stream that breaks ends without tar's end blocks, so the
 * reader sees a truncated archive. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct files_reply {
	struct file_stream *s;
	int client_fd;
};

static ssize_t
files_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct files_reply *x = cls;
	ssize_t n;

	(void)pos;
	n = core_files_read(x->s, buf, max, x->client_fd);
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n;
}

static void
files_free(void *cls)
{
	struct files_reply *x = cls;

	core_files_close(x->s);
	free(x);
}

enum MHD_Result
h_vm_files_get(struct api_req *r)
{
	struct file_stream *s;
	struct bn_err err;

	if (name_check("vm", r->param, &err) < 0 ||
	    core_vm_files_get(r->core, r->param, query(r, "path"), &s, &err) < 0)
		return api_reply_error(r->conn, &err);
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	struct files_reply *x = xcalloc(1, sizeof(*x));
	x->s = s;
	x->client_fd = ci != NULL ? ci->connect_fd : -1;
	struct MHD_Response *resp = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, 65536, files_read, x, files_free);
	MHD_add_response_header(resp, "Content-Type", "application/x-tar");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* PUT /v1/vms/{name}/files?path=DIR: the body, a tar, goes to the agent
 * as it arrives and is extracted into DIR in the guest (the agent refuses
 * entries that would land outside it).  The reply is the agent's
 * summary, or its refusal. */
static int
put_begin(struct api_req *r, void **state, struct bn_err *err)
{
	struct file_stream *s;

	if (name_check("vm", r->param, err) < 0 ||
	    core_vm_files_put_begin(r->core, r->param, query(r, "path"), &s,
	    err) < 0)
		return -1;
	*state = s;
	return 0;
}

static void
put_piece(void *state, const char *data, size_t len)
{
	core_files_put(state, data, len);
}

static enum MHD_Result
put_end(struct api_req *r, void *state)
{
	struct bn_err err;
	json_t *j = core_files_put_end(state, &err);

	core_files_close(state);
	if (j == NULL)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, 200, j);
}

static void
put_abort(void *state)
{
	core_files_close(state);
}

const struct api_upload files_put_upload = {
	put_begin, put_piece, put_end, put_abort,
};
