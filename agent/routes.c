/* routes.c - every route the agent serves, and the capability each one
 * belongs to (listed in /healthz, so bangerd knows what an agent can do).
 * HEAD is implied by GET.  A new capability gets its own file (health.c,
 * power.c, exec.c, files.c, forward.c) and its rows here; one that is an
 * option of a route goes in agent_option_caps. */
#include "agent.h"

const struct agent_route agent_routes[] = {
	{ "GET", "/healthz", "health", health_route, 0, 0 },
	{ "POST", "/poweroff", "power", power_route, 0, 0 },
	{ "POST", "/clock", "clock", clock_route, 0, 0 },
	{ "POST", "/identity", "identity", identity_route, 0, 0 },
	{ "POST", "/exec", "exec", exec_route, 0, 0 },
	{ "GET", "/files", "files", files_get_route, 0, 0 },
	{ "PUT", "/files", "files", files_put_route, 0, 1 },
	{ "POST", "/forward", "forward", forward_route, 0, 0 },
	{ "POST", "/echo", "echo", echo_route, 1, 0 },
	{ "POST", "/sink", "echo", sink_route, 1, 1 },
};

const size_t agent_nroutes = sizeof(agent_routes) / sizeof(agent_routes[0]);

const char *const agent_option_caps[] = { "exec_tty" };

const size_t agent_noption_caps = sizeof(agent_option_caps) /
    sizeof(agent_option_caps[0]);
