/* NAT: the pure nftables script, refusal of hostile inputs, and (as root)
 * the live table inside a private network namespace.
 *
 * The live test forks a child that unshares its network namespace, so the
 * host's tables and sysctls are never touched; the child's stdout (TAP
 * diagnostics) comes back through a pipe and its verdict as exit status. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "net/nat.h"
#include "tap.h"

#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define RESET "add table inet banger\ndelete table inet banger\n"

static const struct nat_config cfg_any = { "banger0", "172.30.0.0/24" };

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static int
test_ruleset_empty(void)
{
	struct bn_err err;
	char *s = NULL;

	fail_unless(nat_ruleset(&cfg_any, NULL, 0, &s, &err) == 0, "%s", err.msg);
	/* Only the removal: no empty table may be left behind. */
	fail_unless(strcmp(s, RESET) == 0, "got:\n%s", s);
	free(s);
	return 0;
}

static int
test_ruleset_one(void)
{
	static const char want[] =
	    RESET
	    "table inet banger {\n"
	    "\tcomment \"managed by bangerd\"\n"
	    "\tset nat_vms {\n"
	    "\t\ttype ipv4_addr\n"
	    "\t\telements = {\n"
	    "\t\t\t172.30.0.2 comment \"web\"\n"
	    "\t\t}\n"
	    "\t}\n"
	    "\tchain postrouting {\n"
	    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
	    "\t\tip saddr @nat_vms oifname != \"banger0\" masquerade\n"
	    "\t}\n"
	    "\tchain forward {\n"
	    "\t\ttype filter hook forward priority filter; policy accept;\n"
	    "\t\tiifname \"banger0\" ip saddr @nat_vms accept\n"
	    "\t\toifname \"banger0\" ip daddr @nat_vms ct state established,related accept\n"
	    "\t}\n"
	    "}\n";
	struct nat_vm vm = { "web", "172.30.0.2" };
	struct bn_err err;
	char *s = NULL;

	fail_unless(nat_ruleset(&cfg_any, &vm, 1, &s, &err) == 0, "%s", err.msg);
	fail_unless(strcmp(s, want) == 0, "got:\n%s", s);
	free(s);
	return 0;
}

static int
test_ruleset_three(void)
{
	struct nat_vm vms[3] = {
		{ "db", "172.30.0.20" },
		{ "web", "172.30.0.3" },
		{ "cache-1", "172.30.0.254" },
	};
	struct bn_err err;
	char *s = NULL;
	const char *a, *b, *c;

	fail_unless(nat_ruleset(&cfg_any, vms, 3, &s, &err) == 0, "%s", err.msg);
	fail_unless(strncmp(s, RESET "table inet banger {\n",
	    strlen(RESET "table inet banger {\n")) == 0,
	    "starts with the replace idiom:\n%s", s);
	/* Sorted by address, whatever order the store gave. */
	a = strstr(s, "\t\t\t172.30.0.3 comment \"web\",\n");
	b = strstr(s, "\t\t\t172.30.0.20 comment \"db\",\n");
	c = strstr(s, "\t\t\t172.30.0.254 comment \"cache-1\"\n");
	fail_unless(a && b && c && a < b && b < c, "elements:\n%s", s);
	fail_unless(strstr(s, "ip saddr @nat_vms oifname != \"banger0\" masquerade\n"),
	    "masquerade on any oif but the bridge:\n%s", s);
	/* One rule per purpose, however many VMs. */
	fail_unless(count(s, "masquerade") == 1 && count(s, " accept\n") == 2,
	    "rule count:\n%s", s);
	fail_unless(count(s, "table inet banger") == 3, "one table:\n%s", s);
	fail_unless(count(s, "oifname \"") == count(s, "oifname \"banger0\""),
	    "no rule names an uplink:\n%s", s);
	free(s);
	return 0;
}

