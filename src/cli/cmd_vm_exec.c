/* cmd_vm_exec.c - banger vm exec NAME -- COMMAND [ARGS...]: run a command
 * in a VM through its guest agent (POST /v1/vms/NAME/exec), no SSH.
 *
 * The reply is one JSON object per line (stdout and stderr in base64,
 * then the exit); each piece is written out as it arrives.  banger exits
 * with the command's status (128 + N for signal N, 124 when its timeout
 * ended it, as timeout(1) does).  Ctrl-C ends the request, and bangerd's
 * agent then kills the command's process group. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/b64.h"

#define EXEC_STDIN_MAX (64 * 1024)

struct exec_out {
	char *buf;                 /* a partial line */
	size_t len;
	bool exited, failed;
	int exit_code, signal;
	bool timed_out;
	char error[512];
	long status;               /* HTTP status */
	char *body;                /* an error reply's body */
	size_t body_len;
};

static void
exec_line(struct exec_out *o, const char *line)
{
	json_error_t jerr;
	json_t *j = json_loads(line, 0, &jerr);
	const char *type = jstr(j, "type");
	void *data;
	size_t n;

	if (type == NULL) {
		snprintf(o->error, sizeof(o->error), "a bad line from bangerd");
		o->failed = true;
	} else if (strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0) {
		if (b64_decode(jstr(j, "data") ? jstr(j, "data") : "", &data,
		    &n) == 0) {
			FILE *f = type[3] == 'o' ? stdout : stderr;
			fwrite(data, 1, n, f);
			fflush(f);
			free(data);
		}
	} else if (strcmp(type, "exit") == 0) {
		o->exited = true;
		o->exit_code = (int)json_integer_value(jobj(j, "exit_code"));
		o->signal = (int)json_integer_value(jobj(j, "signal"));
		o->timed_out = json_is_true(jobj(j, "timed_out"));
	} else if (strcmp(type, "error") == 0) {
		char buf[400];
		snprintf(o->error, sizeof(o->error), "%s", out_clean(
		    jstr(j, "message") ? jstr(j, "message") : "?", buf,
		    sizeof(buf)));
		o->failed = true;
	}
	json_decref(j);
}

static size_t
on_exec_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct exec_out *o = userdata;
	size_t n = size * nmemb;

	if (o->status != 200) {
		/* An error reply: one JSON body, kept whole (bounded). */
		if (o->body_len + n > 1 << 20)
			return 0;
		o->body = xrealloc(o->body, o->body_len + n + 1);
		memcpy(o->body + o->body_len, data, n);
		o->body_len += n;
		o->body[o->body_len] = '\0';
		return n;
	}
	o->buf = xrealloc(o->buf, o->len + n + 1);
	memcpy(o->buf + o->len, data, n);
	o->len += n;
	o->buf[o->len] = '\0';
	char *start = o->buf, *nl;
	while ((nl = memchr(start, '\n', o->len - (size_t)(start - o->buf)))) {
		*nl = '\0';
		exec_line(o, start);
		start = nl + 1;
	}
	o->len -= (size_t)(start - o->buf);
	memmove(o->buf, start, o->len);
	return n;
}

static size_t
on_exec_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct exec_out *o = userdata;
	size_t n = size * nmemb;

	if (n > 9 && strncmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', n);
		if (sp != NULL)
			o->status = strtol(sp + 1, NULL, 10);
	}
	return n;
}

static int
on_exec_progress(void *userdata, curl_off_t a, curl_off_t b, curl_off_t c,
    curl_off_t d)
{
	(void)userdata;
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return cli_interrupted ? 1 : 0;
}

/* Standard input when it is not a terminal (a pipe or a file), or with
 * -i, at most EXEC_STDIN_MAX bytes; --no-stdin leaves it alone. */
