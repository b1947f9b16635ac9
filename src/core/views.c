/* views.c - JSON views of VMs, images, operations and errors: the API's
 * bodies, operation results and event data. */
#include "core/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"

static json_t *
ts_or_null(const char *ts)
{
	return json_str_or_null(ts);
}

/* How the last stop ended, or null before the first. */
json_t *
vm_last_stop_json(const struct vm *vm)
{
	char sum[48];

	if (vm->stop_result[0] == '\0')
		return json_null();
	if (strcmp(vm->stop_result, "forced") == 0)
		snprintf(sum, sizeof(sum), "forced after %d s",
		    (vm->stop_ms + 500) / 1000);
	else
		snprintf(sum, sizeof(sum), "%s", vm->stop_result);
	return json_pack("{s:s, s:s, s:i, s:s}", "result", vm->stop_result,
	    "method", vm->stop_method, "duration_ms", vm->stop_ms, "summary", sum);
}

static json_t *
vm_ports_json(const struct vm *vm)
{
	json_t *a = json_array();

	for (int i = 0; i < vm->nports; i++)
		json_array_append_new(a, json_pack("{s:i, s:i, s:s}", "host",
		    vm->ports[i].host, "guest", vm->ports[i].guest, "address",
		    vm->ports[i].addr));
	return a;
}

static json_t *
vm_mounts_json(const struct vm *vm)
{
	json_t *a = json_array();

	for (int i = 0; i < vm->nmounts; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:b}", "host",
		    vm->mounts[i].host, "guest", vm->mounts[i].guest, "readonly",
		    vm->mounts[i].readonly));
	return a;
}

static json_t *
vm_limits_json(const struct vm_limits *l)
{
	json_t *j = json_object();

	if (l->cpus > 0)
		json_object_set_new(j, "cpus", json_real(l->cpus));
	if (l->memory_max_mib > 0)
		json_object_set_new(j, "memory_max_mib",
		    json_integer(l->memory_max_mib));
	if (l->disk_bytes_per_s > 0)
		json_object_set_new(j, "disk_bytes_per_s",
		    json_integer(l->disk_bytes_per_s));
	if (l->disk_ops_per_s > 0)
		json_object_set_new(j, "disk_ops_per_s",
		    json_integer(l->disk_ops_per_s));
	if (l->net_bytes_per_s > 0)
		json_object_set_new(j, "net_bytes_per_s",
		    json_integer(l->net_bytes_per_s));
	return j;
}

json_t *
vm_to_json(const struct vm *vm)
{
	char dns[VM_NAME_MAX + 4];

	snprintf(dns, sizeof(dns), "%s.vm", vm->name);
	return json_pack("{s:s, s:s, s:{s:s, s:i, s:i, s:i, s:b, s:o, s:o, s:o}, "
	    "s:{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:o, s:s, s:o, "
	    "s:o, s:o}}",
	    "name", vm->name, "id", vm->id,
	    "spec", "image", vm->image, "vcpus", vm->vcpus, "memory_mib",
	    vm->memory_mib, "disk_gib", vm->disk_gib, "nat", vm->nat,
	    "ports", vm_ports_json(vm), "limits", vm_limits_json(&vm->limits),
	    "mounts", vm_mounts_json(vm),
	    "status", "state", vm_state_name(vm->state),
	    "ip", json_str_or_null(vm->ip),
	    "dns_name", vm->ip[0] ? json_string(dns) : json_null(),
	    "vmm", json_str_or_null(vm->vmm),
	    "accel", json_str_or_null(vm->accel),
	    "accel_reason", json_str_or_null(vm->accel_reason),
	    "pid", vm->pid > 0 ? json_integer(vm->pid) : json_null(),
	    "health", vm->health[0] ? vm->health : "unknown",
	    "created_at", vm->created_at,
	    "started_at", ts_or_null(vm->started_at),
	    "stopped_at", ts_or_null(vm->stopped_at),
	    "updated_at", vm->updated_at,
	    "last_error", json_str_or_null(vm->last_error),
	    "last_stop", vm_last_stop_json(vm),
	    "paused_reason", json_str_or_null(vm->paused_reason));
}

static json_t *
warm_to_json(const struct image_view *iv)
{
	const struct warm *w = &iv->warm;

	if (!iv->has_warm)
		return json_null();
	return json_pack("{s:s, s:{s:s, s:o}, s:i, s:i, s:i, s:I, s:o}",
	    "state", snap_state_name(w->state), "vmm", "kind", w->vmm,
	    "version", json_str_or_null(w->vmm_version), "vcpus", w->vcpus,
	    "memory_mib", w->memory_mib, "disk_gib", w->disk_gib,
	    "bytes", (json_int_t)w->bytes, "created_at",
	    ts_or_null(w->created_at));
}

