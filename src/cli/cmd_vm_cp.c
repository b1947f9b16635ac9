/* cmd_vm_cp.c - banger vm cp SRC DST, one side NAME:/path: files in and
 * out of a running VM as tar streams through its agent
 * (GET|PUT /v1/vms/NAME/files).
 *
 * Out: the tar bangerd streams is unpacked into the local directory DST
 * as it arrives, by libarchive with its secure-extraction flags (no
 * absolute names, no "..", nothing through a symlink) and only regular
 * files, directories and symlinks accepted, so nothing a guest sends can
 * land outside DST.  In: SRC is archived by libarchive as it is read and
 * sent chunked.  Either way a thread runs libarchive on one end of a
 * pipe while curl moves the other, so memory stays small whatever the
 * size. */
#include "cli.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tar_job {
	int fd;                 /* the pipe end libarchive uses */
	const char *src;        /* in: the local path */
	/* A copy to a new name: the tree's top entry (the first one's first
	 * component; in, src) is named `to` instead, and what is under it
	 * goes under `to`.  NULL: names as they are. */
	const char *to;
	char top[256];
	char why[512];          /* what went wrong, "" when nothing */
	long long files, dirs, links, bytes;
};

/* Rename e's top component to j->to (the first entry sets what the top
 * is).  false when e is outside the top (a stream that is not one tree). */
static bool
rename_top(struct tar_job *j, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	size_t n;

	if (j->to == NULL || name == NULL)
		return true;
	if (j->top[0] == '\0') {
		n = strcspn(name, "/");
		if (n == 0 || n >= sizeof(j->top))
			return false;
		memcpy(j->top, name, n);
		j->top[n] = '\0';
	}
	n = strlen(j->top);
	if (strncmp(name, j->top, n) != 0 || (name[n] != '\0' &&
	    name[n] != '/'))
		return false;
	char *renamed = xasprintf("%s%s", j->to, name + n);
	archive_entry_set_pathname(e, renamed);
	free(renamed);
	return true;
}

/* ---- out: unpack what arrives ---- */

static void *
unpack_main(void *arg)
{
	struct tar_job *j = arg;
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	struct archive_entry *e;
	int r;

	archive_read_support_format_tar(in);
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME |
	    ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
	    ARCHIVE_EXTRACT_SECURE_NODOTDOT |
	    ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
	if (archive_read_open_fd(in, j->fd, 65536) != ARCHIVE_OK) {
		snprintf(j->why, sizeof(j->why), "%s", archive_error_string(in));
		goto out;
	}
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		mode_t type = archive_entry_filetype(e);
		if (archive_entry_hardlink(e) != NULL || (type != AE_IFREG &&
		    type != AE_IFDIR && type != AE_IFLNK)) {
			snprintf(j->why, sizeof(j->why), "'%s': only files, "
			    "directories and symlinks are copied",
			    archive_entry_pathname(e));
			goto out;
		}
		if (!rename_top(j, e)) {
			snprintf(j->why, sizeof(j->why), "'%s': not in the tree "
			    "copied", archive_entry_pathname(e));
			goto out;
		}
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			snprintf(j->why, sizeof(j->why), "'%s': %s",
			    archive_entry_pathname(e), archive_error_string(out));
			goto out;
		}
		const void *buf;
		size_t len;
		la_int64_t off;
		while ((r = archive_read_data_block(in, &buf, &len, &off)) ==
		    ARCHIVE_OK) {
			if (archive_write_data_block(out, buf, len, off) !=
			    ARCHIVE_OK) {
				snprintf(j->why, sizeof(j->why), "'%s': %s",
				    archive_entry_pathname(e),
				    archive_error_string(out));
				goto out;
			}
			j->bytes += (long long)len;
		}
		if (r != ARCHIVE_EOF) {
			snprintf(j->why, sizeof(j->why), "%s",
			    archive_error_string(in));
			goto out;
		}
		archive_write_finish_entry(out);
		if (type == AE_IFDIR)
			j->dirs++;
		else if (type == AE_IFLNK)
			j->links++;
		else
			j->files++;
	}
	if (r != ARCHIVE_EOF)
		snprintf(j->why, sizeof(j->why), "%s (the stream was cut short?)",
		    archive_error_string(in));
