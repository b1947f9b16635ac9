/* agent.h - shared declarations of banger-vsock-agent (the guest health agent).
 *
 * The agent is a small static binary: no libraries beyond libc, no NSS calls,
 * so it links with `gcc -static` (glibc) and `musl-gcc -static` alike.
 */
#ifndef BANGER_AGENT_H
#define BANGER_AGENT_H

#include <stddef.h>

#define AGENT_NAME "banger-vsock-agent"
#define AGENT_VERSION "0.1.0"
#define AGENT_PROTOCOL 1

#define AGENT_DEFAULT_PORT 1024u
#define AGENT_DEFAULT_LAYOUT_STATE "/run/banger/layout-state"
#define AGENT_DEFAULT_WORKDISK "/root"
#define AGENT_DEFAULT_WORKDEV "/dev/vdb"

/* Limits of one connection. */
#define AGENT_MAX_HEAD 8192        /* request line + headers */
#define AGENT_IO_TIMEOUT_MS 5000   /* whole request head, and the reply */
#define AGENT_MAX_CONNS 64         /* concurrent connections */

struct agent_config {
	const char *layout_state;
	const char *workdisk;
	const char *workdev;
};

/* ---- strbuf.c: a growable byte buffer and JSON writer ---- */

struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
	int oom;           /* sticky: an allocation failed */
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_add(struct strbuf *sb, const char *s, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_printf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append s as a quoted JSON string: escapes quotes, backslashes and
 * control characters, and replaces invalid UTF-8 with U+FFFD. NULL -> null. */
void sb_json_str(struct strbuf *sb, const char *s);

/* ---- health.c: gathers the /healthz document ---- */

/* Build the /healthz JSON object into sb (appended). */
void health_json(const struct agent_config *cfg, struct strbuf *sb);

/* Helpers exposed for reuse. */
/* Read a small file (at most cap-1 bytes) NUL-terminated; -1 on error. */
int read_small_file(const char *path, char *buf, size_t cap);

/* ---- http.c: one connection ---- */

void serve_connection(int fd, const struct agent_config *cfg);

/* ---- logging, clock ---- */
long long agent_now_ms(void);
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