/* nat_ruleset must refuse with BN_EINTERNAL and leave *ret alone. */
static int
refused(const struct nat_config *cfg, const struct nat_vm *vms, int n)
{
	struct bn_err err;
	char *s = NULL;

	memset(&err, 0, sizeof(err));
	if (nat_ruleset(cfg, vms, n, &s, &err) == 0) {
		printf("#   accepted:\n%s", s);
		free(s);
		return 0;
	}
	return s == NULL && err.code == BN_EINTERNAL;
}

static int
test_ruleset_hostile_ips(void)
{
	static const char *bad[] = {
		"1.2.3.4; flush",       /* 1.2.3.4; flush ruleset, cut to fit */
		"172.30.0.2\"}",
		"172.30.0.2 ",
		" 172.30.0.2",
		"172.30.0.02",
		"172.30.0",
		"0xac.30.0.2",
		"",
		"::1",
		"172.30.1.5",           /* valid, outside the subnet */
		"10.0.0.1",
	};
	struct nat_vm vms[2] = { { "ok", "172.30.0.9" }, { "web", "" } };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(vms[1].ip, sizeof(vms[1].ip), "%s", bad[i]);
		fail_unless(refused(&cfg_any, vms, 2), "ip '%s'", bad[i]);
	}
	/* No NUL inside the field. */
	memset(vms[1].ip, '1', sizeof(vms[1].ip));
	fail_unless(refused(&cfg_any, vms, 2), "unterminated ip");
	/* The same lease twice means the store is inconsistent. */
	snprintf(vms[1].ip, sizeof(vms[1].ip), "172.30.0.9");
	fail_unless(refused(&cfg_any, vms, 2), "duplicate ip");
	snprintf(vms[1].ip, sizeof(vms[1].ip), "172.30.0.10");
	char *s = NULL;
	struct bn_err err;
	fail_unless(nat_ruleset(&cfg_any, vms, 2, &s, &err) == 0, "%s", err.msg);
	free(s);
	return 0;
}

static int
test_ruleset_hostile_names(void)
{
	static const char *bad[] = {
		"web server", "web\"", "Web", "-web", "web-", "", "web;flush",
		"web\n", "a.b", "web}",
	};
	struct nat_vm vm = { "", "172.30.0.2" };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(vm.name, sizeof(vm.name), "%s", bad[i]);
		fail_unless(refused(&cfg_any, &vm, 1), "name '%s'", bad[i]);
	}
	memset(vm.name, 'a', sizeof(vm.name));
	fail_unless(refused(&cfg_any, &vm, 1), "unterminated name");
	return 0;
}

static int
test_ruleset_hostile_config(void)
{
	static const char *bad_if[] = {
		"eth0\"", "eth 0", "\"; flush ruleset; \"", "eth0\n", "", ".",
		"..", "eth0}", "eth0;", "abcdefghijklmnop", "eth\\0", "eth0'",
	};
	static const char *bad_subnet[] = {
		"172.30.0.0/24; flush ruleset", "172.30.0.0", "172.30.0.0/",
		"172.30.0.0/33", "172.30.0.0/0", "172.30.0.0/024", "/24",
		"172.30.0.0/2a", "::/64", "",
	};
	struct nat_vm vm = { "web", "172.30.0.2" };
	struct nat_config cfg;

	for (size_t i = 0; i < ARRAY_SIZE(bad_if); i++) {
		cfg = cfg_any;
		cfg.bridge = bad_if[i];
		fail_unless(refused(&cfg, &vm, 1), "bridge '%s'", bad_if[i]);
		/* The table removal takes no interface, but a bad config is
		 * refused all the same. */
		fail_unless(refused(&cfg, NULL, 0), "bridge '%s', n=0", bad_if[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad_subnet); i++) {
		cfg = cfg_any;
		cfg.subnet = bad_subnet[i];
		fail_unless(refused(&cfg, &vm, 1), "subnet '%s'", bad_subnet[i]);
	}
	cfg = cfg_any;
	cfg.bridge = NULL;
	fail_unless(refused(&cfg, &vm, 1), "no bridge");
	cfg = cfg_any;
	cfg.subnet = NULL;
	fail_unless(refused(&cfg, &vm, 1), "no subnet");
	fail_unless(refused(NULL, &vm, 1), "no config");
	fail_unless(refused(&cfg_any, NULL, 1), "no VMs");
	fail_unless(refused(&cfg_any, &vm, -1), "n < 0");

	/* What the kernel allows and we should too. */
	static const char *good_if[] = { "eth0.100", "enp0s31f6", "br-1a2b_c", "WAN" };
	for (size_t i = 0; i < ARRAY_SIZE(good_if); i++) {
		char *s = NULL;
		struct bn_err err;
		cfg = cfg_any;
		cfg.bridge = good_if[i];
		fail_unless(nat_ruleset(&cfg, &vm, 1, &s, &err) == 0, "%s: %s",
		    good_if[i], err.msg);
		free(s);
	}
	/* Host bits in the subnet only bound the VM addresses. */
	char *s = NULL;
	struct bn_err err;
	cfg = cfg_any;
	cfg.subnet = "172.30.0.1/24";
	fail_unless(nat_ruleset(&cfg, &vm, 1, &s, &err) == 0, "%s", err.msg);
	free(s);
	return 0;
}

/* --- live, in a private network namespace ------------------------------- */

static int
has_cap(int cap)
{
	char line[256];
	unsigned long long eff = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return (eff >> cap) & 1;
}

static char
ip_forward(void)
{
	char c = '?';
	int fd = open(IP_FORWARD, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &c, 1) != 1)
			c = '?';
		close(fd);
	}
	return c;
}

