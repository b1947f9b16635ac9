/* args.c - flag parsing and usage text for banger's commands.
 *
 * Each command describes its flags as a table of struct opt; global flags
 * are accepted anywhere on the command line.  Usage errors exit 2.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
    "       route_not_found\n"
    "  4    conflict with the current state: vm_exists, vm_running,\n"
    "       invalid_state, image_in_use, image_default, image_unavailable,\n"
    "       image_exists, cancelled (an operation someone cancelled)\n"
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

static const struct command *const command_tables[] = {
	cli_vm_commands, cli_image_commands, cli_operation_commands,
	cli_system_commands,
};

static void
print_command_list(FILE *f, const char *group)
{
	for (size_t t = 0; t < sizeof(command_tables) / sizeof(command_tables[0]);
	    t++) {
		for (const struct command *c = command_tables[t]; c->name; c++) {
			char words[64];

			if (group != NULL &&
			    (c->group == NULL || strcmp(c->group, group) != 0))
				continue;
			snprintf(words, sizeof(words), "%s%s%s",
			    c->group ? c->group : "", c->group ? " " : "", c->name);
			fprintf(f, "  %-16s %s\n", words, c->summary);
		}
	}
}

void
usage_print_main(FILE *f)
{
	fputs("usage: banger [global flags] COMMAND [ARGS...]\n"
	    "\n"
	    "banger is the command-line client of bangerd, the daemon that runs\n"
	    "developer microVMs.  Run 'banger COMMAND --help' for a command's flags.\n"
	    "\n"
	    "Commands:\n", f);
	print_command_list(f, NULL);
	fputs("  help [COMMAND]   show this help, or a command's\n\n", f);
	fputs(global_help, f);
	fputc('\n', f);
	fputs(env_help, f);
	fputc('\n', f);
	fputs(exit_help, f);
}

void
usage_print_group(FILE *f, const char *group)
{
	fprintf(f, "usage: banger %s COMMAND [ARGS...]\n\nCommands:\n", group);
	print_command_list(f, group);
	fprintf(f, "\nRun 'banger %s COMMAND --help' for a command's flags, "
	    "'banger help' for global flags and exit statuses.\n", group);
}

void
usage_print(FILE *f, const struct command *cmd)
{
	fprintf(f, "usage: banger %s%s%s%s%s\n\n%s\n", cmd->group ? cmd->group : "",
	    cmd->group ? " " : "", cmd->name, cmd->synopsis[0] ? " " : "",
	    cmd->synopsis, cmd->summary);
	if (cmd->details != NULL)
		fprintf(f, "\n%s", cmd->details);
	fputs("\n", f);
	fputs(global_help, f);
	fputs("\nSee 'banger help' for exit statuses.\n", f);
}

int
usage_error(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("banger: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	if (cmd != NULL)
		usage_print(stderr, cmd);
	else
		usage_print_main(stderr);
	return CLI_EXIT_USAGE;
}

/* Does 'arg' name flag 'name', alone or as "name=value"?  Sets *ret_value
 * to the text after '=' (or NULL). */
static bool
flag_match(const char *arg, const char *name, const char **ret_value)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n) != 0)
		return false;
	if (arg[n] == '\0') {
		*ret_value = NULL;
		return true;
	}
	if (arg[n] == '=') {
		*ret_value = arg + n + 1;
		return true;
	}
	return false;
}

/* The value of a flag that takes one: after '=' or the next argument. */
static const char *
flag_value(const struct command *cmd, int argc, char **argv, int *pos,
    const char *name, const char *inline_value, int *ret_exit)
{
	if (inline_value != NULL)
		return inline_value;
	if (*pos + 1 >= argc) {
		*ret_exit = usage_error(cmd, "flag %s needs a value", name);
		return NULL;
	}
	*pos += 1;
	return argv[*pos];
}

int
args_global(struct cli *cli, int argc, char **argv, int *pos,
    const struct command *cmd)
{
	const char *arg = argv[*pos], *v;
	int rc;

	if (strcmp(arg, "--json") == 0) {
		cli->json = true;
		return 1;
	}
	if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
		cli->quiet = true;
		return 1;
	}
	if (strcmp(arg, "--no-autostart") == 0) {
		cli->no_autostart = true;
		return 1;
	}
	if (flag_match(arg, "--socket", &v)) {
		v = flag_value(cmd, argc, argv, pos, "--socket", v, &rc);
		if (v == NULL)
			return -1;
		if (v[0] == '\0') {
			usage_error(cmd, "--socket needs a non-empty path");
			return -1;
		}
		cli->socket_flag = v;
		return 1;
	}
	return 0;
}

static bool
parse_int(const char *s, long long *ret)
{
	char *end;

	if (s[0] == '\0' || s[0] == ' ' || s[0] == '\t')
		return false;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*ret = v;
	return true;
}

