/* images.c - the images table: registered and built images (the
 * bundle's default image is not stored). */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define IMG_COLS "name, source, managed, rootfs, work_seed, created_at, updated_at"

static void
image_from_row(sqlite3_stmt *st, struct image *img)
{
	char src[16];

	memset(img, 0, sizeof(*img));
	col_text(st, 0, img->name, sizeof(img->name));
	col_text(st, 1, src, sizeof(src));
	img->source = strcmp(src, "built") == 0 ? IMAGE_BUILT : IMAGE_REGISTERED;
	img->managed = sqlite3_column_int(st, 2) != 0;
	col_text(st, 3, img->rootfs, sizeof(img->rootfs));
	col_text(st, 4, img->work_seed, sizeof(img->work_seed));
	col_text(st, 5, img->created_at, sizeof(img->created_at));
	col_text(st, 6, img->updated_at, sizeof(img->updated_at));
}

int
store_image_upsert(struct store *s, const struct image *img, bool *ret_created,
    struct bn_err *err)
{
	int exists = 0;

	if (store_query_int(s, "SELECT count(*) FROM images WHERE name = ?",
	    img->name, &exists, err) < 0)
		return -1;

	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	/* created_at survives an update: ON CONFLICT leaves it alone. */
	if (stmt_prepare(s, "INSERT INTO images (" IMG_COLS ") VALUES "
	    "(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(name) DO UPDATE SET source=?2, "
	    "managed=?3, rootfs=?4, work_seed=?5, updated_at=?7", &st,
	    "prepare upsert image", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, img->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, image_source_name(img->source), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 3, img->managed);
	sqlite3_bind_text(st, 4, img->rootfs, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, img->work_seed, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, img->created_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, img->updated_at, -1, SQLITE_STATIC);
	if (stmt_done(s, st, "upsert image", NULL, err) < 0)
		return -1;
	s->generation++;
	if (ret_created)
		*ret_created = exists == 0;
	return 0;
}

static int
image_not_found(struct bn_err *err, const char *name)
{
	bn_fail(err, BN_EIMG_NOTFOUND, 0, "image '%s' not found", name);
	bn_err_detail(err, "name", name);
	return bn_err_hint(err, "run 'banger image list' to see registered images");
}

int
store_image_get(struct store *s, const char *name, struct image *ret,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int rc;

	if (stmt_prepare(s, "SELECT " IMG_COLS " FROM images WHERE name = ?", &st,
	    "prepare get image", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = stmt_row(s, st, "get image", err)) <= 0)
		return rc < 0 ? -1 : image_not_found(err, name);
	image_from_row(st, ret);
	return 0;
}

int
store_image_delete(struct store *s, const char *name, struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int n;

	if (stmt_prepare(s, "DELETE FROM images WHERE name = ?", &st,
	    "prepare delete image", err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((n = stmt_done(s, st, "delete image", NULL, err)) <= 0)
		return n < 0 ? -1 : image_not_found(err, name);
	s->generation++;
	return 0;
}

static void
image_row(sqlite3_stmt *st, void *img)
{
	image_from_row(st, img);
}

int
store_image_list(struct store *s, struct image **ret, int *ret_n,
    struct bn_err *err)
{
	STORE_LOCK(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (stmt_prepare(s, "SELECT " IMG_COLS " FROM images ORDER BY name", &st,
	    "prepare list images", err) < 0)
		return -1;
	return stmt_rows(s, st, sizeof(**ret), image_row, "list images",
	    (void **)ret, ret_n, err);
}
