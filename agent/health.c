/* health.c - gathers the guest facts served at GET /healthz.
 *
 * Everything comes from /proc, uname(), statvfs() and the state files the
 * boot steps leave in /run/banger (layout-state, shares-state); no NSS, no
 * libraries.
 * A fact that cannot be read is reported as JSON null rather than failing
 * the whole document.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

int
read_small_file(const char *path, char *buf, size_t cap)
{
	if (cap == 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	size_t len = 0;
	while (len + 1 < cap) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return 0;
}

static char *
trim(char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static void
put_double(struct strbuf *sb, int ok, double v)
{
	if (!ok || !isfinite(v))
		sb_puts(sb, "null");
	else
		sb_printf(sb, "%.2f", v);
}

static void
put_u64(struct strbuf *sb, int ok, unsigned long long v)
{
	if (!ok)
		sb_puts(sb, "null");
	else
		sb_printf(sb, "%llu", v);
}

/* /proc/meminfo values are in kB. */
static void
read_meminfo(int *ok_total, unsigned long long *total, int *ok_avail,
    unsigned long long *avail)
{
	char buf[8192];
	*ok_total = *ok_avail = 0;
	if (read_small_file("/proc/meminfo", buf, sizeof(buf)) < 0)
		return;
	unsigned long long memfree = 0, buffers = 0, cached = 0;
	int have_free = 0;
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		char *end = NULL;
		errno = 0;
		unsigned long long kb = strtoull(colon + 1, &end, 10);
		if (errno != 0 || end == colon + 1)
			continue;
		unsigned long long bytes = kb * 1024ULL;
		if (strcmp(line, "MemTotal") == 0) {
			*total = bytes;
			*ok_total = 1;
		} else if (strcmp(line, "MemAvailable") == 0) {
			*avail = bytes;
			*ok_avail = 1;
		} else if (strcmp(line, "MemFree") == 0) {
			memfree = bytes;
			have_free = 1;
		} else if (strcmp(line, "Buffers") == 0) {
			buffers = bytes;
		} else if (strcmp(line, "Cached") == 0) {
			cached = bytes;
		}
	}
	/* Kernels before 3.14 have no MemAvailable: approximate it. */
	if (!*ok_avail && have_free) {
		*avail = memfree + buffers + cached;
		*ok_avail = 1;
	}
}

static void
put_fs(struct strbuf *sb, const char *path)
{
	struct statvfs st;
	int ok = path != NULL && statvfs(path, &st) == 0;
	unsigned long long frsize = ok ? (unsigned long long)st.f_frsize : 0;
	if (ok && frsize == 0)
		frsize = (unsigned long long)st.f_bsize;
	sb_puts(sb, "\"free_bytes\":");
	put_u64(sb, ok, ok ? (unsigned long long)st.f_bavail * frsize : 0);
	sb_puts(sb, ",\"total_bytes\":");
	put_u64(sb, ok, ok ? (unsigned long long)st.f_blocks * frsize : 0);
}

/* Undo the octal escapes (\040 etc.) the kernel uses in mountinfo. */
static void
unescape_mount_field(char *s)
{
	char *w = s;
	for (char *r = s; *r; ) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' &&
		    r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) |
			    (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* Whether `path` (already canonical) is a mount point per
 * /proc/self/mountinfo; the last (topmost) matching entry wins.  On success
 * copies the mount source into dev. */
static int
find_mount(const char *path, char *dev, size_t devcap)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return 0;
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL;
		char *tok[6] = { 0 };
		int i = 0;
		char *t = strtok_r(line, " \n", &save);
		for (; t != NULL && i < 6; i++) {
			tok[i] = t;
			if (i < 5)
				t = strtok_r(NULL, " \n", &save);
		}
		if (i < 6 || tok[4] == NULL)
			continue;
		/* Skip optional fields up to the "-" separator. */
		char *fstype = NULL, *source = NULL;
		while ((t = strtok_r(NULL, " \n", &save)) != NULL) {
			if (strcmp(t, "-") == 0) {
				fstype = strtok_r(NULL, " \n", &save);
				source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
				break;
			}
		}
		char *mnt = tok[4];
		unescape_mount_field(mnt);
		if (strcmp(mnt, path) != 0)
			continue;
		found = 1;
		if (source != NULL) {
			unescape_mount_field(source);
			snprintf(dev, devcap, "%s", source);
		} else {
			snprintf(dev, devcap, "%s", "");
		}
	}
	free(line);
	fclose(f);
	return found;
}

