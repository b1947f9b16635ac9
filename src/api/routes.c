/* routes.c - the route table and its handlers: parse, call core, reply. */
#include "api/api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"
#include "common/wire.h"

/* ---- system ---- */

static enum MHD_Result
h_root(struct api_req *r)
{
	return api_reply_json(r->conn, 200, json_pack("{s:s, s:s, s:[s,s,s,s,s], s:o}",
	    "api_version", "1", "server_version", BANGER_VERSION, "extensions",
	    "operations", "events", "vm_actions", "operation_cancel", "vm_ssh",
	    "daemon", core_daemon_info(r->core)));
}

static enum MHD_Result
h_healthz(struct api_req *r)
{
	return api_reply_json(r->conn, 200, json_pack("{s:s, s:s, s:I}",
	    "status", "ok", "version", BANGER_VERSION,
	    "uptime_s", (json_int_t)core_uptime_s(r->core)));
}

static enum MHD_Result
h_doctor(struct api_req *r)
{
	return api_reply_json(r->conn, 200, core_doctor(r->core));
}

static enum MHD_Result
h_host(struct api_req *r)
{
	struct bn_err err;
	json_t *j = core_host_json(r->core, &err);

	if (j == NULL)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, 200, j);
}

/* ---- VMs ---- */

/* GET /v1/vms is the hot path (UIs poll it).  The rendered list is cached
 * and rebuilt only when the store's generation moves; replies share the
 * buffer by reference. */
struct list_cache {
	pthread_mutex_t mu;
	uint64_t generation;
	struct shared_text *text;
};

struct shared_text {
	_Atomic int refs;
	size_t len;
	char data[];
};

static struct list_cache vm_list_cache = { PTHREAD_MUTEX_INITIALIZER, 0, NULL };

static void
shared_text_unref(struct shared_text *t)
{
	if (t != NULL && --t->refs == 0)
		free(t);
}

static void
shared_text_free_cb(void *cls)
{
	shared_text_unref(cls);
}

