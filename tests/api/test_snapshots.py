"""Snapshots and restores against the Firecracker test double: the calls
Firecracker gets and their order (PATCH /vm Paused, PUT /snapshot/create,
PATCH /vm Resumed; in a fresh process only the logger before PUT
/snapshot/load), the files and manifest, the refusals, and restores that
bring the disks of the snapshot back."""
import json
import os
import shutil
import sqlite3
import stat


def calls(daemon, vm_id, skip=0):
    if not os.path.exists(daemon.fc_log):
        return []
    with open(daemon.fc_log) as f:
        out = [json.loads(line) for line in f]
    return [c for c in out[skip:] if c["id"] == vm_id]


def ncalls(daemon):
    if not os.path.exists(daemon.fc_log):
        return 0
    with open(daemon.fc_log) as f:
        return sum(1 for _ in f)


def body(c):
    return json.loads(c["body"]) if c["body"] else None


def snap(api, vm, name, **kw):
    r = api.post("/v1/vms/%s/snapshots" % vm, {"name": name},
                 params={"wait": 60}, **kw)
    assert r.status_code in (200, 202), r.text
    return r.json()


def restore(api, vm, name):
    r = api.post("/v1/vms/%s/restore" % vm, {"snapshot": name},
                 params={"wait": 60})
    assert r.status_code == 200, r.text
    return r.json()


def err_of(r, status, code):
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.text
    return r.json()


def test_snapshot_then_restore(api, daemon):
    vm = api.create_vm("snapme", vcpus=1, memory_mib=256)["result"]
    vdir = os.path.join(daemon.state, "vms", vm["id"])
    n = ncalls(daemon)

    op = snap(api, "snapme", "first")
    assert op["state"] == "succeeded", op
    s = op["result"]
    assert s["name"] == "first" and s["vm"] == "snapme" and \
        s["state"] == "ready", s
    assert s["vmm"] == {"kind": "firecracker", "version": "1.16.1"}, s
    assert s["vcpus"] == 1 and s["memory_mib"] == 256 and s["bytes"] > 0, s
    # Paused, saved, resumed: in that order, and nothing else changed.
    seq = [(c["method"], c["path"]) for c in calls(daemon, vm["id"], n)]
    assert seq == [("GET", "/version"), ("PATCH", "/vm"),
                   ("PUT", "/snapshot/create"), ("PATCH", "/vm")], seq
    cs = calls(daemon, vm["id"], n)
    assert body(cs[1]) == {"state": "Paused"}
    assert body(cs[3]) == {"state": "Resumed"}
    sd = os.path.join(vdir, "snapshots", "first")
    assert body(cs[2]) == {"snapshot_type": "Full",
                           "snapshot_path": os.path.join(sd, "vmstate"),
                           "mem_file_path": os.path.join(sd, "memory")}
    assert api.get("/v1/vms/snapme").json()["status"]["state"] == "running"

    # The files: 0600 in a 0700 directory, the manifest written last.
    assert stat.S_IMODE(os.stat(sd).st_mode) == 0o700
    assert sorted(os.listdir(sd)) == ["manifest.json", "memory", "rootfs.ext4",
                                      "vmstate", "work.ext4"]
    for f in os.listdir(sd):
        assert stat.S_IMODE(os.stat(os.path.join(sd, f)).st_mode) == 0o600, f
    with open(os.path.join(sd, "manifest.json")) as f:
        m = json.load(f)
    assert m["format"] == 1 and m["vmm"]["kind"] == "firecracker", m
    assert m["vm"]["vcpus"] == 1 and m["vm"]["memory_mib"] == 256, m
    assert len(m["files"]["memory"]["sha256"]) == 64, m
    assert m["files"]["memory"]["bytes"] == 256 << 20, m
    assert len(m["host"]["cpu_flags_sha256"]) == 64, m

    lst = api.get("/v1/vms/snapme/snapshots").json()["snapshots"]
    assert [x["name"] for x in lst] == ["first"], lst
    got = api.get("/v1/vms/snapme/snapshots/first").json()
    assert got == s, (got, s)

    # Changes after the snapshot: the restore takes them away.
    work = os.path.join(vdir, "work.ext4")
    with open(work, "ab") as f:
        f.write(b"after")
    size_before = os.path.getsize(os.path.join(sd, "work.ext4"))
    pid0 = api.get("/v1/vms/snapme").json()["status"]["pid"]
    n = ncalls(daemon)
    op = restore(api, "snapme", "first")
    assert op["state"] == "succeeded", op
    st = op["result"]["status"]
    assert st["state"] == "running" and st["health"] == "ok", st
    assert st["pid"] != pid0, "a fresh VMM"
    assert os.path.getsize(work) == size_before
    assert not os.path.exists(work + ".prev")
    # The fresh process: the logger, then the load, nothing else first.
    cs = [c for c in calls(daemon, vm["id"], n)
          if c["path"] not in ("/", "/version")]
    seq = [(c["method"], c["path"]) for c in cs]
    assert seq[:2] == [("PUT", "/logger"), ("PUT", "/snapshot/load")], seq
    load = body(cs[1])
    assert load["snapshot_path"] == os.path.join(sd, "vmstate"), load
    assert load["mem_backend"] == {"backend_type": "File",
                                   "backend_path": os.path.join(sd, "memory")}
    assert load["resume_vm"] is True, load
    assert load["vsock_override"] == {
        "uds_path": os.path.join(vdir, "vsock.sock")}, load
    tap = "bt-" + vm["id"][:12]
    assert load["network_overrides"] == [{"iface_id": "eth0",
                                          "host_dev_name": tap}], load
    # The guest answers over the overridden vsock socket.
    h = api.get("/v1/vms/snapme/health").json()
    assert h["status"] == "ok", h

    r = api.delete("/v1/vms/snapme/snapshots/first")
    assert r.status_code == 204, r.text
    assert not os.path.exists(sd)
    err_of(api.get("/v1/vms/snapme/snapshots/first"), 404, "snapshot_not_found")
    api.delete_vm("snapme")