/* First word of the layout-state file when it is a known state. */
static const char *
read_layout(const char *path)
{
	char buf[256];
	if (path == NULL || read_small_file(path, buf, sizeof(buf)) < 0)
		return "unknown";
	char *s = buf;
	while (*s && isspace((unsigned char)*s))
		s++;
	size_t n = 0;
	while (s[n] && !isspace((unsigned char)s[n]))
		n++;
	static const char *const known[] = { "ok", "repaired", "conflicts" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == n && strncmp(s, known[i], n) == 0)
			return known[i];
	return "unknown";
}

/* The shared folders' state, from mount-shares at boot: one line per
 * share, "ok TAG PATH" or "failed TAG PATH REASON". */
struct shares {
	unsigned mounted, failed;
	char detail[200];   /* the first failure: "TAG on PATH: REASON" */
};

/* The file sits next to the layout state (/run/banger/shares-state), so
 * --layout-state moves both (tests).  No file: no shares were asked for
 * (mount-shares writes one whenever the command line names a share). */
static void
read_shares(const char *layout_state, struct shares *sh)
{
	char path[PATH_MAX];
	char buf[4096];
	const char *ls = layout_state ? layout_state : AGENT_DEFAULT_LAYOUT_STATE;
	const char *slash = strrchr(ls, '/');

	memset(sh, 0, sizeof(*sh));
	if (slash == NULL)
		snprintf(path, sizeof(path), "shares-state");
	else
		snprintf(path, sizeof(path), "%.*s/shares-state",
		    (int)(slash - ls), ls);
	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return;
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *s = trim(line);
		if (*s == '\0')
			continue;
		if (strncmp(s, "ok ", 3) == 0) {
			sh->mounted++;
			continue;
		}
		if (sh->failed++ > 0)
			continue;
		if (strncmp(s, "failed ", 7) != 0) {
			snprintf(sh->detail, sizeof(sh->detail),
			    "unexpected line in %s: %.60s", path, s);
			continue;
		}
		/* TAG and PATH have no spaces; the reason is the rest. */
		char *tag = trim(s + 7);
		char *p = tag + strcspn(tag, " \t");
		char *where = *p ? trim(p + 1) : p;
		*p = '\0';
		p = where + strcspn(where, " \t");
		char *why = *p ? trim(p + 1) : p;
		*p = '\0';
		snprintf(sh->detail, sizeof(sh->detail), "%s on %s: %s", tag,
		    where, *why ? why : "failed");
	}
}

/* ---- readiness ---- */

static const struct {
	const char *name;
	unsigned bit;
} ready_names[] = {
	{ "sshd", READY_SSHD },
	{ "workdisk", READY_WORKDISK },
	{ "network", READY_NETWORK },
};
#define N_READY (sizeof(ready_names) / sizeof(ready_names[0]))

int
ready_parse(const char *s, unsigned *ret)
{
	unsigned mask = 0;
	if (strcmp(s, "none") == 0) {
		*ret = 0;
		return 0;
	}
	if (strcmp(s, "all") == 0) {
		*ret = READY_ALL;
		return 0;
	}
	while (*s) {
		size_t n = strcspn(s, ",");
		size_t i;
		for (i = 0; i < N_READY; i++)
			if (strlen(ready_names[i].name) == n &&
			    strncmp(s, ready_names[i].name, n) == 0)
				break;
		if (i == N_READY)
			return -1;
		mask |= ready_names[i].bit;
		s += n;
		if (*s == ',')
			s++;
	}
	*ret = mask;
	return 0;
}

