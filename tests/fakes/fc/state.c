/* state.c - the one microVM this process plays, and its release. */
#include "fake.h"

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
	json_t **all[] = { &fc.boot_source, &fc.drives, &fc.machine, &fc.nets,
	    &fc.vsock, &fc.logger_cfg, &fc.metrics_cfg, &fc.entropy, &fc.mmds,
	    &fc.mmds_cfg, &fc.serial_cfg, &fc.faults.fail };

	for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) {
		json_decref(*all[k]);
		*all[k] = NULL;
	}
}
