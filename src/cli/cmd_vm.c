/* cmd_vm.c - banger vm create|list|show|resume|set|health|console (start,
 * stop, restart and delete are in cmd_vm_bulk.c, ssh in cmd_vm_ssh.c). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/portspec.h"

/* --port SPEC... (and, with vm set, --no-ports) as the API's "ports";
 * 0, or the usage error's exit status. */
static int
ports_body(const struct args *a, bool set, json_t *body)
{
	const char *const *v;
	int n = args_list(a, "--port", &v);
	bool none = set && args_flag(a, "--no-ports");
	json_t *arr;
	char buf[128];

	if (n == 0 && !none)
		return 0;
	if (n > 0 && none)
		return usage_error(a->cmd, "--port and --no-ports go one at a "
		    "time");
	arr = json_array();
	for (int i = 0; i < n; i++) {
		struct vm_port p;
		const char *why;
		if (port_parse(v[i], strlen(v[i]), &p, &why) < 0) {
			json_decref(arr);
			return usage_error(a->cmd, "--port %s: %s",
			    out_clean(v[i], buf, sizeof(buf)), why);
		}
		json_array_append_new(arr, json_pack("{s:i, s:i, s:s}", "host",
		    p.host, "guest", p.guest, "address", p.addr));
	}
	json_object_set_new(body, WIRE_PORTS, arr);
	return 0;
}

/* --limit KEY=VALUE... (and, with vm set, --no-limits) as the API's
 * "limits"; bangerd checks the keys and values.  0, or the usage error's
 * exit status. */
static int
limits_body(const struct args *a, bool set, json_t *body)
{
	const char *const *v;
	int n = args_list(a, "--limit", &v);
	bool none = set && args_flag(a, "--no-limits");
	char buf[128];

	if (n == 0 && !none)
		return 0;
	if (n > 0 && none)
		return usage_error(a->cmd, "--limit and --no-limits go one at a "
		    "time");
	json_t *o = json_object();
	for (int i = 0; i < n; i++) {
		const char *eq = strchr(v[i], '=');
		char *end = NULL;
		double d = eq != NULL ? strtod(eq + 1, &end) : 0;
		if (eq == NULL || eq == v[i] || end == eq + 1 || *end != '\0') {
			json_decref(o);
			return usage_error(a->cmd, "--limit %s: expected KEY=NUMBER",
			    out_clean(v[i], buf, sizeof(buf)));
		}
		char key[32];
		snprintf(key, sizeof(key), "%.*s", (int)(eq - v[i]), v[i]);
		json_object_set_new(o, key, strcmp(key, "cpus") == 0 ?
		    json_real(d) : json_integer((json_int_t)d));
	}
	json_object_set_new(body, WIRE_LIMITS, o);
	return 0;
}

/* "cpus 1.5, memory_max_mib 2048", or "none". */
static const char *
limits_text(json_t *spec, char *buf, size_t len)
{
	json_t *o = jobj(spec, WIRE_LIMITS), *v;
	const char *k;
	size_t off = 0;

	buf[0] = '\0';
	json_object_foreach(o, k, v) {
		char c[40];
		if (json_is_real(v))
			snprintf(c, sizeof(c), "%g", json_real_value(v));
		else
			snprintf(c, sizeof(c), "%lld",
			    (long long)json_integer_value(v));
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0,
		    "%s%s %s", off ? ", " : "", k, c);
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
	return buf;
}

/* The spec fields given as flags (vm create, vm set): only those, as
 * bangerd owns the defaults. */
static void
spec_body(const struct args *a, json_t *body)
{
	int nat = args_pair(a, "--nat");
	long long v;

	if (args_int(a, "--vcpus", &v))
		json_object_set_new(body, WIRE_VCPUS, json_integer(v));
	if (args_int(a, "--memory", &v))
		json_object_set_new(body, WIRE_MEMORY_MIB, json_integer(v));
	if (args_int(a, "--disk", &v))
		json_object_set_new(body, WIRE_DISK_GIB, json_integer(v));
	if (nat >= 0)
		json_object_set_new(body, WIRE_NAT, json_boolean(nat));
}