/* Whether a TCP socket listens on port, from /proc/net/tcp{,6}: no
 * connection is made, so sshd logs nothing however often we look. */
static int
tcp_listening(unsigned port)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	int found = 0;
	for (size_t f = 0; f < 2 && !found; f++) {
		FILE *fp = fopen(files[f], "re");
		if (fp == NULL)
			continue;
		char line[512];
		/* "sl local_address rem_address st ...": addr is HEX:PORT. */
		while (!found && fgets(line, sizeof(line), fp) != NULL) {
			char local[64], remote[64];
			unsigned st;
			if (sscanf(line, " %*[0-9]: %63s %63s %x", local, remote,
			    &st) != 3)
				continue;
			char *colon = strrchr(local, ':');
			if (colon == NULL)
				continue;
			unsigned p = (unsigned)strtoul(colon + 1, NULL, 16);
			found = st == 0x0A && p == port;
		}
		fclose(fp);
	}
	return found;
}

/* The address and device of the kernel's ip= argument, if any. */
static void
boot_ip(char *addr, size_t acap, char *dev, size_t dcap)
{
	char cmdline[4096];
	addr[0] = dev[0] = '\0';
	if (read_small_file("/proc/cmdline", cmdline, sizeof(cmdline)) < 0)
		return;
	char *save = NULL;
	for (char *w = strtok_r(cmdline, " \n", &save); w != NULL;
	    w = strtok_r(NULL, " \n", &save)) {
		if (strncmp(w, "ip=", 3) != 0)
			continue;
		/* ip=<client>:<server>:<gw>:<mask>:<host>:<dev>:<autoconf> */
		char *f = w + 3;
		for (int i = 0; f != NULL && i < 7; i++) {
			char *next = strchr(f, ':');
			if (next != NULL)
				*next++ = '\0';
			if (i == 0)
				snprintf(addr, acap, "%s", f);
			else if (i == 5)
				snprintf(dev, dcap, "%s", f);
			f = next;
		}
	}
}

/* The boot address (ip=) is on an interface that is up; without ip=, any
 * interface but loopback that is up with an IPv4 address. */
static int
network_ready(char *detail, size_t cap)
{
	char want[64], dev[32];
	struct in_addr wa;
	boot_ip(want, sizeof(want), dev, sizeof(dev));
	int have_want = want[0] && inet_pton(AF_INET, want, &wa) == 1;

	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) < 0) {
		snprintf(detail, cap, "cannot list interfaces: %s",
		    strerror(errno));
		return 0;
	}
	int ok = 0;
	for (struct ifaddrs *i = ifs; i != NULL && !ok; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		const struct sockaddr_in *sin = (const void *)i->ifa_addr;
		ok = !have_want || sin->sin_addr.s_addr == wa.s_addr;
	}
	freeifaddrs(ifs);
	if (!ok && have_want)
		snprintf(detail, cap, "%s is not up on %s", want,
		    dev[0] ? dev : "any interface");
	else if (!ok)
		snprintf(detail, cap, "no interface is up with an address");
	return ok;
}

struct readiness {
	unsigned checked;           /* READY_* that were looked at */
	unsigned failed;
	char detail[N_READY][160];  /* why each failed */
};

static void
check_readiness(const struct agent_config *cfg, int mounted,
    struct readiness *r)
{
	memset(r, 0, sizeof(*r));
	r->checked = cfg->ready;
	if (cfg->ready & READY_SSHD) {
		if (!tcp_listening(cfg->ssh_port)) {
			r->failed |= READY_SSHD;
			snprintf(r->detail[0], sizeof(r->detail[0]),
			    "nothing listens on port %u", cfg->ssh_port);
		}
	}
	if (cfg->ready & READY_WORKDISK) {
		if (!mounted) {
			r->failed |= READY_WORKDISK;
			snprintf(r->detail[1], sizeof(r->detail[1]),
			    "%s is not mounted", cfg->workdisk);
		}
	}
	if (cfg->ready & READY_NETWORK) {
		if (!network_ready(r->detail[2], sizeof(r->detail[2])))
			r->failed |= READY_NETWORK;
	}
}

