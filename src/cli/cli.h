/* cli.h - banger, the command-line client of bangerd's REST API.
 *
 * banger links no daemon code: it speaks HTTP over bangerd's Unix socket
 * (client.c, libcurl), maps API errors to exit statuses in one place
 * (api.c) and prints for people or, with --json, the raw response body.
 * What it shares with bangerd (version, socket path, field names) is in
 * common/wire.h.
 *
 * Layers, bottom up; a file calls only the ones below it:
 *   text.c               safe text, --json bodies, the progress line
 *   autostart.c          finding and spawning bangerd
 *   client.c             HTTP over the socket (libcurl), transport errors
 *   api.c                JSON requests, API errors -> exit statuses
 *   events.c             the event stream (SSE)
 *   op.c                 following long operations
 *   output.c             key/value lines, tables, list and show requests
 *   usage.c, args.c      help and usage; parsing against the table
 *   cmd_*.c, tui*.c      the handlers
 *   commands.c           the table of commands naming them
 *   main.c               dispatch
 *
 * Conventions: a command returns its exit status.  Whatever fails prints
 * its own message once ("banger: ..." and an optional "hint: ..." line on
 * stderr) and returns the status; callers just pass it up.
 */
#ifndef BANGER_CLI_H
#define BANGER_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/wire.h"

/* Exit statuses, documented in 'banger help'. */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_ERROR = 1,        /* request rejected (other 4xx) or other error */
	CLI_EXIT_USAGE = 2,        /* bad flags or arguments */
	CLI_EXIT_NOT_FOUND = 3,    /* 404: vm, image, operation or route */
	CLI_EXIT_CONFLICT = 4,     /* 409: conflicts with current state */
	CLI_EXIT_UNREACHABLE = 5,  /* cannot reach bangerd */
	CLI_EXIT_SERVER = 6,       /* 5xx, or an operation failed server-side */
	CLI_EXIT_INTERRUPTED = 130 /* SIGINT while following an operation */
};

struct client;
struct command;
struct reply;

/* Global state of one banger invocation. */
struct cli {
	bool json;                  /* --json: print raw response bodies */
	bool quiet;                 /* -q: no progress or success messages */
	bool no_autostart;          /* --no-autostart or BANGER_NO_AUTOSTART */
	const char *socket_flag;    /* --socket PATH, NULL when not given */
	char socket_path[4096];     /* resolved by cli_socket_resolve() */
	struct client *client;      /* created on first request */
	const struct command *commands;  /* the table main() dispatches from */
};

/* True when messages meant for people should be printed. */
static inline bool
cli_chatty(const struct cli *cli)
{
	return !cli->json && !cli->quiet;
}

/* ---- text (text.c): below the transport, calls nothing of ours ---- */

/* Field accessors that tolerate missing keys and wrong types. */
const char *jstr(json_t *obj, const char *key);
json_t *jobj(json_t *obj, const char *key);
/* Text for a value, written to buf: "-" for missing/null, yes/no for
 * booleans; control characters replaced.  Returns buf. */
const char *jtext(json_t *v, char *buf, size_t len);
/* Copy 's' with control characters replaced by '?'. */
const char *out_clean(const char *s, char *buf, size_t len);
/* The object's own "name" when it has one (bangerd's spelling), else
 * 'fallback' (what the user typed); cleaned into buf. */
const char *out_name(json_t *obj, const char *fallback, char *buf,
    size_t len);
void out_bytes(unsigned long long n, char *buf, size_t len);
void out_duration(double seconds, char *buf, size_t len);
/* --json: write the body exactly, plus a newline if it lacks one. */
void out_raw(const struct reply *r);
/* A single updating line on stderr (a TTY): progress of an operation.
 * Everything that prints to stderr calls out_status_clear() first. */
void out_status_line(const char *text);
void out_status_clear(void);

/* ---- transport (client.c, autostart.c) ---- */

struct reply {
	long status;     /* HTTP status */
	char *body;      /* NUL-terminated, may be NULL when empty */
	size_t len;
	json_t *json;    /* parsed body (api.c), NULL for text or empty */
};

#define CLIENT_NO_AUTOSTART 0x1u  /* never spawn bangerd for this call */
#define CLIENT_SILENT       0x2u  /* don't print transport errors */

