/* bench_nat - how long nat_rebuild() takes with 100 NAT VMs (target: under
 * 10 ms), in a private network namespace so the host's tables are never
 * touched.
 *
 * usage: bench_nat [VMS [RUNS]]   (defaults 100 and 50; needs root)
 * Prints one line per measurement: p50/p90/max in milliseconds. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "net/nat.h"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *what, double *ms, int n)
{
	qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
	printf("%-34s p50 %7.3f ms  p90 %7.3f ms  max %7.3f ms  (%d runs)\n",
	    what, ms[n / 2], ms[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1],
	    ms[n - 1], n);
}

static int
bench(int nvms, int runs)
{
	static const struct nat_config cfg = { "banger0", "172.30.0.0/16" };
	struct nat_vm *vms = xcalloc((size_t)nvms, sizeof(*vms));
	double *ms = xcalloc((size_t)runs, sizeof(*ms));
	struct bn_err err;
	char *script;
	double t;

	for (int i = 0; i < nvms; i++) {
		snprintf(vms[i].name, sizeof(vms[i].name), "vm-%d", i);
		snprintf(vms[i].ip, sizeof(vms[i].ip), "172.30.%d.%d",
		    (i + 2) / 256, (i + 2) % 256);
	}

	for (int r = 0; r < runs; r++) {
		t = now_ms();
		if (nat_ruleset(&cfg, vms, nvms, &script, &err) < 0)
			goto fail;
		ms[r] = now_ms() - t;
		free(script);
	}
	report("nat_ruleset (script only)", ms, runs);

	t = now_ms();
	if (nat_rebuild(&cfg, vms, nvms, &err) < 0)
		goto fail;
	printf("%-34s %7.3f ms\n", "first nat_rebuild (no table yet)", now_ms() - t);

	/* Replacing a full table with a full table: the steady state after
	 * each create, delete or --nat change. */
	for (int r = 0; r < runs; r++) {
		int n = r % 2 ? nvms : nvms - 1;
		t = now_ms();
		if (nat_rebuild(&cfg, vms, n, &err) < 0)
			goto fail;
		ms[r] = now_ms() - t;
	}
	char what[64];
	snprintf(what, sizeof(what), "nat_rebuild, %d NAT VMs", nvms);
	report(what, ms, runs);

	for (int r = 0; r < runs; r++) {
		char *list;
		t = now_ms();
		if (nat_list(&list, &err) < 0)
			goto fail;
		ms[r] = now_ms() - t;
		free(list);
	}
	report("nat_list", ms, runs);

	t = now_ms();
	if (nat_rebuild(&cfg, vms, 0, &err) < 0)
		goto fail;
	printf("%-34s %7.3f ms\n", "nat_rebuild to 0 (table removed)", now_ms() - t);
	free(vms);
	free(ms);
	return 0;
fail:
	fprintf(stderr, "bench_nat: %s\n", err.msg);
	free(vms);
	free(ms);
	return -1;
}

int
main(int argc, char **argv)
{
	int nvms = argc > 1 ? atoi(argv[1]) : 100;
	int runs = argc > 2 ? atoi(argv[2]) : 50;
	int status;
	pid_t pid;

	if (nvms < 1 || nvms > 60000 || runs < 1) {
		fprintf(stderr, "usage: bench_nat [VMS [RUNS]]\n");
		return 2;
	}
	if (geteuid() != 0) {
		printf("bench_nat: skip: needs root (a private network namespace "
		    "and CAP_NET_ADMIN in it)\n");
		return 0;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("bench_nat: fork");
		return 1;
	}
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0) {
			printf("bench_nat: skip: unshare(CLONE_NEWNET): %s\n",
			    strerror(errno));
			fflush(stdout);
			_exit(0);
		}
		exit(bench(nvms, runs) == 0 ? 0 : 1);
	}
	if (waitpid(pid, &status, 0) != pid)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
