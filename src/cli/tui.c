/* tui.c - banger tui: a curses view of bangerd's VMs, images and doctor
 * report, kept current from the event stream, with keys for the common
 * VM actions.
 *
 * Three threads.  The UI thread (the caller) owns curses and never talks
 * to bangerd.  The stream thread runs events_follow() forever (it
 * reconnects on its own) and applies each event to the model.  The
 * request thread works through a queue of API requests on its own curl
 * handle.  Both workers change the model under 'mu' and wake the UI
 * through a pipe, so a slow or dead bangerd shows up as a status line,
 * never as a frozen screen.  Long actions are sent without ?wait: the
 * 202 reply and the operation.* events show their progress.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"
#include "tui.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GET_TIMEOUT_S     10L
#define ACTION_TIMEOUT_S  30L
#define TICK_MS           1000   /* redraw at least this often (uptimes) */

enum view { VIEW_VMS, VIEW_IMAGES, VIEW_DOCTOR, VIEW_COUNT };

enum job_kind {
	JOB_LIST_VMS,
	JOB_GET_VM,
	JOB_LIST_IMAGES,
	JOB_DOCTOR,
	JOB_ACTION,   /* POST /v1/vms/{name}/{start,stop,restart} */
	JOB_NAT,      /* PATCH /v1/vms/{name} {"nat": ...} */
	JOB_DELETE    /* DELETE /v1/vms/{name}?force=true */
};

struct job {
	enum job_kind kind;
	char name[64];
	char action[16];
	bool nat;
	struct job *next;
};

enum pair { PAIR_GOOD = 1, PAIR_BUSY, PAIR_BAD };

struct tui {
	struct cli *cli;
	pthread_mutex_t mu;
	pthread_cond_t cond;       /* a job was queued, or quit */
	struct tui_model m;        /* under mu */
	struct job *head, *tail;   /* under mu */
	bool quit;                 /* under mu */
	int wake[2];               /* workers (and signals) -> UI */
	int cancel[2];             /* UI -> stream thread: stop */
	pthread_t stream_th, req_th;
	/* UI thread only. */
	enum view view;
	int top;                   /* first VM row on screen */
	int scroll;                /* first line of the images/doctor list */
	int scroll_max;            /* as of the last draw */
	bool redraw;               /* the last draw was off: draw again */
	char confirm[64];          /* VM waiting for a y/n to delete */
	bool color;
};

static volatile sig_atomic_t tui_stop;
static int tui_wake_fd = -1;

static void
poke(int fd)
{
	ssize_t n;

	/* Non-blocking: a full pipe already means "wake up". */
	n = write(fd, "", 1);
	(void)n;
}

static void
on_stop_signal(int sig)
{
	int saved = errno;

	(void)sig;
	tui_stop = 1;
	if (tui_wake_fd >= 0)
		poke(tui_wake_fd);
	errno = saved;
}

static void
lock(struct tui *t)
{
	pthread_mutex_lock(&t->mu);
}

static void
unlock(struct tui *t)
{
	pthread_mutex_unlock(&t->mu);
}

/* ---- request queue ---- */

static bool
job_same(const struct job *a, const struct job *b)
{
	return a->kind == b->kind && strcmp(a->name, b->name) == 0 &&
	    strcmp(a->action, b->action) == 0 && a->nat == b->nat;
}

static void
enqueue(struct tui *t, enum job_kind kind, const char *name,
    const char *action, bool nat)
{
	struct job *j = xmalloc(sizeof(*j));

	memset(j, 0, sizeof(*j));
	j->kind = kind;
	snprintf(j->name, sizeof(j->name), "%s", name ? name : "");
	snprintf(j->action, sizeof(j->action), "%s", action ? action : "");
	j->nat = nat;
	lock(t);
	/* Reads already waiting need not be queued twice. */
	if (kind == JOB_LIST_VMS || kind == JOB_GET_VM ||
	    kind == JOB_LIST_IMAGES || kind == JOB_DOCTOR) {
		for (struct job *q = t->head; q != NULL; q = q->next) {
			if (job_same(q, j)) {
				unlock(t);
				free(j);
				return;
			}
		}
	}
	if (t->tail != NULL)
		t->tail->next = j;
	else
		t->head = j;
	t->tail = j;
	pthread_cond_signal(&t->cond);
	unlock(t);
}

