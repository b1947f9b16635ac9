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
int
cmd_image_build(struct cli *cli, const struct args *a)
{
	const char *name = args_str(a, "--name");
	const char *distro = args_str(a, "--distro");
	struct op_opts oo = { 0 };
	json_t *body, *op = NULL;
	char *label, buf[128];
	int rc;

	body = json_object();
	json_object_set_new(body, WIRE_NAME, json_string(name));
	if (distro != NULL)
		json_object_set_new(body, WIRE_DISTRO, json_string(distro));
	label = xasprintf("building image '%s'", out_clean(name, buf, sizeof(buf)));
	oo.label = label;
	oo.no_wait = args_flag(a, "--no-wait");
	oo.cancel = args_flag(a, "--cancel");
	rc = op_run(cli, "POST", "/v1/images/build", body, &oo, &op);
	if (rc == CLI_EXIT_OK && op != NULL && cli_chatty(cli))
		printf("image '%s' built: %s\n", out_clean(name, buf, sizeof(buf)),
		    jstr(jobj(op, WIRE_RESULT), WIRE_ROOTFS));
	if (op != NULL)
		json_decref(op);
	json_decref(body);
	free(label);
	return rc;
}

/* banger image warm NAME: an image.warm operation, followed; --drop:
 * DELETE the warm snapshot. */
int
cmd_image_warm(struct cli *cli, const struct args *a)
{
	const char *name = a->v[0];
	struct op_opts oo = { 0 };
	struct reply r = { 0 };
	json_t *op = NULL;
	char *path, *label, buf[128];
	int rc;

	path = api_path("/v1/images/", name, "/warm");
	out_clean(name, buf, sizeof(buf));
	if (args_flag(a, "--drop")) {
		rc = out_call(cli, "DELETE", path, NULL, &r);
		if (rc == CLI_EXIT_OK && cli_chatty(cli))
			printf("image '%s': warm snapshot dropped\n", buf);
		reply_free(&r);
		free(path);
		return rc;
	}
	label = xasprintf("warming image '%s'", buf);
	oo.label = label;
	oo.no_wait = args_flag(a, "--no-wait");
	oo.cancel = args_flag(a, "--cancel");
	rc = op_run(cli, "POST", path, NULL, &oo, &op);
	if (rc == CLI_EXIT_OK && op != NULL && cli_chatty(cli)) {
		json_t *w = jobj(jobj(op, WIRE_RESULT), WIRE_WARM);

		printf("image '%s' is warm: creates with %lld vcpus, %lld MiB and "
		    "a %lld GiB disk start from its snapshot\n", buf,
		    (long long)json_integer_value(jobj(w, "vcpus")),
		    (long long)json_integer_value(jobj(w, "memory_mib")),
		    (long long)json_integer_value(jobj(w, "disk_gib")));
	}
	if (op != NULL)
		json_decref(op);
	free(label);
	free(path);
	return rc;
}

int
cmd_image_register(struct cli *cli, const struct args *a)
{
	const char *name = args_str(a, "--name");
	const char *rootfs = args_str(a, "--rootfs");
	const char *work_seed = args_str(a, "--work-seed");
	struct reply r = { 0 };
	json_t *body;
	char *p;
	int rc;

	body = json_object();
	json_object_set_new(body, WIRE_NAME, json_string(name));
	p = absolute(rootfs);
	json_object_set_new(body, WIRE_ROOTFS, json_string(p));
	free(p);
	if (work_seed != NULL) {
		p = absolute(work_seed);
		json_object_set_new(body, WIRE_WORK_SEED, json_string(p));
		free(p);
	}
	rc = out_call(cli, "POST", "/v1/images", body, &r);
	if (rc == CLI_EXIT_OK && cli_chatty(cli)) {
		char buf[128];

		printf("image '%s' %s\n", out_name(r.json, name, buf, sizeof(buf)),
		    r.status == 201 ? "registered" : "updated");
	}
	reply_free(&r);
	json_decref(body);
	return rc;
}

/* The warm snapshot as a word: -, warming, or its shape. */
static void
warm_text(json_t *w, char *buf, size_t len)
{
	if (!json_is_object(w))
		snprintf(buf, len, "-");
	else if (strcmp(jstr(w, "state") ? jstr(w, "state") : "", "ready") != 0)
		snprintf(buf, len, "warming");
	else
		snprintf(buf, len, "%lldcpu/%lldM/%lldG",
		    (long long)json_integer_value(jobj(w, "vcpus")),
		    (long long)json_integer_value(jobj(w, "memory_mib")),
		    (long long)json_integer_value(jobj(w, "disk_gib")));
}

static const char *const list_keys[] = { "name", "source", "default",
    "available", WIRE_WARM, "rootfs" };

static void
image_cell(json_t *img, int col, char *buf, size_t len)
{
	if (strcmp(list_keys[col], WIRE_WARM) == 0)
		warm_text(jobj(img, WIRE_WARM), buf, len);
	else
		jtext(jobj(img, list_keys[col]), buf, len);
}

int
cmd_image_list(struct cli *cli, const struct args *a)
{
	static const char *const headers[] = { "NAME", "SOURCE", "DEFAULT",
	    "AVAILABLE", "WARM", "ROOTFS" };
	const struct list_spec ls = { "/v1/images", WIRE_IMAGES, WIRE_NAME, 6,
		headers, list_keys, image_cell };

	(void)a;
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
	warm_text(jobj(img, WIRE_WARM), buf, sizeof(buf));
	out_kv("warm", buf);
}

int
cmd_image_show(struct cli *cli, const struct args *a)
{
	return out_show(cli, "/v1/images/", a->v[0], NULL, print_image);
}

int
cmd_image_delete(struct cli *cli, const struct args *a)
{
	const char *name = a->v[0];
	struct reply r = { 0 };
	char *path, buf[128];
	int rc;

	path = api_path("/v1/images/", name, NULL);
	/* 204: with --json there is no body to print. */
	rc = out_call(cli, "DELETE", path, NULL, &r);
	if (rc == CLI_EXIT_OK && cli_chatty(cli))
		printf("image '%s' deleted\n", out_clean(name, buf, sizeof(buf)));
	reply_free(&r);
	free(path);
	return rc;
}