json_t *
image_to_json(const struct image_view *iv)
{
	return json_pack("{s:s, s:s, s:b, s:b, s:b, s:s, s:o, s:o, s:o, s:o}",
	    "name", iv->img.name, "source", image_source_name(iv->img.source),
	    "managed", iv->img.managed, "default", iv->is_default,
	    "available", iv->available, "rootfs", iv->img.rootfs,
	    "work_seed", json_str_or_null(iv->img.work_seed),
	    "created_at", ts_or_null(iv->img.created_at),
	    "updated_at", ts_or_null(iv->img.updated_at),
	    "warm", warm_to_json(iv));
}

static json_t *
json_text_or_null(const char *text)
{
	json_t *j;

	if (text == NULL || *text == '\0')
		return json_null();
	j = json_loads(text, 0, NULL);
	return j ? j : json_null();
}

json_t *
snapshot_to_json(const char *vm_name, const struct snapshot *sn)
{
	return json_pack("{s:s, s:s, s:s, s:{s:s, s:o}, s:i, s:i, s:I, s:o}",
	    "name", sn->name, "vm", vm_name, "state", snap_state_name(sn->state),
	    "vmm", "kind", sn->vmm, "version", json_str_or_null(sn->vmm_version),
	    "vcpus", sn->vcpus, "memory_mib", sn->memory_mib,
	    "bytes", (json_int_t)sn->bytes, "created_at",
	    ts_or_null(sn->created_at));
}

json_t *
op_to_json(const struct op_row *op)
{
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:i, s:o, s:o, s:s, s:s, s:o, "
	    "s:o}",
	    "id", op->id, "kind", op->kind, "target", json_str_or_null(op->target),
	    "state", op_state_name(op->state), "stage", op->stage,
	    "progress", op->progress, "error", json_text_or_null(op->error_json),
	    "result", json_text_or_null(op->result_json),
	    "created_at", op->created_at, "updated_at", op->updated_at,
	    "finished_at", ts_or_null(op->finished_at),
	    "note", json_str_or_null(op->note));
}

json_t *
err_to_json(const struct bn_err *err)
{
	const struct bn_code_info *ci = bn_code_info(err->code);
	json_t *details = json_object();
	char msg[sizeof(err->msg)];

	/* Strip control characters: messages may quote user input. */
	for (size_t i = 0; i < sizeof(msg); i++) {
		unsigned char ch = (unsigned char)err->msg[i];
		msg[i] = (ch != 0 && (ch < 0x20 || ch == 0x7f)) ? ' ' : (char)ch;
		if (ch == 0)
			break;
	}
	msg[sizeof(msg) - 1] = '\0';
	if (err->detail_key[0])
		json_object_set_new(details, err->detail_key,
		    json_string(err->detail_val));
	if (err->sys_errno)
		json_object_set_new(details, "errno", json_integer(err->sys_errno));
	json_t *j = json_pack("{s:s, s:s, s:i, s:o, s:s}", WIRE_CODE, ci->name,
	    WIRE_MESSAGE, msg, WIRE_STATUS, ci->http_status, WIRE_DETAILS, details,
	    WIRE_HINT, err->hint);
	if (j == NULL) {
		/* Not valid UTF-8 (user input in the message): say less. */
		j = json_pack("{s:s, s:s, s:i, s:{}, s:s}", WIRE_CODE, ci->name,
		    WIRE_MESSAGE, "request rejected (message not representable)",
		    WIRE_STATUS, ci->http_status, WIRE_DETAILS, WIRE_HINT, "");
	}
	return j;
}

json_t *
health_to_json(const char *name, const struct vsock_health *h,
    const char *checked_at)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:O}",
	    "name", name,
	    "status", vsock_health_status_name(h->status), "reason", h->reason,
	    "detail", json_str_or_null(h->not_ready),
	    "protocol", json_str_or_null(h->protocol), "checked_at", checked_at,
	    "latency_ms", strcmp(h->reason, "vm_not_running") == 0 ? json_null() :
	    json_integer(h->latency_ms),
	    "agent_protocol", h->agent_protocol > 0 ?
	    json_integer(h->agent_protocol) : json_null(),
	    "capabilities", h->agent_protocol > 0 ?
	    vsock_caps_json(h->agent_caps) : json_null(),
	    "agent", h->agent ? h->agent : json_null());
}
