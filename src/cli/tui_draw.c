/* tui_draw.c - the screen of 'banger tui': the title line, the VM table
 * (or the images or doctor list), the message line and the key help.
 * Runs on the UI thread only, reading the model under t->mu.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"
#include "tui_app.h"

#include <curses.h>
#include <string.h>
#include <time.h>

/* Text at (y, x), cut at the screen's right edge (never wraps). */
static void
put(int y, int x, const char *s, attr_t attr)
{
	int room = COLS - x;
	char buf[1024];

	if (room <= 0 || y < 0 || y >= LINES)
		return;
	/* Keep the bottom-right cell free: writing it scrolls some
	 * terminals. */
	if (y == LINES - 1)
		room--;
	out_clean(s, buf, sizeof(buf));
	attron(attr);
	mvaddnstr(y, x, buf, room);
	attroff(attr);
}

static attr_t
pair_attr(const struct tui *t, enum tui_pair p)
{
	return t->color ? COLOR_PAIR(p) : A_NORMAL;
}

static enum tui_pair
word_pair(const char *w)
{
	static const char *const good[] = { "running", "ok" };
	static const char *const bad[] = { "error", "unreachable", "fail",
		"failed" };
	static const char *const busy[] = { "creating", "starting", "stopping",
		"paused", "degraded", "warn" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (strcmp(w, good[i]) == 0)
			return PAIR_GOOD;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (strcmp(w, bad[i]) == 0)
			return PAIR_BAD;
	for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++)
		if (strcmp(w, busy[i]) == 0)
			return PAIR_BUSY;
	return 0;
}

static void
draw_title(struct tui *t)
{
	static const char *const names[VIEW_COUNT] = { "VMs", "Images",
		"Doctor" };
	char left[256], right[300];
	int n = 0;

	n += snprintf(left + n, sizeof(left) - (size_t)n, " banger tui ");
	for (int v = 0; v < VIEW_COUNT; v++)
		n += snprintf(left + n, sizeof(left) - (size_t)n, " %s%d %s%s",
		    (int)t->view == v ? "[" : " ", v + 1, names[v],
		    (int)t->view == v ? "]" : " ");
	snprintf(right, sizeof(right), "%s ", t->m.conn);
	move(0, 0);
	attron(A_REVERSE);
	hline(' ', COLS);
	attroff(A_REVERSE);
	put(0, 0, left, A_REVERSE | A_BOLD);
	{
		int x = COLS - (int)strlen(right);
		int min = (int)strlen(left) + 2;

		if (x < min)
			x = min;
		put(0, x, right, A_REVERSE |
		    (t->m.connected ? 0 : A_BOLD | pair_attr(t, PAIR_BAD)));
	}
}