/* Apply flag 'arg' from the command's table; returns false after printing
 * a usage error. */
static bool
apply_opt(const struct command *cmd, const struct opt *opts, int argc,
    char **argv, int *pos, int *ret_exit)
{
	const char *arg = argv[*pos], *inline_value = NULL, *v;
	const struct opt *o;

	for (o = opts; o->name != NULL; o++)
		if (flag_match(arg, o->name, &inline_value))
			break;
	if (o->name == NULL) {
		*ret_exit = usage_error(cmd, "unknown flag '%s'", arg);
		return false;
	}
	switch (o->kind) {
	case OPT_FLAG:
	case OPT_CHOICE:
		if (inline_value != NULL) {
			*ret_exit = usage_error(cmd, "flag %s takes no value",
			    o->name);
			return false;
		}
		if (o->kind == OPT_FLAG)
			*(bool *)o->dst = true;
		else
			*(int *)o->dst = o->choice;
		return true;
	case OPT_STRING:
		v = flag_value(cmd, argc, argv, pos, o->name, inline_value,
		    ret_exit);
		if (v == NULL)
			return false;
		*(const char **)o->dst = v;
		return true;
	case OPT_LIST: {
		struct opt_list *ol = o->dst;

		v = flag_value(cmd, argc, argv, pos, o->name, inline_value,
		    ret_exit);
		if (v == NULL)
			return false;
		if (ol->n == OPT_LIST_MAX) {
			*ret_exit = usage_error(cmd, "flag %s given more than %d "
			    "times", o->name, OPT_LIST_MAX);
			return false;
		}
		ol->v[ol->n++] = v;
		return true;
	}
	case OPT_INT: {
		struct opt_int *oi = o->dst;

		v = flag_value(cmd, argc, argv, pos, o->name, inline_value,
		    ret_exit);
		if (v == NULL)
			return false;
		if (!parse_int(v, &oi->value)) {
			*ret_exit = usage_error(cmd,
			    "flag %s needs an integer, not '%s'", o->name, v);
			return false;
		}
		oi->set = true;
		return true;
	}
	}
	*ret_exit = usage_error(cmd, "flag %s: unsupported kind", o->name);
	return false;
}

/* Parse flags and collect min..max positional NAMEs into names. */
static bool
args_collect(struct cli *cli, const struct command *cmd, int argc, char **argv,
    const struct opt *opts, const char **names, int min, int max, int *ret_n,
    int *ret_exit)
{
	bool only_positional = false;
	int n = 0;

	if (cli->opt_probe != NULL) {
		cli->opt_probe(cli->opt_probe_ctx, cmd, opts, max);
		*ret_exit = CLI_EXIT_OK;
		return false;
	}
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (!only_positional && strcmp(arg, "--") == 0) {
			only_positional = true;
			continue;
		}
		if (!only_positional && arg[0] == '-' && arg[1] != '\0') {
			if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
				usage_print(stdout, cmd);
				*ret_exit = CLI_EXIT_OK;
				return false;
			}
			int g = args_global(cli, argc, argv, &i, cmd);
			if (g < 0) {
				*ret_exit = CLI_EXIT_USAGE;
				return false;
			}
			if (g > 0)
				continue;
			if (!apply_opt(cmd, opts, argc, argv, &i, ret_exit))
				return false;
			continue;
		}
		if (max == 0) {
			*ret_exit = usage_error(cmd, "unexpected argument '%s'", arg);
			return false;
		}
		if (n == max) {
			*ret_exit = usage_error(cmd, "unexpected extra argument '%s'",
			    arg);
			return false;
		}
		if (arg[0] == '\0') {
			*ret_exit = usage_error(cmd, "NAME must not be empty");
			return false;
		}
		names[n++] = arg;
	}
	if (n < min) {
		*ret_exit = usage_error(cmd, "missing NAME argument");
		return false;
	}
	*ret_n = n;
	return true;
}

bool
args_parse(struct cli *cli, const struct command *cmd, int argc, char **argv,
    const struct opt *opts, const char **ret_name, int *ret_exit)
{
	int n;

	return args_collect(cli, cmd, argc, argv, opts, ret_name,
	    ret_name ? 1 : 0, ret_name ? 1 : 0, &n, ret_exit);
}

bool
args_parse_names(struct cli *cli, const struct command *cmd, int argc,
    char **argv, const struct opt *opts, const char **names, int max,
    int *ret_n, int *ret_exit)
{
	return args_collect(cli, cmd, argc, argv, opts, names, 1, max, ret_n,
	    ret_exit);
}

bool
args_parse_list(struct cli *cli, const struct command *cmd, int argc,
    char **argv, const struct opt *opts, const char **names, int max,
    int *ret_n, int *ret_exit)
{
	return args_collect(cli, cmd, argc, argv, opts, names, 0, max, ret_n,
	    ret_exit);
}
