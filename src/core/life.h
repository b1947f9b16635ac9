/* life.h - private to the lifecycle files: the state one operation's
 * steps share, the step type, and the steps more than one table uses.
 *
 * lifecycle.c holds the tables and the runner and calls down into
 * life_boot.c (booting and stopping a VM) and life_snap.c (snapshots and
 * restores); those never call back up. */
#ifndef BANGER_CORE_LIFE_H
#define BANGER_CORE_LIFE_H

#include "core/internal.h"
#include "core/snap.h"

struct life {
	struct core *c;
	struct op *op;
	struct life_req *req;
	struct vm vm;
	/* made by the steps */
	char dir[PATH_MAX];
	struct vm_net net;
	struct vmm_params p;
	char cmdline[2048];
	pid_t pid;
	enum vm_state booting;      /* VM_CREATING or VM_STARTING */
	bool halting;               /* the stop steps have a VM to stop */
	bool asked;                 /* the agent took the power-off request */
	long long halt_t0;
	int grace_s;
	json_t *result;             /* NULL: the VM's JSON */
	/* snapshot and restore */
	char snapdir[PATH_MAX];
	struct snapshot sn;
	struct snap_facts facts;    /* snapshot: what its manifest records;
				     * restore: what the manifest said */
	bool snap_paused;           /* the snapshot paused a running VM */
	bool disks_swapped;         /* restore: the VM's disks are at .prev */
};

struct step {
	const char *name;           /* unique in its table: failpoints, docs */
	const char *stage;          /* the operation's stage, or NULL */
	int progress;
	/* What this step's undo takes back was made when the request was
	 * accepted (a create's row): undone on any failure, even one before
	 * the step runs; run only checks it. */
	bool made_at_request;
	bool (*when)(const struct life *l);
	/* 0: done, go on; 1: done, and the operation is complete; -1: failed
	 * (err filled, own half-made work removed). */
	int (*run)(struct life *l, struct bn_err *err);
	/* Take back what run made; why is the failure being rolled back. */
	void (*undo)(struct life *l, const struct bn_err *why);
};

/* ---- life_boot.c: the boot steps (BOOT_STEPS) and the stop steps
 * (HALT_STEPS) ---- */
int boot_begin_run(struct life *l, struct bn_err *err);
void boot_failed(struct life *l, const struct bn_err *why);
int network_run(struct life *l, struct bn_err *err);
void network_undo(struct life *l, const struct bn_err *why);
int spawn_run(struct life *l, struct bn_err *err);
int cgroup_run(struct life *l, struct bn_err *err);
void spawn_undo(struct life *l, const struct bn_err *why);
int configure_run(struct life *l, struct bn_err *err);
int instance_start_run(struct life *l, struct bn_err *err);
int wait_health_run(struct life *l, struct bn_err *err);
int running_run(struct life *l, struct bn_err *err);
void running_undo(struct life *l, const struct bn_err *why);
bool has_nat(const struct life *l);
int nat_run(struct life *l, struct bn_err *err);
bool has_ports(const struct life *l);
int ports_run(struct life *l, struct bn_err *err);
void ports_undo(struct life *l, const struct bn_err *why);
bool is_up(const struct life *l);
bool halting(const struct life *l);
int halt_begin_run(struct life *l, struct bn_err *err);
void halt_undo(struct life *l, const struct bn_err *why);
bool may_ask_guest(const struct life *l);
int guest_poweroff_run(struct life *l, struct bn_err *err);
int vmm_stop_run(struct life *l, struct bn_err *err);
int halt_end_run(struct life *l, struct bn_err *err);

/* ---- life_snap.c: the snapshot and restore steps ---- */
int snap_check_run(struct life *l, struct bn_err *err);
int snap_record_run(struct life *l, struct bn_err *err);
void snap_record_undo(struct life *l, const struct bn_err *why);
bool snap_vm_running(const struct life *l);
int snap_pause_run(struct life *l, struct bn_err *err);
void snap_pause_undo(struct life *l, const struct bn_err *why);
int snap_save_run(struct life *l, struct bn_err *err);
int snap_copy_run(struct life *l, struct bn_err *err);
int snap_manifest_run(struct life *l, struct bn_err *err);
bool snap_paused_here(const struct life *l);
int snap_resume_run(struct life *l, struct bn_err *err);
int restore_check_run(struct life *l, struct bn_err *err);
int discard_run(struct life *l, struct bn_err *err);
int restore_disks_run(struct life *l, struct bn_err *err);
void restore_disks_undo(struct life *l, const struct bn_err *why);
int load_run(struct life *l, struct bn_err *err);
int clock_run(struct life *l, struct bn_err *err);
int keep_disks_run(struct life *l, struct bn_err *err);
int clone_check_run(struct life *l, struct bn_err *err);
int clone_disks_run(struct life *l, struct bn_err *err);
void clone_disks_undo(struct life *l, const struct bn_err *why);
int reidentify_run(struct life *l, struct bn_err *err);

#endif
