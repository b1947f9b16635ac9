/* internal.h - state shared between the core/ source files only. */
#ifndef BANGER_CORE_INTERNAL_H
#define BANGER_CORE_INTERNAL_H

#include <pthread.h>

#include "core/core.h"
#include "vmm/vmm.h"

#define EVENT_RING 1024

struct vm_lock {
	char name[VM_NAME_MAX];
	pthread_mutex_t mu;
	int refs;
	struct vm_lock *next;
};

struct op {
	struct op_row row;
	long long started_ms;
	struct op *next;
};

struct event {
	uint64_t id;
	char type[32];
	char vm[VM_NAME_MAX];
	char *frame;          /* full SSE frame */
};

struct core {
	struct config cfg;
	struct bundle bundle;
	struct store *store;
	long long started_ms;

	pthread_mutex_t locks_mu;
	struct vm_lock *locks;

	/* Operations: all live ones and recent finished ones in memory. */
	pthread_mutex_t ops_mu;
	pthread_cond_t ops_cond;
	struct op *ops;
	int nops;
	int running_ops;

	pthread_mutex_t ev_mu;
	pthread_cond_t ev_cond;
	struct event ring[EVENT_RING];
	uint64_t ev_last;

	pthread_t monitor;
	_Atomic bool stopping;
	int64_t host_mem_mib;
};

/* Per-VM serialization: actions on one VM run one at a time. */
void vm_lock(struct core *c, const char *name);
void vm_unlock(struct core *c, const char *name);
bool vm_trylock(struct core *c, const char *name);

/* Operations: fn runs in its own thread; it returns a result (consumed)
 * or NULL with *err filled to fail the operation. */
typedef json_t *(*op_fn)(struct core *c, struct op *op, void *arg,
    struct bn_err *err);
int op_start(struct core *c, const char *kind, const char *target, op_fn fn,
    void *arg, void (*arg_free)(void *), char ret_id[24], struct bn_err *err);
void op_stage(struct core *c, struct op *op, const char *stage, int progress);

/* Lifecycle steps used by the operation bodies (VM lock held). */
int vm_params(struct core *c, const struct vm *vm, const struct vmm_driver **ret_drv,
    struct vmm_params *p, char *cmdline, size_t cmdsz, struct bn_err *err);
int vm_dir(struct core *c, const char *id, char *out, size_t outsz,
    struct bn_err *err);
void vm_set_state(struct core *c, struct vm *vm, enum vm_state st);
const struct vmm_driver *vmm_pick(struct core *c, char *binary, size_t binsz,
    struct bn_err *err);

/* Reconcile the store with running processes (daemon start). */
void core_reconcile(struct core *c);
void *core_monitor_main(void *arg);

#endif
