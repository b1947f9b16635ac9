/* tui_model.c - what 'banger tui' shows, as plain data: the VM list kept
 * current from API replies and events, the selection, the last message,
 * and the text of the VM table's rows.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"
#include "tui.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
tui_model_init(struct tui_model *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->conn, sizeof(m->conn), "connecting");
}

void
tui_model_release(struct tui_model *m)
{
	free(m->vms);
	if (m->images != NULL)
		json_decref(m->images);
	if (m->doctor != NULL)
		json_decref(m->doctor);
	memset(m, 0, sizeof(*m));
}

void
tui_model_message(struct tui_model *m, bool error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->message, sizeof(m->message), fmt, ap);
	va_end(ap);
	out_clean(m->message, m->message, sizeof(m->message));
	m->message_is_error = error;
}

static void
copy(char *dst, size_t len, const char *s)
{
	out_clean(s ? s : "", dst, len);
}

long long
tui_parse_time(const char *s)
{
	struct tm tm;
	const char *end;
	long long t;

	if (s == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return -1;
	if (*end == '.') {
		end++;
		if (*end < '0' || *end > '9')
			return -1;
		while (*end >= '0' && *end <= '9')
			end++;
	}
	t = (long long)timegm(&tm);
	if (*end == 'Z' || *end == 'z') {
		end++;
	} else if (*end == '+' || *end == '-') {
		int sign = *end == '-' ? -1 : 1, hh, mm;

		if (sscanf(end + 1, "%2d:%2d", &hh, &mm) != 2)
			return -1;
		t -= sign * (hh * 3600LL + mm * 60LL);
		end += 6;
	} else {
		return -1;
	}
	return *end == '\0' ? t : -1;
}

void
tui_format_uptime(long long s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	/* Whole seconds below a minute; above, the same as everywhere. */
	if (s < 60)
		snprintf(buf, len, "%llds", s);
	else
		out_duration((double)s, buf, len);
}

/* ---- the VM list ---- */

int
tui_model_index(const struct tui_model *m, const char *name)
{
	size_t lo = 0, hi = m->nvms;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->vms[mid].name, name);

		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

struct tui_vm *
tui_model_find(struct tui_model *m, const char *name)
{
	int i = tui_model_index(m, name);

	return i < 0 ? NULL : &m->vms[i];
}

/* Fill the API-backed fields of v from a VM object; keeps op_*. */
static void
vm_fill(struct tui_vm *v, json_t *vm)
{
	json_t *spec = jobj(vm, WIRE_SPEC), *st = jobj(vm, WIRE_STATUS);
	long long t;

	copy(v->name, sizeof(v->name), jstr(vm, WIRE_NAME));
	copy(v->state, sizeof(v->state), jstr(st, WIRE_STATE));
	copy(v->ip, sizeof(v->ip), jstr(st, "ip"));
	copy(v->health, sizeof(v->health), jstr(st, "health"));
	copy(v->image, sizeof(v->image), jstr(spec, WIRE_IMAGE));
	copy(v->last_error, sizeof(v->last_error), jstr(st, "last_error"));
	v->nat = json_is_true(jobj(spec, WIRE_NAT));
	t = tui_parse_time(jstr(st, "started_at"));
	v->started_at = t > 0 ? t : 0;
}

/* Insert a zeroed slot at sorted position for name; returns it. */
static struct tui_vm *
vm_insert(struct tui_model *m, const char *name)
{
	size_t pos = 0;

	while (pos < m->nvms && strcmp(m->vms[pos].name, name) < 0)
		pos++;
	if (m->nvms == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->vms = xrealloc(m->vms, m->cap * sizeof(*m->vms));
	}
	memmove(&m->vms[pos + 1], &m->vms[pos],
	    (m->nvms - pos) * sizeof(*m->vms));
	m->nvms++;
	memset(&m->vms[pos], 0, sizeof(m->vms[pos]));
	copy(m->vms[pos].name, sizeof(m->vms[pos].name), name);
	return &m->vms[pos];
}

void
tui_model_put_vm(struct tui_model *m, json_t *vm)
{
	const char *name = jstr(vm, WIRE_NAME);
	struct tui_vm *v;

	if (name == NULL || name[0] == '\0')
		return;
	v = tui_model_find(m, name);
	if (v == NULL)
		v = vm_insert(m, name);
	vm_fill(v, vm);
	if (m->selected[0] == '\0')
		copy(m->selected, sizeof(m->selected), name);
}

