/* Store: schema migration, VM/image/operation rows, constraints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"
#include "store/store_int.h"
#include "tap.h"

static struct vm
mkvm(const char *name, unsigned cid)
{
	struct vm vm;

	memset(&vm, 0, sizeof(vm));
	snprintf(vm.id, sizeof(vm.id), "%016x", cid);
	snprintf(vm.name, sizeof(vm.name), "%s", name);
	snprintf(vm.image, sizeof(vm.image), "default");
	vm.vcpus = 2;
	vm.memory_mib = 512;
	vm.disk_gib = 8;
	vm.cid = cid;
	vm.state = VM_STOPPED;
	time_rfc3339(vm.created_at);
	time_rfc3339(vm.updated_at);
	return vm;
}

static int
test_migrate_and_vms(void)
{
	struct store *s;
	struct bn_err err;
	struct vm vm = mkvm("web", 3), got, *all;
	int n;
	unsigned cid;

	fail_unless(store_open(":memory:", &s, &err) == 0, "%s", err.msg);
	fail_unless(store_schema_version(s) == (int)store_nmigrations &&
	    store_nmigrations == 10, "version %d", store_schema_version(s));
	uint64_t g0 = store_generation(s);
	fail_unless(store_vm_insert(s, &vm, &err) == 0, "%s", err.msg);
	fail_unless(store_generation(s) > g0, "generation bumps");
	fail_unless(store_vm_insert(s, &vm, &err) < 0 && err.code == BN_EVM_EXISTS,
	    "duplicate refused: %d", err.code);
	fail_unless(store_vm_get(s, "web", &got, &err) == 0, "%s", err.msg);
	fail_unless(got.cid == 3 && got.vcpus == 2 && got.state == VM_STOPPED, "row");
	got.state = VM_RUNNING;
	got.pid = 4242;
	snprintf(got.accel, sizeof(got.accel), "tcg");
	snprintf(got.accel_reason, sizeof(got.accel_reason), "TCG (slower): no KVM");
	fail_unless(store_vm_update(s, &got, &err) == 0, "%s", err.msg);
	fail_unless(store_vm_get(s, "web", &got, &err) == 0 && got.pid == 4242 &&
	    got.state == VM_RUNNING, "update persisted");
	fail_unless(strcmp(got.accel, "tcg") == 0 &&
	    strcmp(got.accel_reason, "TCG (slower): no KVM") == 0, "accel persisted");
	fail_unless(got.stop_result[0] == '\0' && got.stop_ms == 0, "no stop yet");
	snprintf(got.stop_result, sizeof(got.stop_result), "forced");
	snprintf(got.stop_method, sizeof(got.stop_method), "kill");
	got.stop_ms = 10042;
	fail_unless(store_vm_update(s, &got, &err) == 0, "%s", err.msg);
	fail_unless(store_vm_get(s, "web", &got, &err) == 0 &&
	    strcmp(got.stop_result, "forced") == 0 &&
	    strcmp(got.stop_method, "kill") == 0 && got.stop_ms == 10042,
	    "last stop persisted");
	/* Forwarded ports, IPv6 ones too, come back as they went in. */
	fail_unless(got.nports == 0, "no ports yet");
	got.nports = 2;
	got.ports[0] = (struct vm_port){ "127.0.0.1", 8080, 80 };
	got.ports[1] = (struct vm_port){ "::1", 2222, 22 };
	fail_unless(store_vm_update(s, &got, &err) == 0, "%s", err.msg);
	fail_unless(store_vm_get(s, "web", &got, &err) == 0 && got.nports == 2 &&
	    strcmp(got.ports[0].addr, "127.0.0.1") == 0 &&
	    got.ports[0].host == 8080 && got.ports[0].guest == 80 &&
	    strcmp(got.ports[1].addr, "::1") == 0 &&
	    got.ports[1].host == 2222 && got.ports[1].guest == 22,
	    "ports persisted (%d)", got.nports);
	/* Shared folders too, a host path with a comma and a quote in it. */
	fail_unless(got.nmounts == 0, "no mounts yet");
	got.nmounts = 2;
	snprintf(got.mounts[0].host, sizeof(got.mounts[0].host), "/srv/a,\"b");
	snprintf(got.mounts[0].guest, sizeof(got.mounts[0].guest), "/mnt/a");
	got.mounts[0].readonly = true;
	snprintf(got.mounts[1].host, sizeof(got.mounts[1].host), "/home/u/p");
	snprintf(got.mounts[1].guest, sizeof(got.mounts[1].guest), "/root/p");
	fail_unless(store_vm_update(s, &got, &err) == 0, "%s", err.msg);
	memset(&got, 0, sizeof(got));
	fail_unless(store_vm_get(s, "web", &got, &err) == 0 && got.nmounts == 2 &&
	    strcmp(got.mounts[0].host, "/srv/a,\"b") == 0 &&
	    strcmp(got.mounts[0].guest, "/mnt/a") == 0 && got.mounts[0].readonly &&
	    strcmp(got.mounts[1].host, "/home/u/p") == 0 &&
	    strcmp(got.mounts[1].guest, "/root/p") == 0 && !got.mounts[1].readonly,
	    "mounts persisted (%d)", got.nmounts);
	fail_unless(store_vm_free_cid(s, &cid, &err) == 0 && cid == 4, "cid %u", cid);
	struct vm b = mkvm("api", 5);
	fail_unless(store_vm_insert(s, &b, &err) == 0, "%s", err.msg);
	fail_unless(store_vm_free_cid(s, &cid, &err) == 0 && cid == 4, "gap %u", cid);
	fail_unless(store_vm_list(s, &all, &n, &err) == 0 && n == 2, "list");
	fail_unless(strcmp(all[0].name, "api") == 0, "sorted by name");
	free(all);
	fail_unless(store_vm_delete(s, "web", &err) == 0, "%s", err.msg);
	fail_unless(store_vm_get(s, "web", &got, &err) < 0 &&
	    err.code == BN_EVM_NOTFOUND, "gone");
	fail_unless(store_vm_delete(s, "web", &err) < 0 &&
	    err.code == BN_EVM_NOTFOUND, "second delete");
	store_close(s);
	return 0;
}

