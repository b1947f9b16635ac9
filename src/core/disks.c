/* disks.c - a VM's work disk: a clone of its image's work seed grown to
 * the VM's size, or an empty ext4, made from a cached template. */
#include "core/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "guest/guest.h"

/* Grow an ext4 image to its file's size.  A seed that was never mounted
 * resizes directly; one that was (or looks unclean) is checked first. */
int
grow_ext4(const char *path, struct bn_err *err)
{
	char out[512];
	char *resize[] = { "/sbin/resize2fs", (char *)path, NULL };
	char *fsck[] = { "/sbin/e2fsck", "-f", "-p", (char *)path, NULL };

	if (proc_run(resize, 60000, out, sizeof(out), NULL, err) == 0)
		return 0;
	if (proc_run(fsck, 60000, out, sizeof(out), NULL, err) < 0 ||
	    proc_run(resize, 60000, out, sizeof(out), NULL, err) < 0)
		return bn_err_prefix(err, "grow work disk");
	return 0;
}

/* Format an empty work disk image of the file's size. */
static int
format_ext4(const char *path, struct bn_err *err)
{
	char out[512];
	char *mkfs[] = { "/sbin/mkfs.ext4", "-q", "-F", "-L", "banger-work",
		(char *)path, NULL };

	if (proc_run(mkfs, 60000, out, sizeof(out), NULL, err) < 0)
		return bn_err_prefix(err, "format work disk");
	return 0;
}

/* A work disk template of a size, kept under <state>/cache: the image's
 * seed grown to disk_gib, or an empty ext4 when the image has no seed.
 * Making one takes tens of milliseconds (resize2fs, mkfs), cloning it a
 * few (it is sparse: ~1.5 MiB allocated for 8 GiB).  The name carries the
 * seed's identity (device, inode, size, mtime), so a changed seed misses. */
static int
workdisk_template(struct core *c, const char *seed, int disk_gib, char *out,
    size_t outsz, struct bn_err *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	off_t want = (off_t)disk_gib << 30;
	struct stat st = { 0 };

	if (seed != NULL && stat(seed, &st) < 0)
		return bn_fail(err, BN_ESYS, errno, "stat %s", seed);
	uint64_t h = file_identity_hash(seed, &st);
	if (path_join(dir, sizeof(dir), err, "%s/cache", c->cfg.state_dir) < 0 ||
	    path_join(out, outsz, err, "%s/work-%016llx-%dg.ext4", dir,
	    (unsigned long long)h, disk_gib) < 0)
		return -1;
	if (access(out, R_OK) == 0)
		return 0;
	/* Built under a temporary name and renamed: concurrent creates may
	 * both build, and either result is whole. */
	if (mkdir_p(dir, 0700, err) < 0 ||
	    path_join(tmp, sizeof(tmp), err, "%s.%d.%lx.tmp", out, (int)getpid(),
	    (unsigned long)pthread_self()) < 0)
		return -1;
	unlink(tmp);
	if (seed != NULL) {
		if (fs_copy_sparse(seed, tmp, 0600, err) < 0)
			return -1;
		if (st.st_size < want && (truncate(tmp, want) < 0 ?
		    bn_fail(err, BN_ESYS, errno, "grow %s", tmp) :
		    grow_ext4(tmp, err)) < 0)
			goto fail;
	} else {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return bn_fail(err, BN_ESYS, errno, "create %s", tmp);
		int rc = ftruncate(fd, want);
		close(fd);
		if (rc < 0) {
			bn_fail(err, BN_ESYS, errno, "size %s", tmp);
			goto fail;
		}
		if (format_ext4(tmp, err) < 0)
			goto fail;
	}
	if (rename(tmp, out) < 0) {
		bn_fail(err, BN_ESYS, errno, "rename %s", out);
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	return -1;
}

/* Work disk: a clone of the image's seed grown to disk_gib, or an empty
 * ext4 of that size. */
int
make_workdisk(struct core *c, const struct image_view *iv, const char *path,
    int disk_gib, struct bn_err *err)
{
	const char *seed = iv->img.work_seed[0] &&
	    access(iv->img.work_seed, R_OK) == 0 ? iv->img.work_seed : NULL;
	char tmpl[PATH_MAX];

	if (workdisk_template(c, seed, disk_gib, tmpl, sizeof(tmpl), err) < 0)
		return bn_err_prefix(err, "work disk");
	return fs_copy_sparse(tmpl, path, 0600, err);
}