void
tui_model_set_usage(struct tui_model *m, const char *name, json_t *u,
    long long at_ms)
{
	struct tui_vm *v = tui_model_find(m, name);
	double cpu = json_number_value(jobj(u, "cpu_seconds"));

	if (v == NULL)
		return;
	if (!json_is_true(jobj(u, "running"))) {
		v->usage_known = false;
		return;
	}
	v->cpu_pct = v->usage_known && at_ms > v->cpu_at_ms && cpu >= v->cpu_s ?
	    (cpu - v->cpu_s) * 100000.0 / (double)(at_ms - v->cpu_at_ms) : -1;
	v->cpu_s = cpu;
	v->cpu_at_ms = at_ms;
	v->mem_bytes = json_integer_value(jobj(u, "memory_bytes"));
	v->usage_known = true;
}

void
tui_model_set_vms(struct tui_model *m, json_t *vms)
{
	struct tui_vm *old = m->vms;
	size_t nold = m->nvms, i;
	json_t *vm;
	char sel[64];

	snprintf(sel, sizeof(sel), "%s", m->selected);
	m->vms = NULL;
	m->nvms = m->cap = 0;
	m->selected[0] = '\0';
	json_array_foreach(vms, i, vm) {
		const char *name = jstr(vm, WIRE_NAME);

		tui_model_put_vm(m, vm);
		if (name == NULL)
			continue;
		/* An operation we know about outlives a list refresh. */
		for (size_t k = 0; k < nold; k++) {
			if (strcmp(old[k].name, name) != 0)
				continue;
			struct tui_vm *v = tui_model_find(m, name);

			if (v == NULL)
				break;
			memcpy(v->op_id, old[k].op_id, sizeof(v->op_id));
			memcpy(v->op_kind, old[k].op_kind, sizeof(v->op_kind));
			memcpy(v->op_stage, old[k].op_stage, sizeof(v->op_stage));
			memcpy(v->op_done, old[k].op_done, sizeof(v->op_done));
			v->op_progress = old[k].op_progress;
			v->op_active = old[k].op_active;
			v->usage_known = old[k].usage_known;
			v->cpu_s = old[k].cpu_s;
			v->cpu_at_ms = old[k].cpu_at_ms;
			v->cpu_pct = old[k].cpu_pct;
			v->mem_bytes = old[k].mem_bytes;
			break;
		}
	}
	free(old);
	m->vms_loaded = true;
	/* Keep the selection on the same VM when it is still there. */
	if (sel[0] != '\0' && tui_model_find(m, sel) != NULL)
		snprintf(m->selected, sizeof(m->selected), "%s", sel);
	else if (m->nvms > 0)
		snprintf(m->selected, sizeof(m->selected), "%s", m->vms[0].name);
}

bool
tui_model_remove_vm(struct tui_model *m, const char *name)
{
	int i = tui_model_index(m, name);

	if (i < 0)
		return false;
	memmove(&m->vms[i], &m->vms[i + 1],
	    (m->nvms - (size_t)i - 1) * sizeof(*m->vms));
	m->nvms--;
	if (strcmp(m->selected, name) == 0) {
		if (m->nvms == 0)
			m->selected[0] = '\0';
		else
			snprintf(m->selected, sizeof(m->selected), "%s",
			    m->vms[(size_t)i < m->nvms ? (size_t)i : m->nvms - 1].name);
	}
	return true;
}

void
tui_model_select_move(struct tui_model *m, int delta)
{
	int i, n = (int)m->nvms;

	if (n == 0) {
		m->selected[0] = '\0';
		return;
	}
	i = tui_model_index(m, m->selected);
	if (i < 0)
		i = 0;
	else
		i += delta;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	snprintf(m->selected, sizeof(m->selected), "%s", m->vms[i].name);
}

const struct tui_vm *
tui_model_selected(const struct tui_model *m)
{
	int i = m->selected[0] ? tui_model_index(m, m->selected) : -1;

	return i < 0 ? NULL : &m->vms[i];
}

/* ---- operations and events ---- */

static bool
op_is_active(const char *state)
{
	return state != NULL &&
	    (strcmp(state, "pending") == 0 || strcmp(state, "running") == 0);
}

