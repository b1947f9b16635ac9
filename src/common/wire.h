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

/* ---- JSON field names ----
 *
 * The fields both sides act on: request bodies, the error body,
 * operations, events and the list wrappers.  Fields banger only shows
 * to people are spelled where it shows them. */

/* Request bodies: VM create and patch, stop, bulk actions, image register
 * and build. */
#define WIRE_NAME        "name"
#define WIRE_IMAGE       "image"
#define WIRE_VCPUS       "vcpus"
#define WIRE_MEMORY_MIB  "memory_mib"
#define WIRE_DISK_GIB    "disk_gib"
#define WIRE_NAT         "nat"
#define WIRE_PORTS       "ports"    /* [{"host", "guest", "address"}] */
#define WIRE_LIMITS      "limits"   /* {"cpus", "memory_max_mib", ...} */
#define WIRE_MOUNTS      "mounts"   /* [{"host", "guest", "readonly"}] */
#define WIRE_TIMEOUT_S   "timeout_s"
#define WIRE_ACTION      "action"
#define WIRE_NAMES       "names"
#define WIRE_FORCE       "force"
#define WIRE_ROOTFS      "rootfs"
#define WIRE_WORK_SEED   "work_seed"
#define WIRE_DISTRO      "distro"

/* The error body (also an operation's and a bulk result's error). */
#define WIRE_CODE        "code"
#define WIRE_MESSAGE     "message"
#define WIRE_STATUS      "status"   /* the HTTP status; a VM's status object */
#define WIRE_DETAILS     "details"
#define WIRE_HINT        "hint"

/* VMs and operations. */
#define WIRE_ID          "id"
#define WIRE_SPEC        "spec"
#define WIRE_STATE       "state"
#define WIRE_KIND        "kind"
#define WIRE_TARGET      "target"
#define WIRE_STAGE       "stage"
#define WIRE_PROGRESS    "progress"
#define WIRE_NOTE        "note"     /* an operation's line for its reader */
/* POST /v1/vms/{name}/exec */
#define WIRE_ARGV        "argv"
#define WIRE_ENV         "env"
#define WIRE_CWD         "cwd"
#define WIRE_USER        "user"
#define WIRE_STDIN       "stdin"    /* base64 */
#define WIRE_TIMEOUT_S   "timeout_s"
#define WIRE_TTY         "tty"      /* a terminal session, upgraded */
#define WIRE_ROWS        "rows"
#define WIRE_COLS        "cols"
#define WIRE_WARM        "warm"     /* an image's warm snapshot */
#define WIRE_ERROR       "error"
#define WIRE_RESULT      "result"
#define WIRE_RESULTS     "results"  /* a bulk action's result: one per VM */
#define WIRE_OK          "ok"

/* Events. */
#define WIRE_TYPE        "type"
#define WIRE_VM          "vm"
#define WIRE_OPERATION   "operation"
#define WIRE_DATA        "data"

/* List wrappers: {"vms": [...]}. */
#define WIRE_VMS         "vms"
#define WIRE_SNAPSHOT    "snapshot"
#define WIRE_SNAPSHOTS   "snapshots"
#define WIRE_FROM        "from"
#define WIRE_IMAGES      "images"
#define WIRE_OPERATIONS  "operations"

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
