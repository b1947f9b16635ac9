/* fs.c - sparse and reflink copies, tree removal. */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "util.h"

static int
copy_range(int in, int out, off_t off, off_t len)
{
	off_t ioff = off, ooff = off;

	while (len > 0) {
		ssize_t n = copy_file_range(in, &ioff, out, &ooff, (size_t)len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP)
				goto rw;
			return -1;
		}
		if (n == 0)
			break;
		len -= n;
	}
	return 0;
rw:
	/* Fall back to read/write for filesystems without copy_file_range. */
	{
		char buf[1 << 16];
		while (len > 0) {
			size_t want = len > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)len;
			ssize_t r = pread(in, buf, want, ioff);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return r < 0 ? -1 : 0;
			ssize_t w = pwrite(out, buf, (size_t)r, ooff);
			if (w != r)
				return -1;
			ioff += r;
			ooff += r;
			len -= r;
		}
	}
	return 0;
}

int
fs_copy_sparse(const char *src, const char *dst, int mode, struct bn_err *err)
{
	_cleanup_close_ int in = -1;
	_cleanup_close_ int out = -1;
	struct stat st;
	off_t pos = 0;

	/* O_NONBLOCK: an image swapped for a FIFO since it was checked must
	 * not block this thread; anything but a regular file is refused. */
	in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (in < 0)
		return bn_fail(err, BN_ESYS, errno, "open %s", src);
	if (fstat(in, &st) < 0)
		return bn_fail(err, BN_ESYS, errno, "stat %s", src);
	if (!S_ISREG(st.st_mode))
		return bn_fail(err, BN_EIMAGE, 0, "%s is not a regular file", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0)
		return bn_fail(err, BN_ESYS, errno, "create %s", dst);
	if (ioctl(out, FICLONE, in) == 0)
		return 0;
	if (ftruncate(out, st.st_size) < 0) {
		bn_fail(err, BN_ESYS, errno, "truncate %s", dst);
		goto fail;
	}
	while (pos < st.st_size) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole remains */
			bn_fail(err, BN_ESYS, errno, "seek %s", src);
			goto fail;
		}
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = st.st_size;
		if (copy_range(in, out, data, hole - data) < 0) {
			bn_fail(err, BN_ESYS, errno, "copy %s to %s", src, dst);
			goto fail;
		}
		pos = hole;
	}
	return 0;
fail:
	unlink(dst);
	return -1;
}

int
fs_sync_file(const char *path, struct bn_err *err)
{
	_cleanup_close_ int fd = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return bn_fail(err, BN_ESYS, errno, "open %s", path);
	if (fdatasync(fd) < 0)
		return bn_fail(err, BN_ESYS, errno, "sync %s", path);
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int
fs_remove_tree(const char *path, struct bn_err *err)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return bn_fail(err, BN_ESYS, errno, "stat %s", path);
	}
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
		return bn_fail(err, BN_ESYS, errno, "remove %s", path);
	return 0;
}