static const char *
reply_message(json_t *body, long status, char *buf, size_t len)
{
	const char *msg = jstr(body, "message");

	if (msg != NULL)
		return out_clean(msg, buf, len);
	snprintf(buf, len, "HTTP %ld", status);
	return buf;
}

/* Apply a reply to the model; called with mu held. */
static void
job_apply(struct tui *t, const struct job *j, long status, json_t *body)
{
	struct tui_model *m = &t->m;
	bool ok = status >= 200 && status <= 299;
	char msg[256];

	switch (j->kind) {
	case JOB_LIST_VMS:
		if (ok && json_is_array(jobj(body, "vms")))
			tui_model_set_vms(m, jobj(body, "vms"));
		else
			tui_model_message(m, true, "listing VMs: %s",
			    reply_message(body, status, msg, sizeof(msg)));
		return;
	case JOB_GET_VM:
		if (ok)
			tui_model_put_vm(m, body);
		else if (status == 404)
			tui_model_remove_vm(m, j->name);
		return;
	case JOB_LIST_IMAGES:
		if (ok && json_is_array(jobj(body, "images"))) {
			if (m->images != NULL)
				json_decref(m->images);
			m->images = json_incref(jobj(body, "images"));
		} else {
			tui_model_message(m, true, "listing images: %s",
			    reply_message(body, status, msg, sizeof(msg)));
		}
		return;
	case JOB_DOCTOR:
		if (ok && json_is_object(body)) {
			if (m->doctor != NULL)
				json_decref(m->doctor);
			m->doctor = json_incref(body);
		} else {
			tui_model_message(m, true, "doctor: %s",
			    reply_message(body, status, msg, sizeof(msg)));
		}
		return;
	case JOB_ACTION:
	case JOB_DELETE:
		if (ok && jstr(body, "id") != NULL) {
			/* A stale reply must not undo the "done" already
			 * shown from the operation's events. */
			if (tui_model_set_op(m, body) && status == 202)
				tui_model_message(m, false, "%s %s: accepted (%s)",
				    jstr(body, "kind") ? jstr(body, "kind") : "",
				    j->name, jstr(body, "id"));
		} else if (ok) {
			tui_model_message(m, false, "%s %s: done",
			    j->kind == JOB_DELETE ? "delete" : j->action, j->name);
		} else {
			tui_model_message(m, true, "%s %s: %s",
			    j->kind == JOB_DELETE ? "delete" : j->action, j->name,
			    reply_message(body, status, msg, sizeof(msg)));
		}
		return;
	case JOB_NAT:
		if (ok) {
			tui_model_put_vm(m, body);
			tui_model_message(m, false, "%s: NAT %s", j->name,
			    json_is_true(jobj(jobj(body, "spec"), "nat")) ?
			    "on" : "off");
		} else {
			tui_model_message(m, true, "NAT %s: %s", j->name,
			    reply_message(body, status, msg, sizeof(msg)));
		}
		return;
	}
}

static void
job_run(struct tui *t, struct cli *c, const struct job *j)
{
	const char *method = "GET";
	char *path = NULL, *body = NULL, *suffix;
	long timeout = GET_TIMEOUT_S;
	struct reply r;
	json_t *json = NULL;
	int rc;

	switch (j->kind) {
	case JOB_LIST_VMS:
		path = xstrdup("/v1/vms");
		break;
	case JOB_GET_VM:
		path = api_path("/v1/vms/", j->name, NULL);
		break;
	case JOB_LIST_IMAGES:
		path = xstrdup("/v1/images");
		break;
	case JOB_DOCTOR:
		path = xstrdup("/v1/doctor");
		break;
	case JOB_ACTION:
		method = "POST";
		suffix = xasprintf("/%s", j->action);
		path = api_path("/v1/vms/", j->name, suffix);
		free(suffix);
		timeout = ACTION_TIMEOUT_S;
		break;
	case JOB_NAT:
		method = "PATCH";
		path = api_path("/v1/vms/", j->name, NULL);
		body = xasprintf("{\"nat\":%s}", j->nat ? "true" : "false");
		timeout = ACTION_TIMEOUT_S;
		break;
	case JOB_DELETE:
		method = "DELETE";
		path = api_path("/v1/vms/", j->name, "?force=true");
		timeout = ACTION_TIMEOUT_S;
		break;
	}
	rc = client_request(c, method, path, body, timeout,
	    CLIENT_SILENT | CLIENT_NO_AUTOSTART, &r);
	if (rc == CLI_EXIT_OK && r.len > 0) {
		json_error_t jerr;

		json = json_loadb(r.body, r.len, 0, &jerr);
	}
	lock(t);
	if (rc == CLI_EXIT_OK)
		job_apply(t, j, r.status, json);
	else if (rc != CLI_EXIT_INTERRUPTED)
		tui_model_message(&t->m, true, "%s %s: cannot reach bangerd",
		    method, path);
	unlock(t);
	if (json != NULL)
		json_decref(json);
	reply_free(&r);
	free(path);
	free(body);
}

