/* devices.c - the pre-boot devices with nothing to check: the serial
 * console's output and the entropy device. */
#include "fake.h"

void
serial_put(struct request *rq)
{
	if (!preboot_or_reply(rq))
		return;
	json_decref(fc.serial_cfg);
	fc.serial_cfg = json_incref(rq->body);
	reply_ok(rq);
}

void
entropy_put(struct request *rq)
{
	if (!boot_resource_or_reply(rq))
		return;
	json_decref(fc.entropy);
	fc.entropy = json_pack("{s:O?}", "rate_limiter",
	    json_object_get(rq->body, "rate_limiter"));
	reply_ok(rq);
}