/* Read a whole command's stdout, for inspecting with the nft CLI. */
static char *
run_capture(const char *cmd)
{
	char *buf = NULL;
	size_t len = 0, n;
	char chunk[4096];
	FILE *out = open_memstream(&buf, &len);
	FILE *p = popen(cmd, "re");

	if (p != NULL) {
		while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
			fwrite(chunk, 1, n, out);
		pclose(p);
	}
	fclose(out);
	return buf;
}

static int
foreign_intact(void)
{
	_cleanup_free_ char *t = run_capture("nft list ruleset 2>&1");

	fail_unless(t && strstr(t, "table inet other {") &&
	    strstr(t, "chain input {") && strstr(t, "table ip other4 {") &&
	    strstr(t, "elements = { 10.9.9.9 }"), "foreign tables:\n%s", t);
	return 0;
}

static const char foreign[] =
    "table inet other {\n"
    "\tchain input {\n"
    "\t\ttype filter hook input priority 0; policy accept;\n"
    "\t\ttcp dport 22 accept\n"
    "\t}\n"
    "}\n"
    "table ip other4 {\n"
    "\tset s {\n"
    "\t\ttype ipv4_addr\n"
    "\t\telements = { 10.9.9.9 }\n"
    "\t}\n"
    "}\n";

/* Every nfnetlink socket we hold is close-on-exec; returns how many there
 * are, or -1 when one would leak into exec'd children. */
static int
nfnetlink_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		int fd = atoi(de->d_name), v;
		socklen_t len = sizeof(v);

		if (de->d_name[0] == '.' || fd == dirfd(d) ||
		    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 ||
		    v != AF_NETLINK)
			continue;
		len = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0 ||
		    v != NETLINK_NETFILTER)
			continue;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC)) {
			n = -1;
			break;
		}
		n++;
	}
	closedir(d);
	return n;
}

/* As nobody, nat_probe must fail with a hint, and libnftables must not
 * take the process down. */
static int
unprivileged_probe(void)
{
	struct bn_err err;
	int status, devnull;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	fail_unless(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* libnftables prints "(you must be root)" on stderr itself. */
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(3);
		if (nat_probe(&err) == 0) {
			printf("#   probe passed without privileges\n");
			_exit(1);
		}
		if (strstr(err.msg, "Operation not permitted") == NULL ||
		    strstr(err.hint, "CAP_NET_ADMIN") == NULL) {
			printf("#   unexpected error: %s (hint: %s)\n", err.msg,
			    err.hint);
			_exit(2);
		}
		fflush(stdout);
		_exit(0);
	}
	fail_unless(waitpid(pid, &status, 0) == pid, "waitpid");
	fail_unless(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "unprivileged probe: status %#x", status);
	return 0;
}

