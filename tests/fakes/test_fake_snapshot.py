"""The test double's snapshots: PUT /snapshot/create on a paused microVM.

Run with:  /usr/bin/python3 -m pytest tests/fakes   (see fakefc.py)
"""
import json
import os

import pytest

from fakefc import NOT_BEFORE, SERDE, healthz_over_vsock, need_agent, require_fake, vsock_connect

require_fake()

CREATE = "Create snapshot error: "
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


def crc64(data):
    """CRC-64/XZ, the state file's."""
    c = 0xFFFFFFFFFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0xC96C5795D7870F42 if c & 1 else 0)
    return c ^ 0xFFFFFFFFFFFFFFFF


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


# --------------------------------------------------------------------------
# around a snapshot
# --------------------------------------------------------------------------

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
