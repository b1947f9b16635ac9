/* client.c - HTTP over bangerd's Unix socket (libcurl), socket discovery
 * and waiting for an auto-started bangerd.
 *
 * One curl easy handle serves every request of an invocation, so the
 * connection is reused.  Transport failures are reported here, once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define REPLY_MAX            (64u << 20)  /* console tail is at most 16 MiB */
#define CONNECT_TIMEOUT_MS   3000L
#define AUTOSTART_WAIT_MS    10000L
#define AUTOSTART_POLL_MS    50L

struct client {
	CURL *curl;
	struct curl_slist *hdr_plain;  /* requests without a body */
	struct curl_slist *hdr_json;   /* requests with a JSON body */
	char errbuf[CURL_ERROR_SIZE];
	bool autostart_done;           /* tried once already */
	bool reply_too_big;
};

volatile sig_atomic_t cli_interrupted;

void
cli_socket_resolve(struct cli *cli)
{
	wire_socket_resolve(cli->socket_flag, cli->socket_path,
	    sizeof(cli->socket_path));
}

void
reply_free(struct reply *r)
{
	if (r == NULL)
		return;
	free(r->body);
	if (r->json != NULL)
		json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct reply *r = userdata;
	size_t n = size * nmemb;

	if (n > REPLY_MAX - r->len)
		return 0;  /* makes curl fail with CURLE_WRITE_ERROR */
	r->body = xrealloc(r->body, r->len + n + 1);
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Called by curl about once a second and on every transfer step. */
static int
on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	(void)userdata;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return cli_interrupted ? 1 : 0;
}

void
client_curl_setup(CURL *curl, const char *socket_path)
{
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "banger/" BANGER_VERSION);
	/* Send names as given ("..", "a/b" escaped); bangerd judges them. */
	curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
}

static struct client *
client_get(struct cli *cli)
{
	struct client *c;

	if (cli->client != NULL)
		return cli->client;
	cli_socket_resolve(cli);
	c = xmalloc(sizeof(*c));
	memset(c, 0, sizeof(*c));
	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		free(c);
		return NULL;
	}
	c->hdr_plain = curl_slist_append(NULL, "Accept: application/json");
	c->hdr_json = curl_slist_append(NULL, "Accept: application/json");
	c->hdr_json = curl_slist_append(c->hdr_json,
	    "Content-Type: application/json");
	/* No "Expect: 100-continue" round trip for larger bodies. */
	c->hdr_json = curl_slist_append(c->hdr_json, "Expect:");
	if (c->hdr_plain == NULL || c->hdr_json == NULL) {
		fputs("banger: out of memory\n", stderr);
		abort();
	}
	client_curl_setup(c->curl, cli->socket_path);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	cli->client = c;
	return c;
}

void
client_free(struct cli *cli)
{
	struct client *c = cli->client;

	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->hdr_plain);
	curl_slist_free_all(c->hdr_json);
	free(c);
	cli->client = NULL;
}

static CURLcode
perform(struct client *c, const char *method, const char *path,
    const char *body, long timeout_s, struct reply *r)
{
	CURLcode rc;
	char *url = xasprintf("http://localhost%s", path);

	reply_free(r);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	if (body != NULL) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)strlen(body));
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST,
		    strcmp(method, "POST") == 0 ? NULL : method);
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->hdr_json);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST,
		    strcmp(method, "GET") == 0 ? NULL : method);
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->hdr_plain);
	}
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, r);
	c->errbuf[0] = '\0';
	rc = curl_easy_perform(c->curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
	c->reply_too_big = (rc == CURLE_WRITE_ERROR && r->len > 0);
	free(url);
	return rc;
}

int
client_connect_errno(const char *path)
{
	struct sockaddr_un sa;
	int fd, e = 0;

	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		e = errno;
	close(fd);
	return e;
}

static void
report_unreachable(struct cli *cli, struct client *c, CURLcode rc,
    const char *hint)
{
	char reason[160] = "";
	const char *msg = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
	int e = rc == CURLE_COULDNT_CONNECT ?
	    client_connect_errno(cli->socket_path) : 0;

	out_status_clear();
	if (c->reply_too_big)
		msg = "response too large";
	if (e != 0)
		snprintf(reason, sizeof(reason), " (%s)", strerror(e));
	fprintf(stderr, "banger: cannot reach bangerd at %s: %s%s\n",
	    cli->socket_path, msg, reason);
	if (hint != NULL && hint[0] != '\0')
		fprintf(stderr, "hint: %s\n", hint);
}