int
cmd_vm_create(struct cli *cli, const struct args *a)
{
	const char *name = args_str(a, "--name"), *image = args_str(a, "--image");
	struct op_opts oo = { 0 };
	json_t *body, *op = NULL;
	char buf[128], *label;
	int rc;

	body = json_object();
	json_object_set_new(body, WIRE_NAME, json_string(name));
	if (image != NULL)
		json_object_set_new(body, WIRE_IMAGE, json_string(image));
	spec_body(a, body);
	if ((rc = ports_body(a, false, body)) != 0 ||
	    (rc = limits_body(a, false, body)) != 0 ||
	    (rc = mounts_body(a, false, body)) != 0) {
		json_decref(body);
		return rc;
	}

	label = xasprintf("creating vm '%s'", out_clean(name, buf, sizeof(buf)));
	oo.label = label;
	oo.no_wait = args_flag(a, "--no-wait");
	oo.cancel = args_flag(a, "--cancel");
	rc = op_run(cli, "POST", "/v1/vms", body, &oo, &op);
	if (rc == CLI_EXIT_OK && op != NULL && cli_chatty(cli)) {
		json_t *vm = jobj(op, WIRE_RESULT);
		const char *state = jstr(jobj(vm, WIRE_STATUS), WIRE_STATE);
		char sbuf[64];

		printf("vm '%s' created", out_name(vm, name, buf, sizeof(buf)));
		if (state != NULL)
			printf(" (%s)", out_clean(state, sbuf, sizeof(sbuf)));
		putchar('\n');
	}
	if (op != NULL)
		json_decref(op);
	free(label);
	json_decref(body);
	return rc;
}

static void
size_cell(json_t *v, const char *unit, char *buf, size_t len)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%lld%s", (long long)json_integer_value(v), unit);
	else
		jtext(v, buf, len);
}

/* A cell of the vm list's row for vm. */
static void
vm_cell(json_t *vm, int col, char *buf, size_t len)
{
	json_t *spec = jobj(vm, WIRE_SPEC), *st = jobj(vm, WIRE_STATUS);

	switch (col) {
	case 0: jtext(jobj(vm, WIRE_NAME), buf, len); break;
	case 1: jtext(jobj(st, WIRE_STATE), buf, len); break;
	case 2: jtext(jobj(st, "ip"), buf, len); break;
	case 3: jtext(jobj(spec, WIRE_VCPUS), buf, len); break;
	case 4: size_cell(jobj(spec, WIRE_MEMORY_MIB), "MiB", buf, len); break;
	case 5: size_cell(jobj(spec, WIRE_DISK_GIB), "GiB", buf, len); break;
	case 6: jtext(jobj(spec, WIRE_NAT), buf, len); break;
	case 7: jtext(jobj(spec, WIRE_IMAGE), buf, len); break;
	default: jtext(jobj(st, "health"), buf, len); break;
	}
}

int
cmd_vm_list(struct cli *cli, const struct args *a)
{
	static const char *const headers[] = { "NAME", "STATE", "IP", "VCPUS",
	    "MEMORY", "DISK", "NAT", "IMAGE", "HEALTH" };
	const struct list_spec ls = { "/v1/vms", WIRE_VMS, WIRE_NAME, 9, headers,
		NULL, vm_cell };

	(void)a;
	return out_list(cli, &ls);
}

/* "127.0.0.1:8080->80, [::1]:9000->90", or "none". */
static const char *
ports_text(json_t *spec, char *buf, size_t len)
{
	json_t *arr = jobj(spec, WIRE_PORTS), *p;
	size_t i, off = 0;

	buf[0] = '\0';
	json_array_foreach(arr, i, p) {
		const char *addr = jstr(p, "address");
		bool v6 = addr != NULL && strchr(addr, ':') != NULL;
		char a[64];
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0,
		    "%s%s%s%s:%lld->%lld", i ? ", " : "", v6 ? "[" : "",
		    out_clean(addr ? addr : "?", a, sizeof(a)), v6 ? "]" : "",
		    (long long)json_integer_value(jobj(p, "host")),
		    (long long)json_integer_value(jobj(p, "guest")));
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
	return buf;
}