static void *
request_main(void *arg)
{
	struct tui *t = arg;
	/* A struct cli of its own: its own curl handle, never autostart. */
	struct cli c = *t->cli;

	c.client = NULL;
	c.no_autostart = true;
	for (;;) {
		struct job *j;

		lock(t);
		while (!t->quit && t->head == NULL)
			pthread_cond_wait(&t->cond, &t->mu);
		if (t->quit) {
			unlock(t);
			break;
		}
		j = t->head;
		t->head = j->next;
		if (t->head == NULL)
			t->tail = NULL;
		unlock(t);
		job_run(t, &c, j);
		free(j);
		poke(t->wake[1]);
	}
	client_free(&c);
	return NULL;
}

/* ---- the event stream ---- */

static int
stream_event(json_t *ev, void *ctx)
{
	struct tui *t = ctx;
	char name[64];
	unsigned what;
	bool images_shown;

	lock(t);
	what = tui_model_apply_event(&t->m, ev, name, sizeof(name));
	images_shown = t->m.images != NULL;
	unlock(t);
	if (what & TUI_REFETCH_VM)
		enqueue(t, JOB_GET_VM, name, NULL, false);
	if ((what & TUI_REFETCH_IMAGES) && images_shown)
		enqueue(t, JOB_LIST_IMAGES, NULL, NULL, false);
	poke(t->wake[1]);
	return 0;
}

static void
stream_status(enum events_status st, const char *why, int attempt,
    int retry_ms, void *ctx)
{
	struct tui *t = ctx;
	struct tui_model *m = &t->m;
	bool images_shown, doctor_shown;

	lock(t);
	m->connected = st == EVENTS_CONNECTED;
	if (st == EVENTS_CONNECTED)
		snprintf(m->conn, sizeof(m->conn), "connected");
	else if (st == EVENTS_DISCONNECTED)
		snprintf(m->conn, sizeof(m->conn), "disconnected, retrying "
		    "(attempt %d, next in %.1f s): %s", attempt, retry_ms / 1000.0,
		    why);
	else
		snprintf(m->conn, sizeof(m->conn), "event stream failed: %s", why);
	out_clean(m->conn, m->conn, sizeof(m->conn));
	images_shown = m->images != NULL;
	doctor_shown = m->doctor != NULL;
	unlock(t);
	/* Events may have been missed while away: read everything again. */
	if (st == EVENTS_CONNECTED) {
		enqueue(t, JOB_LIST_VMS, NULL, NULL, false);
		if (images_shown)
			enqueue(t, JOB_LIST_IMAGES, NULL, NULL, false);
		if (doctor_shown)
			enqueue(t, JOB_DOCTOR, NULL, NULL, false);
	}
	poke(t->wake[1]);
}

static void *
stream_main(void *arg)
{
	struct tui *t = arg;
	struct events_opts o;

	memset(&o, 0, sizeof(o));
	o.max_retries = -1;  /* the screen says what is going on */
	o.cancel_fd = t->cancel[0];
	o.silent = true;
	o.on_event = stream_event;
	o.on_status = stream_status;
	o.ctx = t;
	events_follow(t->cli, &o);
	return NULL;
}

/* ---- drawing ---- */

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
pair_attr(const struct tui *t, enum pair p)
{
	return t->color ? COLOR_PAIR(p) : A_NORMAL;
}

