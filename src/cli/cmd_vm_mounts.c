/* cmd_vm_mounts.c - shared folders on the command line: --mount
 * HOST:GUEST[:ro] (and, with vm set, --no-mounts) as the API's "mounts",
 * and their text in vm show and vm set. */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mountspec.h"

/* HOST as bangerd should see it: absolute, from the user's directory (it
 * runs on the same host).  A path that does not resolve is sent as it is
 * made absolute, for bangerd to say what is wrong with it. */
static void
host_absolute(const char *host, char *out, size_t len)
{
	char cwd[PATH_MAX];

	if (realpath(host, out) != NULL && strlen(out) < len)
		return;
	if (host[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		snprintf(out, len, "%s", host);
	else
		snprintf(out, len, "%s/%s", cwd, host);
}

int
mounts_body(const struct args *a, bool set, json_t *body)
{
	const char *const *v;
	int n = args_list(a, "--mount", &v);
	bool none = set && args_flag(a, "--no-mounts");
	char buf[160];

	if (n == 0 && !none)
		return 0;
	if (n > 0 && none)
		return usage_error(a->cmd, "--mount and --no-mounts go one at a "
		    "time");
	json_t *arr = json_array();
	for (int i = 0; i < n; i++) {
		struct vm_mount m;
		char spec[PATH_MAX + MOUNT_GUEST_MAX + 8], abs[PATH_MAX];
		const char *c = strchr(v[i], ':');
		const char *why;

		/* A relative HOST is made absolute before the syntax check. */
		if (c != NULL && v[i][0] != '/') {
			char host[PATH_MAX];
			snprintf(host, sizeof(host), "%.*s", (int)(c - v[i]), v[i]);
			host_absolute(host, abs, sizeof(abs));
			snprintf(spec, sizeof(spec), "%s%s", abs, c);
		} else {
			snprintf(spec, sizeof(spec), "%s", v[i]);
		}
		if (mount_parse(spec, &m, &why) < 0) {
			json_decref(arr);
			return usage_error(a->cmd, "--mount %s: %s",
			    out_clean(v[i], buf, sizeof(buf)), why);
		}
		json_array_append_new(arr, json_pack("{s:s, s:s, s:b}", "host",
		    m.host, "guest", m.guest, "readonly", m.readonly));
	}
	json_object_set_new(body, WIRE_MOUNTS, arr);
	return 0;
}

const char *
mounts_text(json_t *spec, char *buf, size_t len)
{
	json_t *arr = jobj(spec, WIRE_MOUNTS), *m;
	size_t i, off = 0;

	buf[0] = '\0';
	json_array_foreach(arr, i, m) {
		char h[MOUNT_HOST_MAX], g[MOUNT_GUEST_MAX];
		const char *host = jstr(m, "host"), *guest = jstr(m, "guest");
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0,
		    "%s%s -> %s%s", i ? ", " : "",
		    out_clean(host ? host : "?", h, sizeof(h)),
		    out_clean(guest ? guest : "?", g, sizeof(g)),
		    json_is_true(jobj(m, "readonly")) ? " (ro)" : "");
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
	return buf;
}
