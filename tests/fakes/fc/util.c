/* util.c - small helpers: errno words, time, whole writes, JSON members. */
#include "fake.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The errno values Firecracker's replies can carry, in musl's words. */
static const struct {
	int e;
	const char *text;
} musl_errors[] = {
	{ EPERM, "Operation not permitted" },
	{ ENOENT, "No such file or directory" },
	{ EACCES, "Permission denied" },
	{ EEXIST, "File exists" },
	{ ENOTDIR, "Not a directory" },
	{ EISDIR, "Is a directory" },
	{ EINVAL, "Invalid argument" },
	{ ENAMETOOLONG, "Filename too long" },
	{ ELOOP, "Symbolic link loop" },
	{ EADDRINUSE, "Address in use" },
	{ EADDRNOTAVAIL, "Address not available" },
	{ ECONNREFUSED, "Connection refused" },
	{ EBUSY, "Resource busy" },
	{ ENXIO, "No such device or address" },
	{ EROFS, "Read-only file system" },
	{ ETXTBSY, "Text file busy" },
	{ EAGAIN, "Resource temporarily unavailable" },
	{ ENOSPC, "No space left on device" },
	{ EMFILE, "No file descriptors available" },
	{ ENOMEM, "Out of memory" },
	{ ENODEV, "No such device" },
};

const char *
os_strerror(int e)
{
	for (size_t i = 0; i < sizeof(musl_errors) / sizeof(musl_errors[0]); i++)
		if (musl_errors[i].e == e)
			return musl_errors[i].text;
	return strerror(e);
}

void
io_err_str(char *buf, size_t cap, int e)
{
	snprintf(buf, cap, "%s (os error %d)", os_strerror(e), e);
}

void
random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];
	size_t n = nbytes < sizeof(b) ? nbytes : sizeof(b);
	uint64_t seed = now_ms() ^ ((uint64_t)getpid() << 32);

	if (getrandom(b, n, 0) != (ssize_t)n)
		for (size_t k = 0; k < n; k++, seed = seed * 6364136223846793005u + 1)
			b[k] = (unsigned char)(seed >> 33);
	for (size_t k = 0; k < n; k++)
		snprintf(out + 2 * k, 3, "%02x", b[k]);
	out[2 * n] = '\0';
}

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
write_all_fd(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return;
		buf += w;
		len -= (size_t)w;
	}
}

int
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int
open_append(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC,
	    0644);
}

int
unix_socket(const char *path, struct sockaddr_un *ret_sa)
{
	*ret_sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(ret_sa->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(ret_sa->sun_path, path);
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

int
unix_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd, e;

	if ((fd = unix_socket(path, &sa)) < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 128) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void
rust_debug_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '\0': fputs("\\0", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u{%x}", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

const char *
jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool
jbool(json_t *o, const char *key, bool dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_boolean(v) ? json_is_true(v) : dflt;
}
