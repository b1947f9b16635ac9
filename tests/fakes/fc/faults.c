/* faults.c - faults a test asks for in the JSON file BANGER_FAKE_FC_FAULTS:
 * failing API calls, slow or dying VMMs, a guest that ignores requests.
 * "fail" refuses a call with no side effect; "snapshot_load_error" makes a
 * snapshot load fail in its restore, which ends the process as a real
 * failed load ends Firecracker.
 * A file that does not parse, or has a key or type we do not know, exits
 * with 2: a test's typo must not pass silently. */
#include "fake.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum fault_type { FT_FAIL, FT_STRING, FT_LONG, FT_BOOL, FT_EXIT, FT_MATCH };

static const struct {
	const char *key;
	enum fault_type type;
	size_t off;		/* in struct faults */
	size_t size;		/* FT_STRING */
} fault_keys[] = {
	{ "fail", FT_FAIL, 0, 0 },
	{ "fail_message", FT_STRING, offsetof(struct faults, fail_message),
	  sizeof(((struct faults *)0)->fail_message) },
	{ "listen_delay_ms", FT_LONG, offsetof(struct faults, listen_delay_ms), 0 },
	{ "die_after_start", FT_BOOL, offsetof(struct faults, die_after_start), 0 },
	{ "exit_at_start", FT_EXIT, 0, 0 },
	{ "agent_delay_ms", FT_LONG, offsetof(struct faults, agent_delay_ms), 0 },
	{ "no_agent", FT_BOOL, offsetof(struct faults, no_agent), 0 },
	{ "ignore_ctrl_alt_del", FT_BOOL,
	  offsetof(struct faults, ignore_ctrl_alt_del), 0 },
	{ "ignore_poweroff", FT_BOOL, offsetof(struct faults, ignore_poweroff), 0 },
	{ "agent_ready", FT_STRING, offsetof(struct faults, agent_ready),
	  sizeof(((struct faults *)0)->agent_ready) },
	{ "agent_ssh_port", FT_LONG, offsetof(struct faults, agent_ssh_port), 0 },
	{ "snapshot_load_error", FT_STRING,
	  offsetof(struct faults, snapshot_load_error),
	  sizeof(((struct faults *)0)->snapshot_load_error) },
	{ "shutdown_delay_ms", FT_LONG,
	  offsetof(struct faults, shutdown_delay_ms), 0 },
	{ "match_id", FT_MATCH, 0, 0 },
};

static const char *faults_file;

static void
faults_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void
faults_bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fake-firecracker: faults file %s: ", faults_file);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void
faults_defaults(struct faults *f)
{
	json_decref(f->fail);
	*f = (struct faults){ .shutdown_delay_ms = 50 };
	snprintf(f->fail_message, sizeof(f->fail_message), "injected fault");
}

/* "fail": one "METHOD /path" or a list of them. */
static json_t *
faults_fail_list(json_t *v)
{
	json_t *list, *e;
	size_t k;

	if (!json_is_string(v) && !json_is_array(v))
		faults_bad("\"fail\" must be \"METHOD /path\" or a list of them");
	list = json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
	json_array_foreach(list, k, e) {
		const char *s = json_string_value(e), *sp;
		if (s == NULL)
			faults_bad("\"fail\" entries must be strings");
		if ((sp = strchr(s, ' ')) == NULL || sp[1] != '/')
			faults_bad("bad \"fail\" entry \"%s\" (want \"METHOD /path\")", s);
	}
	return list;
}

static void
faults_set(struct faults *f, size_t k, json_t *v, const char **match_id)
{
	char *at = (char *)f + fault_keys[k].off;
	const char *key = fault_keys[k].key;

	switch (fault_keys[k].type) {
	case FT_FAIL:
		json_decref(f->fail);
		f->fail = faults_fail_list(v);
		break;
	case FT_STRING:
	case FT_MATCH:
		if (!json_is_string(v))
			faults_bad("\"%s\" must be a string", key);
		if (fault_keys[k].type == FT_MATCH)
			*match_id = json_string_value(v);
		else
			snprintf(at, fault_keys[k].size, "%s", json_string_value(v));
		break;
	case FT_LONG:
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			faults_bad("\"%s\" must be a non-negative integer", key);
		*(long *)at = (long)json_integer_value(v);
		break;
	case FT_BOOL:
		if (!json_is_boolean(v))
			faults_bad("\"%s\" must be a boolean", key);
		*(bool *)at = json_is_true(v);
		break;
	case FT_EXIT:
		if (!json_is_integer(v))
			faults_bad("\"%s\" must be an integer", key);
		f->exit_at_start_set = true;
		f->exit_at_start = (int)json_integer_value(v);
		break;
	}
}

static void __attribute__((noreturn))
faults_unknown(const char *key)
{
	char known[512] = "";
	size_t len = 0;

	for (size_t k = 0; k < sizeof(fault_keys) / sizeof(fault_keys[0]); k++)
		len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s",
		    k ? ", " : "", fault_keys[k].key);
	faults_bad("unknown key \"%s\" (known: %s)", key, known);
}

void
faults_read(void)
{
	struct faults *f = &fc.faults;
	const char *match_id = NULL, *key;
	json_error_t je;
	json_t *o, *v;
	size_t k;

	faults_defaults(f);
	faults_file = getenv("BANGER_FAKE_FC_FAULTS");
	if (faults_file == NULL || *faults_file == '\0' ||
	    access(faults_file, F_OK) != 0)
		return;
	o = json_load_file(faults_file, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o))
		faults_bad("not a JSON object: %s (line %d)",
		    o ? "not an object" : je.text, je.line);
	json_object_foreach(o, key, v) {
		for (k = 0; k < sizeof(fault_keys) / sizeof(fault_keys[0]); k++)
			if (strcmp(key, fault_keys[k].key) == 0)
				break;
		if (k == sizeof(fault_keys) / sizeof(fault_keys[0]))
			faults_unknown(key);
		faults_set(f, k, v, &match_id);
	}
	f->active = match_id == NULL || strstr(fc.id, match_id) != NULL;
	/* Faults for another VM: this one runs as if there were none. */
	if (!f->active)
		faults_defaults(f);
	json_decref(o);
}

bool
faults_fail_matches(const char *method, const char *url)
{
	char want[2048];
	size_t k;
	json_t *e;

	if (!fc.faults.active || fc.faults.fail == NULL)
		return false;
	snprintf(want, sizeof(want), "%s %s", method, url);
	json_array_foreach(fc.faults.fail, k, e)
		if (strcmp(json_string_value(e), want) == 0)
			return true;
	return false;
}
