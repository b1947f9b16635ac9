/* model.c - names of the records' states (model.h). */
#include "common/model.h"

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