static int
test_images(void)
{
	struct store *s;
	struct bn_err err;
	struct image img, got;
	bool created;
	int users;

	fail_unless(store_open(":memory:", &s, &err) == 0, "%s", err.msg);
	memset(&img, 0, sizeof(img));
	snprintf(img.name, sizeof(img.name), "local");
	snprintf(img.rootfs, sizeof(img.rootfs), "/a/rootfs.ext4");
	img.source = IMAGE_REGISTERED;
	snprintf(img.created_at, sizeof(img.created_at), "2026-01-01T00:00:00Z");
	snprintf(img.updated_at, sizeof(img.updated_at), "2026-01-01T00:00:00Z");
	fail_unless(store_image_upsert(s, &img, &created, &err) == 0 && created, "new");
	snprintf(img.rootfs, sizeof(img.rootfs), "/b/rootfs.ext4");
	snprintf(img.created_at, sizeof(img.created_at), "2027-01-01T00:00:00Z");
	fail_unless(store_image_upsert(s, &img, &created, &err) == 0 && !created, "upd");
	fail_unless(store_image_get(s, "local", &got, &err) == 0, "%s", err.msg);
	fail_unless(strcmp(got.rootfs, "/b/rootfs.ext4") == 0, "path updated");
	fail_unless(strcmp(got.created_at, "2026-01-01T00:00:00Z") == 0,
	    "created_at kept: %s", got.created_at);
	struct vm vm = mkvm("user", 3);
	snprintf(vm.image, sizeof(vm.image), "local");
	store_vm_insert(s, &vm, &err);
	fail_unless(store_vm_count_image(s, "local", &users, &err) == 0 && users == 1,
	    "users %d", users);
	fail_unless(store_image_delete(s, "nope", &err) < 0 &&
	    err.code == BN_EIMG_NOTFOUND, "missing image");
	store_close(s);
	return 0;
}

