/* warm.c - images' warm snapshots: where one is kept, whether a create
 * can use it, and dropping it.  Taking one is warming.c.
 *
 * A create of a warm image whose shape (vcpus, memory, disk) and VMM are
 * the warm snapshot's restores a copy of it (operation vm.create_warm,
 * the clone steps) instead of booting; any other create boots cold and
 * says why in the operation's note.  The warm row records the identity
 * of the image's files and the bundle's kernel when it was taken: a
 * create that finds them changed drops the snapshot and boots cold, and
 * registering, building or deleting the image drops it at once. */
#include "core/snap.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"

int
warm_dir(struct core *c, const char *image, char *out, size_t outsz,
    struct bn_err *err)
{
	return path_join(out, outsz, err, "%s/warm/%s", c->cfg.state_dir, image);
}

/* inode, size and mtime: a rebuilt or replaced file differs. */
static size_t
file_id(const char *path, char *out, size_t outsz)
{
	struct stat st;

	if (path[0] == '\0' || stat(path, &st) < 0)
		return (size_t)snprintf(out, outsz, "-;");
	return (size_t)snprintf(out, outsz, "%llx.%llx.%lld.%lld;",
	    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
	    (long long)st.st_size, (long long)st.st_mtim.tv_sec * 1000000000LL +
	    st.st_mtim.tv_nsec);
}

void
warm_image_identity(struct core *c, const struct image_view *iv, char out[128])
{
	size_t n = 0;

	n += file_id(iv->img.rootfs, out + n, 128 - n);
	if (n < 128)
		n += file_id(iv->img.work_seed, out + n, 128 - n);
	if (n < 128)
		file_id(c->bundle.kernel, out + n, 128 - n);
}

/* Remove image's warm snapshot (files, then row) unless one is being
 * taken (that operation checks the image again when it ends). */
void
warm_drop(struct core *c, const char *image, const char *why)
{
	struct warm w;
	char dir[PATH_MAX];

	if (store_warm_get(c->store, image, &w, NULL) < 0 ||
	    w.state != SNAP_READY || warm_dir(c, image, dir, sizeof(dir),
	    NULL) < 0)
		return;
	fs_remove_tree(dir, NULL);
	store_warm_delete(c->store, image, NULL);
	log_info("image '%s': warm snapshot dropped (%s)", image, why);
	core_emit(c, "image.cooled", NULL, NULL, json_pack("{s:s, s:s}",
	    "name", image, "why", why));
}

/* Called by a create of lr->iv (not a clone) once its VMM is picked:
 * restore the warm snapshot when it fits, else boot and say why. */
void
warm_choose(struct core *c, const char *name, struct life_req *lr,
    long long vcpus, long long memory_mib, long long disk_gib)
{
	const char *image = lr->iv.img.name;
	struct warm w;
	char id[128];

	if (store_warm_get(c->store, image, &w, NULL) < 0)
		return;
	if (w.state != SNAP_READY) {
		if (strcmp(w.vm, name) != 0)
			snprintf(lr->note, sizeof(lr->note), "image '%s' is being "
			    "warmed: booted cold", image);
		return;
	}
	warm_image_identity(c, &lr->iv, id);
	if (strcmp(id, w.image_id) != 0) {
		warm_drop(c, image, "the image or the kernel changed");
		snprintf(lr->note, sizeof(lr->note), "image '%s' changed since "
		    "it was warmed: its warm snapshot was dropped, booted cold",
		    image);
		return;
	}
	if (strcmp(w.vmm, lr->choice.drv->name) != 0) {
		snprintf(lr->note, sizeof(lr->note), "the warm snapshot of image "
		    "'%s' is %s's; this create uses %s: booted cold", image, w.vmm,
		    lr->choice.drv->name);
		return;
	}
	if (lr->choice.drv->restore == NULL)
		return;
	if (vcpus != w.vcpus || memory_mib != w.memory_mib ||
	    disk_gib != w.disk_gib) {
		snprintf(lr->note, sizeof(lr->note), "the warm snapshot of image "
		    "'%s' has %d vcpus, %d MiB and a %d GiB disk; this create asked "
		    "for %lld, %lld and %lld: booted cold", image, w.vcpus,
		    w.memory_mib, w.disk_gib, vcpus, memory_mib, disk_gib);
		return;
	}
	lr->kind = LIFE_WARM_CREATE;
	lr->warm = true;
	snprintf(lr->snap, sizeof(lr->snap), WARM_SNAP);
	snprintf(lr->note, sizeof(lr->note), "warm start: a copy of image "
	    "'%s''s warm snapshot of %s", image, w.created_at);
}