static enum pair
word_pair(const char *w)
{
	static const char *const good[] = { "running", "ok" };
	static const char *const bad[] = { "error", "unreachable", "fail",
		"failed" };
	static const char *const busy[] = { "creating", "starting", "stopping",
		"degraded", "warn" };

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
		const char *name = jstr(img, "name");
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
		    namew, jtext(jobj(img, "name"), name, sizeof(name)),
		    jtext(jobj(img, "source"), src, sizeof(src)),
		    jtext(jobj(img, "default"), def, sizeof(def)),
		    jtext(jobj(img, "available"), avail, sizeof(avail)),
		    jtext(jobj(img, "rootfs"), rootfs, sizeof(rootfs)));
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
	jtext(jobj(doc, "status"), st, sizeof(st));
	snprintf(line, sizeof(line), " host readiness: %s", st);
	put(y0, 0, line, A_BOLD | pair_attr(t, word_pair(st)));
	checks = jobj(doc, "checks");
	json_array_foreach(checks, i, check) {
		const char *status = jstr(check, "status");
		const char *fix = jstr(check, "fix");
		char name[64], feat[32], msg[512], tag[8];

		snprintf(tag, sizeof(tag), "%-4s", status ? status : "??");
		snprintf(line, sizeof(line), " [%s] %s (%s): %s", tag,
		    jtext(jobj(check, "name"), name, sizeof(name)),
		    jtext(jobj(check, "feature"), feat, sizeof(feat)),
		    jtext(jobj(check, "message"), msg, sizeof(msg)));
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
		return " s start  x stop  r restart  d delete  n NAT  c/Enter ssh  "
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
	lock(t);
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
	unlock(t);
	put(LINES - 1, 0, help_text(t), A_REVERSE);
}

static void
draw(struct tui *t)
{
	t->redraw = false;
	draw_once(t);
	if (t->redraw)
		draw_once(t);
	refresh();
}

/* ---- actions ---- */

/* Copy the selected VM's name (and NAT flag); false when none. */
static bool
selected_vm(struct tui *t, char *name, size_t len, bool *nat)
{
	const struct tui_vm *vm;
	bool ok;

	lock(t);
	vm = tui_model_selected(&t->m);
	ok = vm != NULL;
	if (ok) {
		snprintf(name, len, "%s", vm->name);
		if (nat != NULL)
			*nat = vm->nat;
	} else {
		tui_model_message(&t->m, true, "no VM selected");
	}
	unlock(t);
	return ok;
}

static void
say(struct tui *t, bool error, const char *fmt, const char *arg)
{
	lock(t);
	tui_model_message(&t->m, error, fmt, arg);
	unlock(t);
}

/* Leave curses, run 'banger vm ssh NAME' (this very binary) on the
 * terminal, come back. */
static void
run_ssh(struct tui *t, const char *name)
{
	char *argv[10];
	struct sigaction ign, old_int, old_quit;
	int n = 0, st = 0;
	pid_t pid;

	argv[n++] = "banger";
	if (t->cli->socket_flag != NULL) {
		argv[n++] = "--socket";
		argv[n++] = t->cli->socket_path;
	}
	if (t->cli->no_autostart)
		argv[n++] = "--no-autostart";
	argv[n++] = "vm";
	argv[n++] = "ssh";
	argv[n++] = (char *)name;
	argv[n] = NULL;

	def_prog_mode();
	endwin();
	printf("banger tui: ssh to vm '%s'; leave the shell to come back\n", name);
	fflush(stdout);
	/* Like system(): while the child has the terminal, Ctrl-C is its. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	pid = fork();
	if (pid == 0) {
		struct sigaction dfl;
		static const char msg[] = "banger tui: cannot run /proc/self/exe\n";
		ssize_t w;

		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigemptyset(&dfl.sa_mask);
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGQUIT, &dfl, NULL);
		execv("/proc/self/exe", argv);
		w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)w;
		_exit(127);
	}
	if (pid > 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char c;

		/* Leave its error on the screen until the user has read it. */
		if (pid < 0)
			printf("\nbanger tui: fork: %s", strerror(errno));
		else if (WIFEXITED(st))
			printf("\n[banger vm ssh %s exited with status %d]", name,
			    WEXITSTATUS(st));
		else
			printf("\n[banger vm ssh %s was killed by signal %d]", name,
			    WTERMSIG(st));
		printf(" press Enter to return to banger tui ");
		fflush(stdout);
		while (read(STDIN_FILENO, &c, 1) == 1 && c != '\n' && c != '\r')
			;
		say(t, true, "ssh to %s failed", name);
	} else {
		say(t, false, "ssh to %s ended", name);
	}
	reset_prog_mode();
	clearok(curscr, TRUE);
	refresh();
}

static void
view_fetch(struct tui *t)
{
	t->scroll = 0;
	if (t->view == VIEW_IMAGES)
		enqueue(t, JOB_LIST_IMAGES, NULL, NULL, false);
	else if (t->view == VIEW_DOCTOR)
		enqueue(t, JOB_DOCTOR, NULL, NULL, false);
	else
		enqueue(t, JOB_LIST_VMS, NULL, NULL, false);
}

