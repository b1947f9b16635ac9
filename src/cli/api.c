/* api.c - JSON requests to bangerd and the one mapping from API errors to
 * what the user sees: "banger: <message>", "hint: <hint>" and an exit
 * status per error class (see 'banger help'); and the requests that
 * upgrade their connection to a byte stream (connect, exec -t).
 */
#include "cli.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/err.h"

int
api_exit_status(const char *code, long status)
{
	const struct bn_code_info *info = code ? bn_code_by_name(code) : NULL;

	/* A known code decides by its place in the shared table; an unknown
	 * one (a newer bangerd) by the HTTP status it came with. */
	if (info != NULL)
		status = info->http_status;
	if (status == 404)
		return CLI_EXIT_NOT_FOUND;
	if (status == 409)
		return CLI_EXIT_CONFLICT;
	if (status >= 500)
		return CLI_EXIT_SERVER;
	return CLI_EXIT_ERROR;
}

int
api_report_error(json_t *error, long status)
{
	char buf[1024];
	const char *code = jstr(error, WIRE_CODE);
	const char *message = jstr(error, WIRE_MESSAGE);
	const char *hint = jstr(error, WIRE_HINT);
	json_t *st = jobj(error, WIRE_STATUS);

	out_status_clear();
	if (json_is_integer(st) && status == 0)
		status = (long)json_integer_value(st);
	if (message == NULL || message[0] == '\0')
		message = code ? code : "request failed";
	fprintf(stderr, "banger: %s\n", out_clean(message, buf, sizeof(buf)));
	if (hint != NULL && hint[0] != '\0')
		fprintf(stderr, "hint: %s\n", out_clean(hint, buf, sizeof(buf)));
	return api_exit_status(code, status);
}

/* An HTTP error reply: the contract's error body, or whatever came. */
static int
report_http_error(struct cli *cli, struct reply *r)
{
	json_error_t jerr;
	json_t *body;
	int rc;

	out_status_clear();
	if (cli->json && r->body != NULL)
		out_raw(r);
	body = r->body ? json_loadb(r->body, r->len, 0, &jerr) : NULL;
	if (json_is_object(body) && jstr(body, WIRE_MESSAGE) != NULL) {
		rc = api_report_error(body, r->status);
	} else {
		char buf[256];
		size_t n = r->body ? strcspn(r->body, "\r\n") : 0;

		if (n >= sizeof(buf))
			n = sizeof(buf) - 1;
		memcpy(buf, r->body ? r->body : "", n);
		buf[n] = '\0';
		out_clean(buf, buf, sizeof(buf));
		fprintf(stderr, "banger: bangerd answered HTTP %ld%s%s\n",
		    r->status, n ? ": " : "", buf);
		rc = api_exit_status(NULL, r->status);
	}
	if (body != NULL)
		json_decref(body);
	return rc;
}

int
api_call_ex(struct cli *cli, const char *method, const char *path,
    json_t *body, unsigned flags, long timeout_s, struct reply *r)
{
	char *text = NULL;
	int rc;

	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		if (text == NULL) {
			fputs("banger: out of memory\n", stderr);
			abort();
		}
	}
	rc = client_request(cli, method, path, text, timeout_s, flags, r);
	free(text);
	/* CLI_EXIT_INTERRUPTED is the caller's to explain: only code that
	 * catches SIGINT gets it. */
	if (rc != CLI_EXIT_OK)
		return rc;
	if ((r->status < 200 || r->status > 299) && (flags & API_QUIET))
		return api_exit_status(NULL, r->status);
	if (r->status < 200 || r->status > 299)
		return report_http_error(cli, r);
	if (!(flags & API_TEXT) && r->len > 0) {
		json_error_t jerr;

		r->json = json_loadb(r->body, r->len, 0, &jerr);
		if (r->json == NULL) {
			out_status_clear();
			fprintf(stderr, "banger: bangerd sent invalid JSON for %s "
			    "%s: %s\n", method, path, jerr.text);
			return CLI_EXIT_SERVER;
		}
	}
	return CLI_EXIT_OK;
}

int
api_call(struct cli *cli, const char *method, const char *path, json_t *body,
    struct reply *r)
{
	return api_call_ex(cli, method, path, body, 0, API_TIMEOUT_S, r);
}

/* Percent-encode everything but RFC 3986 unreserved characters. */
static void
escape_segment(const char *s, char *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~') {
			*out++ = (char)ch;
		} else {
			*out++ = '%';
			*out++ = hex[ch >> 4];
			*out++ = hex[ch & 15];
		}
	}
	*out = '\0';
}

