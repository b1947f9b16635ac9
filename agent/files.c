/* files.c - the "files" capability: file copy between the host and the
 * guest as tar streams (POSIX ustar, with pax records where a name, a
 * link or a size does not fit), for `banger vm cp`.
 *
 *   GET /files?path=ABS[&user=NAME]
 *
 * 200, application/x-tar, streamed (chunked): ABS as `tar -C dirname(ABS)
 * -c basename(ABS)` would have it.  A regular file is one entry named by
 * its basename; a directory is that name, then its contents under it,
 * recursively (at most FILES_MAX_DEPTH levels); a symlink is a symlink
 * entry, never followed (ABS itself too; the directories above it are
 * followed, as for `tar -C`).  Entries keep their mode, mtime (seconds)
 * and numeric uid/gid (no user names).  Sockets, fifos and devices are
 * left out; a file with several hard links comes once per name, whole.
 * Contents are read and sent FILES_IO bytes at a time.  Before the
 * stream: 400 (no path, a relative one, one ending in . or ..), 403 (no
 * permission), 404 (missing).  A failure once the stream has begun (a
 * file unreadable or shrinking, the client gone) ends it without its last
 * chunk (and without the tar's end blocks): the client sees it cut short.
 *
 *   PUT /files?path=ABSDIR[&user=NAME]
 *
 * The body (Content-Length or chunked, any size: a stream_body route) is
 * a tar stream, extracted into the existing directory ABSDIR as it
 * arrives; files_put.c has the rules.  200 {"files": N, "dirs": N,
 * "links": N, "bytes": N}.  404 when ABSDIR is missing, 400 when it is
 * not a directory, or for the first entry refused, with the counts of
 * what was written before it, which stays.
 *
 * user=NAME (default root): the files are read and written with NAME's
 * permissions.  Only this connection's thread changes its filesystem ids
 * (setfsuid, setfsgid and the raw setgroups system call, which unlike
 * glibc's wrapper does not reach the other threads), so other requests
 * keep running as root.  New files belong to that user (root by default);
 * the archive's owners are not restored.
 *
 * Outside a guest these routes would read and write the host's files:
 * refused (403) unless the agent was started with --allow-files.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "files.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Read the query into fr.  0, or an HTTP status with msg set. */
static int
parse_query(const char *query, struct files_req *fr, char *msg, size_t msgsz)
{
	const char *pos = query, *key, *val;
	size_t klen, vlen;
	int have_path = 0, have_user = 0;

	while (agent_query_next(&pos, &key, &klen, &val, &vlen)) {
		char *out;
		size_t cap;
		int *seen;
		if (klen == 4 && strncmp(key, "path", 4) == 0) {
			out = fr->path, cap = sizeof(fr->path), seen = &have_path;
		} else if (klen == 4 && strncmp(key, "user", 4) == 0) {
			out = fr->user_name, cap = sizeof(fr->user_name);
			seen = &have_user;
		} else {
			snprintf(msg, msgsz, "unknown query key '%.*s' (path, "
			    "user)", (int)(klen > 32 ? 32 : klen), key);
			return 400;
		}
		if (val == NULL || *seen) {
			snprintf(msg, msgsz, "'%.*s' %s", (int)klen, key,
			    *seen ? "given twice" : "needs a value");
			return 400;
		}
		if (vlen >= cap || agent_query_decode(val, vlen, out) < 0) {
			snprintf(msg, msgsz, "'%.*s' is too long, or has a bad "
			    "percent-encoding", (int)klen, key);
			return 400;
		}
		*seen = 1;
	}
	if (!have_path || fr->path[0] != '/') {
		snprintf(msg, msgsz, "path must be given, absolute");
		return 400;
	}
	const char *uname = have_user ? fr->user_name : "root";
	if (agent_user_lookup(uname, &fr->user) < 0) {
		if (errno != ENOENT) {
			snprintf(msg, msgsz, "reading /etc/passwd: %s",
			    strerror(errno));
			return 500;
		}
		snprintf(msg, msgsz, "no user '%.64s'", uname);
		return 400;
	}
	return 0;
}

/* This thread's filesystem ids become u's.  -1 (errno) when they could
 * not: not root, and u is not who the agent runs as. */