out:
	archive_write_close(out);
	archive_write_free(out);
	archive_read_free(in);
	/* Drain the pipe so curl never blocks on a reader that left. */
	char sink[4096];
	while (read(j->fd, sink, sizeof(sink)) > 0)
		;
	close(j->fd);
	return NULL;
}

/* ---- in: archive what is read ---- */

static void *
pack_main(void *arg)
{
	struct tar_job *j = arg;
	struct archive *disk = archive_read_disk_new();
	struct archive *out = archive_write_new();
	struct archive_entry *e;
	int r;

	archive_write_set_format_pax_restricted(out);
	archive_read_disk_set_standard_lookup(disk);
	archive_read_disk_set_symlink_physical(disk);
	if (archive_write_open_fd(out, j->fd) != ARCHIVE_OK ||
	    archive_read_disk_open(disk, j->src) != ARCHIVE_OK) {
		snprintf(j->why, sizeof(j->why), "%s: %s", j->src,
		    archive_error_string(disk));
		goto out;
	}
	for (;;) {
		e = archive_entry_new();
		r = archive_read_next_header2(disk, e);
		if (r == ARCHIVE_EOF) {
			archive_entry_free(e);
			break;
		}
		if (r != ARCHIVE_OK) {
			snprintf(j->why, sizeof(j->why), "%s",
			    archive_error_string(disk));
			archive_entry_free(e);
			goto out;
		}
		archive_read_disk_descend(disk);
		mode_t type = archive_entry_filetype(e);
		if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
			archive_entry_free(e);
			continue;   /* fifos, sockets, devices stay behind */
		}
		if (!rename_top(j, e)) {
			snprintf(j->why, sizeof(j->why), "'%s': not under %s",
			    archive_entry_pathname(e), j->src);
			archive_entry_free(e);
			goto out;
		}
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			snprintf(j->why, sizeof(j->why), "%s",
			    archive_error_string(out));
			archive_entry_free(e);
			goto out;
		}
		if (type == AE_IFREG && archive_entry_size(e) > 0) {
			int fd = open(archive_entry_sourcepath(e), O_RDONLY |
			    O_CLOEXEC | O_NOFOLLOW);
			char buf[65536];
			ssize_t n;
			while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
				archive_write_data(out, buf, (size_t)n);
			if (fd >= 0)
				close(fd);
		}
		archive_entry_free(e);
	}
out:
	archive_write_close(out);
	archive_write_free(out);
	archive_read_free(disk);
	close(j->fd);
	return NULL;
}

/* ---- curl on the other end of the pipe ---- */

struct xfer {
	int fd;                 /* pipe end curl uses */
	long status;
	char *body;             /* a JSON reply (errors, the summary) */
	size_t len;
};

static size_t
keep_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	size_t n = size * nmemb;

	if (x->len + n > 1 << 20)
		return 0;
	x->body = xrealloc(x->body, x->len + n + 1);
	memcpy(x->body + x->len, data, n);
	x->len += n;
	x->body[x->len] = '\0';
	return n;
}

static size_t
to_pipe(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	size_t n = size * nmemb;

	/* A refusal's body is JSON to keep, not tar for the pipe. */
	if (x->status != 200)
		return keep_body(data, size, nmemb, userdata);
	for (size_t off = 0; off < n;) {
		ssize_t w = write(x->fd, data + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		off += (size_t)w;
	}
	return n;
}

static size_t
from_pipe(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	ssize_t n;

	do
		n = read(x->fd, buf, size * nmemb);
	while (n < 0 && errno == EINTR);
	return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
}

static size_t
on_head(char *data, size_t size, size_t nmemb, void *userdata)
{
	long *status = userdata;
	size_t n = size * nmemb;

	if (n > 9 && strncmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', n);
		if (sp != NULL)
			*status = strtol(sp + 1, NULL, 10);
	}
	return n;
}

/* A curl handle for VM vm's files route at guest path, on bangerd's
 * socket; *url is the handle's (free it after the transfer).  NULL when
 * curl cannot start. */
static CURL *
files_curl(struct cli *cli, const char *vm, const char *path, char **url)
{
	CURL *curl = curl_easy_init();

	if (curl == NULL)
		return NULL;
	char *p = api_path("/v1/vms/", vm, "/files");
	char *esc = curl_easy_escape(curl, path, 0);
	*url = xasprintf("http://localhost%s?path=%s", p, esc);
	curl_free(esc);
	free(p);
	cli_socket_resolve(cli);
	client_curl_setup(curl, cli->socket_path);
	curl_easy_setopt(curl, CURLOPT_URL, *url);
	return curl;
}

static int
xfer_run(struct cli *cli, const char *method, const char *vm,
    const char *path, struct xfer *x)
{
	struct curl_slist *hdr = NULL;
	char *url;
	CURL *curl = files_curl(cli, vm, path, &url);

	if (curl == NULL)
		return -1;
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_head);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x->status);
	if (strcmp(method, "PUT") == 0) {
		hdr = curl_slist_append(hdr, "Content-Type: application/x-tar");
		hdr = curl_slist_append(hdr, "Expect:");
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, from_pipe);
		curl_easy_setopt(curl, CURLOPT_READDATA, x);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_body);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	} else {
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, to_pipe);
	}
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, x);
	CURLcode cc = curl_easy_perform(curl);
	curl_easy_cleanup(curl);
	curl_slist_free_all(hdr);
	free(url);
	return cc == CURLE_OK || x->status != 0 ? 0 : -1;
}

