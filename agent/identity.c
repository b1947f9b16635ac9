/* identity.c - POST /identity: a clone becomes a machine of its own.
 *
 * A VM restored from another VM's snapshot wakes as that VM: same
 * hostname, MAC and address (the kernel's ip= of the snapshot), same SSH
 * host keys, machine-id and kernel RNG state.  bangerd sends the clone's
 * own values right after the restore, as a form body (every value is
 * checked against a strict character set, so no decoding is needed):
 *
 *   hostname=b&mac=02:..&address=172.30.0.5/24&gateway=172.30.0.1
 *   &machine_id=<32 hex>&seed=<64..1024 hex>
 *
 * and the agent, in this order: feeds the seed to the kernel's RNG
 * (RNDADDENTROPY, then RNDRESEEDCRNG) so that the keys made next differ
 * from every other clone's; writes the machine-id; sets the hostname;
 * moves eth0 to the new MAC and address (with iproute2's `ip`); makes
 * new SSH host keys (Ed25519 and ECDSA, as the image's first boot does)
 * and has sshd re-exec itself (SIGHUP) to load them.  Outside a guest it
 * touches nothing: with --identity-file it writes what it would set
 * there, else it refuses (403). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<linux/random.h>)
#include <linux/random.h>
#define HAVE_LINUX_RANDOM_H 1
#endif
#endif

#ifndef HAVE_LINUX_RANDOM_H
/* musl ships no kernel headers: the stable ioctl ABI we use. */
struct rand_pool_info {
	int entropy_count;
	int buf_size;
	unsigned int buf[];
};
#define RNDADDENTROPY _IOW('R', 0x03, int[2])
#define RNDRESEEDCRNG _IO('R', 0x07)
#endif

#define SEED_MAX 512    /* bytes */

struct identity {
	char hostname[64];
	char mac[18];
	char address[20];       /* a.b.c.d/len */
	char gateway[16];
	char machine_id[33];
	unsigned char seed[SEED_MAX];
	size_t seed_len;
};

/* The value of key in the form body, copied into out if it has only
 * characters of `allowed` and fits; 0, or -1 (absent, empty or bad). */
static int
field(const char *body, const char *key, const char *allowed, char *out,
    size_t outsz)
{
	const char *v;
	int n = agent_query_value(body, key, &v);

	if (n <= 0 || (size_t)n >= outsz)
		return -1;
	for (int i = 0; i < n; i++)
		if (strchr(allowed, v[i]) == NULL)
			return -1;
	memcpy(out, v, (size_t)n);
	out[n] = '\0';
	return 0;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
	    c - 'a' + 10 : -1;
}

