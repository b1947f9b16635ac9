/* cmd_system.c - banger host, doctor and version. */
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *
check_tag(const char *status)
{
	if (status == NULL)
		return "[ ?? ]";
	if (strcmp(status, "ok") == 0)
		return "[ ok ]";
	if (strcmp(status, "warn") == 0)
		return "[warn]";
	if (strcmp(status, "fail") == 0)
		return "[fail]";
	return "[ ?? ]";
}

/* The runtime bundle of the checkout this banger was built in (its
 * directory holds a Makefile and runtime/), resolved; false when banger
 * is not run from a checkout (an installed copy). */
static bool
checkout_runtime(char *dir, size_t dirsz, char *rt, size_t rtsz)
{
	char exe[PATH_MAX], probe[PATH_MAX + 16], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return false;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return false;
	*slash = '\0';
	snprintf(probe, sizeof(probe), "%s/Makefile", exe);
	if (access(probe, F_OK) < 0)
		return false;
	snprintf(probe, sizeof(probe), "%s/runtime", exe);
	char real[PATH_MAX];
	if (realpath(probe, real) == NULL)
		return false;
	snprintf(dir, dirsz, "%s", exe);
	snprintf(rt, rtsz, "%s", real);
	return true;
}

/* A check of the CLI's own: does bangerd use the runtime bundle of the
 * checkout this banger comes from?  NULL when banger is not in a
 * checkout or bangerd did not say.  New reference. */
static json_t *
checkout_check(json_t *daemon)
{
	char dir[PATH_MAX], rt[PATH_MAX], theirs[PATH_MAX], msg[3 * PATH_MAX];
	const char *drt = jstr(daemon, "runtime_dir");

	if (drt == NULL || !checkout_runtime(dir, sizeof(dir), rt, sizeof(rt)))
		return NULL;
	if (realpath(drt, theirs) == NULL)
		snprintf(theirs, sizeof(theirs), "%s", drt);
	bool same = strcmp(theirs, rt) == 0;
	if (same)
		snprintf(msg, sizeof(msg), "this banger's checkout %s and bangerd "
		    "use the same runtime bundle %s", dir, rt);
	else
		snprintf(msg, sizeof(msg), "this banger is from checkout %s (runtime "
		    "%s) but bangerd (pid %lld, %s) uses %s", dir, rt,
		    (long long)json_integer_value(jobj(daemon, "pid")),
		    jstr(daemon, "binary") ? jstr(daemon, "binary") : "?", theirs);
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "checkout",
	    "feature", "cli", "status", same ? "ok" : "warn", "message", msg,
	    "fix", same ? "" : "stop that bangerd and start this checkout's "
	    "(./bangerd -d), or use the banger that goes with it");
}

int
cmd_doctor(struct cli *cli, const struct args *a)
{
	struct reply r = { 0 };
	json_t *checks, *check;
	bool failed;
	size_t i;
	int rc;

	(void)a;
	rc = api_call(cli, "GET", "/v1/doctor", NULL, &r);
	if (rc != CLI_EXIT_OK)
		goto out;
	checks = jobj(r.json, "checks");
	/* Which bangerd answered, against this checkout's bundle. */
	struct reply root = { 0 };
	if (json_is_array(checks) && api_call_ex(cli, "GET", "/v1", NULL,
	    CLIENT_SILENT, API_TIMEOUT_S, &root) == CLI_EXIT_OK) {
		json_t *c = checkout_check(jobj(root.json, "daemon"));
		if (c != NULL)
			json_array_append_new(checks, c);
	}
	reply_free(&root);
	failed = jstr(r.json, WIRE_STATUS) != NULL &&
	    strcmp(jstr(r.json, WIRE_STATUS), "fail") == 0;
	json_array_foreach(checks, i, check) {
		const char *status = jstr(check, WIRE_STATUS);
		const char *fix = jstr(check, "fix");
		char name[128], msg[1024], fbuf[1024];

		if (status != NULL && strcmp(status, "fail") == 0)
			failed = true;
		if (cli->json)
			continue;
		printf("%s %s: %s\n", check_tag(status),
		    jtext(jobj(check, WIRE_NAME), name, sizeof(name)),
		    jtext(jobj(check, WIRE_MESSAGE), msg, sizeof(msg)));
		if ((status == NULL || strcmp(status, "ok") != 0) && fix != NULL &&
		    fix[0] != '\0')
			printf("       fix: %s\n", out_clean(fix, fbuf, sizeof(fbuf)));
	}
	if (cli->json) {
		/* The server's document plus the CLI's own check. */
		char *text = json_dumps(r.json, JSON_COMPACT);
		if (text != NULL)
			printf("%s\n", text);
		free(text);
	}
	if (failed)
		rc = CLI_EXIT_ERROR;
out:
	reply_free(&r);
	return rc;
}