def test_snapshot_refusals(api):
    api.create_vm("snapno", vcpus=1, memory_mib=128)
    assert snap(api, "snapno", "one")["state"] == "succeeded"
    err_of(api.post("/v1/vms/snapno/snapshots", {"name": "one"}), 409,
           "snapshot_exists")
    err_of(api.post("/v1/vms/snapno/snapshots", {"name": "Bad_Name"}), 400,
           "invalid_name")
    err_of(api.post("/v1/vms/snapno/snapshots", {"name": "x", "y": 1}), 400,
           "unknown_field")
    err_of(api.post("/v1/vms/snapno/snapshots", {}), 400, "invalid_request")
    err_of(api.post("/v1/vms/nosuch/snapshots", {"name": "x"}), 404,
           "vm_not_found")
    err_of(api.post("/v1/vms/snapno/restore", {"snapshot": "nope"}), 404,
           "snapshot_not_found")
    err_of(api.get("/v1/vms/snapno/snapshots/nope"), 404, "snapshot_not_found")
    err_of(api.delete("/v1/vms/snapno/snapshots/nope"), 404,
           "snapshot_not_found")
    api.action("snapno", "stop")
    op = snap(api, "snapno", "cold")
    assert op["state"] == "failed", op
    assert op["error"]["code"] == "invalid_state", op
    assert [s["name"] for s in api.get("/v1/vms/snapno/snapshots")
            .json()["snapshots"]] == ["one"]
    api.delete_vm("snapno")


def test_a_paused_vm_stays_paused(api, daemon):
    vm = api.create_vm("snaphold", vcpus=1, memory_mib=128)["result"]
    assert api.post("/v1/vms/snaphold/pause").status_code == 200
    n = ncalls(daemon)
    assert snap(api, "snaphold", "held")["state"] == "succeeded"
    seq = [(c["method"], c["path"]) for c in calls(daemon, vm["id"], n)]
    assert ("PATCH", "/vm") not in seq, seq
    st = api.get("/v1/vms/snaphold").json()["status"]
    assert st["state"] == "paused" and st["paused_reason"] == "user", st
    api.delete_vm("snaphold")


