/* cmd_completion.c - banger completion bash|zsh.
 *
 * The scripts are made from the command table at run time, so they offer
 * exactly what this banger accepts: each command's flags, which of them
 * take a value, and how many positional arguments it takes.  A flag's
 * value completes after its metavariable: PATH or FILE files, IMAGE
 * image names, "a|b" those words, anything else nothing.  Positional
 * arguments are VM names in "vm" commands and image names in "image"
 * commands, else what the usage line's metavariable says; the script asks
 * bangerd for names ('banger vm list -q' with --no-autostart, errors
 * ignored).
 *
 * Both scripts share the shell code that reads the words before the
 * cursor (_banger_parse and the data functions): it is POSIX-style sh that
 * bash and zsh run alike.  Only the drivers differ.
 */
#include "cli.h"

#include <string.h>

/* How a metavariable completes, as the scripts spell it: "file", "image",
 * "words a b", or "none". */
static void
metavar_kind(const char *mv, char *out, size_t outsz)
{
	if (strchr(mv, '|') != NULL) {
		snprintf(out, outsz, "words %s", mv);
		for (char *p = out; *p != '\0'; p++)
			if (*p == '|')
				*p = ' ';
	} else if (strcmp(mv, "PATH") == 0 || strcmp(mv, "FILE") == 0) {
		snprintf(out, outsz, "file");
	} else if (strcmp(mv, "IMAGE") == 0) {
		snprintf(out, outsz, "image");
	} else {
		snprintf(out, outsz, "none");
	}
}

static bool
takes_value(const struct flag *f)
{
	return f->kind == FLAG_STRING || f->kind == FLAG_INT ||
	    f->kind == FLAG_LIST;
}

/* The completion of a command's positional arguments. */
static void
args_kind(const struct command *c, char *out, size_t outsz)
{
	char w[128];

	snprintf(out, outsz, "none");
	if (c->nargs == ARGS_NONE || c->args == NULL)
		return;
	if (c->group != NULL) {
		snprintf(out, outsz, "%s", strcmp(c->group, "vm") == 0 ? "vm" :
		    strcmp(c->group, "image") == 0 ? "image" : "none");
		return;
	}
	snprintf(w, sizeof(w), "%.*s", (int)strcspn(c->args, " "), c->args);
	if (w[0] != '-' && w[0] != '\0')
		metavar_kind(w, out, outsz);
}

/* 's' in single quotes for sh. */
static void
put_sq(const char *s)
{
	putchar('\'');
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*s);
	}
	putchar('\'');
}

/* Is 'group' already listed before table entry 'c'? */
static bool
group_seen_before(const struct command *table, const char *group,
    const struct command *c)
{
	for (const struct command *d = table; d != c; d++)
		if (d->group != NULL && strcmp(d->group, group) == 0)
			return true;
	return false;
}

/* "vm create" or "doctor", as the scripts key commands. */
static void
put_key(const struct command *c)
{
	printf("%s%s%s", c->group ? c->group : "", c->group ? " " : "", c->name);
}

/* Top-level words (groups, then the other commands, then help), the
 * global flags and each group's commands. */
static void
emit_words(const struct command *table)
{
	bool first = true;

	fputs("_banger_groups='", stdout);
	for (const struct command *c = table; c->name; c++)
		if (c->group && !group_seen_before(table, c->group, c)) {
			printf("%s%s", first ? "" : " ", c->group);
			first = false;
		}
	fputs("'\n_banger_top=\"$_banger_groups", stdout);
	for (const struct command *c = table; c->name; c++)
		if (c->group == NULL)
			printf(" %s", c->name);
	fputs(" help\"\n_banger_global='", stdout);
	for (const struct global_flag *g = cli_global_flags; g->name; g++)
		printf("%s%s%s%s", g == cli_global_flags ? "" : " ",
		    g->alias ? g->alias : "", g->alias ? " " : "", g->name);
	fputs("'\n\n", stdout);

	fputs("# _banger_sub GROUP: the group's commands in _banger_words.\n"
	    "_banger_sub() {\n\tcase $1 in\n", stdout);
	for (const struct command *c = table; c->name; c++) {
		if (c->group == NULL || group_seen_before(table, c->group, c))
			continue;
		printf("\t%s) _banger_words='", c->group);
		first = true;
		for (const struct command *d = c; d->name; d++)
			if (d->group && strcmp(d->group, c->group) == 0) {
				printf("%s%s", first ? "" : " ", d->name);
				first = false;
			}
		fputs("' ;;\n", stdout);
	}
	fputs("\t*) _banger_words='' ;;\n\tesac\n}\n\n", stdout);
}

