/* store.h - bangerd's SQLite state: VMs, images, operations.
 *
 * One connection guarded by a mutex; every change is one transaction.
 * The schema is migrated by PRAGMA user_version.  A generation counter
 * bumps on every VM change so readers can cache rendered lists.
 */
#ifndef BANGER_STORE_H
#define BANGER_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/model.h"

struct store;

int store_open(const char *path, struct store **ret, struct bn_err *err);
void store_close(struct store *s);
int store_schema_version(struct store *s);
/* Bumped after every committed VM or image change. */
uint64_t store_generation(struct store *s);


/* VMs.  Lookups by name; BN_EVM_NOTFOUND when missing. */
int store_vm_insert(struct store *s, const struct vm *vm, struct bn_err *err);
int store_vm_get(struct store *s, const char *name, struct vm *ret,
    struct bn_err *err);
int store_vm_update(struct store *s, const struct vm *vm, struct bn_err *err);
int store_vm_delete(struct store *s, const char *name, struct bn_err *err);
/* All VMs sorted by name into a malloc'd array. */
int store_vm_list(struct store *s, struct vm **ret, int *ret_n,
    struct bn_err *err);
int store_vm_count(struct store *s, int *ret, struct bn_err *err);
/* Smallest free vsock CID >= 3. */
int store_vm_free_cid(struct store *s, unsigned *ret, struct bn_err *err);
/* Number of VMs that use an image. */
/* Remember a stop of vm (its stop_* fields) against its image, keeping
 * the last STORE_STOPS_KEPT per image. */
#define STORE_STOPS_KEPT 20
int store_stop_record(struct store *s, const struct vm *vm, struct bn_err *err);
/* Per image, how many of its last `last` stops were forced. */
struct image_stops {
	char image[VM_NAME_MAX];
	int stops;          /* counted, at most `last` */
	int forced;
};
int store_stop_summary(struct store *s, int last, struct image_stops **ret,
    int *ret_n, struct bn_err *err);
int store_vm_count_image(struct store *s, const char *image, int *ret,
    struct bn_err *err);

/* Snapshots, by VM id and name; BN_ESNAP_NOTFOUND when missing,
 * BN_ESNAP_EXISTS when an insert finds the name taken. */
int store_snap_insert(struct store *s, const struct snapshot *sn,
    struct bn_err *err);
int store_snap_update(struct store *s, const struct snapshot *sn,
    struct bn_err *err);
int store_snap_get(struct store *s, const char *vm_id, const char *name,
    struct snapshot *ret, struct bn_err *err);
/* A VM's snapshots, oldest first, into a malloc'd array. */
int store_snap_list(struct store *s, const char *vm_id,
    struct snapshot **ret, int *ret_n, struct bn_err *err);
/* (A VM's delete removes its snapshots' rows too.) */
int store_snap_delete(struct store *s, const char *vm_id, const char *name,
    struct bn_err *err);

/* Warm snapshots, one per image at most; BN_ESNAP_NOTFOUND when the
 * image has none.  Put inserts or replaces. */
int store_warm_put(struct store *s, const struct warm *w, struct bn_err *err);
int store_warm_get(struct store *s, const char *image, struct warm *ret,
    struct bn_err *err);
int store_warm_list(struct store *s, struct warm **ret, int *ret_n,
    struct bn_err *err);
int store_warm_delete(struct store *s, const char *image, struct bn_err *err);

/* Images (registered and built; the bundle image is not stored). */
int store_image_upsert(struct store *s, const struct image *img,
    bool *ret_created, struct bn_err *err);
int store_image_get(struct store *s, const char *name, struct image *ret,
    struct bn_err *err);
int store_image_delete(struct store *s, const char *name, struct bn_err *err);
int store_image_list(struct store *s, struct image **ret, int *ret_n,
    struct bn_err *err);

/* Operations. */
int store_op_put(struct store *s, const struct op_row *op, struct bn_err *err);
int store_op_get(struct store *s, const char *id, struct op_row *ret,
    struct bn_err *err);
/* Newest first, at most limit rows. */
int store_op_list(struct store *s, int limit, struct op_row **ret, int *ret_n,
    struct bn_err *err);
/* Mark operations that were pending or running as failed (daemon restart). */
int store_op_fail_unfinished(struct store *s, const char *error_json,
    int *ret_n, struct bn_err *err);
/* Keep at most keep finished operations. */
int store_op_prune(struct store *s, int keep, struct bn_err *err);

/* Leases: one IPv4 address per VM in net/prefix (host byte order),
 * never the network, broadcast or gateway address.  Returns the VM's
 * existing lease or allocates the smallest free one. */
int store_lease_get(struct store *s, const char *vm_id, uint32_t net,
    int prefix, uint32_t gateway, char ret_ip[16], struct bn_err *err);
/* Drop leases whose VM no longer exists. */
int store_lease_prune(struct store *s, int *ret_n, struct bn_err *err);
/* 1 and the address when VM `name` has a lease, else 0 (thread-safe). */
int store_lease_lookup(struct store *s, const char *name, char ret_ip[16]);

#endif
