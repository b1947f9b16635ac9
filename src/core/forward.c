/* forward.c - the host ports of running VMs (spec "ports").
 *
 * While a VM runs, bangerd listens on each of its forwarded host ports.
 * Every accepted connection gets a thread that asks the VM's agent over
 * vsock to connect to the guest port (POST /forward, upgraded to a raw
 * stream) and then relays bytes both ways.  So a guest service bound to
 * its own loopback is reachable, with NAT off, on both VMMs.
 *
 * One accept thread per listener; shutdown(2) of the listening socket
 * wakes it.  Relays are listed so that a VM's stop (or bangerd's) can end
 * them.  A listener reads its VM's guest port and vsock socket under
 * fwd_mu, as a live PATCH may change the guest port. */
#include "core/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/relay.h"
#include "common/util.h"

#define FWD_BACKLOG 64

struct fwd_listener {
	struct core *c;
	char vm[VM_NAME_MAX];
	char uds[108];
	struct vm_port port;
	int fd;
	pthread_t thread;
	struct fwd_listener *next;
};

struct fwd_job {
	struct core *c;
	struct fwd_conn *conn;
	char uds[108];
	int guest_port;
};

/* ---- listening ---- */

static int
fwd_bind(const struct vm_port *p, int *ret_fd, struct bn_err *err)
{
	int fd = port_listen(p, FWD_BACKLOG);

	if (fd < 0) {
		int e = errno;
		char spec[96];
		port_format(p, spec, sizeof(spec));
		if (e == EADDRINUSE) {
			bn_fail(err, BN_EPORT_TAKEN, 0, "host port %s:%d is in use on "
			    "this host", p->addr, p->host);
			bn_err_detail(err, "port", spec);
			return bn_err_hint(err, "pick another host port");
		}
		if (e == EADDRNOTAVAIL)
			return bn_fail(err, BN_EINVAL, 0, "host address %s is not an "
			    "address of this host", p->addr);
		return bn_fail(err, BN_ESYS, e, "listen on %s:%d", p->addr, p->host);
	}
	*ret_fd = fd;
	return 0;
}

void
fwd_conn_list(struct core *c, struct fwd_conn *fc)
{
	pthread_mutex_lock(&c->fwd_mu);
	fc->next = c->fwd_conns;
	c->fwd_conns = fc;
	c->nfwd_conns++;
	pthread_mutex_unlock(&c->fwd_mu);
}

void
fwd_conn_unlist(struct core *c, struct fwd_conn *fc)
{
	pthread_mutex_lock(&c->fwd_mu);
	for (struct fwd_conn **pp = &c->fwd_conns; *pp; pp = &(*pp)->next)
		if (*pp == fc) {
			*pp = fc->next;
			break;
		}
	c->nfwd_conns--;
	pthread_cond_broadcast(&c->fwd_cond);
	pthread_mutex_unlock(&c->fwd_mu);
}

/* End a connection that will not be relayed with a reset, so that the
 * client sees a failure rather than an empty reply. */
static void
close_reset(int fd)
{
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void *
conn_main(void *arg)
{
	struct fwd_job *j = arg;
	struct fwd_conn *fc = j->conn;
	struct vsock_stream vs;
	struct bn_err err;
	char target[32];
	bool relayed = false;

	snprintf(target, sizeof(target), "/forward?port=%d", j->guest_port);
	if (vsock_agent_upgrade(j->uds, agent_port(j->c), target, FWD_DIAL_MS,
	    &vs, &err) < 0) {
		log_info("vm '%s': forward to guest port %d: %s", fc->vm,
		    j->guest_port, err.msg);
		vs.fd = -1;
	} else if (vs.status != 101) {
		log_info("vm '%s': forward to guest port %d: the agent answered "
		    "%d", fc->vm, j->guest_port, vs.status);
	} else {
		pthread_mutex_lock(&j->c->fwd_mu);
		fc->guest_fd = vs.fd;
		pthread_mutex_unlock(&j->c->fwd_mu);
		struct relay_end host = { fc->host_fd, NULL, 0, 0 };
		struct relay_end guest = { vs.fd, vs.pending, vs.npending, 0 };
		relay_run(&host, &guest);
		log_debug("vm '%s': forward to guest port %d ended: %llu bytes "
		    "in, %llu out", fc->vm, j->guest_port, host.sent, guest.sent);
		relayed = true;
	}
	/* Unlisted before the descriptors close: conns_end must never shut
	 * down a number that has been reused. */
	fwd_conn_unlist(j->c, fc);
	if (vs.fd >= 0)
		vsock_stream_close(&vs);
	if (relayed)
		close(fc->host_fd);
	else
		close_reset(fc->host_fd);
	free(fc);
	free(j);
	return NULL;
}

static void
conn_start(struct fwd_listener *l, int fd)
{
	struct core *c = l->c;
	struct fwd_job *j = xcalloc(1, sizeof(*j));
	struct fwd_conn *fc = xcalloc(1, sizeof(*fc));
	pthread_attr_t attr;
	pthread_t th;

	fc->host_fd = fd;
	fc->guest_fd = -1;
	snprintf(fc->vm, sizeof(fc->vm), "%s", l->vm);
	j->c = c;
	j->conn = fc;
	pthread_mutex_lock(&c->fwd_mu);
	memcpy(j->uds, l->uds, sizeof(j->uds));
	j->guest_port = l->port.guest;
	pthread_mutex_unlock(&c->fwd_mu);
	fwd_conn_list(c, fc);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&th, &attr, conn_main, j) != 0) {
		log_warnx("vm '%s': forward: cannot start a thread", l->vm);
		fwd_conn_unlist(c, fc);
		close_reset(fd);
		free(fc);
		free(j);
	}
	pthread_attr_destroy(&attr);
}

