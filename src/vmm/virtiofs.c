/* virtiofs.c - the QEMU driver's shared folders: one virtiofsd per mount,
 * started before QEMU, which reaches it as a vhost-user-fs-device with tag
 * banger<N> (qemu_argv.c); the guest mounts that tag at boot.
 *
 * Per-VM files, for mount N:
 *   fs<N>.sock   vhost-user socket, QEMU <-> virtiofsd
 *   fs<N>.pid    virtiofsd's pid (it outlives a bangerd restart)
 *   fs<N>.dir    an empty directory: the shared folder is bind-mounted
 *                here in virtiofsd's own mount namespace, never the host's
 *
 * Why the bind mount.  virtiofsd is given fs<N>.dir, not the user's path:
 * the path may hold commas (virtiofsd's -o syntax splits on them), and a
 * read-only share must be read-only on the host's side too, since the
 * guest could remount its side read-write.  Bookworm's C virtiofsd has no
 * read-only option, so the process starts in a mount namespace of its own
 * (private propagation, nothing leaks to the host) where the folder is
 * bound onto fs<N>.dir and, for readonly, remounted read-only; the Rust
 * virtiofsd of newer Debian suites gets --readonly as well.  The bind is
 * not recursive: file systems mounted below the folder on the host are
 * not shared (they show as empty directories).
 *
 * Which virtiofsd: the Rust one (Debian >= trixie, /usr/libexec/virtiofsd)
 * is told by --shared-dir in its --help, and gets its own flags; the C one
 * that bookworm's QEMU ships (/usr/lib/qemu/virtiofsd) gets -o source=.
 * Both run with sandbox=namespace (chroot-like into the share) and
 * cache=auto. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vmm/qemu_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"

/* The per-mount files of mount i. */
struct fs_files {
	char sock[108];
	char pid[PATH_MAX];
	char dir[PATH_MAX];
	char sock_arg[160];   /* --socket-path=..., its identity in /proc */
};

static int
fs_files(const char *vmdir, int i, struct fs_files *f, struct bn_err *err)
{
	if (path_join(f->sock, sizeof(f->sock), err, "%s/fs%d.sock", vmdir,
	    i) < 0 ||
	    path_join(f->pid, sizeof(f->pid), err, "%s/fs%d.pid", vmdir, i) < 0 ||
	    path_join(f->dir, sizeof(f->dir), err, "%s/fs%d.dir", vmdir, i) < 0 ||
	    path_join(f->sock_arg, sizeof(f->sock_arg), err, "--socket-path=%s",
	    f->sock) < 0)
		return bn_err_prefix(err, "virtiofsd: path too long");
	return 0;
}

int
qemu_fs_sock(const char *vmdir, int i, char *out, size_t outsz,
    struct bn_err *err)
{
	return path_join(out, outsz, err, "%s/fs%d.sock", vmdir, i);
}

bool
qemu_unix_listening(const char *path)
{
	char line[512];
	FILE *f = fopen("/proc/net/unix", "re");
	bool found = false;

	if (f == NULL) {
		struct stat st;
		return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		unsigned long flags;
		unsigned st;
		int off = 0;

		if (sscanf(line, "%*s %*s %*s %lx %*x %x %*u %n", &flags, &st,
		    &off) != 2 || off == 0)
			continue;
		char *name = line + off;
		name[strcspn(name, "\n")] = '\0';
		found = (flags & 0x10000) && st == 1 && strcmp(name, path) == 0;
	}
	fclose(f);
	return found;
}

pid_t
qemu_pid_read(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long v = strtol(buf, NULL, 10);
	return v > 0 && v < (1L << 30) ? (pid_t)v : 0;
}

/* The live virtiofsd of files f, or 0: the pid file's process, if its
 * command line still names our socket (pids get reused). */
static pid_t
fs_pid(const struct fs_files *f)
{
	pid_t pid = qemu_pid_read(f->pid);
	const char *needle[] = { f->sock_arg };

	return pid > 0 && proc_alive(pid) && proc_cmdline_has(pid, needle, 1) ?
	    pid : 0;
}

static void
fs_stop_one(const struct fs_files *f, bool hard)
{
	pid_t pid = fs_pid(f);

	if (pid > 0) {
		if (!hard) {
			kill(pid, SIGTERM);
			if (proc_wait_gone(pid, 1000))
				goto gone;
		}
		kill(pid, SIGKILL);
		proc_wait_gone(pid, 2000);
	}
gone:
	unlink(f->pid);
	unlink(f->sock);
	rmdir(f->dir);
}

void
qemu_fs_stop(const struct vmm_params *p, bool hard)
{
	struct fs_files f;
	struct bn_err ignored;

	/* Every slot, not just p's mounts: a PATCH may have dropped some
	 * since this VM's virtiofsds started. */
	for (int i = 0; i < VM_MOUNTS_MAX; i++)
		if (fs_files(p->vmdir, i, &f, &ignored) == 0)
			fs_stop_one(&f, hard);
}

int
qemu_fs_pids(const struct vmm_params *p, pid_t *out, int max)
{
	struct fs_files f;
	struct bn_err ignored;
	int n = 0;

	for (int i = 0; i < VM_MOUNTS_MAX && n < max; i++) {
		pid_t pid;
		if (fs_files(p->vmdir, i, &f, &ignored) == 0 &&
		    (pid = fs_pid(&f)) > 0)
			out[n++] = pid;
	}
	return n;
}

