/* snapfiles.c - a snapshot's files and its manifest.
 *
 * A snapshot of VM v named s is the directory <v's dir>/snapshots/s
 * (0700): `vmstate` (the VMM's device state), `memory` (guest memory),
 * `rootfs.ext4` and `work.ext4` (point-in-time copies: reflinks where the
 * file system has them, sparse copies otherwise) and `manifest.json`,
 * written last.  The manifest says what the snapshot needs of a host to be
 * loaded (the VMM and its version, the CPU's flags, the kernel), what VM
 * shape it holds (vcpus, memory), and the size and SHA-256 of the state
 * and memory files, so a corrupt or truncated snapshot is refused before
 * anything is loaded. */
#include "core/snap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"

#define MANIFEST_FORMAT 1

static const char *const state_files[] = { SNAP_STATE, SNAP_MEMORY };
static const char *const disk_files[] = { SNAP_ROOTFS, SNAP_WORK };

int
snap_dir(struct core *c, const char *vm_id, const char *name, char *out,
    size_t outsz, struct bn_err *err)
{
	char dir[PATH_MAX];

	if (vm_dir(c, vm_id, dir, sizeof(dir), err) < 0)
		return -1;
	return path_join(out, outsz, err, "%s/snapshots/%s", dir, name);
}

int
snap_file(const char *dir, const char *file, char *out, size_t outsz,
    struct bn_err *err)
{
	return path_join(out, outsz, err, "%s/%s", dir, file);
}

/* The SHA-256 of the first "flags" line of /proc/cpuinfo: a snapshot's
 * guest may use any CPU feature it saw at boot, so it loads only where
 * the same features are. */
int
snap_cpu_flags(char hex[65], struct bn_err *err)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[8192];
	int rc = bn_fail(err, BN_ESYS, 0, "/proc/cpuinfo has no flags line");

	if (f == NULL)
		return bn_fail(err, BN_ESYS, errno, "/proc/cpuinfo");
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *v = strchr(line, ':');
		if (strncmp(line, "flags", 5) != 0 || v == NULL)
			continue;
		fs_sha256_hex(v + 1, strlen(v + 1), hex);
		rc = 0;
		break;
	}
	fclose(f);
	return rc;
}

/* Files whose checksum was verified, as they were then: a file written
 * to since has another ctime (or size, or inode), and is hashed again.
 * Clones of one snapshot then pay for its gigabytes of memory once. */
#define VERIFIED_MAX 32
static struct verified {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char sha256[65];
} verified[VERIFIED_MAX];
static size_t verified_next;
static pthread_mutex_t verified_mu = PTHREAD_MUTEX_INITIALIZER;

