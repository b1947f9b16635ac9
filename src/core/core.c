/* core.c - core lifetime: open (reconcile, background threads), quiesce, close. */
#include "core/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

static long long
read_mem_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	long long kib = 0;

	if (f == NULL)
		return 1048576;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %lld kB", &kib) == 1)
			break;
	fclose(f);
	return kib > 0 ? kib / 1024 : 1048576;
}

int
core_open(const struct config *cfg, const struct bundle *bundle,
    struct core **ret, struct bn_err *err)
{
	struct core *c = xcalloc(1, sizeof(*c));
	char path[PATH_MAX];

	c->cfg = *cfg;
	c->bundle = *bundle;
	c->started_ms = time_mono_ms();
	c->host_mem_mib = read_mem_mib();
	pthread_mutex_init(&c->locks_mu, NULL);
	pthread_mutex_init(&c->ops_mu, NULL);
	pthread_cond_init(&c->ops_cond, NULL);
	pthread_mutex_init(&c->ev_mu, NULL);
	pthread_cond_init(&c->ev_cond, NULL);
	metrics_init(c);
	pthread_mutex_init(&c->fwd_mu, NULL);
	pthread_cond_init(&c->fwd_cond, NULL);
	if (mkdir_p(cfg->state_dir, 0700, err) < 0 ||
	    path_join(path, sizeof(path), err, "%s/vms", cfg->state_dir) < 0 ||
	    mkdir_p(path, 0700, err) < 0 ||
	    path_join(path, sizeof(path), err, "%s/banger.db", cfg->state_dir) < 0 ||
	    store_open(path, &c->store, err) < 0) {
		free(c);
		return -1;
	}
	core_reconcile(c);
	core_net_start(c);
	warm_reconcile(c);
	spares_start(c);
	if (pthread_create(&c->monitor, NULL, core_monitor_main, c) != 0) {
		store_close(c->store);
		free(c);
		return bn_fail(err, BN_ESYS, errno, "start monitor thread");
	}
	*ret = c;
	return 0;
}

void
core_quiesce(struct core *c)
{
	pthread_mutex_lock(&c->ev_mu);
	c->stopping = true;
	pthread_cond_broadcast(&c->ev_cond);
	pthread_mutex_unlock(&c->ev_mu);
	pthread_mutex_lock(&c->ops_mu);
	pthread_cond_broadcast(&c->ops_cond);
	pthread_mutex_unlock(&c->ops_mu);
}

void
core_close(struct core *c)
{
	if (c == NULL)
		return;
	core_quiesce(c);
	pthread_join(c->monitor, NULL);
	fwd_shutdown(c);
	spares_stop(c);
	core_net_stop(c);
	/* Let operations reach their end; VMM processes are detached and keep
	 * running either way, and an interrupted operation is marked failed on
	 * the next start. */
	pthread_mutex_lock(&c->ops_mu);
	pthread_cond_broadcast(&c->ops_cond);
	long long deadline = time_mono_ms() + 5000;
	while (c->running_ops > 0 && time_mono_ms() < deadline) {
		cond_wait_ms(&c->ops_cond, &c->ops_mu, 100);
	}
	int still = c->running_ops;
	pthread_mutex_unlock(&c->ops_mu);
	if (still > 0) {
		/* Threads still hold the store: leave it open, exit reclaims. */
		log_warnx("%d operations still running at shutdown", still);
		return;
	}
	for (struct op *o = c->ops, *next; o; o = next) {
		next = o->next;
		op_row_clear(&o->row);
		free(o);
	}
	for (struct vm_lock *l = c->locks, *next; l; l = next) {
		next = l->next;
		pthread_mutex_destroy(&l->mu);
		free(l);
	}
	for (int i = 0; i < EVENT_RING; i++)
		free(c->ring[i].frame);
	store_close(c->store);
	metrics_free(c);
	free(c);
}

const struct config *core_config(struct core *c) { return &c->cfg; }
const struct bundle *core_bundle(struct core *c) { return &c->bundle; }
uint64_t core_generation(struct core *c) { return store_generation(c->store); }
long long core_uptime_s(struct core *c) { return (time_mono_ms() - c->started_ms) / 1000; }
