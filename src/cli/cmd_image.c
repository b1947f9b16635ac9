/* cmd_image.c - banger image register|list|show|delete. */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* bangerd wants absolute paths; resolve a relative one against the
 * current directory (bangerd checks the file itself).  Caller frees. */
static char *
absolute(const char *path)
{
	char cwd[PATH_MAX];

	if (path[0] == '/' || path[0] == '\0' || getcwd(cwd, sizeof(cwd)) == NULL)
		return xstrdup(path);
	if (strcmp(path, ".") == 0)
		return xstrdup(cwd);
	if (strncmp(path, "./", 2) == 0)
		path += 2;
	return xasprintf("%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", path);
}

/* banger image build: one image.build operation, followed. */
static int
image_build(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	const char *name = NULL, *distro = NULL;
	struct op_opts oo = { 0 };
	const struct opt opts[] = {
		{ "--name", OPT_STRING, &name, 0 },
		{ "--distro", OPT_STRING, &distro, 0 },
		{ "--no-wait", OPT_FLAG, &oo.no_wait, 0 },
		{ "--cancel", OPT_FLAG, &oo.cancel, 0 },
		OPT_END
	};
	json_t *body, *op = NULL;
	char *label, buf[128];
	int rc;

	if (!args_parse(cli, cmd, argc, argv, opts, NULL, &rc))
		return rc;
	if (name == NULL)
		return usage_error(cmd, "--name is required");
	body = json_object();
	json_object_set_new(body, "name", json_string(name));
	if (distro != NULL)
		json_object_set_new(body, "distro", json_string(distro));
	label = xasprintf("building image '%s'", out_clean(name, buf, sizeof(buf)));
	oo.label = label;
	rc = op_run(cli, "POST", "/v1/images/build", body, &oo, &op);
	if (rc == CLI_EXIT_OK && op != NULL && cli_chatty(cli))
		printf("image '%s' built: %s\n", out_clean(name, buf, sizeof(buf)),
		    jstr(jobj(op, "result"), "rootfs"));
	if (op != NULL)
		json_decref(op);
	json_decref(body);
	free(label);
	return rc;
}

static int
image_register(struct cli *cli, const struct command *cmd, int argc,
    char **argv)
{
	const char *name = NULL, *rootfs = NULL, *work_seed = NULL;
	const struct opt opts[] = {
		{ "--name", OPT_STRING, &name, 0 },
		{ "--rootfs", OPT_STRING, &rootfs, 0 },
		{ "--work-seed", OPT_STRING, &work_seed, 0 },
		OPT_END
	};
	struct reply r = { 0 };
	json_t *body;
	char *p;
	int rc;

	if (!args_parse(cli, cmd, argc, argv, opts, NULL, &rc))
		return rc;
	if (name == NULL)
		return usage_error(cmd, "--name is required");
	if (rootfs == NULL)
		return usage_error(cmd, "--rootfs is required");
	body = json_object();
	json_object_set_new(body, "name", json_string(name));
	p = absolute(rootfs);
	json_object_set_new(body, "rootfs", json_string(p));
	free(p);
	if (work_seed != NULL) {
		p = absolute(work_seed);
		json_object_set_new(body, "work_seed", json_string(p));
		free(p);
	}
	rc = api_call(cli, "POST", "/v1/images", body, &r);
	if (rc == CLI_EXIT_OK) {
		if (cli->json) {
			out_raw(&r);
		} else if (!cli->quiet) {
			char buf[128];
			const char *n = jstr(r.json, "name");

			printf("image '%s' %s\n", out_clean(n ? n : name, buf,
			    sizeof(buf)), r.status == 201 ? "registered" : "updated");
		}
	}
	reply_free(&r);
	json_decref(body);
	return rc;
}

static int
image_list(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	static const char *const headers[] = { "NAME", "SOURCE", "DEFAULT",
	    "AVAILABLE", "ROOTFS" };
	static const char *const keys[] = { "name", "source", "default",
	    "available", "rootfs" };
	const struct list_spec ls = { "/v1/images", "images", "name", 5, headers,
		keys, NULL };
	const struct opt opts[] = { OPT_END };
	int rc;

	if (!args_parse(cli, cmd, argc, argv, opts, NULL, &rc))
		return rc;
	return out_list(cli, &ls);
}

static void
print_image(json_t *img)
{
	static const char *const keys[] = { "name", "source", "default",
	    "managed", "available", "rootfs", "work_seed", "created_at",
	    "updated_at" };
	char buf[2048];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		out_kv(keys[i], jtext(jobj(img, keys[i]), buf, sizeof(buf)));
}

static int
image_show(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	const struct opt opts[] = { OPT_END };
	const char *name = NULL;
	struct reply r = { 0 };
	char *path;
	int rc;

	if (!args_parse(cli, cmd, argc, argv, opts, &name, &rc))
		return rc;
	path = api_path("/v1/images/", name, NULL);
	rc = api_call(cli, "GET", path, NULL, &r);
	if (rc == CLI_EXIT_OK) {
		if (cli->json)
			out_raw(&r);
		else
			print_image(r.json);
	}
	reply_free(&r);
	free(path);
	return rc;
}

static int
image_delete(struct cli *cli, const struct command *cmd, int argc,
    char **argv)
{
	const struct opt opts[] = { OPT_END };
	const char *name = NULL;
	struct reply r = { 0 };
	char *path, buf[128];
	int rc;

	if (!args_parse(cli, cmd, argc, argv, opts, &name, &rc))
		return rc;
	path = api_path("/v1/images/", name, NULL);
	rc = api_call(cli, "DELETE", path, NULL, &r);
	if (rc == CLI_EXIT_OK) {
		/* 204: with --json there is no body to print. */
		if (cli->json)
			out_raw(&r);
		else if (!cli->quiet)
			printf("image '%s' deleted\n", out_clean(name, buf,
			    sizeof(buf)));
	}
	reply_free(&r);
	free(path);
	return rc;
}

const struct command cli_image_commands[] = {
	{ "image", "register", "--name NAME --rootfs PATH [--work-seed PATH]",
	  "register an ext4 root filesystem as an image (or update one)",
	  "Flags:\n"
	  "  --name NAME       image name, a DNS label other than 'default'\n"
	  "  --rootfs PATH     the rootfs ext4 file (required)\n"
	  "  --work-seed PATH  ext4 file each VM's work disk is cloned from\n"
	  "Relative paths are resolved against the current directory.\n",
	  image_register },
	{ "image", "build",
	  "--name NAME [--distro debian|void] [--no-wait] [--cancel]",
	  "build a managed image with banger's rootfs scripts (bangerd runs "
	  "the build)",
	  "Flags:\n"
	  "  --name NAME     the new image's name\n"
	  "  --distro D      debian (default) or void (experimental; needs the "
	  "Void mirrors)\n"
	  "  --no-wait       print the operation id and return at once\n"
	  "  --cancel        Ctrl-C cancels the build (its script is terminated)\n"
	  "                  instead of only stopping the wait\n",
	  image_build },
	{ "image", "list", "", "list images (with -q: names only)", NULL,
	  image_list },
	{ "image", "show", "NAME", "show an image", NULL, image_show },
	{ "image", "delete", "NAME", "delete an image",
	  NULL, image_delete },
	{ NULL, NULL, NULL, NULL, NULL, NULL }
};
