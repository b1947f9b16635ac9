/* logger.c - PUT /logger and PUT /metrics: where Firecracker writes. */
#include "fake.h"

#include <errno.h>
#include <unistd.h>

void
logger_put(struct request *rq)
{
	const char *path = jstr(rq->body, "log_path");
	const char *level = jstr(rq->body, "level");
	const char *module = jstr(rq->body, "module");
	enum log_level l = LV_INFO;
	char e[128];
	int fd;

	if (!preboot_or_reply(rq))
		return;
	if (fc.logger_configured) {
		reply_fault(rq, "Logger error: The logger can only be configured "
		    "once.");
		return;
	}
	if (path != NULL) {
		if ((fd = open_append(path)) < 0) {
			io_err_str(e, sizeof(e), errno);
			reply_fault(rq, "Logger error: Failed to open target file: %s",
			    e);
			return;
		}
		if (fc.log_fd >= 0)
			close(fc.log_fd);
		fc.log_fd = fd;
	}
	if (level != NULL)
		log_parse_level(level, &l);
	fc.level = l;
	fc.show_level = jbool(rq->body, "show_level", fc.show_level);
	fc.show_origin = jbool(rq->body, "show_log_origin", fc.show_origin);
	if (module != NULL)
		snprintf(fc.module, sizeof(fc.module), "%s", module);
	fc.logger_configured = true;
	json_decref(fc.logger_cfg);
	fc.logger_cfg = json_incref(rq->body);
	reply_ok(rq);
}

void
metrics_put(struct request *rq)
{
	char e[128];
	int fd;

	if (!preboot_or_reply(rq))
		return;
	if (fc.metrics_fd >= 0) {
		reply_fault(rq, "Metrics error: Reinitialization of metrics not "
		    "allowed.");
		return;
	}
	if ((fd = open_append(jstr(rq->body, "metrics_path"))) < 0) {
		io_err_str(e, sizeof(e), errno);
		reply_fault(rq, "Metrics error: Cannot initialize the metrics system "
		    "due to bad user input: %s", e);
		return;
	}
	fc.metrics_fd = fd;
	json_decref(fc.metrics_cfg);
	fc.metrics_cfg = json_incref(rq->body);
	reply_ok(rq);
}
