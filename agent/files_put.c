/* files_put.c - PUT /files: a tar stream, read from the request body as
 * it arrives, extracted into an existing directory (the root here).
 *
 * libarchive reads the format (ustar, pax, GNU tar); the filesystem side
 * is ours, relative to the root's fd, so that nothing an archive says can
 * reach outside it:
 *
 * - A name is split into components; an absolute name or a ".." anywhere
 *   refuses the entry ("." and empty components are dropped).
 * - Every directory on the way is opened with openat(O_NOFOLLOW |
 *   O_DIRECTORY) from the one before: a symlink on the way (already there,
 *   or extracted earlier) refuses the entry instead of being followed.
 *   Missing ones are made (0755, as tar does).
 * - A regular file is written to a new inode: what is at its name is
 *   unlinked first (never opened, so neither a hard link to a file
 *   elsewhere nor a symlink is written through), then openat(O_CREAT |
 *   O_EXCL | O_NOFOLLOW).  A symlink at that name refuses the entry; so
 *   does a directory.
 * - Symlinks are made as they are (their targets may point anywhere:
 *   they are never followed here).
 * - A hard link must name an existing regular file inside the root
 *   (by the same rules); else the entry is refused.
 * - Device nodes, fifos and sockets are refused.
 *
 * Modes are kept without the set-user-ID and set-group-ID bits (the
 * files belong to the writer, not to the archive's owner, whose rights
 * those bits would have meant); mtimes are kept.  A directory is made
 * 0700 and gets its mode and mtime once the whole archive is in (its
 * contents would change its mtime, and a read-only one could not be
 * filled), deepest first; past FILES_MAX_FIXES directories the mode is
 * set at once (with u+rwx) and the mtime is not kept.
 *
 * The first refused entry ends the request (400, the reason, and the
 * counts of what was written before it, which stays: there is no
 * staging directory, so that a copy into a large tree needs no second
 * copy of it).  Up to FILES_DRAIN bytes of the body left are read first,
 * so that the client, still sending, gets the reply.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "files.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILES_MAX_FIXES 65536
#define FILES_DRAIN (16 * 1024 * 1024)
#define FILES_TAIL_MAX (1024 * 1024)   /* after the tar's end */

struct dir_fix {
	char *name;           /* the components, '/'-joined */
	mode_t mode;
	struct timespec mtime;
	int has_mtime;
};

struct put {
	struct agent_request *rq;
	int root;
	struct archive *a;
	char *buf;
	int body_failed;       /* the body, not the archive, failed */
	struct dir_fix *fix;
	size_t nfix, capfix;
	unsigned long long files, dirs, links, bytes;
	int status;            /* 0 while all is well */
	char msg[FILES_MAX_PATH + 256];
};

static la_ssize_t
read_cb(struct archive *a, void *arg, const void **ret)
{
	struct put *p = arg;
	ssize_t n = agent_body_read(p->rq, p->buf, FILES_IO);

	if (n < 0) {
		p->body_failed = 1;
		archive_set_error(a, EPROTO, "%s", agent_body_error(p->rq));
		return -1;
	}
	*ret = p->buf;
	return n;
}

/* Refuse with a status and a message naming the entry (NULL: none);
 * -1.  The first refusal is the one kept. */
