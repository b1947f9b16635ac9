/* guest.c - the "guest": kernel lines on the serial console and the real
 * banger-vsock-agent as a child process behind the vsock relay. */
#include "fake.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static bool
console_enabled(void)
{
	const char *args = fc.guest_boot ? jstr(fc.guest_boot, "boot_args") : NULL;

	return args != NULL && strstr(args, "console=ttyS0") != NULL;
}

void
guest_console_line(double t, const char *fmt, ...)
{
	char msg[4096], line[4200];
	va_list ap;

	if (!console_enabled())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "[%5d.%06d] %s\r\n", (int)t,
	    (int)((t - (int)t) * 1e6), msg);
	write_all_fd(fc.console_fd, line, strlen(line));
}

/* The command line the guest kernel sees: the boot args plus what
 * Firecracker appends for the root device and the MMIO devices. */
static char *
guest_cmdline(json_t *root)
{
	char *cl = NULL;
	size_t len = 0;
	unsigned dev = 1, irq = 5;
	size_t ndev = json_array_size(fc.drives) + json_array_size(fc.nets) +
	    (fc.vsock ? 1 : 0) + (fc.entropy ? 1 : 0);
	FILE *f = open_memstream(&cl, &len);

	if (f == NULL)
		abort();
	fputs(jstr(fc.guest_boot, "boot_args"), f);
	if (root != NULL) {
		if (jstr(root, "partuuid"))
			fprintf(f, " root=PARTUUID=%s", jstr(root, "partuuid"));
		else
			fputs(" root=/dev/vda", f);
		fputs(jbool(root, "is_read_only", false) ? " ro" : " rw", f);
	}
	if (!fc.enable_pci)
		fputs(" pci=off", f);
	for (size_t k = 0; k < ndev && !fc.enable_pci; k++, dev++, irq++)
		fprintf(f, " virtio_mmio.device=4K@0x%x:%u",
		    0xc0000000u + dev * 0x1000u, irq);
	fclose(f);
	return cl;
}

void
guest_open_console(void)
{
	const char *out = fc.serial_cfg ? jstr(fc.serial_cfg, "serial_out_path") : NULL;
	int fd;

	if (out == NULL)
		return;
	if ((fd = open_append(out)) >= 0)
		fc.console_fd = fd;
	else
		LOG_ERROR("Failed to open serial_out_path %s: %s", out,
		    os_strerror(errno));
}

void
guest_boot_console(void)
{
	json_t *root = json_array_get(fc.drives, 0), *d;
	json_int_t vcpus, mem;
	char letter = 'a', *cl;
	size_t k;

	guest_open_console();
	if (!console_enabled())
		return;
	if (root != NULL && !jbool(root, "is_root_device", false))
		root = NULL;
	vcpus = json_integer_value(json_object_get(fc.machine, "vcpu_count"));
	mem = json_integer_value(json_object_get(fc.machine, "mem_size_mib"));
	cl = guest_cmdline(root);
	guest_console_line(0.0, "Linux version 6.1.102-fake "
	    "(banger@fake-firecracker) (gcc (Debian 12.2.0) 12.2.0) #1 SMP");
	guest_console_line(0.0, "Command line: %s", cl);
	free(cl);
	guest_console_line(0.0, "Memory: %" JSON_INTEGER_FORMAT "K available",
	    mem * 1024);
	guest_console_line(0.004112, "smp: Brought up 1 node, %"
	    JSON_INTEGER_FORMAT " CPU%s", vcpus, vcpus == 1 ? "" : "s");
	json_array_foreach(fc.drives, k, d)
		guest_console_line(0.031 + 0.001 * (double)k,
		    "virtio_blk virtio%zu: [vd%c] %s", k, letter++,
		    jbool(d, "is_read_only", false) ? "read-only" : "writable");
	if (root != NULL)
		guest_console_line(0.052, "EXT4-fs (vda): mounted filesystem with "
		    "ordered data mode. Quota mode: none.");
	guest_console_line(0.054, "Run /sbin/init as init process");
	guest_console_line(0.061, "banger-fake: guest userspace up");
}

void
guest_resume_console(void)
{
	guest_console_line((double)(now_ms() - fc.start_ms) / 1000.0,
	    "banger-fake: guest resumed from snapshot %s", fc.restored_from);
}

/* BANGER_FAKE_AGENT, else the runtime bundle next to this binary:
 * tests/fakes/firecracker -> ../../runtime, build/firecracker -> ../runtime. */
static void
agent_path(char *out, size_t cap)
{
	const char *env = getenv("BANGER_FAKE_AGENT");
	char alt[PATH_MAX + 64];

	if (env && *env) {
		snprintf(out, cap, "%s", env);
		return;
	}
	snprintf(out, cap, "%s/../../runtime/banger-vsock-agent", fc.exe_dir);
	if (access(out, X_OK) == 0)
		return;
	snprintf(alt, sizeof(alt), "%s/../runtime/banger-vsock-agent", fc.exe_dir);
	if (access(alt, X_OK) == 0)
		snprintf(out, cap, "%s", alt);
}

/* The simulated guest has its work disk mounted (the host's "/" stands in
 * for the guest's /root) and a clean /root layout, as a booted banger
 * image reports. */