/* Per command: its flags, those taking a value, its NAMEs. */
static void
emit_specs(const struct command *table)
{
	char kind[160];

	fputs("# _banger_spec 'GROUP COMMAND': its flags, those taking a value,\n"
	    "# what its NAMEs are (vm, image, words W..., none) and how many.\n"
	    "_banger_spec() {\n\tcase $1 in\n", stdout);
	for (const struct command *c = table; c->name; c++) {
		const char *sep = "";

		fputs("\t'", stdout);
		put_key(c);
		fputs("')\n\t\t_banger_flags='", stdout);
		for (const struct flag *f = c->flags; f && f->name; f++) {
			printf("%s%s%s%s%s%s", sep, f->alias ? f->alias : "",
			    f->alias ? " " : "", f->name, f->neg ? " " : "",
			    f->neg ? f->neg : "");
			sep = " ";
		}
		fputs("'\n\t\t_banger_valued='", stdout);
		sep = "";
		for (const struct flag *f = c->flags; f && f->name; f++)
			if (takes_value(f)) {
				printf("%s%s", sep, f->name);
				sep = " ";
			}
		args_kind(c, kind, sizeof(kind));
		printf("'\n\t\t_banger_args='%s'\n\t\t_banger_max=%d\n\t\t;;\n",
		    kind, c->nargs == ARGS_NONE ? 0 : c->nargs == ARGS_ONE ? 1 :
		    ARGS_MAX);
	}
	fputs("\t*) return 1 ;;\n\tesac\n}\n\n", stdout);
}

/* How each flag's value completes, where it completes at all. */
static void
emit_values(const struct command *table)
{
	char kind[160];

	fputs("# _banger_value 'GROUP COMMAND' FLAG: how the flag's value\n"
	    "# completes, in _banger_val (file, image, words W..., none).\n"
	    "_banger_value() {\n\tcase \"$1 $2\" in\n", stdout);
	for (const struct command *c = table; c->name; c++)
		for (const struct flag *f = c->flags; f && f->name; f++) {
			if (!takes_value(f))
				continue;
			metavar_kind(f->arg, kind, sizeof(kind));
			if (strcmp(kind, "none") == 0)
				continue;
			fputs("\t'", stdout);
			put_key(c);
			printf(" %s') _banger_val='%s' ;;\n", f->name, kind);
		}
	fputs("\t*' --socket') _banger_val='file' ;;\n"
	    "\t*) _banger_val='none' ;;\n\tesac\n}\n\n", stdout);
}