def test_broken_snapshots_are_refused_before_anything_changes(api, daemon):
    vm = api.create_vm("snapbad", vcpus=1, memory_mib=128)["result"]
    sd = os.path.join(daemon.state, "vms", vm["id"], "snapshots")
    for name in ("flip", "cut", "shape"):
        assert snap(api, "snapbad", name)["state"] == "succeeded"
    # Verified once (and remembered), then changed: checked again.
    assert restore(api, "snapbad", "flip")["state"] == "succeeded"
    pid = api.get("/v1/vms/snapbad").json()["status"]["pid"]

    with open(os.path.join(sd, "flip", "memory"), "r+b") as f:
        f.seek(4096)
        b = f.read(1)
        f.seek(4096)
        f.write(bytes([b[0] ^ 0xff]))
    op = restore(api, "snapbad", "flip")
    assert op["state"] == "failed", op
    assert op["error"]["code"] == "snapshot_unusable", op
    assert "memory does not match its checksum" in op["error"]["message"], op

    with open(os.path.join(sd, "cut", "vmstate"), "r+b") as f:
        f.truncate(10)
    op = restore(api, "snapbad", "cut")
    assert op["error"]["code"] == "snapshot_unusable", op
    assert "vmstate is 10 bytes" in op["error"]["message"], op

    # Nothing was touched: the same VMM runs on.
    st = api.get("/v1/vms/snapbad").json()["status"]
    assert st["state"] == "running" and st["pid"] == pid, st

    # A VM whose shape changed since cannot take the snapshot back.
    api.action("snapbad", "stop")
    r = api.patch("/v1/vms/snapbad", {"vcpus": 2})
    assert r.status_code == 200, r.text
    op = restore(api, "snapbad", "shape")
    assert op["error"]["code"] == "snapshot_unusable", op
    assert "1 vcpus" in op["error"]["message"], op
    assert api.get("/v1/vms/snapbad").json()["status"]["state"] == "stopped"
    api.delete_vm("snapbad")


def test_restore_a_stopped_vm_and_delete_takes_snapshots(api, daemon):
    vm = api.create_vm("snapcold", vcpus=1, memory_mib=128)["result"]
    assert snap(api, "snapcold", "warm")["state"] == "succeeded"
    api.action("snapcold", "stop")
    op = restore(api, "snapcold", "warm")
    assert op["state"] == "succeeded", op
    assert op["result"]["status"]["state"] == "running", op
    api.delete_vm("snapcold")
    assert not os.path.exists(os.path.join(daemon.state, "vms", vm["id"]))
    # A new VM of the same name has none of the old one's snapshots.
    api.create_vm("snapcold", vcpus=1)
    assert api.get("/v1/vms/snapcold/snapshots").json()["snapshots"] == []
    api.delete_vm("snapcold")


def test_no_room_for_a_snapshot(fresh_daemon):
    """Memory and both disks must fit above the reserve, or nothing is
    made and the VM runs on."""
    d = fresh_daemon.start()
    api = d.client
    api.create_vm("full", vcpus=1, memory_mib=128)
    d.stop()
    free_mib = shutil.disk_usage(d.state).free >> 20
    with open(d.config_path) as f:
        cfg = json.load(f)
    cfg["disk_reserve_mib"] = free_mib + 1024
    with open(d.config_path, "w") as f:
        json.dump(cfg, f)
    d.start()
    op = snap(api, "full", "big")
    assert op["state"] == "failed", op
    assert op["error"]["code"] == "host_disk_full", op
    assert api.get("/v1/vms/full/snapshots").json()["snapshots"] == []
    assert api.get("/v1/vms/full").json()["status"]["state"] == "running"


def identity_of(daemon, vm_id):
    """What the double's agent was asked to become (POST /identity)."""
    path = os.path.join(daemon.state, "vms", vm_id, "vsock.sock.agent.identity")
    with open(path) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def test_clones_are_machines_of_their_own(api, daemon):
    src = api.create_vm("origin", vcpus=1, memory_mib=256)["result"]
    assert snap(api, "origin", "base")["state"] == "succeeded"
    sd = os.path.join(daemon.state, "vms", src["id"], "snapshots", "base")
    clones = {}
    for name in ("twin-a", "twin-b"):
        n = ncalls(daemon)
        r = api.post("/v1/vms", {"name": name, "from": "origin@base"},
                     params={"wait": 60})
        assert r.status_code == 200, r.text
        op = r.json()
        assert op["kind"] == "vm.clone" and op["state"] == "succeeded", op
        vm = op["result"]
        clones[name] = vm
        assert vm["spec"]["vcpus"] == 1 and vm["spec"]["memory_mib"] == 256
        assert vm["spec"]["image"] == src["spec"]["image"], vm
        assert vm["status"]["state"] == "running", vm
        assert vm["status"]["health"] == "ok", vm
        vdir = os.path.join(daemon.state, "vms", vm["id"])
        # Its own disks, loaded from its own directory.
        assert sorted(f for f in os.listdir(vdir) if f.endswith(".ext4")) == \
            ["rootfs.ext4", "work.ext4"]
        cs = [c for c in calls(daemon, vm["id"], n)
              if c["path"] not in ("/", "/version")]
        assert [(c["method"], c["path"]) for c in cs[:2]] == \
            [("PUT", "/logger"), ("PUT", "/snapshot/load")], cs
        load = body(cs[1])
        assert load["snapshot_path"] == os.path.join(sd, "vmstate"), load
        assert load["vsock_override"]["uds_path"] == \
            os.path.join(vdir, "vsock.sock"), load
        assert load["network_overrides"] == [{
            "iface_id": "eth0", "host_dev_name": "bt-" + vm["id"][:12]}], load
        # The guest was told who it is now.
        ident = identity_of(daemon, vm["id"])
        assert ident["hostname"] == name, ident
        assert ident["address"] == vm["status"]["ip"] + "/24", ident
        assert ident["gateway"] == "172.30.0.1", ident
        assert len(ident["machine_id"]) == 32, ident
        assert ident["seed_bytes"] == "64", ident
    a, b = clones["twin-a"], clones["twin-b"]
    assert len({src["status"]["ip"], a["status"]["ip"], b["status"]["ip"]}) == 3
    assert identity_of(daemon, a["id"])["mac"] != \
        identity_of(daemon, b["id"])["mac"]
    assert identity_of(daemon, a["id"])["machine_id"] != \
        identity_of(daemon, b["id"])["machine_id"]
    for name in clones:
        assert api.get("/v1/vms/%s/health" % name).json()["status"] == "ok"
    # A clone is a VM like any other: it stops, starts cold and goes.
    api.action("twin-a", "stop")
    assert api.action("twin-a", "start")["state"] == "succeeded"
    for name in clones:
        api.delete_vm(name)
    # The source's snapshot is untouched by its clones.
    assert os.path.exists(os.path.join(sd, "manifest.json"))
    api.delete_vm("origin")


