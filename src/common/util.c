/* util.c - small shared helpers. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>


void
time_rfc3339(char buf[32])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

long long
time_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void
realtime_in_ms(long long ms, struct timespec *ts)
{
	if (ms < 0)
		ms = 0;
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void
cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *mu, long long ms)
{
	struct timespec ts;

	realtime_in_ms(ms, &ts);
	pthread_cond_timedwait(cond, mu, &ts);
}

int
random_hex(char *out, size_t nbytes, struct bn_err *err)
{
	unsigned char raw[64];
	static const char hex[] = "0123456789abcdef";

	if (nbytes > sizeof(raw))
		return bn_fail(err, BN_EINTERNAL, 0, "random_hex: %zu bytes", nbytes);
	if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes)
		return bn_fail(err, BN_ESYS, errno, "getrandom");
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * nbytes] = '\0';
	return 0;
}

bool
label_chars_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

bool
name_valid(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n < 1 || n > 63 || name[0] == '-' || name[n - 1] == '-')
		return false;
	return label_chars_ok(name, n);
}

int
name_check(const char *what, const char *name, struct bn_err *err)
{
	if (name_valid(name))
		return 0;
	bn_fail(err, BN_ENAME, 0,
	    "invalid %s name: must be 1-63 characters of a-z, 0-9 and '-', "
	    "not starting or ending with '-'", what);
	bn_err_detail(err, "name", name);
	return bn_err_hint(err, "use a DNS label such as 'web' or 'dev-1'");
}

int
path_check_abs(const char *what, const char *path, struct bn_err *err)
{
	const char *p;

	if (path == NULL || path[0] != '/') {
		bn_fail(err, BN_EPATH, 0, "%s must be an absolute path", what);
		bn_err_detail(err, "path", path ? path : "");
		return -1;
	}
	if (strlen(path) >= PATH_MAX)
		return bn_fail(err, BN_EPATH, 0, "%s is too long", what);
	for (p = path; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			bn_fail(err, BN_EPATH, 0,
			    "%s contains a control character", what);
			return -1;
		}
	}
	/* Reject ".." components: the path must name what it says. */
	for (p = path; (p = strstr(p, "/..")) != NULL; p += 3) {
		if (p[3] == '/' || p[3] == '\0') {
			bn_fail(err, BN_EPATH, 0, "%s must not contain '..'", what);
			bn_err_detail(err, "path", path);
			return -1;
		}
	}
	return 0;
}

int
path_join(char *out, size_t outsz, struct bn_err *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outsz)
		return bn_fail(err, BN_EINVAL, 0, "path too long: %.64s...", out);
	return 0;
}

int
file_read_all(const char *path, size_t max, char **ret, size_t *ret_len,
    struct bn_err *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 4096;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bn_fail(err, BN_ESYS, errno, "open %s", path);
	buf = xmalloc(cap + 1);
	for (;;) {
		ssize_t r;
		if (len == cap) {
			if (cap >= max)
				return bn_fail(err, BN_EINVAL, 0,
				    "%s is larger than %zu bytes", path, max);
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return bn_fail(err, BN_ESYS, errno, "read %s", path);
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > max)
		return bn_fail(err, BN_EINVAL, 0, "%s is larger than %zu bytes",
		    path, max);
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	*ret = TAKE_PTR(buf);
	return 0;
}

int
mkdir_p(const char *path, int mode, struct bn_err *err)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return bn_fail(err, BN_EINVAL, 0, "bad directory path");
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
			return bn_fail(err, BN_ESYS, errno, "mkdir %s", buf);
		*p = '/';
	}
	if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
		return bn_fail(err, BN_ESYS, errno, "mkdir %s", buf);
	return 0;
}

uint64_t
file_identity_hash(const char *path, const struct stat *st)
{
	char key[PATH_MAX + 96] = "blank";
	uint64_t h = 1469598103934665603ULL;  /* FNV-1a */

	if (path != NULL)
		snprintf(key, sizeof(key), "%lu:%lu:%lld:%lld.%ld:%s",
		    (unsigned long)st->st_dev, (unsigned long)st->st_ino,
		    (long long)st->st_size, (long long)st->st_mtim.tv_sec,
		    st->st_mtim.tv_nsec, path);
	for (const char *k = key; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ULL;
	return h;
}

int
file_read_small(const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	int fd;

	if (cap == 0)
		return -1;
	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while (len < cap - 1) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			buf[0] = '\0';
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return 0;
}

ssize_t
file_read_tail(const char *path, char *buf, size_t cap)
{
	struct stat st;
	int fd;

	if (cap == 0)
		return -1;
	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	off_t from = st.st_size > (off_t)cap - 1 ? st.st_size - (off_t)cap + 1 : 0;
	ssize_t n = pread(fd, buf, cap - 1, from);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}
