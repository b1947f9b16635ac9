/* tui.c - banger tui: a curses view of bangerd's VMs, images and doctor
 * report, kept current from the event stream, with keys for the common
 * VM actions.  This file sets it up and runs the UI loop and the keys.
 *
 * Three threads.  The UI thread (the caller; this file and tui_draw.c)
 * owns curses and never talks to bangerd.  The stream thread runs
 * events_follow() forever (it reconnects on its own) and applies each
 * event to the model.  The request thread works through a queue of API
 * requests on its own curl handle (both in tui_jobs.c).  Both workers
 * change the model under 'mu' and wake the UI through a pipe, so a slow
 * or dead bangerd shows up as a status line, never as a frozen screen.
 * Long actions are sent without ?wait: the 202 reply and the operation.*
 * events show their progress.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"
#include "tui_app.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

#define TICK_MS           1000   /* redraw at least this often (uptimes) */
#define USAGE_MS          2000   /* running VMs' usage is asked this often */

static volatile sig_atomic_t tui_stop;
static int tui_wake_fd = -1;

static void
on_stop_signal(int sig)
{
	int saved = errno;

	(void)sig;
	tui_stop = 1;
	if (tui_wake_fd >= 0)
		tui_poke(tui_wake_fd);
	errno = saved;
}

/* ---- actions ---- */

/* Copy the selected VM's name (and NAT flag); false when none. */
static bool
selected_vm(struct tui *t, char *name, size_t len, bool *nat)
{
	const struct tui_vm *vm;
	bool ok;

	tui_lock(t);
	vm = tui_model_selected(&t->m);
	ok = vm != NULL;
	if (ok) {
		snprintf(name, len, "%s", vm->name);
		if (nat != NULL)
			*nat = vm->nat;
	} else {
		tui_model_message(&t->m, true, "no VM selected");
	}
	tui_unlock(t);
	return ok;
}

static void
say(struct tui *t, bool error, const char *fmt, const char *arg)
{
	tui_lock(t);
	tui_model_message(&t->m, error, fmt, arg);
	tui_unlock(t);
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
		tui_enqueue(t, JOB_LIST_IMAGES, NULL, NULL, false);
	else if (t->view == VIEW_DOCTOR)
		tui_enqueue(t, JOB_DOCTOR, NULL, NULL, false);
	else
		tui_enqueue(t, JOB_LIST_VMS, NULL, NULL, false);
}

static void
vm_action(struct tui *t, const char *action, const char *verb)
{
	char name[64];

	if (!selected_vm(t, name, sizeof(name), NULL))
		return;
	/* Say it before queueing: a refused request fails within
	 * microseconds, and its error must not be overwritten. */
	tui_lock(t);
	tui_model_message(&t->m, false, "%s %s...", verb, name);
	tui_unlock(t);
	tui_enqueue(t, JOB_ACTION, name, action, false);
}

/* p: pause a running VM, resume a paused one. */
static void
vm_pause_toggle(struct tui *t)
{
	const struct tui_vm *vm;
	char name[64];
	bool paused = false, ok;

	tui_lock(t);
	vm = tui_model_selected(&t->m);
	ok = vm != NULL;
	if (ok) {
		snprintf(name, sizeof(name), "%s", vm->name);
		paused = strcmp(vm->state, "paused") == 0;
	}
	tui_unlock(t);
	if (!ok) {
		say(t, true, "no VM selected", NULL);
		return;
	}
	say(t, false, paused ? "resuming %s..." : "pausing %s...", name);
	tui_enqueue(t, JOB_ACTION, name, paused ? "resume" : "pause", false);
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
			tui_enqueue(t, JOB_DELETE, t->confirm, NULL, false);
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
		t->view = (enum tui_view)(ch - '1');
		view_fetch(t);
		return true;
	case '\t':
		t->view = (enum tui_view)((t->view + 1) % VIEW_COUNT);
		view_fetch(t);
		return true;
	case KEY_BTAB:
		t->view = (enum tui_view)((t->view + VIEW_COUNT - 1) % VIEW_COUNT);
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
	tui_lock(t);
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
	tui_unlock(t);
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
	case 'p':
		vm_pause_toggle(t);
		break;
	case 'd':
		if (selected_vm(t, name, sizeof(name), NULL))
			snprintf(t->confirm, sizeof(t->confirm), "%s", name);
		break;
	case 'n':
		if (selected_vm(t, name, sizeof(name), &nat)) {
			say(t, false, nat ? "turning NAT off for %s..." :
			    "turning NAT on for %s...", name);
			tui_enqueue(t, JOB_NAT, name, NULL, !nat);
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

/* Every USAGE_MS, ask for the usage of each VM that runs (CPU%, MEM). */
static void
usage_tick(struct tui *t)
{
	long long now = time_mono_ms();

	if (now - t->usage_at_ms < USAGE_MS)
		return;
	t->usage_at_ms = now;
	tui_lock(t);
	size_t n = t->m.nvms;
	char (*names)[64] = xcalloc(n > 0 ? n : 1, sizeof(*names));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(t->m.vms[i].state, "running") == 0 ||
		    strcmp(t->m.vms[i].state, "paused") == 0)
			snprintf(names[k++], sizeof(names[0]), "%s",
			    t->m.vms[i].name);
	tui_unlock(t);
	for (size_t i = 0; i < k; i++)
		tui_enqueue(t, JOB_USAGE, names[i], NULL, false);
	free(names);
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

		usage_tick(t);
		tui_draw(t);
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

int
cmd_tui(struct cli *cli, const struct args *a)
{
	struct sigaction sa, old_int, old_term, old_hup, old_pipe;
	struct reply r = { 0 };
	struct tui t;
	SCREEN *scr;
	bool started;
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

	started = tui_workers_start(&t);
	if (started) {
		tui_enqueue(&t, JOB_LIST_VMS, NULL, NULL, false);
		ui_loop(&t);
		rc = CLI_EXIT_OK;
	} else {
		rc = CLI_EXIT_ERROR;
	}
	tui_workers_stop(&t);

	endwin();
	delscreen(scr);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	tui_wake_fd = -1;
	if (!started)
		fputs("banger: cannot start the tui's threads\n", stderr);
out_model:
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
