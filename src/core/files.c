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
	char name[VM_NAME_MAX];     /* for the errors */
	char path[PATH_MAX];
	bool broken;                /* put: the agent stopped reading */
};

/* The agent's refusal as our error: its status and its message. */
static int
agent_refusal(struct vsock_stream *vs, const char *name, const char *path,
    struct bn_err *err)
{
	char why[512];

	vsock_stream_why(vs, why, sizeof(why));
	enum bn_code code = vs->status == 404 ? BN_EGUEST_PATH :
	    vs->status == 403 ? BN_EFORBIDDEN : vs->status == 400 ? BN_EINVAL :
	    BN_EVMM;
	return bn_fail(err, code, 0, "vm '%s': %s: %s", name, path, why);
}

/* The VM running with an agent that copies files, and the agent's
 * target "/files?path=PATH" (malloc'd) in *ret_target. */
static int
files_start(struct core *c, const char *name, const char *path,
    struct vmm_params *p, char **ret_target, struct bn_err *err)
{
	struct vm vm;
	size_t len = 0;
	bool first = true;

	if (path == NULL || path[0] != '/') {
		bn_fail(err, BN_EPATH, 0, "path must be absolute in the guest");
		return bn_err_detail(err, "field", "path");
	}
	if (vm_get_running(c, name, &vm, err) < 0 ||
	    vm_ctl_params(c, &vm, p, err) < 0)
		return -1;
	if (!(agent_caps(c, p->vsock_uds, NULL) & VSOCK_CAP_FILES)) {
		bn_fail(err, BN_EUNSUPPORTED, 0, "vm '%s': its agent cannot copy "
		    "files (an image from before file copy, or no agent answered)",
		    name);
		return bn_err_hint(err, "rebuild the image, or use banger vm ssh");
	}
	FILE *f = open_memstream(ret_target, &len);
	if (f == NULL)
		return bn_fail(err, BN_ESYS, errno, "open_memstream");
	fputs("/files", f);
	agent_query_add(f, &first, "path", path);
	fclose(f);
	return 0;
}

/* The agent's stream for a get (its reply head read) or a put (its
 * head sent, the body to come). */
static int
files_open(struct core *c, const char *name, const char *path, bool put,
    struct file_stream **ret, struct bn_err *err)
{
	struct vmm_params p;
	char *target;
	int rc;

	if (files_start(c, name, path, &p, &target, err) < 0)
		return -1;
	struct file_stream *s = xcalloc(1, sizeof(*s));
	if (put)
		rc = vsock_agent_begin(p.vsock_uds, agent_port(c), "PUT", target,
		    5000, &s->vs, err);
	else
		rc = vsock_agent_open(p.vsock_uds, agent_port(c), "GET", target,
		    NULL, 0, 5000, &s->vs, err);
	free(target);
	if (rc < 0) {
		free(s);
		return -1;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->path, sizeof(s->path), "%s", path);
	*ret = s;
	return 0;
}

int
core_vm_files_get(struct core *c, const char *name, const char *path,
    struct file_stream **ret, struct bn_err *err)
{
	struct file_stream *s;

	if (files_open(c, name, path, false, &s, err) < 0)
		return -1;
	if (s->vs.status != 200) {
		agent_refusal(&s->vs, name, path, err);
		core_files_close(s);
		return -1;
	}
	log_info("vm '%s': copying %s out", name, path);
	*ret = s;
	return 0;
}

int
core_vm_files_put_begin(struct core *c, const char *name, const char *path,
    struct file_stream **ret, struct bn_err *err)
{
	if (files_open(c, name, path, true, ret, err) < 0)
		return -1;
	log_info("vm '%s': copying into %s", name, path);
	return 0;
}

void
core_files_put(struct file_stream *s, const void *data, size_t len)
{
	/* Once the agent stops reading (it refused an entry and answered),
	 * the rest is dropped; its answer says why. */
	if (!s->broken && vsock_stream_send(&s->vs, data, len, 30000) < 0)
		s->broken = true;
}

json_t *
core_files_put_end(struct file_stream *s, struct bn_err *err)
{
	char buf[4096];
	size_t len = 0;
	json_t *j = NULL;

	if (vsock_stream_finish(&s->vs, 30000, err) < 0)
		return NULL;
	if (s->vs.status != 200) {
		agent_refusal(&s->vs, s->name, s->path, err);
		return NULL;
	}
	while (len < sizeof(buf) - 1) {
		ssize_t n = vsock_stream_read(&s->vs, buf + len,
		    sizeof(buf) - 1 - len, time_mono_ms() + 5000, -1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if ((j = json_loads(buf, 0, NULL)) != NULL)
			break;
	}
	if (j == NULL)
		bn_fail(err, BN_EVMM, 0, "vm '%s': the agent's answer to the copy "
		    "is not JSON", s->name);
	return j;
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