/* The data and the word reader both shells share. */
static void
emit_common(const struct command *table)
{
	emit_words(table);
	emit_specs(table);
	emit_values(table);
	fputs(
	    "# _banger_names vm|image BANGER SOCKET: names from bangerd, or\n"
	    "# nothing when it does not answer (it is never started for this).\n"
	    "_banger_names() {\n"
	    "\tlocal exe=$2\n"
	    "\tcase $exe in\n"
	    "\t*/*) [ -x \"$exe\" ] || exe=banger ;;\n"
	    "\t*) exe=banger ;;\n"
	    "\tesac\n"
	    "\tif [ -n \"$3\" ]; then\n"
	    "\t\tset -- \"$exe\" --no-autostart --socket \"$3\" \"$1\" list -q\n"
	    "\telse\n"
	    "\t\tset -- \"$exe\" --no-autostart \"$1\" list -q\n"
	    "\tfi\n"
	    "\tif command -v timeout >/dev/null 2>&1; then\n"
	    "\t\ttimeout 5 \"$@\" 2>/dev/null\n"
	    "\telse\n"
	    "\t\tcommand \"$@\" 2>/dev/null\n"
	    "\tfi\n"
	    "}\n\n"
	    "# _banger_parse WORD...: the words between 'banger' and the cursor.\n"
	    "# Sets _banger_group and _banger_key (\"vm create\", \"doctor\", help,\n"
	    "# '?' when unknown, empty before the command), the spec of the\n"
	    "# command, _banger_npos (NAMEs so far), _banger_sock (--socket),\n"
	    "# _banger_expect (a flag still waiting for its value) and\n"
	    "# _banger_hgroup (the group after help).\n"
	    "_banger_parse() {\n"
	    "\t_banger_key='' _banger_group='' _banger_npos=0 _banger_sock=''\n"
	    "\t_banger_expect='' _banger_hgroup='' _banger_flags='' _banger_valued=''\n"
	    "\t_banger_args='none' _banger_max=0\n"
	    "\tlocal w\n"
	    "\tfor w in \"$@\"; do\n"
	    "\t\tif [ -n \"$_banger_expect\" ]; then\n"
	    "\t\t\t[ \"$_banger_expect\" != --socket ] || _banger_sock=$w\n"
	    "\t\t\t_banger_expect=''\n"
	    "\t\t\tcontinue\n"
	    "\t\tfi\n"
	    "\t\tcase $w in\n"
	    "\t\t--socket=*) _banger_sock=${w#--socket=}; continue ;;\n"
	    "\t\t--socket) _banger_expect=--socket; continue ;;\n"
	    "\t\t-*=*) continue ;;\n"
	    "\t\t-?*)\n"
	    "\t\t\tcase \" $_banger_valued \" in\n"
	    "\t\t\t*\" $w \"*) _banger_expect=$w ;;\n"
	    "\t\t\tesac\n"
	    "\t\t\tcontinue ;;\n"
	    "\t\tesac\n"
	    "\t\tif [ -n \"$_banger_key\" ]; then\n"
	    "\t\t\tif [ \"$_banger_key\" = help ] && [ \"$_banger_npos\" -eq 0 ]; then\n"
	    "\t\t\t\tcase \" $_banger_groups \" in\n"
	    "\t\t\t\t*\" $w \"*) _banger_hgroup=$w ;;\n"
	    "\t\t\t\tesac\n"
	    "\t\t\tfi\n"
	    "\t\t\t_banger_npos=$((_banger_npos + 1))\n"
	    "\t\telif [ -n \"$_banger_group\" ]; then\n"
	    "\t\t\t_banger_key=\"$_banger_group $w\"\n"
	    "\t\t\t_banger_spec \"$_banger_key\" || _banger_key='?'\n"
	    "\t\telif [ \"$w\" = help ]; then\n"
	    "\t\t\t_banger_key=help\n"
	    "\t\telse\n"
	    "\t\t\tcase \" $_banger_groups \" in\n"
	    "\t\t\t*\" $w \"*) _banger_group=$w ;;\n"
	    "\t\t\t*)\n"
	    "\t\t\t\t_banger_key=$w\n"
	    "\t\t\t\t_banger_spec \"$w\" || _banger_key='?'\n"
	    "\t\t\t\t;;\n"
	    "\t\t\tesac\n"
	    "\t\tfi\n"
	    "\tdone\n"
	    "}\n\n", stdout);
}