/* Spawn bangerd and poll GET /v1/healthz every 50 ms for up to 10 s. */
static int
autostart(struct cli *cli, struct client *c, char *why, size_t why_len)
{
	struct timespec pause = { 0, AUTOSTART_POLL_MS * 1000000L };
	long long start;
	char log[4096];
	bool exited = false;
	pid_t pid;

	if (autostart_spawn(cli->socket_path, &pid, log, sizeof(log), why,
	    why_len) < 0)
		return -1;
	out_status_clear();
	if (!cli->quiet)
		fprintf(stderr, "banger: starting bangerd (pid %ld, log %s)\n",
		    (long)pid, log);
	start = time_mono_ms();
	for (;;) {
		struct reply r = { 0 };
		CURLcode rc = perform(c, "GET", "/v1/healthz", NULL, 2, &r);

		reply_free(&r);
		if (rc == CURLE_OK)
			return 0;
		if (!exited) {
			int st;

			if (waitpid(pid, &st, WNOHANG) == pid) {
				exited = true;
				/* Status 0 may be a daemon that forked; keep
				 * polling.  Anything else is a failure. */
				if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
					snprintf(why, why_len, "bangerd exited with "
					    "status %d; see %s", WEXITSTATUS(st), log);
					return -1;
				}
				if (WIFSIGNALED(st)) {
					snprintf(why, why_len, "bangerd was killed by "
					    "signal %d; see %s", WTERMSIG(st), log);
					return -1;
				}
			}
		}
		if (time_mono_ms() - start >= AUTOSTART_WAIT_MS) {
			snprintf(why, why_len, "bangerd (pid %ld) did not answer "
			    "within %ld s; see %s", (long)pid,
			    AUTOSTART_WAIT_MS / 1000, log);
			return -1;
		}
		nanosleep(&pause, NULL);
	}
}

int
client_request(struct cli *cli, const char *method, const char *path,
    const char *body, long timeout_s, unsigned flags, struct reply *r)
{
	struct client *c = client_get(cli);
	bool silent = (flags & CLIENT_SILENT) != 0;
	char hint[1024];
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	if (c == NULL) {
		fputs("banger: cannot initialize libcurl\n", stderr);
		return CLI_EXIT_ERROR;
	}
	rc = perform(c, method, path, body, timeout_s, r);
	/* Someone else's bangerd we may not use: starting another would not
	 * help. */
	if (rc == CURLE_COULDNT_CONNECT) {
		int e = client_connect_errno(cli->socket_path);

		if (e == EACCES || e == EPERM) {
			c->autostart_done = true;
			if (!silent)
				report_unreachable(cli, c, rc, "the socket is only "
				    "open to root, bangerd's user and group 'banger'");
			return CLI_EXIT_UNREACHABLE;
		}
	}
	if (rc == CURLE_COULDNT_CONNECT && !c->autostart_done &&
	    !cli->no_autostart && !(flags & CLIENT_NO_AUTOSTART)) {
		char why[1024];

		/* Nothing was sent, so retrying any method is safe. */
		c->autostart_done = true;
		if (autostart(cli, c, why, sizeof(why)) < 0) {
			if (!silent)
				report_unreachable(cli, c, rc, why);
			return CLI_EXIT_UNREACHABLE;
		}
		rc = perform(c, method, path, body, timeout_s, r);
	}
	if (rc == CURLE_OK)
		return CLI_EXIT_OK;
	if (rc == CURLE_ABORTED_BY_CALLBACK && cli_interrupted)
		return CLI_EXIT_INTERRUPTED;
	if (silent)
		return CLI_EXIT_UNREACHABLE;
	if (rc == CURLE_COULDNT_CONNECT && !c->autostart_done) {
		snprintf(hint, sizeof(hint), "is bangerd running? Start it with "
		    "'bangerd --socket %s'%s", cli->socket_path, cli->no_autostart ?
		    ", or let banger start it (drop --no-autostart, unset "
		    "BANGER_NO_AUTOSTART)" : "");
	} else {
		char log[4096];

		autostart_log_path(cli->socket_path, log, sizeof(log));
		snprintf(hint, sizeof(hint), "bangerd may have stopped or be "
		    "stuck; if banger started it, its log is %s", log);
	}
	report_unreachable(cli, c, rc, hint);
	return CLI_EXIT_UNREACHABLE;
}
