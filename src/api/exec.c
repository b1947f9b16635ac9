/* exec.c - POST /v1/vms/{name}/exec: a command run by the VM's agent,
 * its output streamed back as it comes, one JSON object per line
 * (application/x-ndjson):
 *
 *   {"type": "stdout", "data": BASE64}
 *   {"type": "stderr", "data": BASE64}
 *   {"type": "exit", "exit_code": N, "signal": S, "timed_out": B}  (last)
 *   {"type": "error", "code": C, "message": M}   (last, the stream broke)
 *
 * A client that goes away ends the stream: the agent then kills the
 * command's process group.
 *
 * With "tty": true (and "rows", "cols") the request is an upgrade
 * ("Connection: Upgrade", "Upgrade: tcp", as for connect): the command
 * runs on a pseudo-terminal, and after the 101 the connection carries
 * the agent's frames both ways as they are (agent/exec_tty.c, and
 * openapi.yaml's description of the route). */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/b64.h"
#include "common/json.h"
#include "common/util.h"
#include "common/wire.h"

struct exec_reply {
	struct exec_stream *s;
	int client_fd;
	char *line;
	size_t off, len;
	bool done;
};

static char *
frame_line(const struct exec_frame *f)
{
	json_t *j;

	if (f->kind == EXEC_EXIT) {
		j = json_pack("{s:s, s:i, s:i, s:b}", "type", "exit", "exit_code",
		    f->exit_code, "signal", f->signal, "timed_out", f->timed_out);
	} else {
		char *b = b64_encode(f->data, f->len);
		j = json_pack("{s:s, s:s}", "type", f->kind == EXEC_STDOUT ?
		    "stdout" : "stderr", "data", b);
		free(b);
	}
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	char *line = xasprintf("%s\n", text);
	free(text);
	return line;
}

static ssize_t
exec_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct exec_reply *x = cls;
	struct exec_frame f;
	struct bn_err err;

	(void)pos;
	while (x->line == NULL) {
		if (x->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		memset(&err, 0, sizeof(err));
		int rc = core_exec_next(x->s, x->client_fd, &f, &err);
		if (rc == -2)   /* the client left: the agent kills the command */
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (rc == 0) {
			x->done = true;
			continue;
		}
		if (rc < 0) {
			json_t *e = err_to_json(&err);
			json_t *j = json_pack("{s:s, s:O, s:O}", "type", "error",
			    "code", json_object_get(e, "code"), "message",
			    json_object_get(e, "message"));
			char *text = json_dumps(j, JSON_COMPACT);
			x->line = xasprintf("%s\n", text);
			free(text);
			json_decref(j);
			json_decref(e);
			x->done = true;
		} else {
			x->line = frame_line(&f);
			x->done = f.kind == EXEC_EXIT;
		}
		x->off = 0;
		x->len = strlen(x->line);
	}
	size_t n = x->len - x->off < max ? x->len - x->off : max;
	memcpy(buf, x->line + x->off, n);
	x->off += n;
	if (x->off == x->len) {
		free(x->line);
		x->line = NULL;
	}
	return (ssize_t)n;
}

static void
exec_free(void *cls)
{
	struct exec_reply *x = cls;

	core_exec_close(x->s);
	free(x->line);
	free(x);
}

static const struct json_field exec_fields[] = {
	{ WIRE_ARGV, JF_ARRAY, true, false },
	{ WIRE_ENV, JF_OBJECT, false, true },
	{ WIRE_CWD, JF_STRING, false, true },
	{ WIRE_USER, JF_STRING, false, true },
	{ WIRE_STDIN, JF_STRING, false, true },
	{ WIRE_TIMEOUT_S, JF_INT, false, true },
	{ WIRE_TTY, JF_BOOL, false, true },
	{ WIRE_ROWS, JF_INT, false, true },
	{ WIRE_COLS, JF_INT, false, true },
};

static int
field_fail(struct bn_err *err, const char *field, const char *why)
{
	bn_fail(err, BN_EINVAL, 0, "field '%s' %s", field, why);
	return bn_err_detail(err, "field", field);
}

