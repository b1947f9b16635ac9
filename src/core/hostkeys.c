/* hostkeys.c - a new VM's SSH host keys, made on the host and written into
 * its rootfs copy before its first boot.
 *
 * Our images ship no host keys: each VM needs its own.  Made in the guest
 * (banger-hostkeys.service, still there for images booted some other way),
 * two ssh-keygen runs under emulation held sshd back on every first boot.
 * On the host they take milliseconds, and debugfs writes them into the
 * unmounted ext4 copy; the guest's unit then finds them and does nothing.
 * The public halves stay in the VM's directory (hostkeys/), where the
 * VM's SSH details (GET /v1/vms/NAME/ssh) read them so that `banger vm
 * ssh` can check the VM's key instead of trusting the first one it sees.
 *
 * An image without /etc/ssh/sshd_config gets no keys (nothing to do).  A
 * write that cannot be read back leaves the VM to make its own keys, as
 * before, and nothing to pin. */
#include "core/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"

static const char *const key_types[] = { "ed25519", "ecdsa" };
#define NKEYS (sizeof(key_types) / sizeof(key_types[0]))

#define DEBUGFS "/sbin/debugfs"
#define SSH_KEYGEN "/usr/bin/ssh-keygen"

/* Paths debugfs reads from its command file: no blanks or quotes, which
 * its parser would split on. */
static bool
debugfs_safe(const char *path)
{
	return strpbrk(path, " \t\n\"'\\") == NULL;
}

/* Does the image copy at rootfs run sshd (has /etc/ssh/sshd_config)? */
static bool
has_sshd(const char *rootfs)
{
	char out[1024];
	char *argv[] = { DEBUGFS, "-R", "stat /etc/ssh/sshd_config",
		(char *)rootfs, NULL };
	struct bn_err ignored;

	if (proc_run(argv, 30000, out, sizeof(out), NULL, &ignored) < 0)
		return false;
	return strstr(out, "Inode:") != NULL;
}

/* Do the public keys written in the rootfs equal ours?  One debugfs run
 * prints them all (cmdfile is free again after the write). */
static bool
read_back(const char *rootfs, const char *dir, const char *cmdfile)
{
	char path[PATH_MAX], out[4096];
	char *argv[] = { DEBUGFS, "-f", (char *)cmdfile, (char *)rootfs, NULL };
	struct bn_err err;
	bool same = true;
	FILE *f = fopen(cmdfile, "we");

	if (f == NULL)
		return false;
	for (size_t i = 0; i < NKEYS; i++)
		fprintf(f, "cat /etc/ssh/ssh_host_%s_key.pub\n", key_types[i]);
	if (fclose(f) != 0 ||
	    proc_run(argv, 30000, out, sizeof(out), NULL, &err) < 0)
		return false;
	for (size_t i = 0; i < NKEYS && same; i++) {
		char *mine = NULL;
		size_t len;
		same = path_join(path, sizeof(path), &err, "%s/ssh_host_%s_key.pub",
		    dir, key_types[i]) == 0 &&
		    file_read_all(path, 4096, &mine, &len, &err) == 0 && len > 0 &&
		    strstr(out, mine) != NULL;
		free(mine);
	}
	return same;
}

static int
write_keys(const char *rootfs, const char *dir, struct bn_err *err)
{
	char cmdfile[PATH_MAX], out[2048];
	FILE *f;

	if (path_join(cmdfile, sizeof(cmdfile), err, "%s/debugfs.cmd", dir) < 0)
		return -1;
	f = fopen(cmdfile, "we");
	if (f == NULL)
		return bn_fail(err, BN_ESYS, errno, "create %s", cmdfile);
	fprintf(f, "cd /etc/ssh\n");
	for (size_t i = 0; i < NKEYS; i++) {
		const char *t = key_types[i];
		fprintf(f, "rm ssh_host_%s_key\nrm ssh_host_%s_key.pub\n"
		    "write %s/ssh_host_%s_key ssh_host_%s_key\n"
		    "sif ssh_host_%s_key mode 0100600\n"
		    "write %s/ssh_host_%s_key.pub ssh_host_%s_key.pub\n"
		    "sif ssh_host_%s_key.pub mode 0100644\n",
		    t, t, dir, t, t, t, dir, t, t, t);
	}
	if (fclose(f) != 0)
		return bn_fail(err, BN_ESYS, errno, "write %s", cmdfile);
	char *argv[] = { DEBUGFS, "-w", "-f", cmdfile, (char *)rootfs, NULL };
	int rc = proc_run(argv, 30000, out, sizeof(out), NULL, err);
	bool same = rc == 0 && read_back(rootfs, dir, cmdfile);
	unlink(cmdfile);
	if (rc < 0)
		return bn_err_prefix(err, "debugfs");
	if (!same)
		return bn_fail(err, BN_EINTERNAL, 0, "the host keys did not read "
		    "back from the rootfs");
	return 0;
}

int
vm_host_keys(const struct vm *vm, const char *vmdir, const char *rootfs,
    struct bn_err *err)
{
	char dir[PATH_MAX], key[PATH_MAX], comment[VM_NAME_MAX + 8], out[512];

	if (path_join(dir, sizeof(dir), err, "%s/hostkeys", vmdir) < 0)
		return -1;
	if (!debugfs_safe(dir) || !debugfs_safe(rootfs)) {
		log_info("vm '%s': its directory's path has blanks or quotes; "
		    "the guest makes its own SSH host keys", vm->name);
		return 0;
	}
	if (!has_sshd(rootfs))
		return 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return bn_fail(err, BN_ESYS, errno, "mkdir %s", dir);
	snprintf(comment, sizeof(comment), "root@%s", vm->name);
	for (size_t i = 0; i < NKEYS; i++) {
		if (path_join(key, sizeof(key), err, "%s/ssh_host_%s_key", dir,
		    key_types[i]) < 0)
			goto fail;
		char *argv[] = { SSH_KEYGEN, "-q", "-t", (char *)key_types[i],
			"-N", "", "-C", comment, "-f", key, NULL };
		if (proc_run(argv, 30000, out, sizeof(out), NULL, err) < 0) {
			bn_err_prefix(err, "ssh-keygen");
			goto fail;
		}
	}
	if (write_keys(rootfs, dir, err) < 0)
		goto fail;
	/* The private halves are in the rootfs now; only the public ones
	 * are kept. */
	for (size_t i = 0; i < NKEYS; i++)
		if (path_join(key, sizeof(key), NULL, "%s/ssh_host_%s_key", dir,
		    key_types[i]) == 0)
			unlink(key);
	return 0;
fail:
	fs_remove_tree(dir, NULL);
	return -1;
}

int
vm_host_keys_read(const char *vmdir, json_t **ret)
{
	char path[PATH_MAX];
	json_t *keys = json_array();

	for (size_t i = 0; i < NKEYS; i++) {
		char *txt = NULL;
		size_t len;
		struct bn_err ignored;
		if (path_join(path, sizeof(path), &ignored,
		    "%s/hostkeys/ssh_host_%s_key.pub", vmdir, key_types[i]) < 0 ||
		    file_read_all(path, 4096, &txt, &len, &ignored) < 0)
			continue;
		/* "TYPE BASE64 COMMENT": the first two words. */
		char *sp = strchr(txt, ' ');
		char *end = sp != NULL ? strpbrk(sp + 1, " \n") : NULL;
		if (sp != NULL && end != NULL) {
			*end = '\0';
			json_array_append_new(keys, json_string(txt));
		}
		free(txt);
	}
	*ret = keys;
	return (int)json_array_size(keys);
}