static int
test_operations(void)
{
	struct store *s;
	struct bn_err err;
	struct op_row op, got, *list;
	int n, failed;

	fail_unless(store_open(":memory:", &s, &err) == 0, "%s", err.msg);
	memset(&op, 0, sizeof(op));
	snprintf(op.id, sizeof(op.id), "op-1");
	snprintf(op.kind, sizeof(op.kind), "vm.create");
	snprintf(op.target, sizeof(op.target), "web");
	op.state = OP_RUNNING;
	snprintf(op.stage, sizeof(op.stage), "boot");
	time_rfc3339(op.created_at);
	time_rfc3339(op.updated_at);
	fail_unless(store_op_put(s, &op, &err) == 0, "%s", err.msg);
	op.progress = 50;
	snprintf(op.note, sizeof(op.note), "booted cold");
	fail_unless(store_op_put(s, &op, &err) == 0, "%s", err.msg);
	fail_unless(store_op_get(s, "op-1", &got, &err) == 0 && got.progress == 50,
	    "upsert");
	fail_unless(strcmp(got.note, "booted cold") == 0, "note: %s", got.note);
	op_row_clear(&got);
	fail_unless(store_op_fail_unfinished(s, "{\"code\":\"internal\"}", &failed,
	    &err) == 0 && failed == 1, "interrupted ops failed: %d", failed);
	fail_unless(store_op_get(s, "op-1", &got, &err) == 0 && got.state == OP_FAILED
	    && got.error_json && strstr(got.error_json, "internal"), "failed state");
	op_row_clear(&got);
	fail_unless(store_op_list(s, 10, &list, &n, &err) == 0 && n == 1, "list");
	op_row_clear(&list[0]);
	free(list);
	fail_unless(store_op_get(s, "op-2", &got, &err) < 0 &&
	    err.code == BN_EOP_NOTFOUND, "not found");
	store_close(s);
	return 0;
}

static int
test_reopen_file(void)
{
	char path[] = "/tmp/banger-test-store-XXXXXX";
	int fd = mkstemp(path);
	struct store *s;
	struct bn_err err;
	struct vm vm = mkvm("persist", 7), got;

	fail_unless(fd >= 0, "mkstemp");
	close(fd);
	fail_unless(store_open(path, &s, &err) == 0, "%s", err.msg);
	fail_unless(store_vm_insert(s, &vm, &err) == 0, "%s", err.msg);
	store_close(s);
	fail_unless(store_open(path, &s, &err) == 0, "%s", err.msg);
	fail_unless(store_vm_get(s, "persist", &got, &err) == 0 && got.cid == 7,
	    "survives reopen");
	store_close(s);
	unlink(path);
	char wal[64];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	return 0;
}

