/* nat.c - banger's nftables table: build the script, apply it, list it.
 *
 * The script is built only from values we parsed ourselves (IPv4 addresses
 * are re-printed from their numeric form, names and interface names are
 * checked against strict character sets), so nothing a caller passes can
 * smuggle nft syntax into the transaction.
 */
#include "net/nat.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include "common/log.h"
#include "common/util.h"

#define NAT_TABLE NAT_TABLE_FAMILY " " NAT_TABLE_NAME
#define IP_FORWARD_PATH "/proc/sys/net/ipv4/ip_forward"

/* Adding the table first makes the delete succeed whether or not it
 * existed; both run in the same transaction as whatever follows. */
static const char table_reset[] =
    "add table " NAT_TABLE "\n"
    "delete table " NAT_TABLE "\n";

/* One long-lived libnftables context, guarded by nft_lock.
 *
 * Long-lived because closing an nfnetlink socket right after a commit that
 * deleted objects waits for the kernel's deferred destroy work (an RCU
 * grace period): a context per call made every rebuild cost 12-20 ms, a
 * kept one well under 2 ms.  One lock because libnftables keeps some
 * process-wide state, a context is not thread-safe, and two rebuilds
 * racing would land in an arbitrary order anyway.
 *
 * The context's socket belongs to the process and network namespace that
 * opened it, so a forked child or a caller that moved to another namespace
 * (tests, the benchmark) gets a fresh one. */
static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nft_ctx *nft_ctx_cached;
static pid_t nft_ctx_pid;
static ino_t nft_ctx_netns;

/* An interface name that is safe inside an nft string literal and that the
 * kernel would accept: 1-15 of [a-zA-Z0-9_.-], not "." or "..". */
static bool
ifname_ok(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strnlen(s, IFNAMSIZ);
	if (n == 0 || n >= IFNAMSIZ || strcmp(s, ".") == 0 ||
	    strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* Dotted-quad IPv4 (inet_pton: exactly four decimal parts, nothing else)
 * into host byte order.  buf must hold a NUL within bufsz. */
static bool
ipv4_parse(const char *buf, size_t bufsz, uint32_t *ret)
{
	struct in_addr a;

	if (buf == NULL || memchr(buf, '\0', bufsz) == NULL)
		return false;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	*ret = ntohl(a.s_addr);
	return true;
}

/* "a.b.c.d/len" with len 1-32 into network and mask (host order).  Host
 * bits in the address are ignored: the subnet only bounds the VM ips. */
static bool
subnet_parse(const char *s, uint32_t *ret_net, uint32_t *ret_mask)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash, *p;
	uint32_t a, mask;
	int prefix = 0;

	if (s == NULL || (slash = strchr(s, '/')) == NULL ||
	    (size_t)(slash - s) >= sizeof(addr))
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	if (!ipv4_parse(addr, sizeof(addr), &a))
		return false;
	p = slash + 1;
	if (p[0] == '\0' || strlen(p) > 2)
		return false;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return false;
		prefix = prefix * 10 + (*p - '0');
	}
	if (prefix < 1 || prefix > 32)
		return false;
	mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
	*ret_net = a & mask;
	*ret_mask = mask;
	return true;
}

struct nat_elem {
	uint32_t addr;
	int idx;
};

