/* tui.h - the state behind 'banger tui', kept free of curses and I/O so
 * it can be unit-tested (tui_model.c); tui.c draws it and feeds it from
 * the API and the event stream.
 *
 * Nothing here locks: tui.c holds its mutex around every call.
 */
#ifndef BANGER_TUI_H
#define BANGER_TUI_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct tui_vm {
	char name[64];
	char state[16];       /* creating | stopped | starting | running | ... */
	char ip[48];          /* "" when none */
	char health[16];      /* ok | degraded | unreachable | unknown */
	char image[64];
	bool nat;
	long long started_at; /* Unix seconds, 0 when not started */
	char last_error[256];
	/* The latest operation on this VM (from a 202 reply or events). */
	char op_id[40];
	char op_kind[24];     /* "vm.start" */
	char op_stage[48];
	int op_progress;
	bool op_active;
	char op_done[40];     /* id of the last operation seen finished */
	/* What it uses (GET .../usage while it runs): CPU% between the last
	 * two samples, resident memory. */
	bool usage_known;
	double cpu_s;         /* cpu_seconds of the last sample */
	long long cpu_at_ms;  /* when it was taken (monotonic) */
	double cpu_pct;       /* < 0 until two samples */
	long long mem_bytes;
};

struct tui_model {
	struct tui_vm *vms;   /* sorted by name */
	size_t nvms, cap;
	bool vms_loaded;      /* a GET /v1/vms answered at least once */
	char selected[64];    /* name of the selected VM, "" for none */
	json_t *images;       /* "images" of GET /v1/images, NULL until then */
	json_t *doctor;       /* GET /v1/doctor, NULL until then */
	/* The event stream: connected, or why not. */
	bool connected;
	char conn[256];
	/* The last thing that happened, shown above the key help. */
	char message[256];
	bool message_is_error;
};

void tui_model_init(struct tui_model *m);
void tui_model_release(struct tui_model *m);

/* Replace the VM list with a VMList's "vms" array (borrowed).  Operations
 * in progress on VMs that are still there are kept. */
void tui_model_set_vms(struct tui_model *m, json_t *vms);
/* Insert or update one VM object (borrowed). */
void tui_model_put_vm(struct tui_model *m, json_t *vm);
/* A VM's usage (GET /v1/vms/{name}/usage) sampled at at_ms (monotonic):
 * CPU% is the CPU seconds between two samples over the time between. */
void tui_model_set_usage(struct tui_model *m, const char *name, json_t *u,
    long long at_ms);
/* Remove a VM; the selection moves to its neighbour.  False if absent. */
bool tui_model_remove_vm(struct tui_model *m, const char *name);
struct tui_vm *tui_model_find(struct tui_model *m, const char *name);
/* Index of the VM in the sorted list, or -1. */
int tui_model_index(const struct tui_model *m, const char *name);

/* Record an Operation (borrowed) on its target VM, from a 202 reply or an
 * operation.* event; a finished one also sets the message.  False when it
 * was stale: a 202 reply arriving after the operation's last event. */
bool tui_model_set_op(struct tui_model *m, json_t *op);

#define TUI_REFETCH_VM      0x1u  /* GET the VM named in 'refetch' */
#define TUI_REFETCH_IMAGES  0x2u  /* GET /v1/images again */

/* Apply one Event (borrowed).  Returns TUI_REFETCH_* bits telling what to
 * read again from the API; the VM's name goes to refetch. */
unsigned tui_model_apply_event(struct tui_model *m, json_t *ev,
    char *refetch, size_t len);

void tui_model_message(struct tui_model *m, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Move the selection by delta rows, clamped to the list; selects the
 * first VM when nothing is selected. */
void tui_model_select_move(struct tui_model *m, int delta);
/* The selected VM, or NULL (also when the name is gone). */
const struct tui_vm *tui_model_selected(const struct tui_model *m);

/* "2026-11-25T21:43:02Z" (also with fractions or an offset) to Unix
 * seconds; -1 when it is not such a time. */
long long tui_parse_time(const char *s);
/* "42s", "5m03s", "3h07m", "2d04h" */
void tui_format_uptime(long long seconds, char *buf, size_t len);

/* Column widths of the VM table, for a terminal 'width' wide: the name
 * column fits the longest name (8..32); OPERATION gets the rest. */
struct tui_cols {
	int name, state, ip, health, uptime, nat, image, cpu, mem, op;
};
void tui_vm_cols(const struct tui_model *m, int width, struct tui_cols *c);
/* The header or one VM's row, exactly 'width' printable ASCII characters
 * (padded or cut; control characters replaced) plus NUL; buf must hold
 * width + 1.  'now' is Unix seconds, for the uptime. */
void tui_vm_header(const struct tui_cols *c, char *buf, int width);
void tui_vm_row(const struct tui_vm *vm, const struct tui_cols *c,
    long long now, char *buf, int width);

#endif
