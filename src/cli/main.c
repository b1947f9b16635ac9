/* main.c - banger: global flags, command dispatch, help. */
#include "cli.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

/* The command 'name' of 'group' (NULL: a top-level command). */
static const struct command *
find_command(const struct command *table, const char *group, const char *name)
{
	for (const struct command *c = table; c->name != NULL; c++) {
		bool same_group = (group == NULL) ? c->group == NULL :
		    (c->group != NULL && strcmp(c->group, group) == 0);
		if (same_group && strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

static bool
is_group(const struct command *table, const char *word)
{
	for (const struct command *c = table; c->name != NULL; c++)
		if (c->group != NULL && strcmp(c->group, word) == 0)
			return true;
	return false;
}

static bool
is_help_word(const char *s)
{
	return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0 ||
	    strcmp(s, "help") == 0;
}

/* banger help [GROUP [COMMAND]] */
static int
run_help(const struct command *table, int argc, char **argv)
{
	const struct command *cmd;

	if (argc == 0) {
		usage_print_main(stdout, table);
		return CLI_EXIT_OK;
	}
	if (is_group(table, argv[0])) {
		if (argc == 1) {
			usage_print_group(stdout, table, argv[0]);
			return CLI_EXIT_OK;
		}
		cmd = find_command(table, argv[0], argv[1]);
		if (cmd == NULL || argc > 2)
			return usage_error_main(table, "no help for '%s %s'",
			    argv[0], argv[1]);
		usage_print(stdout, cmd);
		return CLI_EXIT_OK;
	}
	cmd = find_command(table, NULL, argv[0]);
	if (cmd == NULL || argc > 1)
		return usage_error_main(table, "no help for '%s'", argv[0]);
	usage_print(stdout, cmd);
	return CLI_EXIT_OK;
}

/* Parse the command's arguments against its entry and run it. */
static int
run(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	struct args *a = xmalloc(sizeof(*a));
	int rc;

	if (args_parse(cli, cmd, argc, argv, a, &rc))
		rc = cmd->run(cli, a);
	free(a);
	return rc;
}

static int
dispatch(struct cli *cli, int argc, char **argv)
{
	const struct command *table = cli->commands, *cmd;
	const char *word = argv[0];

	if (strcmp(word, "help") == 0)
		return run_help(table, argc - 1, argv + 1);
	if (strcmp(word, "--version") == 0)
		word = "version";
	if (is_group(table, word)) {
		if (argc < 2) {
			fprintf(stderr, "banger: '%s' needs a command\n\n", word);
			usage_print_group(stderr, table, word);
			return CLI_EXIT_USAGE;
		}
		if (is_help_word(argv[1])) {
			usage_print_group(stdout, table, word);
			return CLI_EXIT_OK;
		}
		cmd = find_command(table, word, argv[1]);
		if (cmd == NULL) {
			fprintf(stderr, "banger: unknown command '%s %s'\n\n", word,
			    argv[1]);
			usage_print_group(stderr, table, word);
			return CLI_EXIT_USAGE;
		}
		return run(cli, cmd, argc - 2, argv + 2);
	}
	cmd = find_command(table, NULL, word);
	if (cmd == NULL)
		return usage_error_main(table, "unknown command '%s'", word);
	return run(cli, cmd, argc - 1, argv + 1);
}

int
main(int argc, char **argv)
{
	struct cli cli;
	int i, rc;

	memset(&cli, 0, sizeof(cli));
	cli.commands = cli_commands;
	const char *env = getenv("BANGER_NO_AUTOSTART");
	if (env != NULL && env[0] != '\0' && strcmp(env, "0") != 0)
		cli.no_autostart = true;

	/* Global flags before the command word; the commands accept them
	 * after it as well. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		char why[128];
		int g;

		if (strcmp(argv[i], "--version") == 0)
			break;
		g = args_global(&cli, argc, argv, &i, why, sizeof(why));
		if (g == 2) {
			usage_print_main(stdout, cli_commands);
			return CLI_EXIT_OK;
		}
		if (g < 0)
			return usage_error_main(cli_commands, "%s", why);
		if (g == 0)
			return usage_error_main(cli_commands, "unknown flag '%s'",
			    argv[i]);
	}
	if (i >= argc) {
		fputs("banger: missing command\n\n", stderr);
		usage_print_main(stderr, cli_commands);
		return CLI_EXIT_USAGE;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fputs("banger: cannot initialize libcurl\n", stderr);
		return CLI_EXIT_ERROR;
	}
	rc = dispatch(&cli, argc - i, argv + i);
	client_free(&cli);
	curl_global_cleanup();
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
		perror("banger: stdout");
		rc = CLI_EXIT_ERROR;
	}
	return rc;
}