static int
test_leases(void)
{
	struct store *s;
	struct bn_err err;
	char ip[16], lookup[16];
	/* 10.9.0.0/29: hosts .1-.6, gateway .1: room for five VMs. */
	uint32_t net = 0x0a090000, gw = 0x0a090001;
	struct vm a = mkvm("a", 3), b = mkvm("b", 4), got;

	fail_unless(store_open(":memory:", &s, &err) == 0, "%s", err.msg);
	store_vm_insert(s, &a, &err);
	store_vm_insert(s, &b, &err);
	fail_unless(store_lease_get(s, a.id, net, 29, gw, ip, &err) == 0, "%s", err.msg);
	fail_unless(strcmp(ip, "10.9.0.2") == 0, "first lease skips gateway: %s", ip);
	fail_unless(store_lease_get(s, a.id, net, 29, gw, ip, &err) == 0 &&
	    strcmp(ip, "10.9.0.2") == 0, "stable: %s", ip);
	fail_unless(store_lease_get(s, b.id, net, 29, gw, ip, &err) == 0 &&
	    strcmp(ip, "10.9.0.3") == 0, "second: %s", ip);
	fail_unless(store_vm_get(s, "b", &got, &err) == 0 &&
	    strcmp(got.ip, "10.9.0.3") == 0, "vm row shows its lease: %s", got.ip);
	fail_unless(store_lease_lookup(s, "a", lookup) == 1 &&
	    strcmp(lookup, "10.9.0.2") == 0, "lookup by name");
	fail_unless(store_lease_lookup(s, "zzz", lookup) == 0, "no lease");
	fail_unless(store_vm_delete(s, "a", &err) == 0, "%s", err.msg);
	fail_unless(store_lease_lookup(s, "a", lookup) == 0, "released with the vm");
	for (unsigned i = 0; i < 4; i++) {
		char name[8];
		snprintf(name, sizeof(name), "c%u", i);
		struct vm c = mkvm(name, 10 + i);
		store_vm_insert(s, &c, &err);
		fail_unless(store_lease_get(s, c.id, net, 29, gw, ip, &err) == 0,
		    "c%u: %s", i, err.msg);
		if (i == 0)
			fail_unless(strcmp(ip, "10.9.0.2") == 0, "freed address reused");
	}
	struct vm d = mkvm("d", 20);
	store_vm_insert(s, &d, &err);
	fail_unless(store_lease_get(s, d.id, net, 29, gw, ip, &err) < 0 &&
	    err.code == BN_ELIMIT, "subnet full");
	int pruned = -1;
	fail_unless(store_lease_prune(s, &pruned, &err) == 0 && pruned == 0, "prune");
	store_close(s);
	return 0;
}

/* The stop history per image: the last N stops, how many forced, and
 * never more than STORE_STOPS_KEPT rows per image. */
static int
test_stops(void)
{
	struct store *s;
	struct bn_err err;
	struct image_stops *rows;
	int n;
	struct vm a = mkvm("a", 3), b = mkvm("b", 4);

	snprintf(b.image, sizeof(b.image), "void");
	fail_unless(store_open(":memory:", &s, &err) == 0, "%s", err.msg);
	fail_unless(store_stop_summary(s, 3, &rows, &n, &err) == 0 && n == 0,
	    "empty: %d", n);
	free(rows);
	/* image default: clean, clean, then three forced; void: one forced. */
	const char *seq[] = { "clean", "clean", "forced", "forced", "forced" };
	for (size_t i = 0; i < 5; i++) {
		snprintf(a.stop_result, sizeof(a.stop_result), "%s", seq[i]);
		snprintf(a.stop_method, sizeof(a.stop_method), "agent");
		fail_unless(store_stop_record(s, &a, &err) == 0, "%s", err.msg);
	}
	snprintf(b.stop_result, sizeof(b.stop_result), "forced");
	fail_unless(store_stop_record(s, &b, &err) == 0, "%s", err.msg);
	fail_unless(store_stop_summary(s, 3, &rows, &n, &err) == 0 && n == 2,
	    "two images: %d", n);
	fail_unless(strcmp(rows[0].image, "default") == 0 && rows[0].stops == 3 &&
	    rows[0].forced == 3, "default: %d/%d", rows[0].forced, rows[0].stops);
	fail_unless(strcmp(rows[1].image, "void") == 0 && rows[1].stops == 1 &&
	    rows[1].forced == 1, "void");
	free(rows);
	fail_unless(store_stop_summary(s, 5, &rows, &n, &err) == 0 &&
	    rows[0].stops == 5 && rows[0].forced == 3, "last 5 of default");
	free(rows);
	/* A clean stop ends the streak. */
	snprintf(a.stop_result, sizeof(a.stop_result), "clean");
	fail_unless(store_stop_record(s, &a, &err) == 0, "%s", err.msg);
	fail_unless(store_stop_summary(s, 3, &rows, &n, &err) == 0 &&
	    rows[0].forced == 2, "streak broken: %d", rows[0].forced);
	free(rows);
	/* Pruned to the last STORE_STOPS_KEPT. */
	for (int i = 0; i < STORE_STOPS_KEPT + 5; i++)
		fail_unless(store_stop_record(s, &a, &err) == 0, "%s", err.msg);
	fail_unless(store_stop_summary(s, 1000, &rows, &n, &err) == 0 &&
	    rows[0].stops == STORE_STOPS_KEPT, "kept %d", rows[0].stops);
	free(rows);
	store_close(s);
	return 0;
}