static int __attribute__((format(printf, 4, 5)))
refuse(struct put *p, int status, const char *name, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	if (p->status != 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	p->status = status;
	if (name == NULL)
		snprintf(p->msg, sizeof(p->msg), "%s", why);
	else
		snprintf(p->msg, sizeof(p->msg), "entry '%.*s': %s",
		    FILES_MAX_PATH, name, why);
	return -1;
}

/* A refusal for a failed system call: 403 for permissions, else 500. */
static int
refuse_errno(struct put *p, const char *name, const char *what, int err)
{
	return refuse(p, err == EACCES || err == EPERM ? 403 :
	    err == ENOSPC || err == EDQUOT ? 507 : 500, name, "%s: %s", what,
	    strerror(err));
}

/* Check value (the entry's name, or what is named as its hard link
 * target, which what says) and split it into comps, in place in copy:
 * the number of components, or -1 refused. */
static int
split_name(struct put *p, const char *name, const char *what,
    const char *value, char *copy, char **comps, int max)
{
	int n = 0;

	if (value[0] == '/')
		return refuse(p, 400, name, "%s is absolute", what);
	for (char *c = copy, *save = NULL; (c = strtok_r(c, "/", &save));
	    c = NULL) {
		if (strcmp(c, "..") == 0)
			return refuse(p, 400, name, "%s has a '..'", what);
		if (strcmp(c, ".") == 0)
			continue;
		if (n == max)
			return refuse(p, 400, name, "%s has more than %d levels",
			    what, max);
		comps[n++] = c;
	}
	return n;
}

/* Open the directory that holds comps[n-1], walking from the root with
 * O_NOFOLLOW, making missing ones when make is set.  The fd, or -1. */
static int
walk(struct put *p, const char *name, char **comps, int n, int make)
{
	int fd = dup(p->root);

	if (fd < 0)
		return refuse_errno(p, name, "dup", errno);
	for (int i = 0; i < n - 1; i++) {
		int next = openat(fd, comps[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && make) {
			if (mkdirat(fd, comps[i], 0755) < 0 && errno != EEXIST) {
				refuse_errno(p, name, "mkdir", errno);
				break;
			}
			next = openat(fd, comps[i], O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			if (errno == ELOOP || errno == ENOTDIR)
				refuse(p, 400, name, "'%s' on the way is a symlink "
				    "or not a directory", comps[i]);
			else if (errno == ENOENT)
				refuse(p, 400, name, "'%s' does not exist",
				    comps[i]);
			else
				refuse_errno(p, name, comps[i], errno);
			break;
		}
		close(fd);
		fd = next;
	}
	if (p->status != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Make room for a new non-directory at last in dirfd: what is there is
 * unlinked unless it is a directory, or a symlink a regular file would
 * otherwise have gone through (not_link).  0, or -1 refused. */
static int
clear_name(struct put *p, const char *name, int dirfd, const char *last,
    int not_link)
{
	struct stat st;

	if (fstatat(dirfd, last, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 :
		    refuse_errno(p, name, "stat", errno);
	if (S_ISDIR(st.st_mode))
		return refuse(p, 400, name, "a directory is in the way");
	if (not_link && S_ISLNK(st.st_mode))
		return refuse(p, 400, name, "a symlink is in the way (a file is "
		    "not written through it)");
	if (unlinkat(dirfd, last, 0) < 0 && errno != ENOENT)
		return refuse_errno(p, name, "unlink", errno);
	return 0;
}

static mode_t
perm_of(struct archive_entry *e)
{
	return archive_entry_perm(e) & 01777;   /* no set-id bits */
}

static void
mtime_of(struct archive_entry *e, struct timespec ts[2])
{
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (!archive_entry_mtime_is_set(e))
		ts[1].tv_nsec = UTIME_OMIT;
}

static int
put_dir(struct put *p, struct archive_entry *e, const char *name,
    char **comps, int n, int dirfd)
{
	struct stat st;
	const char *last = comps[n - 1];

	if (mkdirat(dirfd, last, 0700) < 0) {
		if (errno != EEXIST)
			return refuse_errno(p, name, "mkdir", errno);
		if (fstatat(dirfd, last, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return refuse_errno(p, name, "stat", errno);
		if (!S_ISDIR(st.st_mode))
			return refuse(p, 400, name, "something that is not a "
			    "directory is in the way");
	}
	p->dirs++;
	if (p->nfix == FILES_MAX_FIXES) {
		int fd = openat(dirfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (fd < 0 || fchmod(fd, perm_of(e) | 0700) < 0) {
			int err = errno;
			if (fd >= 0)
				close(fd);
			return refuse_errno(p, name, "chmod", err);
		}
		close(fd);
		return 0;
	}
	if (p->nfix == p->capfix) {
		size_t cap = p->capfix ? p->capfix * 2 : 64;
		struct dir_fix *nf = realloc(p->fix, cap * sizeof(*nf));
		if (nf == NULL)
			return refuse(p, 500, name, "out of memory");
		p->fix = nf;
		p->capfix = cap;
	}
	struct dir_fix *f = &p->fix[p->nfix];
	struct timespec ts[2];
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += strlen(comps[i]) + 1;
	if ((f->name = malloc(len)) == NULL)
		return refuse(p, 500, name, "out of memory");
	f->name[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (i > 0)
			strcat(f->name, "/");
		strcat(f->name, comps[i]);
	}
	mtime_of(e, ts);
	f->mode = perm_of(e);
	f->mtime = ts[1];
	p->nfix++;
	return 0;
}

static int
put_file(struct put *p, struct archive_entry *e, const char *name,
    int dirfd, const char *last)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	if (clear_name(p, name, dirfd, last, 1) < 0)
		return -1;
	int fd = openat(dirfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd < 0)
		return refuse_errno(p, name, "create", errno);
	/* Blocks at their offsets: the gaps of a sparse file stay holes. */
	while ((r = archive_read_data_block(p->a, &buf, &size, &off)) ==
	    ARCHIVE_OK) {
		for (size_t done = 0; done < size; ) {
			ssize_t w = pwrite(fd, (const char *)buf + done,
			    size - done, (off_t)off + (off_t)done);
			if (w < 0) {
				close(fd);
				return refuse_errno(p, name, "write", errno);
			}
			done += (size_t)w;
		}
		p->bytes += size;
	}
	if (r != ARCHIVE_EOF) {
		close(fd);
		return refuse(p, 400, name, "%s", archive_error_string(p->a));
	}
	struct timespec ts[2];
	mtime_of(e, ts);
	if (ftruncate(fd, (off_t)archive_entry_size(e)) < 0 ||
	    fchmod(fd, perm_of(e)) < 0 || futimens(fd, ts) < 0) {
		int err = errno;
		close(fd);
		return refuse_errno(p, name, "set size, mode, mtime", err);
	}
	if (close(fd) < 0)
		return refuse_errno(p, name, "close", errno);
	p->files++;
	return 0;
}

static int
put_symlink(struct put *p, struct archive_entry *e, const char *name,
    int dirfd, const char *last)
{
	const char *target = archive_entry_symlink(e);
	struct timespec ts[2];

	if (target == NULL || target[0] == '\0')
		return refuse(p, 400, name, "a symlink without a target");
	if (clear_name(p, name, dirfd, last, 0) < 0)
		return -1;
	if (symlinkat(target, dirfd, last) < 0)
		return refuse_errno(p, name, "symlink", errno);
	mtime_of(e, ts);
	utimensat(dirfd, last, ts, AT_SYMLINK_NOFOLLOW);
	p->links++;
	return 0;
}

static int
put_hardlink(struct put *p, const char *name, int dirfd, const char *last,
    const char *target)
{
	char copy[FILES_MAX_PATH + 1], *comps[FILES_MAX_DEPTH];
	struct stat ts, ns;

	if (strlen(target) > FILES_MAX_PATH)
		return refuse(p, 400, name, "a hard link target too long");
	strcpy(copy, target);
	char what[FILES_MAX_PATH + 32];
	snprintf(what, sizeof(what), "its hard link target '%s'", target);
	int n = split_name(p, name, what, target, copy, comps, FILES_MAX_DEPTH);
	if (n < 0)
		return -1;
	if (n == 0)
		return refuse(p, 400, name, "a hard link to the directory");
	int tfd = walk(p, name, comps, n, 0);
	if (tfd < 0)
		return -1;
	if (fstatat(tfd, comps[n - 1], &ts, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(ts.st_mode)) {
		close(tfd);
		return refuse(p, 400, name, "the hard link target '%s' is not "
		    "a regular file here", target);
	}
	/* Already the same file: nothing to do (unlinking it first would
	 * lose it). */
	if (fstatat(dirfd, last, &ns, AT_SYMLINK_NOFOLLOW) == 0 &&
	    ns.st_dev == ts.st_dev && ns.st_ino == ts.st_ino) {
		close(tfd);
		p->links++;
		return 0;
	}
	int rc = clear_name(p, name, dirfd, last, 0);
	if (rc == 0 && linkat(tfd, comps[n - 1], dirfd, last, 0) < 0)
		rc = refuse_errno(p, name, "link", errno);
	close(tfd);
	if (rc == 0)
		p->links++;
	return rc;
}

static int
put_entry(struct put *p, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	char copy[FILES_MAX_PATH + 1], *comps[FILES_MAX_DEPTH];
	const char *hard = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);

	if (name == NULL || name[0] == '\0')
		return refuse(p, 400, "", "an entry without a name");
	if (strlen(name) > FILES_MAX_PATH)
		return refuse(p, 400, name, "a name longer than %d bytes",
		    FILES_MAX_PATH);
	strcpy(copy, name);
	int n = split_name(p, name, "the name", name, copy, comps,
	    FILES_MAX_DEPTH);
	if (n < 0)
		return -1;
	if (n == 0) {
		/* "." or "./": the root itself, which is left as it is. */
		if (type == AE_IFDIR && hard == NULL)
			return 0;
		return refuse(p, 400, name, "not a directory, but names the "
		    "target directory");
	}
	if (hard == NULL && type != AE_IFREG && type != AE_IFDIR &&
	    type != AE_IFLNK)
		return refuse(p, 400, name, "%s are not extracted",
		    type == AE_IFCHR || type == AE_IFBLK ? "device nodes" :
		    type == AE_IFIFO ? "fifos" : type == AE_IFSOCK ? "sockets" :
		    "entries of this type");
	int dirfd = walk(p, name, comps, n, 1);
	if (dirfd < 0)
		return -1;
	int rc = hard != NULL ? put_hardlink(p, name, dirfd, comps[n - 1], hard) :
	    type == AE_IFDIR ? put_dir(p, e, name, comps, n, dirfd) :
	    type == AE_IFLNK ? put_symlink(p, e, name, dirfd, comps[n - 1]) :
	    put_file(p, e, name, dirfd, comps[n - 1]);
	close(dirfd);
	return rc;
}

/* The directories' modes and mtimes, deepest (latest) first. */
static void
fix_dirs(struct put *p)
{
	char *comps[FILES_MAX_DEPTH];
	/* A walker of its own: a failed request still sets what it made,
	 * and its first refusal stays the one reported. */
	struct put q = { .root = p->root };

	for (size_t i = p->nfix; i-- > 0; ) {
		struct dir_fix *f = &p->fix[i];
		int n = 0;
		for (char *c = f->name, *save = NULL; n < FILES_MAX_DEPTH &&
		    (c = strtok_r(c, "/", &save)); c = NULL)
			comps[n++] = c;
		/* Walked again with O_NOFOLLOW, the directory itself too (n + 1
		 * components: the last, never read, stands for "." in it). */
		q.status = 0;
		int dfd = walk(&q, f->name, comps, n + 1, 0);
		if (dfd >= 0) {
			struct timespec ts[2] = { { 0, UTIME_OMIT }, f->mtime };
			if (fchmod(dfd, f->mode) < 0 || futimens(dfd, ts) < 0)
				agent_log("PUT /files: %s: %s", f->name,
				    strerror(errno));
			close(dfd);
		}
		free(f->name);
	}
	free(p->fix);
	p->fix = NULL;
	p->nfix = p->capfix = 0;
}

static void
reply(struct put *p)
{
	struct strbuf sb;

	sb_init(&sb);
	sb_puts(&sb, "{");
	if (p->status != 0) {
		sb_puts(&sb, "\"error\":");
		sb_json_str(&sb, p->msg);
		sb_puts(&sb, ",");
	}
	sb_printf(&sb, "\"files\":%llu,\"dirs\":%llu,\"links\":%llu,"
	    "\"bytes\":%llu}", p->files, p->dirs, p->links, p->bytes);
	if (sb.oom)
		agent_reply_error(p->rq, 500, "out of memory");
	else
		agent_reply(p->rq, p->status ? p->status : 200, sb.buf, sb.len);
	sb_free(&sb);
}

void
files_put(struct agent_request *rq, int dirfd)
{
	struct put p = { .rq = rq, .root = dirfd };
	struct archive_entry *e;
	int r = ARCHIVE_FATAL;

	p.buf = malloc(FILES_IO);
	p.a = archive_read_new();
	if (p.buf == NULL || p.a == NULL ||
	    archive_read_support_format_tar(p.a) != ARCHIVE_OK ||
	    archive_read_open(p.a, &p, NULL, read_cb, NULL) != ARCHIVE_OK) {
		if (p.body_failed)
			refuse(&p, 400, NULL, "%s", agent_body_error(rq));
		else
			refuse(&p, p.a ? 400 : 500, NULL, "%s", p.a ?
			    archive_error_string(p.a) : "out of memory");
	}
	/* ARCHIVE_WARN: a name not in this locale's charset (the static
	 * agent has only "C"), given as its bytes; those are what we want. */
	while (p.status == 0 &&
	    ((r = archive_read_next_header(p.a, &e)) == ARCHIVE_OK ||
	    r == ARCHIVE_WARN))
		put_entry(&p, e);
	if (p.status == 0 && r != ARCHIVE_EOF)
		refuse(&p, 400, NULL, "%s", p.body_failed ? agent_body_error(rq) :
		    archive_error_string(p.a));
	fix_dirs(&p);
	if (p.status == 0 && agent_body_skip(rq, FILES_TAIL_MAX) < 0)
		refuse(&p, 400, NULL, "%s", errno == EFBIG ? "more than 1 MiB "
		    "after the archive" : agent_body_error(rq));
	if (p.status != 0 && !p.body_failed)
		agent_body_skip(rq, FILES_DRAIN);
	reply(&p);
	if (p.a != NULL)
		archive_read_free(p.a);
	free(p.buf);
}
