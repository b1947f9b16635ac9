/* state.c - the one microVM this process plays, its vsock backend, and its
 * release. */
#include "fake.h"

#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

struct fake fc = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.log_fd = -1,
	.level = LV_INFO,
	.metrics_fd = -1,
	.console_fd = STDOUT_FILENO,
	.vsock_fd = -1,
	.agent_pid = -1,
	.cmd_pipe = { -1, -1 },
	.reqlog_fd = -1,
};

void
state_init(void)
{
	fc.drives = json_array();
	fc.nets = json_array();
	/* What GET /machine-config says before any PUT. */
	fc.machine = json_pack("{s:i,s:i,s:b,s:b,s:s}", "vcpu_count", 1,
	    "mem_size_mib", 128, "smt", 0, "track_dirty_pages", 0,
	    "huge_pages", "None");
}

void
state_free(void)
{
	json_t **all[] = { &fc.boot_source, &fc.guest_boot, &fc.drives, &fc.machine, &fc.nets,
	    &fc.vsock, &fc.logger_cfg, &fc.metrics_cfg, &fc.entropy, &fc.mmds,
	    &fc.mmds_cfg, &fc.serial_cfg, &fc.faults.fail };

	for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) {
		json_decref(*all[k]);
		*all[k] = NULL;
	}
}

/* The agent listens at <uds_path>.agent, or where that fits in sun_path. */
static void
agent_sock_for(const char *path)
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
state_set_vsock(int fd, const char *path, json_int_t cid)
{
	/* A replaced device: Firecracker leaves the old socket file behind. */
	if (fc.vsock_fd >= 0)
		close(fc.vsock_fd);
	fc.vsock_fd = fd;
	snprintf(fc.vsock_path, sizeof(fc.vsock_path), "%s", path);
	agent_sock_for(path);
	json_decref(fc.vsock);
	fc.vsock = json_pack("{s:I,s:s}", "guest_cid", cid, "uds_path", path);
}