def test_clone_refusals(api):
    api.create_vm("proto", vcpus=1, memory_mib=128)
    assert snap(api, "proto", "p1")["state"] == "succeeded"
    err_of(api.post("/v1/vms", {"name": "c1", "from": "proto"}), 400,
           "invalid_request")
    err_of(api.post("/v1/vms", {"name": "c1", "from": "proto@BAD"}), 400,
           "invalid_name")
    err_of(api.post("/v1/vms", {"name": "c1", "from": "ghost@p1"}), 404,
           "vm_not_found")
    err_of(api.post("/v1/vms", {"name": "c1", "from": "proto@nope"}), 404,
           "snapshot_not_found")
    e = err_of(api.post("/v1/vms", {"name": "c1", "from": "proto@p1",
                                    "vcpus": 2}), 400, "invalid_request")
    assert "1 vcpus" in e["message"], e
    err_of(api.post("/v1/vms", {"name": "c1", "from": "proto@p1",
                                "image": "default"}), 400, "invalid_request")
    err_of(api.post("/v1/vms", {"name": "proto", "from": "proto@p1"}), 409,
           "vm_exists")
    assert api.get("/v1/vms/c1").status_code == 404
    api.delete_vm("proto")


def test_restart_clears_what_an_interrupted_snapshot_left(fresh_daemon):
    """bangerd died mid-restore (the VM's disks set aside as *.prev) and
    mid-snapshot (a row still creating): at its next start the VM has its
    own disks back and the unfinished snapshot is gone."""
    d = fresh_daemon.start()
    api = d.client
    vm = api.create_vm("crashy", vcpus=1, memory_mib=128)["result"]
    assert snap(api, "crashy", "ok")["state"] == "succeeded"
    api.action("crashy", "stop")
    d.stop()
    vdir = os.path.join(d.state, "vms", vm["id"])
    work = os.path.join(vdir, "work.ext4")
    mine = b"the VM's own work disk"
    with open(work, "ab") as f:
        f.write(mine)
    os.rename(work, work + ".prev")
    with open(work, "wb") as f:
        f.write(b"half-copied")
    os.makedirs(os.path.join(vdir, "snapshots", "half"))
    db = sqlite3.connect(os.path.join(d.state, "banger.db"))
    db.execute("INSERT INTO snapshots (vm_id, name, state, vmm, vcpus, "
               "memory_mib, created_at) VALUES (?, 'half', 'creating', "
               "'firecracker', 1, 128, '2026-12-05T00:00:00Z')", (vm["id"],))
    db.commit()
    db.close()
    d.start()
    with open(work, "rb") as f:
        f.seek(-len(mine), os.SEEK_END)
        assert f.read() == mine, "the VM's own work disk is back"
    assert not os.path.exists(work + ".prev")
    names = [s["name"] for s in
             api.get("/v1/vms/crashy/snapshots").json()["snapshots"]]
    assert names == ["ok"], names
    assert not os.path.exists(os.path.join(vdir, "snapshots", "half"))
    assert api.action("crashy", "start")["state"] == "succeeded"
