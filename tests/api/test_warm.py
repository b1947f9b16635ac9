"""Warm images against the Firecracker test double: warming boots a VM of
the image once, keeps its snapshot under warm/IMAGE and deletes the VM; a
create of the same shape restores a copy (vm.create_warm) with its own
identity, any other boots cold and says why in the operation's note; a
changed, re-registered or deleted image loses its warm snapshot; a failed
or interrupted warming leaves nothing behind."""
import json
import os
import signal
import sqlite3
import time

import pytest

from daemon import Daemon

CONFIG = {"default_vcpus": 1, "default_memory_mib": 256, "default_disk_gib": 1}


@pytest.fixture(scope="module")
def warmd():
    d = Daemon(config=CONFIG).start()
    yield d
    d.cleanup()


def warm(api, image, wait=60):
    r = api.post("/v1/images/%s/warm" % image, params={"wait": wait})
    assert r.status_code in (200, 202), r.text
    return r.json()


def create(api, name, **spec):
    body = {"name": name}
    body.update(spec)
    r = api.post("/v1/vms", body, params={"wait": 60})
    assert r.status_code == 200, r.text
    op = r.json()
    assert op["state"] == "succeeded", op
    return op


def fc_calls(d, vm_id):
    if not os.path.exists(d.fc_log):
        return []
    with open(d.fc_log) as f:
        return [c for c in map(json.loads, f) if c["id"] == vm_id]


def rows(d, sql):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.state, "banger.db"),
                         uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def identity(d, vm_id):
    path = os.path.join(d.state, "vms", vm_id, "vsock.sock.agent.identity")
    with open(path) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def vm_names(api):
    return {v["name"] for v in api.get("/v1/vms").json()["vms"]}


def test_warm_then_creates_restore_it(warmd):
    d, api = warmd, warmd.client
    op = warm(api, "default")
    assert op["kind"] == "image.warm" and op["state"] == "succeeded", op
    w = op["result"]["warm"]
    assert w["state"] == "ready" and w["vcpus"] == 1 and \
        w["memory_mib"] == 256 and w["disk_gib"] == 1 and w["bytes"] > 0, w
    assert w["vmm"]["kind"] == "firecracker", w
    assert api.get("/v1/images/default").json()["warm"] == w
    wd = os.path.join(d.state, "warm", "default")
    assert sorted(os.listdir(wd)) == ["manifest.json", "memory",
                                      "rootfs.ext4", "vmstate", "work.ext4"]
    # The VM it was taken of is gone, and so is its snapshot's row.
    assert vm_names(api) == set(), vm_names(api)
    assert rows(d, "SELECT count(*) FROM snapshots") == [(0,)]

    seen = {}
    for name in ("hot-a", "hot-b"):
        op = create(api, name)
        assert op["kind"] == "vm.create_warm", op
        assert op["note"].startswith("warm start"), op
        vm = op["result"]
        assert vm["status"]["state"] == "running", vm
        assert vm["status"]["health"] == "ok", vm
        assert vm["spec"]["image"] == "default" and vm["spec"]["vcpus"] == 1
        paths = [c["path"] for c in fc_calls(d, vm["id"])
                 if c["path"] not in ("/", "/version")]
        assert paths[:2] == ["/logger", "/snapshot/load"], paths
        load = json.loads([c for c in fc_calls(d, vm["id"])
                           if c["path"] == "/snapshot/load"][0]["body"])
        assert load["snapshot_path"] == os.path.join(wd, "vmstate"), load
        ident = identity(d, vm["id"])
        assert ident["hostname"] == name, ident
        seen[name] = (vm["status"]["ip"], ident["machine_id"])
    assert seen["hot-a"][0] != seen["hot-b"][0], seen
    assert seen["hot-a"][1] != seen["hot-b"][1], seen
    # The warm snapshot is the image's, untouched by its copies.
    assert os.path.exists(os.path.join(wd, "manifest.json"))

    # Another shape boots cold, and the operation says why.
    op = create(api, "cold-c", vcpus=2)
    assert op["kind"] == "vm.create", op
    assert "booted cold" in op["note"] and "1 vcpus" in op["note"], op
    assert not any(c["path"] == "/snapshot/load"
                   for c in fc_calls(d, op["result"]["id"]))
    for name in ("hot-a", "hot-b", "cold-c"):
        api.delete_vm(name)

    # Dropped on request.
    assert api.delete("/v1/images/default/warm").status_code == 204
    assert api.get("/v1/images/default").json()["warm"] is None
    assert not os.path.exists(wd)
    op = create(api, "plain")
    assert op["kind"] == "vm.create" and op["note"] is None, op
    api.delete_vm("plain")


