/* args.c - parsing a command line against the command's entry in the
 * table (commands.c): its flags, how many positional arguments it takes,
 * and the global flags, which are accepted anywhere.  Handlers then read
 * the values by flag name.  Usage errors exit 2.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* In the order the completion scripts offer them. */
const struct global_flag cli_global_flags[] = {
	{ "--json", NULL, GLOBAL_JSON },
	{ "--quiet", "-q", GLOBAL_QUIET },
	{ "--no-autostart", NULL, GLOBAL_NO_AUTOSTART },
	{ "--socket", NULL, GLOBAL_SOCKET },
	{ "--help", "-h", GLOBAL_HELP },
	{ NULL, NULL, 0 }
};

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

/* The value of a flag that takes one: after '=' or the next argument.
 * NULL (why in 'why') when there is none. */
static const char *
flag_value(int argc, char **argv, int *pos, const char *name,
    const char *inline_value, char *why, size_t why_len)
{
	if (inline_value != NULL)
		return inline_value;
	if (*pos + 1 >= argc) {
		snprintf(why, why_len, "flag %s needs a value", name);
		return NULL;
	}
	*pos += 1;
	return argv[*pos];
}

int
args_global(struct cli *cli, int argc, char **argv, int *pos, char *why,
    size_t why_len)
{
	const char *arg = argv[*pos], *v = NULL;
	const struct global_flag *g;

	for (g = cli_global_flags; g->name != NULL; g++) {
		if (g->alias != NULL && strcmp(arg, g->alias) == 0)
			break;
		if (g->what == GLOBAL_SOCKET ? flag_match(arg, g->name, &v) :
		    strcmp(arg, g->name) == 0)
			break;
	}
	if (g->name == NULL)
		return 0;
	switch (g->what) {
	case GLOBAL_JSON:
		cli->json = true;
		return 1;
	case GLOBAL_QUIET:
		cli->quiet = true;
		return 1;
	case GLOBAL_NO_AUTOSTART:
		cli->no_autostart = true;
		return 1;
	case GLOBAL_SOCKET:
		v = flag_value(argc, argv, pos, g->name, v, why, why_len);
		if (v == NULL)
			return -1;
		if (v[0] == '\0') {
			snprintf(why, why_len, "--socket needs a non-empty path");
			return -1;
		}
		cli->socket_flag = v;
		return 1;
	case GLOBAL_HELP:
		break;
	}
	return 2;
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
apply_flag(const struct command *cmd, struct args *a, int argc, char **argv,
    int *pos, int *ret_exit)
{
	const char *arg = argv[*pos], *inline_value = NULL, *v;
	const struct flag *f = NULL;
	struct flag_val *val;
	bool neg = false;
	char why[128];
	int i;

	for (i = 0; cmd->flags != NULL && cmd->flags[i].name != NULL; i++) {
		f = &cmd->flags[i];
		if (flag_match(arg, f->name, &inline_value))
			break;
		if (f->alias != NULL && strcmp(arg, f->alias) == 0)
			break;
		if (f->neg != NULL && flag_match(arg, f->neg, &inline_value)) {
			neg = true;
			break;
		}
	}
	if (cmd->flags == NULL || cmd->flags[i].name == NULL) {
		*ret_exit = usage_error(cmd, "unknown flag '%s'", arg);
		return false;
	}
	val = &a->val[i];
	if (f->kind == FLAG_SWITCH || f->kind == FLAG_PAIR) {
		if (inline_value != NULL) {
			*ret_exit = usage_error(cmd, "flag %s takes no value",
			    neg ? f->neg : f->name);
			return false;
		}
		val->set = true;
		val->i = neg ? 0 : 1;
		return true;
	}
	v = flag_value(argc, argv, pos, f->name, inline_value, why, sizeof(why));
	if (v == NULL) {
		*ret_exit = usage_error(cmd, "%s", why);
		return false;
	}
	if (f->kind == FLAG_LIST) {
		if (val->n == FLAG_LIST_MAX) {
			*ret_exit = usage_error(cmd, "flag %s given more than %d "
			    "times", f->name, FLAG_LIST_MAX);
			return false;
		}
		val->list[val->n++] = v;
	} else if (f->kind == FLAG_INT && !parse_int(v, &val->i)) {
		*ret_exit = usage_error(cmd, "flag %s needs an integer, not '%s'",
		    f->name, v);
		return false;
	}
	val->set = true;
	val->s = v;
	return true;
}

/* "-it": one-letter switches together, each the command's (or a global
 * one's: -q, -h).  0 when arg is not such a group; 1 when applied; 2 for
 * -h; -1 after a usage error. */
static int
short_group(struct cli *cli, const struct command *cmd, struct args *a,
    const char *arg, int *ret_exit)
{
	int idx[16], n = 0, g;

	if (arg[0] != '-' || arg[1] == '-' || arg[1] == '\0' || arg[2] == '\0')
		return 0;
	for (const char *p = arg + 1; *p; p++) {
		char one[3] = { '-', *p, '\0' };
		int i, found = -1;
		for (i = 0; cmd->flags != NULL && cmd->flags[i].name; i++)
			if (cmd->flags[i].alias != NULL &&
			    strcmp(cmd->flags[i].alias, one) == 0)
				found = i;
		for (g = 0; found < 0 && cli_global_flags[g].name; g++)
			if (cli_global_flags[g].alias != NULL &&
			    strcmp(cli_global_flags[g].alias, one) == 0)
				found = 1000 + g;
		if (found < 0) {
			/* Not ours at all: the caller's "unknown flag". */
			if (p == arg + 1)
				return 0;
			*ret_exit = usage_error(cmd, "unknown flag '%s' in '%s'",
			    one, arg);
			return -1;
		}
		if (n == (int)(sizeof(idx) / sizeof(idx[0]))) {
			*ret_exit = usage_error(cmd, "too many flags in '%s'", arg);
			return -1;
		}
		idx[n++] = found;
	}
	for (int k = 0; k < n; k++) {
		if (idx[k] < 1000) {
			a->val[idx[k]].set = true;
			a->val[idx[k]].i = 1;
			continue;
		}
		const struct global_flag *gf = &cli_global_flags[idx[k] - 1000];
		if (gf->what == GLOBAL_HELP)
			return 2;
		if (gf->what == GLOBAL_QUIET)
			cli->quiet = true;
	}
	return 1;
}

/* Collect flags and positional arguments; false after --help or a usage
 * error. */
static bool
collect(struct cli *cli, const struct command *cmd, int argc, char **argv,
    struct args *a, int *ret_exit)
{
	int max = cmd->nargs == ARGS_NONE ? 0 : cmd->nargs == ARGS_ONE ? 1 :
	    ARGS_MAX;
	bool only_positional = false;
	char why[128];

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (!only_positional && strcmp(arg, "--") == 0) {
			only_positional = true;
			continue;
		}
		if (!only_positional && arg[0] == '-' && arg[1] != '\0') {
			int g = args_global(cli, argc, argv, &i, why, sizeof(why));

			if (g == 0) {
				int sg = short_group(cli, cmd, a, arg, ret_exit);
				if (sg < 0)
					return false;
				if (sg == 1)
					continue;
				g = sg;     /* 2 for -h, or 0 */
			}
			if (g == 2) {
				usage_print(stdout, cmd);
				*ret_exit = CLI_EXIT_OK;
				return false;
			}
			if (g < 0) {
				*ret_exit = usage_error(cmd, "%s", why);
				return false;
			}
			if (g == 0 && !apply_flag(cmd, a, argc, argv, &i, ret_exit))
				return false;
			continue;
		}
		if (max == 0) {
			*ret_exit = usage_error(cmd, "unexpected argument '%s'", arg);
			return false;
		}
		if (a->n == max) {
			*ret_exit = usage_error(cmd, "unexpected extra argument '%s'",
			    arg);
			return false;
		}
		if (arg[0] == '\0') {
			*ret_exit = usage_error(cmd, "NAME must not be empty");
			return false;
		}
		a->v[a->n++] = arg;
	}
	return true;
}