/* Fill cli->socket_path: --socket, else wire_socket_resolve()'s rules. */
void cli_socket_resolve(struct cli *cli);
/* One HTTP exchange with bangerd.  Returns 0 when a response arrived (any
 * status) and fills *ret; else prints why (unless CLIENT_SILENT) and returns
 * CLI_EXIT_UNREACHABLE, or CLI_EXIT_INTERRUPTED without printing.  Starts
 * bangerd once when nothing listens and autostart is allowed.  'body' is a
 * JSON text or NULL.  *r must be released with reply_free() either way. */
int client_request(struct cli *cli, const char *method, const char *path,
    const char *body, long timeout_s, unsigned flags, struct reply *r);
void client_free(struct cli *cli);
/* The options every curl handle to bangerd shares (events.c keeps a
 * handle of its own): the socket, the connect timeout, no signals, the
 * user agent, paths sent as given. */
void client_curl_setup(CURL *curl, const char *socket_path);
/* curl only says "Couldn't connect": connect() to the socket once more
 * for the reason (no such file, refused, permission denied).  That
 * errno, or 0. */
int client_connect_errno(const char *path);
void reply_free(struct reply *r);
/* Set by the SIGINT handler while an operation is being followed. */
extern volatile sig_atomic_t cli_interrupted;

/* Locate bangerd (next to this executable, $BANGER_BANGERD, $PATH) and
 * spawn "bangerd --socket PATH" in its own session with stdin from
 * /dev/null and stdout/stderr appended to <socket dir>/bangerd.log (whose
 * path goes to log_buf either way).  Returns 0 and the child's pid, or -1
 * with 'why' filled. */
int autostart_spawn(const char *socket_path, pid_t *ret_pid, char *log_buf,
    size_t log_len, char *why, size_t why_len);
/* <dir of socket>/bangerd.log */
void autostart_log_path(const char *socket_path, char *buf, size_t len);

/* ---- API helpers (api.c) ---- */

#define API_TEXT 0x100u  /* body is text/plain: don't parse JSON */
#define API_QUIET 0x200u /* an HTTP error is the caller's: not printed */

#define API_TIMEOUT_S 120L

/* Send a request; 'body' (borrowed, may be NULL) is serialized.  Returns 0
 * on 2xx with r->json parsed (unless API_TEXT or empty body).  On any
 * other answer prints the API error (and with --json the raw body on
 * stdout) and returns the exit status.  Release *r with reply_free(). */
int api_call(struct cli *cli, const char *method, const char *path,
    json_t *body, struct reply *r);
int api_call_ex(struct cli *cli, const char *method, const char *path,
    json_t *body, unsigned flags, long timeout_s, struct reply *r);
/* Print an API error object ("banger: message", "hint: hint") and return
 * its exit status; 'status' is used when the code is unknown. */
int api_report_error(json_t *error, long status);
/* The one mapping from an API error code (or HTTP status) to exit status. */
int api_exit_status(const char *code, long status);
/* "/v1/vms/" + escaped name + suffix; caller frees. */
char *api_path(const char *prefix, const char *name, const char *suffix);

/* A request that upgrades the connection ("Connection: Upgrade",
 * "Upgrade: tcp"): curl connects (CONNECT_ONLY; curl 7.88 has no API for
 * the upgrade itself), the HTTP is ours.  After a 101, fd is the byte
 * stream and pre/npre what came right after the head; after a refusal,
 * error its JSON body (or NULL) and status its HTTP status. */
struct api_upgrade {
	CURL *curl;
	int fd;
	int status;
	const char *pre;
	size_t npre;
	json_t *error;
	char *buf;
};
#define API_UPGRADE_WAIT_MS 30000   /* bangerd's answer (it dials the agent) */
/* POST path with body (JSON, may be NULL) asking for the upgrade; 0 once
 * bangerd answered (u->status says how), -1 when it could not be reached
 * or answered no HTTP.  Prints nothing.  Thread-safe; close either way. */
int api_upgrade(struct cli *cli, const char *path, const char *body,
    struct api_upgrade *u);
void api_upgrade_close(struct api_upgrade *u);