char *
api_path(const char *prefix, const char *name, const char *suffix)
{
	char *esc = xmalloc(strlen(name) * 3 + 1);
	char *path;

	escape_segment(name, esc);
	path = xasprintf("%s%s%s", prefix, esc, suffix ? suffix : "");
	free(esc);
	return path;
}

#define UPGRADE_HEAD_MAX 8192

/* Read from fd until the head's end; the status, the head's length in
 * *ret_head, and all that was read in buf (*ret_len). */
static int
upgrade_head(int fd, char *buf, size_t cap, size_t *ret_len, size_t *ret_head)
{
	size_t len = 0;
	char *end = NULL;

	while (end == NULL) {
		struct pollfd pf = { fd, POLLIN, 0 };
		if (len == cap || poll(&pf, 1, API_UPGRADE_WAIT_MS) <= 0)
			return -1;
		ssize_t n = recv(fd, buf + len, cap - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		end = memmem(buf, len, "\r\n\r\n", 4);
	}
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
		return -1;
	*ret_len = len;
	*ret_head = (size_t)(end + 4 - buf);
	return atoi(buf + 9);
}

/* A refusal's JSON body after the head (Content-Length), within 5 s. */
static json_t *
upgrade_error(int fd, char *buf, size_t len, size_t head)
{
	const char *cl = strcasestr(buf, "\r\ncontent-length:");
	size_t want = cl != NULL ? strtoul(cl + 17, NULL, 10) : 0;

	if (want > UPGRADE_HEAD_MAX - head)
		want = UPGRADE_HEAD_MAX - head;
	while (len - head < want) {
		struct pollfd pf = { fd, POLLIN, 0 };
		if (poll(&pf, 1, 5000) <= 0)
			break;
		ssize_t n = recv(fd, buf + len, head + want - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	json_t *err = json_loadb(buf + head, len - head, 0, NULL);
	if (!json_is_object(err)) {
		json_decref(err);
		return NULL;
	}
	return err;
}

int
api_upgrade(struct cli *cli, const char *path, const char *body,
    struct api_upgrade *u)
{
	char *url = xasprintf("http://localhost%s", path);
	size_t blen = body != NULL ? strlen(body) : 0;
	char *req = xasprintf("POST %s HTTP/1.1\r\nHost: localhost\r\n"
	    "User-Agent: banger/%s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	    "%sContent-Length: %zu\r\n\r\n%s", path, BANGER_VERSION,
	    body != NULL ? "Content-Type: application/json\r\n" : "", blen,
	    body != NULL ? body : "");
	curl_socket_t sock = CURL_SOCKET_BAD;
	size_t len = 0, head = 0, off = 0, rl = strlen(req);
	int rc = -1;

	memset(u, 0, sizeof(*u));
	u->fd = -1;
	u->buf = xmalloc(UPGRADE_HEAD_MAX);
	if ((u->curl = curl_easy_init()) == NULL)
		goto out;
	client_curl_setup(u->curl, cli->socket_path);
	curl_easy_setopt(u->curl, CURLOPT_URL, url);
	curl_easy_setopt(u->curl, CURLOPT_CONNECT_ONLY, 1L);
	if (curl_easy_perform(u->curl) != CURLE_OK ||
	    curl_easy_getinfo(u->curl, CURLINFO_ACTIVESOCKET, &sock) !=
	    CURLE_OK || sock == CURL_SOCKET_BAD)
		goto out;
	while (off < rl) {
		ssize_t n = send(sock, req + off, rl - off, MSG_NOSIGNAL);
		if (n <= 0)
			goto out;
		off += (size_t)n;
	}
	if ((u->status = upgrade_head(sock, u->buf, UPGRADE_HEAD_MAX, &len,
	    &head)) <= 0)
		goto out;
	if (u->status == 101) {
		u->fd = sock;
		u->pre = u->buf + head;
		u->npre = len - head;
	} else {
		u->error = upgrade_error(sock, u->buf, len, head);
	}
	rc = 0;
out:
	free(req);
	free(url);
	return rc;
}

void
api_upgrade_close(struct api_upgrade *u)
{
	/* The socket is curl's: it closes it. */
	if (u->curl != NULL)
		curl_easy_cleanup(u->curl);
	json_decref(u->error);
	free(u->buf);
	memset(u, 0, sizeof(*u));
	u->fd = -1;
}
