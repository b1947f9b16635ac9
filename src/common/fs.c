/* fs.c - sparse and reflink copies, tree removal. */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

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

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return bn_fail(err, BN_ESYS, errno, "open %s", src);
	if (fstat(in, &st) < 0)
		return bn_fail(err, BN_ESYS, errno, "stat %s", src);
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