static void
put_readiness(struct strbuf *sb, const struct readiness *r)
{
	sb_printf(sb, ",\"ready\":%s,\"not_ready\":",
	    r->failed ? "false" : "true");
	size_t first = N_READY;
	for (size_t i = 0; i < N_READY && first == N_READY; i++)
		if (r->failed & ready_names[i].bit)
			first = i;
	if (first < N_READY) {
		char msg[200];
		snprintf(msg, sizeof(msg), "%s: %s", ready_names[first].name,
		    r->detail[first]);
		sb_json_str(sb, msg);
	} else {
		sb_puts(sb, "null");
	}
	sb_puts(sb, ",\"checks\":{");
	int n = 0;
	for (size_t i = 0; i < N_READY; i++) {
		if (!(r->checked & ready_names[i].bit))
			continue;
		int bad = (r->failed & ready_names[i].bit) != 0;
		sb_printf(sb, "%s\"%s\":{\"ok\":%s,\"detail\":", n++ ? "," : "",
		    ready_names[i].name, bad ? "false" : "true");
		sb_json_str(sb, bad ? r->detail[i] : NULL);
		sb_puts(sb, "}");
	}
	sb_puts(sb, "}");
}

void
health_json(const struct agent_config *cfg, struct strbuf *sb)
{
	/* Work disk first: it decides the overall status. */
	char canon[PATH_MAX];
	char dev[PATH_MAX];
	dev[0] = '\0';
	int have_path = realpath(cfg->workdisk, canon) != NULL;
	int mounted = have_path && find_mount(canon, dev, sizeof(dev));

	struct utsname un;
	int have_un = uname(&un) == 0;

	char boot_id[128];
	const char *bid = NULL;
	if (read_small_file("/proc/sys/kernel/random/boot_id", boot_id,
	    sizeof(boot_id)) == 0) {
		bid = trim(boot_id);
		if (*bid == '\0')
			bid = NULL;
	}

	char tmp[256];
	double uptime = 0;
	int have_uptime = 0;
	if (read_small_file("/proc/uptime", tmp, sizeof(tmp)) == 0) {
		char *end = NULL;
		uptime = strtod(tmp, &end);
		have_uptime = end != tmp;
	}

	double load[3] = { 0, 0, 0 };
	int have_load = 0;
	if (read_small_file("/proc/loadavg", tmp, sizeof(tmp)) == 0) {
		char *p = tmp, *end = NULL;
		have_load = 1;
		for (int i = 0; i < 3; i++) {
			load[i] = strtod(p, &end);
			if (end == p) {
				have_load = 0;
				break;
			}
			p = end;
		}
	}

	int ok_total, ok_avail;
	unsigned long long mem_total = 0, mem_avail = 0;
	read_meminfo(&ok_total, &mem_total, &ok_avail, &mem_avail);

	struct readiness rd;
	check_readiness(cfg, mounted, &rd);

	/* A share that did not mount is final, not "starting": degraded. */
	struct shares sh;
	read_shares(cfg->layout_state, &sh);

	sb_puts(sb, "{\"status\":");
	sb_json_str(sb, mounted && sh.failed == 0 ? "ok" : "degraded");
	sb_puts(sb, ",\"agent_version\":\"" AGENT_VERSION "\"");
	sb_printf(sb, ",\"protocol\":%d", AGENT_PROTOCOL);
	/* What this agent can do, from its route table, each once. */
	sb_puts(sb, ",\"capabilities\":[");
	int first = 1;
	for (size_t i = 0; i < agent_nroutes; i++) {
		size_t j = 0;
		if (!agent_route_served(&agent_routes[i], cfg))
			continue;
		while (j < i && strcmp(agent_routes[j].capability,
		    agent_routes[i].capability) != 0)
			j++;
		if (j < i)
			continue;
		if (!first)
			sb_puts(sb, ",");
		first = 0;
		sb_json_str(sb, agent_routes[i].capability);
	}
	for (size_t i = 0; i < agent_noption_caps; i++) {
		sb_puts(sb, first ? "" : ",");
		first = 0;
		sb_json_str(sb, agent_option_caps[i]);
	}
	sb_puts(sb, "]");
	put_readiness(sb, &rd);
	sb_puts(sb, ",\"hostname\":");
	sb_json_str(sb, have_un ? un.nodename : NULL);
	sb_puts(sb, ",\"boot_id\":");
	sb_json_str(sb, bid);
	sb_puts(sb, ",\"uptime_s\":");
	put_double(sb, have_uptime, uptime);
	sb_puts(sb, ",\"load\":");
	if (have_load) {
		sb_puts(sb, "[");
		for (int i = 0; i < 3; i++) {
			if (i)
				sb_puts(sb, ",");
			put_double(sb, 1, load[i]);
		}
		sb_puts(sb, "]");
	} else {
		sb_puts(sb, "null");
	}
	sb_puts(sb, ",\"memory\":{\"total_bytes\":");
	put_u64(sb, ok_total, mem_total);
	sb_puts(sb, ",\"available_bytes\":");
	put_u64(sb, ok_avail, mem_avail);
	sb_puts(sb, "},\"rootfs\":{");
	put_fs(sb, "/");
	sb_puts(sb, "},\"workdisk\":{\"mounted\":");
	sb_puts(sb, mounted ? "true" : "false");
	sb_puts(sb, ",\"path\":");
	sb_json_str(sb, cfg->workdisk);
	sb_puts(sb, ",\"device\":");
	sb_json_str(sb, mounted && dev[0] ? dev : cfg->workdev);
	sb_puts(sb, ",");
	put_fs(sb, have_path ? canon : NULL);
	sb_puts(sb, ",\"layout\":");
	sb_json_str(sb, read_layout(cfg->layout_state));
	sb_printf(sb, "},\"shares\":{\"ok\":%s,\"mounted\":%u,\"failed\":%u,"
	    "\"detail\":", sh.failed ? "false" : "true", sh.mounted, sh.failed);
	sb_json_str(sb, sh.failed ? sh.detail : NULL);
	sb_puts(sb, "}}");
}

