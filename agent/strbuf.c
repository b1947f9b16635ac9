/* strbuf.c - growable buffer and a careful JSON string writer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sb_init(struct strbuf *sb)
{
	memset(sb, 0, sizeof(*sb));
}

void
sb_free(struct strbuf *sb)
{
	free(sb->buf);
	sb_init(sb);
}

static int
sb_reserve(struct strbuf *sb, size_t extra)
{
	if (sb->oom)
		return -1;
	if (extra > ((size_t)-1) / 2 - sb->len) {
		sb->oom = 1;
		return -1;
	}
	size_t need = sb->len + extra + 1;
	if (need <= sb->cap)
		return 0;
	size_t ncap = sb->cap ? sb->cap : 256;
	while (ncap < need)
		ncap *= 2;
	char *nb = realloc(sb->buf, ncap);
	if (nb == NULL) {
		sb->oom = 1;
		return -1;
	}
	sb->buf = nb;
	sb->cap = ncap;
	return 0;
}

void
sb_add(struct strbuf *sb, const char *s, size_t n)
{
	if (sb_reserve(sb, n) < 0)
		return;
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void
sb_puts(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void
sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || sb_reserve(sb, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid.
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
static size_t
utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = 0x80, hi = 0xbf;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = 0x80, hi = 0xbf;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

void
sb_json_str(struct strbuf *sb, const char *str)
{
	if (str == NULL) {
		sb_puts(sb, "null");
		return;
	}
	const unsigned char *s = (const unsigned char *)str;
	sb_add(sb, "\"", 1);
	while (*s) {
		unsigned char c = *s;
		switch (c) {
		case '"':  sb_add(sb, "\\\"", 2); s++; continue;
		case '\\': sb_add(sb, "\\\\", 2); s++; continue;
		case '\n': sb_add(sb, "\\n", 2); s++; continue;
		case '\r': sb_add(sb, "\\r", 2); s++; continue;
		case '\t': sb_add(sb, "\\t", 2); s++; continue;
		case '\b': sb_add(sb, "\\b", 2); s++; continue;
		case '\f': sb_add(sb, "\\f", 2); s++; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			sb_printf(sb, "\\u%04x", c);
			s++;
			continue;
		}
		/* The NUL terminator stops utf8_seq_len's continuation checks,
		 * so it never reads past the end of the string. */
		size_t n = utf8_seq_len(s);
		if (n == 0) {
			sb_add(sb, "\\ufffd", 6);
			s++;
			continue;
		}
		sb_add(sb, (const char *)s, n);
		s += n;
	}
	sb_add(sb, "\"", 1);
}
