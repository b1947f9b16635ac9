"""The test double's snapshots: PUT /snapshot/create on a paused microVM,
PUT /snapshot/load in a fresh process, what a load refuses (and when the
process ends for it, as Firecracker's does), and the guest carrying on
behind its vsock after the load.

Run with:  /usr/bin/python3 -m pytest tests/fakes   (see fakefc.py)
"""
import json
import os
import time

import pytest

from fakefc import (NOT_AFTER, NOT_BEFORE, SERDE, healthz_over_vsock, need_agent,
                    require_fake, vsock_connect, wait_until)

require_fake()

CREATE = "Create snapshot error: "
RESTORE = "Load snapshot error: Failed to restore from snapshot: "
NOT_ALLOWED = ("Load snapshot error: Loading a microVM snapshot not allowed after "
               "configuring boot-specific resources.")
MAGIC = b"BANGER-FAKE-FC-SNAPSHOT x86_64\n"
MIB = 1024 * 1024


def booted(spawn, vsock=False, **kw):
    f = spawn(**kw)
    f.configure(vsock=vsock)
    f.start()
    return f


def take(f, name="snap", snapshot_type=None, resume=False):
    """Pause f and snapshot it into its dir: (state path, memory path)."""
    state, mem = f.dir / f"{name}.state", f.dir / f"{name}.mem"
    f.ok("PATCH", "/vm", {"state": "Paused"})
    body = {"snapshot_path": str(state), "mem_file_path": str(mem)}
    if snapshot_type:
        body["snapshot_type"] = snapshot_type
    f.ok("PUT", "/snapshot/create", body)
    if resume:
        f.ok("PATCH", "/vm", {"state": "Resumed"})
    return state, mem


def load_body(state, mem, **extra):
    return {"snapshot_path": str(state),
            "mem_backend": {"backend_type": "File", "backend_path": str(mem)}, **extra}


def crc64(data):
    """CRC-64/XZ, the state file's."""
    c = 0xFFFFFFFFFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0xC96C5795D7870F42 if c & 1 else 0)
    return c ^ 0xFFFFFFFFFFFFFFFF


def rewrite_state(path, edit):
    """Edit a state file's text before its CRC line and sign it again."""
    body = path.read_bytes()[:-23]
    body = edit(body)
    path.write_bytes(body + b"crc64 %016x\n" % crc64(body))


def ended(f, timeout=3.0):
    """The fake exited as Firecracker does after a failed restore."""
    f.proc.wait(timeout)
    assert f.proc.returncode == 1, f.proc.returncode
    assert "Error: RunWithApi(BuildMicroVmError(Restore))" in f.stderr()
    assert "Failed to build MicroVM: Loading snapshot failed.." in f.stdout()
    return True


def alive(f):
    time.sleep(0.05)
    return f.proc.poll() is None and f.ok("GET", "/")["state"] == "Not started"


# --------------------------------------------------------------------------
# create
# --------------------------------------------------------------------------

def test_create_needs_a_paused_microvm(spawn):
    f = spawn()
    body = {"snapshot_path": str(f.dir / "s"), "mem_file_path": str(f.dir / "m")}
    assert f.fault("PUT", "/snapshot/create", body) == NOT_BEFORE
    f.configure(vsock=False)
    f.start()
    assert f.fault("PUT", "/snapshot/create", body) == (
        CREATE + "Cannot save the microVM state: Operation not allowed: save/restore "
        "unavailable while running")
    assert not (f.dir / "s").exists() and not (f.dir / "m").exists()