static void
print_vm(json_t *vm)
{
	json_t *spec = jobj(vm, WIRE_SPEC), *st = jobj(vm, WIRE_STATUS);
	static const char *const spec_keys[] = { "image", "vcpus", "memory_mib",
	    "disk_gib", "nat" };
	static const char *const status_keys[] = { "ip", "dns_name", "vmm", "pid",
	    "health", "created_at", "started_at", "last_error" };
	char buf[2048];

	out_kv("name", jtext(jobj(vm, WIRE_NAME), buf, sizeof(buf)));
	out_kv("id", jtext(jobj(vm, WIRE_ID), buf, sizeof(buf)));
	out_kv("state", jtext(jobj(st, WIRE_STATE), buf, sizeof(buf)));
	for (size_t i = 0; i < sizeof(spec_keys) / sizeof(spec_keys[0]); i++)
		out_kv(spec_keys[i], jtext(jobj(spec, spec_keys[i]), buf,
		    sizeof(buf)));
	for (size_t i = 0; i < sizeof(status_keys) / sizeof(status_keys[0]); i++)
		out_kv(status_keys[i], jtext(jobj(st, status_keys[i]), buf,
		    sizeof(buf)));
	out_kv("ports", ports_text(spec, buf, sizeof(buf)));
	out_kv("limits", limits_text(spec, buf, sizeof(buf)));
	char mbuf[8192];
	out_kv("mounts", mounts_text(spec, mbuf, sizeof(mbuf)));
	if (json_is_string(jobj(st, "paused_reason")))
		out_kv("paused_reason", jtext(jobj(st, "paused_reason"), buf,
		    sizeof(buf)));
	/* "clean (agent, 1.2 s)" or "forced after 10 s (kill)". */
	json_t *ls = jobj(st, "last_stop");
	if (json_is_object(ls)) {
		char sum[64], method[32];
		long long ms = json_integer_value(jobj(ls, "duration_ms"));
		jtext(jobj(ls, "summary"), sum, sizeof(sum));
		jtext(jobj(ls, "method"), method, sizeof(method));
		if (strncmp(sum, "forced", 6) == 0)
			snprintf(buf, sizeof(buf), "%s (%s)", sum, method);
		else
			snprintf(buf, sizeof(buf), "%s (%s, %lld.%lld s)", sum,
			    method, ms / 1000, (ms % 1000) / 100);
		out_kv("last_stop", buf);
	}
}

/* Bytes as "12.3 MiB". */
static const char *
mib_text(json_t *v, char *buf, size_t len)
{
	snprintf(buf, len, "%.1f MiB", (double)json_integer_value(v) / 1048576);
	return buf;
}

/* A running VM's usage (GET .../usage) after its spec and status. */
static void
print_usage(struct cli *cli, const char *name)
{
	struct reply r = { 0 };
	char *path = api_path("/v1/vms/", name, "/usage");
	char buf[128], a[48], b[48];

	if (api_call_ex(cli, "GET", path, NULL, API_QUIET, API_TIMEOUT_S,
	    &r) == CLI_EXIT_OK && json_is_true(jobj(r.json, "running"))) {
		json_t *disk = jobj(r.json, "disk"), *net = jobj(r.json, "network");
		snprintf(buf, sizeof(buf), "%.2f s",
		    json_number_value(jobj(r.json, "cpu_seconds")));
		out_kv("cpu", buf);
		out_kv("memory_used", mib_text(jobj(r.json, "memory_bytes"), a,
		    sizeof(a)));
		snprintf(buf, sizeof(buf), "read %s, written %s",
		    mib_text(jobj(disk, "read_bytes"), a, sizeof(a)),
		    mib_text(jobj(disk, "write_bytes"), b, sizeof(b)));
		out_kv("disk_io", buf);
		snprintf(buf, sizeof(buf), "in %s, out %s",
		    mib_text(jobj(net, "to_guest_bytes"), a, sizeof(a)),
		    mib_text(jobj(net, "from_guest_bytes"), b, sizeof(b)));
		out_kv("network", buf);
	}
	reply_free(&r);
	free(path);
}

int
cmd_vm_show(struct cli *cli, const struct args *a)
{
	int rc = out_show(cli, "/v1/vms/", a->v[0], NULL, print_vm);

	if (rc == CLI_EXIT_OK && !cli->json)
		print_usage(cli, a->v[0]);
	return rc;
}

