/* metrics.c - GET /v1/metrics: bangerd in the Prometheus text format
 * (version 0.0.4).
 *
 * Counted as they happen: operations by kind and result with a histogram
 * of their durations, API requests by method and route (the route's
 * pattern, so names do not make new series) with a histogram of their
 * latencies.  Read at scrape time: VMs by state, each running VM's usage
 * (usage.c) and size, the host's disk (host.c).  Counters start at zero
 * when bangerd starts, as Prometheus expects of counters. */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"

#define OPS_KINDS_MAX 32
#define API_ROUTES_MAX 96

/* Bucket bounds in seconds. */
static const double op_bounds[] = { 0.1, 0.5, 1, 5, 10, 30, 60, 300 };
static const double api_bounds[] = { 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1,
	0.5, 1, 5 };
#define OP_NB (sizeof(op_bounds) / sizeof(op_bounds[0]))
#define API_NB (sizeof(api_bounds) / sizeof(api_bounds[0]))

struct hist {
	unsigned long long count;
	unsigned long long le[API_NB > OP_NB ? API_NB : OP_NB];
	double sum;
};

struct op_series {
	char kind[24];
	unsigned long long succeeded, failed;
	struct hist h;
};

struct api_series {
	char method[8];
	char route[64];
	struct hist h;
};

struct metrics {
	pthread_mutex_t mu;
	struct op_series ops[OPS_KINDS_MAX];
	int nops;
	struct api_series api[API_ROUTES_MAX];
	int napi;
};

void
metrics_init(struct core *c)
{
	c->metrics = xcalloc(1, sizeof(*c->metrics));
	pthread_mutex_init(&c->metrics->mu, NULL);
}

void
metrics_free(struct core *c)
{
	if (c->metrics == NULL)
		return;
	pthread_mutex_destroy(&c->metrics->mu);
	free(c->metrics);
	c->metrics = NULL;
}

static void
hist_add(struct hist *h, const double *bounds, size_t nb, double v)
{
	h->count++;
	h->sum += v;
	for (size_t i = 0; i < nb; i++)
		if (v <= bounds[i])
			h->le[i]++;
}

void
metrics_op_done(struct core *c, const char *kind, bool ok, long long ms)
{
	struct metrics *m = c->metrics;
	struct op_series *s = NULL;

	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < m->nops && s == NULL; i++)
		if (strcmp(m->ops[i].kind, kind) == 0)
			s = &m->ops[i];
	if (s == NULL && m->nops < OPS_KINDS_MAX) {
		s = &m->ops[m->nops++];
		snprintf(s->kind, sizeof(s->kind), "%s", kind);
	}
	if (s != NULL) {
		if (ok)
			s->succeeded++;
		else
			s->failed++;
		hist_add(&s->h, op_bounds, OP_NB, (double)ms / 1000);
	}
	pthread_mutex_unlock(&m->mu);
}

void
core_metrics_api(struct core *c, const char *method, const char *route,
    long long us)
{
	struct metrics *m = c->metrics;
	struct api_series *s = NULL;

	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < m->napi && s == NULL; i++)
		if (strcmp(m->api[i].route, route) == 0 &&
		    strcmp(m->api[i].method, method) == 0)
			s = &m->api[i];
	if (s == NULL && m->napi < API_ROUTES_MAX) {
		s = &m->api[m->napi++];
		snprintf(s->method, sizeof(s->method), "%s", method);
		snprintf(s->route, sizeof(s->route), "%s", route);
	}
	if (s != NULL)
		hist_add(&s->h, api_bounds, API_NB, (double)us / 1e6);
	pthread_mutex_unlock(&m->mu);
}

static void
head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's lines; labels are "k=\"v\",..." without braces. */
static void
hist_lines(FILE *f, const char *name, const char *labels,
    const struct hist *h, const double *bounds, size_t nb)
{
	for (size_t i = 0; i < nb; i++)
		fprintf(f, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
		    bounds[i], h->le[i]);
	fprintf(f, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, h->count);
	fprintf(f, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, h->sum,
	    name, labels, h->count);
}