static void
draw_vms(struct tui *t, int y0, int rows)
{
	struct tui_model *m = &t->m;
	struct tui_cols c;
	long long now = (long long)time(NULL);
	int sel, width = COLS;
	char *buf;

	if (width < 1)
		return;
	buf = xmalloc((size_t)width + 1);
	tui_vm_cols(m, width, &c);
	tui_vm_header(&c, buf, width);
	put(y0, 0, buf, A_BOLD | A_UNDERLINE);
	rows--;
	y0++;
	if (!m->vms_loaded) {
		put(y0, 1, "loading VMs...", A_NORMAL);
		free(buf);
		return;
	}
	if (m->nvms == 0) {
		put(y0, 1, "no VMs yet: create one with "
		    "'banger vm create --name NAME'", A_NORMAL);
		free(buf);
		return;
	}
	sel = tui_model_index(m, m->selected);
	if (sel < 0)
		sel = 0;
	if (sel < t->top)
		t->top = sel;
	if (sel >= t->top + rows)
		t->top = sel - rows + 1;
	if (t->top > (int)m->nvms - rows)
		t->top = (int)m->nvms - rows;
	if (t->top < 0)
		t->top = 0;
	for (int i = 0; i < rows && t->top + i < (int)m->nvms; i++) {
		const struct tui_vm *vm = &m->vms[t->top + i];
		bool is_sel = t->top + i == sel;
		int x;

		tui_vm_row(vm, &c, now, buf, width);
		if (is_sel)
			buf[0] = '>';
		put(y0 + i, 0, buf, is_sel ? A_REVERSE : A_NORMAL);
		if (!t->color)
			continue;
		/* Colour the state and health cells. */
		x = 1 + c.name + 1;
		if (word_pair(vm->state) && x < width)
			mvchgat(y0 + i, x, c.state < width - x ? c.state : width - x,
			    is_sel ? A_REVERSE : A_NORMAL, (short)word_pair(vm->state),
			    NULL);
		x += c.state + 1 + c.ip + 1;
		if (word_pair(vm->health) && x < width)
			mvchgat(y0 + i, x, c.health < width - x ? c.health :
			    width - x, is_sel ? A_REVERSE : A_NORMAL,
			    (short)word_pair(vm->health), NULL);
	}
	if (t->top + rows < (int)m->nvms) {
		char more[64];

		snprintf(more, sizeof(more), " (%d more below) ",
		    (int)m->nvms - t->top - rows);
		put(y0 + rows - 1, COLS - (int)strlen(more) - 1, more, A_BOLD);
	}
	free(buf);
}

/* A scrolled list of lines: skips the first t->scroll, shows 'rows'. */
struct lines {
	struct tui *t;
	int y0, rows, n;
};

static void
emit(struct lines *l, const char *text, attr_t attr)
{
	int i = l->n++ - l->t->scroll;

	if (i >= 0 && i < l->rows)
		put(l->y0 + i, 0, text, attr);
}

/* Clamp the scroll offset and say what is below. */
static void
lines_end(struct lines *l)
{
	struct tui *t = l->t;
	int max = l->n - l->rows;

	t->scroll_max = max > 0 ? max : 0;
	if (t->scroll > t->scroll_max) {
		/* The list got shorter: draw() goes again at once. */
		t->scroll = t->scroll_max;
		t->redraw = true;
		return;
	}
	if (t->scroll + l->rows < l->n) {
		char more[64];

		snprintf(more, sizeof(more), " (%d more below) ",
		    l->n - t->scroll - l->rows);
		put(l->y0 + l->rows - 1, COLS - (int)strlen(more) - 1, more, A_BOLD);
	}
}

static void
draw_images(struct tui *t, int y0, int rows)
{
	struct lines l = { t, y0 + 1, rows - 1, 0 };
	json_t *images = t->m.images, *img;
	int namew = 8;
	size_t i;
	char line[1024];

	if (images == NULL) {
		put(y0, 1, "loading images...", A_NORMAL);
		return;
	}
	json_array_foreach(images, i, img) {
		const char *name = jstr(img, WIRE_NAME);
		int n = name ? (int)strlen(name) : 0;

		if (n > namew)
			namew = n > 32 ? 32 : n;
	}
	snprintf(line, sizeof(line), " %-*s %-10s %-7s %-9s %s", namew, "NAME",
	    "SOURCE", "DEFAULT", "AVAILABLE", "ROOTFS");
	put(y0, 0, line, A_BOLD | A_UNDERLINE);
	if (json_array_size(images) == 0)
		emit(&l, " no images", A_NORMAL);
	json_array_foreach(images, i, img) {
		char name[64], src[32], def[8], avail[8], rootfs[512];

		snprintf(line, sizeof(line), " %-*.*s %-10s %-7s %-9s %s", namew,
		    namew, jtext(jobj(img, WIRE_NAME), name, sizeof(name)),
		    jtext(jobj(img, "source"), src, sizeof(src)),
		    jtext(jobj(img, "default"), def, sizeof(def)),
		    jtext(jobj(img, "available"), avail, sizeof(avail)),
		    jtext(jobj(img, WIRE_ROOTFS), rootfs, sizeof(rootfs)));
		emit(&l, line, json_is_false(jobj(img, "available")) ?
		    pair_attr(t, PAIR_BAD) : A_NORMAL);
	}
	lines_end(&l);
}