def test_create_writes_state_and_sparse_memory(spawn):
    f = booted(spawn)
    state, mem = take(f)
    st = os.stat(mem)
    assert st.st_size == 256 * MIB  # configure() asks for 256 MiB
    assert st.st_blocks * 512 < MIB  # sparse
    head = mem.read_bytes()[:4096].split(b"\0")[0].decode()
    assert head.startswith("BANGER-FAKE-FC-MEMORY 1\n")
    text = state.read_bytes()
    assert text.startswith(MAGIC + b"version 1.0.0 firecracker 1.16.1\n")
    assert text.endswith(b"crc64 %016x\n" % crc64(text[:-23]))
    saved = json.loads(text.split(b"\n")[2])
    assert f"snapshot {saved['snapshot_id']}\n" in head
    assert saved["snapshot_type"] == "Full"
    assert saved["machine-config"]["mem_size_mib"] == 256
    assert saved["drives"][0]["path_on_host"] == str(f.rootfs)
    assert saved["boot-source"]["boot_args"] == "console=ttyS0 reboot=k panic=1"
    assert saved["vsock"] is None and saved["network-interfaces"] == []
    assert {"taken_at", "taken_at_unix_ms", "guest"} <= set(saved)
    assert f.ok("GET", "/")["state"] == "Paused"  # create leaves it paused
    assert "'create full snapshot' VMM action took" in f.stdout()


def test_create_diff_with_and_without_dirty_tracking(spawn):
    # Without track_dirty_pages Firecracker (1.13 on) takes the diff with
    # mincore(2); with it, from KVM's dirty log.  Both are allowed.
    f = booted(spawn)
    take(f, "d1", "Diff")
    g = spawn()
    g.configure(vsock=False)
    g.ok("PATCH", "/machine-config", {"track_dirty_pages": True})
    g.start()
    state, _ = take(g, "d2", "Diff")
    assert json.loads(state.read_bytes().split(b"\n")[2])["snapshot_type"] == "Diff"
    assert "[DevPreview] Virtual machine diff snapshots is in development preview." in f.stdout()
    assert "'create diff snapshot' VMM action took" in g.stdout()


def test_create_files_that_cannot_be_written(spawn):
    f = booted(spawn)
    f.ok("PATCH", "/vm", {"state": "Paused"})
    nowhere = str(f.dir / "no" / "such")
    assert f.fault("PUT", "/snapshot/create", {"snapshot_path": nowhere,
                                               "mem_file_path": str(f.dir / "m")}) == (
        CREATE + "Cannot perform open on the snapshot backing file: No such file or "
        "directory (os error 2)")
    assert f.fault("PUT", "/snapshot/create", {"snapshot_path": str(f.dir / "s"),
                                               "mem_file_path": nowhere}) == (
        CREATE + "Cannot perform open on the memory backing file: No such file or "
        "directory (os error 2)")


def test_create_relative_paths_from_the_working_directory(spawn, workdir):
    f = spawn(cwd=str(workdir))
    f.configure(vsock=False)
    f.start()
    f.ok("PATCH", "/vm", {"state": "Paused"})
    f.ok("PUT", "/snapshot/create", {"snapshot_path": "rel.state", "mem_file_path": "rel.mem"})
    assert (workdir / "rel.state").is_file() and (workdir / "rel.mem").is_file()


@pytest.mark.parametrize("body,expect", [
    ({"snapshot_path": "s"}, SERDE + "missing field `mem_file_path`"),
    ({"snapshot_path": "s", "mem_file_path": "m", "snapshot_type": "Half"},
     SERDE + "unknown variant `Half`, expected `Full` or `Diff`"),
    ({"snapshot_path": "s", "mem_file_path": "m", "snapshot_type": None},
     SERDE + "invalid type: null, expected enum SnapshotType"),
    ({"snapshot_path": "s", "mem_file_path": "m", "version": "1.0.0"},
     SERDE + "unknown field `version`, expected one of `snapshot_type`, `snapshot_path`, "
     "`mem_file_path`"),
])
def test_create_body(spawn, body, expect):
    assert spawn().fault("PUT", "/snapshot/create", body).startswith(expect)


def test_snapshot_paths(spawn):
    f = spawn()
    assert f.fault("PUT", "/snapshot", {}) == "Missing snapshot operation type."
    assert f.fault("PUT", "/snapshot/restore", {}) == \
        "Invalid request method and/or path: PUT /snapshot/restore."


# --------------------------------------------------------------------------
# what a load refuses while the process lives on
# --------------------------------------------------------------------------