/* ---- is the guest's DST a directory? ---- */

struct probe {
	long status;
	char buf[4096];
	size_t len;
};

/* Keep the first 4 KiB of the reply, then stop the transfer. */
static size_t
probe_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct probe *pr = userdata;
	size_t n = size * nmemb, room = sizeof(pr->buf) - 1 - pr->len;

	memcpy(pr->buf + pr->len, data, n < room ? n : room);
	pr->len += n < room ? n : room;
	pr->buf[pr->len] = '\0';
	return pr->len == sizeof(pr->buf) - 1 ? 0 : n;
}

/* The type flag of the tar stream's first entry that is not a pax
 * header (pax records come before the entry they describe); 0 when the
 * first 4 KiB do not say. */
static char
first_type(const struct probe *pr)
{
	size_t off = 0;

	while (off + 512 <= pr->len) {
		char t = pr->buf[off + 156];
		if (t != 'x' && t != 'g')
			return t;
		unsigned long long size = strtoull(pr->buf + off + 124, NULL, 8);
		off += 512 + (size_t)((size + 511) / 512) * 512;
	}
	return 0;
}

/* Does path exist in the guest as a directory?  1 yes, 0 no (missing,
 * or a file or a link), -1 cannot tell (the copy itself then says what
 * is wrong).  A GET of the path, stopped after its first tar header. */
static int
guest_is_dir(struct cli *cli, const char *vm, const char *path)
{
	struct probe pr = { 0 };
	char *url;
	CURL *curl = files_curl(cli, vm, path, &url);

	if (curl == NULL)
		return -1;
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_head);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &pr.status);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, probe_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &pr);
	curl_easy_perform(curl);
	curl_easy_cleanup(curl);
	free(url);
	if (pr.status == 404 && strstr(pr.buf, "guest_path_not_found"))
		return 0;
	if (pr.status != 200)
		return -1;
	char t = first_type(&pr);
	return t == '5' ? 1 : t != 0 ? 0 : -1;
}

/* "NAME:/path" into its halves; false for a local path. */
static bool
vm_side(const char *arg, char *vm, size_t vmsz, const char **path)
{
	const char *colon = strchr(arg, ':');

	if (colon == NULL || colon == arg || strchr(arg, '/') < colon ||
	    (size_t)(colon - arg) >= vmsz)
		return false;
	snprintf(vm, vmsz, "%.*s", (int)(colon - arg), arg);
	*path = colon + 1;
	return true;
}