static void
draw_doctor(struct tui *t, int y0, int rows)
{
	json_t *doc = t->m.doctor, *checks, *check;
	struct lines l = { t, y0 + 1, rows - 1, 0 };
	size_t i;
	char line[1024], st[16];

	if (doc == NULL) {
		put(y0, 1, "running checks...", A_NORMAL);
		return;
	}
	jtext(jobj(doc, WIRE_STATUS), st, sizeof(st));
	snprintf(line, sizeof(line), " host readiness: %s", st);
	put(y0, 0, line, A_BOLD | pair_attr(t, word_pair(st)));
	checks = jobj(doc, "checks");
	json_array_foreach(checks, i, check) {
		const char *status = jstr(check, WIRE_STATUS);
		const char *fix = jstr(check, "fix");
		char name[64], feat[32], msg[512], tag[8];

		snprintf(tag, sizeof(tag), "%-4s", status ? status : "??");
		snprintf(line, sizeof(line), " [%s] %s (%s): %s", tag,
		    jtext(jobj(check, WIRE_NAME), name, sizeof(name)),
		    jtext(jobj(check, "feature"), feat, sizeof(feat)),
		    jtext(jobj(check, WIRE_MESSAGE), msg, sizeof(msg)));
		emit(&l, line, pair_attr(t, word_pair(status ? status : "")));
		if (status != NULL && strcmp(status, "ok") != 0 && fix != NULL &&
		    fix[0] != '\0') {
			snprintf(line, sizeof(line), "        fix: %s", fix);
			emit(&l, line, A_NORMAL);
		}
	}
	lines_end(&l);
}

static const char *
help_text(const struct tui *t)
{
	if (t->view == VIEW_VMS)
		return " s start  x stop  r restart  p pause/resume  d delete  "
		    "n NAT  c/Enter ssh  "
		    "up/down select  1/2/3/Tab views  ^L refresh  q quit";
	return " 1 VMs  2 images  3 doctor  Tab next view  up/down scroll  "
	    "^L refresh  q quit";
}

static void
draw_once(struct tui *t)
{
	int rows;

	erase();
	if (LINES < 6 || COLS < 20) {
		put(0, 0, "banger tui: terminal too small", A_BOLD);
		return;
	}
	tui_lock(t);
	draw_title(t);
	rows = LINES - 4;  /* title, message and help lines; row 1 on */
	switch (t->view) {
	case VIEW_VMS:
		draw_vms(t, 1, rows + 1);
		break;
	case VIEW_IMAGES:
		draw_images(t, 1, rows + 1);
		break;
	case VIEW_DOCTOR:
		draw_doctor(t, 1, rows + 1);
		break;
	case VIEW_COUNT:
		break;
	}
	if (t->confirm[0] != '\0') {
		char q[160];

		snprintf(q, sizeof(q), " Delete vm '%s'? A running VM is stopped "
		    "first. [y/N] ", t->confirm);
		put(LINES - 2, 0, q, A_BOLD | A_REVERSE);
	} else if (t->m.message[0] != '\0') {
		char msg[300];

		snprintf(msg, sizeof(msg), " %s", t->m.message);
		put(LINES - 2, 0, msg, t->m.message_is_error ?
		    A_BOLD | pair_attr(t, PAIR_BAD) : A_NORMAL);
	}
	tui_unlock(t);
	put(LINES - 1, 0, help_text(t), A_REVERSE);
}

void
tui_draw(struct tui *t)
{
	t->redraw = false;
	draw_once(t);
	if (t->redraw)
		draw_once(t);
	refresh();
}