static int
nat_elem_cmp(const void *a, const void *b)
{
	const struct nat_elem *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void
put_ipv4(FILE *f, uint32_t a)
{
	fprintf(f, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
	    a & 0xff);
}

int
nat_ruleset(const struct nat_config *cfg, const struct nat_vm *vms, int n,
    char **ret, struct bn_err *err)
{
	_cleanup_free_ struct nat_elem *elems = NULL;
	uint32_t net, mask;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (cfg == NULL || n < 0 || (n > 0 && vms == NULL))
		return bn_fail(err, BN_EINTERNAL, 0, "nat: bad arguments");
	if (!ifname_ok(cfg->bridge))
		return bn_fail(err, BN_EINTERNAL, 0,
		    "nat: invalid bridge interface name");
	if (!subnet_parse(cfg->subnet, &net, &mask))
		return bn_fail(err, BN_EINTERNAL, 0, "nat: invalid subnet");

	elems = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*elems));
	for (int i = 0; i < n; i++) {
		const struct nat_vm *vm = &vms[i];

		if (memchr(vm->name, '\0', sizeof(vm->name)) == NULL ||
		    !name_valid(vm->name))
			return bn_fail(err, BN_EINTERNAL, 0,
			    "nat: VM #%d has an invalid name", i);
		if (!ipv4_parse(vm->ip, sizeof(vm->ip), &elems[i].addr))
			return bn_fail(err, BN_EINTERNAL, 0,
			    "nat: VM %s has an invalid IPv4 address", vm->name);
		if ((elems[i].addr & mask) != net)
			return bn_fail(err, BN_EINTERNAL, 0,
			    "nat: VM %s address %s is outside %s", vm->name,
			    vm->ip, cfg->subnet);
		elems[i].idx = i;
	}
	/* Sorted elements make the script independent of the caller's order
	 * and put duplicate leases next to each other. */
	qsort(elems, (size_t)n, sizeof(*elems), nat_elem_cmp);
	for (int i = 1; i < n; i++)
		if (elems[i].addr == elems[i - 1].addr)
			return bn_fail(err, BN_EINTERNAL, 0,
			    "nat: VMs %s and %s share address %s",
			    vms[elems[i - 1].idx].name, vms[elems[i].idx].name,
			    vms[elems[i].idx].ip);

	f = open_memstream(&buf, &len);
	if (f == NULL)
		fatalx("out of memory");
	fputs(table_reset, f);
	/* No VMs: no table at all, rather than an empty one left behind. */
	if (n > 0) {
		fputs("table " NAT_TABLE " {\n"
		    "\tcomment \"managed by bangerd\"\n"
		    "\tset nat_vms {\n"
		    "\t\ttype ipv4_addr\n"
		    "\t\telements = {\n", f);
		for (int i = 0; i < n; i++) {
			fputs("\t\t\t", f);
			put_ipv4(f, elems[i].addr);
			fprintf(f, " comment \"%s\"%s\n", vms[elems[i].idx].name,
			    i + 1 < n ? "," : "");
		}
		fputs("\t\t}\n"
		    "\t}\n"
		    "\tchain postrouting {\n"
		    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
		    f);
		/* Never out of the bridge: that would rewrite VM-to-VM
		 * traffic. */
		fprintf(f, "\t\tip saddr @nat_vms oifname != \"%s\" masquerade\n",
		    cfg->bridge);
		/* policy accept: this chain only lets NAT VMs through where
		 * nothing else would; it must never drop other traffic. */
		fprintf(f, "\t}\n"
		    "\tchain forward {\n"
		    "\t\ttype filter hook forward priority filter; policy accept;\n"
		    "\t\tiifname \"%s\" ip saddr @nat_vms accept\n"
		    "\t\toifname \"%s\" ip daddr @nat_vms ct state established,related accept\n"
		    "\t}\n"
		    "}\n", cfg->bridge, cfg->bridge);
	}
	if (fclose(f) != 0 || buf == NULL)
		fatalx("out of memory");
	*ret = buf;
	return 0;
}

/* Fill err from nft's error text: its first non-empty line, plus a hint
 * for the failures a user can fix. */
static int
nft_fail(struct bn_err *err, const char *text)
{
	const char *p = text ? text : "", *end;

	while (*p == '\n' || *p == ' ' || *p == '\t')
		p++;
	end = strchr(p, '\n');
	if (end == NULL)
		end = p + strlen(p);
	if (end == p)
		bn_fail(err, BN_ESYS, 0, "nftables: command failed");
	else
		bn_fail(err, BN_ESYS, 0, "nftables: %.*s", (int)(end - p), p);
	if (text != NULL && *text != '\0')
		log_debug("nftables said: %s", text);
	if (strstr(p, "Operation not permitted") != NULL)
		return bn_err_hint(err, "bangerd needs CAP_NET_ADMIN (run it as "
		    "root or grant the capability) to manage nftables");
	/* Our own scripts only reference what they create, so ENOENT from
	 * the kernel usually means a missing expression or chain type. */
	if (strstr(p, "Protocol not supported") != NULL ||
	    strstr(p, "No such file or directory") != NULL)
		return bn_err_hint(err, "the kernel may lack nftables NAT "
		    "support: modprobe nf_tables nft_chain_nat nft_masq nft_ct");
	return -1;
}