static const char bash_driver[] =
    "_banger() {\n"
    "\tlocal _banger_key _banger_group _banger_npos _banger_sock _banger_expect\n"
    "\tlocal _banger_hgroup _banger_flags _banger_valued _banger_args _banger_max\n"
    "\tlocal _banger_val _banger_words\n"
    "\tlocal cur=${COMP_WORDS[COMP_CWORD]} end=$COMP_CWORD vflag='' words='' i w\n"
    "\tlocal -a ws=()\n"
    "\t# COMP_WORDBREAKS splits --flag=value into --flag, = and value.\n"
    "\tif [[ $cur == = ]] && ((COMP_CWORD > 1)); then\n"
    "\t\tvflag=${COMP_WORDS[COMP_CWORD - 1]} cur='' end=$((COMP_CWORD - 1))\n"
    "\telif ((COMP_CWORD > 2)) && [[ ${COMP_WORDS[COMP_CWORD - 1]} == = ]]; then\n"
    "\t\tvflag=${COMP_WORDS[COMP_CWORD - 2]} end=$((COMP_CWORD - 2))\n"
    "\tfi\n"
    "\tfor ((i = 1; i < end; i++)); do\n"
    "\t\tw=${COMP_WORDS[i]}\n"
    "\t\tif [[ $w == = ]] && ((${#ws[@]} > 0)); then\n"
    "\t\t\tws[${#ws[@]} - 1]+='='\n"
    "\t\t\tif ((i + 1 < end)); then\n"
    "\t\t\t\ti=$((i + 1))\n"
    "\t\t\t\tws[${#ws[@]} - 1]+=${COMP_WORDS[i]}\n"
    "\t\t\tfi\n"
    "\t\telse\n"
    "\t\t\tws+=(\"$w\")\n"
    "\t\tfi\n"
    "\tdone\n"
    "\t_banger_parse \"${ws[@]}\"\n"
    "\t[[ -n $vflag ]] || vflag=$_banger_expect\n"
    "\tCOMPREPLY=()\n"
    "\tif [[ -n $vflag ]]; then\n"
    "\t\t_banger_value \"$_banger_key\" \"$vflag\"\n"
    "\t\tcase $_banger_val in\n"
    "\t\tfile)\n"
    "\t\t\tcompopt -o filenames 2>/dev/null\n"
    "\t\t\tmapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
    "\t\t\treturn 0 ;;\n"
    "\t\tvm | image) words=$(_banger_names \"$_banger_val\" \"${COMP_WORDS[0]}\" \"$_banger_sock\") ;;\n"
    "\t\twords\\ *) words=${_banger_val#words } ;;\n"
    "\t\tesac\n"
    "\telif [[ $cur == -* ]]; then\n"
    "\t\twords=\"$_banger_global $_banger_flags\"\n"
    "\telse\n"
    "\t\tcase $_banger_key in\n"
    "\t\t'')\n"
    "\t\t\tif [[ -n $_banger_group ]]; then\n"
    "\t\t\t\t_banger_sub \"$_banger_group\"\n"
    "\t\t\t\twords=$_banger_words\n"
    "\t\t\telse\n"
    "\t\t\t\twords=$_banger_top\n"
    "\t\t\tfi ;;\n"
    "\t\thelp)\n"
    "\t\t\tif ((_banger_npos == 0)); then\n"
    "\t\t\t\twords=$_banger_top\n"
    "\t\t\telif ((_banger_npos == 1)) && [[ -n $_banger_hgroup ]]; then\n"
    "\t\t\t\t_banger_sub \"$_banger_hgroup\"\n"
    "\t\t\t\twords=$_banger_words\n"
    "\t\t\tfi ;;\n"
    "\t\t'?') ;;\n"
    "\t\t*)\n"
    "\t\t\tif ((_banger_npos < _banger_max)); then\n"
    "\t\t\t\tcase $_banger_args in\n"
    "\t\t\t\tvm | image) words=$(_banger_names \"$_banger_args\" \"${COMP_WORDS[0]}\" \"$_banger_sock\") ;;\n"
    "\t\t\t\twords\\ *) words=${_banger_args#words } ;;\n"
    "\t\t\t\tesac\n"
    "\t\t\tfi ;;\n"
    "\t\tesac\n"
    "\tfi\n"
    "\tmapfile -t COMPREPLY < <(compgen -W \"$words\" -- \"$cur\")\n"
    "}\n"
    "\n"
    "complete -F _banger banger\n";

