/* image.c - images: the bundle's default plus registered and built ones. */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/util.h"


/* Whether a rootfs is (still) an ext4 image a VM can boot from. */
static bool
image_usable(const char *rootfs)
{
	struct bn_err ignored;

	return fs_check_ext4_image("rootfs", rootfs, &ignored) == 0;
}

static void
default_image(struct core *c, struct image_view *iv)
{
	memset(iv, 0, sizeof(*iv));
	snprintf(iv->img.name, sizeof(iv->img.name), DEFAULT_IMAGE);
	iv->img.source = IMAGE_BUNDLE;
	iv->img.managed = false;
	snprintf(iv->img.rootfs, sizeof(iv->img.rootfs), "%s", c->bundle.rootfs);
	if (access(c->bundle.work_seed, R_OK) == 0)
		snprintf(iv->img.work_seed, sizeof(iv->img.work_seed), "%s",
		    c->bundle.work_seed);
	iv->is_default = true;
	iv->available = image_usable(iv->img.rootfs);
	iv->has_warm = store_warm_get(c->store, iv->img.name, &iv->warm,
	    NULL) == 0;
}

static void
view_of(struct core *c, const struct image *img, struct image_view *iv)
{
	iv->img = *img;
	iv->is_default = false;
	iv->available = image_usable(img->rootfs);
	iv->has_warm = store_warm_get(c->store, img->name, &iv->warm,
	    NULL) == 0;
}

int
core_image_list(struct core *c, struct image_view **ret, int *ret_n,
    struct bn_err *err)
{
	struct image *imgs = NULL;
	struct image_view *out;
	int n = 0;

	if (store_image_list(c->store, &imgs, &n, err) < 0)
		return -1;
	out = xcalloc((size_t)n + 1, sizeof(*out));
	default_image(c, &out[0]);
	for (int i = 0; i < n; i++)
		view_of(c, &imgs[i], &out[i + 1]);
	free(imgs);
	*ret = out;
	*ret_n = n + 1;
	return 0;
}

int
core_image_get(struct core *c, const char *name, struct image_view *ret,
    struct bn_err *err)
{
	struct image img;

	if (name_check("image", name, err) < 0)
		return -1;
	if (strcmp(name, DEFAULT_IMAGE) == 0) {
		default_image(c, ret);
		return 0;
	}
	if (store_image_get(c->store, name, &img, err) < 0)
		return -1;
	view_of(c, &img, ret);
	return 0;
}

int
core_image_register(struct core *c, const char *name, const char *rootfs,
    const char *work_seed, struct image_view *ret, bool *ret_created,
    struct bn_err *err)
{
	struct image img, old;

	if (name_check("image", name, err) < 0)
		return -1;
	if (strcmp(name, DEFAULT_IMAGE) == 0) {
		bn_fail(err, BN_EIMG_DEFAULT, 0, "'default' is the runtime bundle's "
		    "image and cannot be registered over");
		return bn_err_hint(err, "pick another name");
	}
	/* Validated here at the boundary: the paths must name ext4 images
	 * now; each create checks them again before it copies them. */
	if (fs_check_ext4_image("rootfs", rootfs, err) < 0)
		return -1;
	if (work_seed && fs_check_ext4_image("work_seed", work_seed, err) < 0)
		return -1;
	if (store_image_get(c->store, name, &old, NULL) == 0 &&
	    old.source == IMAGE_BUILT) {
		bn_fail(err, BN_ESTATE, 0, "image '%s' was built by banger; delete "
		    "it before registering another rootfs under its name", name);
		return -1;
	}
	memset(&img, 0, sizeof(img));
	snprintf(img.name, sizeof(img.name), "%s", name);
	img.source = IMAGE_REGISTERED;
	img.managed = false;
	snprintf(img.rootfs, sizeof(img.rootfs), "%s", rootfs);
	snprintf(img.work_seed, sizeof(img.work_seed), "%s", work_seed ? work_seed : "");
	time_rfc3339(img.created_at);
	memcpy(img.updated_at, img.created_at, sizeof(img.updated_at));
	if (store_image_upsert(c->store, &img, ret_created, err) < 0)
		return -1;
	warm_drop(c, name, "registered again");
	if (core_image_get(c, name, ret, err) < 0)
		return -1;
	core_emit(c, "image.registered", NULL, NULL, image_to_json(ret));
	return 0;
}

int
core_image_delete(struct core *c, const char *name, struct bn_err *err)
{
	struct image img;
	int users;

	if (name_check("image", name, err) < 0)
		return -1;
	if (strcmp(name, DEFAULT_IMAGE) == 0) {
		bn_fail(err, BN_EIMG_DEFAULT, 0, "the default image comes from the "
		    "runtime bundle and cannot be deleted");
		return -1;
	}
	if (store_image_get(c->store, name, &img, err) < 0)
		return -1;
	if (store_vm_count_image(c->store, name, &users, err) < 0)
		return -1;
	if (users > 0) {
		bn_fail(err, BN_EIMG_INUSE, 0, "image '%s' is used by %d vm%s", name,
		    users, users == 1 ? "" : "s");
		return bn_err_hint(err, "delete those vms first");
	}
	/* Unmanaged records only point at the user's files: never delete
	 * them.  Managed (built) images live in our state dir. */
	if (store_image_delete(c->store, name, err) < 0)
		return -1;
	warm_drop(c, name, "deleted");
	spares_forget(c, img.rootfs);
	if (img.managed) {
		char dir[PATH_MAX];
		/* Built images own their directory under the state dir. */
		if (path_join(dir, sizeof(dir), NULL, "%s/images/%s", c->cfg.state_dir,
		    name) == 0)
			fs_remove_tree(dir, NULL);
	}
	core_emit(c, "image.deleted", NULL, NULL, json_pack("{s:s}", "name", name));
	return 0;
}