static void
vm_action(struct tui *t, const char *action, const char *verb)
{
	char name[64];

	if (!selected_vm(t, name, sizeof(name), NULL))
		return;
	/* Say it before queueing: a refused request fails within
	 * microseconds, and its error must not be overwritten. */
	lock(t);
	tui_model_message(&t->m, false, "%s %s...", verb, name);
	unlock(t);
	enqueue(t, JOB_ACTION, name, action, false);
}

/* Handle one key; false to quit. */
static bool
on_key(struct tui *t, int ch)
{
	char name[64];
	bool nat;
	int page = LINES > 6 ? LINES - 5 : 1;

	if (t->confirm[0] != '\0') {
		if (ch == KEY_RESIZE)
			return true;
		if (ch == 'y' || ch == 'Y') {
			say(t, false, "deleting %s...", t->confirm);
			enqueue(t, JOB_DELETE, t->confirm, NULL, false);
		} else {
			say(t, false, "delete of %s cancelled", t->confirm);
		}
		t->confirm[0] = '\0';
		return true;
	}
	switch (ch) {
	case 'q':
	case 'Q':
		return false;
	case '1':
	case '2':
	case '3':
		t->view = (enum view)(ch - '1');
		view_fetch(t);
		return true;
	case '\t':
		t->view = (enum view)((t->view + 1) % VIEW_COUNT);
		view_fetch(t);
		return true;
	case KEY_BTAB:
		t->view = (enum view)((t->view + VIEW_COUNT - 1) % VIEW_COUNT);
		view_fetch(t);
		return true;
	case 12:  /* ^L */
	case KEY_F(5):
		clearok(curscr, TRUE);
		view_fetch(t);
		return true;
	case KEY_RESIZE:
		return true;  /* the next draw uses the new size */
	}
	if (t->view != VIEW_VMS) {
		int d = 0;

		if (ch == KEY_UP || ch == 'k')
			d = -1;
		else if (ch == KEY_DOWN || ch == 'j')
			d = 1;
		else if (ch == KEY_PPAGE)
			d = -page;
		else if (ch == KEY_NPAGE)
			d = page;
		else if (ch == KEY_HOME || ch == 'g')
			d = -t->scroll;
		else if (ch == KEY_END || ch == 'G')
			d = t->scroll_max - t->scroll;
		t->scroll += d;
		if (t->scroll > t->scroll_max)
			t->scroll = t->scroll_max;
		if (t->scroll < 0)
			t->scroll = 0;
		return true;
	}
	lock(t);
	switch (ch) {
	case KEY_UP:
	case 'k':
		tui_model_select_move(&t->m, -1);
		break;
	case KEY_DOWN:
	case 'j':
		tui_model_select_move(&t->m, 1);
		break;
	case KEY_PPAGE:
		tui_model_select_move(&t->m, -page);
		break;
	case KEY_NPAGE:
		tui_model_select_move(&t->m, page);
		break;
	case KEY_HOME:
	case 'g':
		tui_model_select_move(&t->m, -(int)t->m.nvms);
		break;
	case KEY_END:
	case 'G':
		tui_model_select_move(&t->m, (int)t->m.nvms);
		break;
	}
	unlock(t);
	switch (ch) {
	case 's':
		vm_action(t, "start", "starting");
		break;
	case 'x':
		vm_action(t, "stop", "stopping");
		break;
	case 'r':
		vm_action(t, "restart", "restarting");
		break;
	case 'd':
		if (selected_vm(t, name, sizeof(name), NULL))
			snprintf(t->confirm, sizeof(t->confirm), "%s", name);
		break;
	case 'n':
		if (selected_vm(t, name, sizeof(name), &nat)) {
			say(t, false, nat ? "turning NAT off for %s..." :
			    "turning NAT on for %s...", name);
			enqueue(t, JOB_NAT, name, NULL, !nat);
		}
		break;
	case 'c':
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (selected_vm(t, name, sizeof(name), NULL))
			run_ssh(t, name);
		break;
	}
	return true;
}

/* ---- setup and the UI loop ---- */

static int
pipe_nb(int fds[2])
{
	return pipe2(fds, O_CLOEXEC | O_NONBLOCK);
}

