/* snapfile.c - the two files of a snapshot, in the double's own format.
 *
 * The state file is text, laid out like Firecracker's (magic, format
 * version, state, CRC64 of all that) so that it fails the way
 * Firecracker's does when it is cut short or edited:
 *
 *   BANGER-FAKE-FC-SNAPSHOT x86_64
 *   version 1.0.0 firecracker 1.16.1
 *   {"snapshot_id": ..., "machine-config": ..., "drives": ..., ...}
 *   crc64 0123456789abcdef
 *
 * The CRC (CRC-64/XZ) covers every byte before its line.  A load accepts
 * format versions of the same major and a minor no newer than ours, as
 * Firecracker does.
 *
 * The memory file is the guest's memory: mem_size_mib MiB, sparse, its
 * first page a header naming the snapshot it belongs to, so a load can
 * tell a memory file of another snapshot.  Firecracker itself would map
 * such a file without a word; the double is stricter on purpose.
 *
 * Errors come back in Firecracker's words where it has them, as the part
 * of the message after "Create snapshot error: " or "Failed to restore
 * from snapshot: ".
 */
#include "fake.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC "BANGER-FAKE-FC-SNAPSHOT x86_64"
#define STATE_MAJOR 1
#define STATE_MINOR 0
#define STATE_VERSION "1.0.0"
#define CRC_LINE_LEN 23		/* "crc64 " 16 hex digits "\n" */
#define STATE_MAX (16u << 20)	/* a state file is small; refuse giants */
#define MEM_MAGIC "BANGER-FAKE-FC-MEMORY 1"
#define MEM_HEADER 4096u	/* the guest's first page */
#define MIB (1024u * 1024u)

/* CRC-64/XZ (ECMA-182, reflected). */
static uint64_t
crc64(const char *p, size_t n)
{
	uint64_t c = ~(uint64_t)0;

	while (n--) {
		c ^= (unsigned char)*p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xC96C5795D7870F42ull & (0 - (c & 1)));
	}
	return ~c;
}

static void
io_fail(char *err, size_t cap, const char *what, const char *file, int e)
{
	char s[128];

	io_err_str(s, sizeof(s), e);
	snprintf(err, cap, "Cannot perform %s on the %s backing file: %s", what,
	    file, s);
}

/* Create or truncate path and write all of buf: 0 or -1 with errno. */
static int
write_file(const char *path, const char *buf, size_t len, const char **what)
{
	int fd, e;

	*what = "open";
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0)
		return -1;
	*what = "write";
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto fail;
		buf += w;
		len -= (size_t)w;
	}
	*what = "sync_all";
	if (fsync(fd) < 0)
		goto fail;
	close(fd);
	return 0;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int
snapfile_write_state(const char *path, json_t *state, char *err, size_t cap)
{
	char *json = json_dumps(state, JSON_COMPACT), *text = NULL, crc[32];
	const char *what;
	size_t len = 0;
	int rc;
	FILE *f;

	if (json == NULL || (f = open_memstream(&text, &len)) == NULL)
		abort();
	fprintf(f, "%s\nversion %s firecracker %s\n%s\n", STATE_MAGIC,
	    STATE_VERSION, FC_VERSION, json);
	fflush(f);
	snprintf(crc, sizeof(crc), "crc64 %016" PRIx64 "\n", crc64(text, len));
	fputs(crc, f);
	fclose(f);
	free(json);
	if ((rc = write_file(path, text, len, &what)) < 0 &&
	    strcmp(what, "write") == 0)
		snprintf(err, cap, "Cannot serialize the microVM state: An IO error "
		    "occurred: %d", errno);
	else if (rc < 0)
		io_fail(err, cap, what, "snapshot", errno);
	free(text);
	return rc;
}

