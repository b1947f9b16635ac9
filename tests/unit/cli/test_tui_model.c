/* test_tui_model.c - the state behind 'banger tui' (tui_model.c). */
#include "cli/cli.h"
#include "cli/tui.h"

#include <string.h>

#include "../tap.h"

static json_t *
vm(const char *name, const char *state, const char *ip, const char *started)
{
	return json_pack("{s:s, s:s, s:{s:s, s:i, s:i, s:i, s:b}, "
	    "s:{s:s, s:s?, s:s, s:s?, s:s?}}",
	    "name", name, "id", "0123456789abcdef",
	    "spec", "image", "default", "vcpus", 1, "memory_mib", 512,
	    "disk_gib", 8, "nat", 0,
	    "status", "state", state, "ip", ip, "health", "ok",
	    "started_at", started, "last_error", NULL);
}

static json_t *
event(const char *type, const char *name, json_t *data)
{
	return json_pack("{s:i, s:s, s:s, s:s?, s:n, s:o}", "id", 1, "type",
	    type, "time", "2026-11-25T21:43:02Z", "vm", name, "operation",
	    "data", data ? data : json_object());
}

static json_t *
op(const char *id, const char *kind, const char *target, const char *state,
    const char *stage, int pct)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:n, s:n}", "id", id,
	    "kind", kind, "target", target, "state", state, "stage", stage,
	    "progress", pct, "error", "result");
}

static void
load(struct tui_model *m)
{
	json_t *list = json_array();

	json_array_append_new(list, vm("web", "running", "172.30.0.2",
	    "2026-11-25T21:40:00Z"));
	json_array_append_new(list, vm("api", "stopped", NULL, NULL));
	json_array_append_new(list, vm("db", "running", "172.30.0.3",
	    "2026-11-25T20:00:00Z"));
	tui_model_set_vms(m, list);
	json_decref(list);
}

static int
test_list_sorted_and_selection(void)
{
	struct tui_model m;

	tui_model_init(&m);
	load(&m);
	fail_unless(m.nvms == 3 && m.vms_loaded, "3 VMs");
	fail_unless(strcmp(m.vms[0].name, "api") == 0 &&
	    strcmp(m.vms[1].name, "db") == 0 &&
	    strcmp(m.vms[2].name, "web") == 0, "sorted by name");
	fail_unless(strcmp(m.selected, "api") == 0, "first selected: %s",
	    m.selected);
	tui_model_select_move(&m, 5);
	fail_unless(strcmp(m.selected, "web") == 0, "clamped at the end");
	tui_model_select_move(&m, -1);
	fail_unless(strcmp(tui_model_selected(&m)->name, "db") == 0, "moved up");
	/* A refresh keeps the selection on the same VM. */
	load(&m);
	fail_unless(strcmp(m.selected, "db") == 0, "kept: %s", m.selected);
	/* Removing it selects the neighbour. */
	fail_unless(tui_model_remove_vm(&m, "db"), "removed");
	fail_unless(strcmp(m.selected, "web") == 0, "neighbour: %s", m.selected);
	fail_unless(!tui_model_remove_vm(&m, "db"), "gone already");
	fail_unless(tui_model_remove_vm(&m, "web"), "removed web");
	fail_unless(strcmp(m.selected, "api") == 0, "last one: %s", m.selected);
	fail_unless(tui_model_remove_vm(&m, "api") && m.selected[0] == '\0' &&
	    tui_model_selected(&m) == NULL, "empty");
	tui_model_release(&m);
	return 0;
}

static int
test_vm_fields(void)
{
	struct tui_model m;
	const struct tui_vm *v;

	tui_model_init(&m);
	load(&m);
	v = tui_model_find(&m, "web");
	fail_unless(v != NULL, "web");
	fail_unless(strcmp(v->state, "running") == 0, "%s", v->state);
	fail_unless(strcmp(v->ip, "172.30.0.2") == 0, "%s", v->ip);
	fail_unless(strcmp(v->health, "ok") == 0, "%s", v->health);
	fail_unless(v->started_at == tui_parse_time("2026-11-25T21:40:00Z"),
	    "started_at");
	v = tui_model_find(&m, "api");
	fail_unless(v->ip[0] == '\0' && v->started_at == 0, "null ip and time");
	tui_model_release(&m);
	return 0;
}