@pytest.mark.parametrize("method,path,body", [
    ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}),
    ("PATCH", "/machine-config", {"mem_size_mib": 512}),
    ("PUT", "/boot-source", {"kernel_image_path": "{kernel}"}),
    ("PUT", "/boot-source", {"kernel_image_path": "/nonexistent"}),  # refused, still counts
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "{rootfs}",
                               "is_root_device": True}),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"}),
    ("PUT", "/vsock", {"guest_cid": 3, "uds_path": "{dir}/x.sock"}),
    ("PUT", "/entropy", {}),
])
def test_load_refused_after_boot_resources(spawn, method, path, body):
    f = spawn()
    body = json.loads(json.dumps(body).replace("{kernel}", str(f.kernel)).replace(
        "{rootfs}", str(f.rootfs)).replace("{dir}", str(f.dir)))
    f.req(method, path, body)
    state = f.dir / "missing.state"
    assert f.fault("PUT", "/snapshot/load", load_body(state, state)) == NOT_ALLOWED
    assert alive(f)
    assert "Loading a microVM snapshot not allowed" in f.stdout()


def test_load_refused_after_mmds_config(spawn):
    f = spawn()
    f.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"})
    g = spawn()
    g.fault("PUT", "/mmds/config", {"network_interfaces": ["eth0"]})  # no such iface
    assert g.fault("PUT", "/snapshot/load", load_body("s", "m")) == NOT_ALLOWED


def test_load_refused_once_started(spawn):
    f = booted(spawn)
    assert f.fault("PUT", "/snapshot/load", load_body("s", "m")) == NOT_AFTER


@pytest.mark.parametrize("body,expect", [
    ({"snapshot_path": "s"},
     SERDE + "missing field: either `mem_backend` or `mem_file_path` is required."),
    ({"snapshot_path": "s", "mem_file_path": None},
     SERDE + "missing field: either `mem_backend` or `mem_file_path` is required."),
    ({"snapshot_path": "s", "mem_file_path": "m",
      "mem_backend": {"backend_type": "File", "backend_path": "m"}},
     SERDE + "too many fields: either `mem_backend` or `mem_file_path` exclusively is required."),
    ({"mem_file_path": "m"}, SERDE + "missing field `snapshot_path`"),
    ({"snapshot_path": "s", "mem_backend": {"backend_path": "m"}},
     SERDE + "missing field `backend_type`"),
    ({"snapshot_path": "s", "mem_backend": {"backend_type": "Ram", "backend_path": "m"}},
     SERDE + "unknown variant `Ram`, expected `File` or `Uffd`"),
    ({"snapshot_path": "s", "mem_file_path": "m", "resume_vm": None},
     SERDE + "invalid type: null, expected a boolean"),
    ({"snapshot_path": "s", "mem_file_path": "m", "network_overrides": ["eth0"]},
     SERDE + 'invalid type: string "eth0", expected struct NetworkOverride'),
    ({"snapshot_path": "s", "mem_file_path": "m", "network_overrides": [{"iface_id": "a"}]},
     SERDE + "missing field `host_dev_name`"),
    ({"snapshot_path": "s", "mem_file_path": "m", "network_overrides": {}},
     SERDE + "invalid type: map, expected a sequence"),
    ({"snapshot_path": "s", "mem_file_path": "m", "vsock_override": {}},
     SERDE + "missing field `uds_path`"),
    ({"snapshot_path": "s", "mem_file_path": "m", "huge_pages": "1G"},
     SERDE + "unknown variant `1G`, expected one of `Snapshot`, `None`, `Transparent`, `2M`"),
])
def test_load_body(spawn, body, expect):
    f = spawn()
    assert f.fault("PUT", "/snapshot/load", body).startswith(expect)
    assert alive(f)


@pytest.mark.parametrize("raw,expect", [
    ('{"snapshot_path": "s", "mem_file_path": "m", "network_overrides": '
     '[{"iface_id": "a", "host_dev_name": "b"},]}', "trailing comma at line 1 column 108."),
    ('{"snapshot_path": "s", "mem_file_path": "m", "network_overrides": '
     '[{"iface_id": "a", "host_dev_name": "b"} 1]}', "expected `,` or `]` at line 1 column 108."),
    ('{"snapshot_path": "s", "mem_file_path": "m", "network_overrides": [',
     "EOF while parsing a list at line 1 column 67."),
])
def test_load_body_lists(spawn, raw, expect):
    assert spawn().fault("PUT", "/snapshot/load", raw=raw) == SERDE + expect


