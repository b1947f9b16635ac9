/* connect.c - one stream to a guest port for an API client (POST
 * /v1/vms/{name}/connect): the agent's POST /forward, upgraded, relayed
 * in the caller's thread.  Listed with the forwards' relays (forward.c),
 * so that the VM's stop, or bangerd's, ends it. */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/relay.h"
#include "common/util.h"

/* The agent's refusal of a forward as our error. */
static int
forward_refusal(struct vsock_stream *vs, const char *name, int port,
    struct bn_err *err)
{
	char why[512];

	if (vs->status == 404) {
		bn_fail(err, BN_EUNSUPPORTED, 0, "vm '%s': its agent cannot "
		    "forward ports (an image from before port forwarding)", name);
		return bn_err_hint(err, "rebuild the image");
	}
	vsock_stream_why(vs, why, sizeof(why));
	bn_fail(err, vs->status == 502 ? BN_EGUEST_PORT : vs->status == 403 ?
	    BN_EFORBIDDEN : vs->status == 400 ? BN_EINVAL : BN_EVMM, 0,
	    "vm '%s': guest port %d: %s", name, port, why);
	if (vs->status == 502)
		bn_err_hint(err, "is a service listening on port %d in the "
		    "guest?", port);
	return -1;
}

int
core_vm_connect(struct core *c, const char *name, int port,
    struct guest_conn **ret, struct bn_err *err)
{
	struct vm vm;
	struct vmm_params p;
	struct guest_conn *g;
	char target[32];

	if (port < 1 || port > 65535) {
		bn_fail(err, BN_EINVAL, 0, "port must be a number from 1 to 65535");
		return bn_err_detail(err, "field", "port");
	}
	if (vm_get_running(c, name, &vm, err) < 0 ||
	    vm_ctl_params(c, &vm, &p, err) < 0)
		return -1;
	g = xcalloc(1, sizeof(*g));
	g->c = c;
	snprintf(g->vm, sizeof(g->vm), "%s", name);
	snprintf(target, sizeof(target), "/forward?port=%d", port);
	if (vsock_agent_upgrade(p.vsock_uds, agent_port(c), target, FWD_DIAL_MS,
	    &g->vs, err) < 0) {
		free(g);
		return -1;
	}
	if (g->vs.status != 101) {
		forward_refusal(&g->vs, name, port, err);
		core_guest_conn_close(g);
		return -1;
	}
	*ret = g;
	return 0;
}

int
core_guest_conn_relay(struct guest_conn *g, int client_fd, const void *pre,
    size_t npre)
{
	struct fwd_conn *fc = xcalloc(1, sizeof(*fc));
	struct core *c = g->c;

	/* Listed like a forward's relay: the VM's stop, or bangerd's, ends
	 * it. */
	snprintf(fc->vm, sizeof(fc->vm), "%s", g->vm);
	fc->host_fd = client_fd;
	fc->guest_fd = g->vs.fd;
	fwd_conn_list(c, fc);
	struct relay_end client = { client_fd, pre, npre, 0 };
	struct relay_end guest = { g->vs.fd, g->vs.pending, g->vs.npending, 0 };
	int rc = relay_run(&client, &guest);
	fwd_conn_unlist(c, fc);
	free(fc);
	return rc;
}

void
core_guest_conn_close(struct guest_conn *g)
{
	if (g == NULL)
		return;
	vsock_stream_close(&g->vs);
	free(g);
}