int
cmd_version(struct cli *cli, const struct args *a)
{
	struct reply r = { 0 };
	unsigned flags = CLIENT_NO_AUTOSTART;
	int rc;

	(void)a;
	/* Asking for a version must not start a daemon.  For people an
	 * absent bangerd is part of the answer, not an error. */
	if (!cli->json)
		flags |= CLIENT_SILENT;
	rc = api_call_ex(cli, "GET", "/v1", NULL, flags, API_TIMEOUT_S, &r);
	if (cli->json) {
		if (rc == CLI_EXIT_OK)
			out_raw(&r);
		reply_free(&r);
		return rc;
	}
	printf("banger %s\n", BANGER_VERSION);
	if (rc == CLI_EXIT_OK) {
		char v[64], api[64];

		printf("bangerd %s (api %s)\n",
		    jtext(jobj(r.json, "server_version"), v, sizeof(v)),
		    jtext(jobj(r.json, "api_version"), api, sizeof(api)));
		json_t *d = jobj(r.json, "daemon");
		if (json_is_object(d)) {
			char p[PATH_MAX], sock[PATH_MAX], id[32];
			printf("  pid %lld, %s\n",
			    (long long)json_integer_value(jobj(d, "pid")),
			    jtext(jobj(d, "binary"), p, sizeof(p)));
			printf("  runtime %s (bundle %s)\n",
			    jtext(jobj(d, "runtime_dir"), p, sizeof(p)),
			    jtext(jobj(jobj(d, "bundle"), WIRE_ID), id,
			    sizeof(id)));
			printf("  state %s, socket %s\n",
			    jtext(jobj(d, "state_dir"), p, sizeof(p)),
			    jtext(jobj(d, "socket"), sock, sizeof(sock)));
			json_t *c = checkout_check(d);
			if (c != NULL &&
			    strcmp(jstr(c, WIRE_STATUS), "ok") != 0)
				printf("warning: %s\n", jstr(c, WIRE_MESSAGE));
			json_decref(c);
		}
	} else if (rc == CLI_EXIT_UNREACHABLE) {
		printf("bangerd not reachable at %s\n", cli->socket_path);
		rc = CLI_EXIT_OK;
	}
	reply_free(&r);
	return rc;
}

/* GET /v1/host: the state dir's disk, what VMs may still claim, the
 * reserve; the host's CPUs and memory and what VMs take of them. */
int
cmd_host(struct cli *cli, const struct args *a)
{
	struct reply r = { 0 };
	int rc;

	(void)a;
	rc = api_call(cli, "GET", "/v1/host", NULL, &r);
	if (rc == CLI_EXIT_OK && cli->json) {
		out_raw(&r);
	} else if (rc == CLI_EXIT_OK) {
		char dir[PATH_MAX];
		long long mib = 1 << 20;
		printf("state dir  %s\n", jtext(jobj(r.json, "state_dir"), dir,
		    sizeof(dir)));
		printf("free       %lld MiB\n",
		    (long long)json_integer_value(jobj(r.json, "free_bytes")) / mib);
		printf("committed  %lld MiB (what VM disks may still claim)%s\n",
		    (long long)json_integer_value(jobj(r.json,
		    "committed_bytes")) / mib, json_is_true(jobj(r.json,
		    "overcommitted")) ? ": more than is free above the reserve" : "");
		printf("reserve    %lld MiB\n",
		    (long long)json_integer_value(jobj(r.json, "reserve_bytes")) / mib);
		json_t *cap = jobj(r.json, "capacity");
		json_t *run = jobj(jobj(r.json, "allocated"), "running");
		json_t *all = jobj(jobj(r.json, "allocated"), "defined");
		if (json_is_object(cap) && json_is_object(run) &&
		    json_is_object(all)) {
			printf("capacity   %lld vCPUs, %lld MiB memory\n",
			    (long long)json_integer_value(jobj(cap, "vcpus")),
			    (long long)json_integer_value(jobj(cap, "memory_mib")));
			printf("running    %lld VMs: %lld vCPUs, %lld MiB memory\n",
			    (long long)json_integer_value(jobj(run, "vms")),
			    (long long)json_integer_value(jobj(run, "vcpus")),
			    (long long)json_integer_value(jobj(run, "memory_mib")));
			printf("defined    %lld VMs: %lld vCPUs, %lld MiB memory, "
			    "%lld GiB disk\n",
			    (long long)json_integer_value(jobj(all, "vms")),
			    (long long)json_integer_value(jobj(all, "vcpus")),
			    (long long)json_integer_value(jobj(all, "memory_mib")),
			    (long long)json_integer_value(jobj(all, "disk_gib")));
		}
	}
	reply_free(&r);
	return rc;
}