int
cmd_vm_set(struct cli *cli, const struct args *a)
{
	const struct command *cmd = a->cmd;
	long long v;
	bool sized = args_int(a, "--vcpus", &v) || args_int(a, "--memory", &v) ||
	    args_int(a, "--disk", &v);
	int nat = args_pair(a, "--nat"), n = a->n, rc;
	const char *const *pv;
	bool ported = args_list(a, "--port", &pv) > 0 ||
	    args_flag(a, "--no-ports");
	bool limited = args_list(a, "--limit", &pv) > 0 ||
	    args_flag(a, "--no-limits");
	bool mounted = args_list(a, "--mount", &pv) > 0 ||
	    args_flag(a, "--no-mounts");
	const char *name;
	struct reply r = { 0 };
	json_t *body;
	char *path;

	if (!sized && nat < 0 && !ported && !limited && !mounted)
		return usage_error(cmd, "nothing to change: give --vcpus, --memory, "
		    "--disk, --nat, --no-nat, --port, --no-ports, --limit, "
		    "--no-limits, --mount or --no-mounts");
	if (n > 1) {
		if (sized || nat < 0 || ported || limited || mounted)
			return usage_error(cmd, "several VMs at once take only --nat "
			    "or --no-nat");
		json_t *list = json_array(), *extra = json_object();
		struct op_opts oo = { 0 };

		for (int i = 0; i < n; i++)
			json_array_append_new(list, json_string(a->v[i]));
		json_object_set_new(extra, WIRE_NAT, json_boolean(nat));
		oo.label = nat ? "turning nat on" : "turning nat off";
		rc = vm_bulk(cli, "set", list, extra, &oo, nat ? "nat on" :
		    "nat off");
		json_decref(list);
		json_decref(extra);
		return rc;
	}
	name = a->v[0];
	body = json_object();
	spec_body(a, body);
	if ((rc = ports_body(a, true, body)) != 0 ||
	    (rc = limits_body(a, true, body)) != 0 ||
	    (rc = mounts_body(a, true, body)) != 0) {
		json_decref(body);
		return rc;
	}
	path = api_path("/v1/vms/", name, NULL);
	rc = out_call(cli, "PATCH", path, body, &r);
	if (rc == CLI_EXIT_OK && cli_chatty(cli)) {
		json_t *spec = jobj(r.json, WIRE_SPEC);
		char b[4][64], nbuf[128];

		printf("vm '%s' updated: vcpus %s, memory %s MiB, disk %s GiB, "
		    "nat %s\n", out_name(r.json, name, nbuf, sizeof(nbuf)),
		    jtext(jobj(spec, WIRE_VCPUS), b[0], sizeof(b[0])),
		    jtext(jobj(spec, WIRE_MEMORY_MIB), b[1], sizeof(b[1])),
		    jtext(jobj(spec, WIRE_DISK_GIB), b[2], sizeof(b[2])),
		    jtext(jobj(spec, WIRE_NAT), b[3], sizeof(b[3])));
		if (ported) {
			char pbuf[2048];
			printf("ports: %s\n", ports_text(spec, pbuf,
			    sizeof(pbuf)));
		}
		if (limited) {
			char lbuf[256];
			printf("limits: %s\n", limits_text(spec, lbuf,
			    sizeof(lbuf)));
		}
		if (mounted) {
			char mbuf[8192];
			printf("mounts: %s\n", mounts_text(spec, mbuf,
			    sizeof(mbuf)));
		}
	}
	reply_free(&r);
	json_decref(body);
	free(path);
	return rc;
}

static void
print_space(const char *key, json_t *o, const char *free_key,
    const char *what)
{
	json_t *fr = jobj(o, free_key), *total = jobj(o, "total_bytes");
	char a[32], b[32], line[128];

	if (!json_is_integer(fr) || !json_is_integer(total))
		return;
	out_bytes((unsigned long long)json_integer_value(fr), a, sizeof(a));
	out_bytes((unsigned long long)json_integer_value(total), b, sizeof(b));
	snprintf(line, sizeof(line), "%s %s of %s", a, what, b);
	out_kv(key, line);
}

