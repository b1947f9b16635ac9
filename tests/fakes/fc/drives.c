/* drives.c - PUT and PATCH /drives/{drive_id}: virtio block devices. */
#include "fake.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* The backing file opens as the guest will use it; -1 with errno. */
static int
drive_try_open(const char *path, bool read_only)
{
	int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static json_t *
drive_build(struct request *rq, ssize_t idx)
{
	json_t *cfg = rq->body, *first = json_array_get(fc.drives, 0);
	bool is_root = jbool(cfg, "is_root_device", false);
	bool ro = jbool(cfg, "is_read_only", false);
	const char *path = jstr(cfg, "path_on_host");
	const char *cache = jstr(cfg, "cache_type");
	const char *engine = jstr(cfg, "io_engine");
	char e[128];

	if (is_root && first != NULL && jbool(first, "is_root_device", false) &&
	    idx != 0) {
		reply_fault(rq, "Drive config error: A root block device already "
		    "exists!");
		return NULL;
	}
	if (jstr(cfg, "socket") != NULL) {
		reply_fault(rq, "Drive config error: Unable to create the "
		    "vhost-user-block device: vhost-user backends are not "
		    "supported by the banger Firecracker test double");
		return NULL;
	}
	if (path == NULL) {
		reply_fault(rq, "Drive config error: Unable to create the virtio "
		    "block device: path_on_host is required for virtio-block "
		    "drives");
		return NULL;
	}
	if (drive_try_open(path, ro) < 0) {
		io_err_str(e, sizeof(e), errno);
		reply_fault(rq, "Drive config error: Unable to create the virtio "
		    "block device: Virtio backend error: Error manipulating the "
		    "backing file: %s %s", e, path);
		return NULL;
	}
	return json_pack("{s:O,s:O?,s:O,s:s,s:b,s:O?,s:s,s:O?,s:n}",
	    "drive_id", json_object_get(cfg, "drive_id"),
	    "partuuid", json_object_get(cfg, "partuuid"),
	    "is_root_device", json_object_get(cfg, "is_root_device"),
	    "cache_type", cache ? cache : "Unsafe",
	    "is_read_only", ro,
	    "path_on_host", json_object_get(cfg, "path_on_host"),
	    "io_engine", engine ? engine : "Sync",
	    "rate_limiter", json_object_get(cfg, "rate_limiter"),
	    "socket");
}

/* The root device is always first, as the guest sees it as vda. */
static void
drive_store(json_t *dev, ssize_t idx)
{
	bool is_root = jbool(dev, "is_root_device", false);

	if (idx < 0) {
		if (is_root)
			json_array_insert_new(fc.drives, 0, dev);
		else
			json_array_append_new(fc.drives, dev);
		return;
	}
	json_array_set_new(fc.drives, (size_t)idx, dev);
	if (idx != 0 && is_root) {
		json_t *old_first = json_incref(json_array_get(fc.drives, 0));
		json_array_set(fc.drives, 0, dev);
		json_array_set_new(fc.drives, (size_t)idx, old_first);
	}
}

static int
drive_patch_check(struct request *rq, json_t *dev)
{
	const char *path = jstr(rq->body, "path_on_host");
	char e[128];

	if (path == NULL ||
	    drive_try_open(path, jbool(dev, "is_read_only", false)) == 0)
		return 0;
	io_err_str(e, sizeof(e), errno);
	reply_fault(rq, "Drive config error: Error during drive update (patch): "
	    "%s", e);
	return -1;
}

const struct keyed drives_keyed = {
	.items = &fc.drives,
	.patch_missing = "Drive config error: Error during drive update "
	    "(patch): Invalid drive ID",
	.build = drive_build,
	.store = drive_store,
	.patch_check = drive_patch_check,
};