static void
counted(FILE *f, struct metrics *m)
{
	char labels[160];

	pthread_mutex_lock(&m->mu);
	head(f, "banger_operations_total", "counter",
	    "Operations finished since bangerd started, by kind and result.");
	for (int i = 0; i < m->nops; i++)
		fprintf(f, "banger_operations_total{kind=\"%s\",result=\"succeeded\"} "
		    "%llu\nbanger_operations_total{kind=\"%s\",result=\"failed\"} "
		    "%llu\n", m->ops[i].kind, m->ops[i].succeeded, m->ops[i].kind,
		    m->ops[i].failed);
	head(f, "banger_operation_duration_seconds", "histogram",
	    "How long operations took, by kind.");
	for (int i = 0; i < m->nops; i++) {
		snprintf(labels, sizeof(labels), "kind=\"%s\"", m->ops[i].kind);
		hist_lines(f, "banger_operation_duration_seconds", labels,
		    &m->ops[i].h, op_bounds, OP_NB);
	}
	head(f, "banger_api_request_duration_seconds", "histogram",
	    "API requests by method and route pattern, from the first byte "
	    "to the end of the reply (streams: their whole life).");
	for (int i = 0; i < m->napi; i++) {
		snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\"",
		    m->api[i].method, m->api[i].route);
		hist_lines(f, "banger_api_request_duration_seconds", labels,
		    &m->api[i].h, api_bounds, API_NB);
	}
	pthread_mutex_unlock(&m->mu);
}

static void
vms_now(FILE *f, struct core *c)
{
	struct vm *vms = NULL;
	int n = 0, by_state[VM_PAUSED + 1] = { 0 };
	struct bn_err err;

	if (store_vm_list(c->store, &vms, &n, &err) < 0) {
		log_warnx("metrics: %s", err.msg);
		return;
	}
	for (int i = 0; i < n; i++)
		by_state[vms[i].state]++;
	head(f, "banger_vms", "gauge", "VMs by state.");
	for (int s = 0; s <= VM_PAUSED; s++)
		fprintf(f, "banger_vms{state=\"%s\"} %d\n",
		    vm_state_name((enum vm_state)s), by_state[s]);
	static const struct {
		const char *name, *type, *help;
	} per_vm[] = {
		{ "banger_vm_vcpus", "gauge", "A running VM's vCPUs." },
		{ "banger_vm_memory_limit_bytes", "gauge",
		  "A running VM's guest memory." },
		{ "banger_vm_cpu_seconds_total", "counter",
		  "CPU time of a VM's processes (VMM and helpers)." },
		{ "banger_vm_memory_bytes", "gauge",
		  "Resident memory of a VM's processes." },
		{ "banger_vm_disk_read_bytes_total", "counter",
		  "Storage reads a VM's processes caused." },
		{ "banger_vm_disk_written_bytes_total", "counter",
		  "Storage writes a VM's processes caused." },
		{ "banger_vm_network_to_guest_bytes_total", "counter",
		  "Bytes the host sent the guest on its TAP." },
		{ "banger_vm_network_from_guest_bytes_total", "counter",
		  "Bytes the guest sent on its TAP." },
	};
	struct vm_usage *u = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*u));
	struct proc_table *procs = proc_table_read();
	for (int i = 0; i < n; i++)
		vm_usage_read(c, &vms[i], procs, &u[i]);
	proc_table_free(procs);
	for (size_t k = 0; k < sizeof(per_vm) / sizeof(per_vm[0]); k++) {
		head(f, per_vm[k].name, per_vm[k].type, per_vm[k].help);
		for (int i = 0; i < n; i++) {
			if (!u[i].running)
				continue;
			double v[] = { vms[i].vcpus, (double)vms[i].memory_mib * 1048576,
				u[i].cpu_seconds, (double)u[i].memory_bytes,
				(double)u[i].disk_read_bytes,
				(double)u[i].disk_write_bytes,
				(double)u[i].net_to_guest_bytes,
				(double)u[i].net_from_guest_bytes };
			fprintf(f, "%s{vm=\"%s\"} %.*f\n", per_vm[k].name,
			    vms[i].name, k == 2 ? 3 : 0, v[k]);
		}
	}
	free(u);
	free(vms);
}

char *
core_metrics_text(struct core *c, size_t *ret_len)
{
	char *buf = NULL;
	struct host_capacity hc;
	struct bn_err err;
	FILE *f = open_memstream(&buf, ret_len);

	if (f == NULL)
		return NULL;
	head(f, "banger_build_info", "gauge", "bangerd's version.");
	fprintf(f, "banger_build_info{version=\"%s\"} 1\n", BANGER_VERSION);
	head(f, "banger_uptime_seconds", "gauge", "Seconds since bangerd started.");
	fprintf(f, "banger_uptime_seconds %lld\n", core_uptime_s(c));
	vms_now(f, c);
	if (core_host_capacity(c, &hc, NULL, &err) == 0) {
		head(f, "banger_host_disk_free_bytes", "gauge",
		    "Free space where VM disks live.");
		fprintf(f, "banger_host_disk_free_bytes %lld\n", hc.free);
		head(f, "banger_host_disk_committed_bytes", "gauge",
		    "What VMs' sparse disks may still claim.");
		fprintf(f, "banger_host_disk_committed_bytes %lld\n", hc.committed);
	}
	counted(f, c->metrics);
	fclose(f);
	return buf;
}