static const char *
parse(const char *body, struct identity *id)
{
	static const char hex[] = "0123456789abcdef";
	static const char label[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
	char seedhex[2 * SEED_MAX + 1];
	unsigned a, b, c, d, len;
	char tail;

	memset(id, 0, sizeof(*id));
	if (field(body, "hostname", label, id->hostname, sizeof(id->hostname)) < 0 ||
	    id->hostname[0] == '-')
		return "hostname must be a DNS label";
	if (field(body, "mac", "0123456789abcdef:", id->mac, sizeof(id->mac)) < 0 ||
	    strlen(id->mac) != 17)
		return "mac must be xx:xx:xx:xx:xx:xx (lower case)";
	for (int i = 2; i < 17; i += 3)
		if (id->mac[i] != ':')
			return "mac must be xx:xx:xx:xx:xx:xx (lower case)";
	if (field(body, "address", "0123456789./", id->address,
	    sizeof(id->address)) < 0 || sscanf(id->address, "%u.%u.%u.%u/%u%c",
	    &a, &b, &c, &d, &len, &tail) != 5 || a > 255 || b > 255 ||
	    c > 255 || d > 255 || len < 1 || len > 32)
		return "address must be a.b.c.d/len";
	if (field(body, "gateway", "0123456789.", id->gateway,
	    sizeof(id->gateway)) < 0 || sscanf(id->gateway, "%u.%u.%u.%u%c",
	    &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 || c > 255 ||
	    d > 255)
		return "gateway must be a.b.c.d";
	if (field(body, "machine_id", hex, id->machine_id,
	    sizeof(id->machine_id)) < 0 || strlen(id->machine_id) != 32)
		return "machine_id must be 32 hex digits";
	if (field(body, "seed", hex, seedhex, sizeof(seedhex)) < 0 ||
	    strlen(seedhex) % 2 != 0 || strlen(seedhex) < 64)
		return "seed must be 32 to 512 bytes in hex";
	id->seed_len = strlen(seedhex) / 2;
	for (size_t i = 0; i < id->seed_len; i++)
		id->seed[i] = (unsigned char)(hexval(seedhex[2 * i]) << 4 |
		    hexval(seedhex[2 * i + 1]));
	return NULL;
}

/* Run argv (a program from the image) to its end; 0 when it exited 0. */
static int
run(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int
write_file(const char *path, const char *text, mode_t mode)
{
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s.banger-new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t n = strlen(text);

	if (fd < 0)
		return -1;
	int rc = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0 ? 0 : -1;
	if (close(fd) < 0)
		rc = -1;
	if (rc == 0)
		rc = rename(tmp, path);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static int
feed_rng(const struct identity *id)
{
	struct {
		struct rand_pool_info info;
		unsigned char buf[SEED_MAX];
	} r;
	int fd = open("/dev/random", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	r.info.entropy_count = (int)id->seed_len * 8;
	r.info.buf_size = (int)id->seed_len;
	memcpy(r.buf, id->seed, id->seed_len);
	int rc = ioctl(fd, RNDADDENTROPY, &r);
	if (rc == 0)
		ioctl(fd, RNDRESEEDCRNG);   /* kernels before 4.17 lack it */
	close(fd);
	return rc;
}

static int
readdress(const struct identity *id)
{
	char *down[] = { "ip", "link", "set", "dev", "eth0", "down", NULL };
	char *mac[] = { "ip", "link", "set", "dev", "eth0", "address",
		(char *)id->mac, NULL };
	char *flush[] = { "ip", "addr", "flush", "dev", "eth0", NULL };
	char *addr[] = { "ip", "addr", "add", (char *)id->address, "dev",
		"eth0", NULL };
	char *up[] = { "ip", "link", "set", "dev", "eth0", "up", NULL };
	char *route[] = { "ip", "route", "replace", "default", "via",
		(char *)id->gateway, "dev", "eth0", NULL };

	if (run(down) < 0 || run(mac) < 0 || run(flush) < 0 || run(addr) < 0 ||
	    run(up) < 0 || run(route) < 0)
		return -1;
	return 0;
}

/* New host keys, then sshd (if it runs) re-executes itself to load them:
 * the listening socket stays, so SSH is never down. */
static int
new_host_keys(void)
{
	static const char *const types[] = { "ed25519", "ecdsa" };
	char key[64], pub[72], pidtext[32];

	for (size_t i = 0; i < 2; i++) {
		snprintf(key, sizeof(key), "/etc/ssh/ssh_host_%s_key", types[i]);
		snprintf(pub, sizeof(pub), "%s.pub", key);
		unlink(key);
		unlink(pub);
		char *argv[] = { "ssh-keygen", "-q", "-t", (char *)types[i], "-N",
			"", "-f", key, NULL };
		if (run(argv) < 0)
			return -1;
	}
	if (read_small_file("/run/sshd.pid", pidtext, sizeof(pidtext)) == 0) {
		long pid = strtol(pidtext, NULL, 10);
		if (pid > 1)
			kill((pid_t)pid, SIGHUP);
	}
	return 0;
}

/* What each step is called in the reply when it fails. */
static const char *
apply(const struct identity *id)
{
	char text[64];

	if (feed_rng(id) < 0)
		return "seeding the kernel RNG";
	snprintf(text, sizeof(text), "%s\n", id->machine_id);
	if (write_file("/etc/machine-id", text, 0444) < 0)
		return "writing /etc/machine-id";
	if (sethostname(id->hostname, strlen(id->hostname)) < 0)
		return "setting the hostname";
	snprintf(text, sizeof(text), "%s\n", id->hostname);
	if (write_file("/etc/hostname", text, 0644) < 0)
		return "writing /etc/hostname";
	if (readdress(id) < 0)
		return "moving eth0 to its new MAC and address";
	if (new_host_keys() < 0)
		return "making new SSH host keys";
	return NULL;
}

static int
write_record(const char *path, const struct identity *id)
{
	char text[512];

	snprintf(text, sizeof(text), "hostname=%s\nmac=%s\naddress=%s\n"
	    "gateway=%s\nmachine_id=%s\nseed_bytes=%zu\n", id->hostname,
	    id->mac, id->address, id->gateway, id->machine_id, id->seed_len);
	return write_file(path, text, 0644);
}

void
identity_route(struct agent_request *rq)
{
	struct identity id;
	const char *bad = parse(rq->body, &id);
	const char *failed;
	char body[160];

	if (bad != NULL) {
		agent_reply_error(rq, 400, bad);
		return;
	}
	if (!rq->cfg->in_guest && rq->cfg->identity_file == NULL) {
		agent_reply_error(rq, 403, "not in a guest: the host's identity "
		    "is not the agent's to change");
		return;
	}
	if (rq->cfg->in_guest)
		failed = apply(&id);
	else
		failed = write_record(rq->cfg->identity_file, &id) < 0 ?
		    "writing --identity-file" : NULL;
	if (failed != NULL) {
		char msg[128];
		snprintf(msg, sizeof(msg), "%s failed: %s", failed, strerror(errno));
		agent_log("identity: %s", msg);
		agent_reply_error(rq, 500, msg);
		return;
	}
	agent_log("identity: now %s (%s, %s)", id.hostname, id.address, id.mac);
	int n = snprintf(body, sizeof(body), "{\"hostname\":\"%s\","
	    "\"address\":\"%s\"}", id.hostname, id.address);
	agent_reply(rq, 200, body, (size_t)n);
}
