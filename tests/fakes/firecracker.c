/*
 * firecracker.c - a Firecracker test double for bangerd's tests.
 *
 * Speaks the Firecracker HTTP API (v1.16.1 behaviour) on an AF_UNIX socket,
 * validates request bodies the way Firecracker's serde structs do, emulates the
 * pre-boot / post-boot state machine, fakes a serial console on stdout and, once
 * "booted", runs the real guest agent as a child process behind a vsock
 * hybrid-protocol ("CONNECT <port>\n" / "OK <hostport>\n") Unix socket.
 *
 * Test hooks (environment):
 *   BANGER_FAKE_FC_FAULTS   JSON file with injected faults (see read_faults()).
 *   BANGER_FAKE_FC_LOG      append one JSON line per API request to this file.
 *   BANGER_FAKE_AGENT       guest agent binary (default:
 *                           <dir of this exe>/../../runtime/banger-vsock-agent).
 *   BANGER_FAKE_AGENT_PORT  guest vsock port the agent listens on (default 1024).
 *   BANGER_FAKE_READY       the agent's --ready checks (default "workdisk").
 *   BANGER_FAKE_SSH_PORT    the port its "sshd" check looks at (default 22).
 *   The agent's POST /poweroff comes back as "<this exe> poweroff|reboot"
 *   (--poweroff-cmd): a reboot ends the fake like Firecracker's reset exit,
 *   a poweroff halts the "guest" and the fake keeps running, as on x86.
 *
 * Build: gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow \
 *        -Wstrict-prototypes -Wmissing-prototypes -Wno-format-truncation \
 *        -o tests/fakes/firecracker tests/fakes/firecracker.c \
 *        -lmicrohttpd -ljansson -lpthread
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#define FC_VERSION "1.16.1"
#define DEFAULT_API_SOCK "/run/firecracker.socket"
#define DEFAULT_INSTANCE_ID "anonymous-instance"
#define DEFAULT_PAYLOAD_LIMIT 51200
#define DEFAULT_AGENT_PORT 1024u
#define FIRST_HOST_PORT 1073741824u /* 2^30 */

#define EXIT_ARG_PARSING 153
#define EXIT_GENERIC 1
#define EXIT_SIGHUP 156

/* ------------------------------------------------------------------------ */
/* Small utilities                                                          */
/* ------------------------------------------------------------------------ */

/* Firecracker is built against musl, so io::Error strings are musl's. */
static const char *os_strerror(int e)
{
    switch (e) {
    case EPERM: return "Operation not permitted";
    case ENOENT: return "No such file or directory";
    case EACCES: return "Permission denied";
    case EEXIST: return "File exists";
    case ENOTDIR: return "Not a directory";
    case EISDIR: return "Is a directory";
    case EINVAL: return "Invalid argument";
    case ENAMETOOLONG: return "Filename too long";
    case ELOOP: return "Symbolic link loop";
    case EADDRINUSE: return "Address in use";
    case EADDRNOTAVAIL: return "Address not available";
    case ECONNREFUSED: return "Connection refused";
    case EBUSY: return "Resource busy";
    case ENXIO: return "No such device or address";
    case EROFS: return "Read-only file system";
    case ETXTBSY: return "Text file busy";
    case EAGAIN: return "Resource temporarily unavailable";
    case ENOSPC: return "No space left on device";
    case EMFILE: return "No file descriptors available";
    case ENOMEM: return "Out of memory";
    case ENODEV: return "No such device";
    default: return strerror(e);
    }
}

/* Rust's Display for an OS io::Error. */
static void io_err_str(char *buf, size_t cap, int e)
{
    snprintf(buf, cap, "%s (os error %d)", os_strerror(e), e);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void write_all_fd(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += w;
        len -= (size_t)w;
    }
}

static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Growable string buffer. */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_putn(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np)
            abort();
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf_t *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_putn(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        abort();
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_putn(b, big, (size_t)n);
    free(big);
}

/* Rust's {:?} formatting of a str: quoted, with escapes. */
static void sb_rust_debug_str(sbuf_t *b, const char *s, size_t n)
{
    sb_putn(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        case '\0': sb_puts(b, "\\0"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                sb_printf(b, "\\u{%x}", c);
            else
                sb_putn(b, (const char *)&c, 1);
        }
    }
    sb_putn(b, "\"", 1);
}

static int str_icase_eq(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

/* ------------------------------------------------------------------------ */
/* Global state                                                             */
/* ------------------------------------------------------------------------ */

enum vm_state { ST_NOT_STARTED, ST_RUNNING, ST_PAUSED };

enum log_level { LV_OFF = 0, LV_ERROR, LV_WARN, LV_INFO, LV_DEBUG, LV_TRACE };

typedef struct {
    int active;               /* faults file present and match_id matched */
    json_t *fail;             /* array of "METHOD /path" strings */
    char fail_message[1024];
    long listen_delay_ms;
    int die_after_start;
    int exit_at_start_set;
    int exit_at_start;
    long agent_delay_ms;
    int no_agent;
    int ignore_ctrl_alt_del;
    int ignore_poweroff;
    char agent_ready[64];     /* the agent's --ready, over BANGER_FAKE_READY */
    long agent_ssh_port;      /* its --ssh-port, over BANGER_FAKE_SSH_PORT */
    long shutdown_delay_ms;
} faults_t;

static struct {
    pthread_mutex_t mu;
    char id[128];
    char api_sock[PATH_MAX];
    char exe_dir[PATH_MAX];
    size_t payload_limit;
    int enable_pci;
    int boot_timer;

    enum vm_state state;
    /* configuration, as accepted */
    json_t *boot_source;   /* object or NULL */
    json_t *drives;        /* array of full objects, root first */
    json_t *machine;       /* full object */
    json_t *nets;          /* array of full objects */
    json_t *vsock;         /* object or NULL */
    json_t *logger_cfg;    /* object or NULL */
    json_t *metrics_cfg;   /* object or NULL */
    json_t *entropy;       /* object or NULL */
    json_t *mmds;          /* data store (object) or NULL */
    json_t *mmds_cfg;      /* object or NULL */
    json_t *serial_cfg;    /* object or NULL */

    /* logger */
    int logger_configured;
    int log_fd;            /* -1: stdout */
    enum log_level level;
    int show_level, show_origin;
    char module[256];

    int metrics_fd;
    int console_fd;        /* stdout or serial_out_path */

    /* vsock */
    int vsock_fd;
    char vsock_path[PATH_MAX];
    char agent_sock[PATH_MAX + 16];
    int agent_sock_created;
    atomic_uint next_host_port;
    unsigned agent_port;
    pthread_t vsock_thread;
    int vsock_thread_started;

    /* agent child */
    pid_t agent_pid;

    /* events to the main thread */
    int cmd_pipe[2];
    int ctrl_alt_del_pending; /* received while paused */

    /* request log */
    int reqlog_fd;

    faults_t faults;
    struct MHD_Daemon *mhd;
    uint64_t start_ms;     /* InstanceStart time, for console timestamps */
} G = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .log_fd = -1,
    .level = LV_INFO,
    .metrics_fd = -1,
    .console_fd = STDOUT_FILENO,
    .vsock_fd = -1,
    .agent_pid = -1,
    .cmd_pipe = {-1, -1},
    .reqlog_fd = -1,
};

static __thread const char *t_thread_name = "main";

/* ------------------------------------------------------------------------ */
/* Firecracker-style logger                                                 */
/* ------------------------------------------------------------------------ */

static const char *level_name(enum log_level l)
{
    switch (l) {
    case LV_ERROR: return "ERROR";
    case LV_WARN: return "WARN";
    case LV_INFO: return "INFO";
    case LV_DEBUG: return "DEBUG";
    case LV_TRACE: return "TRACE";
    default: return "OFF";
    }
}