/* Is bin the Rust virtiofsd (its --help names --shared-dir)? */
static bool
fs_is_rust(const char *bin)
{
	char *argv[] = { (char *)bin, "--help", NULL };
	char out[8192] = "";
	struct bn_err ignored;
	int status;

	if (proc_run(argv, 3000, out, sizeof(out), &status, &ignored) < 0)
		return false;
	return strstr(out, "--shared-dir") != NULL;
}

struct fs_prep {
	const char *host;
	const char *dir;
	bool readonly;
};

/* In the new process, before its exec: a mount namespace of its own
 * with the share bound on fs<N>.dir (read-only when asked).  An errno
 * fails the spawn. */
static int
fs_prepare(void *arg)
{
	const struct fs_prep *fp = arg;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(fp->host, fp->dir, NULL, MS_BIND, NULL) < 0)
		return errno;
	if (fp->readonly && mount(NULL, fp->dir, NULL, MS_REMOUNT | MS_BIND |
	    MS_RDONLY, NULL) < 0)
		return errno;
	return 0;
}

static int
fs_start_one(const struct vmm_params *p, int i, bool rust,
    struct bn_err *err)
{
	const struct vm_mount *m = &p->mounts[i];
	char src[PATH_MAX + 16], pidbuf[32];
	struct fs_files f;
	long long deadline;
	int attempt = 0, n;
	pid_t pid;

	if (fs_files(p->vmdir, i, &f, err) < 0)
		return -1;
	fs_stop_one(&f, true);
	if (mkdir(f.dir, 0700) < 0 && errno != EEXIST)
		return bn_fail(err, BN_ESYS, errno, "create %s", f.dir);
	char *argv[12];
	int a = 0;
	argv[a++] = (char *)p->virtiofsd;
	argv[a++] = f.sock_arg;
	if (rust) {
		snprintf(src, sizeof(src), "--shared-dir=%s", f.dir);
		argv[a++] = src;
		argv[a++] = "--cache=auto";
		argv[a++] = "--sandbox=namespace";
		if (m->readonly)
			argv[a++] = "--readonly";
	} else {
		snprintf(src, sizeof(src), "source=%s", f.dir);
		argv[a++] = "-o";
		argv[a++] = src;
		argv[a++] = "-o";
		argv[a++] = "cache=auto";
		argv[a++] = "-o";
		argv[a++] = "sandbox=namespace";
	}
	argv[a] = NULL;
	struct fs_prep fp = { m->host, f.dir, m->readonly };
	if (proc_spawn_detached_prep(argv, NULL, p->vmm_log, fs_prepare, &fp,
	    &pid, err) < 0) {
		rmdir(f.dir);
		if (err->code == BN_EVMM_MISSING)
			bn_err_hint(err, "apt-get install qemu-system-x86 (bookworm) "
			    "or virtiofsd (newer suites), or set \"virtiofsd\" in "
			    "bundle.json");
		return bn_err_prefix(err, "virtiofsd for %s", m->host);
	}
	n = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)pid);
	int fd = open(f.pid, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool written = fd >= 0 && write(fd, pidbuf, (size_t)n) == n;
	if (fd >= 0)
		close(fd);
	if (!written) {
		bn_fail(err, BN_ESYS, errno, "write %s", f.pid);
		kill(pid, SIGKILL);
		proc_wait_gone(pid, 2000);
		rmdir(f.dir);
		return -1;
	}
	/* It listens within milliseconds of exec. */
	deadline = time_mono_ms() + (p->api_timeout_ms > 0 ? p->api_timeout_ms :
	    3000);
	while (!qemu_unix_listening(f.sock)) {
		if (!proc_alive(pid) || time_mono_ms() >= deadline) {
			bool died = !proc_alive(pid);
			fs_stop_one(&f, true);
			bn_fail(err, died ? BN_EVMM : BN_ETIMEOUT, 0, "virtiofsd "
			    "for %s %s", m->host, died ? "exited at start" :
			    "did not listen in time");
			return bn_err_hint(err, "see %s", p->vmm_log);
		}
		sleep_ms(attempt < 4 ? 1 << attempt : 10);
		attempt++;
	}
	return 0;
}

int
qemu_fs_start(const struct vmm_params *p, struct bn_err *err)
{
	bool rust;

	if (p->nmounts == 0)
		return 0;
	if (p->virtiofsd == NULL || !*p->virtiofsd) {
		bn_fail(err, BN_EVMM_MISSING, 0, "virtiofsd was not found: the VM "
		    "has shared folders (mounts)");
		return bn_err_hint(err, "apt-get install qemu-system-x86 (bookworm "
		    "ships /usr/lib/qemu/virtiofsd) or virtiofsd (trixie and "
		    "later), or set \"virtiofsd\" in bundle.json");
	}
	rust = fs_is_rust(p->virtiofsd);
	for (int i = 0; i < p->nmounts; i++) {
		if (fs_start_one(p, i, rust, err) < 0) {
			qemu_fs_stop(p, true);
			return -1;
		}
	}
	return 0;
}
