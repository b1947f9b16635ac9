"""Pause and resume a running VM, against the Firecracker test double:
PATCH /vm Paused and Resumed as Firecracker's API has them, the paused
state and its reason in the VM and its events, and stop, restart and
delete from paused."""
import glob
import json
import os
import time


def calls(daemon):
    if not os.path.exists(daemon.fc_log):
        return []
    with open(daemon.fc_log) as f:
        return [json.loads(line) for line in f]


def vm_state_patches(daemon, skip):
    return [json.loads(c["body"])["state"] for c in calls(daemon)[skip:]
            if c["method"] == "PATCH" and c["path"] == "/vm"]


def test_pause_and_resume(api, daemon):
    api.create_vm("holdme", vcpus=1)
    n = len(calls(daemon))
    r = api.post("/v1/vms/holdme/pause")
    assert r.status_code == 200, r.text
    st = r.json()["status"]
    assert st["state"] == "paused" and st["paused_reason"] == "user", st
    assert api.get("/v1/vms/holdme").json()["status"]["state"] == "paused"
    patches = vm_state_patches(daemon, n)
    assert patches == ["Paused"], calls(daemon)[n:]

    # Pausing twice, or resuming what runs, is a state error.
    r = api.post("/v1/vms/holdme/pause")
    assert r.status_code == 409 and r.json()["code"] == "invalid_state", r.text

    r = api.post("/v1/vms/holdme/resume")
    assert r.status_code == 200, r.text
    st = r.json()["status"]
    assert st["state"] == "running" and st["paused_reason"] is None, st
    assert st["health"] == "ok", st
    patches = vm_state_patches(daemon, n)
    assert patches == ["Paused", "Resumed"], patches
    # The resume set the guest's clock through the agent (the double's
    # agent writes the time it was given to a file next to its socket).
    clocks = glob.glob(os.path.join(daemon.state, "**", "*.agent.clock"),
                       recursive=True)
    assert len(clocks) == 1, clocks
    with open(clocks[0]) as f:
        set_ns = int(f.read())
    assert abs(set_ns - time.time_ns()) < 10 * 10**9, (set_ns, time.time_ns())
    r = api.post("/v1/vms/holdme/resume")
    assert r.status_code == 409 and r.json()["code"] == "invalid_state", r.text
    api.delete_vm("holdme")


def test_pause_needs_a_running_vm(api):
    api.create_vm("cold", vcpus=1)
    api.action("cold", "stop")
    r = api.post("/v1/vms/cold/pause")
    assert r.status_code == 409 and "stopped" in r.json()["message"], r.text
    r = api.post("/v1/vms/nosuch/pause")
    assert r.status_code == 404, r.text
    r = api.post("/v1/vms/Bad_Name/pause")
    assert r.status_code == 400 and r.json()["code"] == "invalid_name", r.text
    api.delete_vm("cold")


def test_pause_waits_out_a_moment_but_not_an_operation(api, daemon):
    """Pause and resume wait a moment for the VM's lock (the monitor and
    health probes hold it briefly) but refuse a VM an operation holds."""
    api.create_vm("busy", vcpus=1)
    for _ in range(20):
        # Health probes take the lock now and then: never a refusal.
        r = api.post("/v1/vms/busy/pause")
        assert r.status_code == 200, r.text
        api.get("/v1/vms/busy/health")
        r = api.post("/v1/vms/busy/resume")
        assert r.status_code == 200, r.text
    api.action("busy", "stop")
    # A start whose guest is slow to answer holds the lock for seconds.
    daemon.set_faults({"agent_delay_ms": 6000})
    r = api.post("/v1/vms/busy/start")
    assert r.status_code == 202, r.text
    start = r.json()
    # Refused at once, naming the operation, even before the operation's
    # thread has taken the VM's lock.
    t0 = time.time()
    r = api.post("/v1/vms/busy/pause")
    took = time.time() - t0
    assert r.status_code == 409, r.text
    assert "busy with operation " + start["id"] in r.json()["message"], r.text
    assert took < 2.0, took
    r = api.post("/v1/vms/busy/resume")
    assert r.status_code == 409 and start["id"] in r.json()["message"], r.text
    assert api.wait_op(start)["state"] == "succeeded"
    daemon.clear_faults()
    api.delete_vm("busy")


def test_stop_restart_and_delete_from_paused(api, daemon):
    api.create_vm("frozen", vcpus=1)
    assert api.post("/v1/vms/frozen/pause").status_code == 200
    # A stop resumes the guest first, so that it shuts down cleanly.
    op = api.action("frozen", "stop")
    assert op["state"] == "succeeded", op
    vm = op["result"]
    assert vm["status"]["state"] == "stopped"
    assert vm["status"]["last_stop"]["result"] == "clean", vm["status"]

    api.action("frozen", "start")
    assert api.post("/v1/vms/frozen/pause").status_code == 200
    op = api.action("frozen", "restart")
    assert op["state"] == "succeeded", op
    assert op["result"]["status"]["state"] == "running"

    assert api.post("/v1/vms/frozen/pause").status_code == 200
    r = api.delete("/v1/vms/frozen", params={"wait": 60})
    assert r.json()["state"] == "failed", r.text
    assert r.json()["error"]["code"] == "vm_running"
    r = api.delete_vm("frozen", force=True)
    assert r.json()["state"] == "succeeded", r.text
    assert api.get("/v1/vms/frozen").status_code == 404


def test_bulk_pause_and_resume(api):
    api.create_vm("bulka", vcpus=1)
    api.create_vm("bulkb", vcpus=1)
    op = api.post("/v1/vms/actions", {"action": "pause",
                                      "names": ["bulka", "bulkb", "nosuch"]},
                  params={"wait": 30}).json()
    assert op["state"] == "succeeded", op
    res = {r["name"]: r for r in op["result"]["results"]}
    assert res["bulka"]["ok"] and res["bulkb"]["ok"], res
    assert res["bulka"]["vm"]["status"]["state"] == "paused"
    assert res["nosuch"]["error"]["code"] == "vm_not_found", res
    # A VM in another state fails on its own.
    op = api.post("/v1/vms/actions", {"action": "pause", "names": ["bulka"]},
                  params={"wait": 30}).json()
    assert op["result"]["results"][0]["error"]["code"] == "invalid_state"
    r = api.post("/v1/vms/actions", {"action": "resume", "names": ["bulka"],
                                     "timeout_s": 5})
    assert r.status_code == 400 and r.json()["details"]["field"] == \
        "timeout_s", r.text
    op = api.post("/v1/vms/actions", {"action": "resume",
                                      "names": ["bulka", "bulkb"]},
                  params={"wait": 30}).json()
    assert all(r["ok"] for r in op["result"]["results"]), op
    assert api.get("/v1/vms/bulkb").json()["status"]["state"] == "running"
    api.delete_vm("bulka")
    api.delete_vm("bulkb")
