/* usage.c - usage lines and help text, made from the command table: a
 * command's usage line from its words, positional arguments and flags,
 * its help from the flags' own lines and the prose around them, and the
 * lists of 'banger help' and 'banger GROUP --help'.
 */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

/* Left column of the flag lines.  A label this long still fits, one
 * space before its help; a longer one widens the column of every line of
 * its command. */
#define FLAG_COL 15

static const char global_help[] =
    "Global flags (accepted anywhere):\n"
    "  --json           print the API response body as-is (for long operations,\n"
    "                   the final operation); errors are still explained on stderr\n"
    "  --socket PATH    bangerd's API socket (default: $BANGER_SOCKET, else\n"
    "                   /run/banger/bangerd.sock as root, else\n"
    "                   $XDG_RUNTIME_DIR/banger/bangerd.sock)\n"
    "  --no-autostart   never start bangerd when nothing answers on the socket\n"
    "                   (also BANGER_NO_AUTOSTART=1)\n"
    "  -q, --quiet      no progress or success messages; lists print names only\n"
    "  -h, --help       show help\n";

static const char exit_help[] =
    "Exit status:\n"
    "  0    success\n"
    "  1    request rejected by bangerd (invalid name, value or path, ...),\n"
    "       or any other error\n"
    "  2    usage error: unknown flag, missing or extra argument, bad number\n"
    "  3    not found: vm_not_found, image_not_found, operation_not_found,\n"
    "       snapshot_not_found, route_not_found\n"
    "  4    conflict with the current state: vm_exists, vm_running,\n"
    "       invalid_state, image_in_use, image_default, image_unavailable,\n"
    "       image_exists, snapshot_exists, snapshot_unusable,\n"
    "       unsupported_by_vmm, cancelled (an operation someone cancelled)\n"
    "  5    cannot reach bangerd\n"
    "  6    failure inside bangerd or the VMM: 5xx errors (internal, system,\n"
    "       vmm_error, vmm_unavailable, timeout, ...) and failed operations\n"
    "  130  interrupted (Ctrl-C) while following an operation: it goes on in\n"
    "       bangerd unless --cancel was given, in which case it was cancelled\n"
    "Commands that act on several VMs exit with the status of the first VM\n"
    "(in the order given) that failed.  'banger vm ssh' exits with ssh's\n"
    "status: the remote command's, 255 when ssh itself fails, 127 when ssh\n"
    "cannot be run.\n";

static const char env_help[] =
    "Environment:\n"
    "  BANGER_SOCKET        API socket path (overridden by --socket)\n"
    "  BANGER_NO_AUTOSTART  set to 1 to never start bangerd automatically\n"
    "  BANGER_BANGERD       bangerd to start when none is found next to banger\n"
    "  BANGER_SSH           ssh client 'banger vm ssh' runs (default: ssh)\n"
    "  XDG_RUNTIME_DIR      base of the default socket path for non-root users\n";

bool
usage_names_flag(const char *args, const char *flag)
{
	size_t n = strlen(flag);

	for (const char *p = args ? args : ""; *p != '\0';) {
		size_t len = strcspn(p, " |");

		if (len == n && strncmp(p, flag, n) == 0)
			return true;
		p += len;
		p += strspn(p, " |");
	}
	return false;
}

/* A flag as its help line names it: "--image IMAGE", "--nat, --no-nat". */
static void
flag_label(const struct flag *f, char *buf, size_t len)
{
	if (f->label != NULL)
		snprintf(buf, len, "%s", f->label);
	else if (f->neg != NULL)
		snprintf(buf, len, "%s, %s", f->name, f->neg);
	else if (f->alias != NULL)
		snprintf(buf, len, "%s, %s", f->alias, f->name);
	else
		snprintf(buf, len, "%s%s%s", f->name, f->arg ? " " : "",
		    f->arg ? f->arg : "");
}

