/* cmd_completion.c - banger completion bash|zsh.
 *
 * The scripts are made from the command tables at run time, so they
 * offer exactly what this banger accepts.  Every command parses its
 * arguments with args_parse*() before doing anything else; with
 * cli->opt_probe set, that call hands over the command's flag table and
 * its NAME count instead of parsing.  A flag's value is completed after
 * its metavariable in the command's synopsis: PATH completes files, IMAGE
 * image names, "a|b" those words, anything else nothing.  NAMEs are VM
 * names in "vm" commands and image names in "image" commands; the script
 * asks bangerd for them ('banger vm list -q' with --no-autostart, errors
 * ignored).
 *
 * Both scripts share the shell code that reads the words before the
 * cursor (_banger_parse and the data functions): it is POSIX-style sh that
 * bash and zsh run alike.  Only the drivers differ.
 */
#include "cli.h"

#include <string.h>

#define PROBE_MAX_OPTS 32

struct probe {
	bool seen;
	int max_names;
	int nopts;
	struct {
		const char *name;  /* string literals: outlive the command */
		bool takes_value;
	} opts[PROBE_MAX_OPTS];
};

static const struct command *const tables[] = {
	cli_vm_commands, cli_image_commands, cli_operation_commands,
	cli_system_commands,
};

#define NTABLES (sizeof(tables) / sizeof(tables[0]))

/* What args_global() accepts; tests/cli compares it with 'banger help'. */
static const char global_flags[] =
    "--json -q --quiet --no-autostart --socket -h --help";

static void
probe_cb(void *ctx, const struct command *cmd, const struct opt *opts,
    int max_names)
{
	struct probe *p = ctx;

	(void)cmd;
	p->seen = true;
	p->max_names = max_names;
	p->nopts = 0;
	for (const struct opt *o = opts; o->name != NULL; o++) {
		if (p->nopts == PROBE_MAX_OPTS)
			break;
		p->opts[p->nopts].name = o->name;
		p->opts[p->nopts].takes_value = o->kind == OPT_STRING ||
		    o->kind == OPT_INT;
		p->nopts++;
	}
}

/* Run the command in probe mode.  Should a command ever do work before
 * parsing, it still cannot reach or start a daemon: no autostart and a
 * socket that does not exist. */
static int
probe_command(const struct command *c, struct probe *p)
{
	char *argv[] = { NULL };
	struct cli pc;

	memset(&pc, 0, sizeof(pc));
	memset(p, 0, sizeof(*p));
	pc.opt_probe = probe_cb;
	pc.opt_probe_ctx = p;
	pc.no_autostart = true;
	pc.socket_flag = "/nonexistent/banger-completion.sock";
	c->run(&pc, c, 0, argv);
	client_free(&pc);
	if (!p->seen) {
		fprintf(stderr, "banger: internal error: '%s%s%s' does not parse "
		    "its arguments with args_parse()\n", c->group ? c->group : "",
		    c->group ? " " : "", c->name);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

/* The synopsis word 'i' (0-based) without brackets and "...": "[--x" ->
 * "--x", "debian|void]" -> "debian|void".  False past the last word. */
static bool
synopsis_word(const char *syn, int i, char *out, size_t outsz)
{
	const char *p = syn;
	size_t n;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return false;
		n = strcspn(p, " ");
		if (i-- == 0)
			break;
		p += n;
	}
	while (n > 0 && *p == '[') {
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == ']' || p[n - 1] == '.'))
		n--;
	snprintf(out, outsz, "%.*s", (int)n, p);
	return true;
}

/* Is 'flag' one of the '|'-separated alternatives in 'word'? */
static bool
word_names_flag(const char *word, const char *flag)
{
	size_t n = strlen(flag);

	for (const char *p = word; *p != '\0';) {
		size_t len = strcspn(p, "|");
		if (len == n && strncmp(p, flag, n) == 0)
			return true;
		p += len;
		if (*p == '|')
			p++;
	}
	return false;
}

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

/* The completion of a flag's value, from the word after it. */
static void
flag_value_kind(const struct command *c, const char *flag, char *out,
    size_t outsz)
{
	char w[128], mv[128];

	snprintf(out, outsz, "none");
	for (int i = 0; synopsis_word(c->synopsis, i, w, sizeof(w)); i++) {
		if (!word_names_flag(w, flag))
			continue;
		if (synopsis_word(c->synopsis, i + 1, mv, sizeof(mv)) &&
		    mv[0] != '-' && mv[0] != '\0')
			metavar_kind(mv, out, outsz);
		return;
	}
}

/* The completion of a command's NAMEs. */
static void
args_kind(const struct command *c, const struct probe *p, char *out,
    size_t outsz)
{
	char w[128];

	snprintf(out, outsz, "none");
	if (p->max_names == 0)
		return;
	if (c->group != NULL) {
		snprintf(out, outsz, "%s", strcmp(c->group, "vm") == 0 ? "vm" :
		    strcmp(c->group, "image") == 0 ? "image" : "none");
		return;
	}
	if (synopsis_word(c->synopsis, 0, w, sizeof(w)) && w[0] != '-')
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
group_seen_before(const char *group, const struct command *c)
{
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct command *d = tables[t]; d->name != NULL; d++) {
			if (d == c)
				return false;
			if (d->group != NULL && strcmp(d->group, group) == 0)
				return true;
		}
	return false;
}