static void *
accept_main(void *arg)
{
	struct fwd_listener *l = arg;

	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_start(l, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Out of descriptors: the backlog waits a moment. */
			sleep_ms(100);
			continue;
		}
		break;  /* EINVAL: fwd_stop shut the socket down */
	}
	return NULL;
}

/* ---- a VM's set of listeners ---- */

static struct fwd_listener *
fwd_find(struct core *c, const char *vm, const struct vm_port *p)
{
	for (struct fwd_listener *l = c->fwds; l; l = l->next)
		if (strcmp(l->vm, vm) == 0 && l->port.host == p->host &&
		    strcmp(l->port.addr, p->addr) == 0)
			return l;
	return NULL;
}

/* Stop a listener that is no longer listed. */
static void
fwd_stop(struct fwd_listener *l)
{
	shutdown(l->fd, SHUT_RDWR);
	pthread_join(l->thread, NULL);
	close(l->fd);
	free(l);
}

/* End the relays of vm (all of them with vm NULL); their threads finish
 * on their own. */
static void
conns_end(struct core *c, const char *vm)
{
	pthread_mutex_lock(&c->fwd_mu);
	for (struct fwd_conn *fc = c->fwd_conns; fc; fc = fc->next) {
		if (vm != NULL && strcmp(fc->vm, vm) != 0)
			continue;
		shutdown(fc->host_fd, SHUT_RDWR);
		if (fc->guest_fd >= 0)
			shutdown(fc->guest_fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&c->fwd_mu);
}

int
fwd_apply(struct core *c, const struct vm *vm, struct bn_err *err)
{
	struct fwd_listener *fresh = NULL, *gone = NULL;
	struct vmm_params p;

	if (vm_ctl_params(c, vm, &p, err) < 0)
		return -1;
	/* Bind what is new first: a port in use changes nothing. */
	pthread_mutex_lock(&c->fwd_mu);
	for (int i = 0; i < vm->nports; i++) {
		if (fwd_find(c, vm->name, &vm->ports[i]) != NULL)
			continue;
		struct fwd_listener *l = xcalloc(1, sizeof(*l));
		l->c = c;
		l->port = vm->ports[i];
		snprintf(l->vm, sizeof(l->vm), "%s", vm->name);
		if (fwd_bind(&l->port, &l->fd, err) < 0) {
			free(l);
			pthread_mutex_unlock(&c->fwd_mu);
			while (fresh != NULL) {
				struct fwd_listener *next = fresh->next;
				close(fresh->fd);
				free(fresh);
				fresh = next;
			}
			return -1;
		}
		l->next = fresh;
		fresh = l;
	}
	/* Then the listed set becomes vm's ports. */
	for (struct fwd_listener **pp = &c->fwds; *pp;) {
		struct fwd_listener *l = *pp;
		int keep = -1;
		for (int i = 0; strcmp(l->vm, vm->name) == 0 && i < vm->nports; i++)
			if (l->port.host == vm->ports[i].host &&
			    strcmp(l->port.addr, vm->ports[i].addr) == 0)
				keep = i;
		if (strcmp(l->vm, vm->name) != 0 || keep >= 0) {
			if (keep >= 0) {
				l->port.guest = vm->ports[keep].guest;
				memcpy(l->uds, p.vsock_uds, sizeof(l->uds));
			}
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		l->next = gone;
		gone = l;
	}
	while (fresh != NULL) {
		struct fwd_listener *l = fresh;
		fresh = l->next;
		memcpy(l->uds, p.vsock_uds, sizeof(l->uds));
		if (pthread_create(&l->thread, NULL, accept_main, l) != 0) {
			log_warnx("vm '%s': forward %s:%d: cannot start a thread",
			    vm->name, l->port.addr, l->port.host);
			close(l->fd);
			free(l);
			continue;
		}
		l->next = c->fwds;
		c->fwds = l;
		log_info("vm '%s': forwarding %s:%d to guest port %d", vm->name,
		    l->port.addr, l->port.host, l->port.guest);
	}
	pthread_mutex_unlock(&c->fwd_mu);
	while (gone != NULL) {
		struct fwd_listener *l = gone;
		gone = l->next;
		log_info("vm '%s': no longer forwarding %s:%d", vm->name,
		    l->port.addr, l->port.host);
		fwd_stop(l);
	}
	return 0;
}

void
fwd_close(struct core *c, const char *vm)
{
	struct fwd_listener *gone = NULL;

	pthread_mutex_lock(&c->fwd_mu);
	for (struct fwd_listener **pp = &c->fwds; *pp;) {
		struct fwd_listener *l = *pp;
		if (vm != NULL && strcmp(l->vm, vm) != 0) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		l->next = gone;
		gone = l;
	}
	pthread_mutex_unlock(&c->fwd_mu);
	while (gone != NULL) {
		struct fwd_listener *l = gone;
		gone = l->next;
		fwd_stop(l);
	}
	conns_end(c, vm);
}

void
fwd_shutdown(struct core *c)
{
	fwd_close(c, NULL);
	pthread_mutex_lock(&c->fwd_mu);
	/* A relay still dialling its agent ends by its own deadline. */
	long long deadline = time_mono_ms() + FWD_DIAL_MS + 1000;
	while (c->nfwd_conns > 0 && time_mono_ms() < deadline)
		cond_wait_ms(&c->fwd_cond, &c->fwd_mu, 100);
	pthread_mutex_unlock(&c->fwd_mu);
}

/* ---- the spec ---- */

int
vm_ports_check(struct core *c, const char *name, const struct vm_port *ports,
    int n, struct bn_err *err)
{
	struct vm *vms = NULL;
	int nvms = 0;
	char spec[96];

	if (n > VM_PORTS_MAX) {
		bn_fail(err, BN_EINVAL, 0, "%d forwarded ports; at most %d", n,
		    VM_PORTS_MAX);
		return bn_err_detail(err, "field", "ports");
	}
	for (int i = 0; i < n; i++) {
		const struct vm_port *p = &ports[i];
		port_format(p, spec, sizeof(spec));
		if (!port_addr_ok(p->addr) || p->host < 1 || p->host > 65535 ||
		    p->guest < 1 || p->guest > 65535) {
			bn_fail(err, BN_EINVAL, 0, "bad forwarded port %s", spec);
			return bn_err_detail(err, "field", "ports");
		}
		for (int k = 0; k < i; k++)
			if (port_clash(p, &ports[k])) {
				bn_fail(err, BN_EINVAL, 0, "host port %s:%d is given "
				    "twice", p->addr, p->host);
				return bn_err_detail(err, "field", "ports");
			}
	}
	if (n == 0)
		return 0;
	/* Another VM's forward, running or not, keeps its host port. */
	if (store_vm_list(c->store, &vms, &nvms, err) < 0)
		return -1;
	for (int v = 0; v < nvms; v++) {
		if (strcmp(vms[v].name, name) == 0)
			continue;
		for (int i = 0; i < n; i++)
			for (int k = 0; k < vms[v].nports; k++) {
				if (!port_clash(&ports[i], &vms[v].ports[k]))
					continue;
				bn_fail(err, BN_EPORT_TAKEN, 0, "host port %s:%d is "
				    "forwarded to vm '%s'", ports[i].addr,
				    ports[i].host, vms[v].name);
				bn_err_detail(err, "vm", vms[v].name);
				bn_err_hint(err, "pick another host port, or drop it "
				    "from that vm (banger vm set %s --no-ports)",
				    vms[v].name);
				free(vms);
				return -1;
			}
	}
	free(vms);
	return 0;
}

void
core_forwards_stop(struct core *c)
{
	fwd_shutdown(c);
}