static bool
same_file(const struct verified *v, const struct stat *st)
{
	return v->dev == st->st_dev && v->ino == st->st_ino &&
	    v->size == st->st_size && v->mtime.tv_sec == st->st_mtim.tv_sec &&
	    v->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	    v->ctime.tv_sec == st->st_ctim.tv_sec &&
	    v->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static bool
verified_before(const struct stat *st, const char *sha256)
{
	bool hit = false;

	pthread_mutex_lock(&verified_mu);
	for (size_t i = 0; i < VERIFIED_MAX && !hit; i++)
		hit = same_file(&verified[i], st) &&
		    strcmp(verified[i].sha256, sha256) == 0;
	pthread_mutex_unlock(&verified_mu);
	return hit;
}

static void
verified_add(const struct stat *st, const char *sha256)
{
	pthread_mutex_lock(&verified_mu);
	struct verified *v = &verified[verified_next++ % VERIFIED_MAX];
	v->dev = st->st_dev;
	v->ino = st->st_ino;
	v->size = st->st_size;
	v->mtime = st->st_mtim;
	v->ctime = st->st_ctim;
	snprintf(v->sha256, sizeof(v->sha256), "%s", sha256);
	pthread_mutex_unlock(&verified_mu);
}

static json_t *
file_entry(const char *dir, const char *file, bool hash, struct bn_err *err)
{
	char path[PATH_MAX], hex[65];
	struct stat st;

	if (snap_file(dir, file, path, sizeof(path), err) < 0)
		return NULL;
	if (stat(path, &st) < 0) {
		bn_fail(err, BN_ESYS, errno, "%s", path);
		return NULL;
	}
	if (hash && fs_sha256_file(path, hex, err) < 0)
		return NULL;
	if (hash)
		verified_add(&st, hex);
	json_t *e = json_pack("{s:I}", "bytes", (json_int_t)st.st_size);
	if (hash)
		json_object_set_new(e, "sha256", json_string(hex));
	return e;
}

int
snap_manifest_write(const char *dir, const struct snap_facts *f,
    long long *ret_bytes, struct bn_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	json_t *files = json_object();
	long long bytes = 0;

	for (size_t i = 0; i < ARRAY_SIZE(state_files) + ARRAY_SIZE(disk_files);
	    i++) {
		bool state = i < ARRAY_SIZE(state_files);
		const char *name = state ? state_files[i] :
		    disk_files[i - ARRAY_SIZE(state_files)];
		json_t *e = file_entry(dir, name, state, err);
		if (e == NULL) {
			json_decref(files);
			return -1;
		}
		json_object_set_new(files, name, e);
		if (snap_file(dir, name, path, sizeof(path), err) == 0)
			bytes += fs_allocated(path);
	}
	json_t *m = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i, s:i, s:s}, "
	    "s:{s:s, s:s}, s:{s:s, s:{s:s, s:s}}, s:b, s:o}",
	    "format", MANIFEST_FORMAT, "snapshot", f->name,
	    "created_at", f->created_at,
	    "vm", "id", f->vm_id, "name", f->vm_name, "vcpus", f->vcpus,
	    "memory_mib", f->memory_mib, "image", f->image,
	    "vmm", "kind", f->vmm, "version", f->vmm_version,
	    "host", "cpu_flags_sha256", f->cpu_flags, "kernel", "path",
	    f->kernel, "sha256", f->kernel_sha256,
	    "network", f->network, "files", files);
	if (m == NULL)
		return bn_fail(err, BN_EINTERNAL, 0, "snapshot manifest: not "
		    "representable");
	char *text = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(m);
	if (snap_file(dir, SNAP_MANIFEST, path, sizeof(path), err) < 0 ||
	    path_join(tmp, sizeof(tmp), err, "%s.tmp", path) < 0) {
		free(text);
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(text);
	int rc = fd >= 0 && write(fd, text, len) == (ssize_t)len &&
	    fsync(fd) == 0 ? 0 : -1;
	int e = errno;
	if (fd >= 0)
		close(fd);
	free(text);
	if (rc == 0 && rename(tmp, path) < 0) {
		rc = -1;
		e = errno;
	}
	if (rc < 0) {
		unlink(tmp);
		return bn_fail(err, BN_ESYS, e, "write %s", path);
	}
	*ret_bytes = bytes + fs_allocated(path);
	return 0;
}