/* ---- event stream (events.c) ----
 *
 * GET /v1/events is a server-sent event stream: frames of "id:",
 * "event:" and "data:" lines ended by an empty line, where data is one
 * Event object (openapi.yaml), plus ": comment" lines (": connected" when
 * the stream opens, ": ping" every 15 s) that carry nothing.
 *
 * events_follow() holds the stream open on its own curl handle and hands
 * each Event to a callback.  When the connection drops (bangerd restarts,
 * is killed, or goes silent for EVENTS_IDLE_S) it reconnects with
 * Last-Event-ID, so events still held in bangerd's ring are replayed, after
 * a backoff (200 ms doubling up to 3.2 s) and at most 'max_retries' times
 * in a row.  It never starts bangerd: a command that may need it makes a
 * plain request first (which does).
 *
 * Callbacks run on the calling thread, outside libcurl's callbacks, so
 * they may make requests of their own (client_request, api_call).  Two
 * threads may each run events_follow() at once; 'cli' is only read,
 * after cli_socket_resolve() (call it first when several threads share
 * one struct cli).
 *
 * Following one operation (the intended pattern):
 *
 *     o.types = "operation.updated,operation.finished";
 *     o.on_status = on_status;  // on EVENTS_CONNECTED: GET the operation
 *                               // once, it may have ended already
 *     o.on_event = on_event;    // skip events whose "operation" is not
 *                               // ours; return 1 on operation.finished
 *
 * Every event after EVENTS_CONNECTED is delivered, so checking the
 * operation's state there leaves no gap.
 */

#define EVENTS_RETRIES 8      /* default reconnects in a row before giving up */
#define EVENTS_IDLE_S  45     /* no byte (not even a ping) for this long: drop */

enum events_status {
	EVENTS_CONNECTED,     /* subscribed (first time or after a drop) */
	EVENTS_DISCONNECTED,  /* dropped; reconnecting in retry_ms */
	EVENTS_FAILED         /* giving up; events_follow returns an error */
};

struct events_opts {
	const char *types;  /* ?type=: comma-separated types or prefixes
	                     * ("vm.state,operation."), NULL for all */
	const char *vm;     /* ?vm=: one VM name, NULL for all VMs */
	int max_retries;    /* reconnects in a row; 0 means EVENTS_RETRIES,
	                     * negative means forever */
	int cancel_fd;      /* when readable, stop (never read); -1: none */
	bool silent;        /* don't print the final error on stderr */
	/* Last-Event-ID of the first request: replay the ring after it ("0":
	 * all of it).  NULL: only events from now on. */
	const char *since;
	/* Required.  Called with each Event (borrowed: json_incref() to keep
	 * it).  Return 0 to go on, non-zero to end the stream. */
	int (*on_event)(json_t *event, void *ctx);
	/* Optional.  'why' says what happened (for EVENTS_CONNECTED after a
	 * drop: "reconnected"); 'attempt' counts reconnects in a row (1 on
	 * the first) and 'retry_ms' is the wait before the next one
	 * (EVENTS_DISCONNECTED only). */
	void (*on_status)(enum events_status st, const char *why, int attempt,
	    int retry_ms, void *ctx);
	void *ctx;
};

/* Follow the event stream until on_event asks to stop (returns 0), the
 * stream is cancelled through cancel_fd or SIGINT (cli_interrupted set;
 * returns CLI_EXIT_INTERRUPTED without printing), bangerd rejects the
 * request (its error is printed unless silent; the API error's exit
 * status: an invalid ?vm gives 1), or reconnecting failed max_retries
 * times in a row (printed unless silent; CLI_EXIT_UNREACHABLE). */
int events_follow(struct cli *cli, const struct events_opts *opts);

/* Server-sent events framing, incremental and free of I/O (exposed for
 * the unit tests).  Lines end in LF, CRLF or CR; a line or a frame's data
 * longer than SSE_MAX is an error. */
#define SSE_MAX (4u << 20)

struct sse_parser {
	char *line;           /* the current, incomplete line */
	size_t line_len, line_cap;
	char *data;           /* "data:" values of the frame, '\n'-joined */
	size_t data_len, data_cap;
	bool has_data;
	bool skip_lf;         /* last byte was CR: a following LF ends nothing */
	char event[64];       /* "event:" of the frame, "" for none */
	char last_id[64];     /* "id:" (kept across frames, per the spec) */
};

/* Called for each complete frame that has data; 'type' is "message"
 * when the frame had no event line, 'id' the last id seen ("" for none).
 * Return 0 to go on; anything else stops sse_feed, which returns it. */
typedef int (*sse_frame_fn)(const char *id, const char *type,
    const char *data, size_t len, void *ctx);