static enum MHD_Result
h_vm_list(struct api_req *r)
{
	struct list_cache *lc = &vm_list_cache;
	struct shared_text *t;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	uint64_t gen = core_generation(r->core);

	pthread_mutex_lock(&lc->mu);
	if (lc->text == NULL || lc->generation != gen) {
		struct bn_err err;
		struct vm *vms;
		int n;

		/* Read the generation before the rows: a change racing with
		 * this rebuild leaves a stale generation, so the next request
		 * rebuilds again. */
		if (core_vm_list(r->core, &vms, &n, &err) < 0) {
			pthread_mutex_unlock(&lc->mu);
			return api_reply_error(r->conn, &err);
		}
		json_t *arr = json_array();
		for (int i = 0; i < n; i++)
			json_array_append_new(arr, vm_to_json(&vms[i]));
		free(vms);
		json_t *j = json_pack("{s:o}", "vms", arr);
		char *text = json_dump_compact(j);
		json_decref(j);
		size_t len = strlen(text);
		t = xmalloc(sizeof(*t) + len + 1);
		t->refs = 1;
		t->len = len;
		memcpy(t->data, text, len + 1);
		free(text);
		shared_text_unref(lc->text);
		lc->text = t;
		lc->generation = gen;
	}
	t = lc->text;
	t->refs++;
	pthread_mutex_unlock(&lc->mu);

	resp = MHD_create_response_from_buffer_with_free_callback_cls(t->len,
	    t->data, shared_text_free_cb, t);
	if (resp == NULL) {
		shared_text_unref(t);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static const struct json_field create_fields[] = {
	{ WIRE_NAME, JF_STRING, true, false },
	{ WIRE_IMAGE, JF_STRING, false, false },
	{ WIRE_VCPUS, JF_INT, false, false },
	{ WIRE_MEMORY_MIB, JF_INT, false, false },
	{ WIRE_DISK_GIB, JF_INT, false, false },
	{ WIRE_NAT, JF_BOOL, false, false },
	{ WIRE_FROM, JF_STRING, false, false },
	{ WIRE_PORTS, JF_ARRAY, false, false },
	{ WIRE_LIMITS, JF_OBJECT, false, true },
	{ WIRE_MOUNTS, JF_ARRAY, false, false },
};

/* An integer field as sent, or VM_SIZE_UNSET when absent or null; its
 * range is core's to check. */
static int
size_field(json_t *j, const char *key, long long *ret, struct bn_err *err)
{
	return json_get_int(j, key, LLONG_MIN + 1, LLONG_MAX, VM_SIZE_UNSET, ret,
	    err);
}

static enum MHD_Result
h_vm_create(struct api_req *r)
{
	struct vm_create_req req = { 0 };
	struct bn_err err;
	json_t *j = NULL;
	long wait_s;
	bool waited;
	char op_id[24];

	if (wait_param(r, &waited, &wait_s, &err) < 0 ||
	    body_object(r, false, create_fields, ARRAY_SIZE(create_fields), &j, &err) < 0)
		return api_reply_error(r->conn, &err);
	if (size_field(j, WIRE_VCPUS, &req.vcpus, &err) < 0 ||
	    size_field(j, WIRE_MEMORY_MIB, &req.memory_mib, &err) < 0 ||
	    size_field(j, WIRE_DISK_GIB, &req.disk_gib, &err) < 0)
		goto fail;
	req.name = json_get_str(j, WIRE_NAME);
	req.image = json_get_str(j, WIRE_IMAGE);
	req.from = json_get_str(j, WIRE_FROM);
	req.nat = json_is_true(json_object_get(j, WIRE_NAT));
	struct vm_port ports[VM_PORTS_MAX];
	if (ports_field(j, ports, &req.nports, &err) < 0)
		goto fail;
	req.ports = ports;
	if (req.nports < 0)
		req.nports = 0;
	bool has_limits;
	if (limits_field(j, &req.limits, &has_limits, &err) < 0)
		goto fail;
	struct vm_mount mounts[VM_MOUNTS_MAX];
	if (mounts_field(j, mounts, &req.nmounts, &err) < 0)
		goto fail;
	req.mounts = mounts;
	if (req.nmounts < 0)
		req.nmounts = 0;
	int rc = core_vm_create(r->core, &req, op_id, &err);
	json_decref(j);
	if (rc < 0)
		return api_reply_error(r->conn, &err);
	return reply_op(r, op_id, waited, wait_s);
fail:
	json_decref(j);
	return api_reply_error(r->conn, &err);
}

static enum MHD_Result
h_vm_get(struct api_req *r)
{
	struct bn_err err;
	struct vm vm;

	if (core_vm_get(r->core, r->param, &vm, &err) < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, 200, vm_to_json(&vm));
}

static const struct json_field patch_fields[] = {
	{ WIRE_VCPUS, JF_INT, false, false },
	{ WIRE_MEMORY_MIB, JF_INT, false, false },
	{ WIRE_DISK_GIB, JF_INT, false, false },
	{ WIRE_NAT, JF_BOOL, false, false },
	{ WIRE_PORTS, JF_ARRAY, false, false },
	{ WIRE_LIMITS, JF_OBJECT, false, true },
	{ WIRE_MOUNTS, JF_ARRAY, false, false },
};

static enum MHD_Result
h_vm_patch(struct api_req *r)
{
	struct vm_patch p = { .nat = -1 };
	struct bn_err err;
	struct vm vm;
	json_t *j = NULL, *nat;

	if (body_object(r, false, patch_fields, ARRAY_SIZE(patch_fields), &j,
	    &err) < 0)
		return api_reply_error(r->conn, &err);
	if (size_field(j, WIRE_VCPUS, &p.vcpus, &err) < 0 ||
	    size_field(j, WIRE_MEMORY_MIB, &p.memory_mib, &err) < 0 ||
	    size_field(j, WIRE_DISK_GIB, &p.disk_gib, &err) < 0) {
		json_decref(j);
		return api_reply_error(r->conn, &err);
	}
	nat = json_object_get(j, WIRE_NAT);
	if (json_is_boolean(nat))
		p.nat = json_is_true(nat);
	struct vm_port ports[VM_PORTS_MAX];
	int nports;
	if (ports_field(j, ports, &nports, &err) < 0) {
		json_decref(j);
		return api_reply_error(r->conn, &err);
	}
	p.set_ports = nports >= 0;
	p.ports = ports;
	p.nports = nports < 0 ? 0 : nports;
	if (limits_field(j, &p.limits, &p.set_limits, &err) < 0) {
		json_decref(j);
		return api_reply_error(r->conn, &err);
	}
	struct vm_mount mounts[VM_MOUNTS_MAX];
	int nmounts;
	if (mounts_field(j, mounts, &nmounts, &err) < 0) {
		json_decref(j);
		return api_reply_error(r->conn, &err);
	}
	p.set_mounts = nmounts >= 0;
	p.mounts = mounts;
	p.nmounts = nmounts < 0 ? 0 : nmounts;
	json_decref(j);
	if (core_vm_patch(r->core, r->param, &p, &vm, &err) < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, 200, vm_to_json(&vm));
}

static enum MHD_Result
vm_action(struct api_req *r, enum vm_action act, const struct json_field *fields,
    int nfields)
{
	struct bn_err err;
	json_t *j = NULL;
	long long timeout_s = -1;
	long wait_s;
	bool waited, force = false;
	char op_id[24];

	if (name_check("vm", r->param, &err) < 0 ||
	    wait_param(r, &waited, &wait_s, &err) < 0 ||
	    (act == VM_ACT_DELETE && query_bool(r, "force", &force, &err) < 0))
		return api_reply_error(r->conn, &err);
	if (act != VM_ACT_DELETE) {
		if (body_object(r, true, fields, nfields, &j, &err) < 0)
			return api_reply_error(r->conn, &err);
		int rc = json_get_int(j, WIRE_TIMEOUT_S, 0, 600, -1, &timeout_s, &err);
		json_decref(j);
		if (rc < 0)
			return api_reply_error(r->conn, &err);
	}
	if (core_vm_action(r->core, r->param, act, force, (int)timeout_s, op_id,
	    &err) < 0)
		return api_reply_error(r->conn, &err);
	return reply_op(r, op_id, waited, wait_s);
}

static const struct json_field stop_fields[] = {
	{ WIRE_TIMEOUT_S, JF_INT, false, false },
};

static enum MHD_Result h_vm_start(struct api_req *r) { return vm_action(r, VM_ACT_START, NULL, 0); }

/* Pause and resume are quick and synchronous: the VM's new view. */
static enum MHD_Result
vm_hold(struct api_req *r, int (*fn)(struct core *, const char *, struct vm *,
    struct bn_err *))
{
	struct bn_err err;
	struct vm vm;

	if (fn(r->core, r->param, &vm, &err) < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, 200, vm_to_json(&vm));
}
static enum MHD_Result h_vm_pause(struct api_req *r) { return vm_hold(r, core_vm_pause); }
static enum MHD_Result h_vm_resume(struct api_req *r) { return vm_hold(r, core_vm_resume); }
static enum MHD_Result h_vm_stop(struct api_req *r) { return vm_action(r, VM_ACT_STOP, stop_fields, 1); }
static enum MHD_Result h_vm_restart(struct api_req *r) { return vm_action(r, VM_ACT_RESTART, NULL, 0); }
static enum MHD_Result h_vm_delete(struct api_req *r) { return vm_action(r, VM_ACT_DELETE, NULL, 0); }

static enum MHD_Result
h_vm_health(struct api_req *r)
{
	struct bn_err err;
	json_t *j = core_vm_health(r->core, r->param, &err);

	if (j == NULL)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, 200, j);
}

static enum MHD_Result
h_vm_ssh(struct api_req *r)
{
	struct bn_err err;
	struct vm_ssh ssh;

	if (core_vm_ssh(r->core, r->param, &ssh, &err) < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, 200, json_pack("{s:s, s:s, s:s, s:s, s:i, "
	    "s:s, s:s, s:o}", "name", r->param, "id", ssh.id, "user", ssh.user,
	    "host", ssh.host, "port", ssh.port, "key_path", ssh.key_path,
	    "known_hosts_path", ssh.known_hosts_path, "host_keys",
	    ssh.host_keys));
}

static enum MHD_Result
h_vm_console(struct api_req *r)
{
	struct bn_err err;
	long tail;
	char *text;
	size_t len;

	if (name_check("vm", r->param, &err) < 0 ||
	    query_int(r, "tail", 0, 16777216, 65536, &tail, &err) < 0 ||
	    core_vm_console(r->core, r->param, tail, &text, &len, &err) < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_text(r->conn, 200, text, len, "text/plain; charset=utf-8");
}

static const struct json_field bulk_fields[] = {
	{ WIRE_ACTION, JF_STRING, true, false },
	{ WIRE_NAMES, JF_ARRAY, true, false },
	{ WIRE_FORCE, JF_BOOL, false, false },
	{ WIRE_NAT, JF_BOOL, false, false },
	{ WIRE_TIMEOUT_S, JF_INT, false, false },
};

static enum MHD_Result
h_vm_bulk(struct api_req *r)
{
	struct bn_err err;
	json_t *j = NULL, *names, *v;
	enum vm_action act;
	char **list = NULL;
	long long timeout_s = -1;
	long wait_s;
	bool waited;
	char op_id[24];
	size_t i, n;
	int rc;

	if (wait_param(r, &waited, &wait_s, &err) < 0 ||
	    body_object(r, false, bulk_fields, ARRAY_SIZE(bulk_fields), &j, &err) < 0)
		return api_reply_error(r->conn, &err);
	if (vm_action_parse(json_get_str(j, WIRE_ACTION), &act) < 0) {
		bn_fail(&err, BN_EINVAL, 0, "action must be one of start, stop, "
		    "restart, delete, set, pause, resume");
		bn_err_detail(&err, "field", "action");
		goto fail;
	}
	json_t *nat = json_object_get(j, WIRE_NAT);
	if ((act == VM_ACT_SET) != json_is_boolean(nat)) {
		bn_fail(&err, BN_EINVAL, 0, act == VM_ACT_SET ? "action 'set' needs "
		    "'nat'" : "'nat' goes only with action 'set'");
		bn_err_detail(&err, "field", "nat");
		goto fail;
	}
	if (json_object_get(j, WIRE_TIMEOUT_S) != NULL &&
	    act != VM_ACT_STOP && act != VM_ACT_RESTART &&
	    act != VM_ACT_DELETE) {
		bn_fail(&err, BN_EINVAL, 0, "'timeout_s' goes only with stop, "
		    "restart and delete");
		bn_err_detail(&err, "field", "timeout_s");
		goto fail;
	}
	if (json_get_int(j, WIRE_TIMEOUT_S, 0, 600, -1, &timeout_s, &err) < 0)
		goto fail;
	names = json_object_get(j, WIRE_NAMES);
	n = json_array_size(names);
	list = xcalloc(n + 1, sizeof(*list));
	json_array_foreach(names, i, v) {
		if (!json_is_string(v)) {
			bn_fail(&err, BN_EINVAL, 0, "names must be an array of strings");
			bn_err_detail(&err, "field", "names");
			goto fail;
		}
		list[i] = (char *)json_string_value(v);
	}
	rc = core_vms_bulk(r->core, act, list, (int)n,
	    json_is_true(json_object_get(j, WIRE_FORCE)), json_is_true(nat),
	    (int)timeout_s, op_id, &err);
	free(list);
	json_decref(j);
	if (rc < 0)
		return api_reply_error(r->conn, &err);
	return reply_op(r, op_id, waited, wait_s);
fail:
	free(list);
	json_decref(j);
	return api_reply_error(r->conn, &err);
}

/* ---- images ---- */

static enum MHD_Result
h_image_list(struct api_req *r)
{
	struct image_view *imgs;
	struct bn_err err;
	json_t *arr;
	int n;

	if (core_image_list(r->core, &imgs, &n, &err) < 0)
		return api_reply_error(r->conn, &err);
	arr = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, image_to_json(&imgs[i]));
	free(imgs);
	return api_reply_json(r->conn, 200, json_pack("{s:o}", "images", arr));
}

static const struct json_field register_fields[] = {
	{ WIRE_NAME, JF_STRING, true, false },
	{ WIRE_ROOTFS, JF_STRING, true, false },
	{ WIRE_WORK_SEED, JF_STRING, false, true },
};

static enum MHD_Result
h_image_register(struct api_req *r)
{
	struct image_view iv;
	struct bn_err err;
	json_t *j = NULL;
	bool created;
	int rc;

	if (body_object(r, false, register_fields, ARRAY_SIZE(register_fields), &j,
	    &err) < 0)
		return api_reply_error(r->conn, &err);
	rc = core_image_register(r->core, json_get_str(j, WIRE_NAME),
	    json_get_str(j, WIRE_ROOTFS), json_get_str(j, WIRE_WORK_SEED), &iv, &created,
	    &err);
	json_decref(j);
	if (rc < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, created ? 201 : 200, image_to_json(&iv));
}

static const struct json_field build_fields[] = {
	{ WIRE_NAME, JF_STRING, true, false },
	{ WIRE_DISTRO, JF_STRING, false, false },
};

static enum MHD_Result
h_image_build(struct api_req *r)
{
	struct bn_err err;
	json_t *j = NULL;
	char op_id[24];
	long wait_s;
	bool waited;
	int rc;

	if (wait_param(r, &waited, &wait_s, &err) < 0 ||
	    body_object(r, false, build_fields, ARRAY_SIZE(build_fields), &j, &err) < 0)
		return api_reply_error(r->conn, &err);
	rc = core_image_build(r->core, json_get_str(j, WIRE_NAME),
	    json_get_str(j, WIRE_DISTRO), op_id, &err);
	json_decref(j);
	if (rc < 0)
		return api_reply_error(r->conn, &err);
	return reply_op(r, op_id, waited, wait_s);
}

static enum MHD_Result
h_image_get(struct api_req *r)
{
	struct image_view iv;
	struct bn_err err;

	if (core_image_get(r->core, r->param, &iv, &err) < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, 200, image_to_json(&iv));
}

static enum MHD_Result
h_image_delete(struct api_req *r)
{
	struct bn_err err;

	if (core_image_delete(r->core, r->param, &err) < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_empty(r->conn, 204);
}

/* POST /v1/images/{name}/warm: an operation (image.warm), ?wait. */
static enum MHD_Result
h_image_warm(struct api_req *r)
{
	struct bn_err err;
	char op_id[24];
	long wait_s;
	bool waited;

	if (wait_param(r, &waited, &wait_s, &err) < 0 ||
	    core_image_warm(r->core, r->param, op_id, &err) < 0)
		return api_reply_error(r->conn, &err);
	return reply_op(r, op_id, waited, wait_s);
}

static enum MHD_Result
h_image_cool(struct api_req *r)
{
	struct bn_err err;

	if (core_image_cool(r->core, r->param, &err) < 0)
		return api_reply_error(r->conn, &err);
	return api_reply_empty(r->conn, 204);
}

/* ---- operations ---- */

static enum MHD_Result
h_op_list(struct api_req *r)
{
	struct op_row *ops;
	struct bn_err err;
	json_t *arr;
	int n;

	if (core_op_list(r->core, &ops, &n, &err) < 0)
		return api_reply_error(r->conn, &err);
	arr = json_array();
	for (int i = 0; i < n; i++) {
		json_array_append_new(arr, op_to_json(&ops[i]));
		op_row_clear(&ops[i]);
	}
	free(ops);
	return api_reply_json(r->conn, 200, json_pack("{s:o}", "operations", arr));
}

static enum MHD_Result
h_op_get(struct api_req *r)
{
	struct bn_err err;
	struct op_row op;
	long wait_s;

	if (query_int(r, "wait", 0, 3600, 0, &wait_s, &err) < 0 ||
	    core_op_get(r->core, r->param, (int)wait_s, &op, &err) < 0)
		return api_reply_error(r->conn, &err);
	json_t *j = op_to_json(&op);
	op_row_clear(&op);
	return api_reply_json(r->conn, 200, j);
}

static enum MHD_Result
h_op_cancel(struct api_req *r)
{
	struct bn_err err;
	struct op_row op;
	json_t *j = NULL;

	/* No body, or an empty object. */
	if (body_object(r, true, NULL, 0, &j, &err) < 0)
		return api_reply_error(r->conn, &err);
	json_decref(j);
	if (core_op_cancel(r->core, r->param, &op, &err) < 0)
		return api_reply_error(r->conn, &err);
	j = op_to_json(&op);
	op_row_clear(&op);
	return api_reply_json(r->conn, 202, j);
}

/* ---- events (SSE) ---- */

struct sse {
	struct core *core;
	uint64_t cursor;
	struct event_filter filter;
	bool greeted;
	char *pending;
	size_t off, len;
};

static ssize_t
sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;

	(void)pos;
	/* libmicrohttpd sends the status line and headers with the first
	 * chunk of body: open with a comment so the client knows at once
	 * that it is subscribed, not after the first event or ping. */
	if (!s->greeted) {
		s->greeted = true;
		s->pending = xstrdup(": connected\n\n");
		s->off = 0;
		s->len = strlen(s->pending);
	}
	if (s->pending == NULL) {
		char *frame = NULL;
		int rc = core_events_next(s->core, &s->cursor, &s->filter, 15000,
		    &frame);
		if (rc < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		s->pending = rc == 1 ? frame : xstrdup(": ping\n\n");
		s->off = 0;
		s->len = strlen(s->pending);
	}
	size_t n = s->len - s->off < max ? s->len - s->off : max;
	memcpy(buf, s->pending + s->off, n);
	s->off += n;
	if (s->off == s->len) {
		free(s->pending);
		s->pending = NULL;
	}
	return (ssize_t)n;
}

static void
sse_free(void *cls)
{
	struct sse *s = cls;

	free(s->pending);
	free(s);
}

static enum MHD_Result
h_events(struct api_req *r)
{
	struct bn_err err;
	struct sse *s = xcalloc(1, sizeof(*s));
	const char *types = query(r, "type"), *vm = query(r, "vm");
	const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "Last-Event-ID");
	struct MHD_Response *resp;
	enum MHD_Result ret;

	s->core = r->core;
	s->cursor = core_events_last_id(r->core);
	if (vm != NULL) {
		if (name_check("vm", vm, &err) < 0)
			goto fail;
		snprintf(s->filter.vm, sizeof(s->filter.vm), "%s", vm);
	}
	if (types != NULL) {
		char buf[512], *save = NULL;
		snprintf(buf, sizeof(buf), "%s", types);
		for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (s->filter.ntypes == 8 || strlen(t) >= 32) {
				bn_fail(&err, BN_EINVAL, 0, "type: at most 8 entries "
				    "of at most 31 characters");
				goto fail;
			}
			snprintf(s->filter.types[s->filter.ntypes++], 32, "%s", t);
		}
	}
	if (last != NULL) {
		char *end;
		unsigned long long id = strtoull(last, &end, 10);
		if (*last == '\0' || *end != '\0' || *last == '-') {
			bn_fail(&err, BN_EINVAL, 0, "Last-Event-ID must be a "
			    "non-negative integer");
			goto fail;
		}
		if (id < s->cursor)
			s->cursor = id;
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read,
	    s, sse_free);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	ret = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
fail:
	free(s);
	return api_reply_error(r->conn, &err);
}