/* A database a first release left (schema 1, one VM) opens with every
 * migration applied and its VM intact. */
static int
test_migrate_from_v1(void)
{
	char path[] = "/tmp/banger-test-store-v1-XXXXXX";
	int fd = mkstemp(path);
	sqlite3 *db;
	struct store *s;
	struct bn_err err;
	struct vm got;
	char *msg = NULL;

	fail_unless(fd >= 0, "mkstemp");
	close(fd);
	fail_unless(sqlite3_open(path, &db) == SQLITE_OK, "open v1");
	fail_unless(sqlite3_exec(db, store_migrations[0], NULL, NULL, &msg) ==
	    SQLITE_OK, "schema 1: %s", msg ? msg : "");
	fail_unless(sqlite3_exec(db, "PRAGMA user_version = 1; INSERT INTO vms "
	    "(id, name, image, vcpus, memory_mib, disk_gib, nat, state, cid, "
	    "created_at, updated_at) VALUES ('00000000000000aa', 'old', 'default', "
	    "1, 256, 4, 0, 'stopped', 9, 'then', 'then')", NULL, NULL, &msg) ==
	    SQLITE_OK, "v1 row: %s", msg ? msg : "");
	sqlite3_close(db);
	fail_unless(store_open(path, &s, &err) == 0, "%s", err.msg);
	fail_unless(store_schema_version(s) == (int)store_nmigrations,
	    "migrated to %d", store_schema_version(s));
	fail_unless(store_vm_get(s, "old", &got, &err) == 0, "%s", err.msg);
	fail_unless(got.cid == 9 && got.vcpus == 1 && got.state == VM_STOPPED &&
	    got.paused_reason[0] == '\0' && got.stop_ms == 0, "v1 row read back");
	store_close(s);
	unlink(path);
	char side[64];
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	return 0;
}

/* Snapshots by VM and name: a taken name is refused, rows change and go,
 * and a VM's delete takes its snapshots' rows with it. */
/* One warm snapshot per image: put replaces, get and delete say
 * snapshot_not_found for an image without one. */
static int
test_warm(void)
{
	struct store *s;
	struct bn_err err;
	struct warm w, got, *list;
	int n;

	fail_unless(store_open(":memory:", &s, &err) == 0, "%s", err.msg);
	memset(&w, 0, sizeof(w));
	snprintf(w.image, sizeof(w.image), "default");
	w.state = SNAP_CREATING;
	snprintf(w.vm, sizeof(w.vm), "warm-0a1b2c3d");
	snprintf(w.vmm, sizeof(w.vmm), "firecracker");
	snprintf(w.image_id, sizeof(w.image_id), "801.12.34.56;-;801.9.8.7;");
	time_rfc3339(w.created_at);
	fail_unless(store_warm_put(s, &w, &err) == 0, "%s", err.msg);
	w.state = SNAP_READY;
	w.vm[0] = '\0';
	w.vcpus = 2;
	w.memory_mib = 1024;
	w.disk_gib = 8;
	w.bytes = 123456789;
	fail_unless(store_warm_put(s, &w, &err) == 0, "%s", err.msg);
	fail_unless(store_warm_get(s, "default", &got, &err) == 0, "%s", err.msg);
	fail_unless(got.state == SNAP_READY && got.vm[0] == '\0' &&
	    got.vcpus == 2 && got.memory_mib == 1024 && got.disk_gib == 8 &&
	    got.bytes == 123456789 && strcmp(got.image_id, w.image_id) == 0,
	    "round trip");
	fail_unless(store_warm_list(s, &list, &n, &err) == 0 && n == 1, "list");
	free(list);
	fail_unless(store_warm_get(s, "other", &got, &err) < 0 &&
	    err.code == BN_ESNAP_NOTFOUND && strstr(err.msg, "other"), "missing");
	fail_unless(store_warm_delete(s, "default", &err) == 0, "%s", err.msg);
	fail_unless(store_warm_delete(s, "default", &err) < 0 &&
	    err.code == BN_ESNAP_NOTFOUND, "deleted twice");
	store_close(s);
	return 0;
}

