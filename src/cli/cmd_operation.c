/* cmd_operation.c - banger operation list|show|wait|cancel. */
#include "cli.h"

#include <stdlib.h>

int
cmd_operation_list(struct cli *cli, const struct args *a)
{
	static const char *const headers[] = { "ID", "KIND", "TARGET", "STATE",
	    "STAGE", "CREATED" };
	static const char *const keys[] = { "id", "kind", "target", "state",
	    "stage", "created_at" };
	const struct list_spec ls = { "/v1/operations", WIRE_OPERATIONS,
		WIRE_ID, 6, headers, keys, NULL };

	(void)a;
	return out_list(cli, &ls);
}

static void
print_operation(json_t *op)
{
	static const char *const keys[] = { "id", "kind", "target", "state",
	    "stage", "progress", "created_at", "updated_at", "finished_at" };
	json_t *err = jobj(op, WIRE_ERROR);
	char buf[1024];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		out_kv(keys[i], jtext(jobj(op, keys[i]), buf, sizeof(buf)));
	if (json_is_object(err)) {
		out_kv("error", jtext(jobj(err, WIRE_MESSAGE), buf,
		    sizeof(buf)));
		out_kv("error_code", jtext(jobj(err, WIRE_CODE), buf,
		    sizeof(buf)));
	} else {
		out_kv("error", "-");
	}
}

int
cmd_operation_show(struct cli *cli, const struct args *a)
{
	return out_show(cli, "/v1/operations/", a->v[0], NULL, print_operation);
}

int
cmd_operation_wait(struct cli *cli, const struct args *a)
{
	const char *id = a->v[0];
	struct op_opts oo = { 0 };
	json_t *final = NULL;
	char *label, buf[128];
	int rc;

	label = xasprintf("operation %s", out_clean(id, buf, sizeof(buf)));
	oo.label = label;
	oo.cancel = args_flag(a, "--cancel");
	rc = op_wait(cli, id, NULL, &oo, &final);
	if (rc == CLI_EXIT_OK && cli_chatty(cli)) {
		char kind[64], target[128];

		printf("operation %s (%s %s) succeeded\n", buf,
		    jtext(jobj(final, WIRE_KIND), kind, sizeof(kind)),
		    jtext(jobj(final, WIRE_TARGET), target, sizeof(target)));
	}
	if (final != NULL)
		json_decref(final);
	free(label);
	return rc;
}

int
cmd_operation_cancel(struct cli *cli, const struct args *a)
{
	const char *id = a->v[0];
	struct reply r = { 0 };
	char *path, buf[128];
	int rc;

	path = api_path("/v1/operations/", id, "/cancel");
	rc = out_call(cli, "POST", path, NULL, &r);
	if (rc == CLI_EXIT_OK && cli_chatty(cli)) {
		char kind[64], target[128];

		printf("operation %s (%s %s): cancel requested\n",
		    out_clean(id, buf, sizeof(buf)),
		    jtext(jobj(r.json, WIRE_KIND), kind, sizeof(kind)),
		    jtext(jobj(r.json, WIRE_TARGET), target, sizeof(target)));
	}
	reply_free(&r);
	free(path);
	return rc;
}