bool
args_parse(struct cli *cli, const struct command *cmd, int argc, char **argv,
    struct args *a, int *ret_exit)
{
	int split = argc;

	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	/* Everything after "--" is the command's 'rest' (the remote command
	 * of vm ssh), never our flags. */
	if (cmd->rest != NULL) {
		for (split = 0; split < argc; split++)
			if (strcmp(argv[split], "--") == 0)
				break;
		if (split < argc) {
			a->rest = argv + split + 1;
			a->nrest = argc - split - 1;
		}
	}
	if (!collect(cli, cmd, split, argv, a, ret_exit))
		return false;
	if (a->n == 0 && (cmd->nargs == ARGS_ONE || cmd->nargs == ARGS_SOME)) {
		*ret_exit = usage_error(cmd, "missing NAME argument");
		return false;
	}
	for (int i = 0; cmd->flags != NULL && cmd->flags[i].name != NULL; i++)
		if (cmd->flags[i].required && !a->val[i].set) {
			*ret_exit = usage_error(cmd, "%s is required",
			    cmd->flags[i].name);
			return false;
		}
	return true;
}

/* The parsed value of 'name', which the command's table must list with
 * that kind: asking for anything else is a bug in banger. */
static const struct flag_val *
lookup(const struct args *a, const char *name, enum flag_kind kind)
{
	const struct command *c = a->cmd;

	for (int i = 0; c->flags != NULL && c->flags[i].name != NULL; i++)
		if (strcmp(c->flags[i].name, name) == 0) {
			if (c->flags[i].kind != kind)
				break;
			return &a->val[i];
		}
	fprintf(stderr, "banger: internal error: '%s%s%s' has no flag %s of "
	    "that kind\n", c->group ? c->group : "", c->group ? " " : "",
	    c->name, name);
	abort();
}

bool
args_flag(const struct args *a, const char *name)
{
	return lookup(a, name, FLAG_SWITCH)->set;
}

int
args_pair(const struct args *a, const char *name)
{
	const struct flag_val *v = lookup(a, name, FLAG_PAIR);

	return v->set ? (int)v->i : -1;
}

const char *
args_str(const struct args *a, const char *name)
{
	return lookup(a, name, FLAG_STRING)->s;
}

bool
args_int(const struct args *a, const char *name, long long *ret)
{
	const struct flag_val *v = lookup(a, name, FLAG_INT);

	if (v->set)
		*ret = v->i;
	return v->set;
}

int
args_list(const struct args *a, const char *name, const char *const **ret)
{
	const struct flag_val *v = lookup(a, name, FLAG_LIST);

	*ret = v->list;
	return v->n;
}
