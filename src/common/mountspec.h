/* mountspec.h - a shared folder: a host directory the guest mounts at a
 * path of its own (virtio-fs, QEMU only).  Written "HOST:GUEST[:ro]" on
 * the command line, {"host", "guest", "readonly"} in the API and, as a
 * JSON array of those, in the store.
 *
 * The rules here are the syntax only, the same in the CLI and bangerd:
 * whether the host directory exists, and is not / nor inside bangerd's
 * state, is bangerd's to check where it touches the host (core/shares.c). */
#ifndef BANGER_COMMON_MOUNTSPEC_H
#define BANGER_COMMON_MOUNTSPEC_H

#include <stdbool.h>
#include <stddef.h>

#define VM_MOUNTS_MAX 8
#define MOUNT_HOST_MAX 512        /* bytes of a host path, with its NUL */
#define MOUNT_GUEST_MAX 129       /* 128 bytes of a guest path, and NUL */
/* The virtio-fs tag of mount i, which the guest mounts by. */
#define MOUNT_TAG_FMT "banger%d"

struct vm_mount {
	char host[MOUNT_HOST_MAX];    /* absolute, no control characters */
	char guest[MOUNT_GUEST_MAX];  /* absolute, [A-Za-z0-9._/-] */
	bool readonly;
};

/* Syntax of a host path: absolute, shorter than MOUNT_HOST_MAX, no
 * control characters.  NULL when fine, else why (a static string). */
const char *mount_host_why(const char *host);
/* A guest path: absolute, at most 128 bytes of [A-Za-z0-9._/-], no empty,
 * "." or ".." component, no trailing slash, and not / nor a directory the
 * guest's own system lives in (/etc, /usr, /proc, /root itself, ...).
 * The guest's kernel command line carries it, so nothing else fits.
 * NULL when fine, else why (a static string). */
const char *mount_guest_why(const char *guest);
/* Whether guest path a is b or inside it ("/a/b" is inside "/a"). */
bool mount_guest_within(const char *a, const char *b);
/* Check a set of mounts together: each one's syntax, and no guest path
 * at or inside another's.  -1 with *index (the mount at fault) and why
 * (static, or the formatted text in buf), else 0. */
int mounts_check(const struct vm_mount *m, int n, int *index,
    char *buf, size_t len, const char **why);
/* Parse "HOST:GUEST[:ro|:rw]" (the last one or two colons split it, so a
 * host path may hold colons).  0, or -1 with why (a static string). */
int mount_parse(const char *s, struct vm_mount *ret, const char **why);
/* The store's text: a JSON array of {"host", "guest", "readonly"}, ""
 * for none; malloc'd.  And back: entries that do not parse are skipped. */
char *mounts_encode(const struct vm_mount *m, int n);
int mounts_decode(const char *s, struct vm_mount *ret, int max);

#endif