static int
become(const struct agent_user *u)
{
	if (u->uid == geteuid() && u->gid == getegid())
		return 0;
	if (syscall(SYS_setgroups, (size_t)u->ngroups, u->groups) < 0)
		return -1;
	setfsgid(u->gid);
	setfsuid(u->uid);
	/* An id of -1 is refused, and both calls report the current one. */
	if ((uid_t)setfsuid((uid_t)-1) != u->uid ||
	    (gid_t)setfsgid((gid_t)-1) != u->gid) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* Back to the process's own ids (the thread ends soon, but tidily). */
static void
unbecome(const gid_t *groups, int ngroups)
{
	setfsuid(geteuid());
	setfsgid(getegid());
	if (ngroups >= 0)
		syscall(SYS_setgroups, (size_t)ngroups, groups);
}

/* ---- GET: the tar writer ---- */

struct tar_out {
	struct agent_request *rq;
	struct archive *a;
	struct archive_entry *e;
	char *buf;               /* FILES_IO */
	struct strbuf name;      /* the entry's name */
	int gone;                /* a failure: nothing more is sent */
	int depth;
};

static la_ssize_t
write_cb(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct tar_out *t = arg;

	if (t->gone || agent_stream_write(t->rq, buf, len) < 0) {
		t->gone = 1;
		archive_set_error(a, EPIPE, "the stream has ended");
		return -1;
	}
	return (la_ssize_t)len;
}

static int
fail_at(struct tar_out *t, const char *what, int err)
{
	if (!t->gone)
		agent_log("GET /files: %s '%s': %s", what, t->name.buf,
		    err ? strerror(err) : archive_error_string(t->a));
	t->gone = 1;
	return -1;
}

static int put_node(struct tar_out *t, int dirfd, const char *name, int fd);

static int
put_header(struct tar_out *t, const struct stat *st)
{
	archive_entry_clear(t->e);
	archive_entry_copy_pathname(t->e, t->name.buf);
	archive_entry_set_mode(t->e, st->st_mode);
	archive_entry_set_uid(t->e, st->st_uid);
	archive_entry_set_gid(t->e, st->st_gid);
	archive_entry_set_mtime(t->e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	archive_entry_set_size(t->e, S_ISREG(st->st_mode) ? st->st_size : 0);
	return 0;
}

/* ARCHIVE_WARN: a name that is not ASCII cannot be converted to UTF-8
 * in the "C" locale (the only one a static agent has); libarchive then
 * stores its bytes as they are, marked hdrcharset=BINARY, which is what
 * a Linux name is. */
static int
write_header(struct tar_out *t)
{
	int r = archive_write_header(t->a, t->e);

	return r == ARCHIVE_OK || r == ARCHIVE_WARN ? 0 : -1;
}

static int
put_file(struct tar_out *t, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return fail_at(t, "fstat", errno);
	put_header(t, &st);
	if (write_header(t) < 0)
		return fail_at(t, "header of", 0);
	/* Exactly st_size bytes: a file that grew is cut there, one that
	 * shrank ends the stream. */
	for (off_t left = st.st_size; left > 0; ) {
		ssize_t n = read(fd, t->buf, left < FILES_IO ? (size_t)left :
		    FILES_IO);
		if (n <= 0)
			return fail_at(t, n == 0 ? "shrank while read:" : "read",
			    n == 0 ? EIO : errno);
		if (archive_write_data(t->a, t->buf, (size_t)n) != n)
			return fail_at(t, "data of", 0);
		left -= n;
	}
	return 0;
}

/* A directory's entry, then what it holds.  Consumes fd. */
static int
put_dir(struct tar_out *t, int fd)
{
	struct stat st;
	DIR *d;

	int rc = fstat(fd, &st) < 0 ? fail_at(t, "fstat", errno) :
	    t->depth >= FILES_MAX_DEPTH ? fail_at(t, "too deep:", ELOOP) : 0;
	if (rc == 0) {
		put_header(t, &st);
		if (write_header(t) < 0)
			rc = fail_at(t, "header of", 0);
	}
	if (rc == 0 && (d = fdopendir(fd)) == NULL)
		rc = fail_at(t, "opendir", errno);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	t->depth++;
	size_t len = t->name.len;
	struct dirent *de;
	errno = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (len > 0 && t->name.buf[len - 1] != '/')
			sb_puts(&t->name, "/");
		sb_puts(&t->name, de->d_name);
		rc = t->name.oom ? fail_at(t, "name", ENOMEM) :
		    put_node(t, dirfd(d), de->d_name, -1);
		t->name.len = len;
		t->name.buf[len] = '\0';
		errno = 0;
	}
	if (rc == 0 && errno != 0)
		rc = fail_at(t, "readdir", errno);
	closedir(d);
	t->depth--;
	return rc;
}

static int
put_symlink(struct tar_out *t, int dirfd, const char *name,
    const struct stat *st)
{
	char target[FILES_MAX_PATH + 1];
	ssize_t n = readlinkat(dirfd, name, target, sizeof(target));

	if (n < 0 || n >= (ssize_t)sizeof(target))
		return fail_at(t, "readlink", n < 0 ? errno : ENAMETOOLONG);
	target[n] = '\0';
	put_header(t, st);
	archive_entry_copy_symlink(t->e, target);
	if (write_header(t) < 0)
		return fail_at(t, "header of", 0);
	return 0;
}

/* One node, name in dirfd (fd: already open, or -1), and what is under
 * it.  Nothing on the way is followed: O_NOFOLLOW, and a re-check that
 * what was opened is what was looked at. */
static int
put_node(struct tar_out *t, int dirfd, const char *name, int fd)
{
	struct stat st;
	int rc;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail_at(t, "stat", errno);
	if (S_ISLNK(st.st_mode))
		return put_symlink(t, dirfd, name, &st);
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return 0;   /* sockets, fifos, devices: left out */
	if (fd < 0) {
		/* O_NONBLOCK: a fifo swapped in since the stat does not
		 * block the open. */
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
		    O_NOCTTY | O_NONBLOCK | (S_ISDIR(st.st_mode) ?
		    O_DIRECTORY : 0));
		if (fd < 0)
			return fail_at(t, "open", errno);
		struct stat now;
		if (fstat(fd, &now) < 0 || now.st_ino != st.st_ino ||
		    now.st_dev != st.st_dev) {
			close(fd);
			return fail_at(t, "changed while read:", EAGAIN);
		}
	}
	if (S_ISDIR(st.st_mode))
		return put_dir(t, fd);   /* closes fd */
	rc = put_file(t, fd);
	close(fd);
	return rc;
}

