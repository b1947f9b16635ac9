/* vsock.c - PUT /vsock: the host side of the guest's vsock, a Unix socket
 * that speaks Firecracker's hybrid protocol (relay.c, from boot on). */
#include "fake.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Bind and listen at path, as Firecracker does at PUT time; -1 with errno. */
static int
vsock_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd, e;

	if ((fd = unix_socket(path, &sa)) < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 128) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* The agent listens at <uds_path>.agent, or where that fits in sun_path. */
static void
vsock_agent_path(const char *path)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(fc.agent_sock, sizeof(fc.agent_sock), "%s.agent", path);
	if (strlen(fc.agent_sock) < sizeof(((struct sockaddr_un *)0)->sun_path))
		return;
	snprintf(fc.agent_sock, sizeof(fc.agent_sock), "%s/bfa-%d.sock",
	    tmp && *tmp ? tmp : "/tmp", (int)getpid());
	fake_note("%s.agent is too long for a Unix socket; the guest agent "
	    "listens on %s", path, fc.agent_sock);
}

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
	if ((fd = vsock_listen(path)) < 0) {
		if (errno == ENAMETOOLONG)
			snprintf(e, sizeof(e), "path must be shorter than SUN_LEN");
		else
			io_err_str(e, sizeof(e), errno);
		reply_fault(rq, "Vsock config error: Cannot create backend for vsock "
		    "device: Error binding to the host-side Unix socket: %s", e);
		return;
	}
	/* A replaced device: Firecracker leaves the old socket file behind. */
	if (fc.vsock_fd >= 0)
		close(fc.vsock_fd);
	fc.vsock_fd = fd;
	snprintf(fc.vsock_path, sizeof(fc.vsock_path), "%s", path);
	vsock_agent_path(path);
	json_decref(fc.vsock);
	fc.vsock = json_pack("{s:I,s:s}", "guest_cid", (json_int_t)cid,
	    "uds_path", path);
	reply_ok(rq);
}