static int
test_snapshots(void)
{
	struct store *s;
	struct bn_err err;
	struct vm vm = mkvm("snappy", 3);
	struct snapshot sn = { 0 }, got, *all = NULL;
	int n = 0;

	fail_unless(store_open(":memory:", &s, &err) == 0, "%s", err.msg);
	fail_unless(store_vm_insert(s, &vm, &err) == 0, "%s", err.msg);
	snprintf(sn.vm_id, sizeof(sn.vm_id), "%s", vm.id);
	snprintf(sn.name, sizeof(sn.name), "one");
	snprintf(sn.vmm, sizeof(sn.vmm), "firecracker");
	snprintf(sn.created_at, sizeof(sn.created_at), "2026-12-05T10:00:00Z");
	sn.vcpus = 2;
	sn.memory_mib = 256;
	fail_unless(store_snap_insert(s, &sn, &err) == 0, "%s", err.msg);
	fail_unless(store_snap_insert(s, &sn, &err) < 0 &&
	    err.code == BN_ESNAP_EXISTS, "a taken name: %d", err.code);
	sn.state = SNAP_READY;
	sn.bytes = 12345;
	snprintf(sn.vmm_version, sizeof(sn.vmm_version), "1.16.1");
	fail_unless(store_snap_update(s, &sn, &err) == 0, "%s", err.msg);
	fail_unless(store_snap_get(s, vm.id, "one", &got, &err) == 0 &&
	    got.state == SNAP_READY && got.bytes == 12345 && got.vcpus == 2 &&
	    strcmp(got.vmm_version, "1.16.1") == 0, "update persisted");
	snprintf(sn.name, sizeof(sn.name), "two");
	snprintf(sn.created_at, sizeof(sn.created_at), "2026-12-05T11:00:00Z");
	fail_unless(store_snap_insert(s, &sn, &err) == 0, "%s", err.msg);
	fail_unless(store_snap_list(s, vm.id, &all, &n, &err) == 0 && n == 2 &&
	    strcmp(all[0].name, "one") == 0, "listed oldest first (%d)", n);
	free(all);
	fail_unless(store_snap_delete(s, vm.id, "one", &err) == 0, "%s", err.msg);
	fail_unless(store_snap_get(s, vm.id, "one", &got, &err) < 0 &&
	    err.code == BN_ESNAP_NOTFOUND, "deleted");
	fail_unless(store_snap_delete(s, vm.id, "one", &err) < 0 &&
	    err.code == BN_ESNAP_NOTFOUND, "deleting twice: not found");
	fail_unless(store_vm_delete(s, "snappy", &err) == 0, "%s", err.msg);
	fail_unless(store_snap_list(s, vm.id, &all, &n, &err) == 0 && n == 0,
	    "the VM's delete took its snapshots' rows");
	free(all);
	store_close(s);
	return 0;
}

int
main(void)
{
	tap_begin();
	RUN_TEST(test_migrate_and_vms);
	RUN_TEST(test_images);
	RUN_TEST(test_operations);
	RUN_TEST(test_reopen_file);
	RUN_TEST(test_migrate_from_v1);
	RUN_TEST(test_leases);
	RUN_TEST(test_stops);
	RUN_TEST(test_snapshots);
	RUN_TEST(test_warm);
	return tap_end();
}
