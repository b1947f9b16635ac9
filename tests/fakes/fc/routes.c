/* routes.c - the route table: which handler answers a call, and the checks
 * Firecracker makes before any handler runs (body or none, the id in the
 * path, the body against the route's schema). */
#include "fake.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define ANY NULL		/* any second segment, or none */
#define NONE ""			/* no second segment */

struct route {
	const char *method;
	const char *first;	/* the first path segment */
	const char *second;	/* ANY, NONE or that segment */
	const char *spec;	/* the spec path whose body schema applies */
	handler_fn fn;		/* NULL: real Firecracker, not served here */
	bool bodiless;		/* a PATCH without a body is no fault */
	const struct keyed *keyed; /* instead of fn: keyed_put or keyed_patch */
};

/* A route served by fn; one served by keyed_put or keyed_patch; one that
 * Firecracker has and the double does not serve. */
#define SERVED(m, first, second, spec, fn) \
	{ m, first, second, spec, fn, false, NULL }
#define KEYED(m, first, spec, k) { m, first, ANY, spec, NULL, false, k }
#define UNSERVED(m, first, second) { m, first, second, NULL, NULL, false, NULL }

/* Matched like Firecracker's router: by the first two segments only. */
static const struct route routes[] = {
	SERVED("GET", "", ANY, NULL, machine_get_instance),
	SERVED("GET", "version", ANY, NULL, machine_get_version),
	SERVED("GET", "vm", "config", NULL, machine_get_vm_config),
	SERVED("GET", "machine-config", ANY, NULL, machine_get_config),
	SERVED("GET", "mmds", ANY, NULL, mmds_get),
	UNSERVED("GET", "balloon", ANY),
	UNSERVED("GET", "hotplug", "memory"),

	SERVED("PUT", "actions", ANY, "/actions", machine_put_actions),
	SERVED("PUT", "boot-source", ANY, "/boot-source", machine_put_boot_source),
	KEYED("PUT", "drives", "/drives/{drive_id}", &drives_keyed),
	SERVED("PUT", "logger", ANY, "/logger", logger_put),
	SERVED("PUT", "serial", ANY, "/serial", serial_put),
	SERVED("PUT", "machine-config", ANY, "/machine-config", machine_put_config),
	SERVED("PUT", "metrics", ANY, "/metrics", metrics_put),
	SERVED("PUT", "mmds", "config", "/mmds/config", mmds_put_config),
	SERVED("PUT", "mmds", NONE, "/mmds", mmds_put),
	KEYED("PUT", "network-interfaces", "/network-interfaces/{iface_id}",
	    &net_keyed),
	SERVED("PUT", "vsock", ANY, "/vsock", vsock_put),
	SERVED("PUT", "entropy", ANY, "/entropy", entropy_put),
	UNSERVED("PUT", "balloon", ANY),
	UNSERVED("PUT", "cpu-config", ANY),
	UNSERVED("PUT", "pmem", ANY),
	SERVED("PUT", "snapshot", "create", "/snapshot/create", snapshot_create),
	SERVED("PUT", "snapshot", "load", "/snapshot/load", snapshot_load),
	SERVED("PUT", "snapshot", ANY, NULL, snapshot_other),
	UNSERVED("PUT", "hotplug", "memory"),

	/* The balloon's hinting commands come without a body. */
	{ "PATCH", "balloon", ANY, NULL, NULL, true, NULL },
	KEYED("PATCH", "drives", "/drives/{drive_id}", &drives_keyed),
	SERVED("PATCH", "machine-config", ANY, "/machine-config",
	    machine_patch_config),
	SERVED("PATCH", "mmds", ANY, "/mmds", mmds_patch),
	KEYED("PATCH", "network-interfaces", "/network-interfaces/{iface_id}",
	    &net_keyed),
	SERVED("PATCH", "vm", ANY, "/vm", machine_patch_vm),
	UNSERVED("PATCH", "hotplug", "memory"),
};

