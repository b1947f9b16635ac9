"""POST /v1/operations/{id}/cancel, GET /v1/vms/{name}/ssh and timeout_s
on bulk actions, at the HTTP level (every response is checked against
openapi.yaml by the client)."""
import os
import time

import pytest

from test_api import err_of, vm_files


@pytest.fixture
def slow_agent(daemon):
    daemon.set_faults({"agent_delay_ms": 3000})
    yield
    daemon.clear_faults()


def wait_stage(api, op, stage, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        cur = api.get("/v1/operations/" + op["id"]).json()
        if cur["stage"] == stage:
            return cur
        assert cur["state"] in ("pending", "running"), cur
        time.sleep(0.05)
    raise AssertionError("operation never reached %s" % stage)


def test_cancel_create_while_booting(api, daemon, slow_agent):
    op = api.post("/v1/vms", {"name": "cancel-create", "vcpus": 1}).json()
    wait_stage(api, op, "wait_health")
    vm_id = api.get("/v1/vms/cancel-create").json()["id"]
    r = api.post("/v1/operations/%s/cancel" % op["id"])
    assert r.status_code == 202, r.text
    assert r.json()["id"] == op["id"] and r.json()["state"] == "running"
    # Asking twice is harmless.
    assert api.post("/v1/operations/%s/cancel" % op["id"], {}).status_code in (202, 409)
    t0 = time.time()
    done = api.wait_op(op)
    assert time.time() - t0 < 2.5, "ends at the next slice of the wait"
    assert done["state"] == "failed" and done["error"]["code"] == "cancelled"
    assert done["error"]["status"] == 409
    # Undone: no record, no files, no VMM process.
    err_of(api.get("/v1/vms/cancel-create"), 404, "vm_not_found")
    assert not os.path.exists(vm_files(daemon, vm_id))
    assert not [p for p in daemon.vmm_pids()
                if vm_id in open("/proc/%d/cmdline" % p, "rb").read().decode(
                    errors="replace")]
    err_of(api.post("/v1/operations/%s/cancel" % op["id"]), 409, "invalid_state")


def test_cancel_queued_action_does_nothing(api, daemon):
    api.create_vm("cancel-q", vcpus=1)
    api.action("cancel-q", "stop")
    daemon.set_faults({"agent_delay_ms": 2000})
    try:
        start = api.post("/v1/vms/cancel-q/start").json()
        wait_stage(api, start, "wait_health")
        # The stop waits for the start (one action per VM at a time).
        stop = api.post("/v1/vms/cancel-q/stop").json()
        assert api.post("/v1/operations/%s/cancel" % stop["id"]).status_code == 202
        assert api.wait_op(start)["state"] == "succeeded"
        stopped = api.wait_op(stop)
        assert stopped["state"] == "failed"
        assert stopped["error"]["code"] == "cancelled"
        vm = api.get("/v1/vms/cancel-q").json()
        assert vm["status"]["state"] == "running", vm
    finally:
        daemon.clear_faults()
        api.delete_vm("cancel-q")


def test_cancel_start_leaves_vm_stopped(api, daemon):
    api.create_vm("cancel-start", vcpus=1)
    api.action("cancel-start", "stop")
    daemon.set_faults({"agent_delay_ms": 3000})
    try:
        op = api.post("/v1/vms/cancel-start/start").json()
        wait_stage(api, op, "wait_health")
        api.post("/v1/operations/%s/cancel" % op["id"])
        done = api.wait_op(op)
        assert done["error"]["code"] == "cancelled", done
        vm = api.get("/v1/vms/cancel-start").json()
        assert vm["status"]["state"] == "stopped"
        assert vm["status"]["pid"] is None
        assert vm["status"]["last_error"] is None, "a cancel is not a VM error"
        daemon.clear_faults()
        assert api.action("cancel-start", "start")["state"] == "succeeded"
    finally:
        daemon.clear_faults()
        api.delete_vm("cancel-start")


def test_cancel_errors(api):
    err_of(api.post("/v1/operations/op-0000000000000000/cancel"), 404,
           "operation_not_found")
    op = api.post("/v1/vms", {"name": "cancel-done", "vcpus": 1},
                  params={"wait": 60}).json()
    err_of(api.post("/v1/operations/%s/cancel" % op["id"], {"why": "x"}), 400,
           "unknown_field")
    err_of(api.post("/v1/operations/%s/cancel" % op["id"]), 409, "invalid_state")
    api.delete_vm("cancel-done")


def test_vm_ssh_route(api, daemon):
    api.create_vm("sshy", vcpus=1)
    key = os.path.join(daemon.runtime, "id_ed25519")
    try:
        # The bundle has no key yet.
        body = err_of(api.get("/v1/vms/sshy/ssh"), 409, "image_unavailable")
        assert body["hint"]
        with open(key, "w") as f:
            f.write("key\n")
        vm = api.get("/v1/vms/sshy").json()
        s = api.get("/v1/vms/sshy/ssh").json()
        assert s == {"name": "sshy", "id": vm["id"], "user": "root",
                     "host": vm["status"]["ip"], "port": 22,
                     "key_path": os.path.realpath(key),
                     "known_hosts_path": os.path.join(
                         os.path.realpath(vm_files(daemon, vm["id"])),
                         "known_hosts"),
                     # The test image has no sshd: no keys made for it.
                     "host_keys": []}
        api.action("sshy", "stop")
        body = err_of(api.get("/v1/vms/sshy/ssh"), 409, "invalid_state")
        assert "banger vm start sshy" in body["hint"]
        err_of(api.get("/v1/vms/nosuch/ssh"), 404, "vm_not_found")
        err_of(api.get("/v1/vms/Bad_Name/ssh"), 400, "invalid_name")
    finally:
        if os.path.exists(key):
            os.unlink(key)
        api.delete_vm("sshy")


def test_bulk_timeout_s(api, daemon):
    for n in ("bto-a", "bto-b"):
        api.create_vm(n, vcpus=1)
    err_of(api.post("/v1/vms/actions", {"action": "start", "names": ["bto-a"],
                                        "timeout_s": 1}), 400, "invalid_request")
    err_of(api.post("/v1/vms/actions", {"action": "stop", "names": ["bto-a"],
                                        "timeout_s": 601}), 400, "invalid_request")
    # Guests that ignore the shutdown request: the grace period decides
    # how long a stop takes (the configured one is 2 s).
    daemon.set_faults({"ignore_ctrl_alt_del": True, "ignore_poweroff": True})
    try:
        api.action("bto-a", "restart")
        api.action("bto-b", "restart")
        t0 = time.time()
        r = api.post("/v1/vms/actions", {"action": "stop",
                                         "names": ["bto-a", "bto-b"],
                                         "timeout_s": 0}, params={"wait": 60})
        fast = time.time() - t0
        assert all(x["ok"] for x in r.json()["result"]["results"]), r.text
        api.action("bto-a", "start")
        t0 = time.time()
        r = api.post("/v1/vms/actions", {"action": "stop", "names": ["bto-a"]},
                     params={"wait": 60})
        slow = time.time() - t0
        assert r.json()["result"]["results"][0]["ok"], r.text
        assert slow >= 2.0 and fast < 1.9, (fast, slow)
    finally:
        daemon.clear_faults()
        for n in ("bto-a", "bto-b"):
            api.delete_vm(n)