void sse_init(struct sse_parser *p);
void sse_release(struct sse_parser *p);
/* Feed n bytes.  Returns 0, the frame callback's non-zero value (bytes
 * after that frame are dropped), or -1 when a line is too long. */
int sse_feed(struct sse_parser *p, const char *buf, size_t n,
    sse_frame_fn fn, void *ctx);

/* ---- operations (op.c) ---- */

/* Called with each snapshot of an operation being followed (borrowed);
 * a non-zero return stops following and is returned. */
typedef int (*op_snapshot_fn)(json_t *op, void *ctx);

/* The one place that watches an operation: calls 'fn' with snapshots of
 * operation 'id' until it has finished, then sets *ret_final to the last
 * one (a reference the caller owns) and returns 0.  'fine' asks for every
 * stage change (someone is watching); without it fewer, longer requests
 * are made.  Returns CLI_EXIT_INTERRUPTED at once when cli_interrupted is
 * set (the caller's SIGINT handler), or a transport/API exit status
 * (printed).  Today this polls GET /v1/operations/{id}; an event stream
 * can replace it without touching the callers. */
int op_follow(struct cli *cli, const char *id, bool fine, op_snapshot_fn fn,
    void *ctx, json_t **ret_final);

struct op_opts {
	const char *label;  /* names the work for progress: "creating vm 'web'" */
	bool no_wait;       /* --no-wait: print the id and return */
	bool cancel;        /* --cancel: Ctrl-C cancels the operation */
};

/* Run a long operation.  Sends method+path (an operation comes back),
 * then follows it, showing its stage on stderr (one updating line on a
 * TTY, a "stage: ..." line per change otherwise, nothing with --json or
 * -q).  On success returns 0 and sets *ret_op to the final operation (a
 * reference the caller owns; already printed with --json).  With
 * --no-wait prints the id (or with --json the body) and returns 0 leaving
 * *ret_op alone, as does any failure (printed; exit status returned).
 * Ctrl-C stops following (exit 130, the operation goes on) or, with
 * o->cancel, cancels the operation and follows it to its end. */
int op_run(struct cli *cli, const char *method, const char *path,
    json_t *body, const struct op_opts *o, json_t **ret_op);
/* The second half of op_run: follow operation 'id' (its first snapshot
 * in 'first', or NULL) with progress and Ctrl-C handling to its end.
 * Returns 0 and the final operation in *ret_final (the caller's
 * reference; printed with --json), or the exit status (explained). */
int op_wait(struct cli *cli, const char *id, json_t *first,
    const struct op_opts *o, json_t **ret_final);

/* ---- output (output.c): on top of the API layer ---- */

/* "key:" padded, then the value (cleaned). */
void out_kv(const char *key, const char *value);

#define TABLE_MAX_COLS 12

struct table {
	int ncols;
	size_t nrows, cap;
	char **cells;  /* nrows * ncols, row 0 is the header */
};

void table_init(struct table *t, int ncols, const char *const *headers);
/* Adds a row of ncols strings (copied, cleaned). */
void table_add(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *f);
void table_free(struct table *t);

/* A list command: GET path and print its array 'key': the body as-is with
 * --json, each item's id_key with -q, else a table with a row per item,
 * its cells the items' 'keys' or, when cell is set, what cell() writes for
 * column col. */
struct list_spec {
	const char *path, *key, *id_key;
	int ncols;                        /* <= TABLE_MAX_COLS */
	const char *const *headers;
	const char *const *keys;
	void (*cell)(json_t *item, int col, char *buf, size_t len);
};
int out_list(struct cli *cli, const struct list_spec *ls);
/* One request whose answer, with --json, is printed as-is.  Returns the
 * exit status (errors explained); release *r either way.  The caller
 * prints its line for people when it returns 0 and cli_chatty(). */
int out_call(struct cli *cli, const char *method, const char *path,
    json_t *body, struct reply *r);
/* GET prefix + name (escaped) + suffix (may be NULL) and print the answer:
 * as-is with --json, else through show. */
int out_show(struct cli *cli, const char *prefix, const char *name,
    const char *suffix, void (*show)(json_t *));

/* ---- the command table (commands.c), parsing (args.c), usage (usage.c)
 *
 * Every command is declared once, in cli_commands[]: its words, the
 * positional part of its usage line, a summary, its flags with their help
 * lines, the prose around them, and its handler.  args.c parses a command
 * line against that entry, usage.c makes usage lines and help from it,
 * cmd_completion.c the completion scripts; a handler reads the parsed
 * flags by name (asking for a flag its entry lacks aborts: a bug).
 */

