/* main.c - banger: global flags, command dispatch, help. */
#include "cli.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

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
is_help_word(const char *s)
{
	return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0 ||
	    strcmp(s, "help") == 0;
}

static const struct command *
group_table(const char *group)
{
	if (strcmp(group, "vm") == 0)
		return cli_vm_commands;
	if (strcmp(group, "image") == 0)
		return cli_image_commands;
	if (strcmp(group, "operation") == 0)
		return cli_operation_commands;
	return NULL;
}

/* banger help [GROUP [COMMAND]] */
static int
run_help(int argc, char **argv)
{
	const struct command *table, *cmd;

	if (argc == 0) {
		usage_print_main(stdout);
		return CLI_EXIT_OK;
	}
	table = group_table(argv[0]);
	if (table != NULL) {
		if (argc == 1) {
			usage_print_group(stdout, argv[0]);
			return CLI_EXIT_OK;
		}
		cmd = find_command(table, argv[0], argv[1]);
		if (cmd == NULL || argc > 2)
			return usage_error(NULL, "no help for '%s %s'", argv[0],
			    argv[1]);
		usage_print(stdout, cmd);
		return CLI_EXIT_OK;
	}
	cmd = find_command(cli_system_commands, NULL, argv[0]);
	if (cmd == NULL || argc > 1)
		return usage_error(NULL, "no help for '%s'", argv[0]);
	usage_print(stdout, cmd);
	return CLI_EXIT_OK;
}

static int
dispatch(struct cli *cli, int argc, char **argv)
{
	const struct command *table, *cmd;
	const char *word = argv[0];

	if (strcmp(word, "help") == 0)
		return run_help(argc - 1, argv + 1);
	if (strcmp(word, "--version") == 0)
		word = "version";
	table = group_table(word);
	if (table != NULL) {
		if (argc < 2) {
			fprintf(stderr, "banger: '%s' needs a command\n\n", word);
			usage_print_group(stderr, word);
			return CLI_EXIT_USAGE;
		}
		if (is_help_word(argv[1])) {
			usage_print_group(stdout, word);
			return CLI_EXIT_OK;
		}
		cmd = find_command(table, word, argv[1]);
		if (cmd == NULL) {
			fprintf(stderr, "banger: unknown command '%s %s'\n\n", word,
			    argv[1]);
			usage_print_group(stderr, word);
			return CLI_EXIT_USAGE;
		}
		return cmd->run(cli, cmd, argc - 2, argv + 2);
	}
	cmd = find_command(cli_system_commands, NULL, word);
	if (cmd == NULL)
		return usage_error(NULL, "unknown command '%s'", word);
	return cmd->run(cli, cmd, argc - 1, argv + 1);
}

int
main(int argc, char **argv)
{
	struct cli cli;
	int i, rc;

	memset(&cli, 0, sizeof(cli));
	const char *env = getenv("BANGER_NO_AUTOSTART");
	if (env != NULL && env[0] != '\0' && strcmp(env, "0") != 0)
		cli.no_autostart = true;

	/* Global flags before the command word; the commands accept them
	 * after it as well. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage_print_main(stdout);
			return CLI_EXIT_OK;
		}
		if (strcmp(argv[i], "--version") == 0)
			break;
		int g = args_global(&cli, argc, argv, &i, NULL);
		if (g < 0)
			return CLI_EXIT_USAGE;
		if (g == 0)
			return usage_error(NULL, "unknown flag '%s'", argv[i]);
	}
	if (i >= argc) {
		fputs("banger: missing command\n\n", stderr);
		usage_print_main(stderr);
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
