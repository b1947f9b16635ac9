/* imagebuild.c - daemon-driven image builds: POST /v1/images/build runs the
 * rootfs build script as a child, follows its "stage: NAME PCT" lines as
 * the operation's progress, and registers the result as a managed image.
 * A failed build leaves nothing: no files, no record. */
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"

struct distro {
	const char *name;
	const char *script;
	const char *rootfs;
	const char *seed;
};

static const struct distro distros[] = {
	{ "debian", "make-rootfs.sh", "rootfs-docker.ext4", "work-seed.ext4" },
	{ "void", "make-rootfs-void.sh", "rootfs-void.ext4", "work-seed-void.ext4" },
};

struct build_arg {
	char name[VM_NAME_MAX];
	const struct distro *d;
	char script[PATH_MAX];
};

/* Names being built right now: a second build of one name is refused. */
static pthread_mutex_t building_mu = PTHREAD_MUTEX_INITIALIZER;
static char building[16][VM_NAME_MAX];

static bool
building_claim(const char *name)
{
	int free_slot = -1;
	bool ok = false;

	pthread_mutex_lock(&building_mu);
	for (int i = 0; i < 16; i++) {
		if (strcmp(building[i], name) == 0)
			goto out;
		if (building[i][0] == '\0' && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0) {
		snprintf(building[free_slot], VM_NAME_MAX, "%s", name);
		ok = true;
	}
out:
	pthread_mutex_unlock(&building_mu);
	return ok;
}

static void
building_release(const char *name)
{
	pthread_mutex_lock(&building_mu);
	for (int i = 0; i < 16; i++)
		if (strcmp(building[i], name) == 0)
			building[i][0] = '\0';
	pthread_mutex_unlock(&building_mu);
}

/* Where the build scripts live: BANGER_ROOTFS_DIR, else rootfs/ next to
 * the runtime bundle in a checkout, else the installed copy. */
static void
scripts_dir(struct core *c, char *out, size_t outsz)
{
	const char *env = getenv("BANGER_ROOTFS_DIR");
	char cand[PATH_MAX];
	struct stat st;

	if (env && *env) {
		snprintf(out, outsz, "%s", env);
		return;
	}
	snprintf(cand, sizeof(cand), "%s/../rootfs", c->bundle.dir);
	if (stat(cand, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(out, outsz, "%s", cand);
		return;
	}
	snprintf(out, outsz, "/usr/lib/banger/rootfs");
}

/* "stage: NAME PCT" -> stage and percent; other lines are ignored. */
static bool
parse_stage(const char *line, char *stage, size_t stagesz, int *pct)
{
	char name[32];
	int p;

	if (sscanf(line, "stage: %31[a-z0-9_-] %d", name, &p) != 2)
		return false;
	snprintf(stage, stagesz, "%s", name);
	*pct = p < 0 ? 0 : p > 99 ? 99 : p;
	return true;
}

static void
log_tail(const char *path, char *out, size_t outsz)
{
	char *text = NULL;
	size_t len = 0;

	out[0] = '\0';
	if (file_read_all(path, 1 << 20, &text, &len, NULL) < 0)
		return;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	char *last = strrchr(text, '\n');
	snprintf(out, outsz, "%s", last ? last + 1 : text);
	free(text);
}

static json_t *
op_build(struct core *c, struct op *op, void *arg, struct bn_err *err)
{
	struct build_arg *b = arg;
	char dir[PATH_MAX], tmp[PATH_MAX], logp[PATH_MAX], pub[PATH_MAX];
	char rootfs[PATH_MAX], seed[PATH_MAX];
	json_t *res = NULL;
	pid_t pid;
	int fd, status;

	if (path_join(dir, sizeof(dir), err, "%s/images/%s", c->cfg.state_dir,
	    b->name) < 0 ||
	    path_join(tmp, sizeof(tmp), err, "%s.building", dir) < 0 ||
	    path_join(logp, sizeof(logp), err, "%s.log", dir) < 0 ||
	    path_join(pub, sizeof(pub), err, "%s.pub", c->bundle.ssh_key) < 0)
		goto out;
	fs_remove_tree(tmp, NULL);
	if (mkdir_p(tmp, 0700, err) < 0)
		goto out;
	unlink(logp);
	op_stage(c, op, "starting", 1);
	char *argv[] = { b->script, "--out", tmp, "--agent", c->bundle.agent,
		"--pubkey", pub, NULL };
	if (op_cancelled(op)) {
		op_fail_cancelled(op, err);
		goto undo;
	}
	if (proc_spawn_piped(argv, logp, &pid, &fd, err) < 0)
		goto undo;
	/* The script leads its own process group: a cancel ends the whole
	 * build (mmdebstrap, mkfs, ...), which also closes the pipe. */
	op_set_child(c, op, pid);
	FILE *f = fdopen(fd, "r");
	char line[512], stage[32];
	int pct;
	while (f && fgets(line, sizeof(line), f)) {
		if (parse_stage(line, stage, sizeof(stage), &pct))
			op_stage(c, op, stage, pct);
	}
	if (f)
		fclose(f);
	else
		close(fd);
	status = proc_wait_child(pid);
	op_set_child(c, op, 0);
	if (op_cancelled(op)) {
		op_fail_cancelled(op, err);
		goto undo;
	}
	if (status != 0) {
		char tail[200];
		log_tail(logp, tail, sizeof(tail));
		bn_fail(err, BN_ESYS, 0, "%s exited with %d%s%s", b->d->script, status,
		    tail[0] ? ": " : "", tail);
		bn_err_hint(err, "the whole build log is %s", logp);
		goto undo;
	}
	op_stage(c, op, "register", 99);
	if (path_join(rootfs, sizeof(rootfs), err, "%s/%s", dir, b->d->rootfs) < 0 ||
	    path_join(seed, sizeof(seed), err, "%s/%s", dir, b->d->seed) < 0)
		goto undo;
	/* What the script made must be what register would take. */
	char built[PATH_MAX];
	snprintf(built, sizeof(built), "%s/%s", tmp, b->d->rootfs);
	if (fs_check_ext4_image("rootfs", built, err) < 0)
		goto undo;
	snprintf(built, sizeof(built), "%s/%s", tmp, b->d->seed);
	if (access(built, F_OK) == 0 &&
	    fs_check_ext4_image("work_seed", built, err) < 0)
		goto undo;
	fs_remove_tree(dir, NULL);
	if (rename(tmp, dir) < 0) {
		bn_fail(err, BN_ESYS, errno, "rename %s", tmp);
		goto undo;
	}
	struct image img;
	memset(&img, 0, sizeof(img));
	snprintf(img.name, sizeof(img.name), "%s", b->name);
	img.source = IMAGE_BUILT;
	img.managed = true;
	snprintf(img.rootfs, sizeof(img.rootfs), "%s", rootfs);
	if (access(seed, R_OK) == 0)
		snprintf(img.work_seed, sizeof(img.work_seed), "%s", seed);
	time_rfc3339(img.created_at);
	memcpy(img.updated_at, img.created_at, sizeof(img.updated_at));
	if (store_image_upsert(c->store, &img, NULL, err) < 0) {
		fs_remove_tree(dir, NULL);
		goto out;
	}
	warm_drop(c, b->name, "rebuilt");
	struct image_view iv = { .img = img, .is_default = false, .available = true };
	res = image_to_json(&iv);
	core_emit(c, "image.registered", NULL, op->row.id, image_to_json(&iv));
	goto out;
undo:
	fs_remove_tree(tmp, NULL);
out:
	building_release(b->name);
	return res;
}

int
core_image_build(struct core *c, const char *name, const char *distro,
    char ret_op_id[24], struct bn_err *err)
{
	struct build_arg *b;
	struct image img;
	char dir[PATH_MAX], pub[PATH_MAX];
	const struct distro *d = NULL;

	if (name_check("image", name, err) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(distros); i++)
		if (strcmp(distros[i].name, distro ? distro : "debian") == 0)
			d = &distros[i];
	if (d == NULL) {
		bn_fail(err, BN_EINVAL, 0, "distro must be debian or void");
		return bn_err_detail(err, "field", "distro");
	}
	if (strcmp(name, "default") == 0) {
		bn_fail(err, BN_EIMG_DEFAULT, 0, "'default' is the runtime bundle's "
		    "image");
		return bn_err_hint(err, "pick another name");
	}
	if (store_image_get(c->store, name, &img, NULL) == 0) {
		bn_fail(err, BN_EIMG_EXISTS, 0, "image '%s' already exists", name);
		return bn_err_hint(err, "delete it first or pick another name");
	}
	scripts_dir(c, dir, sizeof(dir));
	b = xcalloc(1, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->d = d;
	if (path_join(b->script, sizeof(b->script), err, "%s/%s", dir, d->script) < 0 ||
	    path_join(pub, sizeof(pub), err, "%s.pub", c->bundle.ssh_key) < 0)
		goto fail;
	if (access(b->script, X_OK) < 0) {
		bn_fail(err, BN_EVMM_MISSING, errno, "build script %s", b->script);
		bn_err_hint(err, "set BANGER_ROOTFS_DIR to banger's rootfs/ directory");
		goto fail;
	}
	if (access(c->bundle.agent, X_OK) < 0 || access(pub, R_OK) < 0) {
		bn_fail(err, BN_EIMG_UNAVAIL, 0, "the runtime bundle lacks the agent "
		    "or the SSH public key (%s)", pub);
		bn_err_hint(err, "run 'make build' and 'make runtime-bundle'");
		goto fail;
	}
	if (!building_claim(name)) {
		bn_fail(err, BN_EIMG_EXISTS, 0, "image '%s' is already being built "
		    "(or too many builds run)", name);
		goto fail;
	}
	if (op_start(c, "image.build", name, op_build, b, free, ret_op_id, err) < 0) {
		building_release(name);
		return -1;
	}
	return 0;
fail:
	free(b);
	return -1;
}
