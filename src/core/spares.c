/* spares.c - ready-made root filesystem copies for fast creates.
 *
 * Every VM boots its own copy of its image's rootfs.  Where the state
 * directory's file system can reflink (XFS, btrfs) the copy is instant;
 * on ext4 the default image's ~800 MiB take 0.6 s or more, most of a
 * create's host-side work.  So bangerd keeps `rootfs_spares` copies of
 * recently used images under <state>/cache/spares, made in the background,
 * and a create renames one into the VM directory (same file system, O(1)).
 *
 * A spare is named <hash>-<slot>.ext4, the hash covering the image rootfs's
 * path and identity (device, inode, size, mtime): a rebuilt or replaced
 * image misses and its old spares are pruned.  Spares are written under a
 * temporary name, written back to the disk and renamed, so a create never
 * takes half a copy nor a copy whose writeback its VM would wait for, and
 * a rename that loses a race just falls back to copying.  Nothing is made
 * when the file system would be left with less than SPARE_FREE_MIN free.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"
#include "core/internal.h"

#define SPARE_FREE_MIN ((unsigned long long)2 << 30)

/* "<16 hex>" of the source's path and identity; -1 when it is gone. */
static int
spare_hash(const char *src, char out[17])
{
	struct stat st;

	if (stat(src, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	snprintf(out, 17, "%016" PRIx64, file_identity_hash(src, &st));
	return 0;
}

static int
spare_dir(struct core *c, char *out, size_t outsz)
{
	return path_join(out, outsz, NULL, "%s/cache/spares", c->cfg.state_dir);
}

/* Remember src as wanted (most recent first) and wake the filler. */
static void
spares_want(struct core *c, const char *src)
{
	int i;

	pthread_mutex_lock(&c->spare_mu);
	for (i = 0; i < c->spare_nwanted; i++)
		if (strcmp(c->spare_wanted[i], src) == 0)
			break;
	if (i == c->spare_nwanted && i < SPARE_WANTED_MAX)
		c->spare_nwanted++;
	if (i == SPARE_WANTED_MAX)
		i = SPARE_WANTED_MAX - 1;
	memmove(c->spare_wanted[1], c->spare_wanted[0],
	    (size_t)i * sizeof(c->spare_wanted[0]));
	snprintf(c->spare_wanted[0], sizeof(c->spare_wanted[0]), "%s", src);
	c->spare_dirty = true;
	pthread_cond_broadcast(&c->spare_cond);
	pthread_mutex_unlock(&c->spare_mu);
}

int
spares_take(struct core *c, const char *src, const char *dst)
{
	char dir[PATH_MAX], hash[17], path[PATH_MAX];
	int took = 0;

	if (c->cfg.rootfs_spares <= 0 || !c->spare_started)
		return 0;
	if (spare_dir(c, dir, sizeof(dir)) == 0 && spare_hash(src, hash) == 0) {
		for (int i = 0; i < c->cfg.rootfs_spares && !took; i++) {
			if (path_join(path, sizeof(path), NULL, "%s/%s-%d.ext4", dir,
			    hash, i) == 0 && rename(path, dst) == 0)
				took = 1;
		}
	}
	spares_want(c, src);
	return took;
}

/* Delete spares (and leftover temporaries) no wanted image names. */
static void
spares_prune(const char *dir, char hashes[][17], int n, int slots)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		bool keep = false;
		for (int i = 0; i < n && !keep; i++) {
			for (int s = 0; s < slots && !keep; s++) {
				char name[40];
				snprintf(name, sizeof(name), "%s-%d.ext4", hashes[i], s);
				keep = strcmp(de->d_name, name) == 0;
			}
		}
		if (!keep && path_join(path, sizeof(path), NULL, "%s/%s", dir,
		    de->d_name) == 0) {
			log_debug("spares: removing %s", de->d_name);
			unlink(path);
		}
	}
	closedir(d);
}

static bool
room_for(const char *dir, const char *src)
{
	struct statvfs vfs;
	struct stat st;

	if (statvfs(dir, &vfs) < 0 || stat(src, &st) < 0)
		return false;
	unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	unsigned long long need = (unsigned long long)st.st_blocks * 512;
	return avail > need + SPARE_FREE_MIN;
}