/* A refusal that names the snapshot and what does not match. */
static int
unusable(struct bn_err *err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
unusable(struct bn_err *err, const char *name, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	bn_fail(err, BN_ESNAP_UNUSABLE, 0, "snapshot '%s' cannot be restored "
	    "here: %s", name, why);
	return -1;
}

static const char *
mstr(json_t *m, const char *a, const char *b)
{
	json_t *o = b != NULL ? json_object_get(json_object_get(m, a), b) :
	    json_object_get(m, a);
	const char *s = json_string_value(o);

	return s != NULL ? s : "";
}

/* The state and memory files are whole (size and SHA-256 as written);
 * the disk copies are there at their size. */
static int
check_files(const char *dir, const char *name, json_t *files,
    struct bn_err *err)
{
	char path[PATH_MAX], hex[65];
	struct stat st;

	for (size_t i = 0; i < ARRAY_SIZE(state_files) + ARRAY_SIZE(disk_files);
	    i++) {
		bool state = i < ARRAY_SIZE(state_files);
		const char *file = state ? state_files[i] :
		    disk_files[i - ARRAY_SIZE(state_files)];
		json_t *e = json_object_get(files, file);
		json_t *bytes = json_object_get(e, "bytes");
		const char *want = json_string_value(json_object_get(e, "sha256"));

		if (!json_is_integer(bytes) || (state && want == NULL))
			return unusable(err, name, "the manifest does not "
			    "describe %s", file);
		if (snap_file(dir, file, path, sizeof(path), err) < 0)
			return -1;
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			return unusable(err, name, "%s is missing", file);
		if ((long long)st.st_size != json_integer_value(bytes))
			return unusable(err, name, "%s is %lld bytes, the "
			    "manifest says %lld (truncated or replaced)", file,
			    (long long)st.st_size,
			    (long long)json_integer_value(bytes));
		if (!state || verified_before(&st, want))
			continue;
		if (fs_sha256_file(path, hex, err) < 0)
			return -1;
		if (strcmp(hex, want) != 0)
			return unusable(err, name, "%s does not match its "
			    "checksum (corrupt)", file);
		verified_add(&st, want);
	}
	return 0;
}

int
snap_manifest_check(const char *dir, const struct snap_facts *now,
    struct snap_facts *ret, struct bn_err *err)
{
	char path[PATH_MAX];
	json_error_t jerr;

	memset(ret, 0, sizeof(*ret));
	if (snap_file(dir, SNAP_MANIFEST, path, sizeof(path), err) < 0)
		return -1;
	json_t *m = json_load_file(path, 0, &jerr);
	if (m == NULL || !json_is_object(m)) {
		json_decref(m);
		return unusable(err, now->name, "its manifest cannot be read "
		    "(%s)", jerr.text);
	}
	int rc = -1;
	snprintf(ret->name, sizeof(ret->name), "%s", mstr(m, "snapshot", NULL));
	snprintf(ret->vmm, sizeof(ret->vmm), "%s", mstr(m, "vmm", "kind"));
	snprintf(ret->vmm_version, sizeof(ret->vmm_version), "%s",
	    mstr(m, "vmm", "version"));
	json_t *vm = json_object_get(m, "vm");
	ret->vcpus = (int)json_integer_value(json_object_get(vm, "vcpus"));
	ret->memory_mib = (int)json_integer_value(json_object_get(vm,
	    "memory_mib"));
	ret->network = json_is_true(json_object_get(m, "network"));
	snprintf(ret->cpu_flags, sizeof(ret->cpu_flags), "%s",
	    mstr(m, "host", "cpu_flags_sha256"));
	json_t *kernel = json_object_get(json_object_get(m, "host"), "kernel");
	snprintf(ret->kernel_sha256, sizeof(ret->kernel_sha256), "%s",
	    json_string_value(json_object_get(kernel, "sha256")) ?
	    json_string_value(json_object_get(kernel, "sha256")) : "");

	if (json_integer_value(json_object_get(m, "format")) != MANIFEST_FORMAT)
		unusable(err, now->name, "manifest format %lld, this bangerd "
		    "reads %d", (long long)json_integer_value(json_object_get(m,
		    "format")), MANIFEST_FORMAT);
	else if (strcmp(ret->vmm, now->vmm) != 0)
		unusable(err, now->name, "it was taken by %s, the VM runs on %s",
		    ret->vmm, now->vmm);
	else if (ret->vcpus != now->vcpus || ret->memory_mib != now->memory_mib)
		unusable(err, now->name, "it holds a guest of %d vcpus and %d "
		    "MiB, the VM now has %d vcpus and %d MiB", ret->vcpus,
		    ret->memory_mib, now->vcpus, now->memory_mib);
	else if (strcmp(ret->cpu_flags, now->cpu_flags) != 0)
		unusable(err, now->name, "this host's CPU has other features "
		    "than the one it was taken on");
	else if (strcmp(ret->kernel_sha256, now->kernel_sha256) != 0)
		unusable(err, now->name, "the bundle's kernel is not the one it "
		    "was taken with");
	else
		rc = check_files(dir, now->name, json_object_get(m, "files"), err);
	json_decref(m);
	return rc;
}

int
snap_facts_now(struct core *c, const struct vm *vm, struct snap_facts *f,
    struct bn_err *err)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->vm_id, sizeof(f->vm_id), "%s", vm->id);
	snprintf(f->vm_name, sizeof(f->vm_name), "%s", vm->name);
	snprintf(f->image, sizeof(f->image), "%s", vm->image);
	f->vcpus = vm->vcpus;
	f->memory_mib = vm->memory_mib;
	snprintf(f->vmm, sizeof(f->vmm), "%s", vmm_by_name(vm->vmm)->name);
	snprintf(f->kernel, sizeof(f->kernel), "%s", c->bundle.kernel);
	f->network = vm->tap[0] != '\0';
	if (snap_cpu_flags(f->cpu_flags, err) < 0)
		return -1;
	if (fs_sha256_file(c->bundle.kernel, f->kernel_sha256, err) < 0)
		return bn_err_prefix(err, "the bundle's kernel");
	return 0;
}
