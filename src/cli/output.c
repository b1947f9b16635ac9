/* output.c - printing for people: tables, key/value lines, sizes; the
 * raw body for --json; the progress line.
 *
 * Strings from bangerd are printed with control characters replaced, so
 * a VM's last_error cannot move the cursor or rewrite the terminal.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

const char *
jstr(json_t *obj, const char *key)
{
	json_t *v = jobj(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

json_t *
jobj(json_t *obj, const char *key)
{
	return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

const char *
out_clean(const char *s, char *buf, size_t len)
{
	size_t i;

	if (len == 0)
		return "";
	for (i = 0; s[i] != '\0' && i + 1 < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		buf[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	buf[i] = '\0';
	return buf;
}

const char *
jtext(json_t *v, char *buf, size_t len)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_STRING:
		return out_clean(json_string_value(v), buf, len);
	case JSON_INTEGER:
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	case JSON_TRUE:
		return out_clean("yes", buf, len);
	case JSON_FALSE:
		return out_clean("no", buf, len);
	case JSON_NULL:
		return out_clean("-", buf, len);
	default: {
		/* Objects and arrays: compact JSON, for completeness. */
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		out_clean(s ? s : "?", buf, len);
		free(s);
		return buf;
	}
	}
}

void
out_bytes(unsigned long long n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

void
out_duration(double seconds, char *buf, size_t len)
{
	unsigned long long s;

	if (seconds < 60.0) {
		snprintf(buf, len, "%.1fs", seconds < 0 ? 0.0 : seconds);
		return;
	}
	s = (unsigned long long)seconds;
	if (s < 3600)
		snprintf(buf, len, "%llum%02llus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lluh%02llum", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%llud%02lluh", s / 86400, s % 86400 / 3600);
}

void
out_raw(const struct reply *r)
{
	if (r->len > 0) {
		fwrite(r->body, 1, r->len, stdout);
		if (r->body[r->len - 1] != '\n')
			fputc('\n', stdout);
	}
	fflush(stdout);
}

static bool status_drawn;

void
out_status_line(const char *text)
{
	struct winsize ws;
	char buf[512];

	out_clean(text, buf, sizeof(buf));
	/* A line that wraps cannot be redrawn with \r: cut it to the width. */
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 &&
	    strlen(buf) >= ws.ws_col)
		buf[ws.ws_col - 1] = '\0';
	fprintf(stderr, "\r\033[K%s", buf);
	fflush(stderr);
	status_drawn = true;
}

void
out_status_clear(void)
{
	if (!status_drawn)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	status_drawn = false;
}

void
out_kv(const char *key, const char *value)
{
	char k[64], buf[2048];

	snprintf(k, sizeof(k), "%s:", key);
	printf("%-14s %s\n", k, out_clean(value ? value : "-", buf, sizeof(buf)));
}

void
table_init(struct table *t, int ncols, const char *const *headers)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols > TABLE_MAX_COLS ? TABLE_MAX_COLS : ncols;
	table_add(t, headers);
}

void
table_add(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = xrealloc(t->cells,
		    t->cap * (size_t)t->ncols * sizeof(char *));
	}
	for (int i = 0; i < t->ncols; i++) {
		const char *s = cells[i] ? cells[i] : "-";
		size_t n = strlen(s) + 1;
		char *c = xmalloc(n);

		out_clean(s, c, n);
		t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = c;
	}
	t->nrows++;
}

void
table_print(const struct table *t, FILE *f)
{
	size_t width[TABLE_MAX_COLS] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (int i = 0; i < t->ncols; i++) {
			size_t n = strlen(t->cells[r * (size_t)t->ncols + (size_t)i]);
			if (n > width[i])
				width[i] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (int i = 0; i < t->ncols; i++) {
			const char *c = t->cells[r * (size_t)t->ncols + (size_t)i];

			if (i == t->ncols - 1)
				fprintf(f, "%s\n", c);
			else
				fprintf(f, "%-*s  ", (int)width[i], c);
		}
	}
}

void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

int
out_list(struct cli *cli, const struct list_spec *ls)
{
	struct reply r = { 0 };
	struct table t;
	json_t *items, *item;
	size_t i;
	int rc;

	rc = api_call(cli, "GET", ls->path, NULL, &r);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (cli->json) {
		out_raw(&r);
		goto out;
	}
	items = jobj(r.json, ls->key);
	if (!json_is_array(items)) {
		fprintf(stderr, "banger: bangerd's answer to GET %s has no \"%s\" "
		    "array\n", ls->path, ls->key);
		rc = CLI_EXIT_SERVER;
		goto out;
	}
	if (cli->quiet) {
		char buf[256];

		json_array_foreach(items, i, item)
			printf("%s\n", jtext(jobj(item, ls->id_key), buf, sizeof(buf)));
		goto out;
	}
	table_init(&t, ls->ncols, ls->headers);
	json_array_foreach(items, i, item) {
		char c[TABLE_MAX_COLS][1024];
		const char *row[TABLE_MAX_COLS];

		for (int k = 0; k < ls->ncols; k++) {
			if (ls->cell != NULL)
				ls->cell(item, k, c[k], sizeof(c[k]));
			else
				jtext(jobj(item, ls->keys[k]), c[k], sizeof(c[k]));
			row[k] = c[k];
		}
		table_add(&t, row);
	}
	table_print(&t, stdout);
	table_free(&t);
out:
	reply_free(&r);
	return rc;
}
