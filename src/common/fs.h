/* fs.h - file operations for VM disks. */
#ifndef BANGER_FS_H
#define BANGER_FS_H

#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* Copy src to a new file dst (which must not exist) without materialising
 * holes: FICLONE (reflink) first, else SEEK_DATA/SEEK_HOLE extents copied
 * with copy_file_range.  On failure dst is removed. */
int fs_copy_sparse(const char *src, const char *dst, int mode,
    struct bn_err *err);

/* Write path's data to its disk (fdatasync) and wait for it. */
int fs_sync_file(const char *path, struct bn_err *err);

/* Remove a directory tree that we created (VM directories); does not
 * follow symlinks.  Missing is not an error. */
int fs_remove_tree(const char *path, struct bn_err *err);

/* The SHA-256 of a file's bytes as 64 hex digits (nettle's, which uses
 * the CPU's SHA instructions where it has them: a guest's memory is
 * gigabytes).  BN_ESYS when it cannot be read. */
int fs_sha256_file(const char *path, char hex[65], struct bn_err *err);
/* The SHA-256 of len bytes at data as 64 hex digits. */
void fs_sha256_hex(const void *data, size_t len, char hex[65]);
/* Bytes a file holds on disk (st_blocks), 0 when it cannot be stat'd. */
long long fs_allocated(const char *path);

/* Check that path is a regular file we can read; BN_EPATH otherwise. */
int fs_check_regular(const char *what, const char *path, struct bn_err *err);

/* Check that path (absolute; symlinks resolved) names an ext4 image a VM
 * can boot from or clone: a regular file outside /proc, /sys and /dev,
 * readable, holding an ext4 superblock, and as long as that superblock
 * says.  Never opens anything but a regular file, so a FIFO or a device
 * cannot block or be read.  BN_EPATH for a path that is not absolute or
 * does not exist, BN_EIMAGE (detail field=what) for everything else, with
 * the path and what is wrong in the message. */
int fs_check_ext4_image(const char *what, const char *path, struct bn_err *err);

#endif