static int
test_events(void)
{
	struct tui_model m;
	char name[64];
	unsigned what;
	json_t *ev;

	tui_model_init(&m);
	load(&m);

	/* vm.state: the state at once, and the VM read again. */
	ev = event("vm.state", "api", json_pack("{s:s, s:s}", "state",
	    "starting", "previous", "stopped"));
	what = tui_model_apply_event(&m, ev, name, sizeof(name));
	json_decref(ev);
	fail_unless(what == TUI_REFETCH_VM && strcmp(name, "api") == 0,
	    "refetch api: %u %s", what, name);
	fail_unless(strcmp(tui_model_find(&m, "api")->state, "starting") == 0,
	    "state applied");

	/* vm.health: applied, nothing to read. */
	ev = event("vm.health", "web", json_pack("{s:s, s:s}", "status",
	    "degraded", "reason", "disk"));
	what = tui_model_apply_event(&m, ev, name, sizeof(name));
	json_decref(ev);
	fail_unless(what == 0, "no refetch: %u", what);
	fail_unless(strcmp(tui_model_find(&m, "web")->health, "degraded") == 0,
	    "health applied");

	/* vm.created carries the VM. */
	ev = event("vm.created", "new", vm("new", "creating", NULL, NULL));
	what = tui_model_apply_event(&m, ev, name, sizeof(name));
	json_decref(ev);
	fail_unless(what == 0 && tui_model_find(&m, "new") != NULL, "created");
	fail_unless(m.nvms == 4, "%zu", m.nvms);

	/* A state change of a VM not listed yet: read it. */
	ev = event("vm.state", "other", json_pack("{s:s, s:s}", "state",
	    "running", "previous", "starting"));
	what = tui_model_apply_event(&m, ev, name, sizeof(name));
	json_decref(ev);
	fail_unless(what == TUI_REFETCH_VM && strcmp(name, "other") == 0,
	    "unknown VM read");

	/* vm.deleted removes it. */
	ev = event("vm.deleted", "new", NULL);
	what = tui_model_apply_event(&m, ev, name, sizeof(name));
	json_decref(ev);
	fail_unless(what == 0 && tui_model_find(&m, "new") == NULL, "deleted");

	/* image.*: the images view reads again. */
	ev = event("image.deleted", NULL, json_pack("{s:s}", "name", "x"));
	what = tui_model_apply_event(&m, ev, name, sizeof(name));
	json_decref(ev);
	fail_unless(what == TUI_REFETCH_IMAGES, "%u", what);
	tui_model_release(&m);
	return 0;
}

static int
test_operations(void)
{
	struct tui_model m;
	const struct tui_vm *v;
	char name[64];
	unsigned what;
	json_t *ev, *o;

	tui_model_init(&m);
	load(&m);
	ev = event("operation.updated", "web", op("op-1", "vm.stop", "web",
	    "running", "stopping", 10));
	what = tui_model_apply_event(&m, ev, name, sizeof(name));
	json_decref(ev);
	v = tui_model_find(&m, "web");
	fail_unless(what == 0, "no refetch while running");
	fail_unless(v->op_active && strcmp(v->op_stage, "stopping") == 0 &&
	    v->op_progress == 10 && strcmp(v->op_kind, "vm.stop") == 0,
	    "stage shown");

	/* Survives a list refresh. */
	load(&m);
	v = tui_model_find(&m, "web");
	fail_unless(v->op_active && strcmp(v->op_id, "op-1") == 0, "kept");

	o = op("op-1", "vm.stop", "web", "failed", "stopping", 10);
	json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code",
	    "vmm_error", "message", "the VMM did not stop"));
	ev = event("operation.finished", "web", o);
	what = tui_model_apply_event(&m, ev, name, sizeof(name));
	json_decref(ev);
	v = tui_model_find(&m, "web");
	fail_unless(what == TUI_REFETCH_VM && strcmp(name, "web") == 0,
	    "finished: read the VM");
	fail_unless(!v->op_active, "no longer active");
	fail_unless(m.message_is_error &&
	    strcmp(m.message, "vm.stop web failed: the VMM did not stop") == 0,
	    "message: %s", m.message);

	/* The 202 reply of that operation, arriving late, does not bring
	 * it back. */
	o = op("op-1", "vm.stop", "web", "pending", "queued", 0);
	fail_unless(!tui_model_set_op(&m, o), "a stale reply says so");
	json_decref(o);
	fail_unless(!tui_model_find(&m, "web")->op_active, "not resurrected");

	/* A new operation does show. */
	o = op("op-2", "vm.start", "web", "pending", "queued", 0);
	fail_unless(tui_model_set_op(&m, o), "a new op is news");
	json_decref(o);
	v = tui_model_find(&m, "web");
	fail_unless(v->op_active && strcmp(v->op_id, "op-2") == 0, "new op");
	o = op("op-2", "vm.start", "web", "succeeded", "done", 100);
	tui_model_set_op(&m, o);
	json_decref(o);
	fail_unless(!m.message_is_error &&
	    strcmp(m.message, "vm.start web: done") == 0, "%s", m.message);
	tui_model_release(&m);
	return 0;
}

