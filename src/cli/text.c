/* text.c - the lowest layer of printing: safe text out of bangerd's JSON
 * (control characters replaced, so a VM's last_error cannot move the
 * cursor or rewrite the terminal), sizes and durations, the raw body for
 * --json, and the one updating progress line on stderr.
 *
 * It calls nothing else of banger's, so the transport (client.c) and the
 * API layer (api.c) can print through it.
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
out_name(json_t *obj, const char *fallback, char *buf, size_t len)
{
	const char *name = jstr(obj, WIRE_NAME);

	return out_clean(name ? name : fallback, buf, len);
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