/* The directory above path (opened, following links, as for tar -C) and
 * path's last name in it (trailing slashes dropped from path), or a
 * status with msg set. */
static int
open_parent(char *path, int *ret_dirfd, const char **ret_base, char *msg,
    size_t msgsz)
{
	char dir[FILES_MAX_PATH + 1] = "/";
	size_t n = strlen(path);

	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	const char *base = ".";     /* the root: entries "." and "./..." */
	if (n > 1) {
		const char *slash = strrchr(path, '/');
		base = slash + 1;
		if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
			snprintf(msg, msgsz, "path must not end in . or ..");
			return 400;
		}
		if (slash > path) {
			memcpy(dir, path, (size_t)(slash - path));
			dir[slash - path] = '\0';
		}
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		snprintf(msg, msgsz, "%s: %s", dir, strerror(err));
		return err == ENOENT || err == ENOTDIR ? 404 :
		    err == EACCES ? 403 : 500;
	}
	*ret_dirfd = fd;
	*ret_base = base;
	return 0;
}

/* The top node opened (a file or a directory) before the stream begins,
 * so that its errors can still be told with a status. */
static int
open_top(int dirfd, const char *base, const char *path, int *ret_fd,
    char *msg, size_t msgsz)
{
	struct stat st;

	*ret_fd = -1;
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;
		snprintf(msg, msgsz, "%s: %s", path, strerror(err));
		return err == ENOENT || err == ENOTDIR ? 404 :
		    err == EACCES ? 403 : 500;
	}
	if (S_ISLNK(st.st_mode))
		return 0;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
		snprintf(msg, msgsz, "%s is not a regular file, a directory "
		    "or a symlink", path);
		return 400;
	}
	int fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int err = errno;
		snprintf(msg, msgsz, "%s: %s", path, strerror(err));
		return err == EACCES ? 403 : err == ENOENT ? 404 : 500;
	}
	*ret_fd = fd;
	return 0;
}