/* The request's argv and env as C strings (borrowed from j). */
static int
exec_parse(json_t *j, struct exec_req *req, const char ***argv,
    const char ***env, void **stdin_buf, struct bn_err *err)
{
	json_t *a = json_object_get(j, WIRE_ARGV), *e = json_object_get(j,
	    WIRE_ENV), *v;
	const char *key, *b64;
	long long timeout;
	size_t i;

	if (json_array_size(a) == 0)
		return field_fail(err, WIRE_ARGV, "must name a command");
	if (json_array_size(a) > 4096)
		return field_fail(err, WIRE_ARGV, "has more than 4096 items");
	*argv = xcalloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || json_string_length(v) !=
		    strlen(json_string_value(v)))
			return field_fail(err, WIRE_ARGV, "must hold strings "
			    "without NUL");
		(*argv)[i] = json_string_value(v);
	}
	req->argv = *argv;
	req->argc = json_array_size(a);
	*env = xcalloc(json_object_size(e) + 1, sizeof(char *));
	i = 0;
	json_object_foreach(e, key, v) {
		if (!json_is_string(v) || key[0] == '\0' || strchr(key, '=') ||
		    json_string_length(v) != strlen(json_string_value(v)))
			return field_fail(err, WIRE_ENV, "must map names (without "
			    "'=') to strings");
		(*env)[i++] = xasprintf("%s=%s", key, json_string_value(v));
	}
	req->env = *env;
	req->nenv = i;
	req->cwd = json_get_str(j, WIRE_CWD);
	if (req->cwd != NULL && req->cwd[0] != '/')
		return field_fail(err, WIRE_CWD, "must be an absolute path");
	req->user = json_get_str(j, WIRE_USER);
	if (json_get_int(j, WIRE_TIMEOUT_S, 0, 86400, 0, &timeout, err) < 0)
		return -1;
	req->timeout_s = (int)timeout;
	if ((b64 = json_get_str(j, WIRE_STDIN)) != NULL &&
	    b64_decode(b64, stdin_buf, &req->stdin_len) < 0)
		return field_fail(err, WIRE_STDIN, "must be base64");
	req->stdin_data = *stdin_buf;
	req->tty = json_is_true(json_object_get(j, WIRE_TTY));
	long long rows, cols;
	if (json_get_int(j, WIRE_ROWS, 1, 9999, 0, &rows, err) < 0 ||
	    json_get_int(j, WIRE_COLS, 1, 9999, 0, &cols, err) < 0)
		return -1;
	if ((rows || cols) && !req->tty)
		return field_fail(err, rows ? WIRE_ROWS : WIRE_COLS, "is for "
		    "a terminal session (\"tty\": true)");
	if (req->tty && b64 != NULL)
		return field_fail(err, WIRE_STDIN, "is not for a terminal "
		    "session: its input goes in frames after the 101");
	req->rows = (int)rows;
	req->cols = (int)cols;
	return 0;
}

/* Whether the request's shape fits its body: an upgrade for a terminal
 * session, and only for one. */
static int
exec_shape(struct api_req *r, const struct exec_req *req, struct bn_err *err)
{
	bool up = upgrade_tcp(r);

	if (req->tty && !up) {
		bn_fail(err, BN_EINVAL, 0, "a terminal session (\"tty\": true) "
		    "upgrades the connection: send 'Connection: Upgrade' and "
		    "'Upgrade: tcp'");
		bn_err_hint(err, "banger vm exec -t does this for you");
		return bn_err_detail(err, "field", WIRE_TTY);
	}
	if (!req->tty && up) {
		bn_fail(err, BN_EINVAL, 0, "only a terminal session (\"tty\": "
		    "true) upgrades the connection");
		return bn_err_detail(err, "field", WIRE_TTY);
	}
	return 0;
}

enum MHD_Result
h_vm_exec(struct api_req *r)
{
	struct exec_req req = { 0 };
	struct exec_stream *s = NULL;
	struct guest_conn *g = NULL;
	struct bn_err err;
	const char **argv = NULL, **env = NULL;
	void *stdin_buf = NULL;
	json_t *j = NULL;
	int rc = -1;

	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	int fd = ci != NULL ? ci->connect_fd : -1;
	struct ucred cred = { .uid = (uid_t)-1 };
	socklen_t clen = sizeof(cred);
	if (fd >= 0)
		getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen);
	req.peer_uid = (int)cred.uid;

	if (name_check("vm", r->param, &err) == 0 &&
	    body_object(r, false, exec_fields, ARRAY_SIZE(exec_fields), &j,
	    &err) == 0 && exec_parse(j, &req, &argv, &env, &stdin_buf,
	    &err) == 0 && exec_shape(r, &req, &err) == 0)
		rc = req.tty ? core_vm_exec_tty(r->core, r->param, &req, &g,
		    &err) : core_vm_exec(r->core, r->param, &req, &s, &err);
	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		free((char *)env[i]);
	free(env);
	free(argv);
	free(stdin_buf);
	json_decref(j);
	if (rc < 0)
		return api_reply_error(r->conn, &err);
	if (g != NULL)
		return reply_tunnel(r, g);

	struct exec_reply *x = xcalloc(1, sizeof(*x));
	x->s = s;
	x->client_fd = fd;
	struct MHD_Response *resp = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, 16384, exec_read, x, exec_free);
	MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}
