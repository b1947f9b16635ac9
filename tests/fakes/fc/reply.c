/* reply.c - how the double answers: Firecracker's fault body or success. */
#include "fake.h"

#include <stdarg.h>
#include <stdlib.h>

void
reply_fault(struct request *rq, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *o = json_pack("{s:s}", "fault_message", msg);
	free(rq->reply);
	rq->reply = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	rq->status = 400;
}

void
reply_json(struct request *rq, json_t *o)
{
	free(rq->reply);
	rq->reply = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
	rq->status = 200;
}

void
reply_ok(struct request *rq)
{
	free(rq->reply);
	rq->reply = NULL;
	rq->status = 204;
}

bool
preboot_or_reply(struct request *rq)
{
	if (fc.state == ST_NOT_STARTED)
		return true;
	reply_fault(rq, "%s", NOT_SUPPORTED_POST);
	return false;
}

bool
boot_resource_or_reply(struct request *rq)
{
	if (!preboot_or_reply(rq))
		return false;
	fc.boot_path = true;
	return true;
}

bool
postboot_or_reply(struct request *rq)
{
	if (fc.state != ST_NOT_STARTED)
		return true;
	reply_fault(rq, "%s", NOT_SUPPORTED_PRE);
	return false;
}