static ino_t
netns_ino(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) == 0 ? st.st_ino : 0;
}

/* libnftables opens its netlink socket without SOCK_CLOEXEC, and every
 * VMM bangerd spawns would inherit it.  Mark any nfnetlink socket of ours
 * that lacks the flag; nothing else in bangerd opens one. */
static void
nfnetlink_cloexec(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		int fd = atoi(de->d_name), flags, v;
		socklen_t len = sizeof(v);

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dirfd(d))
			continue;
		flags = fcntl(fd, F_GETFD);
		if (flags < 0 || (flags & FD_CLOEXEC))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 ||
		    v != AF_NETLINK)
			continue;
		len = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0 ||
		    v != NETLINK_NETFILTER)
			continue;
		fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	}
	closedir(d);
}

/* The shared context, made on first use.  Called with nft_lock held. */
static struct nft_ctx *
nft_ctx_get(struct bn_err *err)
{
	pid_t pid = getpid();
	ino_t ns = netns_ino();
	struct nft_ctx *ctx;
	int fd;

	if (nft_ctx_cached != NULL && nft_ctx_pid == pid && nft_ctx_netns == ns)
		return nft_ctx_cached;
	if (nft_ctx_cached != NULL) {
		nft_ctx_free(nft_ctx_cached);
		nft_ctx_cached = NULL;
	}
	/* libnftables 1.0 calls exit() when it cannot open its socket, so
	 * find out first whether it could, and fail like a library. */
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0) {
		bn_fail(err, BN_ESYS, errno, "nftables: netlink socket");
		bn_err_hint(err, "the kernel needs nf_tables and nfnetlink "
		    "(CONFIG_NF_TABLES, CONFIG_NETFILTER_NETLINK)");
		return NULL;
	}
	close(fd);
	ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	nfnetlink_cloexec();
	if (ctx == NULL) {
		bn_fail(err, BN_ESYS, 0, "nftables: cannot create a context");
		return NULL;
	}
	/* Buffered, so messages land in our errors and never on stdout. */
	if (nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0) {
		nft_ctx_free(ctx);
		bn_fail(err, BN_ESYS, 0, "nftables: cannot buffer output");
		return NULL;
	}
	nft_ctx_cached = ctx;
	nft_ctx_pid = pid;
	nft_ctx_netns = ns;
	return ctx;
}

/* Run nft commands as one transaction; on success *ret_out (if not NULL)
 * gets a copy of what nft printed. */
static int
nft_run(const char *cmds, bool dry_run, char **ret_out, struct bn_err *err)
{
	struct nft_ctx *ctx;
	const char *out, *errtext;
	int rc;

	pthread_mutex_lock(&nft_lock);
	ctx = nft_ctx_get(err);
	if (ctx == NULL) {
		pthread_mutex_unlock(&nft_lock);
		return -1;
	}
	nft_ctx_set_dry_run(ctx, dry_run);
	rc = nft_run_cmd_from_buffer(ctx, cmds);
	/* Fetching a buffer also rewinds it: read both every time so the
	 * next command starts clean. */
	out = nft_ctx_get_output_buffer(ctx);
	errtext = nft_ctx_get_error_buffer(ctx);
	if (rc != 0)
		nft_fail(err, errtext);
	else if (ret_out != NULL)
		*ret_out = xstrdup(out ? out : "");
	nft_ctx_set_dry_run(ctx, false);
	pthread_mutex_unlock(&nft_lock);
	return rc != 0 ? -1 : 0;
}