static const char zsh_driver[] =
    "_banger() {\n"
    "\tlocal _banger_key _banger_group _banger_npos _banger_sock _banger_expect\n"
    "\tlocal _banger_hgroup _banger_flags _banger_valued _banger_args _banger_max\n"
    "\tlocal _banger_val _banger_words\n"
    "\tlocal cur=$words[CURRENT] vflag=''\n"
    "\tlocal -a ws names\n"
    "\tws=(\"${(@)words[2,CURRENT-1]}\")\n"
    "\t_banger_parse \"${ws[@]}\"\n"
    "\tif [[ -n $_banger_expect ]]; then\n"
    "\t\tvflag=$_banger_expect\n"
    "\telif [[ $cur == -*=* ]]; then\n"
    "\t\tvflag=${cur%%=*}\n"
    "\t\tcompset -P '*='\n"
    "\tfi\n"
    "\tif [[ -n $vflag ]]; then\n"
    "\t\t_banger_value \"$_banger_key\" \"$vflag\"\n"
    "\t\tcase $_banger_val in\n"
    "\t\tfile) _files ;;\n"
    "\t\tvm|image)\n"
    "\t\t\tnames=(${(f)\"$(_banger_names $_banger_val $words[1] \"$_banger_sock\")\"})\n"
    "\t\t\tcompadd -a names ;;\n"
    "\t\twords\\ *) compadd -- ${=_banger_val#words } ;;\n"
    "\t\tesac\n"
    "\t\treturn\n"
    "\tfi\n"
    "\tif [[ $cur == -* ]]; then\n"
    "\t\tcompadd -- ${=_banger_global} ${=_banger_flags}\n"
    "\t\treturn\n"
    "\tfi\n"
    "\tcase $_banger_key in\n"
    "\t'') _banger_describe \"$_banger_group\" ;;\n"
    "\thelp)\n"
    "\t\tif (( _banger_npos == 0 )); then\n"
    "\t\t\t_banger_describe ''\n"
    "\t\telif (( _banger_npos == 1 )) && [[ -n $_banger_hgroup ]]; then\n"
    "\t\t\t_banger_describe \"$_banger_hgroup\"\n"
    "\t\tfi ;;\n"
    "\t'?') ;;\n"
    "\t*)\n"
    "\t\t(( _banger_npos < _banger_max )) || return 1\n"
    "\t\tcase $_banger_args in\n"
    "\t\tvm|image)\n"
    "\t\t\tnames=(${(f)\"$(_banger_names $_banger_args $words[1] \"$_banger_sock\")\"})\n"
    "\t\t\tcompadd -a names ;;\n"
    "\t\twords\\ *) compadd -- ${=_banger_args#words } ;;\n"
    "\t\tesac ;;\n"
    "\tesac\n"
    "}\n"
    "\n"
    "# Autoloaded from fpath (the file _banger) the first call completes;\n"
    "# sourced, it registers itself.\n"
    "if [ \"$funcstack[1]\" = _banger ]; then\n"
    "\t_banger \"$@\"\n"
    "else\n"
    "\tcompdef _banger banger\n"
    "fi\n";

/* zsh: the commands of a group (or the top level) with their summaries. */
static void
emit_zsh_describe(const struct command *table)
{
	fputs("# _banger_describe GROUP: offer its commands with their summaries\n"
	    "# ('' for the top level).\n"
	    "_banger_describe() {\n\tlocal -a c\n\tcase $1 in\n\t'') c=(", stdout);
	for (const struct command *c = table; c->name; c++) {
		char desc[160];

		if (c->group != NULL) {
			if (group_seen_before(table, c->group, c))
				continue;
			snprintf(desc, sizeof(desc), "%s:%s commands", c->group,
			    c->group);
		} else {
			snprintf(desc, sizeof(desc), "%s:%s", c->name, c->summary);
		}
		putchar(' ');
		put_sq(desc);
	}
	fputs(" 'help:show help, or a command'\\''s') ;;\n", stdout);
	for (const struct command *c = table; c->name; c++) {
		if (c->group == NULL || group_seen_before(table, c->group, c))
			continue;
		printf("\t%s) c=(", c->group);
		for (const struct command *d = c; d->name; d++) {
			char desc[160];

			if (d->group == NULL || strcmp(d->group, c->group) != 0)
				continue;
			snprintf(desc, sizeof(desc), "%s:%s", d->name, d->summary);
			putchar(' ');
			put_sq(desc);
		}
		fputs(" ) ;;\n", stdout);
	}
	fputs("\t*) return 1 ;;\n\tesac\n"
	    "\t_describe -t commands 'banger command' c\n}\n\n", stdout);
}

int
cmd_completion(struct cli *cli, const struct args *a)
{
	const char *shell = a->v[0];

	if (strcmp(shell, "bash") == 0) {
		fputs("# bash completion for banger (made by 'banger completion "
		    "bash'); needs bash 4.\n\n", stdout);
		emit_common(cli->commands);
		fputs(bash_driver, stdout);
	} else if (strcmp(shell, "zsh") == 0) {
		fputs("#compdef banger\n# zsh completion for banger (made by "
		    "'banger completion zsh').\n\n", stdout);
		emit_common(cli->commands);
		emit_zsh_describe(cli->commands);
		fputs(zsh_driver, stdout);
	} else {
		return usage_error(a->cmd, "unknown shell '%s' (bash or zsh)",
		    shell);
	}
	return CLI_EXIT_OK;
}
