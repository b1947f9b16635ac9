/* util.h - small shared helpers: cleanup attributes, time, ids, names. */
#ifndef BANGER_UTIL_H
#define BANGER_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "wire.h"

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Move ownership out of a cleanup variable. */
#define TAKE_PTR(p) ({ __typeof__(p) take_ = (p); (p) = NULL; take_; })
#define TAKE_FD(fd) ({ int take_ = (fd); (fd) = -1; take_; })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Wall-clock time as RFC 3339 UTC ("2026-11-25T21:43:02Z") into buf[32]. */
void time_rfc3339(char buf[32]);
/* Monotonic milliseconds. */
long long time_mono_ms(void);
void sleep_ms(int ms);
/* pthread_cond_timedwait on cond for at most ms milliseconds. */
void cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *mu, long long ms);
/* CLOCK_REALTIME ms from now, for pthread's timed waits. */
void realtime_in_ms(long long ms, struct timespec *ts);

/* n random bytes as 2n lowercase hex chars plus NUL into out. */
int random_hex(char *out, size_t nbytes, struct bn_err *err);

/* A VM or image name: a DNS label, 1-63 of [a-z0-9-], no leading or
 * trailing '-'. */
bool name_valid(const char *name);
/* Only a-z, 0-9 and '-' in the n bytes at s. */
bool label_chars_ok(const char *s, size_t n);
int name_check(const char *what, const char *name, struct bn_err *err);

/* An absolute host path without NUL, "//"-free components like ".." and
 * at most PATH_MAX.  Does not touch the filesystem. */
int path_check_abs(const char *what, const char *path, struct bn_err *err);

/* snprintf that fails with BN_EINVAL instead of truncating. */
int path_join(char *out, size_t outsz, struct bn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Read a whole small file (at most max bytes) into a NUL-terminated buffer. */
/* The first cap-1 bytes of a file into buf, NUL-terminated (/proc and
 * /sys files, whose sizes say nothing); 0, or -1 when it cannot be read. */
int file_read_small(const char *path, char *buf, size_t cap);
/* The last cap-1 bytes of a file into buf, NUL-terminated (logs, the
 * console); their count, or -1 when it cannot be read. */
ssize_t file_read_tail(const char *path, char *buf, size_t cap);
int file_read_all(const char *path, size_t max, char **ret, size_t *ret_len,
    struct bn_err *err);

int mkdir_p(const char *path, int mode, struct bn_err *err);

/* FNV-1a of a file's path and identity (device, inode, size, mtime), to
 * name caches derived from it; path NULL hashes "blank". */
struct stat;
uint64_t file_identity_hash(const char *path, const struct stat *st);

#endif