/* The data and the word reader both shells share. */
static int
emit_common(void)
{
	struct probe p;
	char kind[160];
	bool first;
	int rc;

	/* Top-level words: groups, then the other commands, then help. */
	fputs("_banger_groups='", stdout);
	first = true;
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct command *c = tables[t]; c->name; c++)
			if (c->group && !group_seen_before(c->group, c)) {
				printf("%s%s", first ? "" : " ", c->group);
				first = false;
			}
	fputs("'\n_banger_top=\"$_banger_groups", stdout);
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct command *c = tables[t]; c->name; c++)
			if (c->group == NULL)
				printf(" %s", c->name);
	printf(" help\"\n_banger_global='%s'\n\n", global_flags);

	fputs("# _banger_sub GROUP: the group's commands in _banger_words.\n"
	    "_banger_sub() {\n\tcase $1 in\n", stdout);
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct command *c = tables[t]; c->name; c++) {
			if (c->group == NULL || group_seen_before(c->group, c))
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

	fputs("# _banger_spec 'GROUP COMMAND': its flags, those taking a value,\n"
	    "# what its NAMEs are (vm, image, words W..., none) and how many.\n"
	    "_banger_spec() {\n\tcase $1 in\n", stdout);
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct command *c = tables[t]; c->name; c++) {
			if ((rc = probe_command(c, &p)) != CLI_EXIT_OK)
				return rc;
			printf("\t'%s%s%s')\n\t\t_banger_flags='", c->group ?
			    c->group : "", c->group ? " " : "", c->name);
			for (int i = 0; i < p.nopts; i++)
				printf("%s%s", i ? " " : "", p.opts[i].name);
			fputs("'\n\t\t_banger_valued='", stdout);
			first = true;
			for (int i = 0; i < p.nopts; i++)
				if (p.opts[i].takes_value) {
					printf("%s%s", first ? "" : " ", p.opts[i].name);
					first = false;
				}
			args_kind(c, &p, kind, sizeof(kind));
			printf("'\n\t\t_banger_args='%s'\n\t\t_banger_max=%d\n\t\t;;\n",
			    kind, p.max_names);
		}
	fputs("\t*) return 1 ;;\n\tesac\n}\n\n", stdout);

	fputs("# _banger_value 'GROUP COMMAND' FLAG: how the flag's value\n"
	    "# completes, in _banger_val (file, image, words W..., none).\n"
	    "_banger_value() {\n\tcase \"$1 $2\" in\n", stdout);
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct command *c = tables[t]; c->name; c++) {
			if ((rc = probe_command(c, &p)) != CLI_EXIT_OK)
				return rc;
			for (int i = 0; i < p.nopts; i++) {
				if (!p.opts[i].takes_value)
					continue;
				flag_value_kind(c, p.opts[i].name, kind, sizeof(kind));
				if (strcmp(kind, "none") == 0)
					continue;
				printf("\t'%s%s%s %s') _banger_val='%s' ;;\n",
				    c->group ? c->group : "", c->group ? " " : "",
				    c->name, p.opts[i].name, kind);
			}
		}
	fputs("\t*' --socket') _banger_val='file' ;;\n"
	    "\t*) _banger_val='none' ;;\n\tesac\n}\n\n", stdout);

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
	return CLI_EXIT_OK;
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
emit_zsh_describe(void)
{
	fputs("# _banger_describe GROUP: offer its commands with their summaries\n"
	    "# ('' for the top level).\n"
	    "_banger_describe() {\n\tlocal -a c\n\tcase $1 in\n\t'') c=(", stdout);
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct command *c = tables[t]; c->name; c++) {
			char desc[160];

			if (c->group != NULL) {
				if (group_seen_before(c->group, c))
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
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct command *c = tables[t]; c->name; c++) {
			if (c->group == NULL || group_seen_before(c->group, c))
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
cli_completion(struct cli *cli, const struct command *cmd, int argc,
    char **argv)
{
	const struct opt opts[] = { OPT_END };
	const char *shell = NULL;
	int rc;

	if (!args_parse(cli, cmd, argc, argv, opts, &shell, &rc))
		return rc;
	if (strcmp(shell, "bash") == 0) {
		fputs("# bash completion for banger (made by 'banger completion "
		    "bash'); needs bash 4.\n\n", stdout);
		if ((rc = emit_common()) != CLI_EXIT_OK)
			return rc;
		fputs(bash_driver, stdout);
	} else if (strcmp(shell, "zsh") == 0) {
		fputs("#compdef banger\n# zsh completion for banger (made by "
		    "'banger completion zsh').\n\n", stdout);
		if ((rc = emit_common()) != CLI_EXIT_OK)
			return rc;
		emit_zsh_describe();
		fputs(zsh_driver, stdout);
	} else {
		return usage_error(cmd, "unknown shell '%s' (bash or zsh)", shell);
	}
	return CLI_EXIT_OK;
}