static void
files_get(struct agent_request *rq, struct files_req *fr)
{
	struct tar_out t = { .rq = rq };
	const char *base;
	char msg[FILES_MAX_PATH + 128];
	int dirfd = -1, fd = -1;
	int st = open_parent(fr->path, &dirfd, &base, msg, sizeof(msg));

	if (st == 0)
		st = open_top(dirfd, base, fr->path, &fd, msg, sizeof(msg));
	if (st != 0) {
		agent_reply_error(rq, st, msg);
		goto out;
	}
	sb_init(&t.name);
	sb_puts(&t.name, base);
	t.buf = malloc(FILES_IO);
	t.a = archive_write_new();
	t.e = archive_entry_new();
	if (t.buf == NULL || t.a == NULL || t.e == NULL || t.name.oom) {
		agent_reply_error(rq, 500, "out of memory");
		goto out;
	}
	/* Blocks of FILES_IO, and no padding of the last one. */
	if (archive_write_set_format_pax_restricted(t.a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(t.a, FILES_IO) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(t.a, 1) != ARCHIVE_OK) {
		agent_reply_error(rq, 500, archive_error_string(t.a));
		goto out;
	}
	if (agent_stream_begin(rq, 200, FILES_TAR_TYPE) < 0)
		goto out;
	if (archive_write_open2(t.a, &t, NULL, write_cb, NULL, NULL) !=
	    ARCHIVE_OK) {
		fail_at(&t, "open", 0);
		goto out;
	}
	int rc = put_node(&t, dirfd, base, fd);
	fd = -1;   /* put_node closed it */
	/* Only a whole tree gets the tar's end and the stream's last chunk. */
	if (rc == 0 && archive_write_close(t.a) == ARCHIVE_OK && !t.gone)
		agent_stream_end(rq);
	t.gone = 1;
out:
	if (t.a != NULL)
		archive_write_free(t.a);   /* nothing more is sent: t.gone */
	if (t.e != NULL)
		archive_entry_free(t.e);
	free(t.buf);
	sb_free(&t.name);
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
}

/* ---- the routes ---- */

/* Parse, check, become the user; then run fn.  */
static void
files_run(struct agent_request *rq, int put)
{
	struct files_req fr;
	gid_t groups[AGENT_MAX_GROUPS];
	char msg[FILES_MAX_PATH + 128];

	memset(&fr, 0, sizeof(fr));
	int st = parse_query(rq->query, &fr, msg, sizeof(msg));
	if (st != 0) {
		agent_reply_error(rq, st, msg);
		return;
	}
	if (!rq->cfg->in_guest && !rq->cfg->allow_files) {
		agent_reply_error(rq, 403, "not in a guest: these would be the "
		    "host's files (start the agent with --allow-files to allow "
		    "it)");
		return;
	}
	int ngroups = getgroups(AGENT_MAX_GROUPS, groups);
	if (become(&fr.user) < 0) {
		snprintf(msg, sizeof(msg), "acting as user '%s': %s",
		    fr.user.name, strerror(errno));
		agent_reply_error(rq, 403, msg);
		unbecome(groups, ngroups);
		return;
	}
	if (!put) {
		files_get(rq, &fr);
	} else {
		int fd = open(fr.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int err = errno;
			snprintf(msg, sizeof(msg), "%s: %s", fr.path,
			    err == ENOTDIR ? "not a directory" : strerror(err));
			agent_reply_error(rq, err == ENOENT ? 404 :
			    err == EACCES ? 403 : err == ENOTDIR ? 400 : 500, msg);
		} else {
			files_put(rq, fd);
			close(fd);
		}
	}
	unbecome(groups, ngroups);
}

void
files_get_route(struct agent_request *rq)
{
	files_run(rq, 0);
}

void
files_put_route(struct agent_request *rq)
{
	files_run(rq, 1);
}
