/* model.c - names of the records' states (model.h). */
#include "common/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static const char *const vm_state_names[] = {
	"creating", "stopped", "starting", "running", "stopping", "error",
	"paused"
};
static const char *const image_source_names[] = { "bundle", "registered", "built" };
static const char *const op_state_names[] = {
	"pending", "running", "succeeded", "failed"
};

const char *vm_state_name(enum vm_state st) { return vm_state_names[st]; }
const char *snap_state_name(enum snap_state st) { return st == SNAP_READY ? "ready" : "creating"; }
const char *image_source_name(enum image_source src) { return image_source_names[src]; }
const char *op_state_name(enum op_state st) { return op_state_names[st]; }

int
vm_state_parse(const char *s, enum vm_state *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(vm_state_names); i++)
		if (strcmp(s, vm_state_names[i]) == 0) {
			*ret = (enum vm_state)i;
			return 0;
		}
	return -1;
}

void
op_row_clear(struct op_row *op)
{
	free(op->error_json);
	free(op->result_json);
	op->error_json = op->result_json = NULL;
}

int
op_state_parse(const char *s, enum op_state *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(op_state_names); i++)
		if (strcmp(s, op_state_names[i]) == 0) {
			*ret = (enum op_state)i;
			return 0;
		}
	return -1;
}

void
vm_limits_format(const struct vm_limits *l, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
#define LIM_ADD(...) do { if (off < len) off += (size_t)snprintf(buf + off, \
	len - off, __VA_ARGS__); } while (0)
	if (l->cpus > 0)
		LIM_ADD("%scpus=%.3f", off ? "," : "", l->cpus);
	if (l->memory_max_mib > 0)
		LIM_ADD("%smemory_max_mib=%d", off ? "," : "", l->memory_max_mib);
	if (l->disk_bytes_per_s > 0)
		LIM_ADD("%sdisk_bytes_per_s=%lld", off ? "," : "",
		    l->disk_bytes_per_s);
	if (l->disk_ops_per_s > 0)
		LIM_ADD("%sdisk_ops_per_s=%lld", off ? "," : "", l->disk_ops_per_s);
	if (l->net_bytes_per_s > 0)
		LIM_ADD("%snet_bytes_per_s=%lld", off ? "," : "",
		    l->net_bytes_per_s);
#undef LIM_ADD
}

void
vm_limits_parse(const char *s, struct vm_limits *ret)
{
	memset(ret, 0, sizeof(*ret));
	while (s != NULL && *s != '\0') {
		size_t n = strcspn(s, ",");
		const char *eq = memchr(s, '=', n);
		if (eq != NULL) {
			size_t kl = (size_t)(eq - s);
			const char *v = eq + 1;
			if (kl == 4 && strncmp(s, "cpus", 4) == 0)
				ret->cpus = strtod(v, NULL);
			else if (kl == 14 && strncmp(s, "memory_max_mib", 14) == 0)
				ret->memory_max_mib = (int)strtol(v, NULL, 10);
			else if (kl == 16 && strncmp(s, "disk_bytes_per_s", 16) == 0)
				ret->disk_bytes_per_s = strtoll(v, NULL, 10);
			else if (kl == 14 && strncmp(s, "disk_ops_per_s", 14) == 0)
				ret->disk_ops_per_s = strtoll(v, NULL, 10);
			else if (kl == 15 && strncmp(s, "net_bytes_per_s", 15) == 0)
				ret->net_bytes_per_s = strtoll(v, NULL, 10);
		}
		s += n + (s[n] == ',');
	}
}
