/* files.c - files out of a VM: the agent's GET /files?path=ABS answers
 * with a tar of ABS (a file, or a directory and all below it), which is
 * passed on as it comes.  The agent resolves the path inside the guest;
 * what the tar holds is the reader's to extract safely. */
#include "core/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

struct file_stream {
	struct vsock_stream vs;
};

/* The agent's refusal as our error: its status and its message. */
static int
agent_refusal(struct vsock_stream *vs, const char *name, const char *path,
    struct bn_err *err)
{
	char msg[512];
	ssize_t n = vsock_stream_read(vs, msg, sizeof(msg) - 1,
	    time_mono_ms() + 1000, -1);
	json_t *j;
	const char *why;

	msg[n > 0 ? n : 0] = '\0';
	j = json_loads(msg, 0, NULL);
	why = json_string_value(json_object_get(j, "error"));
	enum bn_code code = vs->status == 404 ? BN_EGUEST_PATH :
	    vs->status == 403 ? BN_EFORBIDDEN : vs->status == 400 ? BN_EINVAL :
	    BN_EVMM;
	bn_fail(err, code, 0, "vm '%s': %s: %s", name, path, why ? why : msg);
	json_decref(j);
	return -1;
}

int
core_vm_files_get(struct core *c, const char *name, const char *path,
    struct file_stream **ret, struct bn_err *err)
{
	struct vm vm;
	struct vmm_params p;
	struct vsock_health h;
	char *target = NULL;
	size_t len = 0;
	bool first = true;

	if (path == NULL || path[0] != '/') {
		bn_fail(err, BN_EPATH, 0, "path must be absolute in the guest");
		return bn_err_detail(err, "field", "path");
	}
	if (vm_get_running(c, name, &vm, err) < 0 ||
	    vm_ctl_params(c, &vm, &p, err) < 0)
		return -1;
	vsock_probe_health(p.vsock_uds, agent_port(c), 2000, &h);
	unsigned caps = h.agent_caps;
	vsock_health_clear(&h);
	if (!(caps & VSOCK_CAP_FILES)) {
		bn_fail(err, BN_EUNSUPPORTED, 0, "vm '%s': its agent cannot copy "
		    "files (an image from before file copy, or no agent answered)",
		    name);
		return bn_err_hint(err, "rebuild the image, or use banger vm ssh");
	}
	FILE *f = open_memstream(&target, &len);
	if (f == NULL)
		return bn_fail(err, BN_ESYS, errno, "open_memstream");
	fputs("/files", f);
	agent_query_add(f, &first, "path", path);
	fclose(f);
	struct file_stream *s = xcalloc(1, sizeof(*s));
	int rc = vsock_agent_open(p.vsock_uds, agent_port(c), "GET", target,
	    NULL, 0, 5000, &s->vs, err);
	free(target);
	if (rc < 0) {
		free(s);
		return -1;
	}
	if (s->vs.status != 200) {
		agent_refusal(&s->vs, name, path, err);
		core_files_close(s);
		return -1;
	}
	log_info("vm '%s': copying %s out", name, path);
	*ret = s;
	return 0;
}

ssize_t
core_files_read(struct file_stream *s, void *buf, size_t len, int watch_fd)
{
	ssize_t n = vsock_stream_read(&s->vs, buf, len, -1, watch_fd);

	return n == -3 ? -2 : n < 0 ? -1 : n;
}

void
core_files_close(struct file_stream *s)
{
	if (s == NULL)
		return;
	vsock_stream_close(&s->vs);
	free(s);
}