int
fs_check_regular(const char *what, const char *path, struct bn_err *err)
{
	struct stat st;

	if (path_check_abs(what, path, err) < 0)
		return -1;
	if (stat(path, &st) < 0) {
		bn_fail(err, BN_EPATH, errno, "%s %s", what, path);
		bn_err_detail(err, "path", path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		bn_fail(err, BN_EPATH, 0, "%s %s is not a regular file", what, path);
		bn_err_detail(err, "path", path);
		return -1;
	}
	if (access(path, R_OK) < 0) {
		bn_fail(err, BN_EPATH, errno, "%s %s", what, path);
		bn_err_detail(err, "path", path);
		return -1;
	}
	return 0;
}

static int
image_fail(struct bn_err *err, const char *what, const char *path,
    const char *fmt, const char *why)
{
	char msg[200];

	snprintf(msg, sizeof(msg), fmt, why);
	bn_fail(err, BN_EIMAGE, 0, "%s %s: %s", what, path, msg);
	bn_err_detail(err, "field", what);
	return -1;
}

static const char *
file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* The ext4 superblock: 1024 bytes at offset 1024 (see the kernel's
 * struct ext4_super_block). */
#define SB_OFFSET 1024
#define SB_MAGIC 0xEF53
#define SB_INCOMPAT_64BIT 0x80

int
fs_check_ext4_image(const char *what, const char *path, struct bn_err *err)
{
	char real[PATH_MAX];
	struct stat st;
	unsigned char sb[1024];

	if (path_check_abs(what, path, err) < 0)
		return -1;
	if (realpath(path, real) == NULL) {
		bn_fail(err, BN_EPATH, errno, "%s %s", what, path);
		return bn_err_detail(err, "path", path);
	}
	/* Kernel interfaces, not images: /proc/self/mem and friends look
	 * like regular files. */
	static const char *const pseudo[] = { "/proc", "/sys", "/dev" };
	for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++) {
		size_t n = strlen(pseudo[i]);
		if (strncmp(real, pseudo[i], n) == 0 &&
		    (real[n] == '/' || real[n] == '\0'))
			return image_fail(err, what, path, "is under %s", pseudo[i]);
	}
	if (lstat(real, &st) < 0) {
		bn_fail(err, BN_EPATH, errno, "%s %s", what, path);
		return bn_err_detail(err, "path", path);
	}
	if (!S_ISREG(st.st_mode))
		return image_fail(err, what, path, "is %s", file_kind(st.st_mode));
	if (st.st_size == 0)
		return image_fail(err, what, path, "is %s", "empty");
	int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
	    O_NOFOLLOW);
	if (fd < 0) {
		char why[128];
		snprintf(why, sizeof(why), "%s", strerror(errno));
		return image_fail(err, what, path, "cannot be read by bangerd: %s",
		    why);
	}
	/* Swapped for something else since the lstat? */
	struct stat fst;
	if (fstat(fd, &fst) < 0) {
		char why[128];
		snprintf(why, sizeof(why), "%s", strerror(errno));
		close(fd);
		return image_fail(err, what, path, "cannot be read by bangerd: %s",
		    why);
	}
	if (!S_ISREG(fst.st_mode)) {
		close(fd);
		return image_fail(err, what, path, "is %s", file_kind(fst.st_mode));
	}
	ssize_t n = pread(fd, sb, sizeof(sb), SB_OFFSET);
	int e = errno;
	close(fd);
	if (n < 0)
		return image_fail(err, what, path, "cannot be read by bangerd: %s",
		    strerror(e));
	if (n < (ssize_t)sizeof(sb) || (sb[56] | sb[57] << 8) != SB_MAGIC)
		return image_fail(err, what, path, "is %s",
		    "not an ext4 image (no ext4 superblock)");
	uint32_t log_block = le32(sb + 24);
	if (log_block > 6)
		return image_fail(err, what, path, "has %s",
		    "a corrupt superblock (block size)");
	unsigned long long blocks = le32(sb + 4);
	if (le32(sb + 0x60) & SB_INCOMPAT_64BIT)
		blocks |= (unsigned long long)le32(sb + 0x150) << 32;
	unsigned long long want;
	if (blocks == 0 ||
	    __builtin_mul_overflow(blocks, 1024ULL << log_block, &want))
		return image_fail(err, what, path, "has %s",
		    "a corrupt superblock (block count)");
	if ((unsigned long long)fst.st_size < want) {
		char why[128];
		snprintf(why, sizeof(why), "the superblock says %llu bytes, the "
		    "file has %lld", want, (long long)fst.st_size);
		return image_fail(err, what, path, "is truncated: %s", why);
	}
	return 0;
}

static void
to_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char hex[65])
{
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

int
fs_sha256_file(const char *path, char hex[65], struct bn_err *err)
{
	enum { CHUNK = 1 << 20 };
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;

	if (fd < 0)
		return bn_fail(err, BN_ESYS, errno, "%s", path);
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return bn_fail(err, BN_ESYS, e, "stat %s", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return bn_fail(err, BN_ESYS, 0, "%s: not a regular file", path);
	}
	uint8_t *buf = xmalloc(CHUNK);
	static const uint8_t zeros[CHUNK];
	off_t off = 0;
	sha256_init(&ctx);
	/* Holes read as zeros: hash them from memory instead of having the
	 * kernel copy them (a guest's memory file is mostly holes until it
	 * has used its memory). */
	while (off < st.st_size) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			data = st.st_size;          /* a hole to the end */
		else if (data < 0)
			data = off;                 /* no SEEK_DATA: read it all */
		for (; off < data; ) {
			size_t n = data - off > CHUNK ? CHUNK : (size_t)(data - off);
			sha256_update(&ctx, n, zeros);
			off += (off_t)n;
		}
		if (off >= st.st_size)
			break;
		off_t hole = lseek(fd, off, SEEK_HOLE);
		if (hole < 0 || hole <= off)
			hole = st.st_size;
		if (lseek(fd, off, SEEK_SET) < 0)
			goto fail;
		while (off < hole) {
			size_t want = hole - off > CHUNK ? CHUNK : (size_t)(hole - off);
			ssize_t n = read(fd, buf, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				goto fail;
			sha256_update(&ctx, (size_t)n, buf);
			off += n;
		}
	}
	free(buf);
	close(fd);
	sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
	to_hex(digest, hex);
	return 0;
fail:;
	int e = errno;
	free(buf);
	close(fd);
	return bn_fail(err, BN_ESYS, e ? e : EIO, "read %s (it changed while "
	    "it was read)", path);
}

void
fs_sha256_hex(const void *data, size_t len, char hex[65])
{
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];

	sha256_init(&ctx);
	sha256_update(&ctx, len, data);
	sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
	to_hex(digest, hex);
}

long long
fs_allocated(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_blocks * 512 : 0;
}
