/* host.c - facts about this host that choosing and running a VMM
 * depend on: /dev/kvm, executables, O_DIRECT on the state dir's file
 * system, the TSC rate a TCG guest sees. */
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "common/proc.h"
#include "common/util.h"

/* Can QEMU open this disk with O_DIRECT (cache=none)?  tmpfs cannot. */
bool
vmm_host_direct_io(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return true;
	}
	/* Other errors (a missing file) are QEMU's to report. */
	return errno != EINVAL;
}

static struct {
	pthread_once_t once;
	unsigned long khz;
	bool reliable;
} tsc = { PTHREAD_ONCE_INIT, 0, false };

static bool
cpu_flag(const char *flags, const char *name)
{
	size_t n = strlen(name);

	for (const char *s = flags; (s = strstr(s, name)) != NULL; s += n)
		if ((s == flags || s[-1] == ' ' || s[-1] == '\t') &&
		    (s[n] == ' ' || s[n] == '\n' || s[n] == '\0'))
			return true;
	return false;
}

/* The host's TSC rate, measured against CLOCK_MONOTONIC_RAW over ~20 ms
 * (median of three), when the TSC is invariant (constant_tsc and
 * nonstop_tsc): what a TCG guest reads with rdtsc. */
static void
tsc_measure(void)
{
#if defined(__x86_64__)
	char line[4096];
	bool constant = false, nonstop = false;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "flags", 5) == 0) {
			constant = cpu_flag(line, "constant_tsc");
			nonstop = cpu_flag(line, "nonstop_tsc");
			break;
		}
	fclose(f);
	if (!constant)
		return;

	unsigned long r[3];
	for (int i = 0; i < 3; i++) {
		struct timespec a, b;
		unsigned long long t0, t1;

		clock_gettime(CLOCK_MONOTONIC_RAW, &a);
		t0 = __rdtsc();
		sleep_ms(7);
		clock_gettime(CLOCK_MONOTONIC_RAW, &b);
		t1 = __rdtsc();
		long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL +
		    (b.tv_nsec - a.tv_nsec);
		r[i] = ns > 0 ? (unsigned long)((t1 - t0) * 1000000ULL /
		    (unsigned long long)ns) : 0;
	}
	/* median */
	unsigned long lo = r[0] < r[1] ? r[0] : r[1];
	unsigned long hi = r[0] < r[1] ? r[1] : r[0];
	tsc.khz = r[2] < lo ? lo : r[2] > hi ? hi : r[2];
	tsc.reliable = nonstop;
#endif
}

void
vmm_host_tsc(unsigned long *khz, bool *reliable)
{
	pthread_once(&tsc.once, tsc_measure);
	*khz = tsc.khz;
	*reliable = tsc.reliable;
}

int
vmm_kvm_state(char *why, size_t whysz)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, whysz, "/dev/kvm: %s", strerror(errno));
		return errno == ENOENT ? KVM_MISSING : KVM_DENIED;
	}
	close(fd);
	/* PVM (kvm_pvm) is paravirtual nested KVM: it runs only guests
	 * built for it, not a standard kernel, and the CPU shows no
	 * vmx/svm. */
	if (access("/sys/module/kvm_pvm", F_OK) == 0) {
		snprintf(why, whysz, "/dev/kvm is nested PVM (kvm_pvm): it cannot "
		    "boot a standard guest kernel");
		return KVM_PVM;
	}
	snprintf(why, whysz, "/dev/kvm is present and writable");
	return KVM_OK;
}

bool
vmm_find_exe(const char *bundled, const char *name, char *out, size_t outsz)
{
	struct bn_err ignored;

	return proc_find_exe(bundled, out, outsz, &ignored) == 0 ||
	    proc_find_exe(name, out, outsz, &ignored) == 0;
}

bool
vmm_find_virtiofsd(const char *bundled, char *out, size_t outsz)
{
	/* The Rust one of Debian trixie and later, then the C one that
	 * bookworm's qemu-system-common ships. */
	static const char *const places[] = { "/usr/libexec/virtiofsd",
		"/usr/lib/qemu/virtiofsd" };
	struct bn_err ignored;

	if (vmm_find_exe(bundled != NULL && *bundled ? bundled : "virtiofsd",
	    "virtiofsd", out, outsz))
		return true;
	for (size_t i = 0; i < sizeof(places) / sizeof(*places); i++)
		if (proc_find_exe(places[i], out, outsz, &ignored) == 0)
			return true;
	out[0] = '\0';
	return false;
}
