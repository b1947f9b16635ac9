/* test_hostkeys.c - a new VM's SSH host keys made on the host and written
 * into an ext4 rootfs copy (src/core/hostkeys.c), on real images made
 * with mkfs.ext4 -d. */
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/proc.h"
#include "common/util.h"
#include "core/internal.h"

static char tmp[] = "/tmp/banger-hostkeys-XXXXXX";

/* An ext4 image at img; with_sshd: it has /etc/ssh/sshd_config. */
static int
make_image(const char *img, bool with_sshd)
{
	char src[PATH_MAX], path[PATH_MAX], out[512];
	struct bn_err err;

	snprintf(src, sizeof(src), "%s/src-%d", tmp, with_sshd);
	snprintf(path, sizeof(path), "%s/etc/ssh", src);
	if (mkdir_p(path, 0755, &err) < 0)
		return -1;
	if (with_sshd) {
		snprintf(path, sizeof(path), "%s/etc/ssh/sshd_config", src);
		FILE *f = fopen(path, "w");
		if (f == NULL)
			return -1;
		fputs("Port 22\n", f);
		fclose(f);
	}
	FILE *f = fopen(img, "w");
	if (f == NULL || ftruncate(fileno(f), 16 << 20) < 0)
		return -1;
	fclose(f);
	char *mkfs[] = { "/sbin/mkfs.ext4", "-q", "-F", "-d", src, (char *)img,
		NULL };
	return proc_run(mkfs, 30000, out, sizeof(out), NULL, &err);
}

static int
debugfs(const char *img, const char *cmd, char *out, size_t outsz)
{
	char *argv[] = { "/sbin/debugfs", "-R", (char *)cmd, (char *)img, NULL };
	struct bn_err err;

	return proc_run(argv, 30000, out, outsz, NULL, &err);
}

static int
test_keys_written(void)
{
	char img[PATH_MAX], dir[PATH_MAX], path[PATH_MAX], out[8192];
	struct vm vm = { 0 };
	struct bn_err err;
	json_t *keys = NULL;

	snprintf(img, sizeof(img), "%s/rootfs.ext4", tmp);
	snprintf(dir, sizeof(dir), "%s/vm", tmp);
	fail_unless(make_image(img, true) == 0, "mkfs");
	fail_unless(mkdir(dir, 0700) == 0, "mkdir");
	snprintf(vm.name, sizeof(vm.name), "keys");
	fail_unless(vm_host_keys(&vm, dir, img, &err) == 0, "%s", err.msg);

	/* Only the public halves stay on the host. */
	for (int i = 0; i < 2; i++) {
		const char *t = i == 0 ? "ed25519" : "ecdsa";
		snprintf(path, sizeof(path), "%s/hostkeys/ssh_host_%s_key", dir, t);
		fail_unless(access(path, F_OK) < 0, "%s kept on the host", path);
		snprintf(path, sizeof(path), "%s/hostkeys/ssh_host_%s_key.pub",
		    dir, t);
		fail_unless(access(path, R_OK) == 0, "%s missing", path);
		/* In the rootfs: root's, the private one 0600. */
		char cmd[96];
		snprintf(cmd, sizeof(cmd), "stat /etc/ssh/ssh_host_%s_key", t);
		fail_unless(debugfs(img, cmd, out, sizeof(out)) == 0, "debugfs");
		fail_unless(strstr(out, "Mode:  0600") != NULL &&
		    strstr(out, "User:     0") != NULL, "%s", out);
	}
	/* The private key in the rootfs is the pair of the public one. */
	fail_unless(debugfs(img, "cat /etc/ssh/ssh_host_ed25519_key", out,
	    sizeof(out)) == 0, "cat");
	char *begin = strstr(out, "-----BEGIN");
	fail_unless(begin != NULL, "no private key: %s", out);
	snprintf(path, sizeof(path), "%s/priv", tmp);
	FILE *f = fopen(path, "w");
	fail_unless(f != NULL, "open");
	fputs(begin, f);
	fclose(f);
	chmod(path, 0600);
	char pub[1024];
	char *derive[] = { "/usr/bin/ssh-keygen", "-y", "-f", path, NULL };
	fail_unless(proc_run(derive, 10000, pub, sizeof(pub), NULL, &err) == 0,
	    "ssh-keygen -y: %s", pub);

	fail_unless(vm_host_keys_read(dir, &keys) == 2, "two keys");
	const char *ed = json_string_value(json_array_get(keys, 0));
	const char *ec = json_string_value(json_array_get(keys, 1));
	fail_unless(ed != NULL && strncmp(ed, "ssh-ed25519 ", 12) == 0, "%s", ed);
	fail_unless(ec != NULL && strncmp(ec, "ecdsa-sha2-nistp256 ", 20) == 0,
	    "%s", ec);
	fail_unless(strncmp(pub, ed, strlen(ed)) == 0, "pair: %s / %s", pub, ed);
	json_decref(keys);

	/* The filesystem is still consistent. */
	char *fsck[] = { "/sbin/e2fsck", "-fn", img, NULL };
	fail_unless(proc_run(fsck, 30000, out, sizeof(out), NULL, &err) == 0,
	    "e2fsck: %s", out);
	return 0;
}

/* An image without sshd gets none, and nothing is left to pin. */
static int
test_no_sshd_no_keys(void)
{
	char img[PATH_MAX], dir[PATH_MAX], path[PATH_MAX], out[2048];
	struct vm vm = { 0 };
	struct bn_err err;
	json_t *keys = NULL;

	snprintf(img, sizeof(img), "%s/plain.ext4", tmp);
	snprintf(dir, sizeof(dir), "%s/vm2", tmp);
	fail_unless(make_image(img, false) == 0, "mkfs");
	fail_unless(mkdir(dir, 0700) == 0, "mkdir");
	snprintf(vm.name, sizeof(vm.name), "plain");
	fail_unless(vm_host_keys(&vm, dir, img, &err) == 0, "%s", err.msg);
	snprintf(path, sizeof(path), "%s/hostkeys", dir);
	fail_unless(access(path, F_OK) < 0, "hostkeys/ made");
	fail_unless(vm_host_keys_read(dir, &keys) == 0, "keys to pin");
	json_decref(keys);
	fail_unless(debugfs(img, "ls -l /etc/ssh", out, sizeof(out)) == 0 &&
	    strstr(out, "ssh_host_") == NULL, "keys written: %s", out);
	return 0;
}

int
main(void)
{
	struct bn_err err;

	tap_begin();
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN_TEST(test_keys_written);
	RUN_TEST(test_no_sshd_no_keys);
	fs_remove_tree(tmp, &err);
	return tap_end();
}
