/* ports.c - forwarded ports: "ports" in a VM's spec as the API takes
 * it, and POST /v1/vms/{name}/connect?port=N, where the API connection
 * becomes a raw byte stream to TCP port N on the guest's loopback.
 *
 * The client asks with "Connection: Upgrade" and "Upgrade: tcp" (as
 * Docker's attach does); bangerd has the guest agent connect to the port
 * first, so a refusal is an ordinary JSON error, and answers 101 only
 * when the stream is there.  `banger vm port-forward` makes one of these
 * per accepted local connection.  Threads: MHD gives each connection its
 * own, and the relay runs in it (allowed in thread-per-connection mode). */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/json.h"
#include "common/log.h"
#include "common/portspec.h"
#include "common/util.h"
#include "common/wire.h"

/* "ports": [{"host": 8080, "guest": 80, "address": "127.0.0.1"}], into
 * ret (room for VM_PORTS_MAX); core checks them against each other and
 * other VMs.  *ret_n -1 when absent. */
int
ports_field(json_t *j, struct vm_port *ret, int *ret_n, struct bn_err *err)
{
	json_t *a = json_object_get(j, WIRE_PORTS), *o;
	size_t i;

	*ret_n = -1;
	if (a == NULL)
		return 0;
	if (json_array_size(a) > VM_PORTS_MAX) {
		bn_fail(err, BN_EINVAL, 0, "%zu forwarded ports; at most %d",
		    json_array_size(a), VM_PORTS_MAX);
		return bn_err_detail(err, "field", "ports");
	}
	json_array_foreach(a, i, o) {
		struct vm_port *p = &ret[i];
		long long host, guest;
		if (!json_is_object(o)) {
			bn_fail(err, BN_EFIELD, 0, "ports[%zu] must be an object "
			    "{\"host\", \"guest\", \"address\"}", i);
			return bn_err_detail(err, "field", "ports");
		}
		const char *k;
		json_t *v;
		json_object_foreach(o, k, v)
			if (strcmp(k, "host") != 0 && strcmp(k, "guest") != 0 &&
			    strcmp(k, "address") != 0) {
				bn_fail(err, BN_EUNKNOWN_FIELD, 0, "ports[%zu]: "
				    "unknown field '%s'", i, k);
				return bn_err_detail(err, "field", "ports");
			}
		if (json_get_int(o, "host", 1, 65535, -1, &host, err) < 0 ||
		    json_get_int(o, "guest", 1, 65535, -1, &guest, err) < 0)
			return bn_err_prefix(err, "ports[%zu]", i);
		if (host < 0 || guest < 0) {
			bn_fail(err, BN_EINVAL, 0, "ports[%zu] needs \"host\" and "
			    "\"guest\" (1 to 65535)", i);
			return bn_err_detail(err, "field", "ports");
		}
		json_t *addr = json_object_get(o, "address");
		const char *as = json_is_null(addr) || addr == NULL ?
		    PORT_DEFAULT_ADDR : json_string_value(addr);
		if (as == NULL || strlen(as) >= sizeof(p->addr) ||
		    !port_addr_ok(as)) {
			bn_fail(err, BN_EINVAL, 0, "ports[%zu]: address must be a "
			    "numeric IPv4 or IPv6 address", i);
			return bn_err_detail(err, "field", "ports");
		}
		snprintf(p->addr, sizeof(p->addr), "%s", as);
		p->host = (int)host;
		p->guest = (int)guest;
	}
	*ret_n = (int)json_array_size(a);
	return 0;
}

enum MHD_Result
h_vm_connect(struct api_req *r)
{
	struct bn_err err;
	struct guest_conn *g;
	long port;

	if (name_check("vm", r->param, &err) < 0)
		return api_reply_error(r->conn, &err);
	if (!upgrade_tcp(r)) {
		bn_fail(&err, BN_EINVAL, 0, "connect upgrades the connection: "
		    "send 'Connection: Upgrade' and 'Upgrade: tcp'");
		bn_err_hint(&err, "banger vm port-forward does this for you");
		return api_reply_error(r->conn, &err);
	}
	if (query(r, "port") == NULL) {
		bn_fail(&err, BN_EINVAL, 0, "connect needs ?port=N (the guest's "
		    "TCP port)");
		return api_reply_error(r->conn, &err);
	}
	if (query_int(r, "port", 1, 65535, 0, &port, &err) < 0 ||
	    core_vm_connect(r->core, r->param, (int)port, &g, &err) < 0)
		return api_reply_error(r->conn, &err);
	log_debug("vm '%s': connect to guest port %ld", r->param, port);
	return reply_tunnel(r, g);
}