static void fc_log_at(enum log_level lvl, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fc_log_at(enum log_level lvl, const char *file, int line, const char *fmt, ...)
{
    if (lvl > G.level || G.level == LV_OFF)
        return;
    if (G.module[0] && strncmp("firecracker", G.module, strlen(G.module)) != 0 &&
        strncmp("vmm", G.module, strlen(G.module)) != 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    sbuf_t b = {0};
    sb_printf(&b, "%04d-%02d-%02dT%02d:%02d:%02d.%09ld [%s:%s", tm.tm_year + 1900, tm.tm_mon + 1,
              tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec, G.id, t_thread_name);
    if (G.show_level)
        sb_printf(&b, ":%s", level_name(lvl));
    if (G.show_origin)
        sb_printf(&b, ":%s:%d", file, line);
    sb_puts(&b, "] ");
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sb_puts(&b, msg);
    sb_puts(&b, "\n");
    write_all_fd(G.log_fd >= 0 ? G.log_fd : STDOUT_FILENO, b.p, b.len);
    free(b.p);
}

#define LOG_ERROR(...) fc_log_at(LV_ERROR, "src/vmm/src/lib.rs", __LINE__, __VA_ARGS__)
#define LOG_WARN(...) fc_log_at(LV_WARN, "src/vmm/src/lib.rs", __LINE__, __VA_ARGS__)
#define LOG_INFO(...) fc_log_at(LV_INFO, "src/vmm/src/lib.rs", __LINE__, __VA_ARGS__)
#define LOG_DEBUG(...) fc_log_at(LV_DEBUG, "src/vmm/src/lib.rs", __LINE__, __VA_ARGS__)

static void fake_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fake_note(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[2200];
    int n = snprintf(line, sizeof line, "[fake-firecracker %s] %s\n", G.id, msg);
    if (n > 0)
        write_all_fd(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static int parse_level(const char *s, enum log_level *out)
{
    if (str_icase_eq(s, "off")) *out = LV_OFF;
    else if (str_icase_eq(s, "trace")) *out = LV_TRACE;
    else if (str_icase_eq(s, "debug")) *out = LV_DEBUG;
    else if (str_icase_eq(s, "info")) *out = LV_INFO;
    else if (str_icase_eq(s, "warn") || str_icase_eq(s, "warning")) *out = LV_WARN;
    else if (str_icase_eq(s, "error")) *out = LV_ERROR;
    else return -1;
    return 0;
}

static int open_nonblock_append(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
}

/* ------------------------------------------------------------------------ */
/* serde_json-like typed JSON parser                                        */
/* ------------------------------------------------------------------------ */
/*
 * Firecracker deserializes request bodies with serde_json straight into
 * `#[serde(deny_unknown_fields)]` structs. That is a streaming parse: the first
 * problem encountered wins, and errors carry "at line L column C". This parser
 * follows the same order and wording so bangerd sees realistic fault messages.
 */

enum ftype { FT_STR, FT_PATH, FT_BOOL, FT_UINT, FT_ENUM, FT_LEVEL, FT_MAC, FT_STRUCT, FT_ANY,
             FT_STRVEC, FT_STRMAP, FT_IPV4 };

struct schema;
typedef struct field {
    const char *name;
    enum ftype type;
    int opt;      /* Option<T>: null is accepted (treated as absent) */
    int required; /* missing -> "missing field" */
    const char *tname;        /* FT_UINT: "u8"... FT_ENUM: enum name */
    uint64_t max;             /* FT_UINT */
    const char *const *variants; /* FT_ENUM */
    const struct schema *sub; /* FT_STRUCT */
} field_t;

typedef struct schema {
    const char *name;
    const field_t *fields; /* terminated by name == NULL */
} schema_t;

typedef struct {
    const char *s;
    size_t n, i;
    int bad;
    int depth;
    char err[1024];
} jp_t;

static void jp_fail(jp_t *p, size_t upto, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void jp_fail(jp_t *p, size_t upto, const char *fmt, ...)
{
    if (p->bad)
        return;
    p->bad = 1;
    if (upto > p->n)
        upto = p->n;
    size_t line = 1, ls = 0;
    for (size_t k = 0; k < upto; k++)
        if (p->s[k] == '\n') {
            line++;
            ls = k + 1;
        }
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, sizeof p->err, "%s at line %zu column %zu", msg, line, upto - ls);
}

static void jp_ws(jp_t *p)
{
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            p->i++;
        else
            break;
    }
}

static int jp_eof(jp_t *p) { return p->i >= p->n; }

static void utf8_put(sbuf_t *b, uint32_t cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) { o[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    sb_putn(b, o, n);
}

static int hex4(jp_t *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing a string");
            return -1;
        }
        char c = p->s[p->i++];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else {
            jp_fail(p, p->i, "invalid escape");
            return -1;
        }
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* Length of a valid UTF-8 sequence starting at s (max n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80) return 1;
    size_t len;
    uint32_t min;
    if ((s[0] & 0xE0) == 0xC0) { len = 2; min = 0x80; }
    else if ((s[0] & 0xF0) == 0xE0) { len = 3; min = 0x800; }
    else if ((s[0] & 0xF8) == 0xF0) { len = 4; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    uint32_t cp = s[0] & (0x7F >> len);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* At '"'. Decodes into *out (malloc'd, NUL-terminated). */
static int jp_string(jp_t *p, char **out, size_t *outlen)
{
    sbuf_t b = {0};
    sb_putn(&b, "", 0);
    p->i++; /* opening quote */
    for (;;) {
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing a string");
            goto fail;
        }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20) {
            jp_fail(p, p->i + 1, "control character (\\u0000-\\u001F) found while parsing a string");
            goto fail;
        }
        if (c == '\\') {
            p->i++;
            if (jp_eof(p)) {
                jp_fail(p, p->n, "EOF while parsing a string");
                goto fail;
            }
            char e = p->s[p->i++];
            switch (e) {
            case '"': sb_putn(&b, "\"", 1); break;
            case '\\': sb_putn(&b, "\\", 1); break;
            case '/': sb_putn(&b, "/", 1); break;
            case 'b': sb_putn(&b, "\b", 1); break;
            case 'f': sb_putn(&b, "\f", 1); break;
            case 'n': sb_putn(&b, "\n", 1); break;
            case 'r': sb_putn(&b, "\r", 1); break;
            case 't': sb_putn(&b, "\t", 1); break;
            case 'u': {
                uint32_t cp;
                if (hex4(p, &cp))
                    goto fail;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    jp_fail(p, p->i, "lone leading surrogate in hex escape");
                    goto fail;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->i + 1 >= p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                        jp_fail(p, p->i, "unexpected end of hex escape");
                        goto fail;
                    }
                    p->i += 2;
                    uint32_t lo;
                    if (hex4(p, &lo))
                        goto fail;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        jp_fail(p, p->i, "lone leading surrogate in hex escape");
                        goto fail;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                utf8_put(&b, cp);
                break;
            }
            default:
                jp_fail(p, p->i, "invalid escape");
                goto fail;
            }
            continue;
        }
        size_t l = utf8_seq((const unsigned char *)p->s + p->i, p->n - p->i);
        if (l == 0) {
            jp_fail(p, p->i + 1, "invalid unicode code point");
            goto fail;
        }
        sb_putn(&b, p->s + p->i, l);
        p->i += l;
    }
    *out = b.p;
    if (outlen)
        *outlen = b.len;
    return 0;
fail:
    free(b.p);
    return -1;
}

typedef struct {
    int is_float;  /* could not be represented as u64 / i64 */
    int neg;
    uint64_t u;    /* magnitude when !is_float && !neg */
    int64_t i;     /* value when !is_float && neg */
    double d;
} jnum_t;

static int jp_number(jp_t *p, jnum_t *num)
{
    size_t st = p->i;
    memset(num, 0, sizeof *num);
    if (p->s[p->i] == '-') {
        num->neg = 1;
        p->i++;
    }
    if (jp_eof(p)) {
        jp_fail(p, p->n, "EOF while parsing a value");
        return -1;
    }
    if (!isdigit((unsigned char)p->s[p->i])) {
        jp_fail(p, p->i + 1, "invalid number");
        return -1;
    }
    if (p->s[p->i] == '0') {
        p->i++;
        if (!jp_eof(p) && isdigit((unsigned char)p->s[p->i])) {
            jp_fail(p, p->i + 1, "invalid number");
            return -1;
        }
    } else {
        while (!jp_eof(p) && isdigit((unsigned char)p->s[p->i]))
            p->i++;
    }
    int frac = 0;
    if (!jp_eof(p) && p->s[p->i] == '.') {
        frac = 1;
        p->i++;
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing a value");
            return -1;
        }
        if (!isdigit((unsigned char)p->s[p->i])) {
            jp_fail(p, p->i + 1, "invalid number");
            return -1;
        }
        while (!jp_eof(p) && isdigit((unsigned char)p->s[p->i]))
            p->i++;
    }
    if (!jp_eof(p) && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        frac = 1;
        p->i++;
        if (!jp_eof(p) && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing a value");
            return -1;
        }
        if (!isdigit((unsigned char)p->s[p->i])) {
            jp_fail(p, p->i + 1, "invalid number");
            return -1;
        }
        while (!jp_eof(p) && isdigit((unsigned char)p->s[p->i]))
            p->i++;
    }
    char tmp[400];
    size_t len = p->i - st;
    if (len >= sizeof tmp)
        len = sizeof tmp - 1;
    memcpy(tmp, p->s + st, len);
    tmp[len] = '\0';
    num->d = strtod(tmp, NULL);
    if (frac) {
        num->is_float = 1;
        return 0;
    }
    errno = 0;
    if (num->neg) {
        long long v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            num->is_float = 1;
        else
            num->i = v;
    } else {
        unsigned long long v = strtoull(tmp, NULL, 10);
        if (errno == ERANGE)
            num->is_float = 1;
        else
            num->u = v;
    }
    return 0;
}

static int jp_ident(jp_t *p, const char *word)
{
    size_t wl = strlen(word);
    for (size_t k = 0; k < wl; k++) {
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing a value");
            return -1;
        }
        if (p->s[p->i] != word[k]) {
            jp_fail(p, p->i + 1, "expected ident");
            return -1;
        }
        p->i++;
    }
    return 0;
}

static void fmt_float(char *buf, size_t cap, double d)
{
    if (d == (double)(long long)d && d < 1e16 && d > -1e16)
        snprintf(buf, cap, "%.1f", d);
    else
        snprintf(buf, cap, "%.17g", d);
}

static void describe_num(char *buf, size_t cap, const jnum_t *num)
{
    if (num->is_float) {
        char f[64];
        fmt_float(f, sizeof f, num->d);
        snprintf(buf, cap, "floating point `%s`", f);
    } else if (num->neg)
        snprintf(buf, cap, "integer `%" PRId64 "`", num->i);
    else
        snprintf(buf, cap, "integer `%" PRIu64 "`", num->u);
}

/*
 * Produce serde's "invalid type: <unexpected>, expected <exp>" for the value at
 * the cursor (already known not to fit).
 */
static void jp_invalid_type(jp_t *p, const char *exp)
{
    jp_ws(p);
    if (jp_eof(p)) {
        jp_fail(p, p->n, "EOF while parsing a value");
        return;
    }
    char c = p->s[p->i];
    if (c == '"') {
        char *s = NULL;
        size_t sl = 0;
        if (jp_string(p, &s, &sl))
            return;
        sbuf_t d = {0};
        sb_rust_debug_str(&d, s, sl);
        jp_fail(p, p->i, "invalid type: string %s, expected %s", d.p, exp);
        free(d.p);
        free(s);
    } else if (c == '-' || isdigit((unsigned char)c)) {
        jnum_t num;
        if (jp_number(p, &num))
            return;
        char d[128];
        describe_num(d, sizeof d, &num);
        jp_fail(p, p->i, "invalid type: %s, expected %s", d, exp);
    } else if (c == 't' || c == 'f') {
        const char *w = c == 't' ? "true" : "false";
        if (jp_ident(p, w))
            return;
        jp_fail(p, p->i, "invalid type: boolean `%s`, expected %s", w, exp);
    } else if (c == 'n') {
        if (jp_ident(p, "null"))
            return;
        jp_fail(p, p->i, "invalid type: null, expected %s", exp);
    } else if (c == '[') {
        jp_fail(p, p->i + 1, "invalid type: sequence, expected %s", exp);
    } else if (c == '{') {
        jp_fail(p, p->i + 1, "invalid type: map, expected %s", exp);
    } else {
        jp_fail(p, p->i + 1, "expected value");
    }
}

static void one_of(char *buf, size_t cap, const char *const *names, const char *what)
{
    size_t cnt = 0;
    while (names[cnt])
        cnt++;
    sbuf_t b = {0};
    if (cnt == 0)
        sb_printf(&b, "there are no %s", what);
    else if (cnt == 1)
        sb_printf(&b, "expected `%s`", names[0]);
    else if (cnt == 2)
        sb_printf(&b, "expected `%s` or `%s`", names[0], names[1]);
    else {
        sb_puts(&b, "expected one of ");
        for (size_t k = 0; k < cnt; k++)
            sb_printf(&b, "%s`%s`", k ? ", " : "", names[k]);
    }
    snprintf(buf, cap, "%s", b.p);
    free(b.p);
}

static json_t *jp_value(jp_t *p);

static json_t *jp_array_any(jp_t *p)
{
    if (++p->depth > 128) {
        jp_fail(p, p->i + 1, "recursion limit exceeded");
        return NULL;
    }
    p->i++;
    json_t *arr = json_array();
    jp_ws(p);
    if (!jp_eof(p) && p->s[p->i] == ']') {
        p->i++;
        p->depth--;
        return arr;
    }
    for (;;) {
        json_t *v = jp_value(p);
        if (!v)
            goto fail;
        json_array_append_new(arr, v);
        jp_ws(p);
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing a list");
            goto fail;
        }
        char c = p->s[p->i];
        if (c == ',') {
            p->i++;
            jp_ws(p);
            if (!jp_eof(p) && p->s[p->i] == ']') {
                jp_fail(p, p->i + 1, "trailing comma");
                goto fail;
            }
            continue;
        }
        if (c == ']') {
            p->i++;
            break;
        }
        jp_fail(p, p->i + 1, "expected `,` or `]`");
        goto fail;
    }
    p->depth--;
    return arr;
fail:
    json_decref(arr);
    return NULL;
}

static json_t *jp_object_any(jp_t *p)
{
    if (++p->depth > 128) {
        jp_fail(p, p->i + 1, "recursion limit exceeded");
        return NULL;
    }
    p->i++;
    json_t *obj = json_object();
    jp_ws(p);
    if (!jp_eof(p) && p->s[p->i] == '}') {
        p->i++;
        p->depth--;
        return obj;
    }
    for (;;) {
        jp_ws(p);
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing an object");
            goto fail;
        }
        if (p->s[p->i] != '"') {
            jp_fail(p, p->i + 1, "key must be a string");
            goto fail;
        }
        char *key = NULL;
        if (jp_string(p, &key, NULL))
            goto fail;
        jp_ws(p);
        if (jp_eof(p)) {
            free(key);
            jp_fail(p, p->n, "EOF while parsing an object");
            goto fail;
        }
        if (p->s[p->i] != ':') {
            free(key);
            jp_fail(p, p->i + 1, "expected `:`");
            goto fail;
        }
        p->i++;
        json_t *v = jp_value(p);
        if (!v) {
            free(key);
            goto fail;
        }
        json_object_set_new(obj, key, v);
        free(key);
        jp_ws(p);
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing an object");
            goto fail;
        }
        char c = p->s[p->i];
        if (c == ',') {
            p->i++;
            jp_ws(p);
            if (!jp_eof(p) && p->s[p->i] == '}') {
                jp_fail(p, p->i + 1, "trailing comma");
                goto fail;
            }
            continue;
        }
        if (c == '}') {
            p->i++;
            break;
        }
        jp_fail(p, p->i + 1, "expected `,` or `}`");
        goto fail;
    }
    p->depth--;
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

/* Any JSON value (serde_json::Value). */
static json_t *jp_value(jp_t *p)
{
    jp_ws(p);
    if (jp_eof(p)) {
        jp_fail(p, p->n, "EOF while parsing a value");
        return NULL;
    }
    char c = p->s[p->i];
    switch (c) {
    case '{': return jp_object_any(p);
    case '[': return jp_array_any(p);
    case '"': {
        char *s;
        size_t l;
        if (jp_string(p, &s, &l))
            return NULL;
        json_t *v = json_stringn(s, l);
        free(s);
        return v;
    }
    case 't': return jp_ident(p, "true") ? NULL : json_true();
    case 'f': return jp_ident(p, "false") ? NULL : json_false();
    case 'n': return jp_ident(p, "null") ? NULL : json_null();
    default:
        if (c == '-' || isdigit((unsigned char)c)) {
            jnum_t num;
            if (jp_number(p, &num))
                return NULL;
            if (num.is_float)
                return json_real(num.d);
            if (num.neg)
                return json_integer((json_int_t)num.i);
            if (num.u > (uint64_t)INT64_MAX)
                return json_real((double)num.u);
            return json_integer((json_int_t)num.u);
        }
        jp_fail(p, p->i + 1, "expected value");
        return NULL;
    }
}

static json_t *jp_struct(jp_t *p, const schema_t *sc);

static int valid_mac(const char *s)
{
    if (strlen(s) != 17)
        return 0;
    for (int k = 0; k < 17; k++) {
        if (k % 3 == 2) {
            if (s[k] != ':')
                return 0;
        } else if (!isxdigit((unsigned char)s[k]))
            return 0;
    }
    return 1;
}

static int valid_ipv4(const char *s)
{
    int parts = 0;
    const char *q = s;
    while (*q) {
        if (!isdigit((unsigned char)*q))
            return 0;
        int v = 0, digits = 0;
        while (isdigit((unsigned char)*q)) {
            v = v * 10 + (*q - '0');
            q++;
            if (++digits > 3)
                return 0;
        }
        if (v > 255)
            return 0;
        parts++;
        if (*q == '.') {
            q++;
            if (!*q)
                return 0;
        } else if (*q)
            return 0;
    }
    return parts == 4;
}

/* Parse one field value per its type. Returns NULL (without error) for an
 * explicit null on an Option<> field; check p->bad for errors. */