int
snapfile_write_memory(const char *path, const struct snapmem *m, char *err,
    size_t cap)
{
	char head[MEM_HEADER] = { 0 }, s[128];
	int fd, n;

	n = snprintf(head, sizeof(head), "%s\nsnapshot %s\ntype %s\n"
	    "mem_size_mib %" JSON_INTEGER_FORMAT "\nguest_boot_id %s\n", MEM_MAGIC,
	    m->id, m->type, m->mem_mib, m->boot_id);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) {
		io_fail(err, cap, "open", "memory", errno);
		return -1;
	}
	/* Pages the guest never wrote stay holes, as in a real dump of a
	 * mostly idle guest (a diff has holes wherever pages were clean). */
	if (ftruncate(fd, (off_t)m->mem_mib * MIB) < 0) {
		io_fail(err, cap, "set_length", "memory", errno);
		goto fail;
	}
	if (pwrite(fd, head, (size_t)n, 0) != n) {
		io_err_str(s, sizeof(s), errno ? errno : EIO);
		snprintf(err, cap, "Cannot write memory file: %s", s);
		goto fail;
	}
	if (fsync(fd) < 0) {
		io_fail(err, cap, "sync_all", "memory", errno);
		goto fail;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

/* The whole file, at most STATE_MAX bytes: NULL with errno. */
static char *
slurp(const char *path, size_t *ret_len)
{
	struct stat st;
	char *buf;
	ssize_t r;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size > STATE_MAX) {
		e = st.st_size > STATE_MAX ? EFBIG : errno;
		close(fd);
		errno = e;
		return NULL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		abort();
	while ((r = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)r;
	e = errno;
	close(fd);
	if (r < 0) {
		free(buf);
		errno = e;
		return NULL;
	}
	buf[len] = '\0';
	*ret_len = len;
	return buf;
}

/* "version M.m.p firecracker X": -1 unless we can read format M.m. */
static int
check_version(const char *line, char *got, size_t cap)
{
	unsigned major, minor, patch;

	if (sscanf(line, "version %u.%u.%u ", &major, &minor, &patch) != 3) {
		snprintf(got, cap, "%.*s", (int)strcspn(line, "\n"), line);
		return -1;
	}
	snprintf(got, cap, "%u.%u.%u", major, minor, patch);
	return major == STATE_MAJOR && minor <= STATE_MINOR ? 0 : -1;
}

/* The members a load reads, with the types it reads them as. */
static const char *
state_missing(json_t *st)
{
	json_t *m = json_object_get(st, "machine-config");

	if (!json_is_string(json_object_get(st, "snapshot_id")))
		return "snapshot_id";
	if (!json_is_object(m))
		return "machine-config";
	if (!json_is_integer(json_object_get(m, "vcpu_count")))
		return "vcpu_count";
	if (!json_is_integer(json_object_get(m, "mem_size_mib")))
		return "mem_size_mib";
	if (!json_is_array(json_object_get(st, "drives")))
		return "drives";
	if (!json_is_array(json_object_get(st, "network-interfaces")))
		return "network-interfaces";
	if (!json_is_object(json_object_get(st, "guest")))
		return "guest";
	return NULL;
}

/* Firecracker's order: size, CRC, magic, version, then the state. */
static json_t *
parse_state(const char *buf, size_t len, char *err, size_t cap)
{
	const char *trailer, *line2, *json, *missing;
	uint64_t stored = 0, computed;
	char got[64], *end = NULL;
	json_error_t je;
	json_t *st;

	if (len < CRC_LINE_LEN) {
		snprintf(err, cap, "Snapshot file is smaller than CRC length.");
		return NULL;
	}
	trailer = buf + len - CRC_LINE_LEN;
	computed = crc64(buf, len - CRC_LINE_LEN);
	if (strncmp(trailer, "crc64 ", 6) == 0)
		stored = strtoull(trailer + 6, &end, 16);
	if (strncmp(trailer, "crc64 ", 6) != 0 || end != buf + len - 1 ||
	    *end != '\n' || stored != computed) {
		snprintf(err, cap, "CRC64 validation failed: %" PRIu64, computed);
		return NULL;
	}
	line2 = strchr(buf, '\n');
	if (line2 == NULL || (size_t)(line2 - buf) != strlen(STATE_MAGIC) ||
	    strncmp(buf, STATE_MAGIC, strlen(STATE_MAGIC)) != 0) {
		snprintf(err, cap, "Magic value does not match arch: %.*s",
		    (int)(line2 && line2 - buf < 64 ? line2 - buf : 64), buf);
		return NULL;
	}
	line2++;
	if (check_version(line2, got, sizeof(got)) < 0) {
		snprintf(err, cap, "Invalid data version: %s", got);
		return NULL;
	}
	json = strchr(line2, '\n');
	json = json ? json + 1 : trailer;
	st = json_loadb(json, (size_t)(trailer - json), 0, &je);
	if (st == NULL) {
		snprintf(err, cap, "An error occured with serialization/"
		    "deserialization: %s", je.text);
		return NULL;
	}
	if ((missing = state_missing(st)) != NULL) {
		snprintf(err, cap, "An error occured with serialization/"
		    "deserialization: missing field `%s`", missing);
		json_decref(st);
		return NULL;
	}
	return st;
}

json_t *
snapfile_read_state(const char *path, char *err, size_t cap)
{
	char inner[1024], e[128];
	size_t len = 0;
	char *buf = slurp(path, &len);
	json_t *st;

	if (buf == NULL) {
		io_err_str(e, sizeof(e), errno);
		snprintf(err, cap, "Failed to get snapshot state from file: Failed to "
		    "open snapshot file: %s", e);
		return NULL;
	}
	if ((st = parse_state(buf, len, inner, sizeof(inner))) == NULL)
		snprintf(err, cap, "Failed to get snapshot state from file: Failed to "
		    "load snapshot state from file: %s", inner);
	free(buf);
	return st;
}

/* The value of "key value" in the header, or "". */
static void
header_value(const char *head, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);

	out[0] = '\0';
	for (const char *p = head; p != NULL && *p; ) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			snprintf(out, cap, "%.*s", (int)strcspn(p + kl + 1, "\n"),
			    p + kl + 1);
			return;
		}
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
}

