/* tui_app.h - the running 'banger tui', shared by its three files: tui.c
 * (setup, keys and the UI loop), tui_draw.c (the screen) and tui_jobs.c
 * (the request and event-stream threads).  Each calls only the files
 * below it: tui.c -> tui_draw.c, tui_jobs.c -> tui_model.c.
 */
#ifndef BANGER_TUI_APP_H
#define BANGER_TUI_APP_H

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "tui.h"

struct cli;
struct job;

enum tui_view { VIEW_VMS, VIEW_IMAGES, VIEW_DOCTOR, VIEW_COUNT };

/* Colour pairs (when the terminal has colours). */
enum tui_pair { PAIR_GOOD = 1, PAIR_BUSY, PAIR_BAD };

enum job_kind {
	JOB_LIST_VMS,
	JOB_GET_VM,
	JOB_LIST_IMAGES,
	JOB_DOCTOR,
	JOB_ACTION,   /* POST /v1/vms/{name}/{start,stop,restart,pause,resume} */
	JOB_NAT,      /* PATCH /v1/vms/{name} {"nat": ...} */
	JOB_DELETE,   /* DELETE /v1/vms/{name}?force=true */
	JOB_USAGE     /* GET /v1/vms/{name}/usage */
};

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
	bool stream_running, req_running;
	/* UI thread only. */
	enum tui_view view;
	int top;                   /* first VM row on screen */
	int scroll;                /* first line of the images/doctor list */
	int scroll_max;            /* as of the last draw */
	bool redraw;               /* the last draw was off: draw again */
	long long usage_at_ms;     /* when running VMs' usage was last asked */
	char confirm[64];          /* VM waiting for a y/n to delete */
	bool color;
};

static inline void
tui_lock(struct tui *t)
{
	pthread_mutex_lock(&t->mu);
}

static inline void
tui_unlock(struct tui *t)
{
	pthread_mutex_unlock(&t->mu);
}

/* Wake whoever polls the pipe 'fd' writes to.  Non-blocking: a full pipe
 * already means "wake up".  Safe in a signal handler. */
static inline void
tui_poke(int fd)
{
	ssize_t n = write(fd, "", 1);

	(void)n;
}

/* ---- tui_jobs.c ---- */

/* Queue a request for the request thread (reads already waiting are not
 * queued twice); its reply updates the model and wakes the UI. */
void tui_enqueue(struct tui *t, enum job_kind kind, const char *name,
    const char *action, bool nat);
/* Start the request and stream threads with the UI's signals blocked in
 * them; false when they could not both be started. */
bool tui_workers_start(struct tui *t);
/* Stop whichever threads run (cutting short a request in flight) and
 * drop the jobs still queued. */
void tui_workers_stop(struct tui *t);

/* ---- tui_draw.c ---- */

/* Draw the screen from the model (takes mu) and the UI state. */
void tui_draw(struct tui *t);

#endif