/* Make the missing spares of every wanted image; prune the rest. */
static void
spares_fill(struct core *c)
{
	char wanted[SPARE_WANTED_MAX][PATH_MAX], hashes[SPARE_WANTED_MAX][17];
	char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
	int n = 0, nh = 0;
	struct bn_err err;

	pthread_mutex_lock(&c->spare_mu);
	for (int i = 0; i < c->spare_nwanted; i++)
		snprintf(wanted[n++], PATH_MAX, "%s", c->spare_wanted[i]);
	pthread_mutex_unlock(&c->spare_mu);
	if (spare_dir(c, dir, sizeof(dir)) < 0 || mkdir_p(dir, 0700, NULL) < 0)
		return;
	for (int i = 0; i < n; i++)
		if (spare_hash(wanted[i], hashes[nh]) == 0)
			nh++;
	spares_prune(dir, hashes, nh, c->cfg.rootfs_spares);
	for (int i = 0; i < n && !c->stopping; i++) {
		char hash[17];
		if (spare_hash(wanted[i], hash) < 0)
			continue;
		for (int s = 0; s < c->cfg.rootfs_spares && !c->stopping; s++) {
			if (path_join(path, sizeof(path), NULL, "%s/%s-%d.ext4", dir,
			    hash, s) < 0 || access(path, F_OK) == 0)
				continue;
			if (!room_for(dir, wanted[i])) {
				log_info("spares: not copying %s: the state directory "
				    "would have less than 2 GiB free", wanted[i]);
				return;
			}
			if (path_join(tmp, sizeof(tmp), NULL, "%s/.%s-%d.tmp", dir,
			    hash, s) < 0)
				continue;
			unlink(tmp);
			long long t0 = time_mono_ms();
			/* Written back before it is offered: QEMU opens disks
			 * with O_DIRECT and turns the guest's first flush (the
			 * root's rw mount) into an fdatasync of the whole file,
			 * which would wait for the copy's ~800 MiB of dirty
			 * pages: 0.7 s of the boot when the create comes soon
			 * after the last one (measured under TCG). */
			if (fs_copy_sparse(wanted[i], tmp, 0600, &err) < 0 ||
			    fs_sync_file(tmp, &err) < 0) {
				log_warnx("spares: %s", err.msg);
				unlink(tmp);
				continue;
			}
			/* The image may have changed while it was copied. */
			char again[17];
			if (spare_hash(wanted[i], again) < 0 || strcmp(again, hash) != 0 ||
			    rename(tmp, path) < 0) {
				unlink(tmp);
				continue;
			}
			log_debug("spares: %s ready in %lld ms", path,
			    time_mono_ms() - t0);
		}
	}
}

static void *
spares_main(void *arg)
{
	struct core *c = arg;

	pthread_mutex_lock(&c->spare_mu);
	while (!c->stopping) {
		if (c->spare_dirty) {
			c->spare_dirty = false;
			pthread_mutex_unlock(&c->spare_mu);
			spares_fill(c);
			pthread_mutex_lock(&c->spare_mu);
			continue;
		}
		pthread_cond_wait(&c->spare_cond, &c->spare_mu);
	}
	pthread_mutex_unlock(&c->spare_mu);
	return NULL;
}

void
spares_start(struct core *c)
{
	struct bn_err ignored;

	pthread_mutex_init(&c->spare_mu, NULL);
	pthread_cond_init(&c->spare_cond, NULL);
	if (c->cfg.rootfs_spares <= 0)
		return;
	if (pthread_create(&c->spare_thread, NULL, spares_main, c) != 0) {
		log_warnx("spares: cannot start the filler thread");
		return;
	}
	c->spare_started = true;
	/* The first create of the day is usually from the default image,
	 * the bundle's rootfs. */
	if (fs_check_ext4_image("rootfs", c->bundle.rootfs, &ignored) == 0)
		spares_want(c, c->bundle.rootfs);
}

void
spares_stop(struct core *c)
{
	if (!c->spare_started)
		return;
	pthread_mutex_lock(&c->spare_mu);
	pthread_cond_broadcast(&c->spare_cond);
	pthread_mutex_unlock(&c->spare_mu);
	pthread_join(c->spare_thread, NULL);
	c->spare_started = false;
}

void
spares_forget(struct core *c, const char *src)
{
	if (!c->spare_started)
		return;
	pthread_mutex_lock(&c->spare_mu);
	for (int i = 0; i < c->spare_nwanted; i++) {
		if (strcmp(c->spare_wanted[i], src) != 0)
			continue;
		memmove(c->spare_wanted[i], c->spare_wanted[i + 1],
		    (size_t)(c->spare_nwanted - i - 1) * sizeof(c->spare_wanted[0]));
		c->spare_nwanted--;
		break;
	}
	/* The filler prunes what is no longer wanted. */
	c->spare_dirty = true;
	pthread_cond_broadcast(&c->spare_cond);
	pthread_mutex_unlock(&c->spare_mu);
}
