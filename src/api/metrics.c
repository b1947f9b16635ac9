/* metrics.c - what bangerd and its VMs use: GET /v1/metrics (Prometheus
 * text) and GET /v1/vms/{name}/usage. */
#include "api/api.h"

#include "common/util.h"

enum MHD_Result
h_metrics(struct api_req *r)
{
	size_t len = 0;
	char *text = core_metrics_text(r->core, &len);

	if (text == NULL)
		return MHD_NO;
	return api_reply_text(r->conn, 200, text, len,
	    "text/plain; version=0.0.4; charset=utf-8");
}

enum MHD_Result
h_vm_usage(struct api_req *r)
{
	struct bn_err err;
	json_t *j;

	if (name_check("vm", r->param, &err) < 0 ||
	    (j = core_vm_usage_json(r->core, r->param, &err)) == NULL)
		return api_reply_error(r->conn, &err);
	return api_reply_json(r->conn, 200, j);
}