/* Is this the memory of the snapshot want describes: the words, or NULL. */
static const char *
memory_mismatch(int fd, const struct snapmem *want, char *buf, size_t cap)
{
	char head[MEM_HEADER + 1] = { 0 }, id[80];
	struct stat st;
	off_t size = (off_t)want->mem_mib * MIB;

	if (fstat(fd, &st) < 0)
		st.st_size = -1;
	if (st.st_size != size) {
		snprintf(buf, cap, "the memory file holds %jd bytes, the snapshot's "
		    "guest has %jd (%" JSON_INTEGER_FORMAT " MiB)",
		    (intmax_t)st.st_size, (intmax_t)size, want->mem_mib);
		return buf;
	}
	if (pread(fd, head, MEM_HEADER, 0) < (ssize_t)strlen(MEM_MAGIC) ||
	    strncmp(head, MEM_MAGIC "\n", strlen(MEM_MAGIC) + 1) != 0)
		return "the memory file was not written by a snapshot of the banger "
		    "Firecracker test double";
	header_value(head, "snapshot", id, sizeof(id));
	if (strcmp(id, want->id) != 0) {
		snprintf(buf, cap, "the memory file belongs to snapshot %s, the state "
		    "file to snapshot %s", id, want->id);
		return buf;
	}
	return NULL;
}

int
snapfile_check_memory(const char *path, const struct snapmem *want, char *err,
    size_t cap)
{
	char e[256];
	const char *why;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		io_err_str(e, sizeof(e), errno);
		snprintf(err, cap, "Failed to load guest memory: Error creating guest "
		    "memory from file: Failed to load guest memory: %s", e);
		return -1;
	}
	why = memory_mismatch(fd, want, e, sizeof(e));
	close(fd);
	if (why == NULL)
		return 0;
	snprintf(err, cap, "Failed to load guest memory: Error creating guest "
	    "memory from file: Failed to restore guest memory: %s (banger test "
	    "double)", why);
	return -1;
}