static json_t *jp_field(jp_t *p, const field_t *f)
{
    jp_ws(p);
    if (jp_eof(p)) {
        jp_fail(p, p->n, "EOF while parsing a value");
        return NULL;
    }
    char c = p->s[p->i];
    if (f->opt && c == 'n') {
        jp_ident(p, "null");
        return NULL;
    }
    switch (f->type) {
    case FT_STR:
    case FT_PATH:
    case FT_MAC:
    case FT_LEVEL:
    case FT_ENUM:
    case FT_IPV4: {
        const char *exp = "a string";
        char enum_exp[128];
        if (f->type == FT_PATH) exp = "path string";
        else if (f->type == FT_ENUM) {
            snprintf(enum_exp, sizeof enum_exp, "enum %s", f->tname);
            exp = enum_exp;
        } else if (f->type == FT_IPV4) exp = "IPv4 address";
        if (c != '"') {
            jp_invalid_type(p, exp);
            return NULL;
        }
        char *s;
        size_t l;
        if (jp_string(p, &s, &l))
            return NULL;
        if (f->type == FT_ENUM) {
            int ok = 0;
            for (const char *const *v = f->variants; *v; v++)
                if (strcmp(*v, s) == 0)
                    ok = 1;
            if (!ok) {
                char exps[512];
                one_of(exps, sizeof exps, f->variants, "variants");
                jp_fail(p, p->i, "unknown variant `%s`, %s", s, exps);
                free(s);
                return NULL;
            }
        } else if (f->type == FT_LEVEL) {
            enum log_level lv;
            if (parse_level(s, &lv)) {
                jp_fail(p, p->i, "Invalid LevelFilter");
                free(s);
                return NULL;
            }
        } else if (f->type == FT_MAC) {
            if (!valid_mac(s)) {
                jp_fail(p, p->i, "invalid MAC address: %s", s);
                free(s);
                return NULL;
            }
        } else if (f->type == FT_IPV4) {
            if (!valid_ipv4(s)) {
                jp_fail(p, p->i, "invalid IPv4 address syntax");
                free(s);
                return NULL;
            }
        }
        json_t *v = json_stringn(s, l);
        free(s);
        return v;
    }
    case FT_BOOL:
        if (c == 't' && p->i + 4 <= p->n && memcmp(p->s + p->i, "true", 4) == 0) {
            p->i += 4;
            return json_true();
        }
        if (c == 'f' && p->i + 5 <= p->n && memcmp(p->s + p->i, "false", 5) == 0) {
            p->i += 5;
            return json_false();
        }
        jp_invalid_type(p, "a boolean");
        return NULL;
    case FT_UINT: {
        if (!(c == '-' || isdigit((unsigned char)c))) {
            jp_invalid_type(p, f->tname);
            return NULL;
        }
        jnum_t num;
        if (jp_number(p, &num))
            return NULL;
        char d[128];
        describe_num(d, sizeof d, &num);
        if (num.is_float) {
            jp_fail(p, p->i, "invalid type: %s, expected %s", d, f->tname);
            return NULL;
        }
        if (num.neg || num.u > f->max) {
            jp_fail(p, p->i, "invalid value: %s, expected %s", d, f->tname);
            return NULL;
        }
        if (num.u > (uint64_t)INT64_MAX)
            return json_real((double)num.u);
        return json_integer((json_int_t)num.u);
    }
    case FT_STRUCT:
        return jp_struct(p, f->sub);
    case FT_ANY:
        return jp_value(p);
    case FT_STRVEC: {
        if (c != '[') {
            jp_invalid_type(p, "a sequence");
            return NULL;
        }
        json_t *arr = jp_array_any(p);
        if (!arr)
            return NULL;
        size_t k;
        json_t *e;
        json_array_foreach(arr, k, e) {
            if (!json_is_string(e)) {
                jp_fail(p, p->i, "invalid type: non-string element, expected a string");
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    case FT_STRMAP: {
        if (c != '{') {
            jp_invalid_type(p, "a map");
            return NULL;
        }
        json_t *obj = jp_object_any(p);
        if (!obj)
            return NULL;
        const char *k;
        json_t *e;
        json_object_foreach(obj, k, e) {
            if (!json_is_string(e)) {
                jp_fail(p, p->i, "invalid type: non-string value, expected a string");
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    }
    return NULL;
}

static json_t *jp_struct(jp_t *p, const schema_t *sc)
{
    char exp[128];
    snprintf(exp, sizeof exp, "struct %s", sc->name);
    jp_ws(p);
    if (jp_eof(p)) {
        jp_fail(p, p->n, "EOF while parsing a value");
        return NULL;
    }
    if (p->s[p->i] != '{') {
        jp_invalid_type(p, exp);
        return NULL;
    }
    if (++p->depth > 128) {
        jp_fail(p, p->i + 1, "recursion limit exceeded");
        return NULL;
    }
    p->i++;
    size_t nf = 0;
    while (sc->fields[nf].name)
        nf++;
    const char *names[33];
    for (size_t k = 0; k < nf && k < 32; k++)
        names[k] = sc->fields[k].name;
    names[nf < 32 ? nf : 32] = NULL;
    uint32_t seen = 0;
    json_t *obj = json_object();
    jp_ws(p);
    if (!jp_eof(p) && p->s[p->i] == '}') {
        p->i++;
        goto done;
    }
    for (;;) {
        jp_ws(p);
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing an object");
            goto fail;
        }
        if (p->s[p->i] != '"') {
            jp_fail(p, p->i + 1, "key must be a string");
            goto fail;
        }
        char *key = NULL;
        if (jp_string(p, &key, NULL))
            goto fail;
        size_t fi;
        for (fi = 0; fi < nf; fi++)
            if (strcmp(sc->fields[fi].name, key) == 0)
                break;
        if (fi == nf) {
            char exps[512];
            one_of(exps, sizeof exps, names, "fields");
            jp_fail(p, p->i, "unknown field `%s`, %s", key, exps);
            free(key);
            goto fail;
        }
        free(key);
        if (seen & (1u << fi)) {
            jp_fail(p, p->i, "duplicate field `%s`", sc->fields[fi].name);
            goto fail;
        }
        seen |= 1u << fi;
        jp_ws(p);
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing an object");
            goto fail;
        }
        if (p->s[p->i] != ':') {
            jp_fail(p, p->i + 1, "expected `:`");
            goto fail;
        }
        p->i++;
        json_t *v = jp_field(p, &sc->fields[fi]);
        if (p->bad) {
            json_decref(v);
            goto fail;
        }
        if (v)
            json_object_set_new(obj, sc->fields[fi].name, v);
        jp_ws(p);
        if (jp_eof(p)) {
            jp_fail(p, p->n, "EOF while parsing an object");
            goto fail;
        }
        char c = p->s[p->i];
        if (c == ',') {
            p->i++;
            jp_ws(p);
            if (!jp_eof(p) && p->s[p->i] == '}') {
                jp_fail(p, p->i + 1, "trailing comma");
                goto fail;
            }
            continue;
        }
        if (c == '}') {
            p->i++;
            break;
        }
        jp_fail(p, p->i + 1, "expected `,` or `}`");
        goto fail;
    }
done:
    for (size_t k = 0; k < nf; k++)
        if (sc->fields[k].required && !(seen & (1u << k))) {
            jp_fail(p, p->i, "missing field `%s`", sc->fields[k].name);
            goto fail;
        }
    p->depth--;
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

/* Whole-body parse into a struct; on failure fills fault (Firecracker's
 * RequestError::SerdeJson wording). */
static json_t *parse_body(const char *body, size_t len, const schema_t *sc, char *fault, size_t cap)
{
    jp_t p = {.s = body, .n = len};
    json_t *v = jp_struct(&p, sc);
    if (v && !p.bad) {
        jp_ws(&p);
        if (!jp_eof(&p)) {
            jp_fail(&p, p.i + 1, "trailing characters");
            json_decref(v);
            v = NULL;
        }
    }
    if (!v || p.bad) {
        json_decref(v);
        snprintf(fault, cap, "An error occurred when deserializing the json body of a request: %s.", p.err);
        return NULL;
    }
    return v;
}

static json_t *parse_body_any(const char *body, size_t len, char *fault, size_t cap)
{
    jp_t p = {.s = body, .n = len};
    json_t *v = jp_value(&p);
    if (v && !p.bad) {
        jp_ws(&p);
        if (!jp_eof(&p)) {
            jp_fail(&p, p.i + 1, "trailing characters");
            json_decref(v);
            v = NULL;
        }
    }
    if (!v || p.bad) {
        json_decref(v);
        snprintf(fault, cap, "An error occurred when deserializing the json body of a request: %s.", p.err);
        return NULL;
    }
    return v;
}

/* ---- schemas (field order = Rust declaration order) ---------------------- */

static const char *const V_CPU_TEMPLATE[] = {"C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None", NULL};
static const char *const V_HUGE_PAGES[] = {"None", "Transparent", "2M", NULL};
static const char *const V_CACHE[] = {"Unsafe", "Writeback", NULL};
static const char *const V_ENGINE[] = {"Sync", "Async", NULL};
static const char *const V_ACTION[] = {"FlushMetrics", "InstanceStart", "SendCtrlAltDel", NULL};
static const char *const V_VMSTATE[] = {"Paused", "Resumed", NULL};
static const char *const V_MMDS_VER[] = {"V1", "V2", NULL};

#define U8 "u8", 255u
#define U16 "u16", 65535u
#define U32 "u32", 4294967295u
#define U64 "u64", UINT64_MAX
#define USIZE "usize", UINT64_MAX

static const field_t F_TOKEN_BUCKET[] = {
    {"size", FT_UINT, 0, 1, U64, NULL, NULL},
    {"one_time_burst", FT_UINT, 1, 0, U64, NULL, NULL},
    {"refill_time", FT_UINT, 0, 1, U64, NULL, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_TOKEN_BUCKET = {"TokenBucketConfig", F_TOKEN_BUCKET};

static const field_t F_RATE_LIMITER[] = {
    {"bandwidth", FT_STRUCT, 1, 0, NULL, 0, NULL, &S_TOKEN_BUCKET},
    {"ops", FT_STRUCT, 1, 0, NULL, 0, NULL, &S_TOKEN_BUCKET},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_RATE_LIMITER = {"RateLimiterConfig", F_RATE_LIMITER};

static const field_t F_MACHINE[] = {
    {"vcpu_count", FT_UINT, 0, 1, U8, NULL, NULL},
    {"mem_size_mib", FT_UINT, 0, 1, USIZE, NULL, NULL},
    {"smt", FT_BOOL, 0, 0, NULL, 0, NULL, NULL},
    {"cpu_template", FT_ENUM, 1, 0, "StaticCpuTemplate", 0, V_CPU_TEMPLATE, NULL},
    {"track_dirty_pages", FT_BOOL, 0, 0, NULL, 0, NULL, NULL},
    {"huge_pages", FT_ENUM, 0, 0, "HugePageConfig", 0, V_HUGE_PAGES, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_MACHINE = {"MachineConfig", F_MACHINE};

static const field_t F_MACHINE_UPD[] = {
    {"vcpu_count", FT_UINT, 1, 0, U8, NULL, NULL},
    {"mem_size_mib", FT_UINT, 1, 0, USIZE, NULL, NULL},
    {"smt", FT_BOOL, 1, 0, NULL, 0, NULL, NULL},
    {"cpu_template", FT_ENUM, 1, 0, "StaticCpuTemplate", 0, V_CPU_TEMPLATE, NULL},
    {"track_dirty_pages", FT_BOOL, 1, 0, NULL, 0, NULL, NULL},
    {"huge_pages", FT_ENUM, 1, 0, "HugePageConfig", 0, V_HUGE_PAGES, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_MACHINE_UPD = {"MachineConfigUpdate", F_MACHINE_UPD};

static const field_t F_BOOT[] = {
    {"kernel_image_path", FT_STR, 0, 1, NULL, 0, NULL, NULL},
    {"initrd_path", FT_STR, 1, 0, NULL, 0, NULL, NULL},
    {"boot_args", FT_STR, 1, 0, NULL, 0, NULL, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_BOOT = {"BootSourceConfig", F_BOOT};

static const field_t F_DRIVE[] = {
    {"drive_id", FT_STR, 0, 1, NULL, 0, NULL, NULL},
    {"partuuid", FT_STR, 1, 0, NULL, 0, NULL, NULL},
    {"is_root_device", FT_BOOL, 0, 1, NULL, 0, NULL, NULL},
    {"cache_type", FT_ENUM, 0, 0, "CacheType", 0, V_CACHE, NULL},
    {"is_read_only", FT_BOOL, 1, 0, NULL, 0, NULL, NULL},
    {"path_on_host", FT_STR, 1, 0, NULL, 0, NULL, NULL},
    {"rate_limiter", FT_STRUCT, 1, 0, NULL, 0, NULL, &S_RATE_LIMITER},
    {"io_engine", FT_ENUM, 1, 0, "FileEngineType", 0, V_ENGINE, NULL},
    {"socket", FT_STR, 1, 0, NULL, 0, NULL, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_DRIVE = {"BlockDeviceConfig", F_DRIVE};

static const field_t F_DRIVE_UPD[] = {
    {"drive_id", FT_STR, 0, 1, NULL, 0, NULL, NULL},
    {"path_on_host", FT_STR, 1, 0, NULL, 0, NULL, NULL},
    {"rate_limiter", FT_STRUCT, 1, 0, NULL, 0, NULL, &S_RATE_LIMITER},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_DRIVE_UPD = {"BlockDeviceUpdateConfig", F_DRIVE_UPD};

static const field_t F_NET[] = {
    {"iface_id", FT_STR, 0, 1, NULL, 0, NULL, NULL},
    {"host_dev_name", FT_STR, 0, 1, NULL, 0, NULL, NULL},
    {"guest_mac", FT_MAC, 1, 0, NULL, 0, NULL, NULL},
    {"mtu", FT_UINT, 1, 0, U16, NULL, NULL},
    {"rx_rate_limiter", FT_STRUCT, 1, 0, NULL, 0, NULL, &S_RATE_LIMITER},
    {"tx_rate_limiter", FT_STRUCT, 1, 0, NULL, 0, NULL, &S_RATE_LIMITER},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_NET = {"NetworkInterfaceConfig", F_NET};

static const field_t F_NET_UPD[] = {
    {"iface_id", FT_STR, 0, 1, NULL, 0, NULL, NULL},
    {"rx_rate_limiter", FT_STRUCT, 1, 0, NULL, 0, NULL, &S_RATE_LIMITER},
    {"tx_rate_limiter", FT_STRUCT, 1, 0, NULL, 0, NULL, &S_RATE_LIMITER},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_NET_UPD = {"NetworkInterfaceUpdateConfig", F_NET_UPD};

static const field_t F_VSOCK[] = {
    {"vsock_id", FT_STR, 1, 0, NULL, 0, NULL, NULL},
    {"guest_cid", FT_UINT, 0, 1, U32, NULL, NULL},
    {"uds_path", FT_STR, 0, 1, NULL, 0, NULL, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_VSOCK = {"VsockDeviceConfig", F_VSOCK};

static const field_t F_LOGGER[] = {
    {"log_path", FT_PATH, 1, 0, NULL, 0, NULL, NULL},
    {"level", FT_LEVEL, 1, 0, NULL, 0, NULL, NULL},
    {"show_level", FT_BOOL, 1, 0, NULL, 0, NULL, NULL},
    {"show_log_origin", FT_BOOL, 1, 0, NULL, 0, NULL, NULL},
    {"module", FT_STR, 1, 0, NULL, 0, NULL, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_LOGGER = {"LoggerConfig", F_LOGGER};

static const field_t F_METRICS[] = {
    {"metrics_path", FT_PATH, 0, 1, NULL, 0, NULL, NULL},
    {"emit_id", FT_BOOL, 0, 0, NULL, 0, NULL, NULL},
    {"properties", FT_STRMAP, 1, 0, NULL, 0, NULL, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_METRICS = {"MetricsConfig", F_METRICS};

static const field_t F_SERIAL[] = {
    {"serial_out_path", FT_PATH, 1, 0, NULL, 0, NULL, NULL},
    {"rate_limiter", FT_STRUCT, 1, 0, NULL, 0, NULL, &S_TOKEN_BUCKET},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_SERIAL = {"SerialConfig", F_SERIAL};

static const field_t F_ENTROPY[] = {
    {"rate_limiter", FT_STRUCT, 1, 0, NULL, 0, NULL, &S_RATE_LIMITER},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_ENTROPY = {"EntropyDeviceConfig", F_ENTROPY};

static const field_t F_ACTION[] = {
    {"action_type", FT_ENUM, 0, 1, "ActionType", 0, V_ACTION, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_ACTION = {"ActionBody", F_ACTION};

static const field_t F_VM[] = {
    {"state", FT_ENUM, 0, 1, "VmState", 0, V_VMSTATE, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_VM = {"Vm", F_VM};

static const field_t F_MMDS_CFG[] = {
    {"version", FT_ENUM, 0, 0, "MmdsVersion", 0, V_MMDS_VER, NULL},
    {"network_interfaces", FT_STRVEC, 0, 1, NULL, 0, NULL, NULL},
    {"ipv4_address", FT_IPV4, 1, 0, NULL, 0, NULL, NULL},
    {"imds_compat", FT_BOOL, 0, 0, NULL, 0, NULL, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL}};
static const schema_t S_MMDS_CFG = {"MmdsConfig", F_MMDS_CFG};

/* ------------------------------------------------------------------------ */
/* Request handling                                                         */
/* ------------------------------------------------------------------------ */

enum post_cmd { PC_NONE = 0, PC_STARTED, PC_SHUTDOWN };

typedef struct {
    char *body;
    size_t len, cap;
    size_t total;
    int started;
    enum post_cmd post;
} req_t;

typedef struct {
    unsigned status;
    char *body;        /* malloc'd JSON text, or NULL */
    int deprecation;
    enum post_cmd post;
} resp_t;

static const char NOT_SUPPORTED_POST[] = "The requested operation is not supported after starting the microVM.";
static const char NOT_SUPPORTED_PRE[] = "The requested operation is not supported before starting the microVM.";

static void set_fault(resp_t *r, unsigned status, const char *msg)
{
    json_t *o = json_pack("{s:s}", "fault_message", msg);
    free(r->body);
    r->body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    r->status = status;
}

static void set_json(resp_t *r, json_t *o)
{
    free(r->body);
    r->body = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
    r->status = 200;
}

static void set_ok(resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->status = 204;
}

/* Firecracker's checked_id(): non-empty, alphanumeric or '_'. */
static int checked_id(const char *id, resp_t *r)
{
    if (!id || !*id) {
        set_fault(r, 400, "The ID cannot be empty.");
        return -1;
    }
    for (const char *q = id; *q; q++)
        if (!(isalnum((unsigned char)*q) || *q == '_')) {
            set_fault(r, 400, "API Resource IDs can only contain alphanumeric characters and underscores.");
            return -1;
        }
    return 0;
}

static json_t *machine_default(void)
{
    return json_pack("{s:i,s:i,s:b,s:b,s:s}", "vcpu_count", 1, "mem_size_mib", 128, "smt", 0,
                     "track_dirty_pages", 0, "huge_pages", "None");
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int jbool(json_t *o, const char *k, int dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* --- GET handlers --- */

static const char *state_str(void)
{
    switch (G.state) {
    case ST_RUNNING: return "Running";
    case ST_PAUSED: return "Paused";
    default: return "Not started";
    }
}

static void h_get_instance(resp_t *r)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "id", G.id, "state", state_str(), "vmm_version",
                          FC_VERSION, "app_name", "Firecracker");
    set_json(r, o);
    json_decref(o);
}

static void h_get_version(resp_t *r)
{
    json_t *o = json_pack("{s:s}", "firecracker_version", FC_VERSION);
    set_json(r, o);
    json_decref(o);
}

static void h_get_machine(resp_t *r) { set_json(r, G.machine); }

static void h_get_vm_config(resp_t *r)
{
    json_t *o = json_object();
    json_t *bs = G.boot_source ? json_deep_copy(G.boot_source)
                               : json_pack("{s:s}", "kernel_image_path", "");
    if (!json_object_get(bs, "initrd_path"))
        json_object_set_new(bs, "initrd_path", json_null());
    if (!json_object_get(bs, "boot_args"))
        json_object_set_new(bs, "boot_args", json_null());
    json_object_set_new(o, "balloon", json_null());
    json_object_set_new(o, "drives", json_deep_copy(G.drives));
    json_object_set_new(o, "boot-source", bs);
    json_object_set_new(o, "cpu-config", json_null());
    json_object_set_new(o, "logger", G.logger_cfg ? json_deep_copy(G.logger_cfg) : json_null());
    json_object_set_new(o, "machine-config", json_deep_copy(G.machine));
    json_object_set_new(o, "metrics", G.metrics_cfg ? json_deep_copy(G.metrics_cfg) : json_null());
    json_object_set_new(o, "mmds-config", G.mmds_cfg ? json_deep_copy(G.mmds_cfg) : json_null());
    json_object_set_new(o, "network-interfaces", json_deep_copy(G.nets));
    json_object_set_new(o, "vsock", G.vsock ? json_deep_copy(G.vsock) : json_null());
    json_object_set_new(o, "entropy", G.entropy ? json_deep_copy(G.entropy) : json_null());
    json_object_set_new(o, "pmem", json_array());
    json_object_set_new(o, "memory-hotplug", json_null());
    set_json(r, o);
    json_decref(o);
}

static void h_get_mmds(resp_t *r)
{
    if (!G.mmds) {
        json_t *o = json_object();
        set_json(r, o);
        json_decref(o);
        return;
    }
    set_json(r, G.mmds);
}

/* --- PUT / PATCH handlers --- */

static void h_put_logger(resp_t *r, const char *body, size_t len)
{
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_LOGGER, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (G.state != ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_POST);
        goto out;
    }
    if (G.logger_configured) {
        set_fault(r, 400, "Logger error: The logger can only be configured once.");
        goto out;
    }
    const char *path = jstr(cfg, "log_path");
    if (path) {
        int fd = open_nonblock_append(path);
        if (fd < 0) {
            char e[128], m[400];
            io_err_str(e, sizeof e, errno);
            snprintf(m, sizeof m, "Logger error: Failed to open target file: %s", e);
            set_fault(r, 400, m);
            goto out;
        }
        if (G.log_fd >= 0)
            close(G.log_fd);
        G.log_fd = fd;
    }
    const char *lv = jstr(cfg, "level");
    enum log_level l = LV_INFO;
    if (lv)
        parse_level(lv, &l);
    G.level = l;
    G.show_level = jbool(cfg, "show_level", G.show_level);
    G.show_origin = jbool(cfg, "show_log_origin", G.show_origin);
    if (jstr(cfg, "module"))
        snprintf(G.module, sizeof G.module, "%s", jstr(cfg, "module"));
    G.logger_configured = 1;
    json_decref(G.logger_cfg);
    G.logger_cfg = json_incref(cfg);
    set_ok(r);
out:
    json_decref(cfg);
}

static void h_put_metrics(resp_t *r, const char *body, size_t len)
{
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_METRICS, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (G.state != ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_POST);
        goto out;
    }
    if (G.metrics_fd >= 0) {
        set_fault(r, 400, "Metrics error: Reinitialization of metrics not allowed.");
        goto out;
    }
    int fd = open_nonblock_append(jstr(cfg, "metrics_path"));
    if (fd < 0) {
        char e[128], m[400];
        io_err_str(e, sizeof e, errno);
        snprintf(m, sizeof m, "Metrics error: Cannot initialize the metrics system due to bad user input: %s", e);
        set_fault(r, 400, m);
        goto out;
    }
    G.metrics_fd = fd;
    json_decref(G.metrics_cfg);
    G.metrics_cfg = json_incref(cfg);
    set_ok(r);
out:
    json_decref(cfg);
}

static void h_put_serial(resp_t *r, const char *body, size_t len)
{
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_SERIAL, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (G.state != ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_POST);
        goto out;
    }
    json_decref(G.serial_cfg);
    G.serial_cfg = json_incref(cfg);
    set_ok(r);
out:
    json_decref(cfg);
}

static void h_put_entropy(resp_t *r, const char *body, size_t len)
{
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_ENTROPY, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (G.state != ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_POST);
        goto out;
    }
    json_decref(G.entropy);
    G.entropy = json_pack("{s:O?}", "rate_limiter", json_object_get(cfg, "rate_limiter"));
    set_ok(r);
out:
    json_decref(cfg);
}

static int machine_apply(json_t *upd, resp_t *r)
{
    json_t *m = json_deep_copy(G.machine);
    json_object_update(m, upd);
    json_int_t vcpu = json_integer_value(json_object_get(m, "vcpu_count"));
    int smt = jbool(m, "smt", 0);
    if (vcpu == 0 || vcpu > 32 || (smt && vcpu > 1 && vcpu % 2 == 1)) {
        set_fault(r, 400, "Machine config error: The number of vCPUs must be greater than 0, less than 32 "
                          "and must be 1 or an even number if SMT is enabled.");
        json_decref(m);
        return -1;
    }
    json_t *mem = json_object_get(m, "mem_size_mib");
    const char *hp = jstr(m, "huge_pages");
    if (json_is_integer(mem) && (json_integer_value(mem) == 0 ||
                                 (hp && strcmp(hp, "2M") == 0 && json_integer_value(mem) % 2 != 0))) {
        set_fault(r, 400, "Machine config error: The memory size (MiB) is either 0, or not a multiple of the "
                          "configured page size.");
        json_decref(m);
        return -1;
    }
    const char *ct = jstr(m, "cpu_template");
    if (ct && strcmp(ct, "None") == 0)
        json_object_del(m, "cpu_template");
    json_decref(G.machine);
    G.machine = m;
    return 0;
}

static void h_machine(resp_t *r, const char *body, size_t len, int patch, const char *method)
{
    char fault[1200];
    json_t *cfg = parse_body(body, len, patch ? &S_MACHINE_UPD : &S_MACHINE, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (patch && json_object_size(cfg) == 0) {
        set_fault(r, 400, "Empty PATCH request.");
        goto out;
    }
    if (json_object_get(cfg, "cpu_template")) {
        r->deprecation = 1;
        LOG_WARN("%s /machine-config: cpu_template field is deprecated.", method);
    }
    if (G.state != ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_POST);
        goto out;
    }
    if (!patch) {
        /* PUT resets the optional fields left out. */
        json_t *full = json_pack("{s:b,s:b,s:s}", "smt", 0, "track_dirty_pages", 0, "huge_pages", "None");
        json_object_update(full, cfg);
        json_t *m = json_deep_copy(G.machine);
        json_object_del(m, "cpu_template");
        json_decref(G.machine);
        G.machine = m;
        json_decref(cfg);
        cfg = full;
    }
    if (machine_apply(cfg, r) == 0)
        set_ok(r);
out:
    json_decref(cfg);
}

static void h_put_boot(resp_t *r, const char *body, size_t len)
{
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_BOOT, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (G.state != ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_POST);
        goto out;
    }
    char e[128], m[1400];
    int fd = open(jstr(cfg, "kernel_image_path"), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        io_err_str(e, sizeof e, errno);
        snprintf(m, sizeof m, "Boot source error: The kernel file cannot be opened: %s", e);
        set_fault(r, 400, m);
        goto out;
    }
    close(fd);
    const char *initrd = jstr(cfg, "initrd_path");
    if (initrd) {
        fd = open(initrd, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            io_err_str(e, sizeof e, errno);
            snprintf(m, sizeof m, "Boot source error: The initrd file cannot be opened: %s", e);
            set_fault(r, 400, m);
            goto out;
        }
        close(fd);
    }
    const char *args = jstr(cfg, "boot_args");
    if (args) {
        for (const char *q = args; *q; q++)
            if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e) {
                set_fault(r, 400, "Boot source error: The kernel command line is invalid: String contains "
                                  "an invalid character");
                goto out;
            }
    }
    json_decref(G.boot_source);
    G.boot_source = json_incref(cfg);
    set_ok(r);
out:
    json_decref(cfg);
}

static json_t *full_drive(json_t *cfg)
{
    json_t *d = json_object();
    json_object_set(d, "drive_id", json_object_get(cfg, "drive_id"));
    json_t *pu = json_object_get(cfg, "partuuid");
    json_object_set_new(d, "partuuid", pu ? json_incref(pu) : json_null());
    json_object_set(d, "is_root_device", json_object_get(cfg, "is_root_device"));
    json_object_set_new(d, "cache_type", json_string(jstr(cfg, "cache_type") ? jstr(cfg, "cache_type") : "Unsafe"));
    json_object_set_new(d, "is_read_only", json_boolean(jbool(cfg, "is_read_only", 0)));
    json_t *ph = json_object_get(cfg, "path_on_host");
    json_object_set_new(d, "path_on_host", ph ? json_incref(ph) : json_null());
    json_object_set_new(d, "io_engine", json_string(jstr(cfg, "io_engine") ? jstr(cfg, "io_engine") : "Sync"));
    json_t *rl = json_object_get(cfg, "rate_limiter");
    json_object_set_new(d, "rate_limiter", rl ? json_incref(rl) : json_null());
    json_object_set_new(d, "socket", json_null());
    return d;
}

static void h_put_drive(resp_t *r, const char *id, const char *body, size_t len)
{
    if (checked_id(id, r))
        return;
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_DRIVE, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (strcmp(id, jstr(cfg, "drive_id")) != 0) {
        set_fault(r, 400, "The id from the path does not match the id from the body!");
        goto out;
    }
    if (G.state != ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_POST);
        goto out;
    }
    int is_root = jbool(cfg, "is_root_device", 0);
    size_t idx = (size_t)-1, k;
    json_t *d;
    json_array_foreach(G.drives, k, d) {
        if (strcmp(jstr(d, "drive_id"), id) == 0)
            idx = k;
    }
    int has_root = json_array_size(G.drives) > 0 && jbool(json_array_get(G.drives, 0), "is_root_device", 0);
    if (is_root && has_root && idx != 0) {
        set_fault(r, 400, "Drive config error: A root block device already exists!");
        goto out;
    }
    if (jstr(cfg, "socket")) {
        set_fault(r, 400, "Drive config error: Unable to create the vhost-user-block device: vhost-user "
                          "backends are not supported by the banger Firecracker test double");
        goto out;
    }
    const char *path = jstr(cfg, "path_on_host");
    if (!path) {
        set_fault(r, 400, "Drive config error: Unable to create the virtio block device: path_on_host is "
                          "required for virtio-block drives");
        goto out;
    }
    int ro = jbool(cfg, "is_read_only", 0);
    int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        char e[128], m[1400];
        io_err_str(e, sizeof e, errno);
        snprintf(m, sizeof m,
                 "Drive config error: Unable to create the virtio block device: Virtio backend error: "
                 "Error manipulating the backing file: %s %s",
                 e, path);
        set_fault(r, 400, m);
        goto out;
    }
    close(fd);
    json_t *full = full_drive(cfg);
    if (idx == (size_t)-1) {
        if (is_root)
            json_array_insert_new(G.drives, 0, full);
        else
            json_array_append_new(G.drives, full);
    } else {
        json_array_set_new(G.drives, idx, full);
        if (idx != 0 && is_root) {
            json_t *first = json_incref(json_array_get(G.drives, 0));
            json_array_set(G.drives, 0, json_array_get(G.drives, idx));
            json_array_set_new(G.drives, idx, first);
        }
    }
    set_ok(r);
out:
    json_decref(cfg);
}

static void h_patch_drive(resp_t *r, const char *id, const char *body, size_t len)
{
    if (checked_id(id, r))
        return;
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_DRIVE_UPD, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (strcmp(id, jstr(cfg, "drive_id")) != 0) {
        set_fault(r, 400, "The id from the path does not match the id from the body!");
        goto out;
    }
    if (G.state == ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_PRE);
        goto out;
    }
    json_t *drive = NULL, *d;
    size_t k;
    json_array_foreach(G.drives, k, d) {
        if (strcmp(jstr(d, "drive_id"), id) == 0)
            drive = d;
    }
    if (!drive) {
        set_fault(r, 400, "Drive config error: Error during drive update (patch): Invalid drive ID");
        goto out;
    }
    const char *path = jstr(cfg, "path_on_host");
    if (path) {
        int fd = open(path, (jbool(drive, "is_read_only", 0) ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (fd < 0) {
            char e[128], m[1400];
            io_err_str(e, sizeof e, errno);
            snprintf(m, sizeof m, "Drive config error: Error during drive update (patch): %s", e);
            set_fault(r, 400, m);
            goto out;
        }
        close(fd);
        json_object_set_new(drive, "path_on_host", json_string(path));
    }
    if (json_object_get(cfg, "rate_limiter"))
        json_object_set(drive, "rate_limiter", json_object_get(cfg, "rate_limiter"));
    set_ok(r);
out:
    json_decref(cfg);
}

static void h_put_net(resp_t *r, const char *id, const char *body, size_t len)
{
    if (checked_id(id, r))
        return;
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_NET, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (strcmp(id, jstr(cfg, "iface_id")) != 0) {
        set_fault(r, 400, "The id from the path does not match the id from the body!");
        goto out;
    }
    if (G.state != ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_POST);
        goto out;
    }
    json_t *mtu = json_object_get(cfg, "mtu");
    if (mtu && json_integer_value(mtu) < 68) {
        set_fault(r, 400, "Network config error: Could not create the network device: MTU must be in the "
                          "range 68..=65535");
        goto out;
    }
    const char *mac = jstr(cfg, "guest_mac");
    const char *tap = jstr(cfg, "host_dev_name");
    size_t idx = (size_t)-1, k;
    json_t *n;
    json_array_foreach(G.nets, k, n) {
        if (strcmp(jstr(n, "iface_id"), id) == 0) {
            idx = k;
            continue;
        }
        if (mac && jstr(n, "guest_mac") && strcasecmp(jstr(n, "guest_mac"), mac) == 0) {
            char m[300];
            snprintf(m, sizeof m, "Network config error: The MAC address is already in use: %s", mac);
            set_fault(r, 400, m);
            goto out;
        }
        if (strcmp(jstr(n, "host_dev_name"), tap) == 0) {
            char m[600];
            snprintf(m, sizeof m,
                     "Network config error: Could not create the network device: Open tap device failed: "
                     "Error while creating ifreq structure: Resource busy (os error 16). Invalid TUN/TAP "
                     "Backend provided by %s. Check our documentation on setting up the network devices.",
                     tap);
            set_fault(r, 400, m);
            goto out;
        }
    }
    json_t *full = json_object();
    json_object_set(full, "iface_id", json_object_get(cfg, "iface_id"));
    json_object_set(full, "host_dev_name", json_object_get(cfg, "host_dev_name"));
    json_object_set_new(full, "guest_mac", mac ? json_string(mac) : json_null());
    if (mtu)
        json_object_set(full, "mtu", mtu);
    json_t *rx = json_object_get(cfg, "rx_rate_limiter"), *tx = json_object_get(cfg, "tx_rate_limiter");
    json_object_set_new(full, "rx_rate_limiter", rx ? json_incref(rx) : json_null());
    json_object_set_new(full, "tx_rate_limiter", tx ? json_incref(tx) : json_null());
    if (idx == (size_t)-1)
        json_array_append_new(G.nets, full);
    else
        json_array_set_new(G.nets, idx, full);
    set_ok(r);
out:
    json_decref(cfg);
}

static void h_patch_net(resp_t *r, const char *id, const char *body, size_t len)
{
    if (checked_id(id, r))
        return;
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_NET_UPD, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (strcmp(id, jstr(cfg, "iface_id")) != 0) {
        set_fault(r, 400, "The id from the path does not match the id from the body!");
        goto out;
    }
    if (G.state == ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_PRE);
        goto out;
    }
    json_t *iface = NULL, *n;
    size_t k;
    json_array_foreach(G.nets, k, n) {
        if (strcmp(jstr(n, "iface_id"), id) == 0)
            iface = n;
    }
    if (!iface) {
        set_fault(r, 400, "Network config error: Error during interface update (patch): Invalid network "
                          "interface ID - not found.");
        goto out;
    }
    if (json_object_get(cfg, "rx_rate_limiter"))
        json_object_set(iface, "rx_rate_limiter", json_object_get(cfg, "rx_rate_limiter"));
    if (json_object_get(cfg, "tx_rate_limiter"))
        json_object_set(iface, "tx_rate_limiter", json_object_get(cfg, "tx_rate_limiter"));
    set_ok(r);
out:
    json_decref(cfg);
}

static int make_unix_listener(const char *path, int *err_out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        *err_out = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err_out = errno;
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
        *err_out = errno;
        close(fd);
        return -1;
    }
    return fd;
}

static void h_put_vsock(resp_t *r, const char *body, size_t len)
{
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_VSOCK, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (json_object_get(cfg, "vsock_id")) {
        r->deprecation = 1;
        LOG_WARN("PUT /vsock: vsock_id field is deprecated.");
    }
    if (G.state != ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_POST);
        goto out;
    }
    json_int_t cid = json_integer_value(json_object_get(cfg, "guest_cid"));
    if (cid < 3) {
        char m[300];
        snprintf(m, sizeof m, "Vsock config error: Cannot create vsock device: Invalid guest CID %" JSON_INTEGER_FORMAT
                 " (must be >= 3)", cid);
        set_fault(r, 400, m);
        goto out;
    }
    const char *path = jstr(cfg, "uds_path");
    int err = 0;
    int fd = make_unix_listener(path, &err);
    if (fd < 0) {
        char e[128], m[600];
        if (err == ENAMETOOLONG)
            snprintf(e, sizeof e, "path must be shorter than SUN_LEN");
        else
            io_err_str(e, sizeof e, err);
        snprintf(m, sizeof m,
                 "Vsock config error: Cannot create backend for vsock device: Error binding to the host-side "
                 "Unix socket: %s",
                 e);
        set_fault(r, 400, m);
        goto out;
    }
    if (G.vsock_fd >= 0)
        close(G.vsock_fd); /* replaced device; Firecracker leaves the old file behind */
    G.vsock_fd = fd;
    snprintf(G.vsock_path, sizeof G.vsock_path, "%s", path);
    snprintf(G.agent_sock, sizeof G.agent_sock, "%s.agent", path);
    if (strlen(G.agent_sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        /* <uds_path>.agent would not fit in sun_path: use a short private path instead */
        const char *tmp = getenv("TMPDIR");
        snprintf(G.agent_sock, sizeof G.agent_sock, "%s/bfa-%d.sock", tmp && *tmp ? tmp : "/tmp", (int)getpid());
        fake_note("%s.agent is too long for a Unix socket; the guest agent listens on %s", path, G.agent_sock);
    }
    json_decref(G.vsock);
    G.vsock = json_pack("{s:I,s:s}", "guest_cid", cid, "uds_path", path);
    set_ok(r);
out:
    json_decref(cfg);
}

static void h_put_mmds_config(resp_t *r, const char *body, size_t len)
{
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_MMDS_CFG, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (G.state != ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_POST);
        goto out;
    }
    size_t k, j;
    json_t *want, *n;
    json_array_foreach(json_object_get(cfg, "network_interfaces"), k, want) {
        int found = 0;
        json_array_foreach(G.nets, j, n) {
            if (strcmp(jstr(n, "iface_id"), json_string_value(want)) == 0)
                found = 1;
        }
        if (!found) {
            set_fault(r, 400, "Mmds config error: The list of network interface IDs provided contains at least "
                              "one ID that does not correspond to any existing network interface.");
            goto out;
        }
    }
    if (json_array_size(json_object_get(cfg, "network_interfaces")) == 0) {
        set_fault(r, 400, "Mmds config error: The list of network interface IDs that allow forwarding MMDS "
                          "requests is empty.");
        goto out;
    }
    json_t *full = json_pack("{s:s,s:O,s:s,s:b}", "version", jstr(cfg, "version") ? jstr(cfg, "version") : "V1",
                             "network_interfaces", json_object_get(cfg, "network_interfaces"), "ipv4_address",
                             jstr(cfg, "ipv4_address") ? jstr(cfg, "ipv4_address") : "169.254.169.254",
                             "imds_compat", jbool(cfg, "imds_compat", 0));
    json_decref(G.mmds_cfg);
    G.mmds_cfg = full;
    set_ok(r);
out:
    json_decref(cfg);
}

/* RFC 7396 JSON merge patch. */
static json_t *merge_patch(json_t *target, json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_incref(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
    }
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v) {
        if (json_is_null(v))
            json_object_del(target, k);
        else {
            json_t *cur = json_object_get(target, k);
            json_object_set_new(target, k, merge_patch(cur ? json_incref(cur) : NULL, v));
        }
    }
    return target;
}

static void h_mmds(resp_t *r, const char *body, size_t len, int patch)
{
    char fault[1200];
    json_t *v = parse_body_any(body, len, fault, sizeof fault);
    if (!v) {
        set_fault(r, 400, fault);
        return;
    }
    if (patch) {
        if (!G.mmds) {
            set_fault(r, 400, "The MMDS data store is not initialized.");
            json_decref(v);
            return;
        }
        G.mmds = merge_patch(G.mmds, v);
        json_decref(v);
    } else {
        if (!json_is_object(v)) {
            set_fault(r, 400, "The MMDS data store only accepts JSON objects.");
            json_decref(v);
            return;
        }
        json_decref(G.mmds);
        G.mmds = v;
    }
    set_ok(r);
}

static void write_metrics_line(void)
{
    if (G.metrics_fd < 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char line[256];
    int n = snprintf(line, sizeof line, "{\"utc_timestamp_ms\":%lld,\"api_server\":{},\"vmm\":{}}\n",
                     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    if (n > 0)
        write_all_fd(G.metrics_fd, line, (size_t)n);
}

static void start_vsock_thread(void);

static void h_put_actions(resp_t *r, const char *body, size_t len)
{
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_ACTION, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    const char *a = jstr(cfg, "action_type");
    if (strcmp(a, "InstanceStart") == 0) {
        if (G.state != ST_NOT_STARTED) {
            set_fault(r, 400, NOT_SUPPORTED_POST);
            goto out;
        }
        if (!G.boot_source) {
            set_fault(r, 400, "Start microvm error: Cannot start microvm without kernel configuration.");
            goto out;
        }
        /* re-check the kernel like the real loader would (file may be gone) */
        int fd = open(jstr(G.boot_source, "kernel_image_path"), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            char e[128], m[400];
            io_err_str(e, sizeof e, errno);
            snprintf(m, sizeof m, "Start microvm error: Cannot load kernel due to invalid memory configuration "
                                  "or invalid kernel image: Failed to read kernel image: %s", e);
            set_fault(r, 400, m);
            goto out;
        }
        close(fd);
        G.state = ST_RUNNING;
        G.start_ms = now_ms();
        if (G.vsock_fd >= 0)
            start_vsock_thread();
        r->post = PC_STARTED;
        set_ok(r);
    } else if (strcmp(a, "SendCtrlAltDel") == 0) {
        if (G.state == ST_NOT_STARTED) {
            set_fault(r, 400, NOT_SUPPORTED_PRE);
            goto out;
        }
        if (!(G.faults.active && G.faults.ignore_ctrl_alt_del)) {
            if (G.state == ST_PAUSED)
                G.ctrl_alt_del_pending = 1; /* the guest reacts once resumed */
            else
                r->post = PC_SHUTDOWN;
        }
        set_ok(r);
    } else { /* FlushMetrics */
        if (G.state == ST_NOT_STARTED) {
            set_fault(r, 400, NOT_SUPPORTED_PRE);
            goto out;
        }
        write_metrics_line();
        set_ok(r);
    }
out:
    json_decref(cfg);
}

static void h_patch_vm(resp_t *r, const char *body, size_t len)
{
    char fault[1200];
    json_t *cfg = parse_body(body, len, &S_VM, fault, sizeof fault);
    if (!cfg) {
        set_fault(r, 400, fault);
        return;
    }
    if (G.state == ST_NOT_STARTED) {
        set_fault(r, 400, NOT_SUPPORTED_PRE);
        goto out;
    }
    uint64_t t0 = now_ms();
    if (strcmp(jstr(cfg, "state"), "Paused") == 0) {
        G.state = ST_PAUSED;
        LOG_INFO("'pause vm' VMM action took %" PRIu64 " us.", (now_ms() - t0) * 1000 + 37);
    } else {
        G.state = ST_RUNNING;
        LOG_INFO("'resume vm' VMM action took %" PRIu64 " us.", (now_ms() - t0) * 1000 + 41);
        if (G.ctrl_alt_del_pending) {
            G.ctrl_alt_del_pending = 0;
            r->post = PC_SHUTDOWN;
        }
    }
    set_ok(r);
out:
    json_decref(cfg);
}

static void not_implemented(resp_t *r, const char *method, const char *url)
{
    char m[600];
    snprintf(m, sizeof m, "%s %s is a real Firecracker endpoint but is not implemented by the banger "
                          "Firecracker test double.", method, url);
    set_fault(r, 400, m);
}

static void invalid_path(resp_t *r, const char *method, const char *first)
{
    char m[600];
    snprintf(m, sizeof m, "Invalid request method and/or path: %s %s.", method, first);
    set_fault(r, 400, m);
}

static int fault_matches(const char *method, const char *url)
{
    if (!G.faults.active || !G.faults.fail)
        return 0;
    char want[2048];
    snprintf(want, sizeof want, "%s %s", method, url);
    size_t k;
    json_t *e;
    json_array_foreach(G.faults.fail, k, e) {
        if (strcmp(json_string_value(e), want) == 0)
            return 1;
    }
    return 0;
}

static void dispatch(const char *method, const char *url, const char *body, size_t len, resp_t *r)
{
    if (fault_matches(method, url)) {
        set_fault(r, 400, G.faults.fail_message);
        return;
    }
    /* split like Firecracker: trim leading '/', split_terminator('/') */
    const char *p = url;
    while (*p == '/')
        p++;
    char path[2048];
    snprintf(path, sizeof path, "%s", p);
    char *tok[3] = {NULL, NULL, NULL};
    {
        char *q = path;
        for (int k = 0; k < 3 && q; k++) {
            char *slash = strchr(q, '/');
            if (slash)
                *slash = '\0';
            if (!slash && *q == '\0' && k > 0)
                break; /* split_terminator: no empty trailing token */
            tok[k] = q;
            q = slash ? slash + 1 : NULL;
        }
    }
    const char *first = tok[0] ? tok[0] : "";
    const char *second = tok[1];
    int has_body = len > 0;

    if (strcmp(method, "GET") == 0) {
        if (has_body) {
            set_fault(r, 400, "GET request cannot have a body.");
            return;
        }
        if (!*first) h_get_instance(r);
        else if (!strcmp(first, "version")) h_get_version(r);
        else if (!strcmp(first, "vm") && second && !strcmp(second, "config")) h_get_vm_config(r);
        else if (!strcmp(first, "machine-config")) h_get_machine(r);
        else if (!strcmp(first, "mmds")) h_get_mmds(r);
        else if (!strcmp(first, "balloon") || (!strcmp(first, "hotplug") && second && !strcmp(second, "memory")))
            not_implemented(r, method, url);
        else invalid_path(r, "GET", first);
        return;
    }
    if (strcmp(method, "PUT") == 0) {
        if (!has_body) {
            set_fault(r, 400, "Empty PUT request.");
            return;
        }
        if (!strcmp(first, "actions")) h_put_actions(r, body, len);
        else if (!strcmp(first, "boot-source")) h_put_boot(r, body, len);
        else if (!strcmp(first, "drives")) h_put_drive(r, second, body, len);
        else if (!strcmp(first, "logger")) h_put_logger(r, body, len);
        else if (!strcmp(first, "serial")) h_put_serial(r, body, len);
        else if (!strcmp(first, "machine-config")) h_machine(r, body, len, 0, "PUT");
        else if (!strcmp(first, "metrics")) h_put_metrics(r, body, len);
        else if (!strcmp(first, "mmds") && second && !strcmp(second, "config")) h_put_mmds_config(r, body, len);
        else if (!strcmp(first, "mmds") && !second) h_mmds(r, body, len, 0);
        else if (!strcmp(first, "network-interfaces")) h_put_net(r, second, body, len);
        else if (!strcmp(first, "vsock")) h_put_vsock(r, body, len);
        else if (!strcmp(first, "entropy")) h_put_entropy(r, body, len);
        else if (!strcmp(first, "balloon") || !strcmp(first, "cpu-config") || !strcmp(first, "pmem") ||
                 !strcmp(first, "snapshot") || (!strcmp(first, "hotplug") && second && !strcmp(second, "memory")))
            not_implemented(r, method, url);
        else invalid_path(r, "PUT", first);
        return;
    }
    if (strcmp(method, "PATCH") == 0) {
        if (!strcmp(first, "balloon")) {
            not_implemented(r, method, url);
            return;
        }
        if (!has_body) {
            set_fault(r, 400, "Empty PATCH request.");
            return;
        }
        if (!strcmp(first, "drives")) h_patch_drive(r, second, body, len);
        else if (!strcmp(first, "machine-config")) h_machine(r, body, len, 1, "PATCH");
        else if (!strcmp(first, "mmds")) h_mmds(r, body, len, 1);
        else if (!strcmp(first, "network-interfaces")) h_patch_net(r, second, body, len);
        else if (!strcmp(first, "vm")) h_patch_vm(r, body, len);
        else if (!strcmp(first, "hotplug") && second && !strcmp(second, "memory")) not_implemented(r, method, url);
        else invalid_path(r, "PATCH", first);
        return;
    }
    invalid_path(r, method, first);
}

static const char *status_text(unsigned s)
{
    switch (s) {
    case 200: return "200 OK";
    case 204: return "204 No Content";
    case 400: return "400 Bad Request";
    default: return "500 Internal Server Error";
    }
}

static void log_request_json(const char *method, const char *url, const char *body, size_t len, unsigned status,
                             const char *resp_body)
{
    if (G.reqlog_fd < 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *o = json_object();
    json_object_set_new(o, "ts", json_real((double)ts.tv_sec + (double)ts.tv_nsec / 1e9));
    json_object_set_new(o, "id", json_string(G.id));
    json_object_set_new(o, "method", json_string(method));
    json_object_set_new(o, "path", json_string(url));
    if (len) {
        json_t *b = json_stringn(body, len);
        json_object_set_new(o, "body", b ? b : json_string("<invalid utf-8>"));
    } else {
        json_object_set_new(o, "body", json_null());
    }
    json_object_set_new(o, "status", json_integer(status));
    if (resp_body && status >= 400) {
        json_t *rb = json_loads(resp_body, 0, NULL);
        json_t *fm = rb ? json_object_get(rb, "fault_message") : NULL;
        if (fm)
            json_object_set(o, "fault_message", fm);
        json_decref(rb);
    }
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (line) {
        size_t l = strlen(line);
        char *withnl = malloc(l + 2);
        memcpy(withnl, line, l);
        withnl[l] = '\n';
        write_all_fd(G.reqlog_fd, withnl, l + 1);
        free(withnl);
        free(line);
    }
}

static void post_cmd(char c)
{
    if (G.cmd_pipe[1] >= 0) {
        ssize_t w;
        do {
            w = write(G.cmd_pipe[1], &c, 1);
        } while (w < 0 && errno == EINTR);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)cls;
    (void)version;
    t_thread_name = "fc_api";
    req_t *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        rq->total += n;
        if (rq->total <= G.payload_limit) {
            if (rq->len + n + 1 > rq->cap) {
                size_t nc = rq->cap ? rq->cap * 2 : 1024;
                while (nc < rq->len + n + 1)
                    nc *= 2;
                char *nb = realloc(rq->body, nc);
                if (!nb)
                    return MHD_NO;
                rq->body = nb;
                rq->cap = nc;
            }
            memcpy(rq->body + rq->len, upload_data, n);
            rq->len += n;
            rq->body[rq->len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    resp_t r = {.status = 500};
    pthread_mutex_lock(&G.mu);
    {
        sbuf_t d = {0};
        sb_printf(&d, "The API server received a %c%s request on ", method[0],
                  method[0] ? method + 1 : "");
        /* Rust Debug of Method prints e.g. "Put" */
        for (size_t k = strlen("The API server received a ") + 1; k < d.len && d.p[k] != ' '; k++)
            d.p[k] = (char)tolower((unsigned char)d.p[k]);
        sb_rust_debug_str(&d, url, strlen(url));
        if (rq->len) {
            sb_puts(&d, " with body ");
            sb_rust_debug_str(&d, rq->body, rq->len);
        }
        sb_puts(&d, ".");
        LOG_INFO("%s", d.p);
        free(d.p);
    }
    if (rq->total > G.payload_limit) {
        char m[300];
        snprintf(m, sizeof m, "Request payload with size %zu is larger than the limit of %zu allowed by server.\n"
                              "All previous unanswered requests will be dropped.", rq->total, G.payload_limit);
        set_fault(&r, 400, m);
    } else {
        dispatch(method, url, rq->body ? rq->body : "", rq->len, &r);
    }
    if (r.status >= 400) {
        json_t *rb = json_loads(r.body, 0, NULL);
        LOG_ERROR("Received Error. Status code: %s. Message: %s", status_text(r.status),
                  rb ? json_string_value(json_object_get(rb, "fault_message")) : "");
        json_decref(rb);
    } else {
        LOG_INFO("The request was executed successfully. Status code: %s.", status_text(r.status));
    }
    log_request_json(method, url, rq->body, rq->len, r.status, r.body);
    pthread_mutex_unlock(&G.mu);

    rq->post = r.post;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r.body ? strlen(r.body) : 0, r.body ? r.body : (void *)"",
                                        r.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(r.body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Server", "Firecracker API");
    MHD_add_response_header(resp, "Connection", "keep-alive");
    if (r.body)
        MHD_add_response_header(resp, "Content-Type", "application/json");
    if (r.deprecation)
        MHD_add_response_header(resp, "Deprecation", "true");
    enum MHD_Result ret = MHD_queue_response(conn, r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req_t *rq = *con_cls;
    if (!rq)
        return;
    if (rq->post == PC_STARTED)
        post_cmd('S');
    else if (rq->post == PC_SHUTDOWN)
        post_cmd('C');
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

/* ------------------------------------------------------------------------ */
/* vsock hybrid protocol                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    int from, to;
    int a, b; /* both ends, to shut down when this direction ends */
} pump_t;

static void *pump_thread(void *arg)
{
    pump_t *pp = arg;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(pp->from, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (send_all(pp->to, buf, (size_t)n) < 0)
            break;
    }
    /*
     * Either side closing ends the whole connection: a host-side EOF makes
     * Firecracker send VSOCK_OP_SHUTDOWN(RCV|SEND) to the guest, and a guest
     * shutdown makes it close the host stream after flushing.
     */
    shutdown(pp->a, SHUT_RDWR);
    shutdown(pp->b, SHUT_RDWR);
    return NULL;
}

static int read_connect_line(int fd, char *line, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        char c;
        ssize_t r = recv(fd, &c, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (c == '\n') {
            line[n] = '\0';
            return 0;
        }
        line[n++] = c;
    }
    return -1; /* no newline within Firecracker's 32-byte buffer */
}

static void *vconn_thread(void *arg)
{
    int c = (int)(intptr_t)arg;
    t_thread_name = "fc_vmm";
    int a = -1;
    char line[33];
    if (read_connect_line(c, line, sizeof line) < 0)
        goto out;
    char *save = NULL;
    char *w1 = strtok_r(line, " \t\r", &save);
    char *w2 = strtok_r(NULL, " \t\r", &save);
    char *w3 = strtok_r(NULL, " \t\r", &save);
    if (!w1 || !w2 || w3 || strcasecmp(w1, "connect") != 0)
        goto out;
    char *end;
    errno = 0;
    unsigned long port = strtoul(w2, &end, 10);
    if (*end || errno || port > UINT32_MAX || !isdigit((unsigned char)w2[0]))
        goto out;
    if (port != G.agent_port)
        goto out; /* nothing listens on that guest port: connection reset */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(G.agent_sock) >= sizeof sa.sun_path)
        goto out;
    strcpy(sa.sun_path, G.agent_sock);
    a = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (a < 0 || connect(a, (struct sockaddr *)&sa, sizeof sa) < 0)
        goto out; /* guest agent not up (yet): closed with no message */
    unsigned hp = atomic_fetch_add(&G.next_host_port, 1);
    char ok[32];
    int n = snprintf(ok, sizeof ok, "OK %u\n", hp);
    if (send_all(c, ok, (size_t)n) < 0)
        goto out;
    pump_t up = {.from = c, .to = a, .a = c, .b = a};
    pump_t down = {.from = a, .to = c, .a = c, .b = a};
    pthread_t th;
    if (pthread_create(&th, NULL, pump_thread, &down) != 0)
        goto out;
    pump_thread(&up);
    pthread_join(th, NULL);
out:
    if (a >= 0)
        close(a);
    close(c);
    return NULL;
}

static void *vsock_accept_thread(void *arg)
{
    (void)arg;
    t_thread_name = "fc_vmm";
    int lfd = G.vsock_fd;
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            break;
        }
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 256 * 1024);
        pthread_t th;
        if (pthread_create(&th, &at, vconn_thread, (void *)(intptr_t)c) != 0)
            close(c);
        pthread_attr_destroy(&at);
    }
    return NULL;
}

static void start_vsock_thread(void)
{
    if (G.vsock_thread_started)
        return;
    if (pthread_create(&G.vsock_thread, NULL, vsock_accept_thread, NULL) == 0) {
        pthread_detach(G.vsock_thread);
        G.vsock_thread_started = 1;
    }
}

/* ------------------------------------------------------------------------ */
/* Guest agent child + "guest" console                                      */
/* ------------------------------------------------------------------------ */

static void console_write(const char *s)
{
    write_all_fd(G.console_fd, s, strlen(s));
}

static int console_enabled(void)
{
    const char *args = G.boot_source ? jstr(G.boot_source, "boot_args") : NULL;
    return args && strstr(args, "console=ttyS0") != NULL;
}

static void console_line(double t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void console_line(double t, const char *fmt, ...)
{
    if (!console_enabled())
        return;
    char msg[4096], line[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "[%5d.%06d] %s\r\n", (int)t, (int)((t - (int)t) * 1e6), msg);
    console_write(line);
}

static void open_console(void)
{
    const char *p = G.serial_cfg ? jstr(G.serial_cfg, "serial_out_path") : NULL;
    if (p) {
        int fd = open_nonblock_append(p);
        if (fd >= 0)
            G.console_fd = fd;
        else
            LOG_ERROR("Failed to open serial_out_path %s: %s", p, os_strerror(errno));
    }
}

static void guest_boot_console(void)
{
    open_console();
    if (!console_enabled())
        return;
    const char *args = jstr(G.boot_source, "boot_args");
    sbuf_t cl = {0};
    sb_puts(&cl, args);
    json_t *root = json_array_size(G.drives) ? json_array_get(G.drives, 0) : NULL;
    if (root && jbool(root, "is_root_device", 0)) {
        const char *pu = jstr(root, "partuuid");
        if (pu)
            sb_printf(&cl, " root=PARTUUID=%s", pu);
        else
            sb_puts(&cl, " root=/dev/vda");
        sb_puts(&cl, jbool(root, "is_read_only", 0) ? " ro" : " rw");
    }
    if (!G.enable_pci)
        sb_puts(&cl, " pci=off");
    unsigned dev = 1, irq = 5;
    size_t ndev = json_array_size(G.drives) + json_array_size(G.nets) + (G.vsock ? 1 : 0) + (G.entropy ? 1 : 0);
    for (size_t k = 0; k < ndev && !G.enable_pci; k++, dev++, irq++)
        sb_printf(&cl, " virtio_mmio.device=4K@0x%x:%u", 0xc0000000u + dev * 0x1000u, irq);
    console_line(0.0, "Linux version 6.1.102-fake (banger@fake-firecracker) (gcc (Debian 12.2.0) 12.2.0) #1 SMP");
    console_line(0.0, "Command line: %s", cl.p);
    free(cl.p);
    json_int_t vcpus = json_integer_value(json_object_get(G.machine, "vcpu_count"));
    json_int_t mem = json_integer_value(json_object_get(G.machine, "mem_size_mib"));
    console_line(0.0, "Memory: %" JSON_INTEGER_FORMAT "K available", mem * 1024);
    console_line(0.004112, "smp: Brought up 1 node, %" JSON_INTEGER_FORMAT " CPU%s", vcpus, vcpus == 1 ? "" : "s");
    size_t k;
    json_t *d;
    char letter = 'a';
    json_array_foreach(G.drives, k, d) {
        console_line(0.031 + 0.001 * (double)k, "virtio_blk virtio%zu: [vd%c] %s", k, letter++,
                     jbool(d, "is_read_only", 0) ? "read-only" : "writable");
    }
    if (root && jbool(root, "is_root_device", 0))
        console_line(0.052, "EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.");
    console_line(0.054, "Run /sbin/init as init process");
    console_line(0.061, "banger-fake: guest userspace up");
}

static void resolve_agent_path(char *out, size_t cap)
{
    const char *env = getenv("BANGER_FAKE_AGENT");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    /* tests/fakes/firecracker -> ../../runtime; also build/firecracker -> ../runtime */
    snprintf(out, cap, "%s/../../runtime/banger-vsock-agent", G.exe_dir);
    if (access(out, X_OK) == 0)
        return;
    char alt[PATH_MAX + 64];
    snprintf(alt, sizeof alt, "%s/../runtime/banger-vsock-agent", G.exe_dir);
    if (access(alt, X_OK) == 0)
        snprintf(out, cap, "%s", alt);
}

static void spawn_agent(void)
{
    if (G.faults.active && G.faults.no_agent) {
        fake_note("no_agent fault: not starting the guest agent");
        return;
    }
    if (G.vsock_fd < 0 || G.agent_pid > 0)
        return;
    char path[PATH_MAX];
    resolve_agent_path(path, sizeof path);
    if (access(path, X_OK) != 0) {
        fake_note("guest agent binary %s not usable (%s); vsock CONNECTs will not be answered", path,
                  strerror(errno));
        return;
    }
    unlink(G.agent_sock); /* stale file from a previous (killed) run */
    char listen_arg[PATH_MAX + 32];
    snprintf(listen_arg, sizeof listen_arg, "unix:%s", G.agent_sock);
    /* The simulated guest has its work disk mounted (the host's "/" is a
     * mount point standing in for the guest's /root) and a clean /root
     * layout, as a booted banger image reports. */
    char layout[PATH_MAX + 16];
    snprintf(layout, sizeof layout, "%s.layout", G.agent_sock);
    int lfd = open(layout, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (lfd >= 0) {
        (void)!write(lfd, "ok\n", 3);
        close(lfd);
    }
    /* The host has no sshd of the guest's: readiness checks what the test
     * asks for (BANGER_FAKE_READY, default the work disk; with
     * BANGER_FAKE_SSH_PORT the "sshd" check looks at that port).  A
     * poweroff or reboot the agent is asked for comes back to us as a
     * signal through this very binary (guest_power_helper). */
    const char *ready = getenv("BANGER_FAKE_READY");
    const char *ssh_port = getenv("BANGER_FAKE_SSH_PORT");
    char port_fault[16];
    if (G.faults.active && G.faults.agent_ready[0])
        ready = G.faults.agent_ready;
    if (G.faults.active && G.faults.agent_ssh_port > 0) {
        snprintf(port_fault, sizeof port_fault, "%ld", G.faults.agent_ssh_port);
        ssh_port = port_fault;
    }
    char self[PATH_MAX], pidbuf[32];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    self[sl > 0 ? sl : 0] = '\0';
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
    char *argv[16];
    int ac = 0;
    argv[ac++] = path;
    argv[ac++] = "--listen";
    argv[ac++] = listen_arg;
    argv[ac++] = "--workdisk";
    argv[ac++] = "/";
    argv[ac++] = "--layout-state";
    argv[ac++] = layout;
    argv[ac++] = "--ready";
    argv[ac++] = (char *)(ready && *ready ? ready : "workdisk");
    if (ssh_port && *ssh_port) {
        argv[ac++] = "--ssh-port";
        argv[ac++] = (char *)ssh_port;
    }
    if (self[0]) {
        argv[ac++] = "--poweroff-cmd";
        argv[ac++] = self;
    }
    argv[ac] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fake_note("fork failed: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction sa = {.sa_handler = SIG_DFL};
        sigaction(SIGPIPE, &sa, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        setenv("BANGER_FAKE_GUEST_PID", pidbuf, 1);
        execv(path, argv);
        _exit(127);
    }
    G.agent_pid = pid;
    G.agent_sock_created = 1;
    fake_note("guest agent started: pid %d, %s --listen %s", (int)pid, path, listen_arg);
}

static void reap_agent(int block_ms)
{
    if (G.agent_pid <= 0)
        return;
    uint64_t deadline = now_ms() + (uint64_t)block_ms;
    for (;;) {
        int st;
        pid_t w = waitpid(G.agent_pid, &st, WNOHANG);
        if (w == G.agent_pid || (w < 0 && errno == ECHILD)) {
            G.agent_pid = -1;
            return;
        }
        if (now_ms() >= deadline)
            return;
        usleep(2000);
    }
}

static void kill_agent(int sig)
{
    if (G.agent_pid <= 0)
        return;
    kill(G.agent_pid, sig);
    reap_agent(sig == SIGKILL ? 1000 : 500);
    if (G.agent_pid > 0) {
        kill(G.agent_pid, SIGKILL);
        reap_agent(1000);
    }
}

static void cleanup_agent_files(void)
{
    if (G.agent_sock_created && G.agent_sock[0]) {
        char layout[PATH_MAX + 16];
        snprintf(layout, sizeof layout, "%s.layout", G.agent_sock);
        unlink(G.agent_sock);
        unlink(layout);
    }
}

static void free_globals(void)
{
    json_decref(G.boot_source);
    json_decref(G.drives);
    json_decref(G.machine);
    json_decref(G.nets);
    json_decref(G.vsock);
    json_decref(G.logger_cfg);
    json_decref(G.metrics_cfg);
    json_decref(G.entropy);
    json_decref(G.mmds);
    json_decref(G.mmds_cfg);
    json_decref(G.serial_cfg);
    json_decref(G.faults.fail);
}

/* Orderly exit (guest reset / SIGHUP). Does not touch the API or vsock socket
 * files, like Firecracker. */
static void fc_exit(int code)
{
    pthread_mutex_lock(&G.mu);
    kill_agent(SIGTERM);
    cleanup_agent_files();
    if (code == 0)
        LOG_INFO("Firecracker exiting successfully. exit_code=0");
    else
        LOG_ERROR("Firecracker exiting with error. exit_code=%d", code);
    pthread_mutex_unlock(&G.mu);
    if (G.mhd) {
        MHD_stop_daemon(G.mhd);
        G.mhd = NULL;
    }
    free_globals();
    exit(code);
}

/* ------------------------------------------------------------------------ */
/* Faults file                                                              */
/* ------------------------------------------------------------------------ */

static long faults_int(json_t *v, const char *k, const char *file)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        fprintf(stderr, "fake-firecracker: faults file %s: \"%s\" must be a non-negative integer\n", file, k);
        exit(2);
    }
    return (long)json_integer_value(v);
}

static int faults_bool(json_t *v, const char *k, const char *file)
{
    if (!json_is_boolean(v)) {
        fprintf(stderr, "fake-firecracker: faults file %s: \"%s\" must be a boolean\n", file, k);
        exit(2);
    }
    return json_is_true(v);
}

static void read_faults(void)
{
    faults_t *f = &G.faults;
    snprintf(f->fail_message, sizeof f->fail_message, "injected fault");
    f->shutdown_delay_ms = 50;
    const char *file = getenv("BANGER_FAKE_FC_FAULTS");
    if (!file || !*file || access(file, F_OK) != 0)
        return;
    json_error_t je;
    json_t *o = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        fprintf(stderr, "fake-firecracker: faults file %s is not a JSON object: %s (line %d)\n", file,
                o ? "not an object" : je.text, je.line);
        exit(2);
    }
    const char *match_id = NULL;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!strcmp(k, "fail")) {
            json_t *arr = json_array();
            if (json_is_string(v))
                json_array_append(arr, v);
            else if (json_is_array(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e) {
                    if (!json_is_string(e)) {
                        fprintf(stderr, "fake-firecracker: faults file %s: \"fail\" entries must be strings\n", file);
                        exit(2);
                    }
                    json_array_append(arr, e);
                }
            } else {
                fprintf(stderr, "fake-firecracker: faults file %s: \"fail\" must be \"METHOD /path\" or a list "
                                "of them\n", file);
                exit(2);
            }
            size_t i;
            json_t *e;
            json_array_foreach(arr, i, e) {
                const char *s = json_string_value(e);
                const char *sp = strchr(s, ' ');
                if (!sp || sp[1] != '/') {
                    fprintf(stderr, "fake-firecracker: faults file %s: bad \"fail\" entry \"%s\" (want "
                                    "\"METHOD /path\")\n", file, s);
                    exit(2);
                }
            }
            json_decref(f->fail);
            f->fail = arr;
        } else if (!strcmp(k, "fail_message")) {
            if (!json_is_string(v)) {
                fprintf(stderr, "fake-firecracker: faults file %s: \"fail_message\" must be a string\n", file);
                exit(2);
            }
            snprintf(f->fail_message, sizeof f->fail_message, "%s", json_string_value(v));
        } else if (!strcmp(k, "listen_delay_ms")) f->listen_delay_ms = faults_int(v, k, file);
        else if (!strcmp(k, "die_after_start")) f->die_after_start = faults_bool(v, k, file);
        else if (!strcmp(k, "exit_at_start")) {
            if (!json_is_integer(v)) {
                fprintf(stderr, "fake-firecracker: faults file %s: \"exit_at_start\" must be an integer\n", file);
                exit(2);
            }
            f->exit_at_start_set = 1;
            f->exit_at_start = (int)json_integer_value(v);
        } else if (!strcmp(k, "agent_delay_ms")) f->agent_delay_ms = faults_int(v, k, file);
        else if (!strcmp(k, "no_agent")) f->no_agent = faults_bool(v, k, file);
        else if (!strcmp(k, "ignore_ctrl_alt_del")) f->ignore_ctrl_alt_del = faults_bool(v, k, file);
        else if (!strcmp(k, "ignore_poweroff")) f->ignore_poweroff = faults_bool(v, k, file);
        else if (!strcmp(k, "agent_ssh_port")) f->agent_ssh_port = faults_int(v, k, file);
        else if (!strcmp(k, "agent_ready")) {
            if (!json_is_string(v)) {
                fprintf(stderr, "fake-firecracker: faults file %s: \"agent_ready\" must be a string\n", file);
                exit(2);
            }
            snprintf(f->agent_ready, sizeof f->agent_ready, "%s", json_string_value(v));
        }
        else if (!strcmp(k, "shutdown_delay_ms")) f->shutdown_delay_ms = faults_int(v, k, file);
        else if (!strcmp(k, "match_id")) {
            if (!json_is_string(v)) {
                fprintf(stderr, "fake-firecracker: faults file %s: \"match_id\" must be a string\n", file);
                exit(2);
            }
            match_id = json_string_value(v);
        } else {
            fprintf(stderr,
                    "fake-firecracker: faults file %s: unknown key \"%s\" (known: fail, fail_message, "
                    "listen_delay_ms, die_after_start, exit_at_start, agent_delay_ms, no_agent, "
                    "ignore_ctrl_alt_del, ignore_poweroff, agent_ready, agent_ssh_port, shutdown_delay_ms, "
                    "match_id)\n",
                    file, k);
            exit(2);
        }
    }
    f->active = !match_id || strstr(G.id, match_id) != NULL;
    if (!f->active) {
        /* keep defaults for everything else */
        json_decref(f->fail);
        faults_t clean = {0};
        *f = clean;
        snprintf(f->fail_message, sizeof f->fail_message, "injected fault");
        f->shutdown_delay_ms = 50;
    }
    json_decref(o);
}

/* ------------------------------------------------------------------------ */
/* Command line                                                             */
/* ------------------------------------------------------------------------ */

static void usage(void)
{
    printf("firecracker v%s (banger test double)\n\n"
           "Launch a microvm.\n\n"
           "  --api-sock <api-sock>   Path to unix domain socket used by the API. [default: \"%s\"]\n"
           "  --id <id>               MicroVM unique identifier. [default: \"%s\"]\n"
           "  --log-path <log-path>   Path to a fifo or a file used for configuring the logger on startup.\n"
           "  --level <level>         Set the logger level.\n"
           "  --module <module>       Set the logger module filter.\n"
           "  --show-level            Whether or not to output the level in the logs.\n"
           "  --show-log-origin       Whether or not to include the file path and line number of the log's origin.\n"
           "  --metrics-path <path>   Path to a fifo or a file used for configuring the metrics on startup.\n"
           "  --http-api-max-payload-size <n>  Http API request payload max size, in bytes. [default: \"%d\"]\n"
           "  --version               Print the binary version number.\n"
           "  --help                  Show the help message.\n"
           "  (--config-file / --no-api are not supported by the test double.)\n",
           FC_VERSION, DEFAULT_API_SOCK, DEFAULT_INSTANCE_ID, DEFAULT_PAYLOAD_LIMIT);
}

static void arg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void arg_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Arguments parsing error: %s\n\nFor more information try --help.\n", msg);
    exit(EXIT_ARG_PARSING);
}

typedef struct {
    const char *api_sock;
    const char *id;
    const char *log_path;
    const char *level;
    const char *module;
    const char *metrics_path;
    const char *metadata;
    const char *payload;
    int show_level, show_origin;
} opts_t;

static void parse_args(int argc, char **argv, opts_t *o)
{
    static const char *const with_value[] = {
        "api-sock", "id", "log-path", "level", "module", "metrics-path", "metadata", "seccomp-filter",
        "start-time-us", "start-time-cpu-us", "parent-cpu-time-us", "mmds-size-limit",
        "http-api-max-payload-size", "config-file", "describe-snapshot", NULL};
    static const char *const flags[] = {"no-api", "no-seccomp", "boot-timer", "show-level", "show-log-origin",
                                        "version", "help", "enable-pci", "snapshot-version", NULL};
    char seen[64][64];
    int nseen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || !a[2])
            arg_error("Found argument '%s' which wasn't expected, or isn't valid in this context.", a);
        const char *name = a + 2;
        for (int k = 0; k < nseen; k++)
            if (!strcmp(seen[k], name))
                arg_error("The argument '%s' was provided more than once.", name);
        if (nseen < 64)
            snprintf(seen[nseen++], sizeof seen[0], "%s", name);
        int is_val = 0, is_flag = 0;
        for (int k = 0; with_value[k]; k++)
            if (!strcmp(with_value[k], name))
                is_val = 1;
        for (int k = 0; flags[k]; k++)
            if (!strcmp(flags[k], name))
                is_flag = 1;
        if (!is_val && !is_flag)
            arg_error("Found argument '%s' which wasn't expected, or isn't valid in this context.", a);
        if (is_flag) {
            if (!strcmp(name, "version")) {
                printf("Firecracker v%s\n\n", FC_VERSION);
                exit(0);
            }
            if (!strcmp(name, "help")) {
                usage();
                exit(0);
            }
            if (!strcmp(name, "no-api"))
                arg_error("--no-api requires --config-file, which the banger Firecracker test double does not "
                          "support.");
            if (!strcmp(name, "show-level")) o->show_level = 1;
            if (!strcmp(name, "show-log-origin")) o->show_origin = 1;
            if (!strcmp(name, "boot-timer")) G.boot_timer = 1;
            if (!strcmp(name, "enable-pci")) G.enable_pci = 1;
            continue;
        }
        if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
            arg_error("The argument '%s' requires a value, but none was supplied", name);
        const char *v = argv[++i];
        if (!strcmp(name, "api-sock")) o->api_sock = v;
        else if (!strcmp(name, "id")) o->id = v;
        else if (!strcmp(name, "log-path")) o->log_path = v;
        else if (!strcmp(name, "level")) o->level = v;
        else if (!strcmp(name, "module")) o->module = v;
        else if (!strcmp(name, "metrics-path")) o->metrics_path = v;
        else if (!strcmp(name, "metadata")) o->metadata = v;
        else if (!strcmp(name, "http-api-max-payload-size")) o->payload = v;
        else if (!strcmp(name, "config-file"))
            arg_error("--config-file is not supported by the banger Firecracker test double (configure the "
                      "microVM through the API instead).");
        else if (!strcmp(name, "describe-snapshot"))
            arg_error("--describe-snapshot is not supported by the banger Firecracker test double.");
        /* seccomp-filter, start-time-*, parent-cpu-time-us, mmds-size-limit: accepted, ignored */
    }
}

static void validate_id(const char *id)
{
    size_t l = strlen(id);
    if (l < 1 || l > 64) {
        fprintf(stderr, "Invalid instance ID: InvalidLen(%zu, 1, 64)\n", l);
        exit(EXIT_ARG_PARSING);
    }
    for (size_t k = 0; k < l; k++)
        if (!(isalnum((unsigned char)id[k]) || id[k] == '-')) {
            fprintf(stderr, "Invalid instance ID: InvalidChar('%c', %zu)\n", id[k], k);
            exit(EXIT_ARG_PARSING);
        }
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

static void exe_dir(char *out, size_t cap)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        snprintf(out, cap, ".");
        return;
    }
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    snprintf(out, cap, "%s", buf);
}

/* Run by the guest agent as its --poweroff-cmd ("<exe> poweroff|reboot"):
 * tell the fake that spawned the agent what the guest's init was asked
 * to do.  SIGUSR1: reboot, SIGUSR2: poweroff. */
static int guest_power_helper(int argc, char **argv)
{
    const char *pid = getenv("BANGER_FAKE_GUEST_PID");
    if (argc != 2 || !pid || (strcmp(argv[1], "poweroff") && strcmp(argv[1], "reboot")))
        return -1;
    return kill((pid_t)atoi(pid), strcmp(argv[1], "reboot") == 0 ? SIGUSR1 : SIGUSR2) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int helper = guest_power_helper(argc, argv);
    if (helper >= 0)
        return helper;
    opts_t o = {0};
    parse_args(argc, argv, &o);
    snprintf(G.id, sizeof G.id, "%s", o.id ? o.id : DEFAULT_INSTANCE_ID);
    validate_id(G.id);
    snprintf(G.api_sock, sizeof G.api_sock, "%s", o.api_sock ? o.api_sock : DEFAULT_API_SOCK);
    G.payload_limit = DEFAULT_PAYLOAD_LIMIT;
    if (o.payload) {
        char *end;
        unsigned long long v = strtoull(o.payload, &end, 10);
        if (*end || !*o.payload)
            arg_error("Invalid value for http-api-max-payload-size: %s", o.payload);
        G.payload_limit = (size_t)v;
    }
    if (o.level) {
        enum log_level l;
        if (parse_level(o.level, &l))
            arg_error("Invalid level: Failed to parse string to level filter: %s", o.level);
        G.level = l;
    }
    G.show_level = o.show_level;
    G.show_origin = o.show_origin;
    if (o.module)
        snprintf(G.module, sizeof G.module, "%s", o.module);
    exe_dir(G.exe_dir, sizeof G.exe_dir);
    G.agent_port = DEFAULT_AGENT_PORT;
    const char *ap = getenv("BANGER_FAKE_AGENT_PORT");
    if (ap && *ap)
        G.agent_port = (unsigned)strtoul(ap, NULL, 10);
    atomic_init(&G.next_host_port, FIRST_HOST_PORT);

    read_faults();
    if (G.faults.active && G.faults.exit_at_start_set) {
        fake_note("exit_at_start fault: exiting with code %d", G.faults.exit_at_start);
        exit(G.faults.exit_at_start);
    }

    const char *reqlog = getenv("BANGER_FAKE_FC_LOG");
    if (reqlog && *reqlog)
        G.reqlog_fd = open(reqlog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    G.drives = json_array();
    G.nets = json_array();
    G.machine = machine_default();

    if (o.log_path) {
        int fd = open_nonblock_append(o.log_path);
        if (fd < 0) {
            fprintf(stderr, "Error: Logger(Failed to open target file: %s (os error %d))\n", os_strerror(errno),
                    errno);
            exit(EXIT_GENERIC);
        }
        G.log_fd = fd;
        G.logger_configured = 1;
        G.logger_cfg = json_pack("{s:s,s:s,s:b,s:b}", "log_path", o.log_path, "level", level_name(G.level),
                                 "show_level", G.show_level, "show_log_origin", G.show_origin);
    }
    if (o.metrics_path) {
        G.metrics_fd = open_nonblock_append(o.metrics_path);
        if (G.metrics_fd < 0) {
            fprintf(stderr, "Error: Metrics(%s (os error %d))\n", os_strerror(errno), errno);
            exit(EXIT_GENERIC);
        }
        G.metrics_cfg = json_pack("{s:s}", "metrics_path", o.metrics_path);
    }
    if (o.metadata) {
        json_error_t je;
        G.mmds = json_load_file(o.metadata, 0, &je);
        if (!G.mmds) {
            fprintf(stderr, "Error: Metadata(%s)\n", je.text);
            exit(EXIT_GENERIC);
        }
    }

    LOG_INFO("Running Firecracker v%s", FC_VERSION);

    /* Signals are handled synchronously by the main thread. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &ign, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (pipe2(G.cmd_pipe, O_CLOEXEC) < 0 || sfd < 0) {
        perror("fake-firecracker: pipe/signalfd");
        return EXIT_GENERIC;
    }

    /* bind(), optionally wait, then listen(): the file exists before connect() works. */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(G.api_sock) >= sizeof sa.sun_path) {
        LOG_ERROR("RunWithApiError error: Failed to open the API socket at: %s. Check that it is not already "
                  "used.", G.api_sock);
        fprintf(stderr, "Error: RunWithApi(FailedToBindSocket(\"%s\")): path must be shorter than SUN_LEN\n",
                G.api_sock);
        LOG_ERROR("Firecracker exiting with error. exit_code=1");
        return EXIT_GENERIC;
    }
    strcpy(sa.sun_path, G.api_sock);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        LOG_ERROR("RunWithApiError error: Failed to open the API socket at: %s. Check that it is not already "
                  "used.", G.api_sock);
        fprintf(stderr, "Error: RunWithApi(FailedToBindSocket(\"%s\")): Failed to open the API socket at: %s. "
                        "Check that it is not already used. (%s (os error %d))\n",
                G.api_sock, G.api_sock, os_strerror(e), e);
        LOG_ERROR("Firecracker exiting with error. exit_code=1");
        return EXIT_GENERIC;
    }
    if (G.faults.active && G.faults.listen_delay_ms > 0)
        usleep((useconds_t)G.faults.listen_delay_ms * 1000);
    if (listen(lfd, 128) < 0) {
        perror("fake-firecracker: listen");
        return EXIT_GENERIC;
    }
    G.mhd = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, NULL,
                             MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)131072, MHD_OPTION_END);
    if (!G.mhd) {
        fprintf(stderr, "fake-firecracker: MHD_start_daemon failed\n");
        return EXIT_GENERIC;
    }
    LOG_INFO("API server started.");

    uint64_t agent_at = 0, die_at = 0, shutdown_at = 0;
    for (;;) {
        uint64_t now = now_ms();
        int timeout = -1;
        uint64_t next = 0;
        if (agent_at) next = agent_at;
        if (die_at && (!next || die_at < next)) next = die_at;
        if (shutdown_at && (!next || shutdown_at < next)) next = shutdown_at;
        if (next)
            timeout = next > now ? (int)(next - now) : 0;
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = G.cmd_pipe[0], .events = POLLIN}};
        int pr = poll(pfd, 2, timeout);
        if (pr < 0 && errno != EINTR) {
            perror("fake-firecracker: poll");
            break;
        }
        if (pr > 0 && (pfd[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                int sig = (int)si.ssi_signo;
                pthread_mutex_lock(&G.mu);
                if (sig == SIGCHLD) {
                    if (G.agent_pid > 0) {
                        int st;
                        if (waitpid(G.agent_pid, &st, WNOHANG) == G.agent_pid) {
                            fake_note("guest agent (pid %d) exited (%s %d)", (int)G.agent_pid,
                                      WIFSIGNALED(st) ? "signal" : "status",
                                      WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
                            G.agent_pid = -1;
                        }
                    }
                    while (waitpid(-1, NULL, WNOHANG) > 0) {
                    }
                } else if (sig == SIGUSR1 || sig == SIGUSR2) {
                    /* The guest's init was asked (through the agent) to reboot
                     * or power off.  Firecracker on x86 exits on the reboot's
                     * reset; after a poweroff the guest halts and Firecracker
                     * keeps running. */
                    if (G.faults.active && G.faults.ignore_poweroff) {
                        fake_note("ignore_poweroff fault: the guest does not shut down");
                    } else if (sig == SIGUSR1) {
                        if (!shutdown_at)
                            shutdown_at = now_ms() + (uint64_t)G.faults.shutdown_delay_ms;
                    } else if (G.agent_pid > 0) {
                        kill_agent(SIGTERM);
                        double t = (double)(now_ms() - G.start_ms) / 1000.0;
                        console_line(t, "reboot: Power down");
                        fake_note("guest powered off: the vCPUs halt, Firecracker keeps running");
                    }
                } else if (sig == SIGHUP) {
                    pthread_mutex_unlock(&G.mu);
                    fc_exit(EXIT_SIGHUP);
                } else {
                    /* SIGTERM / SIGINT: Firecracker has no handler and dies at once. */
                    kill_agent(SIGKILL);
                    cleanup_agent_files();
                    struct sigaction dfl = {.sa_handler = SIG_DFL};
                    sigaction(sig, &dfl, NULL);
                    sigset_t one;
                    sigemptyset(&one);
                    sigaddset(&one, sig);
                    sigprocmask(SIG_UNBLOCK, &one, NULL);
                    raise(sig);
                    _exit(128 + sig);
                }
                pthread_mutex_unlock(&G.mu);
            }
        }
        if (pr > 0 && (pfd[1].revents & POLLIN)) {
            char cmds[64];
            ssize_t n = read(G.cmd_pipe[0], cmds, sizeof cmds);
            for (ssize_t k = 0; k < n; k++) {
                pthread_mutex_lock(&G.mu);
                if (cmds[k] == 'S') {
                    guest_boot_console();
                    if (G.vsock_fd >= 0)
                        agent_at = now_ms() + (uint64_t)(G.faults.active ? G.faults.agent_delay_ms : 0) + 1;
                    if (G.faults.active && G.faults.die_after_start)
                        die_at = now_ms() + 50;
                } else if (cmds[k] == 'C') {
                    if (!shutdown_at)
                        shutdown_at = now_ms() + (uint64_t)G.faults.shutdown_delay_ms;
                }
                pthread_mutex_unlock(&G.mu);
            }
        }
        now = now_ms();
        pthread_mutex_lock(&G.mu);
        if (agent_at && now >= agent_at) {
            agent_at = 0;
            spawn_agent();
        }
        if (die_at && now >= die_at) {
            fake_note("die_after_start fault: the VMM crashes now (exit code 1)");
            kill_agent(SIGKILL);
            cleanup_agent_files();
            _exit(1);
        }
        if (shutdown_at && now >= shutdown_at) {
            /* Guest reacted to Ctrl-Alt-Del: init shuts down, then resets; FC exits on vCPU reset. */
            kill_agent(SIGTERM);
            double t = (double)(now_ms() - G.start_ms) / 1000.0;
            console_line(t, "reboot: Restarting system");
            LOG_INFO("Vmm is stopping.");
            pthread_mutex_unlock(&G.mu);
            fc_exit(0);
        }
        pthread_mutex_unlock(&G.mu);
    }
    return EXIT_GENERIC;
}