void
nat_close(void)
{
	pthread_mutex_lock(&nft_lock);
	if (nft_ctx_cached != NULL)
		nft_ctx_free(nft_ctx_cached);
	nft_ctx_cached = NULL;
	pthread_mutex_unlock(&nft_lock);
}

int
nat_apply(const char *script, bool dry_run, struct bn_err *err)
{
	if (script == NULL)
		return bn_fail(err, BN_EINTERNAL, 0, "nat: no script");
	return nft_run(script, dry_run, NULL, err);
}

/* Switch IPv4 forwarding on for this network namespace unless it already
 * is.  Read first: /proc/sys may be read-only where forwarding is already
 * on, and rewriting it resets per-interface settings for nothing. */
static int
ip_forward_on(struct bn_err *err)
{
	_cleanup_close_ int rfd = -1, wfd = -1;
	char c;

	rfd = open(IP_FORWARD_PATH, O_RDONLY | O_CLOEXEC);
	if (rfd < 0)
		return bn_fail(err, BN_ESYS, errno, "open %s", IP_FORWARD_PATH);
	if (read(rfd, &c, 1) != 1)
		return bn_fail(err, BN_ESYS, errno, "read %s", IP_FORWARD_PATH);
	if (c != '0')
		return 0;
	wfd = open(IP_FORWARD_PATH, O_WRONLY | O_CLOEXEC);
	if (wfd < 0 || write(wfd, "1", 1) != 1) {
		bn_fail(err, BN_ESYS, errno, "switch on net.ipv4.ip_forward");
		return bn_err_hint(err, "NAT VMs need IPv4 forwarding: "
		    "sysctl -w net.ipv4.ip_forward=1");
	}
	log_info("nat: switched on net.ipv4.ip_forward");
	return 0;
}

int
nat_rebuild(const struct nat_config *cfg, const struct nat_vm *vms, int n,
    struct bn_err *err)
{
	_cleanup_free_ char *script = NULL;

	if (nat_ruleset(cfg, vms, n, &script, err) < 0)
		return -1;
	if (nat_apply(script, false, err) < 0)
		return bn_err_prefix(err, "rebuild table " NAT_TABLE);
	/* After the rules: forwarding without masquerade would route VM
	 * traffic out with private source addresses. */
	if (n > 0 && ip_forward_on(err) < 0)
		return -1;
	log_debug("nat: table " NAT_TABLE " rebuilt for %d VMs", n);
	return 0;
}

int
nat_remove(struct bn_err *err)
{
	if (nft_run(table_reset, false, NULL, err) < 0)
		return bn_err_prefix(err, "remove table " NAT_TABLE);
	return 0;
}

/* Whether nft's "list tables" output has exactly this line. */
static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len == n && memcmp(p, line, n) == 0)
			return true;
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

int
nat_list(char **ret, struct bn_err *err)
{
	_cleanup_free_ char *tables = NULL;
	struct bn_err first;
	char *out = NULL;

	if (nft_run("list table " NAT_TABLE "\n", false, &out, &first) == 0) {
		*ret = out;
		return 0;
	}
	/* Tell "no such table" from a real failure by looking at the table
	 * names, not by matching nft's error wording. */
	if (nft_run("list tables " NAT_TABLE_FAMILY "\n", false, &tables, err) < 0)
		return -1;
	if (!has_line(tables, "table " NAT_TABLE)) {
		*ret = NULL;
		return 0;
	}
	if (err != NULL)
		*err = first;
	return -1;
}

int
nat_probe(struct bn_err *err)
{
	/* TEST-NET-1 and a name that cannot collide with anything real: the
	 * dry run only checks that the kernel takes our rule shape. */
	static const struct nat_config cfg = {
		.bridge = "banger0",
		.subnet = "192.0.2.0/24",
	};
	static const struct nat_vm vm = { "probe", "192.0.2.2" };
	_cleanup_free_ char *script = NULL;

	if (nat_ruleset(&cfg, &vm, 1, &script, err) < 0)
		return -1;
	return nat_apply(script, true, err);
}