static int
report(struct xfer *x, const struct tar_job *j, int curl_rc)
{
	if (x->status != 200 && x->status != 0) {
		json_error_t jerr;
		json_t *err = x->body ? json_loads(x->body, 0, &jerr) : NULL;
		int rc = api_report_error(err, x->status);
		json_decref(err);
		return rc;
	}
	if (curl_rc < 0 || x->status == 0) {
		fprintf(stderr, "banger: cannot reach bangerd\n");
		return CLI_EXIT_UNREACHABLE;
	}
	if (j->why[0] != '\0') {
		fprintf(stderr, "banger: %s\n", j->why);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

int
cmd_vm_cp(struct cli *cli, const struct args *a)
{
	char vm[64];
	const char *gpath;
	struct tar_job j = { .fd = -1 };
	struct xfer x = { .fd = -1 };
	pthread_t t;
	int fds[2], rc;
	if (a->n != 2)
		return usage_error(a->cmd, "give SRC and DST");
	bool out = vm_side(a->v[0], vm, sizeof(vm), &gpath);

	if (out == vm_side(a->v[1], vm, sizeof(vm), &gpath))
		return usage_error(a->cmd, "one side must be NAME:/path and the "
		    "other a local path");
	/* A side that stops early must not take banger down with it. */
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		fprintf(stderr, "banger: pipe: %s\n", strerror(errno));
		return CLI_EXIT_ERROR;
	}
	if (out) {
		/* NAME:/path DIR: DIR/basename(path); NAME:/path NEW (NEW not
		 * a directory, in one that is): the tree is named NEW. */
		struct stat st;
		const char *dst = a->v[1], *into = dst;
		char *copy = xstrdup(dst), *copy2 = xstrdup(dst);
		size_t dl = strlen(dst);
		if ((stat(dst, &st) < 0 || !S_ISDIR(st.st_mode)) && dl > 0 &&
		    dst[dl - 1] != '/') {
			into = dirname(copy);
			j.to = basename(copy2);
		}
		if (stat(into, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    chdir(into) < 0) {
			close(fds[0]);
			close(fds[1]);
			fprintf(stderr, "banger: %s: not a directory to copy into\n",
			    into);
			free(copy);
			free(copy2);
			return CLI_EXIT_ERROR;
		}
		vm_side(a->v[0], vm, sizeof(vm), &gpath);
		j.fd = fds[0];
		x.fd = fds[1];
		pthread_create(&t, NULL, unpack_main, &j);
		rc = xfer_run(cli, "GET", vm, gpath, &x);
		close(x.fd);
		pthread_join(t, NULL);
		rc = report(&x, &j, rc);
		if (rc == CLI_EXIT_OK && cli_chatty(cli))
			printf("copied %lld files, %lld directories, %lld links "
			    "(%lld bytes) from %s:%s\n", j.files, j.dirs, j.links,
			    j.bytes, vm, gpath);
		free(copy);
		free(copy2);
	} else {
		/* PATH NAME:/dir: the tree's root goes by its base name; PATH
		 * NAME:/dir/NEW, NEW not a directory there: it is named NEW. */
		char *copy = xstrdup(a->v[0]), *dir = dirname(copy);
		char *copy2 = xstrdup(a->v[0]);
		char *gcopy = xstrdup(gpath), *gcopy2 = xstrdup(gpath);
		size_t gl = strlen(gpath);
		j.src = basename(copy2);
		if (gl > 1 && gpath[gl - 1] != '/' && gpath[0] == '/' &&
		    guest_is_dir(cli, vm, gpath) == 0) {
			j.to = basename(gcopy2);
			gpath = dirname(gcopy);
		}
		if (chdir(dir) < 0) {
			fprintf(stderr, "banger: %s: %s\n", dir, strerror(errno));
			free(copy);
			free(copy2);
			free(gcopy);
			free(gcopy2);
			close(fds[0]);
			close(fds[1]);
			return CLI_EXIT_ERROR;
		}
		j.fd = fds[1];
		x.fd = fds[0];
		pthread_create(&t, NULL, pack_main, &j);
		rc = xfer_run(cli, "PUT", vm, gpath, &x);
		close(x.fd);
		pthread_join(t, NULL);
		rc = report(&x, &j, rc);
		if (rc == CLI_EXIT_OK && cli_chatty(cli)) {
			json_t *s = json_loads(x.body ? x.body : "", 0, NULL);
			printf("copied %lld files, %lld directories, %lld links "
			    "(%lld bytes) %s %s:%s%s%s\n",
			    (long long)json_integer_value(jobj(s, "files")),
			    (long long)json_integer_value(jobj(s, "dirs")),
			    (long long)json_integer_value(jobj(s, "links")),
			    (long long)json_integer_value(jobj(s, "bytes")),
			    j.to != NULL ? "to" : "into", vm, gpath,
			    j.to == NULL || strcmp(gpath, "/") == 0 ? "" : "/",
			    j.to != NULL ? j.to : "");
			json_decref(s);
		}
		free(copy);
		free(copy2);
		free(gcopy);
		free(gcopy2);
	}
	free(x.body);
	return rc;
}