static const struct api_route routes[] = {
	{ "GET", "/v1", h_root, NULL },
	{ "GET", "/v1/healthz", h_healthz, NULL },
	{ "GET", "/v1/doctor", h_doctor, NULL },
	{ "GET", "/v1/host", h_host, NULL },
	{ "GET", "/v1/metrics", h_metrics, NULL },
	{ "GET", "/v1/vms", h_vm_list, NULL },
	{ "POST", "/v1/vms", h_vm_create, NULL },
	{ "POST", "/v1/vms/actions", h_vm_bulk, NULL },
	{ "GET", "/v1/vms/{name}", h_vm_get, NULL },
	{ "PATCH", "/v1/vms/{name}", h_vm_patch, NULL },
	{ "DELETE", "/v1/vms/{name}", h_vm_delete, NULL },
	{ "POST", "/v1/vms/{name}/start", h_vm_start, NULL },
	{ "POST", "/v1/vms/{name}/stop", h_vm_stop, NULL },
	{ "POST", "/v1/vms/{name}/restart", h_vm_restart, NULL },
	{ "POST", "/v1/vms/{name}/pause", h_vm_pause, NULL },
	{ "POST", "/v1/vms/{name}/resume", h_vm_resume, NULL },
	{ "POST", "/v1/vms/{name}/snapshots", h_snap_create, NULL },
	{ "GET", "/v1/vms/{name}/snapshots", h_snap_list, NULL },
	{ "GET", "/v1/vms/{name}/snapshots/{snap}", h_snap_get, NULL },
	{ "DELETE", "/v1/vms/{name}/snapshots/{snap}", h_snap_delete, NULL },
	{ "POST", "/v1/vms/{name}/restore", h_vm_restore, NULL },
	{ "POST", "/v1/vms/{name}/exec", h_vm_exec, NULL },
	{ "GET", "/v1/vms/{name}/files", h_vm_files_get, NULL },
	{ "PUT", "/v1/vms/{name}/files", NULL, &files_put_upload },
	{ "POST", "/v1/vms/{name}/connect", h_vm_connect, NULL },
	{ "GET", "/v1/vms/{name}/health", h_vm_health, NULL },
	{ "GET", "/v1/vms/{name}/usage", h_vm_usage, NULL },
	{ "GET", "/v1/vms/{name}/console", h_vm_console, NULL },
	{ "GET", "/v1/vms/{name}/ssh", h_vm_ssh, NULL },
	{ "GET", "/v1/images", h_image_list, NULL },
	{ "POST", "/v1/images", h_image_register, NULL },
	{ "POST", "/v1/images/build", h_image_build, NULL },
	{ "GET", "/v1/images/{name}", h_image_get, NULL },
	{ "DELETE", "/v1/images/{name}", h_image_delete, NULL },
	{ "POST", "/v1/images/{name}/warm", h_image_warm, NULL },
	{ "DELETE", "/v1/images/{name}/warm", h_image_cool, NULL },
	{ "GET", "/v1/operations", h_op_list, NULL },
	{ "GET", "/v1/operations/{id}", h_op_get, NULL },
	{ "POST", "/v1/operations/{id}/cancel", h_op_cancel, NULL },
	{ "GET", "/v1/events", h_events, NULL },
};

const struct api_route *
api_routes(int *ret_n)
{
	*ret_n = (int)ARRAY_SIZE(routes);
	return routes;
}