static int
live_steps(void)
{
	struct nat_vm vms[2] = { { "web", "172.30.0.2" }, { "db", "172.30.0.3" } };
	struct bn_err err;
	char *list = NULL, *script = NULL;
	int fd;

	/* Start with forwarding off so we see nat_rebuild switch it on. */
	fd = open(IP_FORWARD, O_WRONLY | O_CLOEXEC);
	fail_unless(fd >= 0 && write(fd, "0", 1) == 1, "reset ip_forward: %s",
	    strerror(errno));
	close(fd);
	fail_unless(nat_apply(foreign, false, &err) == 0, "%s", err.msg);
	fail_unless(foreign_intact() == 0, "foreign tables set up");

	fail_unless(nat_probe(&err) == 0, "probe: %s", err.msg);
	fail_unless(nat_list(&list, &err) == 0 && list == NULL,
	    "no table yet: %s", err.msg);
	fail_unless(nat_remove(&err) == 0, "remove absent: %s", err.msg);

	/* A dry run is validated by the kernel but commits nothing. */
	fail_unless(nat_ruleset(&cfg_any, vms, 2, &script, &err) == 0, "%s", err.msg);
	fail_unless(nat_apply(script, true, &err) == 0, "dry run: %s", err.msg);
	free(script);
	fail_unless(nat_list(&list, &err) == 0 && list == NULL, "dry run left a table");
	fail_unless(ip_forward() == '0', "ip_forward untouched so far");

	/* Two NAT VMs. */
	fail_unless(nat_rebuild(&cfg_any, vms, 2, &err) == 0, "rebuild 2: %s", err.msg);
	fail_unless(nat_list(&list, &err) == 0 && list != NULL, "list: %s", err.msg);
	fail_unless(strstr(list, "172.30.0.2 comment \"web\"") &&
	    strstr(list, "172.30.0.3 comment \"db\"") &&
	    strstr(list, "comment \"managed by bangerd\"") &&
	    strstr(list, "oifname != \"banger0\" masquerade") &&
	    strstr(list, "type nat hook postrouting priority srcnat") &&
	    strstr(list, "type filter hook forward priority filter; policy accept;") &&
	    strstr(list, "iifname \"banger0\" ip saddr @nat_vms accept") &&
	    strstr(list, "ct state established,related accept"), "2 VMs:\n%s", list);
	free(list);
	fail_unless(ip_forward() == '1', "ip_forward switched on");
	fail_unless(foreign_intact() == 0, "foreign tables after rebuild 2");

	/* A transaction that fails half way changes nothing. */
	fail_unless(nat_ruleset(&cfg_any, vms, 1, &script, &err) == 0, "%s", err.msg);
	size_t sl = strlen(script);
	char *broken = xmalloc(sl + 64);
	memcpy(broken, script, sl);
	strcpy(broken + sl, "delete table inet no-such-table\n");
	free(script);
	fail_unless(nat_apply(broken, false, &err) < 0 && err.code == BN_ESYS &&
	    strstr(err.msg, "nftables: ") && strstr(err.msg, "No such file"),
	    "failed apply reported: %s", err.msg);
	free(broken);
	fail_unless(nat_apply("table inet banger { chain", false, &err) < 0 &&
	    strstr(err.msg, "rror"), "syntax error reported: %s", err.msg);
	fail_unless(nat_list(&list, &err) == 0 && list &&
	    strstr(list, "172.30.0.3"), "old rules kept:\n%s", list);
	free(list);

	/* One VM left, masquerading on any oif but the bridge. */
	fail_unless(nat_rebuild(&cfg_any, vms, 1, &err) == 0, "rebuild 1: %s", err.msg);
	fail_unless(nat_list(&list, &err) == 0 && list != NULL, "list: %s", err.msg);
	fail_unless(strstr(list, "172.30.0.2") && !strstr(list, "172.30.0.3") &&
	    strstr(list, "oifname != \"banger0\" masquerade") &&
	    !strstr(list, "eth0") && count(list, "chain ") == 2 &&
	    count(list, "masquerade") == 1, "1 VM:\n%s", list);
	free(list);
	fail_unless(foreign_intact() == 0, "foreign tables after rebuild 1");

	/* None: the table is gone, forwarding stays on. */
	fail_unless(nat_rebuild(&cfg_any, NULL, 0, &err) == 0, "rebuild 0: %s", err.msg);
	fail_unless(nat_list(&list, &err) == 0 && list == NULL, "table gone:\n%s", list);
	fail_unless(ip_forward() == '1', "ip_forward never switched off");
	fail_unless(foreign_intact() == 0, "foreign tables after rebuild 0");
	_cleanup_free_ char *tables = run_capture("nft list tables 2>&1");
	fail_unless(tables && !strstr(tables, "banger"), "nft CLI agrees:\n%s", tables);

	fail_unless(nat_rebuild(&cfg_any, vms, 2, &err) == 0, "%s", err.msg);
	fail_unless(nat_remove(&err) == 0, "remove: %s", err.msg);
	fail_unless(nat_remove(&err) == 0, "remove again: %s", err.msg);
	fail_unless(nat_list(&list, &err) == 0 && list == NULL, "removed");
	fail_unless(foreign_intact() == 0, "foreign tables after remove");

	/* nat.c keeps its libnftables socket open between calls: it must
	 * not leak into the VMMs bangerd execs. */
	fail_unless(nfnetlink_sockets() >= 1, "open nfnetlink sockets: %d",
	    nfnetlink_sockets());
	fail_unless(unprivileged_probe() == 0, "unprivileged probe");
	nat_close();
	fail_unless(nfnetlink_sockets() == 0, "closed: %d", nfnetlink_sockets());
	fail_unless(nat_list(&list, &err) == 0 && list == NULL,
	    "usable after nat_close: %s", err.msg);
	return 0;
}