enum flag_kind {
	FLAG_SWITCH,  /* --all: given or not */
	FLAG_PAIR,    /* --nat and its .neg --no-nat: the last one given wins */
	FLAG_STRING,  /* --image IMAGE or --image=IMAGE */
	FLAG_INT,     /* --vcpus N: a decimal integer, any sign */
	FLAG_LIST     /* --type TYPE, repeatable (at most FLAG_LIST_MAX times) */
};

#define FLAG_LIST_MAX 16

struct flag {
	const char *name;   /* "--vcpus" */
	enum flag_kind kind;
	const char *arg;    /* the value's metavariable, "N"; NULL for none */
	const char *help;   /* its help, '\n' between lines; NULL when another
	                     * flag's line covers it */
	bool required;      /* "--name is required" unless given */
	const char *neg;    /* FLAG_PAIR: the flag that turns it off */
	const char *label;  /* the help line's left column when not "name arg"
	                     * (or "name, neg") */
	const char *alias;  /* FLAG_SWITCH: its one-letter form, "-t"; such
	                     * letters combine ("-it") */
};

/* How many positional arguments a command takes. */
enum args_count {
	ARGS_NONE,  /* none */
	ARGS_ONE,   /* exactly one */
	ARGS_SOME,  /* one to ARGS_MAX */
	ARGS_ANY    /* none to ARGS_MAX (commands with --all) */
};

#define ARGS_MAX 1024  /* bangerd takes at most this many VMs at once */
#define FLAGS_MAX 16   /* flags of one command */

struct args;

struct command {
	const char *group;    /* "vm", "image", "operation"; NULL at the top */
	const char *name;     /* "create" */
	const char *args;     /* positional part of the usage line: "NAME",
	                       * "NAME...|--all" (flags it names are not
	                       * repeated after it); NULL for none */
	enum args_count nargs;
	const char *summary;  /* one line */
	const struct flag *flags;  /* ended by { NULL }; NULL for none */
	const char *intro;    /* help before the flag lines (NULL: "Flags:\n"
	                       * when there are flags) */
	const char *outro;    /* help after them */
	const char *rest;     /* usage after the flags, "[-- COMMAND ...]": the
	                       * words after "--" go to args->rest */
	int (*run)(struct cli *cli, const struct args *a);
};

/* The table, ended by { NULL }: groups in order, then top-level commands. */
extern const struct command cli_commands[];

/* A command line parsed against its command's entry. */
struct args {
	const struct command *cmd;
	int n;                      /* positional arguments */
	const char *v[ARGS_MAX];    /* borrowed from argv */
	int nrest;                  /* after "--" (commands with .rest) */
	char **rest;
	struct flag_val {           /* one per entry of cmd->flags */
		bool set;
		const char *s;          /* the value given, as text */
		long long i;            /* FLAG_INT; FLAG_PAIR: 1, or 0 for neg */
		int n;                  /* FLAG_LIST */
		const char *list[FLAG_LIST_MAX];
	} val[FLAGS_MAX];
};

/* Parse a command's arguments (argv[0] is the first one after the command
 * words) into *a: its flags, global flags (anywhere), its positional
 * arguments, its required flags.  Returns true to run it; false when the
 * command must return *ret_exit at once (usage printed to stdout for
 * --help, or to stderr with an error). */
bool args_parse(struct cli *cli, const struct command *cmd, int argc,
    char **argv, struct args *a, int *ret_exit);
/* A flag's value, by its name in the command's entry.  args_flag: was
 * the switch given; args_pair: -1 neither, 1 the flag, 0 its neg;
 * args_str: NULL when not given; args_int: false when not given;
 * args_list: how many times given, the values in *ret. */
bool args_flag(const struct args *a, const char *name);
int args_pair(const struct args *a, const char *name);
const char *args_str(const struct args *a, const char *name);
bool args_int(const struct args *a, const char *name, long long *ret);
int args_list(const struct args *a, const char *name,
    const char *const **ret);

enum global_what {
	GLOBAL_JSON, GLOBAL_QUIET, GLOBAL_NO_AUTOSTART, GLOBAL_SOCKET,
	GLOBAL_HELP
};

