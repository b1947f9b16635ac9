/* cmd_snapshot.c - banger vm snapshot create|list|delete|restore: a VM's
 * snapshots (POST/GET/DELETE /v1/vms/NAME/snapshots[/SNAP], POST
 * /v1/vms/NAME/restore).  Taking and restoring are operations, followed
 * like a start; list and delete answer at once. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void
size_cell(json_t *item, int col, char *buf, size_t len)
{
	static const char *const keys[] = { "name", "state", NULL, NULL, NULL,
	    "created_at" };

	if (col == 2) {
		snprintf(buf, len, "%s", jstr(jobj(item, "vmm"), "kind") ?
		    jstr(jobj(item, "vmm"), "kind") : "-");
	} else if (col == 3) {
		snprintf(buf, len, "%lldv/%lldM",
		    (long long)json_integer_value(jobj(item, "vcpus")),
		    (long long)json_integer_value(jobj(item, "memory_mib")));
	} else if (col == 4) {
		double mib = (double)json_integer_value(jobj(item, "bytes")) /
		    (1024.0 * 1024.0);
		snprintf(buf, len, "%.1fM", mib);
	} else {
		jtext(jobj(item, keys[col]), buf, len);
	}
}

static int
snap_list(struct cli *cli, const char *vm)
{
	static const char *const headers[] = { "NAME", "STATE", "VMM", "SHAPE",
	    "SIZE", "CREATED" };
	char *path = api_path("/v1/vms/", vm, "/snapshots");
	const struct list_spec ls = { path, WIRE_SNAPSHOTS, WIRE_NAME, 6,
		headers, NULL, size_cell };
	int rc = out_list(cli, &ls);

	free(path);
	return rc;
}

/* create and restore: an operation with {field: snap}. */
static int
snap_op(struct cli *cli, const char *vm, const char *suffix,
    const char *field, const char *snap, const char *doing, const char *done,
    const struct op_opts *base)
{
	struct op_opts oo = *base;
	char *path = api_path("/v1/vms/", vm, suffix);
	json_t *body = json_pack("{s:s}", field, snap), *op = NULL;
	char vb[128], sb[128];
	char *label = xasprintf("%s vm '%s' %s '%s'", doing,
	    out_clean(vm, vb, sizeof(vb)), strcmp(field, WIRE_NAME) == 0 ?
	    "as" : "from", out_clean(snap, sb, sizeof(sb)));

	oo.label = label;
	int rc = op_run(cli, "POST", path, body, &oo, &op);
	if (rc == CLI_EXIT_OK && op != NULL && cli_chatty(cli))
		printf("vm '%s' %s '%s'\n", vb, done, sb);
	if (op != NULL)
		json_decref(op);
	json_decref(body);
	free(label);
	free(path);
	return rc;
}

static int
snap_delete(struct cli *cli, const char *vm, const char *snap)
{
	struct reply r = { 0 };
	char *base = api_path("/v1/vms/", vm, "/snapshots/");
	char *path = api_path(base, snap, NULL);
	char vb[128], sb[128];

	int rc = out_call(cli, "DELETE", path, NULL, &r);
	if (rc == CLI_EXIT_OK && cli_chatty(cli))
		printf("snapshot '%s' of vm '%s' deleted\n",
		    out_clean(snap, sb, sizeof(sb)), out_clean(vm, vb, sizeof(vb)));
	reply_free(&r);
	free(path);
	free(base);
	return rc;
}

int
cmd_vm_snapshot(struct cli *cli, const struct args *a)
{
	const struct command *cmd = a->cmd;
	const char *what = a->n > 0 ? a->v[0] : "";
	bool list = strcmp(what, "list") == 0;
	struct op_opts oo = { 0 };

	if (strcmp(what, "create") != 0 && !list &&
	    strcmp(what, "delete") != 0 && strcmp(what, "restore") != 0)
		return usage_error(cmd, a->n == 0 ? "missing create, list, delete "
		    "or restore" : "the first word is create, list, delete or "
		    "restore");
	if (a->n != (list ? 2 : 3))
		return usage_error(cmd, list ? "'list' takes the VM's NAME" :
		    "give the VM's NAME and the SNAPSHOT");
	oo.no_wait = args_flag(a, "--no-wait");
	oo.cancel = args_flag(a, "--cancel");
	if (list)
		return snap_list(cli, a->v[1]);
	if (strcmp(what, "delete") == 0)
		return snap_delete(cli, a->v[1], a->v[2]);
	if (strcmp(what, "create") == 0)
		return snap_op(cli, a->v[1], "/snapshots", WIRE_NAME, a->v[2],
		    "snapshotting", "saved as", &oo);
	return snap_op(cli, a->v[1], "/restore", WIRE_SNAPSHOT, a->v[2],
	    "restoring", "restored from", &oo);
}

/* banger vm clone VM@SNAPSHOT NAME: POST /v1/vms {"name", "from"}. */
int
cmd_vm_clone(struct cli *cli, const struct args *a)
{
	struct op_opts oo = { 0 };
	json_t *body, *op = NULL;
	char nb[128], fb[128];

	if (a->n != 2)
		return usage_error(a->cmd, "give VM@SNAPSHOT and the new NAME");
	const char *from = a->v[0], *name = a->v[1];
	if (strchr(from, '@') == NULL)
		return usage_error(a->cmd, "the source is VM@SNAPSHOT");
	body = json_pack("{s:s, s:s}", WIRE_NAME, name, WIRE_FROM, from);
	if (args_flag(a, "--nat"))
		json_object_set_new(body, WIRE_NAT, json_true());
	char *label = xasprintf("cloning '%s' as vm '%s'",
	    out_clean(from, fb, sizeof(fb)), out_clean(name, nb, sizeof(nb)));
	oo.label = label;
	oo.no_wait = args_flag(a, "--no-wait");
	oo.cancel = args_flag(a, "--cancel");
	int rc = op_run(cli, "POST", "/v1/vms", body, &oo, &op);
	if (rc == CLI_EXIT_OK && op != NULL && cli_chatty(cli)) {
		json_t *vm = jobj(op, WIRE_RESULT);
		const char *ip = jstr(jobj(vm, WIRE_STATUS), "ip");
		char ib[64];

		printf("vm '%s' cloned from '%s'", out_name(vm, name, nb,
		    sizeof(nb)), fb);
		if (ip != NULL)
			printf(" (%s)", out_clean(ip, ib, sizeof(ib)));
		putchar('\n');
	}
	if (op != NULL)
		json_decref(op);
	json_decref(body);
	free(label);
	return rc;
}