def test_warm_refusals(warmd):
    api = warmd.client
    r = api.post("/v1/images/ghost/warm")
    assert r.status_code == 404 and r.json()["code"] == "image_not_found", r.text
    r = api.post("/v1/images/BAD/warm")
    assert r.status_code == 400, r.text
    r = api.delete("/v1/images/default/warm")
    assert r.status_code == 404 and \
        r.json()["code"] == "snapshot_not_found", r.text
    # One warming at a time per image.
    first = api.post("/v1/images/default/warm")
    assert first.status_code == 202, first.text
    r = api.post("/v1/images/default/warm")
    assert r.status_code == 409 and "being warmed" in r.json()["message"], \
        r.text
    r = api.delete("/v1/images/default/warm")
    assert r.status_code == 409, r.text
    op = api.wait_op(first.json())
    assert op["state"] == "succeeded", op
    assert api.delete("/v1/images/default/warm").status_code == 204


def test_changed_images_lose_their_warm_snapshot(warmd):
    d, api = warmd, warmd.client
    rootfs, _ = d.make_image("tiny")
    r = api.post("/v1/images", {"name": "tiny", "rootfs": rootfs})
    assert r.status_code == 201, r.text
    wd = os.path.join(d.state, "warm", "tiny")

    # Registered again: dropped at once.
    assert warm(api, "tiny")["state"] == "succeeded"
    assert os.path.isdir(wd)
    r = api.post("/v1/images", {"name": "tiny", "rootfs": rootfs})
    assert r.status_code == 200 and r.json()["warm"] is None, r.text
    assert not os.path.exists(wd)

    # Its file changed: the next create drops it and boots cold.
    assert warm(api, "tiny")["state"] == "succeeded"
    with open(rootfs, "r+b") as f:
        f.seek(2048)
        f.write(b"changed")
    op = create(api, "after-change", image="tiny")
    assert op["kind"] == "vm.create", op
    assert "changed since it was warmed" in op["note"], op
    assert api.get("/v1/images/tiny").json()["warm"] is None
    assert not os.path.exists(wd)
    api.delete_vm("after-change")

    # Deleted: its warm snapshot goes with it.
    assert warm(api, "tiny")["state"] == "succeeded"
    assert api.delete("/v1/images/tiny").status_code == 204
    assert not os.path.exists(wd)
    assert rows(d, "SELECT image FROM warm") == []


@pytest.mark.parametrize("failpoint", ["vm.create:wait_health",
                                       "vm.snapshot:copy_disks",
                                       "vm.snapshot:manifest"])
def test_a_failed_warming_leaves_nothing(fresh_daemon, failpoint):
    d = fresh_daemon
    d.reconfigure(config=CONFIG)
    fp = os.path.join(d.dir, "failpoint")
    with open(fp, "w") as f:
        f.write(failpoint)
    d.env["BANGERD_FAILPOINT_FILE"] = fp
    d.start()
    api = d.client
    op = warm(api, "default")
    assert op["state"] == "failed", op
    assert "failpoint " + failpoint in op["error"]["message"], op
    assert vm_names(api) == set()
    assert api.get("/v1/images/default").json()["warm"] is None
    assert not os.path.exists(os.path.join(d.state, "warm", "default"))
    assert rows(d, "SELECT count(*) FROM warm") == [(0,)]
    assert rows(d, "SELECT count(*) FROM snapshots") == [(0,)]
    assert os.listdir(os.path.join(d.state, "vms")) == []
    assert d.vmm_pids() == []
    # And the next warming works.
    with open(fp, "w") as f:
        f.write("")
    assert warm(api, "default")["state"] == "succeeded"


def test_an_interrupted_warming_is_undone_at_restart(fresh_daemon):
    d = fresh_daemon
    d.reconfigure(config=CONFIG)
    d.start()
    api = d.client
    # Stop the warming's VM at its health check: the agent never answers.
    d.set_faults({"no_agent": True})
    r = api.post("/v1/images/default/warm")
    assert r.status_code == 202, r.text
    deadline = time.time() + 30
    while not [n for n in vm_names(api) if n.startswith("warm-")]:
        assert time.time() < deadline, "the warming VM never appeared"
        time.sleep(0.1)
    d.stop(sig=signal.SIGKILL)
    d.clear_faults()
    d.start()
    deadline = time.time() + 30
    while vm_names(d.client):
        assert time.time() < deadline, vm_names(d.client)
        time.sleep(0.2)
    assert d.client.get("/v1/images/default").json()["warm"] is None
    assert rows(d, "SELECT count(*) FROM warm") == [(0,)]
    assert not os.path.exists(os.path.join(d.state, "warm", "default"))


def test_warm_default_image_after_its_first_create(fresh_daemon):
    d = fresh_daemon
    cfg = dict(CONFIG, warm_default_image="on")
    d.reconfigure(config=cfg)
    d.start()
    api = d.client
    op = create(api, "first")
    assert op["kind"] == "vm.create", op
    deadline = time.time() + 60
    while True:
        w = api.get("/v1/images/default").json()["warm"]
        if w is not None and w["state"] == "ready":
            break
        assert time.time() < deadline, w
        time.sleep(0.2)
    ops = api.get("/v1/operations").json()["operations"]
    assert [o["kind"] for o in ops].count("image.warm") == 1, ops
    assert create(api, "second")["kind"] == "vm.create_warm"
    # A warm create does not warm again.
    ops = api.get("/v1/operations").json()["operations"]
    assert [o["kind"] for o in ops].count("image.warm") == 1, ops