static void
drain(int fd)
{
	char buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void
ui_loop(struct tui *t)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{ STDIN_FILENO, POLLIN, 0 },
			{ t->wake[0], POLLIN, 0 },
		};
		int ch;

		draw(t);
		/* SIGWINCH interrupts poll (EINTR); getch then says
		 * KEY_RESIZE. */
		if (poll(pfd, 2, TICK_MS) > 0 && (pfd[1].revents & POLLIN))
			drain(t->wake[0]);
		while ((ch = getch()) != ERR)
			if (!on_key(t, ch))
				return;
		if (tui_stop)
			return;
	}
}

static void
tui_stop_threads(struct tui *t, bool stream, bool req)
{
	lock(t);
	t->quit = true;
	pthread_cond_broadcast(&t->cond);
	unlock(t);
	poke(t->cancel[1]);
	/* Cuts short a request in flight (client.c's progress check). */
	cli_interrupted = 1;
	if (stream)
		pthread_join(t->stream_th, NULL);
	if (req)
		pthread_join(t->req_th, NULL);
	cli_interrupted = 0;
}

int
cmd_tui(struct cli *cli, const struct args *a)
{
	struct sigaction sa, old_int, old_term, old_hup, old_pipe;
	sigset_t block, old_mask;
	struct reply r = { 0 };
	struct tui t;
	SCREEN *scr;
	bool stream_ok = false, req_ok = false;
	int rc;

	(void)a;
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fputs("banger: tui needs a terminal on stdin and stdout\n", stderr);
		return CLI_EXIT_USAGE;
	}
	/* Reach bangerd once the usual way (starting it when allowed, errors
	 * on stderr) before the screen is taken over. */
	rc = api_call(cli, "GET", "/v1/healthz", NULL, &r);
	reply_free(&r);
	if (rc != CLI_EXIT_OK)
		return rc;

	memset(&t, 0, sizeof(t));
	t.cli = cli;
	t.wake[0] = t.wake[1] = t.cancel[0] = t.cancel[1] = -1;
	if (pipe_nb(t.wake) < 0 || pipe_nb(t.cancel) < 0) {
		perror("banger: pipe");
		rc = CLI_EXIT_ERROR;
		goto out_pipes;
	}
	pthread_mutex_init(&t.mu, NULL);
	pthread_cond_init(&t.cond, NULL);
	tui_model_init(&t.m);

	setlocale(LC_ALL, "");
	scr = newterm(NULL, stdout, stdin);
	if (scr == NULL) {
		fprintf(stderr, "banger: cannot drive terminal '%s'\n",
		    getenv("TERM") ? getenv("TERM") : "(TERM unset)");
		rc = CLI_EXIT_ERROR;
		goto out_model;
	}
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	if (has_colors()) {
		start_color();
		use_default_colors();
		init_pair(PAIR_GOOD, COLOR_GREEN, -1);
		init_pair(PAIR_BUSY, COLOR_YELLOW, -1);
		init_pair(PAIR_BAD, COLOR_RED, -1);
		t.color = true;
	}

	tui_stop = 0;
	tui_wake_fd = t.wake[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);

	/* Signals belong to the UI thread: workers start with them blocked,
	 * so SIGWINCH and Ctrl-C always interrupt the UI's poll(). */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGWINCH);
	sigaddset(&block, SIGTSTP);
	sigaddset(&block, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &block, &old_mask);
	req_ok = pthread_create(&t.req_th, NULL, request_main, &t) == 0;
	stream_ok = req_ok &&
	    pthread_create(&t.stream_th, NULL, stream_main, &t) == 0;
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

	if (stream_ok) {
		enqueue(&t, JOB_LIST_VMS, NULL, NULL, false);
		ui_loop(&t);
		rc = CLI_EXIT_OK;
	} else {
		rc = CLI_EXIT_ERROR;
	}
	tui_stop_threads(&t, stream_ok, req_ok);

	endwin();
	delscreen(scr);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	tui_wake_fd = -1;
	if (!stream_ok)
		fputs("banger: cannot start the tui's threads\n", stderr);
out_model:
	while (t.head != NULL) {
		struct job *j = t.head;

		t.head = j->next;
		free(j);
	}
	tui_model_release(&t.m);
	pthread_cond_destroy(&t.cond);
	pthread_mutex_destroy(&t.mu);
out_pipes:
	for (int i = 0; i < 2; i++) {
		if (t.wake[i] >= 0)
			close(t.wake[i]);
		if (t.cancel[i] >= 0)
			close(t.cancel[i]);
	}
	return rc;
}