struct global_flag {
	const char *name;   /* "--quiet" */
	const char *alias;  /* "-q", or NULL */
	enum global_what what;
};

/* The global flags, ended by { NULL }. */
extern const struct global_flag cli_global_flags[];

/* If argv[*pos] is a global flag, apply it, advance *pos past its value
 * and return 1, or 2 for -h/--help (the caller prints the help); 0 when it
 * is not one; -1 with 'why' filled when its value is missing or empty. */
int args_global(struct cli *cli, int argc, char **argv, int *pos, char *why,
    size_t why_len);

/* Print "banger: <msg>" and the command's usage on stderr; returns
 * CLI_EXIT_USAGE.  usage_error_main: the same with the main usage. */
int usage_error(const struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int usage_error_main(const struct command *table, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void usage_print(FILE *f, const struct command *cmd);
void usage_print_group(FILE *f, const struct command *table,
    const char *group);
void usage_print_main(FILE *f, const struct command *table);
/* Is 'flag' one of the words of a usage line's positional part ("a|b",
 * "NAME...|--all --yes")? */
bool usage_names_flag(const char *args, const char *flag);

/* ---- the handlers named in cli_commands[] (cmd_*.c, tui.c) ---- */

int cmd_vm_create(struct cli *cli, const struct args *a);
int cmd_vm_list(struct cli *cli, const struct args *a);
int cmd_vm_show(struct cli *cli, const struct args *a);
int cmd_vm_hold(struct cli *cli, const struct args *a);
int cmd_vm_snapshot(struct cli *cli, const struct args *a);
int cmd_vm_clone(struct cli *cli, const struct args *a);
int cmd_vm_lifecycle(struct cli *cli, const struct args *a);
int cmd_vm_set(struct cli *cli, const struct args *a);
int cmd_vm_ssh(struct cli *cli, const struct args *a);
int cmd_vm_health(struct cli *cli, const struct args *a);
int cmd_vm_console(struct cli *cli, const struct args *a);
int cmd_image_register(struct cli *cli, const struct args *a);
int cmd_image_build(struct cli *cli, const struct args *a);
int cmd_image_list(struct cli *cli, const struct args *a);
int cmd_image_show(struct cli *cli, const struct args *a);
int cmd_image_delete(struct cli *cli, const struct args *a);
int cmd_image_warm(struct cli *cli, const struct args *a);
int cmd_vm_exec(struct cli *cli, const struct args *a);
/* banger vm exec -t (cmd_vm_exec_tty.c): body is the exec request, to
 * which it adds "tty" and the terminal's size and TERM; input (standard
 * input, unless send_input is false) goes to the command.  The exit
 * status as vm exec's. */
int exec_tty_session(struct cli *cli, const char *vm, json_t *body,
    bool send_input);
int cmd_vm_cp(struct cli *cli, const struct args *a);
int cmd_vm_port_forward(struct cli *cli, const struct args *a);
/* --mount HOST:GUEST[:ro]... (and, with set, --no-mounts) as the API's
 * "mounts" in body: 0, or the usage error's exit status (cmd_vm_mounts.c). */
int mounts_body(const struct args *a, bool set, json_t *body);
/* "/host -> /guest (ro), ..." or "none", from a VM's spec. */
const char *mounts_text(json_t *spec, char *buf, size_t len);
int cmd_operation_list(struct cli *cli, const struct args *a);
int cmd_operation_show(struct cli *cli, const struct args *a);
int cmd_operation_wait(struct cli *cli, const struct args *a);
int cmd_operation_cancel(struct cli *cli, const struct args *a);
int cmd_host(struct cli *cli, const struct args *a);
int cmd_doctor(struct cli *cli, const struct args *a);
int cmd_version(struct cli *cli, const struct args *a);
int cmd_events(struct cli *cli, const struct args *a);
int cmd_tui(struct cli *cli, const struct args *a);
int cmd_completion(struct cli *cli, const struct args *a);

/* POST /v1/vms/actions: 'action' on every VM in 'names' (a JSON array,
 * borrowed) at once, plus the fields in 'extra' (borrowed, may be NULL),
 * followed as an operation.  A line per VM ('done' for those that
 * succeeded); returns the exit status of the first VM that failed
 * (cmd_vm_bulk.c; vm set uses it for several NAMEs). */
int vm_bulk(struct cli *cli, const char *action, json_t *names, json_t *extra,
    const struct op_opts *oo, const char *done);

#endif
