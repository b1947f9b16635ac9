/* cmd_vm_forward.c - banger vm port-forward NAME [ADDR:]HOST:GUEST...
 *
 * Listens here, as the user, for as long as the command runs.  Each
 * accepted connection gets a thread that asks bangerd for a stream to
 * the guest port (POST /v1/vms/NAME/connect?port=N with "Upgrade: tcp",
 * api_upgrade) and relays bytes both ways.  A connection bangerd refuses
 * (nothing listens in the guest, the VM stopped) is reset, and the
 * reason printed.  Ctrl-C ends it. */
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/portspec.h"
#include "common/relay.h"

struct fwd_ctx {
	struct cli *cli;
	const char *vm;
	char *path;                   /* /v1/vms/NAME/connect?port=N */
	int guest;
};

struct fwd_conn {
	const struct fwd_ctx *ctx;
	int fd;
};

static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;

static void *
conn_main(void *arg)
{
	struct fwd_conn *fc = arg;
	const struct fwd_ctx *ctx = fc->ctx;
	struct api_upgrade u;
	bool relayed = false;

	if (api_upgrade(ctx->cli, ctx->path, NULL, &u) < 0) {
		pthread_mutex_lock(&print_mu);
		fprintf(stderr, "banger: cannot reach bangerd at %s\n",
		    ctx->cli->socket_path);
		pthread_mutex_unlock(&print_mu);
	} else if (u.status != 101) {
		/* bangerd's refusal, printed like any API error. */
		pthread_mutex_lock(&print_mu);
		if (u.error != NULL)
			api_report_error(u.error, u.status);
		else
			fprintf(stderr, "banger: bangerd answered HTTP %d\n",
			    u.status);
		pthread_mutex_unlock(&print_mu);
	} else {
		struct relay_end local = { fc->fd, NULL, 0, 0 };
		struct relay_end remote = { u.fd, u.pre, u.npre, 0 };
		relay_run(&local, &remote);
		relayed = true;
	}
	if (!relayed) {
		/* A reset tells the local client it did not get through. */
		struct linger lg = { 1, 0 };
		setsockopt(fc->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fc->fd);
	api_upgrade_close(&u);
	free(fc);
	return NULL;
}

static void
on_sigint(int sig)
{
	(void)sig;
	cli_interrupted = 1;
}

int
cmd_vm_port_forward(struct cli *cli, const struct args *a)
{
	const struct command *cmd = a->cmd;
	const char *name = a->v[0];
	struct vm_port ports[FLAG_LIST_MAX];
	/* Static: relay threads read it until the process exits. */
	static struct fwd_ctx ctx[FLAG_LIST_MAX];
	struct pollfd pfd[FLAG_LIST_MAX];
	struct reply r = { 0 };
	int n = a->n - 1, rc;
	char buf[128], cname[128];

	out_clean(name, cname, sizeof(cname));
	if (n < 1)
		return usage_error(cmd, "give at least one [ADDR:]HOST_PORT:"
		    "GUEST_PORT");
	if (n > FLAG_LIST_MAX)
		return usage_error(cmd, "at most %d ports at once", FLAG_LIST_MAX);
	for (int i = 0; i < n; i++) {
		const char *why;
		if (port_parse(a->v[i + 1], strlen(a->v[i + 1]), &ports[i],
		    &why) < 0)
			return usage_error(cmd, "%s: %s", out_clean(a->v[i + 1],
			    buf, sizeof(buf)), why);
	}
	/* The VM must exist and run; bangerd says so in its own words. */
	char *path = api_path("/v1/vms/", name, NULL);
	rc = api_call(cli, "GET", path, NULL, &r);
	free(path);
	if (rc != CLI_EXIT_OK) {
		reply_free(&r);
		return rc;
	}
	const char *state = jstr(jobj(r.json, WIRE_STATUS), WIRE_STATE);
	if (state == NULL || strcmp(state, "running") != 0) {
		fprintf(stderr, "banger: vm '%s' is %s, not running\n", cname,
		    state ? out_clean(state, buf, sizeof(buf)) : "unknown");
		fprintf(stderr, "hint: banger vm start %s\n", cname);
		reply_free(&r);
		return CLI_EXIT_CONFLICT;
	}
	reply_free(&r);
	for (int i = 0; i < n; i++) {
		if ((pfd[i].fd = port_listen(&ports[i], 64)) < 0) {
			int e = errno;
			fprintf(stderr, "banger: cannot listen on %s:%d: %s\n",
			    ports[i].addr, ports[i].host, strerror(e));
			for (int k = 0; k < i; k++)
				close(pfd[k].fd);
			return e == EADDRINUSE ? CLI_EXIT_CONFLICT : CLI_EXIT_ERROR;
		}
		pfd[i].events = POLLIN;
		ctx[i] = (struct fwd_ctx){ cli, name, NULL, ports[i].guest };
		char *base = api_path("/v1/vms/", name, "/connect");
		ctx[i].path = xasprintf("%s?port=%d", base, ports[i].guest);
		free(base);
		if (cli_chatty(cli))
			printf("forwarding %s:%d -> %s:%d\n", ports[i].addr,
			    ports[i].host, cname, ports[i].guest);
	}
	if (cli_chatty(cli)) {
		printf("Ctrl-C to stop\n");
		fflush(stdout);
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while (!cli_interrupted) {
		if (poll(pfd, (nfds_t)n, 200) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			int fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			struct fwd_conn *fc = xmalloc(sizeof(*fc));
			fc->ctx = &ctx[i];
			fc->fd = fd;
			pthread_t th;
			if (pthread_create(&th, &attr, conn_main, fc) != 0) {
				close(fd);
				free(fc);
			}
		}
	}
	pthread_attr_destroy(&attr);
	/* Open relays end with the process. */
	for (int i = 0; i < n; i++)
		close(pfd[i].fd);
	return CLI_EXIT_OK;
}