static void
print_health(json_t *h)
{
	json_t *agent = jobj(h, "agent"), *latency = jobj(h, "latency_ms");
	json_t *uptime = jobj(agent, "uptime_s"), *load = jobj(agent, "load");
	json_t *wd = jobj(agent, "workdisk");
	char buf[512];

	out_kv("status", jtext(jobj(h, WIRE_STATUS), buf, sizeof(buf)));
	out_kv("reason", jtext(jobj(h, "reason"), buf, sizeof(buf)));
	if (json_is_string(jobj(h, "detail")))
		out_kv("detail", jtext(jobj(h, "detail"), buf, sizeof(buf)));
	out_kv("protocol", jtext(jobj(h, "protocol"), buf, sizeof(buf)));
	if (json_is_number(latency)) {
		snprintf(buf, sizeof(buf), "%.0f ms", json_number_value(latency));
		out_kv("latency", buf);
	} else {
		out_kv("latency", "-");
	}
	out_kv("checked_at", jtext(jobj(h, "checked_at"), buf, sizeof(buf)));
	if (!json_is_object(agent))
		return;
	out_kv("agent_version", jtext(jobj(agent, "agent_version"), buf,
	    sizeof(buf)));
	/* Readiness (agents of protocol 2): each check, "ok" or why not. */
	json_t *checks = jobj(agent, "checks");
	if (json_is_object(checks) && json_object_size(checks) > 0) {
		const char *k;
		json_t *v;
		size_t len = 0;
		buf[0] = '\0';
		json_object_foreach(checks, k, v) {
			char d[160];
			if (len >= sizeof(buf))
				break;
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
			    "%s%s %s", len ? ", " : "", k,
			    json_is_true(jobj(v, WIRE_OK)) ? "ok" :
			    jtext(jobj(v, "detail"), d, sizeof(d)));
		}
		out_kv("ready", buf);
	}
	out_kv("hostname", jtext(jobj(agent, "hostname"), buf, sizeof(buf)));
	if (json_is_number(uptime)) {
		out_duration(json_number_value(uptime), buf, sizeof(buf));
		out_kv("uptime", buf);
	}
	if (json_is_array(load) && json_array_size(load) == 3) {
		snprintf(buf, sizeof(buf), "%.2f %.2f %.2f",
		    json_number_value(json_array_get(load, 0)),
		    json_number_value(json_array_get(load, 1)),
		    json_number_value(json_array_get(load, 2)));
		out_kv("load", buf);
	}
	print_space("memory", jobj(agent, "memory"), "available_bytes",
	    "available");
	print_space("rootfs", jobj(agent, WIRE_ROOTFS), "free_bytes", "free");
	if (json_is_object(wd)) {
		char layout[64], dev[128], at[256], space[96] = "";
		json_t *fr = jobj(wd, "free_bytes"), *total = jobj(wd, "total_bytes");

		jtext(jobj(wd, "layout"), layout, sizeof(layout));
		if (json_is_integer(fr) && json_is_integer(total)) {
			char a[32], b[32];

			out_bytes((unsigned long long)json_integer_value(fr), a,
			    sizeof(a));
			out_bytes((unsigned long long)json_integer_value(total), b,
			    sizeof(b));
			snprintf(space, sizeof(space), ", %s free of %s", a, b);
		}
		if (json_is_true(jobj(wd, "mounted")))
			snprintf(buf, sizeof(buf), "layout %s, %s on %s%s", layout,
			    jtext(jobj(wd, "device"), dev, sizeof(dev)),
			    jtext(jobj(wd, "path"), at, sizeof(at)), space);
		else
			snprintf(buf, sizeof(buf), "layout %s, not mounted", layout);
		out_kv("workdisk", buf);
	}
}

int
cmd_vm_health(struct cli *cli, const struct args *a)
{
	return out_show(cli, "/v1/vms/", a->v[0], "/health", print_health);
}

int
cmd_vm_console(struct cli *cli, const struct args *a)
{
	struct reply r = { 0 };
	char *path, *suffix;
	long long tail;
	int rc;

	suffix = args_int(a, "--tail", &tail) ?
	    xasprintf("/console?tail=%lld", tail) : xstrdup("/console");
	path = api_path("/v1/vms/", a->v[0], suffix);
	/* text/plain: the serial log goes out byte for byte, --json or not. */
	rc = api_call_ex(cli, "GET", path, NULL, API_TEXT, API_TIMEOUT_S, &r);
	if (rc == CLI_EXIT_OK && r.len > 0) {
		fwrite(r.body, 1, r.len, stdout);
		fflush(stdout);
	}
	reply_free(&r);
	free(suffix);
	free(path);
	return rc;
}