static int
test_live_netns(void)
{
	char out[16384];
	size_t have = 0;
	int pfd[2], status;
	ssize_t r;
	pid_t pid;

	if (geteuid() != 0 || !has_cap(12 /* CAP_NET_ADMIN */) ||
	    !has_cap(21 /* CAP_SYS_ADMIN, for unshare */))
		skip_test("needs root with CAP_NET_ADMIN and CAP_SYS_ADMIN "
		    "(a private network namespace)");
	fail_unless(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	fail_unless(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int rc;

		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		alarm(60);
		if (unshare(CLONE_NEWNET) < 0) {
			printf("unshare(CLONE_NEWNET): %s", strerror(errno));
			fflush(stdout);
			_exit(77);
		}
		rc = live_steps();
		/* exit, not _exit: under `make test-san` LeakSanitizer then
		 * checks the libnftables paths too (stdout was flushed before
		 * the fork, so nothing is written twice). */
		exit(rc == 0 ? 0 : 1);
	}
	close(pfd[1]);
	while (have < sizeof(out) - 1 &&
	    ((r = read(pfd[0], out + have, sizeof(out) - 1 - have)) > 0 ||
	    (r < 0 && errno == EINTR)))
		if (r > 0)
			have += (size_t)r;
	out[have] = '\0';
	close(pfd[0]);
	fail_unless(waitpid(pid, &status, 0) == pid, "waitpid");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		skip_test(out);
	fputs(out, stdout);
	fail_unless(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %#x", status);
	return 0;
}

int
main(void)
{
	tap_begin();
	RUN_TEST(test_ruleset_empty);
	RUN_TEST(test_ruleset_one);
	RUN_TEST(test_ruleset_three);
	RUN_TEST(test_ruleset_hostile_ips);
	RUN_TEST(test_ruleset_hostile_names);
	RUN_TEST(test_ruleset_hostile_config);
	RUN_TEST(test_live_netns);
	return tap_end();
}