def test_load_uffd_is_not_served(spawn):
    f = spawn()
    msg = f.fault("PUT", "/snapshot/load", {"snapshot_path": "s", "mem_backend": {
        "backend_type": "Uffd", "backend_path": "uffd.sock"}})
    assert msg.startswith(RESTORE + "Failed to load guest memory: Error creating guest "
                          "memory from uffd: ") and "no UFFD support" in msg
    assert alive(f)


# --------------------------------------------------------------------------
# a restore that fails ends the process
# --------------------------------------------------------------------------

def test_load_missing_state_file(spawn):
    g = spawn()
    assert g.fault("PUT", "/snapshot/load", load_body(g.dir / "none", g.dir / "none")) == (
        RESTORE + "Failed to get snapshot state from file: Failed to open snapshot file: "
        "No such file or directory (os error 2)")
    assert ended(g)


@pytest.mark.parametrize("damage,expect", [
    (lambda b: b[:len(b) // 2], "CRC64 validation failed: "),
    (lambda b: b[:10], "Snapshot file is smaller than CRC length."),
    (lambda b: b.replace(b'"mem_size_mib":256', b'"mem_size_mib":512'), "CRC64 validation failed: "),
])
def test_load_damaged_state_file(spawn, damage, expect):
    f = booted(spawn)
    state, mem = take(f)
    state.write_bytes(damage(state.read_bytes()))
    g = spawn()
    msg = g.fault("PUT", "/snapshot/load", load_body(state, mem))
    assert msg.startswith(RESTORE + "Failed to get snapshot state from file: Failed to load "
                          "snapshot state from file: " + expect), msg
    assert ended(g)


@pytest.mark.parametrize("edit,expect", [
    (lambda b: b.replace(b"version 1.0.0", b"version 2.0.0"), "Invalid data version: 2.0.0"),
    (lambda b: b.replace(b"version 1.0.0", b"version 1.1.0"), "Invalid data version: 1.1.0"),
    (lambda b: b.replace(b"x86_64", b"aarch64"), "Magic value does not match arch: "),
    (lambda b: b.replace(b'"drives":', b'"disks":'),
     "An error occured with serialization/deserialization: missing field `drives`"),
])
def test_load_state_file_format(spawn, edit, expect):
    f = booted(spawn)
    state, mem = take(f)
    rewrite_state(state, edit)
    g = spawn()
    assert expect in g.fault("PUT", "/snapshot/load", load_body(state, mem))
    assert ended(g)


def test_load_patch_version_is_fine(spawn):
    f = booted(spawn)
    state, mem = take(f)
    rewrite_state(state, lambda b: b.replace(b"version 1.0.0", b"version 1.0.7"))
    spawn().ok("PUT", "/snapshot/load", load_body(state, mem))


def test_load_memory_file_of_another_snapshot(spawn):
    f = booted(spawn)
    state, _ = take(f, "one")
    _, other = take(f, "two")
    g = spawn()
    msg = g.fault("PUT", "/snapshot/load", load_body(state, other))
    assert msg.startswith(RESTORE + "Failed to load guest memory: Error creating guest memory "
                          "from file: Failed to restore guest memory: the memory file belongs "
                          "to snapshot "), msg
    assert ended(g)


def test_load_memory_file_wrong_size_or_missing(spawn):
    f = booted(spawn)
    state, mem = take(f)
    os.truncate(mem, 128 * MIB)
    g = spawn()
    assert "the memory file holds 134217728 bytes, the snapshot's guest has 268435456 " \
        "(256 MiB)" in g.fault("PUT", "/snapshot/load", load_body(state, mem))
    assert ended(g)
    h = spawn()
    assert h.fault("PUT", "/snapshot/load", load_body(state, f.dir / "gone")) == (
        RESTORE + "Failed to load guest memory: Error creating guest memory from file: "
        "Failed to load guest memory: No such file or directory (os error 2)")
    assert ended(h)


def test_load_missing_drive_file(spawn):
    f = booted(spawn)
    state, mem = take(f)
    f.rootfs.unlink()
    g = spawn()
    assert g.fault("PUT", "/snapshot/load", load_body(state, mem)) == (
        RESTORE + "Failed to build microVM from snapshot: Failed to restore devices: Error "
        "restoring MMIO devices: Block: Virtio backend error: Error manipulating the backing "
        f"file: No such file or directory (os error 2) {f.rootfs}")
    assert ended(g)


def test_load_unknown_network_override(spawn):
    f = spawn()
    f.configure(vsock=False)
    f.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"})
    f.start()
    state, mem = take(f)
    g = spawn()
    assert g.fault("PUT", "/snapshot/load", load_body(state, mem, network_overrides=[
        {"iface_id": "eth1", "host_dev_name": "tap9"}])) == (
        RESTORE + "Failed to get snapshot state from file: Unknown Network Device.")
    assert ended(g)


def test_load_vsock_override_without_vsock(spawn):
    f = booted(spawn)
    state, mem = take(f)
    g = spawn()
    assert g.fault("PUT", "/snapshot/load", load_body(
        state, mem, vsock_override={"uds_path": str(g.dir / "v.sock")})) == (
        RESTORE + "Failed to get snapshot state from file: Unknown Vsock Device.")
    assert ended(g)


def test_load_vsock_path_taken(spawn):
    # The snapshotted VM still holds (or left) its socket: a clone needs
    # vsock_override, or the file unlinked first.
    f = booted(spawn, vsock=True)
    state, mem = take(f)
    g = spawn()
    assert g.fault("PUT", "/snapshot/load", load_body(state, mem)) == (
        RESTORE + "Failed to build microVM from snapshot: Failed to restore devices: Error "
        "restoring MMIO devices: VsockUnixBackend: Error binding to the host-side Unix "
        "socket: Address in use (os error 98)")
    assert ended(g)


def test_load_hugetlbfs_needs_uffd(spawn):
    f = booted(spawn)
    state, mem = take(f)
    g = spawn()
    assert g.fault("PUT", "/snapshot/load", load_body(state, mem, huge_pages="2M")) == (
        RESTORE + "Failed to load guest memory: Error creating guest memory from file: "
        "Cannot restore hugetlbfs backed snapshot by mapping the memory file. Please use uffd.")
    assert ended(g)


def test_fault_snapshot_load_error(spawn):
    g = spawn(faults={"snapshot_load_error": "disk gone"})
    assert g.fault("PUT", "/snapshot/load", load_body("s", "m")) == RESTORE + "disk gone"
    assert ended(g)


def test_fault_fail_snapshot_calls(spawn):
    # The route-generic "fail" refuses a call with no side effect, as
    # Firecracker refuses a body it cannot parse: the process lives on.
    f = spawn(faults={"fail": ["PUT /snapshot/create", "PUT /snapshot/load"]})
    assert f.fault("PUT", "/snapshot/load", load_body("s", "m")) == "injected fault"
    assert alive(f)
    f.configure(vsock=False)
    f.start()
    f.ok("PATCH", "/vm", {"state": "Paused"})
    assert f.fault("PUT", "/snapshot/create", {"snapshot_path": str(f.dir / "s"),
                                               "mem_file_path": str(f.dir / "m")}) == "injected fault"
    assert not (f.dir / "s").exists()


# --------------------------------------------------------------------------
# a load that works
# --------------------------------------------------------------------------

def test_load_after_logger_metrics_and_serial(spawn):
    f = booted(spawn)
    state, mem = take(f)
    g = spawn()
    g.ok("PUT", "/logger", {"log_path": str(g.dir / "fc.log"), "level": "Debug"})
    g.ok("PUT", "/metrics", {"metrics_path": str(g.dir / "metrics.json")})
    g.ok("PUT", "/serial", {"serial_out_path": str(g.dir / "console.log")})
    g.ok("PUT", "/mmds", {"k": "v"})  # the data store is no boot resource either
    st, _, hdrs = g.req("PUT", "/snapshot/load", load_body(state, mem))
    assert st == 204 and "Deprecation" not in hdrs
    assert g.ok("GET", "/")["state"] == "Paused"
    assert "'load snapshot' VMM action took" in (g.dir / "fc.log").read_text()
    g.ok("PATCH", "/vm", {"state": "Resumed"})
    sid = json.loads(state.read_bytes().split(b"\n")[2])["snapshot_id"]
    # The double's guest writes (and so makes) the file after the resume,
    # in its own thread: missing is "not yet".
    console = g.dir / "console.log"
    assert wait_until(lambda: console.exists() and
                      f"guest resumed from snapshot {sid}" in
                      console.read_text())
    assert "Linux version" not in (g.dir / "console.log").read_text()


def test_load_deprecated_fields(spawn):
    f = booted(spawn)
    state, mem = take(f)
    g = spawn()
    st, _, hdrs = g.req("PUT", "/snapshot/load", {"snapshot_path": str(state),
                                                  "mem_file_path": str(mem),
                                                  "enable_diff_snapshots": True})
    assert st == 204 and hdrs.get("Deprecation") == "true"
    assert "PUT /snapshot/load: mem_file_path and enable_diff_snapshots fields are " \
        "deprecated." in g.stdout()
    assert g.ok("GET", "/machine-config")["track_dirty_pages"] is True


def test_vm_config_after_load(spawn):
    f = spawn()
    f.configure()
    f.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                             "guest_mac": "06:00:AC:10:00:02"})
    f.ok("PUT", "/entropy", {})
    f.ok("PUT", "/mmds/config", {"network_interfaces": ["eth0"]})
    f.ok("PATCH", "/machine-config", {"smt": True})
    f.start()
    before = f.ok("GET", "/vm/config")
    state, mem = take(f)
    g = spawn()
    g.ok("PUT", "/snapshot/load", load_body(
        state, mem, network_overrides=[{"iface_id": "eth0", "host_dev_name": "tap7"}],
        vsock_override={"uds_path": str(g.dir / "v.sock")}, track_dirty_pages=True,
        clock_realtime=True))
    cfg = g.ok("GET", "/vm/config")
    assert cfg["drives"] == before["drives"]
    assert cfg["network-interfaces"] == [dict(before["network-interfaces"][0],
                                              host_dev_name="tap7")]
    assert cfg["vsock"] == {"guest_cid": 3, "uds_path": str(g.dir / "v.sock")}
    assert cfg["entropy"] == before["entropy"] and cfg["mmds-config"] == before["mmds-config"]
    assert cfg["machine-config"] == {"vcpu_count": 2, "mem_size_mib": 256, "smt": False,
                                     "track_dirty_pages": True, "huge_pages": "None"}
    assert cfg["boot-source"] == {"kernel_image_path": "", "initrd_path": None,
                                  "boot_args": None}
    # a restored microVM is configured: nothing pre-boot any more
    assert g.fault("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}) == NOT_AFTER
    assert g.fault("PUT", "/snapshot/load", load_body(state, mem)) == NOT_AFTER


def test_load_paused_then_resumed_agent_at_override(spawn):
    need_agent()
    f = booted(spawn, vsock=True)
    healthz_over_vsock(f.vsock)
    state, mem = take(f)
    g = spawn()
    clone = str(g.dir / "clone.sock")
    g.ok("PUT", "/snapshot/load", load_body(state, mem, vsock_override={"uds_path": clone},
                                            resume_vm=False))
    assert g.ok("GET", "/")["state"] == "Paused"
    s, line = vsock_connect(clone)  # paused: the guest answers nothing
    assert s is None
    assert "guest resumed" not in g.stdout()
    g.ok("PATCH", "/vm", {"state": "Resumed"})
    assert g.ok("GET", "/")["state"] == "Running"
    line, data = healthz_over_vsock(clone)
    assert line.startswith(b"OK ") and b'"status"' in data
    assert "guest resumed from snapshot" in g.stdout()
    calls = [(r["method"], r["path"], r["status"]) for r in g.requests()
             if r["path"] != "/"]
    assert calls == [("PUT", "/snapshot/load", 204), ("PATCH", "/vm", 204)]


def test_load_resume_vm_runs_the_guest(spawn):
    need_agent()
    f = booted(spawn, vsock=True)
    state, mem = take(f)
    g = spawn()
    clone = str(g.dir / "clone.sock")
    g.ok("PUT", "/logger", {"log_path": str(g.dir / "fc.log")})
    g.ok("PUT", "/snapshot/load", load_body(state, mem, vsock_override={"uds_path": clone},
                                            resume_vm=True))
    assert g.ok("GET", "/")["state"] == "Running"
    assert healthz_over_vsock(clone)[0].startswith(b"OK ")
    calls = [(r["method"], r["path"]) for r in g.requests() if r["path"] != "/"]
    assert calls == [("PUT", "/logger"), ("PUT", "/snapshot/load")]


def test_snapshot_call_order_in_request_log(spawn):
    f = booted(spawn)
    take(f, resume=True)
    calls = [(r["method"], r["path"], r["status"]) for r in f.requests()]
    assert calls[-3:] == [("PATCH", "/vm", 204), ("PUT", "/snapshot/create", 204),
                          ("PATCH", "/vm", 204)]
    assert [json.loads(r["body"])["state"] for r in f.requests()[-3::2]] == ["Paused", "Resumed"]


def test_vsock_connections_end_when_the_snapshotted_guest_resumes(spawn):
    need_agent()
    f = booted(spawn, vsock=True)
    healthz_over_vsock(f.vsock)
    s, line = vsock_connect(f.vsock)
    assert line.startswith(b"OK ")
    take(f)
    s.settimeout(0.3)
    with pytest.raises(TimeoutError):
        s.recv(1)  # paused: nothing happens yet
    f.ok("PATCH", "/vm", {"state": "Resumed"})
    s.settimeout(2.0)
    assert s.recv(1) == b""  # the guest's driver closed it after the reset
    s.close()
    assert healthz_over_vsock(f.vsock)[0].startswith(b"OK ")  # its listener stays


def test_clone_with_relative_paths(spawn, workdir):
    # Firecracker reopens drives at the paths saved, relative ones from its
    # own working directory: clones in other directories get their own.
    a, b, c = (workdir / n for n in ("a", "b", "c"))
    for d in (a, b, c):
        d.mkdir()
    (a / "disk.ext4").write_bytes(b"\0" * 4096)
    (b / "disk.ext4").write_bytes(b"\0" * 4096)
    f = spawn(cwd=str(a))
    f.ok("PUT", "/boot-source", {"kernel_image_path": str(f.kernel)})
    f.ok("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "disk.ext4",
                                   "is_root_device": True})
    f.start()
    f.ok("PATCH", "/vm", {"state": "Paused"})
    f.ok("PUT", "/snapshot/create", {"snapshot_path": "s.state", "mem_file_path": "s.mem"})
    g = spawn(cwd=str(b))
    g.ok("PUT", "/snapshot/load", load_body(a / "s.state", a / "s.mem"))
    assert g.ok("GET", "/vm/config")["drives"][0]["path_on_host"] == "disk.ext4"
    h = spawn(cwd=str(c))
    assert "No such file or directory (os error 2) disk.ext4" in h.fault(
        "PUT", "/snapshot/load", load_body(a / "s.state", a / "s.mem"))
    assert ended(h)


def test_snapshot_of_a_restored_microvm(spawn):
    f = booted(spawn)
    state, mem = take(f)
    g = spawn()
    g.ok("PUT", "/snapshot/load", load_body(state, mem, track_dirty_pages=True))
    state2, mem2 = take(g, "again", "Diff")
    saved = json.loads(state2.read_bytes().split(b"\n")[2])
    first = json.loads(state.read_bytes().split(b"\n")[2])
    assert saved["guest"]["boot_id"] == first["guest"]["boot_id"]  # the same guest
    assert saved["snapshot_id"] != first["snapshot_id"]
    h = spawn()
    h.ok("PUT", "/snapshot/load", load_body(state2, mem2, resume_vm=True))
    assert h.ok("GET", "/")["state"] == "Running"