bool
tui_model_set_op(struct tui_model *m, json_t *op)
{
	const char *kind = jstr(op, WIRE_KIND), *target = jstr(op, WIRE_TARGET);
	const char *state = jstr(op, WIRE_STATE), *id = jstr(op, WIRE_ID);
	json_t *pct = jobj(op, WIRE_PROGRESS);
	struct tui_vm *v = NULL;
	char what[96];

	if (id == NULL || kind == NULL)
		return false;
	if (target != NULL && strncmp(kind, "vm.", 3) == 0)
		v = tui_model_find(m, target);
	if (v != NULL) {
		/* A 202 reply can arrive after its operation's last event
		 * (they come on different connections): never bring a
		 * finished operation back. */
		if (op_is_active(state) && strcmp(v->op_done, id) == 0)
			return false;
		copy(v->op_id, sizeof(v->op_id), id);
		copy(v->op_kind, sizeof(v->op_kind), kind);
		copy(v->op_stage, sizeof(v->op_stage), jstr(op, WIRE_STAGE));
		v->op_progress = json_is_integer(pct) ?
		    (int)json_integer_value(pct) : 0;
		v->op_active = op_is_active(state);
		if (!v->op_active)
			copy(v->op_done, sizeof(v->op_done), id);
	}
	if (op_is_active(state) || state == NULL)
		return true;
	snprintf(what, sizeof(what), "%s%s%s", kind, target ? " " : "",
	    target ? target : "");
	if (strcmp(state, "succeeded") == 0) {
		tui_model_message(m, false, "%s: done", what);
	} else {
		const char *msg = jstr(jobj(op, WIRE_ERROR), WIRE_MESSAGE);

		tui_model_message(m, true, "%s failed: %s", what,
		    msg ? msg : state);
	}
	return true;
}

unsigned
tui_model_apply_event(struct tui_model *m, json_t *ev, char *refetch,
    size_t len)
{
	const char *type = jstr(ev, WIRE_TYPE), *name = jstr(ev, WIRE_VM);
	json_t *data = jobj(ev, WIRE_DATA);
	struct tui_vm *v;

	if (refetch != NULL && len > 0)
		refetch[0] = '\0';
	if (type == NULL)
		return 0;
	if (strncmp(type, "image.", 6) == 0)
		return TUI_REFETCH_IMAGES;
	if (strncmp(type, "operation.", 10) == 0) {
		const char *kind = jstr(data, WIRE_KIND);
		const char *target = jstr(data, WIRE_TARGET);

		tui_model_set_op(m, data);
		/* A finished VM operation changed the VM: read it again
		 * (a deleted one answers 404 and leaves the list). */
		if (strcmp(type, "operation.finished") == 0 && kind != NULL &&
		    target != NULL && strncmp(kind, "vm.", 3) == 0) {
			snprintf(refetch, len, "%s", target);
			return TUI_REFETCH_VM;
		}
		if (kind != NULL && strcmp(kind, "image.build") == 0 &&
		    strcmp(type, "operation.finished") == 0)
			return TUI_REFETCH_IMAGES;
		return 0;
	}
	if (name == NULL || strncmp(type, "vm.", 3) != 0)
		return 0;
	if (strcmp(type, "vm.deleted") == 0) {
		tui_model_remove_vm(m, name);
		return 0;
	}
	if (strcmp(type, "vm.created") == 0 || strcmp(type, "vm.updated") == 0) {
		if (jstr(data, WIRE_NAME) != NULL) {
			tui_model_put_vm(m, data);
			return 0;
		}
		snprintf(refetch, len, "%s", name);
		return TUI_REFETCH_VM;
	}
	v = tui_model_find(m, name);
	if (strcmp(type, "vm.health") == 0 && v != NULL) {
		const char *st = jstr(data, WIRE_STATUS);

		if (st != NULL)
			copy(v->health, sizeof(v->health), st);
		return 0;
	}
	if (strcmp(type, "vm.state") == 0 && v != NULL &&
	    jstr(data, WIRE_STATE) != NULL)
		copy(v->state, sizeof(v->state), jstr(data, WIRE_STATE));
	/* vm.state, events about a VM not listed yet and unknown vm.*
	 * types: the state shows at once; IP and times come with the VM. */
	snprintf(refetch, len, "%s", name);
	return TUI_REFETCH_VM;
}

/* ---- rows ---- */