static int
read_stdin(const struct args *a, char **ret, size_t *ret_len)
{
	size_t len = 0;
	char *buf = xmalloc(EXEC_STDIN_MAX + 1);

	*ret = NULL;
	*ret_len = 0;
	if (args_flag(a, "--no-stdin") || (isatty(STDIN_FILENO) &&
	    !args_flag(a, "--interactive"))) {
		free(buf);
		return 0;
	}
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf + len, EXEC_STDIN_MAX + 1 - len);
		if (n < 0) {
			free(buf);
			fprintf(stderr, "banger: reading standard input: %s\n",
			    strerror(errno));
			return CLI_EXIT_ERROR;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > EXEC_STDIN_MAX) {
			free(buf);
			fprintf(stderr, "banger: standard input is larger than %d "
			    "bytes; copy files in with banger vm cp, or use -n\n",
			    EXEC_STDIN_MAX);
			return CLI_EXIT_USAGE;
		}
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static json_t *
exec_body(const struct args *a, const char *in, size_t in_len, int *ret_exit)
{
	json_t *body = json_object(), *argv = json_array(), *env = json_object();
	const char *const *list;
	long long timeout;

	for (int i = 0; i < a->nrest; i++)
		json_array_append_new(argv, json_string(a->rest[i]));
	json_object_set_new(body, WIRE_ARGV, argv);
	int n = args_list(a, "--env", &list);
	for (int i = 0; i < n; i++) {
		const char *eq = strchr(list[i], '=');
		if (eq == NULL || eq == list[i]) {
			*ret_exit = usage_error(a->cmd, "--env wants NAME=VALUE, "
			    "not '%s'", list[i]);
			json_decref(env);
			json_decref(body);
			return NULL;
		}
		json_object_setn_new(env, list[i], (size_t)(eq - list[i]),
		    json_string(eq + 1));
	}
	json_object_set_new(body, WIRE_ENV, env);
	if (args_str(a, "--cwd") != NULL)
		json_object_set_new(body, WIRE_CWD, json_string(args_str(a,
		    "--cwd")));
	if (args_str(a, "--user") != NULL)
		json_object_set_new(body, WIRE_USER, json_string(args_str(a,
		    "--user")));
	if (args_int(a, "--timeout", &timeout))
		json_object_set_new(body, WIRE_TIMEOUT_S, json_integer(timeout));
	if (in != NULL) {
		char *b = b64_encode(in, in_len);
		json_object_set_new(body, WIRE_STDIN, json_string(b));
		free(b);
	}
	return body;
}

int
cmd_vm_exec(struct cli *cli, const struct args *a)
{
	struct exec_out o = { .status = 0 };
	struct curl_slist *hdr = NULL;
	char *in = NULL, *text, *path, *url;
	size_t in_len;
	int rc;

	if (a->nrest == 0)
		return usage_error(a->cmd, "name the command after --");
	if (args_flag(a, "--tty")) {
		json_t *tb = exec_body(a, NULL, 0, &rc);
		if (tb == NULL)
			return rc;
		rc = exec_tty_session(cli, a->v[0], tb,
		    !args_flag(a, "--no-stdin"));
		json_decref(tb);
		return rc;
	}
	if ((rc = read_stdin(a, &in, &in_len)) != 0)
		return rc;
	json_t *body = exec_body(a, in, in_len, &rc);
	free(in);
	if (body == NULL)
		return rc;
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);

	cli_socket_resolve(cli);
	CURL *curl = curl_easy_init();
	if (curl == NULL) {
		free(text);
		fputs("banger: out of memory\n", stderr);
		return CLI_EXIT_ERROR;
	}
	path = api_path("/v1/vms/", a->v[0], "/exec");
	url = xasprintf("http://localhost%s", path);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Accept: application/x-ndjson");
	hdr = curl_slist_append(hdr, "Expect:");
	client_curl_setup(curl, cli->socket_path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_exec_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &o);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_exec_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &o);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_exec_progress);
	CURLcode cc = curl_easy_perform(curl);
	curl_easy_cleanup(curl);
	curl_slist_free_all(hdr);
	free(url);
	free(path);
	free(text);

	if (cli_interrupted)
		rc = CLI_EXIT_INTERRUPTED;
	else if (o.status != 0 && o.status != 200) {
		json_error_t jerr;
		json_t *err = o.body ? json_loads(o.body, 0, &jerr) : NULL;
		rc = api_report_error(err, o.status);
		json_decref(err);
	} else if (cc != CURLE_OK && !o.exited) {
		fprintf(stderr, "banger: %s: %s\n", a->v[0], o.failed ? o.error :
		    curl_easy_strerror(cc));
		rc = CLI_EXIT_UNREACHABLE;
	} else if (!o.exited) {
		fprintf(stderr, "banger: %s: %s\n", a->v[0], o.failed ? o.error :
		    "the command's stream ended before its exit");
		rc = CLI_EXIT_SERVER;
	} else if (o.timed_out) {
		fprintf(stderr, "banger: the command ran out of time (--timeout)\n");
		rc = 124;
	} else {
		rc = o.signal > 0 ? 128 + o.signal : o.exit_code;
	}
	free(o.buf);
	free(o.body);
	return rc;
}
