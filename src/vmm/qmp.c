/* qmp.c - a small QMP client: JSON lines over QEMU's Unix socket, one
 * command at a time, every read and write bounded by the connection's
 * deadline.  Asynchronous events are skipped while a reply is awaited. */
#include "vmm/vmm.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/json.h"
#include "common/uhttp.h"
#include "common/util.h"

#define QMP_MAX_MSG (64 * 1024)

struct qmp_conn {
	int fd;
	long long deadline;
	long long next_id;
	size_t len;
	char buf[QMP_MAX_MSG];
};

struct qmp_conn *
qmp_attach(int fd, long long deadline)
{
	struct qmp_conn *q = xcalloc(1, sizeof(*q));

	q->fd = fd;
	q->deadline = deadline;
	return q;
}

void
qmp_set_deadline(struct qmp_conn *q, long long deadline)
{
	q->deadline = deadline;
}

void
qmp_close(struct qmp_conn *q)
{
	if (q == NULL)
		return;
	if (q->fd >= 0)
		close(q->fd);
	free(q);
}

static bool
blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/* The next JSON object QEMU sent (one per line). */
static int
qmp_read_msg(struct qmp_conn *q, json_t **ret, struct bn_err *err)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		if (nl != NULL) {
			size_t n = (size_t)(nl - q->buf) + 1;
			json_error_t je;
			json_t *j = blank(q->buf, n) ? NULL :
			    json_loadb(q->buf, n, 0, &je);
			bool skip = blank(q->buf, n);

			memmove(q->buf, q->buf + n, q->len - n);
			q->len -= n;
			if (skip)
				continue;
			if (j == NULL || !json_is_object(j)) {
				json_decref(j);
				return bn_fail(err, BN_EVMM, 0, "qemu sent invalid "
				    "QMP: %s", j ? "not an object" : je.text);
			}
			*ret = j;
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return bn_fail(err, BN_EVMM, 0, "qemu sent a QMP message "
			    "over %d bytes", QMP_MAX_MSG);
		ssize_t r = uhttp_read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len,
		    q->deadline);
		if (r == -2)
			return bn_fail(err, BN_ETIMEOUT, 0, "qemu did not answer on "
			    "QMP in time");
		if (r == 0 || (r < 0 && (errno == ECONNRESET || errno == EPIPE)))
			return bn_fail(err, BN_EVMM, 0, "qemu closed the QMP "
			    "connection");
		if (r < 0)
			return bn_fail(err, BN_ESYS, errno, "read QMP");
		q->len += (size_t)r;
	}
}

int
qmp_execute(struct qmp_conn *q, const char *cmd, json_t *args, json_t **ret,
    struct bn_err *err)
{
	long long id = ++q->next_id;
	json_t *msg = json_pack("{s:s, s:I}", "execute", cmd, "id", (json_int_t)id);
	char *text;
	int rc;

	if (args != NULL)
		json_object_set_new(msg, "arguments", args);
	text = json_dump_compact(msg);
	json_decref(msg);
	size_t n = strlen(text);
	text[n] = '\n';  /* json_dump_compact's NUL; QMP wants no terminator */
	rc = uhttp_write(q->fd, text, n + 1, q->deadline);
	free(text);
	if (rc == -2)
		return bn_fail(err, BN_ETIMEOUT, 0, "QMP %s: write timed out", cmd);
	if (rc < 0 && (errno == EPIPE || errno == ECONNRESET))
		return bn_fail(err, BN_EVMM, 0, "QMP %s: qemu closed the QMP "
		    "connection", cmd);
	if (rc < 0)
		return bn_fail(err, BN_ESYS, errno, "QMP %s", cmd);

	for (;;) {
		json_t *m, *jid, *e;

		if (qmp_read_msg(q, &m, err) < 0)
			return bn_err_prefix(err, "QMP %s", cmd);
		jid = json_object_get(m, "id");
		e = json_object_get(m, "error");
		/* Events, and replies to someone else's ids, are not ours.  An
		 * error without an id is QEMU refusing the line itself. */
		if (json_object_get(m, "event") != NULL ||
		    (jid != NULL && !(json_is_integer(jid) &&
		    json_integer_value(jid) == id)) ||
		    (jid == NULL && e == NULL)) {
			json_decref(m);
			continue;
		}
		if (e != NULL) {
			const char *cls = json_get_str(e, "class");
			const char *desc = json_get_str(e, "desc");
			bn_fail(err, BN_EVMM, 0, "qemu refused %s: %s%s%s%s", cmd,
			    desc ? desc : "(no description)", cls ? " (" : "",
			    cls ? cls : "", cls ? ")" : "");
			bn_err_detail(err, "call", cmd);
			json_decref(m);
			return -1;
		}
		json_t *r = json_object_get(m, "return");
		if (r == NULL) {
			json_decref(m);
			return bn_fail(err, BN_EVMM, 0, "QMP %s: reply without "
			    "\"return\"", cmd);
		}
		if (ret != NULL)
			*ret = json_incref(r);
		json_decref(m);
		return 0;
	}
}

int
qmp_handshake(struct qmp_conn *q, struct bn_err *err)
{
	json_t *g;

	if (qmp_read_msg(q, &g, err) < 0)
		return bn_err_prefix(err, "QMP greeting");
	bool ok = json_is_object(json_object_get(g, "QMP"));
	json_decref(g);
	if (!ok)
		return bn_fail(err, BN_EVMM, 0, "qemu: the QMP socket did not "
		    "greet with {\"QMP\": ...}");
	return qmp_execute(q, "qmp_capabilities", NULL, NULL, err);
}

int
qmp_connect(const char *path, long long deadline, struct qmp_conn **ret,
    struct bn_err *err)
{
	struct sockaddr_un sa;
	struct qmp_conn *q;
	int fd;

	if (uhttp_sockaddr(&sa, path) < 0)
		return bn_fail(err, BN_EINVAL, 0, "QMP socket path too long: %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return bn_fail(err, BN_ESYS, errno, "socket");
	if (uhttp_connect(fd, &sa, deadline) < 0) {
		int e = errno;
		close(fd);
		if (e == ETIMEDOUT)
			return bn_fail(err, BN_ETIMEOUT, 0, "connect %s: timed out",
			    path);
		return bn_fail(err, BN_ESYS, e, "connect %s", path);
	}
	q = qmp_attach(fd, deadline);
	if (qmp_handshake(q, err) < 0) {
		qmp_close(q);
		return -1;
	}
	*ret = q;
	return 0;
}