static const struct route *
route_find(const char *method, const char *first, const char *second)
{
	for (size_t k = 0; k < sizeof(routes) / sizeof(routes[0]); k++) {
		const struct route *r = &routes[k];
		if (strcmp(r->method, method) != 0 || strcmp(r->first, first) != 0)
			continue;
		if (r->second == ANY)
			return r;
		if (*r->second == '\0' ? second == NULL :
		    second != NULL && strcmp(r->second, second) == 0)
			return r;
	}
	return NULL;
}

/* Firecracker's checked_id(): non-empty, alphanumeric or '_'. */
static bool
id_ok_or_reply(struct request *rq)
{
	if (rq->id == NULL || *rq->id == '\0') {
		reply_fault(rq, "The ID cannot be empty.");
		return false;
	}
	for (const char *q = rq->id; *q; q++)
		if (!isalnum((unsigned char)*q) && *q != '_') {
			reply_fault(rq, "API Resource IDs can only contain "
			    "alphanumeric characters and underscores.");
			return false;
		}
	return true;
}

static void
serve(const struct route *r, struct request *rq, const char *body, size_t len)
{
	const struct fc_body *b = r->spec ? schema_body(rq->method, r->spec) : NULL;
	char fault[1500];

	if (r->spec != NULL && b == NULL) {
		fprintf(stderr, "fake-firecracker: fc_schema.c has no %s %s\n",
		    rq->method, r->spec);
		abort();
	}
	rq->spec = b;
	if (b != NULL && b->id_field != NULL && !id_ok_or_reply(rq))
		return;
	if (b != NULL && (rq->body = validate_body(b, body, len, fault,
	    sizeof(fault))) == NULL) {
		reply_fault(rq, "%s", fault);
		return;
	}
	if (b != NULL && b->id_field != NULL && (jstr(rq->body, b->id_field) ==
	    NULL || strcmp(rq->id, jstr(rq->body, b->id_field)) != 0))
		reply_fault(rq, "The id from the path does not match the id from "
		    "the body!");
	else if (r->keyed != NULL && strcmp(rq->method, "PUT") == 0)
		keyed_put(r->keyed, rq);
	else if (r->keyed != NULL)
		keyed_patch(r->keyed, rq);
	else
		r->fn(rq);
	json_decref(rq->body);
	rq->body = NULL;
}

void
routes_dispatch(struct request *rq, const char *body, size_t len)
{
	const struct route *r;
	char path[2048], *first, *second, *slash;

	if (faults_fail_matches(rq->method, rq->url)) {
		reply_fault(rq, "%s", fc.faults.fail_message);
		return;
	}
	/* Like Firecracker: leading '/' trimmed, split_terminator('/'). */
	snprintf(path, sizeof(path), "%s", rq->url + strspn(rq->url, "/"));
	first = path;
	second = NULL;
	if ((slash = strchr(path, '/')) != NULL) {
		*slash = '\0';
		second = slash + 1;
		if ((slash = strchr(second, '/')) != NULL)
			*slash = '\0';
		else if (*second == '\0')
			second = NULL;
	}
	rq->id = second;
	r = route_find(rq->method, first, second);
	if (strcmp(rq->method, "GET") == 0 && len > 0)
		reply_fault(rq, "GET request cannot have a body.");
	else if (len == 0 && (strcmp(rq->method, "PUT") == 0 ||
	    strcmp(rq->method, "PATCH") == 0) && !(r != NULL && r->bodiless))
		reply_fault(rq, "Empty %s request.", rq->method);
	else if (r == NULL)
		reply_fault(rq, "Invalid request method and/or path: %s %s.",
		    rq->method, first);
	else if (r->fn == NULL && r->keyed == NULL)
		reply_fault(rq, "%s %s is a real Firecracker endpoint but is not "
		    "implemented by the banger Firecracker test double.",
		    rq->method, rq->url);
	else
		serve(r, rq, body, len);
}
