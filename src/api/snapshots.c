/* snapshots.c - the snapshot routes: /v1/vms/{name}/snapshots[/{snap}]
 * and /v1/vms/{name}/restore.  Parse, call core, reply. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"
#include "common/wire.h"

/* "vm/snap" (the two path parameters) into its halves. */
static int
two_params(struct api_req *r, char vm[VM_NAME_MAX], char snap[VM_NAME_MAX],
    struct bn_err *err)
{
	const char *slash = strchr(r->param, '/');

	if (slash == NULL || (size_t)(slash - r->param) >= VM_NAME_MAX ||
	    strlen(slash + 1) >= VM_NAME_MAX)
		return bn_fail(err, BN_EINVAL, 0, "bad snapshot path");
	snprintf(vm, VM_NAME_MAX, "%.*s", (int)(slash - r->param), r->param);
	snprintf(snap, VM_NAME_MAX, "%s", slash + 1);
	return 0;
}

/* POST .../snapshots {"name": ...} and POST .../restore {"snapshot": ...}:
 * an operation, waited for with ?wait. */
static enum MHD_Result
snap_op(struct api_req *r, const char *field,
    int (*fn)(struct core *, const char *, const char *, char *,
    struct bn_err *))
{
	const struct json_field fields[] = { { field, JF_STRING, true, false } };
	struct bn_err err;
	json_t *j = NULL;
	long wait_s;
	bool waited;
	char op_id[24], snap[VM_NAME_MAX];

	if (name_check("vm", r->param, &err) < 0 ||
	    wait_param(r, &waited, &wait_s, &err) < 0 ||
	    body_object(r, false, fields, 1, &j, &err) < 0)
		return api_reply_error(r->conn, &err);
	snprintf(snap, sizeof(snap), "%s", json_get_str(j, field));
	bool fits = strlen(json_get_str(j, field)) < sizeof(snap);
	json_decref(j);
	if (!fits) {
		bn_fail(&err, BN_EINVAL, 0, "'%s' is too long", field);
		bn_err_detail(&err, "field", field);
		return api_reply_error(r->conn, &err);
	}
	if (fn(r->core, r->param, snap, op_id, &err) < 0)
		return api_reply_error(r->conn, &err);
	return reply_op(r, op_id, waited, wait_s);
}

enum MHD_Result
h_snap_create(struct api_req *r)
{
	return snap_op(r, WIRE_NAME, core_snapshot_create);
}

enum MHD_Result
h_vm_restore(struct api_req *r)
{
	return snap_op(r, WIRE_SNAPSHOT, core_vm_restore);
}

enum MHD_Result
h_snap_list(struct api_req *r)
{
	struct bn_err err;
	struct snapshot *list = NULL;
	int n = 0;

	if (core_snapshot_list(r->core, r->param, &list, &n, &err) < 0)
		return api_reply_error(r->conn, &err);
	json_t *arr = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, snapshot_to_json(r->param, &list[i]));
	free(list);
	return api_reply_json(r->conn, 200, json_pack("{s:o}", WIRE_SNAPSHOTS,
	    arr));
}

enum MHD_Result
h_snap_get(struct api_req *r)
{
	struct bn_err err;
	struct snapshot sn;
	char vm[VM_NAME_MAX], snap[VM_NAME_MAX];

	if (two_params(r, vm, snap, &err) < 0 ||
	    core_snapshot_get(r->core, vm, snap, &sn, &err) < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, 200, snapshot_to_json(vm, &sn));
}

enum MHD_Result
h_snap_delete(struct api_req *r)
{
	struct bn_err err;
	char vm[VM_NAME_MAX], snap[VM_NAME_MAX];

	if (two_params(r, vm, snap, &err) < 0 ||
	    core_snapshot_delete(r->core, vm, snap, &err) < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_empty(r->conn, 204);
}
