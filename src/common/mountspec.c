/* mountspec.c - shared folders' syntax, shared by bangerd and the CLI. */
#include "common/mountspec.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a share would hide or shadow what the guest runs on: not at these
 * paths ... */
static const char *const system_dirs[] = { "/bin", "/boot", "/etc", "/lib",
	"/lib32", "/lib64", "/libx32", "/root", "/sbin", "/tmp", "/usr",
	"/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/var" };
/* ... and nowhere inside these. */
static const char *const system_trees[] = { "/dev", "/proc", "/run", "/sys",
	"/usr/local/lib/banger" };

const char *
mount_host_why(const char *host)
{
	if (host == NULL || host[0] != '/')
		return "the host path must be absolute";
	if (strlen(host) >= MOUNT_HOST_MAX)
		return "the host path is too long (at most 511 bytes)";
	for (const unsigned char *p = (const unsigned char *)host; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "the host path has a control character";
	return NULL;
}

bool
mount_guest_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (strcmp(b, "/") == 0)
		return true;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

const char *
mount_guest_why(const char *guest)
{
	size_t n;

	if (guest == NULL || guest[0] != '/')
		return "the guest path must be absolute";
	n = strlen(guest);
	if (n >= MOUNT_GUEST_MAX)
		return "the guest path is too long (at most 128 bytes)";
	if (strcmp(guest, "/") == 0)
		return "the guest path cannot be /";
	if (guest[n - 1] == '/')
		return "the guest path ends with /";
	if (strspn(guest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._/-") != n)
		return "the guest path may hold only letters, digits and . _ / -";
	for (const char *c = guest; *c; ) {
		const char *e = strchr(c + 1, '/');
		size_t len = e != NULL ? (size_t)(e - c - 1) : strlen(c + 1);
		if (len == 0 || (len == 1 && c[1] == '.') ||
		    (len == 2 && c[1] == '.' && c[2] == '.'))
			return "the guest path has an empty, . or .. component";
		if (e == NULL)
			break;
		c = e;
	}
	for (size_t i = 0; i < sizeof(system_dirs) / sizeof(*system_dirs); i++)
		if (strcmp(guest, system_dirs[i]) == 0)
			return "the guest path is a system directory of the guest";
	for (size_t i = 0; i < sizeof(system_trees) / sizeof(*system_trees); i++)
		if (mount_guest_within(guest, system_trees[i]))
			return "the guest path is in a system tree of the guest "
			    "(/dev, /proc, /run, /sys)";
	return NULL;
}

int
mounts_check(const struct vm_mount *m, int n, int *index, char *buf,
    size_t len, const char **why)
{
	for (int i = 0; i < n; i++) {
		*index = i;
		if ((*why = mount_host_why(m[i].host)) != NULL ||
		    (*why = mount_guest_why(m[i].guest)) != NULL)
			return -1;
		for (int j = 0; j < i; j++) {
			if (mount_guest_within(m[i].guest, m[j].guest) ||
			    mount_guest_within(m[j].guest, m[i].guest)) {
				snprintf(buf, len, "the guest paths %s and %s "
				    "overlap", m[j].guest, m[i].guest);
				*why = buf;
				return -1;
			}
		}
	}
	return 0;
}

int
mount_parse(const char *s, struct vm_mount *ret, const char **why)
{
	const char *c = strrchr(s, ':');
	size_t hn;

	memset(ret, 0, sizeof(*ret));
	if (c == NULL) {
		*why = "want HOST:GUEST[:ro]";
		return -1;
	}
	if (strcmp(c + 1, "ro") == 0 || strcmp(c + 1, "rw") == 0) {
		ret->readonly = c[1] == 'r' && c[2] == 'o';
		const char *g = c;
		for (c = g - 1; c >= s && *c != ':'; c--)
			;
		if (c < s) {
			*why = "want HOST:GUEST[:ro]";
			return -1;
		}
		if ((size_t)(g - c - 1) >= sizeof(ret->guest)) {
			*why = "the guest path is too long (at most 128 bytes)";
			return -1;
		}
		memcpy(ret->guest, c + 1, (size_t)(g - c - 1));
	} else {
		if (strlen(c + 1) >= sizeof(ret->guest)) {
			*why = "the guest path is too long (at most 128 bytes)";
			return -1;
		}
		snprintf(ret->guest, sizeof(ret->guest), "%s", c + 1);
	}
	hn = (size_t)(c - s);
	if (hn == 0 || hn >= sizeof(ret->host)) {
		*why = hn == 0 ? "want HOST:GUEST[:ro]" :
		    "the host path is too long (at most 511 bytes)";
		return -1;
	}
	memcpy(ret->host, s, hn);
	if ((*why = mount_host_why(ret->host)) != NULL ||
	    (*why = mount_guest_why(ret->guest)) != NULL)
		return -1;
	return 0;
}

char *
mounts_encode(const struct vm_mount *m, int n)
{
	json_t *a;
	char *s;

	if (n <= 0)
		return strdup("");
	a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:b}", "host",
		    m[i].host, "guest", m[i].guest, "readonly", m[i].readonly));
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

int
mounts_decode(const char *s, struct vm_mount *ret, int max)
{
	json_t *a, *o;
	size_t i;
	int n = 0;

	if (s == NULL || *s == '\0')
		return 0;
	a = json_loads(s, 0, NULL);
	json_array_foreach(a, i, o) {
		const char *h = json_string_value(json_object_get(o, "host"));
		const char *g = json_string_value(json_object_get(o, "guest"));
		if (n >= max || h == NULL || g == NULL ||
		    mount_host_why(h) != NULL || mount_guest_why(g) != NULL)
			continue;
		snprintf(ret[n].host, sizeof(ret[n].host), "%s", h);
		snprintf(ret[n].guest, sizeof(ret[n].guest), "%s", g);
		ret[n].readonly = json_is_true(json_object_get(o, "readonly"));
		n++;
	}
	json_decref(a);
	return n;
}
