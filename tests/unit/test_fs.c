/* fs_check_ext4_image on hand-made superblocks: the magic, the block size,
 * the 64-bit block count and the length the superblock promises; and
 * fs_sync_file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "tap.h"

static char dir[64];

static void
put32(unsigned char *p, unsigned v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

/* A file of `size` bytes with a superblock at 1024 (magic unless
 * bad_magic): blocks (lo/hi), log block size, 64bit feature. */
static int
make_image(const char *name, long long size, unsigned long long blocks,
    unsigned log_block, int is64, int bad_magic, char *path, size_t cap)
{
	unsigned char sb[1024];

	snprintf(path, cap, "%s/%s", dir, name);
	memset(sb, 0, sizeof(sb));
	put32(sb + 4, (unsigned)(blocks & 0xffffffffu));
	put32(sb + 24, log_block);
	sb[56] = bad_magic ? 0x12 : 0x53;
	sb[57] = 0xEF;
	if (is64) {
		put32(sb + 0x60, 0x80);
		put32(sb + 0x150, (unsigned)(blocks >> 32));
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	int ok = pwrite(fd, sb, sizeof(sb), 1024) == (ssize_t)sizeof(sb) &&
	    ftruncate(fd, size) == 0;
	close(fd);
	return ok ? 0 : -1;
}

static int
check(const char *path, int want_ok, const char *want_msg)
{
	struct bn_err err;

	memset(&err, 0, sizeof(err));
	int rc = fs_check_ext4_image("rootfs", path, &err);
	if (want_ok) {
		fail_unless(rc == 0, "%s refused: %s", path, err.msg);
		return 0;
	}
	fail_unless(rc < 0 && err.code == BN_EIMAGE, "%s: rc %d code %d (%s)",
	    path, rc, err.code, err.msg);
	fail_unless(strstr(err.msg, want_msg) != NULL, "'%s' lacks '%s'",
	    err.msg, want_msg);
	fail_unless(strcmp(err.detail_key, "field") == 0 &&
	    strcmp(err.detail_val, "rootfs") == 0, "detail");
	return 0;
}

static int
test_superblocks(void)
{
	char p[128];

	/* 4 MiB of 4 KiB blocks: exactly as long as promised. */
	fail_unless(make_image("ok", 4 << 20, 1024, 2, 0, 0, p, sizeof(p)) == 0,
	    "write");
	if (check(p, 1, NULL) < 0)
		return -1;
	/* Longer than the file system is fine (a grown file). */
	fail_unless(make_image("longer", 8 << 20, 1024, 2, 0, 0, p, sizeof(p)) == 0,
	    "write");
	if (check(p, 1, NULL) < 0)
		return -1;
	fail_unless(make_image("short", 2 << 20, 1024, 2, 0, 0, p, sizeof(p)) == 0,
	    "write");
	if (check(p, 0, "is truncated: the superblock says 4194304 bytes, the "
	    "file has 2097152") < 0)
		return -1;
	fail_unless(make_image("magic", 4 << 20, 1024, 2, 0, 1, p, sizeof(p)) == 0,
	    "write");
	if (check(p, 0, "not an ext4 image") < 0)
		return -1;
	fail_unless(make_image("bsize", 4 << 20, 1024, 40, 0, 0, p, sizeof(p)) == 0,
	    "write");
	if (check(p, 0, "corrupt superblock") < 0)
		return -1;
	/* 64-bit: the high word counts (2^32 + 1 blocks of 1 KiB ~ 4 TiB). */
	fail_unless(make_image("big64", 8 << 20, (1ULL << 32) + 1, 0, 1, 0, p,
	    sizeof(p)) == 0, "write");
	if (check(p, 0, "is truncated: the superblock says 4398046512128 bytes") < 0)
		return -1;
	/* No blocks at all, or a count whose size overflows: corrupt. */
	fail_unless(make_image("zero", 4 << 20, 0, 2, 0, 0, p, sizeof(p)) == 0,
	    "write");
	if (check(p, 0, "corrupt superblock (block count)") < 0)
		return -1;
	fail_unless(make_image("huge", 4 << 20, 0xffffffffffffffffULL, 6, 1, 0, p,
	    sizeof(p)) == 0, "write");
	if (check(p, 0, "corrupt superblock (block count)") < 0)
		return -1;
	/* Without the 64bit feature the high word is ignored. */
	fail_unless(make_image("lo32", 8 << 20, 1024 | (5ULL << 32), 0, 0, 0, p,
	    sizeof(p)) == 0, "write");
	if (check(p, 1, NULL) < 0)
		return -1;
	/* Too short to hold a superblock at all. */
	snprintf(p, sizeof(p), "%s/tiny", dir);
	FILE *f = fopen(p, "w");
	fail_unless(f != NULL, "tiny");
	fputs("hello\n", f);
	fclose(f);
	return check(p, 0, "not an ext4 image");
}

static int
test_kinds(void)
{
	char p[128], l[128];

	if (check(dir, 0, "is a directory") < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/fifo", dir);
	fail_unless(mkfifo(p, 0600) == 0, "mkfifo: %s", strerror(errno));
	if (check(p, 0, "is a FIFO") < 0)
		return -1;
	snprintf(l, sizeof(l), "%s/link-to-fifo", dir);
	fail_unless(symlink(p, l) == 0, "symlink");
	if (check(l, 0, "is a FIFO") < 0)
		return -1;
	if (check("/proc/self/mem", 0, "is under /proc") < 0 ||
	    check("/dev/null", 0, "is under /dev") < 0)
		return -1;
	snprintf(l, sizeof(l), "%s/link-to-proc", dir);
	fail_unless(symlink("/proc/self/status", l) == 0, "symlink");
	if (check(l, 0, "is under /proc") < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/empty", dir);
	fclose(fopen(p, "w"));
	if (check(p, 0, "is empty") < 0)
		return -1;
	/* A path that does not exist, or is relative, stays invalid_path. */
	struct bn_err err;
	fail_unless(fs_check_ext4_image("rootfs", "/nonexistent/x", &err) < 0 &&
	    err.code == BN_EPATH, "missing: %d", err.code);
	fail_unless(fs_check_ext4_image("rootfs", "x.ext4", &err) < 0 &&
	    err.code == BN_EPATH, "relative: %d", err.code);
	return 0;
}

/* SHA-256 of files, holes included: known digests, and a sparse file
 * hashes as the same bytes written out. */
static int
test_sha256(void)
{
	char tmpd[] = "/tmp/banger-sha.XXXXXX", a[64], b[64], ha[65], hb[65];
	struct bn_err err;
	static char block[8192];

	fail_unless(mkdtemp(tmpd) != NULL, "mkdtemp");
	snprintf(a, sizeof(a), "%s/sparse", tmpd);
	snprintf(b, sizeof(b), "%s/dense", tmpd);
	int fa = open(a, O_WRONLY | O_CREAT, 0600);
	int fb = open(b, O_WRONLY | O_CREAT, 0600);
	memset(block, 'x', sizeof(block));
	/* sparse: hole, data, hole to 3 MiB; dense: the same bytes */
	fail_unless(pwrite(fa, block, sizeof(block), 1 << 20) ==
	    (ssize_t)sizeof(block) && ftruncate(fa, 3 << 20) == 0, "sparse");
	static char zeros[1 << 20];
	for (int i = 0; i < 3; i++)
		fail_unless(write(fb, zeros, sizeof(zeros)) == sizeof(zeros), "dense");
	fail_unless(pwrite(fb, block, sizeof(block), 1 << 20) ==
	    (ssize_t)sizeof(block), "dense data");
	close(fa);
	close(fb);
	fail_unless(fs_sha256_file(a, ha, &err) == 0, "%s", err.msg);
	fail_unless(fs_sha256_file(b, hb, &err) == 0, "%s", err.msg);
	fail_unless(strcmp(ha, hb) == 0, "holes hash as zeros: %s %s", ha, hb);
	fs_sha256_hex("abc", 3, ha);
	fail_unless(strcmp(ha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9c"
	    "b410ff61f20015ad") == 0, "sha256(abc) %s", ha);
	fail_unless(truncate(a, 0) == 0, "truncate");
	fail_unless(fs_sha256_file(a, ha, &err) == 0 && strcmp(ha,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	    == 0, "empty file %s", ha);
	fail_unless(fs_sha256_file(tmpd, ha, &err) < 0, "a directory is refused");
	snprintf(b, sizeof(b), "%s/none", tmpd);
	fail_unless(fs_sha256_file(b, ha, &err) < 0 && err.sys_errno == ENOENT,
	    "missing");
	fail_unless(fs_remove_tree(tmpd, &err) == 0, "%s", err.msg);
	return 0;
}

static int
test_sync_file(void)
{
	char p[512];
	struct bn_err err;

	snprintf(p, sizeof(p), "%s/synced", dir);
	FILE *f = fopen(p, "w");
	fail_unless(f != NULL, "create %s", p);
	fputs("data\n", f);
	fclose(f);
	fail_unless(fs_sync_file(p, &err) == 0, "sync: %s", err.msg);
	snprintf(p, sizeof(p), "%s/not-there", dir);
	fail_unless(fs_sync_file(p, &err) < 0 && err.code == BN_ESYS &&
	    strstr(err.msg, "not-there") != NULL, "missing: %s", err.msg);
	return 0;
}

int
main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/banger-fs-test.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	tap_begin();
	RUN_TEST(test_superblocks);
	RUN_TEST(test_kinds);
	RUN_TEST(test_sha256);
	RUN_TEST(test_sync_file);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return tap_end();
}