void
tui_vm_cols(const struct tui_model *m, int width, struct tui_cols *c)
{
	int used;

	c->name = 8;
	for (size_t i = 0; i < m->nvms; i++) {
		int n = (int)strlen(m->vms[i].name);

		if (n > c->name)
			c->name = n;
	}
	if (c->name > 32)
		c->name = 32;
	c->state = 9;
	c->ip = 15;
	c->health = 11;
	c->uptime = 8;
	c->nat = 3;
	c->image = 12;
	c->cpu = 5;
	c->mem = 7;
	/* One space before each column (the first is the selection mark). */
	used = 1 + c->name + 1 + c->state + 1 + c->ip + 1 + c->health + 1 +
	    c->uptime + 1 + c->nat + 1 + c->image + 1 + c->cpu + 1 + c->mem + 1;
	c->op = width - used;
	if (c->op < 9)
		c->op = 9;
}

/* Append 'text' cut or padded to w columns, then one space. */
static int
cell(char *buf, int pos, int width, const char *text, int w)
{
	int n = 0;

	for (; text[n] != '\0' && n < w && pos + n < width; n++) {
		unsigned char ch = (unsigned char)text[n];

		buf[pos + n] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
	}
	for (; n < w + 1 && pos + n < width; n++)
		buf[pos + n] = ' ';
	return pos + n;
}

static void
row_finish(char *buf, int pos, int width)
{
	while (pos < width)
		buf[pos++] = ' ';
	buf[width] = '\0';
}

void
tui_vm_header(const struct tui_cols *c, char *buf, int width)
{
	int p = cell(buf, 0, width, "", 0);

	p = cell(buf, p, width, "NAME", c->name);
	p = cell(buf, p, width, "STATE", c->state);
	p = cell(buf, p, width, "IP", c->ip);
	p = cell(buf, p, width, "HEALTH", c->health);
	p = cell(buf, p, width, "UPTIME", c->uptime);
	p = cell(buf, p, width, "NAT", c->nat);
	p = cell(buf, p, width, "IMAGE", c->image);
	p = cell(buf, p, width, "CPU%", c->cpu);
	p = cell(buf, p, width, "MEM", c->mem);
	p = cell(buf, p, width, "OPERATION", c->op);
	row_finish(buf, p, width);
}

void
tui_vm_row(const struct tui_vm *vm, const struct tui_cols *c, long long now,
    char *buf, int width)
{
	char up[32], op[128];
	int p = cell(buf, 0, width, "", 0);

	if ((strcmp(vm->state, "running") == 0 ||
	    strcmp(vm->state, "paused") == 0) && vm->started_at > 0)
		tui_format_uptime(now - vm->started_at, up, sizeof(up));
	else
		snprintf(up, sizeof(up), "-");
	if (vm->op_active)
		snprintf(op, sizeof(op), "%s %s %d%%", vm->op_kind + 3,
		    vm->op_stage, vm->op_progress);
	else if (strcmp(vm->state, "error") == 0 && vm->last_error[0])
		snprintf(op, sizeof(op), "error: %s", vm->last_error);
	else
		op[0] = '\0';
	p = cell(buf, p, width, vm->name, c->name);
	p = cell(buf, p, width, vm->state[0] ? vm->state : "?", c->state);
	p = cell(buf, p, width, vm->ip[0] ? vm->ip : "-", c->ip);
	p = cell(buf, p, width, vm->health[0] ? vm->health : "-", c->health);
	p = cell(buf, p, width, up, c->uptime);
	p = cell(buf, p, width, vm->nat ? "on" : "off", c->nat);
	p = cell(buf, p, width, vm->image[0] ? vm->image : "-", c->image);
	bool up_now = vm->usage_known && (strcmp(vm->state, "running") == 0 ||
	    strcmp(vm->state, "paused") == 0);
	char cpu[16], mem[16];
	if (up_now && vm->cpu_pct >= 0)
		snprintf(cpu, sizeof(cpu), "%.0f", vm->cpu_pct);
	else
		snprintf(cpu, sizeof(cpu), "-");
	if (!up_now)
		snprintf(mem, sizeof(mem), "-");
	else if (vm->mem_bytes >= 10LL << 30)
		snprintf(mem, sizeof(mem), "%lldG", vm->mem_bytes >> 30);
	else if (vm->mem_bytes >= 1LL << 30)
		snprintf(mem, sizeof(mem), "%.1fG", (double)vm->mem_bytes /
		    (1 << 30));
	else
		snprintf(mem, sizeof(mem), "%lldM", vm->mem_bytes >> 20);
	p = cell(buf, p, width, cpu, c->cpu);
	p = cell(buf, p, width, mem, c->mem);
	p = cell(buf, p, width, op, c->op);
	row_finish(buf, p, width);
}
