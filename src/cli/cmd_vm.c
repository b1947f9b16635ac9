/* cmd_vm.c - banger vm create|list|show|start|stop|restart|delete|set|
 * health|console. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

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

static int
vm_create(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	const char *name = NULL, *image = NULL;
	struct opt_int vcpus = { 0 }, memory = { 0 }, disk = { 0 };
	bool no_wait = false;
	int nat = -1, rc;
	const struct opt opts[] = {
		{ "--name", OPT_STRING, &name, 0 },
		{ "--image", OPT_STRING, &image, 0 },
		{ "--vcpus", OPT_INT, &vcpus, 0 },
		{ "--memory", OPT_INT, &memory, 0 },
		{ "--disk", OPT_INT, &disk, 0 },
		{ "--nat", OPT_CHOICE, &nat, 1 },
		{ "--no-nat", OPT_CHOICE, &nat, 0 },
		{ "--no-wait", OPT_FLAG, &no_wait, 0 },
		OPT_END
	};
	json_t *body, *op = NULL;
	char buf[128], *label;

	if (!args_parse(cli, cmd, argc, argv, opts, NULL, &rc))
		return rc;
	if (name == NULL)
		return usage_error(cmd, "--name is required");

	/* Only what was given: bangerd owns the defaults. */
	body = json_object();
	json_object_set_new(body, "name", json_string(name));
	if (image != NULL)
		json_object_set_new(body, "image", json_string(image));
	if (vcpus.set)
		json_object_set_new(body, "vcpus", json_integer(vcpus.value));
	if (memory.set)
		json_object_set_new(body, "memory_mib", json_integer(memory.value));
	if (disk.set)
		json_object_set_new(body, "disk_gib", json_integer(disk.value));
	if (nat >= 0)
		json_object_set_new(body, "nat", json_boolean(nat));

	label = xasprintf("creating vm '%s'", out_clean(name, buf, sizeof(buf)));
	rc = op_run(cli, "POST", "/v1/vms", body, label, no_wait, &op);
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

