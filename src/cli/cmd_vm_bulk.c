/* cmd_vm_bulk.c - banger vm start|stop|restart|delete|pause|resume: one
 * call for one NAME, one bulk action (POST /v1/vms/actions) for several or
 * --all.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* POST /v1/vms/actions: 'action' on every VM in 'names' (a JSON array,
 * borrowed) at once, plus the fields in 'extra' (borrowed, may be NULL).
 * A line per VM: "web: stopped" on stdout, "db: error: CODE: MESSAGE" on
 * stderr; then, when any failed, a count, and the exit status of the first
 * VM that failed. */
int
vm_bulk(struct cli *cli, const char *action, json_t *names, json_t *extra,
    const struct op_opts *oo, const char *done)
{
	json_t *body = json_object(), *op = NULL, *results, *res;
	int rc, failed = 0;
	size_t i;

	json_object_set_new(body, WIRE_ACTION, json_string(action));
	json_object_set(body, WIRE_NAMES, names);
	if (extra != NULL)
		json_object_update(body, extra);
	rc = op_run(cli, "POST", "/v1/vms/actions", body, oo, &op);
	if (rc != CLI_EXIT_OK || op == NULL)
		goto out;
	results = jobj(jobj(op, WIRE_RESULT), WIRE_RESULTS);
	json_array_foreach(results, i, res) {
		json_t *e = jobj(res, WIRE_ERROR);
		const char *nm = jstr(res, WIRE_NAME);
		const char *code = jstr(e, WIRE_CODE);
		const char *msg = jstr(e, WIRE_MESSAGE);
		char nb[128], cb[64], mb[512];

		out_clean(nm ? nm : "?", nb, sizeof(nb));
		if (json_is_true(jobj(res, WIRE_OK))) {
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
			    (long)json_integer_value(jobj(e, WIRE_STATUS)));
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

/* Every VM's name (only those in state `only`, when given), for --all;
 * NULL after printing why. */
static json_t *
all_vm_names(struct cli *cli, const char *only, int *ret_exit)
{
	struct reply r = { 0 };
	json_t *names = NULL, *vm;
	size_t i;

	*ret_exit = api_call(cli, "GET", "/v1/vms", NULL, &r);
	if (*ret_exit != CLI_EXIT_OK)
		goto out;
	if (!json_is_array(jobj(r.json, WIRE_VMS))) {
		fputs("banger: bangerd's VM list has no \"vms\" array\n", stderr);
		*ret_exit = CLI_EXIT_SERVER;
		goto out;
	}
	names = json_array();
	json_array_foreach(jobj(r.json, WIRE_VMS), i, vm) {
		const char *name = jstr(vm, WIRE_NAME);
		const char *state = jstr(jobj(vm, WIRE_STATUS), WIRE_STATE);

		if (only != NULL && (state == NULL || strcmp(state, only) != 0))
			continue;
		if (name != NULL)
			json_array_append_new(names, json_string(name));
	}
out:
	reply_free(&r);
	return names;
}

/* The VMs a bulk command acts on: every VM (in state `only`, when
 * given) with --all, else the NAMEs given.  NULL after printing why. */
static json_t *
bulk_names(struct cli *cli, const struct args *a, bool all, const char *only,
    int *ret_exit)
{
	if (all)
		return all_vm_names(cli, only, ret_exit);
	json_t *list = json_array();
	for (int i = 0; i < a->n; i++)
		json_array_append_new(list, json_string(a->v[i]));
	return list;
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

		list = bulk_names(cli, a, all, NULL, &rc);
		if (list == NULL) {
			json_decref(extra);
			return rc;
		}
		if (json_array_size(list) == 0) {
			if (cli_chatty(cli))
				printf("no vms to %s\n", verb);
			json_decref(list);
			json_decref(extra);
			return CLI_EXIT_OK;
		}
		if (has_timeout)
			json_object_set_new(extra, WIRE_TIMEOUT_S,
			    json_integer(timeout));
		if (force)
			json_object_set_new(extra, WIRE_FORCE, json_true());
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
			json_object_set_new(body, WIRE_TIMEOUT_S,
			    json_integer(timeout));
	}
	label = xasprintf("%s vm '%s'", doing, out_clean(name, buf, sizeof(buf)));
	oo.label = label;
	rc = op_run(cli, method, path, body, &oo, &op);
	if (rc == CLI_EXIT_OK && op != NULL && cli_chatty(cli)) {
		json_t *vm = jobj(op, WIRE_RESULT);
		const char *state = jstr(jobj(vm, WIRE_STATUS), WIRE_STATE);

		printf("vm '%s' %s", out_name(vm, name, buf, sizeof(buf)), done);
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

/* pause and resume: quick and synchronous for one NAME (the VM comes
 * back), a bulk action for several; --all takes the VMs that are running
 * (pause) or paused (resume). */
int
cmd_vm_hold(struct cli *cli, const struct args *a)
{
	const struct command *cmd = a->cmd;
	bool pause = strcmp(cmd->name, "pause") == 0;
	bool all = args_flag(a, "--all");
	const char *done = pause ? "paused" : "running";
	struct op_opts oo = { 0 };
	int n = a->n, rc;

	if (all && n > 0)
		return usage_error(cmd, "give NAMEs or --all, not both");
	if (!all && n == 0)
		return usage_error(cmd, "missing NAME argument (or --all)");
	if (all || n > 1) {
		json_t *list;

		list = bulk_names(cli, a, all, pause ? "running" : "paused", &rc);
		if (list == NULL)
			return rc;
		if (json_array_size(list) == 0) {
			if (cli_chatty(cli))
				printf("no %s vms to %s\n", pause ? "running" :
				    "paused", cmd->name);
			json_decref(list);
			return CLI_EXIT_OK;
		}
		char *label = xasprintf("%s %zu vms", pause ? "pausing" :
		    "resuming", json_array_size(list));
		oo.label = label;
		rc = vm_bulk(cli, cmd->name, list, NULL, &oo, done);
		free(label);
		json_decref(list);
		return rc;
	}

	const char *name = a->v[0];
	struct reply r = { 0 };
	char *suffix = xasprintf("/%s", cmd->name);
	char *path = api_path("/v1/vms/", name, suffix);
	char buf[128];

	rc = out_call(cli, "POST", path, NULL, &r);
	if (rc == CLI_EXIT_OK && cli_chatty(cli))
		printf("vm '%s' %s\n", out_name(r.json, name, buf, sizeof(buf)),
		    pause ? "paused" : "resumed");
	reply_free(&r);
	free(path);
	free(suffix);
	return rc;
}
