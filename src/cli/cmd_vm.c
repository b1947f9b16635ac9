/* cmd_vm.c - banger vm create|list|show|start|stop|restart|delete|set|
 * health|console|ssh. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static json_t *
vm_status(json_t *vm)
{
	return jobj(vm, "status");
}

static json_t *
vm_spec(json_t *vm)
{
	return jobj(vm, "spec");
}

/* The VM's own name when the reply has one, else what the user typed. */
static const char *
vm_name(json_t *vm, const char *fallback, char *buf, size_t len)
{
	const char *name = jstr(vm, "name");

	return out_clean(name ? name : fallback, buf, len);
}

/* The spec fields given as flags (vm create, vm set): only those, as
 * bangerd owns the defaults. */
static void
spec_body(const struct args *a, json_t *body)
{
	int nat = args_pair(a, "--nat");
	long long v;

	if (args_int(a, "--vcpus", &v))
		json_object_set_new(body, "vcpus", json_integer(v));
	if (args_int(a, "--memory", &v))
		json_object_set_new(body, "memory_mib", json_integer(v));
	if (args_int(a, "--disk", &v))
		json_object_set_new(body, "disk_gib", json_integer(v));
	if (nat >= 0)
		json_object_set_new(body, "nat", json_boolean(nat));
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
	json_object_set_new(body, "name", json_string(name));
	if (image != NULL)
		json_object_set_new(body, "image", json_string(image));
	spec_body(a, body);

	label = xasprintf("creating vm '%s'", out_clean(name, buf, sizeof(buf)));
	oo.label = label;
	oo.no_wait = args_flag(a, "--no-wait");
	oo.cancel = args_flag(a, "--cancel");
	rc = op_run(cli, "POST", "/v1/vms", body, &oo, &op);
	if (rc == CLI_EXIT_OK && op != NULL && cli_chatty(cli)) {
		json_t *vm = jobj(op, "result");
		const char *state = jstr(vm_status(vm), "state");
		char sbuf[64];

		printf("vm '%s' created", vm_name(vm, name, buf, sizeof(buf)));
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
	json_t *spec = vm_spec(vm), *st = vm_status(vm);

	switch (col) {
	case 0: jtext(jobj(vm, "name"), buf, len); break;
	case 1: jtext(jobj(st, "state"), buf, len); break;
	case 2: jtext(jobj(st, "ip"), buf, len); break;
	case 3: jtext(jobj(spec, "vcpus"), buf, len); break;
	case 4: size_cell(jobj(spec, "memory_mib"), "MiB", buf, len); break;
	case 5: size_cell(jobj(spec, "disk_gib"), "GiB", buf, len); break;
	case 6: jtext(jobj(spec, "nat"), buf, len); break;
	case 7: jtext(jobj(spec, "image"), buf, len); break;
	default: jtext(jobj(st, "health"), buf, len); break;
	}
}

int
cmd_vm_list(struct cli *cli, const struct args *a)
{
	static const char *const headers[] = { "NAME", "STATE", "IP", "VCPUS",
	    "MEMORY", "DISK", "NAT", "IMAGE", "HEALTH" };
	const struct list_spec ls = { "/v1/vms", "vms", "name", 9, headers,
		NULL, vm_cell };

	(void)a;
	return out_list(cli, &ls);
}

static void
print_vm(json_t *vm)
{
	json_t *spec = vm_spec(vm), *st = vm_status(vm);
	static const char *const spec_keys[] = { "image", "vcpus", "memory_mib",
	    "disk_gib", "nat" };
	static const char *const status_keys[] = { "ip", "dns_name", "vmm", "pid",
	    "health", "created_at", "started_at", "last_error" };
	char buf[2048];

	out_kv("name", jtext(jobj(vm, "name"), buf, sizeof(buf)));
	out_kv("id", jtext(jobj(vm, "id"), buf, sizeof(buf)));
	out_kv("state", jtext(jobj(st, "state"), buf, sizeof(buf)));
	for (size_t i = 0; i < sizeof(spec_keys) / sizeof(spec_keys[0]); i++)
		out_kv(spec_keys[i], jtext(jobj(spec, spec_keys[i]), buf,
		    sizeof(buf)));
	for (size_t i = 0; i < sizeof(status_keys) / sizeof(status_keys[0]); i++)
		out_kv(status_keys[i], jtext(jobj(st, status_keys[i]), buf,
		    sizeof(buf)));
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

/* GET one resource by name; prints raw with --json, else calls 'show'. */
static int
get_and_show(struct cli *cli, const char *prefix, const char *name,
    const char *suffix, void (*show)(json_t *))
{
	struct reply r = { 0 };
	char *path = api_path(prefix, name, suffix);
	int rc = api_call(cli, "GET", path, NULL, &r);

	if (rc == CLI_EXIT_OK) {
		if (cli->json)
			out_raw(&r);
		else
			show(r.json);
	}
	reply_free(&r);
	free(path);
	return rc;
}

int
cmd_vm_show(struct cli *cli, const struct args *a)
{
	return get_and_show(cli, "/v1/vms/", a->v[0], NULL, print_vm);
}

/* POST /v1/vms/NAME/resume: a VM the VMM paused (a full host disk). */
int
cmd_vm_resume(struct cli *cli, const struct args *a)
{
	const char *name = a->v[0];
	struct reply r = { 0 };
	int rc;

	char *path = api_path("/v1/vms/", name, "/resume");
	rc = api_call(cli, "POST", path, NULL, &r);
	free(path);
	if (rc == CLI_EXIT_OK) {
		if (cli->json)
			out_raw(&r);
		else if (!cli->quiet)
			printf("%s: running\n", name);
	}
	reply_free(&r);
	return rc;
}

/* POST /v1/vms/actions: 'action' on every VM in 'names' (a JSON array,
 * borrowed) at once, plus the fields in 'extra' (borrowed, may be NULL).
 * A line per VM: "web: stopped" on stdout, "db: error: CODE: MESSAGE" on
 * stderr; then, when any failed, a count, and the exit status of the first
 * VM that failed. */
static int
vm_bulk(struct cli *cli, const char *action, json_t *names, json_t *extra,
    const struct op_opts *oo, const char *done)
{
	json_t *body = json_object(), *op = NULL, *results, *res;
	int rc, failed = 0;
	size_t i;

	json_object_set_new(body, "action", json_string(action));
	json_object_set(body, "names", names);
	if (extra != NULL)
		json_object_update(body, extra);
	rc = op_run(cli, "POST", "/v1/vms/actions", body, oo, &op);
	if (rc != CLI_EXIT_OK || op == NULL)
		goto out;
	results = jobj(jobj(op, "result"), "results");
	json_array_foreach(results, i, res) {
		json_t *e = jobj(res, "error");
		const char *nm = jstr(res, "name"), *code = jstr(e, "code");
		const char *msg = jstr(e, "message");
		char nb[128], cb[64], mb[512];

		out_clean(nm ? nm : "?", nb, sizeof(nb));
		if (json_is_true(jobj(res, "ok"))) {
			if (cli_chatty(cli))
				printf("%s: %s\n", nb, done);
			continue;
		}
		/* Keep the lines in order when both streams are a terminal. */
		fflush(stdout);
		fprintf(stderr, "%s: error: %s: %s\n", nb,
		    out_clean(code ? code : "unknown", cb, sizeof(cb)),
		    out_clean(msg ? msg : "failed", mb, sizeof(mb)));
		if (failed++ == 0)
			rc = api_exit_status(code,
			    (long)json_integer_value(jobj(e, "status")));
	}
	if (failed > 0) {
		fflush(stdout);
		fprintf(stderr, "banger: %d of %zu vms failed\n", failed,
		    json_array_size(results));
	}
out:
	if (op != NULL)
		json_decref(op);
	json_decref(body);
	return rc;
}

/* Every VM's name, for --all; NULL after printing why. */
static json_t *
all_vm_names(struct cli *cli, int *ret_exit)
{
	struct reply r = { 0 };
	json_t *names = NULL, *vm;
	size_t i;

	*ret_exit = api_call(cli, "GET", "/v1/vms", NULL, &r);
	if (*ret_exit != CLI_EXIT_OK)
		goto out;
	if (!json_is_array(jobj(r.json, "vms"))) {
		fputs("banger: bangerd's VM list has no \"vms\" array\n", stderr);
		*ret_exit = CLI_EXIT_SERVER;
		goto out;
	}
	names = json_array();
	json_array_foreach(jobj(r.json, "vms"), i, vm)
		if (jstr(vm, "name") != NULL)
			json_array_append_new(names, json_string(jstr(vm, "name")));
out:
	reply_free(&r);
	return names;
}

/* start, stop, restart and delete: one operation for one NAME, a bulk
 * action for several NAMEs or --all. */
int
cmd_vm_lifecycle(struct cli *cli, const struct args *a)
{
	const struct command *cmd = a->cmd;
	const char *verb = cmd->name;
	bool is_delete = strcmp(verb, "delete") == 0;
	bool is_stop = strcmp(verb, "stop") == 0;
	bool all = args_flag(a, "--all");
	bool force = is_delete && args_flag(a, "--force");
	bool yes = is_delete && args_flag(a, "--yes");
	long long timeout = 0;
	bool has_timeout = is_stop && args_int(a, "--timeout", &timeout);
	struct op_opts oo = { 0 };
	const char *doing, *done;
	int n = a->n, rc;

	oo.no_wait = args_flag(a, "--no-wait");
	oo.cancel = args_flag(a, "--cancel");
	if (all && n > 0)
		return usage_error(cmd, "give NAMEs or --all, not both");
	if (!all && n == 0)
		return usage_error(cmd, "missing NAME argument (or --all)");
	/* The one command here that cannot be taken back, for every VM. */
	if (all && is_delete && !yes)
		return usage_error(cmd, "'vm delete --all' deletes every VM and "
		    "its disks; add --yes to confirm");
	if (yes && !(all && is_delete))
		return usage_error(cmd, "--yes only confirms --all");

	doing = is_delete ? "deleting" : strcmp(verb, "start") == 0 ?
	    "starting" : is_stop ? "stopping" : "restarting";
	done = is_delete ? "deleted" : strcmp(verb, "start") == 0 ? "started" :
	    is_stop ? "stopped" : "restarted";

	if (all || n > 1) {
		json_t *list, *extra = json_object();
		char *label;

		if (all) {
			list = all_vm_names(cli, &rc);
			if (list == NULL) {
				json_decref(extra);
				return rc;
			}
		} else {
			list = json_array();
			for (int i = 0; i < n; i++)
				json_array_append_new(list, json_string(a->v[i]));
		}
		if (json_array_size(list) == 0) {
			if (cli_chatty(cli))
				printf("no vms to %s\n", verb);
			json_decref(list);
			json_decref(extra);
			return CLI_EXIT_OK;
		}
		if (has_timeout)
			json_object_set_new(extra, "timeout_s",
			    json_integer(timeout));
		if (force)
			json_object_set_new(extra, "force", json_true());
		label = xasprintf("%s %zu vms", doing, json_array_size(list));
		oo.label = label;
		rc = vm_bulk(cli, verb, list, extra, &oo, done);
		free(label);
		json_decref(list);
		json_decref(extra);
		return rc;
	}

	const char *name = a->v[0], *method = "POST";
	char *path, *label, buf[128], sbuf[64];
	json_t *body = NULL, *op = NULL;

	if (is_delete) {
		method = "DELETE";
		path = api_path("/v1/vms/", name, force ? "?force=true" : NULL);
	} else {
		char *suffix = xasprintf("/%s", verb);

		path = api_path("/v1/vms/", name, suffix);
		free(suffix);
		body = json_object();
		if (has_timeout)
			json_object_set_new(body, "timeout_s",
			    json_integer(timeout));
	}
	label = xasprintf("%s vm '%s'", doing, out_clean(name, buf, sizeof(buf)));
	oo.label = label;
	rc = op_run(cli, method, path, body, &oo, &op);
	if (rc == CLI_EXIT_OK && op != NULL && cli_chatty(cli)) {
		json_t *vm = jobj(op, "result");
		const char *state = jstr(vm_status(vm), "state");

		printf("vm '%s' %s", vm_name(vm, name, buf, sizeof(buf)), done);
		/* Say where it ended up when that is not implied. */
		if (state != NULL && !is_stop)
			printf(" (%s)", out_clean(state, sbuf, sizeof(sbuf)));
		putchar('\n');
	}
	if (op != NULL)
		json_decref(op);
	if (body != NULL)
		json_decref(body);
	free(label);
	free(path);
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
	const char *name;
	struct reply r = { 0 };
	json_t *body;
	char *path;

	if (!sized && nat < 0)
		return usage_error(cmd, "nothing to change: give --vcpus, --memory, "
		    "--disk, --nat or --no-nat");
	if (n > 1) {
		if (sized || nat < 0)
			return usage_error(cmd, "several VMs at once take only --nat "
			    "or --no-nat");
		json_t *list = json_array(), *extra = json_object();
		struct op_opts oo = { 0 };

		for (int i = 0; i < n; i++)
			json_array_append_new(list, json_string(a->v[i]));
		json_object_set_new(extra, "nat", json_boolean(nat));
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
	path = api_path("/v1/vms/", name, NULL);
	rc = api_call(cli, "PATCH", path, body, &r);
	if (rc == CLI_EXIT_OK) {
		if (cli->json) {
			out_raw(&r);
		} else if (!cli->quiet) {
			json_t *spec = vm_spec(r.json);
			char b[4][64], nbuf[128];

			printf("vm '%s' updated: vcpus %s, memory %s MiB, disk %s GiB, "
			    "nat %s\n", vm_name(r.json, name, nbuf, sizeof(nbuf)),
			    jtext(jobj(spec, "vcpus"), b[0], sizeof(b[0])),
			    jtext(jobj(spec, "memory_mib"), b[1], sizeof(b[1])),
			    jtext(jobj(spec, "disk_gib"), b[2], sizeof(b[2])),
			    jtext(jobj(spec, "nat"), b[3], sizeof(b[3])));
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

	out_kv("status", jtext(jobj(h, "status"), buf, sizeof(buf)));
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
			    json_is_true(jobj(v, "ok")) ? "ok" :
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
	print_space("rootfs", jobj(agent, "rootfs"), "free_bytes", "free");
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
	return get_and_show(cli, "/v1/vms/", a->v[0], "/health", print_health);
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

/* ---- banger vm ssh ---- */

/* mkdir -p with mode 0700 for what it creates. */
static int
mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static bool
is_vm_id(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return n == 16 && s[n] == '\0';
}

/* Drop known-hosts files of VMs that no longer exist (a new VM of the
 * same name has a new id, so these are never read again). */
static void
prune_known_hosts(struct cli *cli, const char *dir)
{
	struct reply r = { 0 };
	struct dirent *de;
	DIR *d;

	if (client_request(cli, "GET", "/v1/vms", NULL, 10, CLIENT_SILENT |
	    CLIENT_NO_AUTOSTART, &r) != CLI_EXIT_OK || r.status != 200)
		goto out;
	r.json = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
	json_t *vms = jobj(r.json, "vms");
	if (!json_is_array(vms) || (d = opendir(dir)) == NULL)
		goto out;
	while ((de = readdir(d)) != NULL) {
		json_t *vm;
		size_t i;
		bool live = false;

		if (!is_vm_id(de->d_name))
			continue;
		json_array_foreach(vms, i, vm) {
			const char *id = jstr(vm, "id");

			if (id != NULL && strcmp(id, de->d_name) == 0)
				live = true;
		}
		if (!live)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
out:
	reply_free(&r);
}

/* The VM's known-hosts file.  bangerd's, in the VM's directory, when we
 * may write there (it goes with the VM); else one of our own under
 * $XDG_STATE_HOME/banger/known_hosts/<vm id>, for a user who reaches a
 * bangerd of another user.  Returns false after printing why. */
static bool
known_hosts_file(struct cli *cli, json_t *ssh, char *out, size_t len)
{
	const char *theirs = jstr(ssh, "known_hosts_path"), *id = jstr(ssh, "id");
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char dir[PATH_MAX];

	if (theirs != NULL && theirs[0] == '/' && strlen(theirs) < sizeof(dir)) {
		char *slash;

		snprintf(dir, sizeof(dir), "%s", theirs);
		slash = strrchr(dir, '/');
		*slash = '\0';
		if (access(dir[0] ? dir : "/", W_OK) == 0) {
			snprintf(out, len, "%s", theirs);
			return true;
		}
	}
	if (id == NULL || !is_vm_id(id)) {
		fputs("banger: bangerd did not say which vm id to keep host keys "
		    "for\n", stderr);
		return false;
	}
	if (xdg != NULL && xdg[0] == '/')
		snprintf(dir, sizeof(dir), "%s/banger/known_hosts", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(dir, sizeof(dir), "%s/.local/state/banger/known_hosts",
		    home);
	else {
		fputs("banger: no place for the vm's known hosts: set HOME or "
		    "XDG_STATE_HOME\n", stderr);
		return false;
	}
	if (mkdirs(dir) < 0) {
		fprintf(stderr, "banger: cannot create %s: %s\n", dir,
		    strerror(errno));
		return false;
	}
	prune_known_hosts(cli, dir);
	snprintf(out, len, "%s/%s", dir, id);
	return true;
}

/* Run argv (ssh) as our child and wait for it.  Ctrl-C and Ctrl-\ belong
 * to ssh meanwhile.  Returns its exit status (128 + signal when killed),
 * 127 when it could not be run (printed). */
static int
run_ssh(char **args)
{
	struct sigaction ign, old_int, old_quit;
	int pfd[2], status, exec_errno = 0;
	pid_t pid;
	ssize_t got;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		fprintf(stderr, "banger: pipe: %s\n", strerror(errno));
		return CLI_EXIT_ERROR;
	}
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		close(pfd[0]);
		execvp(args[0], args);
		/* Tell the parent why, through the pipe exec would close. */
		exec_errno = errno;
		if (write(pfd[1], &exec_errno, sizeof(exec_errno)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pfd[1]);
	if (pid < 0) {
		fprintf(stderr, "banger: fork: %s\n", strerror(errno));
		close(pfd[0]);
		status = CLI_EXIT_ERROR;
		goto out;
	}
	do
		got = read(pfd[0], &exec_errno, sizeof(exec_errno));
	while (got < 0 && errno == EINTR);
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "banger: waitpid: %s\n", strerror(errno));
			status = CLI_EXIT_ERROR;
			goto out;
		}
	}
	if (got == (ssize_t)sizeof(exec_errno)) {
		fprintf(stderr, "banger: cannot run %s: %s\n", args[0],
		    strerror(exec_errno));
		fputs("hint: install an ssh client (apt-get install "
		    "openssh-client) or point BANGER_SSH at one\n", stderr);
		status = 127;
		goto out;
	}
	status = WIFEXITED(status) ? WEXITSTATUS(status) :
	    WIFSIGNALED(status) ? 128 + WTERMSIG(status) : CLI_EXIT_ERROR;
out:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	return status;
}

/* After an interactive session: a VM left running is easy to forget.
 * Says nothing when the VM is gone or stopped, or bangerd does not answer. */
static void
ssh_reminder(struct cli *cli, const char *name)
{
	struct reply r = { 0 };
	char *path = api_path("/v1/vms/", name, NULL);
	char *hpath = api_path("/v1/vms/", name, "/health");
	const char *state;
	char health[32] = "unknown", nb[128];

	if (client_request(cli, "GET", path, NULL, 10, CLIENT_SILENT |
	    CLIENT_NO_AUTOSTART, &r) != CLI_EXIT_OK || r.status != 200)
		goto out;
	r.json = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
	state = jstr(vm_status(r.json), "state");
	if (state == NULL || strcmp(state, "running") != 0)
		goto out;
	reply_free(&r);
	if (client_request(cli, "GET", hpath, NULL, 10, CLIENT_SILENT |
	    CLIENT_NO_AUTOSTART, &r) == CLI_EXIT_OK && r.status == 200) {
		r.json = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
		if (jstr(r.json, "status") != NULL)
			out_clean(jstr(r.json, "status"), health, sizeof(health));
	}
	out_clean(name, nb, sizeof(nb));
	fprintf(stderr, "%s is still running (health: %s); stop it with: "
	    "banger vm stop %s\n", nb, health, nb);
out:
	reply_free(&r);
	free(hpath);
	free(path);
}

/* An ssh -o value: quoted when it has blanks (ssh splits them). */
static char *
ssh_option(const char *key, const char *value)
{
	if (strpbrk(value, " \t") != NULL)
		return xasprintf("%s=\"%s\"", key, value);
	return xasprintf("%s=%s", key, value);
}

int
cmd_vm_ssh(struct cli *cli, const struct args *a)
{
	const char *name = a->v[0], *ssh_bin = getenv("BANGER_SSH");
	const char *user, *host, *key;
	char kh[PATH_MAX], port[16], *dest = NULL, *khopt = NULL, *path;
	char **args = NULL;
	struct reply r = { 0 };
	int nremote = a->nrest, na = 0, rc;
	json_t *jport;
	bool interactive = nremote == 0 && isatty(STDIN_FILENO) == 1;

	path = api_path("/v1/vms/", name, "/ssh");
	rc = api_call(cli, "GET", path, NULL, &r);
	free(path);
	if (rc != CLI_EXIT_OK)
		goto out;
	user = jstr(r.json, "user");
	host = jstr(r.json, "host");
	key = jstr(r.json, "key_path");
	jport = jobj(r.json, "port");
	if (user == NULL || host == NULL || key == NULL ||
	    !json_is_integer(jport)) {
		fputs("banger: bangerd's answer lacks the vm's ssh user, host, "
		    "port or key\n", stderr);
		rc = CLI_EXIT_SERVER;
		goto out;
	}
	/* ssh would only say "Permission denied (publickey)". */
	if (access(key, R_OK) < 0) {
		fprintf(stderr, "banger: cannot read the ssh key %s: %s\n", key,
		    strerror(errno));
		fputs("hint: the key belongs to bangerd's runtime bundle; run "
		    "banger as bangerd's user or make the key readable to you\n",
		    stderr);
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	if (!known_hosts_file(cli, r.json, kh, sizeof(kh))) {
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	snprintf(port, sizeof(port), "%lld", (long long)json_integer_value(jport));
	dest = xasprintf("%s@%s", user, host);
	khopt = ssh_option("UserKnownHostsFile", kh);

	args = xmalloc(sizeof(*args) * (size_t)(nremote + 20));
	args[na++] = (char *)(ssh_bin != NULL && ssh_bin[0] != '\0' ? ssh_bin :
	    "ssh");
	args[na++] = "-i";
	args[na++] = (char *)key;
	/* Only this key: agents with many keys hit MaxAuthTries first. */
	args[na++] = "-o";
	args[na++] = "IdentitiesOnly=yes";
	/* Host keys are per VM; addresses are reused by later VMs. */
	args[na++] = "-o";
	args[na++] = khopt;
	args[na++] = "-o";
	args[na++] = "GlobalKnownHostsFile=/dev/null";
	args[na++] = "-o";
	args[na++] = "StrictHostKeyChecking=accept-new";
	/* No "Permanently added ..." line on each VM's first login; errors
	 * (a changed host key among them) still show. */
	args[na++] = "-o";
	args[na++] = "LogLevel=ERROR";
	args[na++] = "-p";
	args[na++] = port;
	args[na++] = "--";
	args[na++] = dest;
	for (int i = 0; i < nremote; i++)
		args[na++] = a->rest[i];
	args[na] = NULL;

	/* ssh must not inherit our connection to bangerd; a new one is made
	 * for the reminder. */
	client_free(cli);
	rc = run_ssh(args);
	if (interactive && !args_flag(a, "--no-reminder") && cli_chatty(cli))
		ssh_reminder(cli, name);
out:
	free(args);
	free(khopt);
	free(dest);
	reply_free(&r);
	return rc;
}