static int
test_time_and_uptime(void)
{
	char buf[32];

	fail_unless(tui_parse_time("1970-01-01T00:01:00Z") == 60, "epoch");
	fail_unless(tui_parse_time("2026-11-25T21:43:02Z") == 1795642982LL,
	    "%lld", tui_parse_time("2026-11-25T21:43:02Z"));
	fail_unless(tui_parse_time("2026-11-25T21:43:02.123Z") == 1795642982LL,
	    "fraction");
	fail_unless(tui_parse_time("2026-11-25T22:43:02+01:00") == 1795642982LL,
	    "offset");
	fail_unless(tui_parse_time("2026-11-25 21:43:02") == -1, "no T");
	fail_unless(tui_parse_time("2026-11-25T21:43:02") == -1, "no zone");
	fail_unless(tui_parse_time("2026-11-25T21:43:02Zjunk") == -1, "junk");
	fail_unless(tui_parse_time(NULL) == -1, "NULL");
	tui_format_uptime(42, buf, sizeof(buf));
	fail_unless(strcmp(buf, "42s") == 0, "%s", buf);
	tui_format_uptime(303, buf, sizeof(buf));
	fail_unless(strcmp(buf, "5m03s") == 0, "%s", buf);
	tui_format_uptime(3 * 3600 + 7 * 60 + 5, buf, sizeof(buf));
	fail_unless(strcmp(buf, "3h07m") == 0, "%s", buf);
	tui_format_uptime(2 * 86400 + 4 * 3600, buf, sizeof(buf));
	fail_unless(strcmp(buf, "2d04h") == 0, "%s", buf);
	tui_format_uptime(-5, buf, sizeof(buf));
	fail_unless(strcmp(buf, "0s") == 0, "clock skew: %s", buf);
	return 0;
}

static int
test_rows(void)
{
	struct tui_model m;
	struct tui_cols c;
	struct tui_vm *v;
	char buf[121];
	long long now = tui_parse_time("2026-11-25T21:45:03Z");

	tui_model_init(&m);
	load(&m);
	tui_vm_cols(&m, 120, &c);
	fail_unless(c.name == 8, "short names: %d", c.name);
	tui_vm_header(&c, buf, 120);
	fail_unless(strlen(buf) == 120, "header width %zu", strlen(buf));
	fail_unless(strncmp(buf, " NAME     STATE", 15) == 0, "[%s]", buf);
	fail_unless(strstr(buf, "UPTIME") && strstr(buf, "OPERATION"), "[%s]",
	    buf);
	tui_vm_row(tui_model_find(&m, "web"), &c, now, buf, 120);
	fail_unless(strlen(buf) == 120, "row width %zu", strlen(buf));
	fail_unless(strncmp(buf, " web      running   172.30.0.2      ok    ",
	    40) == 0, "[%s]", buf);
	fail_unless(strstr(buf, " 5m03s ") != NULL, "uptime: [%s]", buf);
	tui_vm_row(tui_model_find(&m, "api"), &c, now, buf, 120);
	fail_unless(strstr(buf, " stopped ") && strstr(buf, " -  "),
	    "no ip, no uptime: [%s]", buf);

	fail_unless(strstr(buf, "CPU%") == NULL, "a row, not the header");
	tui_vm_header(&c, buf, 120);
	fail_unless(strstr(buf, " IMAGE ") && strstr(buf, " CPU% ") &&
	    strstr(buf, " MEM "), "usage columns: [%s]", buf);
	/* CPU% from two usage samples: 0.5 s of CPU over 2 s is 25%. */
	json_t *u1 = json_pack("{s:b, s:f, s:I}", "running", 1, "cpu_seconds",
	    10.0, "memory_bytes", (json_int_t)(300LL << 20));
	json_t *u2 = json_pack("{s:b, s:f, s:I}", "running", 1, "cpu_seconds",
	    10.5, "memory_bytes", (json_int_t)(3LL << 30));
	tui_model_set_usage(&m, "web", u1, 1000);
	tui_vm_row(tui_model_find(&m, "web"), &c, now, buf, 120);
	fail_unless(strstr(buf, " -     300M ") != NULL, "one sample: [%s]", buf);
	tui_model_set_usage(&m, "web", u2, 3000);
	tui_vm_row(tui_model_find(&m, "web"), &c, now, buf, 120);
	fail_unless(strstr(buf, " 25    3.0G ") != NULL, "two: [%s]", buf);
	json_decref(u1);
	json_decref(u2);
	tui_vm_row(tui_model_find(&m, "api"), &c, now, buf, 120);
	fail_unless(strstr(buf, " -     -  ") != NULL, "stopped: [%s]", buf);

	/* Narrow terminals cut; control characters never reach the screen. */
	v = tui_model_find(&m, "web");
	snprintf(v->op_stage, sizeof(v->op_stage), "evil\033[2J");
	snprintf(v->op_kind, sizeof(v->op_kind), "vm.stop");
	v->op_active = true;
	tui_vm_row(v, &c, now, buf, 120);
	fail_unless(strchr(buf, '\033') == NULL, "escape replaced: [%s]", buf);
	fail_unless(strstr(buf, "stop evil?[2J 0%") != NULL, "op: [%s]", buf);
	tui_vm_row(v, &c, now, buf, 20);
	fail_unless(strlen(buf) == 20, "cut to 20: %zu", strlen(buf));
	tui_model_release(&m);
	return 0;
}

int
main(void)
{
	tap_begin();
	RUN_TEST(test_list_sorted_and_selection);
	RUN_TEST(test_vm_fields);
	RUN_TEST(test_events);
	RUN_TEST(test_operations);
	RUN_TEST(test_time_and_uptime);
	RUN_TEST(test_rows);
	return tap_end();
}