/* Ready now (every readiness check the agent was started with passes)? */
static int
ready_now(const struct agent_config *cfg)
{
	char canon[PATH_MAX], dev[PATH_MAX];
	struct readiness r;

	int mounted = realpath(cfg->workdisk, canon) != NULL &&
	    find_mount(canon, dev, sizeof(dev));
	check_readiness(cfg, mounted, &r);
	return r.failed == 0;
}

/* GET /healthz[?wait_ms=N]: with wait_ms (at most HEALTH_WAIT_MAX_MS), a
 * guest that is not ready yet answers when it is, or when the time is
 * up, rather than at once: the host learns the moment sshd listens
 * without asking again and again (a probe costs a vsock connection and,
 * under emulation, some of the boot's CPU).  The checks are cheap reads
 * of /proc, made every HEALTH_WAIT_STEP_MS.  An agent from before this
 * ignores the parameter and answers at once. */
#define HEALTH_WAIT_MAX_MS 5000
#define HEALTH_WAIT_STEP_MS 20

void
health_route(struct agent_request *rq)
{
	struct strbuf body;
	long wait_ms = 0;

	if (agent_query_long(rq->query, "wait_ms", 0, HEALTH_WAIT_MAX_MS,
	    &wait_ms) < 0) {
		agent_reply_error(rq, 400, "wait_ms must be a number of "
		    "milliseconds from 0 to 5000");
		return;
	}
	for (long waited = 0; waited < wait_ms && !ready_now(rq->cfg);
	    waited += HEALTH_WAIT_STEP_MS) {
		struct timespec ts = { 0, HEALTH_WAIT_STEP_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	sb_init(&body);
	health_json(rq->cfg, &body);
	if (body.oom) {
		agent_log("out of memory building /healthz");
		agent_reply_error(rq, 500, "internal error");
	} else {
		agent_reply(rq, 200, body.buf, body.len);
	}
	sb_free(&body);
}
