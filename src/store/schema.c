/* schema.c - the database schema, in one place: the migrations that
 * build it, version by version (PRAGMA user_version counts them). */
#include "store/store_int.h"

/* Each entry moves the schema from version i to i+1; never edit one that
 * has shipped, append a new one. */
const char *const store_migrations[] = {
	/* 1: initial schema */
	"CREATE TABLE images ("
	"  name TEXT PRIMARY KEY,"
	"  source TEXT NOT NULL,"
	"  managed INTEGER NOT NULL,"
	"  rootfs TEXT NOT NULL,"
	"  work_seed TEXT NOT NULL DEFAULT '',"
	"  created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL);"
	"CREATE TABLE vms ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  image TEXT NOT NULL,"
	"  vcpus INTEGER NOT NULL,"
	"  memory_mib INTEGER NOT NULL,"
	"  disk_gib INTEGER NOT NULL,"
	"  nat INTEGER NOT NULL,"
	"  state TEXT NOT NULL,"
	"  vmm TEXT NOT NULL DEFAULT '',"
	"  pid INTEGER NOT NULL DEFAULT 0,"
	"  cid INTEGER NOT NULL UNIQUE,"
	"  health TEXT NOT NULL DEFAULT 'unknown',"
	"  last_error TEXT NOT NULL DEFAULT '',"
	"  created_at TEXT NOT NULL,"
	"  started_at TEXT NOT NULL DEFAULT '',"
	"  stopped_at TEXT NOT NULL DEFAULT '',"
	"  updated_at TEXT NOT NULL);"
	"CREATE INDEX vms_image ON vms(image);"
	"CREATE TABLE operations ("
	"  seq INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL UNIQUE,"
	"  kind TEXT NOT NULL,"
	"  target TEXT NOT NULL DEFAULT '',"
	"  state TEXT NOT NULL,"
	"  stage TEXT NOT NULL DEFAULT '',"
	"  progress INTEGER NOT NULL DEFAULT 0,"
	"  error TEXT,"
	"  result TEXT,"
	"  created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL,"
	"  finished_at TEXT NOT NULL DEFAULT '');",
	/* 2: networking: each VM's TAP while it runs, one address lease per
	 * VM (stable across stop/start, released with the VM). */
	"ALTER TABLE vms ADD COLUMN tap TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE leases ("
	"  vm_id TEXT PRIMARY KEY,"
	"  ip TEXT NOT NULL UNIQUE);",
	/* 3: the accelerator a VM booted with (kvm | tcg) and why. */
	"ALTER TABLE vms ADD COLUMN accel TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE vms ADD COLUMN accel_reason TEXT NOT NULL DEFAULT '';",
	/* 4: how each VM's last stop ended, and a short history of stops per
	 * image (doctor warns about images whose guests never stop cleanly). */
	"ALTER TABLE vms ADD COLUMN stop_result TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE vms ADD COLUMN stop_method TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE vms ADD COLUMN stop_ms INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE stops ("
	"  seq INTEGER PRIMARY KEY,"
	"  image TEXT NOT NULL,"
	"  vm TEXT NOT NULL,"
	"  result TEXT NOT NULL,"
	"  method TEXT NOT NULL,"
	"  ms INTEGER NOT NULL,"
	"  at TEXT NOT NULL);"
	"CREATE INDEX stops_image ON stops(image, seq);",
	/* 5: why a paused VM is paused (host_disk_full). */
	"ALTER TABLE vms ADD COLUMN paused_reason TEXT NOT NULL DEFAULT '';",
	/* 6: snapshots of VMs (files under the VM's directory). */
	"CREATE TABLE snapshots ("
	"  vm_id TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  vmm TEXT NOT NULL,"
	"  vmm_version TEXT NOT NULL DEFAULT '',"
	"  vcpus INTEGER NOT NULL,"
	"  memory_mib INTEGER NOT NULL,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  created_at TEXT NOT NULL,"
	"  PRIMARY KEY (vm_id, name));",
	/* 7: images' warm snapshots (files under warm/IMAGE) and a note an
	 * operation leaves for its reader (a create that booted cold). */
	"ALTER TABLE operations ADD COLUMN note TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE warm ("
	"  image TEXT PRIMARY KEY,"
	"  state TEXT NOT NULL,"
	"  vm TEXT NOT NULL DEFAULT '',"
	"  vmm TEXT NOT NULL,"
	"  vmm_version TEXT NOT NULL DEFAULT '',"
	"  vcpus INTEGER NOT NULL,"
	"  memory_mib INTEGER NOT NULL,"
	"  disk_gib INTEGER NOT NULL,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  image_id TEXT NOT NULL,"
	"  created_at TEXT NOT NULL);",
	/* 8: the host ports forwarded to each VM, "[ADDR:]HOST:GUEST" joined
	 * by commas (portspec.h). */
	"ALTER TABLE vms ADD COLUMN ports TEXT NOT NULL DEFAULT '';",
	/* 9: each VM's limits, "key=value" joined by commas (model.c). */
	"ALTER TABLE vms ADD COLUMN limits TEXT NOT NULL DEFAULT '';",
	/* 10: each VM's shared folders, a JSON array (mountspec.h). */
	"ALTER TABLE vms ADD COLUMN mounts TEXT NOT NULL DEFAULT '';",
};

const size_t store_nmigrations = sizeof(store_migrations) /
    sizeof(store_migrations[0]);