static int
vm_list(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	static const char *const headers[] = { "NAME", "STATE", "IP", "VCPUS",
	    "MEMORY", "DISK", "NAT", "IMAGE", "HEALTH" };
	const struct opt opts[] = { OPT_END };
	struct reply r = { 0 };
	struct table t;
	json_t *vms, *vm;
	size_t i;
	int rc;

	if (!args_parse(cli, cmd, argc, argv, opts, NULL, &rc))
		return rc;
	rc = api_call(cli, "GET", "/v1/vms", NULL, &r);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (cli->json) {
		out_raw(&r);
		goto out;
	}
	vms = jobj(r.json, "vms");
	if (!json_is_array(vms)) {
		fputs("banger: bangerd's VM list has no \"vms\" array\n", stderr);
		rc = CLI_EXIT_SERVER;
		goto out;
	}
	if (cli->quiet) {
		char buf[128];

		json_array_foreach(vms, i, vm)
			printf("%s\n", jtext(jobj(vm, "name"), buf, sizeof(buf)));
		goto out;
	}
	table_init(&t, 9, headers);
	json_array_foreach(vms, i, vm) {
		char c[9][128];
		json_t *spec = vm_spec(vm), *st = vm_status(vm);
		const char *row[9];

		jtext(jobj(vm, "name"), c[0], sizeof(c[0]));
		jtext(jobj(st, "state"), c[1], sizeof(c[1]));
		jtext(jobj(st, "ip"), c[2], sizeof(c[2]));
		jtext(jobj(spec, "vcpus"), c[3], sizeof(c[3]));
		size_cell(jobj(spec, "memory_mib"), "MiB", c[4], sizeof(c[4]));
		size_cell(jobj(spec, "disk_gib"), "GiB", c[5], sizeof(c[5]));
		jtext(jobj(spec, "nat"), c[6], sizeof(c[6]));
		jtext(jobj(spec, "image"), c[7], sizeof(c[7]));
		jtext(jobj(st, "health"), c[8], sizeof(c[8]));
		for (int k = 0; k < 9; k++)
			row[k] = c[k];
		table_add(&t, row);
	}
	table_print(&t, stdout);
	table_free(&t);
out:
	reply_free(&r);
	return rc;
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

static int
vm_show(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	const struct opt opts[] = { OPT_END };
	const char *name = NULL;
	int rc;

	if (!args_parse(cli, cmd, argc, argv, opts, &name, &rc))
		return rc;
	return get_and_show(cli, "/v1/vms/", name, NULL, print_vm);
}

/* start, stop, restart and delete: one operation each. */
static int
vm_lifecycle(struct cli *cli, const struct command *cmd, int argc,
    char **argv)
{
	const char *name = NULL, *verb = cmd->name;
	struct opt_int timeout = { 0 };
	bool force = false, no_wait = false;
	struct opt opts[4] = { { "--no-wait", OPT_FLAG, &no_wait, 0 }, OPT_END,
	    OPT_END, OPT_END };
	char *path, *label, buf[128], sbuf[64];
	const char *method = "POST", *doing, *done;
	json_t *body = NULL, *op = NULL;
	int rc;

	if (strcmp(verb, "stop") == 0)
		opts[1] = (struct opt){ "--timeout", OPT_INT, &timeout, 0 };
	else if (strcmp(verb, "delete") == 0)
		opts[1] = (struct opt){ "--force", OPT_FLAG, &force, 0 };
	if (!args_parse(cli, cmd, argc, argv, opts, &name, &rc))
		return rc;

	if (strcmp(verb, "delete") == 0) {
		method = "DELETE";
		path = api_path("/v1/vms/", name, force ? "?force=true" : NULL);
		doing = "deleting";
		done = "deleted";
	} else {
		char *suffix = xasprintf("/%s", verb);

		path = api_path("/v1/vms/", name, suffix);
		free(suffix);
		body = json_object();
		if (timeout.set)
			json_object_set_new(body, "timeout_s",
			    json_integer(timeout.value));
		doing = strcmp(verb, "start") == 0 ? "starting" :
		    strcmp(verb, "stop") == 0 ? "stopping" : "restarting";
		done = strcmp(verb, "start") == 0 ? "started" :
		    strcmp(verb, "stop") == 0 ? "stopped" : "restarted";
	}
	label = xasprintf("%s vm '%s'", doing, out_clean(name, buf, sizeof(buf)));
	rc = op_run(cli, method, path, body, label, no_wait, &op);
	if (rc == CLI_EXIT_OK && op != NULL && cli_chatty(cli)) {
		json_t *vm = jobj(op, "result");
		const char *state = jstr(vm_status(vm), "state");

		printf("vm '%s' %s", vm_name(vm, name, buf, sizeof(buf)), done);
		/* Say where it ended up when that is not implied. */
		if (state != NULL && strcmp(verb, "stop") != 0)
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

#define VM_SET_MAX 256

/* `vm set --nat|--no-nat A B C`: one bulk action, a line per VM, and a
 * failing exit status when any VM failed. */
static int
vm_set_nat_many(struct cli *cli, const char **names, int n, int nat)
{
	json_t *body = json_object(), *list = json_array(), *op = NULL;
	char *label = xasprintf("turning nat %s for %d vms", nat ? "on" : "off", n);
	int rc;

	for (int i = 0; i < n; i++)
		json_array_append_new(list, json_string(names[i]));
	json_object_set_new(body, "action", json_string("set"));
	json_object_set_new(body, "nat", json_boolean(nat));
	json_object_set_new(body, "names", list);
	rc = op_run(cli, "POST", "/v1/vms/actions", body, label, false, &op);
	if (rc == CLI_EXIT_OK && op != NULL) {
		size_t i;
		json_t *res;
		json_array_foreach(jobj(jobj(op, "result"), "results"), i, res) {
			char b[128];
			const char *nm = out_clean(jstr(res, "name"), b, sizeof(b));
			if (json_is_true(jobj(res, "ok"))) {
				if (cli_chatty(cli))
					printf("vm '%s': nat %s\n", nm, nat ? "on" : "off");
				continue;
			}
			json_t *e = jobj(res, "error");
			int one = api_exit_status(jstr(e, "code"),
			    (long)json_integer_value(jobj(e, "status")));
			if (!cli->json) {
				char mb[256];
				fprintf(stderr, "banger: vm '%s': %s\n", nm,
				    out_clean(jstr(e, "message"), mb, sizeof(mb)));
			}
			if (rc == CLI_EXIT_OK)
				rc = one;
		}
	}
	if (op != NULL)
		json_decref(op);
	json_decref(body);
	free(label);
	return rc;
}

static int
vm_set(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	struct opt_int vcpus = { 0 }, memory = { 0 }, disk = { 0 };
	const char *name = NULL;
	int nat = -1, rc;
	const struct opt opts[] = {
		{ "--vcpus", OPT_INT, &vcpus, 0 },
		{ "--memory", OPT_INT, &memory, 0 },
		{ "--disk", OPT_INT, &disk, 0 },
		{ "--nat", OPT_CHOICE, &nat, 1 },
		{ "--no-nat", OPT_CHOICE, &nat, 0 },
		OPT_END
	};
	struct reply r = { 0 };
	json_t *body;
	char *path;
	const char *names[VM_SET_MAX];
	int n;

	if (!args_parse_names(cli, cmd, argc, argv, opts, names, VM_SET_MAX, &n,
	    &rc))
		return rc;
	if (!vcpus.set && !memory.set && !disk.set && nat < 0)
		return usage_error(cmd, "nothing to change: give --vcpus, --memory, "
		    "--disk, --nat or --no-nat");
	if (n > 1) {
		if (vcpus.set || memory.set || disk.set || nat < 0)
			return usage_error(cmd, "several VMs at once take only --nat "
			    "or --no-nat");
		return vm_set_nat_many(cli, names, n, nat);
	}
	name = names[0];
	body = json_object();
	if (vcpus.set)
		json_object_set_new(body, "vcpus", json_integer(vcpus.value));
	if (memory.set)
		json_object_set_new(body, "memory_mib", json_integer(memory.value));
	if (disk.set)
		json_object_set_new(body, "disk_gib", json_integer(disk.value));
	if (nat >= 0)
		json_object_set_new(body, "nat", json_boolean(nat));
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

static int
vm_health(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	const struct opt opts[] = { OPT_END };
	const char *name = NULL;
	int rc;

	if (!args_parse(cli, cmd, argc, argv, opts, &name, &rc))
		return rc;
	return get_and_show(cli, "/v1/vms/", name, "/health", print_health);
}

static int
vm_console(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	struct opt_int tail = { 0 };
	const struct opt opts[] = { { "--tail", OPT_INT, &tail, 0 }, OPT_END };
	const char *name = NULL;
	struct reply r = { 0 };
	char *path, *suffix;
	int rc;

	if (!args_parse(cli, cmd, argc, argv, opts, &name, &rc))
		return rc;
	suffix = tail.set ? xasprintf("/console?tail=%lld", tail.value) :
	    xstrdup("/console");
	path = api_path("/v1/vms/", name, suffix);
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

const struct command cli_vm_commands[] = {
	{ "vm", "create",
	  "--name NAME [--image IMAGE] [--vcpus N] [--memory MIB] [--disk GIB] "
	  "[--nat|--no-nat] [--no-wait]",
	  "create a VM and boot it",
	  "Flags:\n"
	  "  --name NAME     VM name, a DNS label (required)\n"
	  "  --image IMAGE   image to boot (default: the bundle's 'default')\n"
	  "  --vcpus N       virtual CPUs (default 2)\n"
	  "  --memory MIB    memory in MiB (default 1024)\n"
	  "  --disk GIB      work disk size in GiB (default 8)\n"
	  "  --nat, --no-nat give the VM outbound NAT (default off)\n"
	  "  --no-wait       print the operation id and return at once\n",
	  vm_create },
	{ "vm", "list", "", "list VMs (with -q: names only)", NULL, vm_list },
	{ "vm", "show", "NAME", "show a VM's spec and status", NULL, vm_show },
	{ "vm", "start", "NAME [--no-wait]", "boot a stopped VM",
	  "Flags:\n"
	  "  --no-wait       print the operation id and return at once\n",
	  vm_lifecycle },
	{ "vm", "stop", "NAME [--timeout S] [--no-wait]", "shut a VM down",
	  "Flags:\n"
	  "  --timeout S     seconds to wait for a clean shutdown before the VMM\n"
	  "                  is killed (bangerd's default when not given)\n"
	  "  --no-wait       print the operation id and return at once\n",
	  vm_lifecycle },
	{ "vm", "restart", "NAME [--no-wait]", "stop a VM and boot it again",
	  "Flags:\n"
	  "  --no-wait       print the operation id and return at once\n",
	  vm_lifecycle },
	{ "vm", "delete", "NAME [--force] [--no-wait]",
	  "delete a VM and its disks",
	  "Flags:\n"
	  "  --force         stop the VM first if it is running\n"
	  "  --no-wait       print the operation id and return at once\n",
	  vm_lifecycle },
	{ "vm", "set", "NAME... [--vcpus N] [--memory MIB] [--disk GIB] "
	  "[--nat|--no-nat]",
	  "change a VM's resources or NAT",
	  "Flags (vcpus, memory and disk only while the VM is stopped):\n"
	  "  --vcpus N       virtual CPUs\n"
	  "  --memory MIB    memory in MiB\n"
	  "  --disk GIB      work disk size in GiB\n"
	  "  --nat, --no-nat turn outbound NAT on or off\n"
	  "Several NAMEs at once take only --nat or --no-nat (one bulk action;\n"
	  "a line per VM, non-zero exit when any failed).\n",
	  vm_set },
	{ "vm", "health", "NAME", "ask the VM's guest agent how it is", NULL,
	  vm_health },
	{ "vm", "console", "NAME [--tail BYTES]",
	  "print the VM's serial console log",
	  "Flags:\n"
	  "  --tail BYTES    only the last BYTES bytes (bangerd's default: 65536)\n",
	  vm_console },
	{ NULL, NULL, NULL, NULL, NULL, NULL }
};