static void
write_layout(const char *layout)
{
	int fd = open(layout, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd >= 0) {
		write_all_fd(fd, "ok\n", 3);
		close(fd);
	}
}

static void
exec_agent(pid_t parent, char *const argv[], const char *guest_pid)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	setenv("BANGER_FAKE_GUEST_PID", guest_pid, 1);
	execv(argv[0], argv);
	_exit(127);
}

void
guest_spawn_agent(void)
{
	char path[PATH_MAX], listen[PATH_MAX + 32], layout[PATH_MAX + 16];
	char clock[PATH_MAX + 16], ident[PATH_MAX + 16];
	char self[PATH_MAX], pid[32], port[16];
	const char *ready = getenv("BANGER_FAKE_READY");
	const char *ssh_port = getenv("BANGER_FAKE_SSH_PORT");
	char *argv[24];
	int ac = 0;
	pid_t child;

	if (fc.faults.active && fc.faults.no_agent) {
		fake_note("no_agent fault: not starting the guest agent");
		return;
	}
	if (fc.vsock_fd < 0 || fc.agent_pid > 0)
		return;
	agent_path(path, sizeof(path));
	if (access(path, X_OK) != 0) {
		fake_note("guest agent binary %s not usable (%s); vsock CONNECTs "
		    "will not be answered", path, strerror(errno));
		return;
	}
	unlink(fc.agent_sock);	/* left by an earlier, killed run */
	snprintf(listen, sizeof(listen), "unix:%s", fc.agent_sock);
	snprintf(layout, sizeof(layout), "%s.layout", fc.agent_sock);
	write_layout(layout);
	/* POST /clock writes the time bangerd sets there: the host's own
	 * clock is never the double's to change.  POST /exec does run its
	 * commands here, on the host (--allow-exec), as the guest's would; GET
	 * and PUT /files read and write the host's files (--allow-files), and
	 * POST /forward connects to ports here (--allow-forward). */
	snprintf(clock, sizeof(clock), "%s.clock", fc.agent_sock);
	snprintf(ident, sizeof(ident), "%s.identity", fc.agent_sock);
	/* The host has no sshd of the guest's: readiness checks what the test
	 * asks for (the work disk by default; with an ssh port the "sshd"
	 * check looks at that port).  A poweroff or reboot the agent is asked
	 * for comes back as a signal through this very binary (main.c). */
	if (fc.faults.active && fc.faults.agent_ready[0])
		ready = fc.faults.agent_ready;
	if (fc.faults.active && fc.faults.agent_ssh_port > 0) {
		snprintf(port, sizeof(port), "%ld", fc.faults.agent_ssh_port);
		ssh_port = port;
	}
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[sl > 0 ? sl : 0] = '\0';
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	argv[ac++] = path;
	argv[ac++] = "--listen";
	argv[ac++] = listen;
	argv[ac++] = "--workdisk";
	argv[ac++] = "/";
	argv[ac++] = "--layout-state";
	argv[ac++] = layout;
	argv[ac++] = "--clock-file";
	argv[ac++] = clock;
	argv[ac++] = "--identity-file";
	argv[ac++] = ident;
	argv[ac++] = "--allow-exec";
	argv[ac++] = "--allow-files";
	argv[ac++] = "--allow-forward";
	argv[ac++] = "--ready";
	argv[ac++] = (char *)(ready && *ready ? ready : "workdisk");
	if (ssh_port && *ssh_port) {
		argv[ac++] = "--ssh-port";
		argv[ac++] = (char *)ssh_port;
	}
	if (self[0]) {
		argv[ac++] = "--poweroff-cmd";
		argv[ac++] = self;
	}
	argv[ac] = NULL;
	pid_t parent = getpid();
	if ((child = fork()) < 0) {
		fake_note("fork failed: %s", strerror(errno));
		return;
	}
	if (child == 0)
		exec_agent(parent, argv, pid);
	fc.agent_pid = child;
	fc.agent_sock_created = true;
	fake_note("guest agent started: pid %d, %s --listen %s", (int)child, path,
	    listen);
}

/* Wait up to block_ms for the agent to be reaped. */
static void
reap_agent(int block_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)block_ms;
	pid_t w;

	while (fc.agent_pid > 0) {
		w = waitpid(fc.agent_pid, NULL, WNOHANG);
		if (w == fc.agent_pid || (w < 0 && errno == ECHILD)) {
			fc.agent_pid = -1;
			return;
		}
		if (now_ms() >= deadline)
			return;
		usleep(2000);
	}
}

void
guest_kill_agent(int sig)
{
	if (fc.agent_pid <= 0)
		return;
	kill(fc.agent_pid, sig);
	reap_agent(sig == SIGKILL ? 1000 : 500);
	if (fc.agent_pid > 0) {
		kill(fc.agent_pid, SIGKILL);
		reap_agent(1000);
	}
}

void
guest_cleanup_files(void)
{
	static const char *const sfx[] = { "layout", "clock", "identity" };
	char path[PATH_MAX + 16];

	if (!fc.agent_sock_created || fc.agent_sock[0] == '\0')
		return;
	unlink(fc.agent_sock);
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(path, sizeof(path), "%s.%s", fc.agent_sock, sfx[i]);
		unlink(path);
	}
}
