/* wire.h - what bangerd and banger must agree on, written once: the
 * version, where the API socket is, allocation that cannot fail, and the
 * JSON field names of the bodies both sides read or write (openapi.yaml
 * is the contract; these are its spellings in C).
 *
 * Linked into both binaries, so it depends on nothing else of banger's:
 * no logger, no error type.
 */
#ifndef BANGER_WIRE_H
#define BANGER_WIRE_H

#include <stddef.h>

#ifndef BANGER_VERSION
#define BANGER_VERSION "0.1.0"
#endif

/* ---- the API socket ---- */

#define WIRE_SOCKET_ENV "BANGER_SOCKET"

/* The socket when nothing names one: /run/banger/bangerd.sock as root,
 * else $XDG_RUNTIME_DIR/banger/bangerd.sock, else
 * /run/user/<uid>/banger/bangerd.sock. */
void wire_socket_default(char *buf, size_t len);
/* $BANGER_SOCKET when set and not empty, else NULL. */
const char *wire_socket_env(void);
/* 'flag' (--socket; NULL when not given), else $BANGER_SOCKET, else the
 * default. */
void wire_socket_resolve(const char *flag, char *buf, size_t len);

/* ---- allocation ----
 *
 * Out of memory is not recoverable in either program: these print
 * "<program>: out of memory" and abort. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
