/* vsock.c - PUT /vsock: the host side of the guest's vsock, a Unix socket
 * that speaks Firecracker's hybrid protocol (relay.c, from boot on),
 * bound at PUT time as Firecracker does. */
#include "fake.h"

#include <errno.h>
#include <inttypes.h>

void
vsock_put(struct request *rq)
{
	const struct fc_field *cid_range = schema_field("Vsock", "guest_cid");
	json_int_t cid = json_integer_value(json_object_get(rq->body, "guest_cid"));
	const char *path = jstr(rq->body, "uds_path");
	char e[128];
	int fd;

	if (json_object_get(rq->body, "vsock_id") != NULL) {
		rq->deprecation = true;
		LOG_WARN("PUT /vsock: vsock_id field is deprecated.");
	}
	if (!boot_resource_or_reply(rq))
		return;
	if (cid < cid_range->min) {
		reply_fault(rq, "Vsock config error: Cannot create vsock device: "
		    "Invalid guest CID %" JSON_INTEGER_FORMAT " (must be >= %"
		    PRId64 ")", cid, cid_range->min);
		return;
	}
	if ((fd = unix_listen(path)) < 0) {
		if (errno == ENAMETOOLONG)
			snprintf(e, sizeof(e), "path must be shorter than SUN_LEN");
		else
			io_err_str(e, sizeof(e), errno);
		reply_fault(rq, "Vsock config error: Cannot create backend for vsock "
		    "device: Error binding to the host-side Unix socket: %s", e);
		return;
	}
	state_set_vsock(fd, path, cid);
	reply_ok(rq);
}