/* "banger vm create --name NAME [--image IMAGE] ..." */
static void
print_usage_line(FILE *f, const struct command *cmd)
{
	fprintf(f, "usage: banger %s%s%s", cmd->group ? cmd->group : "",
	    cmd->group ? " " : "", cmd->name);
	if (cmd->args != NULL)
		fprintf(f, " %s", cmd->args);
	for (const struct flag *fl = cmd->flags; fl && fl->name; fl++) {
		/* Named in the positional part already ("NAME...|--all"). */
		if (usage_names_flag(cmd->args, fl->name))
			continue;
		if (fl->neg != NULL)
			fprintf(f, " [%s|%s]", fl->name, fl->neg);
		else if (fl->alias != NULL)
			fprintf(f, " [%s|%s]", fl->alias, fl->name);
		else
			fprintf(f, " %s%s%s%s%s%s", fl->required ? "" : "[",
			    fl->name, fl->arg ? " " : "", fl->arg ? fl->arg : "",
			    fl->required ? "" : "]",
			    fl->kind == FLAG_LIST ? "..." : "");
	}
	if (cmd->rest != NULL)
		fprintf(f, " %s", cmd->rest);
	fputc('\n', f);
}

/* The flag lines: the label, then the help, its later lines indented. */
static void
print_flags(FILE *f, const struct flag *flags)
{
	char label[64];
	int col = FLAG_COL;

	for (const struct flag *fl = flags; fl->name; fl++) {
		flag_label(fl, label, sizeof(label));
		if (fl->help != NULL && (int)strlen(label) > col)
			col = (int)strlen(label) + 1;
	}
	for (const struct flag *fl = flags; fl->name; fl++) {
		const char *h = fl->help;

		if (h == NULL)
			continue;
		flag_label(fl, label, sizeof(label));
		fprintf(f, "  %-*s %.*s\n", col, label, (int)strcspn(h, "\n"), h);
		while ((h = strchr(h, '\n')) != NULL) {
			h++;
			fprintf(f, "  %*s %.*s\n", col, "", (int)strcspn(h, "\n"), h);
		}
	}
}

void
usage_print(FILE *f, const struct command *cmd)
{
	bool flags = cmd->flags != NULL && cmd->flags[0].name != NULL;
	const char *intro = cmd->intro ? cmd->intro : flags ? "Flags:\n" : NULL;

	print_usage_line(f, cmd);
	fprintf(f, "\n%s\n", cmd->summary);
	if (intro != NULL || cmd->outro != NULL) {
		fprintf(f, "\n%s", intro ? intro : "");
		if (flags)
			print_flags(f, cmd->flags);
		fputs(cmd->outro ? cmd->outro : "", f);
	}
	fputs("\n", f);
	fputs(global_help, f);
	fputs("\nSee 'banger help' for exit statuses.\n", f);
}

static void
print_command_list(FILE *f, const struct command *table, const char *group)
{
	for (const struct command *c = table; c->name; c++) {
		char words[64];

		if (group != NULL &&
		    (c->group == NULL || strcmp(c->group, group) != 0))
			continue;
		snprintf(words, sizeof(words), "%s%s%s", c->group ? c->group : "",
		    c->group ? " " : "", c->name);
		fprintf(f, "  %-16s %s\n", words, c->summary);
	}
}

void
usage_print_main(FILE *f, const struct command *table)
{
	fputs("usage: banger [global flags] COMMAND [ARGS...]\n"
	    "\n"
	    "banger is the command-line client of bangerd, the daemon that runs\n"
	    "developer microVMs.  Run 'banger COMMAND --help' for a command's flags.\n"
	    "\n"
	    "Commands:\n", f);
	print_command_list(f, table, NULL);
	fputs("  help [COMMAND]   show this help, or a command's\n\n", f);
	fputs(global_help, f);
	fputc('\n', f);
	fputs(env_help, f);
	fputc('\n', f);
	fputs(exit_help, f);
}

void
usage_print_group(FILE *f, const struct command *table, const char *group)
{
	fprintf(f, "usage: banger %s COMMAND [ARGS...]\n\nCommands:\n", group);
	print_command_list(f, table, group);
	fprintf(f, "\nRun 'banger %s COMMAND --help' for a command's flags, "
	    "'banger help' for global flags and exit statuses.\n", group);
}

/* "banger: <msg>", a blank line, then the command's usage (or, with cmd
 * NULL, the main usage of 'table') on stderr. */
static int
vusage_error(const struct command *table, const struct command *cmd,
    const char *fmt, va_list ap)
{
	fputs("banger: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n\n", stderr);
	if (cmd != NULL)
		usage_print(stderr, cmd);
	else
		usage_print_main(stderr, table);
	return CLI_EXIT_USAGE;
}

int
usage_error(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vusage_error(NULL, cmd, fmt, ap);
	va_end(ap);
	return rc;
}

int
usage_error_main(const struct command *table, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vusage_error(table, NULL, fmt, ap);
	va_end(ap);
	return rc;
}
