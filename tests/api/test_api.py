"""HTTP-level tests of bangerd against the Firecracker test double.

Every JSON response is validated against openapi.yaml by the client."""
import concurrent.futures
import json
import os
import signal
import subprocess
import time

import pytest


def err_of(r, status, code):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["message"]
    return body


def vm_files(daemon, vm_id):
    return os.path.join(daemon.state, "vms", vm_id)


# ---- system routes ----

def test_root_and_healthz(api):
    r = api.get("/v1")
    assert r.status_code == 200
    assert r.json()["api_version"] == "1"
    r = api.get("/v1/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_doctor_reports_checks(api):
    r = api.get("/v1/doctor")
    assert r.status_code == 200
    names = {c["name"] for c in r.json()["checks"]}
    assert {"kvm", "vmm_firecracker", "kernel", "rootfs", "agent",
            "legacy_keys"} <= names
    fc = [c for c in r.json()["checks"] if c["name"] == "vmm_firecracker"][0]
    assert fc["status"] == "ok", fc
    # This host has ssh-keygen and debugfs (make deps): host keys are
    # made for new VMs.
    hk = [c for c in r.json()["checks"] if c["name"] == "host_keys"][0]
    assert hk["status"] == "ok" and "pinned" in hk["message"], hk


def test_unknown_route_and_method(api):
    err_of(api.get("/v1/nope"), 404, "route_not_found")
    r = api.request("PUT", "/v1/vms", validate_body=False)
    body = err_of(r, 405, "method_not_allowed")
    assert "GET" in r.headers["Allow"] and "POST" in r.headers["Allow"]
    assert body["details"]["allow"]


# ---- the whole lifecycle ----

def fc_calls(daemon, skip=0):
    if not os.path.exists(daemon.fc_log):
        return []
    with open(daemon.fc_log) as f:
        return [json.loads(line) for line in f][skip:]


def test_vm_lifecycle(api, daemon):
    before = len(fc_calls(daemon))
    op = api.post("/v1/vms", {"name": "life", "vcpus": 1, "memory_mib": 256})
    assert op.status_code == 202, op.text
    assert op.headers["Location"] == "/v1/operations/" + op.json()["id"]
    assert op.json()["kind"] == "vm.create"
    done = api.wait_op(op.json())
    assert done["state"] == "succeeded", done
    vm = done["result"]
    assert vm["status"]["state"] == "running"
    assert vm["status"]["vmm"] == "firecracker"
    assert vm["status"]["pid"] > 0
    assert vm["spec"] == {"image": "default", "vcpus": 1, "memory_mib": 256,
                          "disk_gib": 8, "nat": False, "ports": [],
                          "limits": {}, "mounts": []}
    vmdir = vm_files(daemon, vm["id"])
    # Disks: the rootfs copy is sparse, the work disk grown to 8 GiB.
    st = os.stat(os.path.join(vmdir, "rootfs.ext4"))
    assert st.st_blocks * 512 < st.st_size
    assert os.stat(os.path.join(vmdir, "work.ext4")).st_size == 8 << 30

    # The double saw Firecracker's boot sequence in order.
    paths = [c["method"] + " " + c["path"] for c in fc_calls(daemon, before)]
    seq = ["PUT /logger", "PUT /machine-config", "PUT /boot-source",
           "PUT /drives/rootfs", "PUT /drives/work", "PUT /vsock",
           "PUT /actions"]
    pos = [paths.index(s) for s in seq]
    assert pos == sorted(pos), paths

    r = api.get("/v1/vms")
    assert "life" in [v["name"] for v in r.json()["vms"]]
    r = api.get("/v1/vms/life/health")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["protocol"] == "http", h
    assert h["agent"]["agent_version"]
    # What bangerd may ask of the agent, from its own list.
    assert h["agent_protocol"] == 7, h
    assert h["capabilities"] == ["health", "power", "clock", "identity", "exec",
                                 "files", "forward", "exec_tty"], h

    r = api.get("/v1/vms/life/console", validate=True)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")

    stopped = api.action("life", "stop")
    assert stopped["state"] == "succeeded", stopped
    assert stopped["result"]["status"]["state"] == "stopped"
    assert stopped["result"]["status"]["pid"] is None
    assert not os.path.exists(os.path.join(vmdir, "fc.sock"))
    assert os.path.exists(os.path.join(vmdir, "work.ext4")), "disks are kept"
    h = api.get("/v1/vms/life/health").json()
    assert h["status"] == "unreachable" and h["reason"] == "vm_not_running"
    assert h["agent_protocol"] is None and h["capabilities"] is None, h

    started = api.action("life", "start")
    assert started["result"]["status"]["state"] == "running"
    restarted = api.action("life", "restart")
    assert restarted["state"] == "succeeded"
    assert restarted["result"]["status"]["pid"] != started["result"]["status"]["pid"]

    err_of(api.delete("/v1/vms/life"), 409, "vm_running")
    r = api.delete_vm("life", force=True)
    assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
    err_of(api.get("/v1/vms/life"), 404, "vm_not_found")
    assert not os.path.exists(vmdir)


def test_patch_stopped_and_running(api):
    api.create_vm("patchy", vcpus=1)
    r = api.patch("/v1/vms/patchy", {"nat": True})
    assert r.status_code == 200 and r.json()["spec"]["nat"] is True
    err_of(api.patch("/v1/vms/patchy", {"vcpus": 2}), 409, "vm_running")
    api.action("patchy", "stop")
    r = api.patch("/v1/vms/patchy", {"vcpus": 4, "memory_mib": 512, "disk_gib": 9})
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["vcpus"] == 4 and r.json()["spec"]["disk_gib"] == 9
    err_of(api.patch("/v1/vms/patchy", {"disk_gib": 2}), 400, "invalid_request")
    assert api.delete_vm("patchy").json()["state"] == "succeeded"


def test_operations_list_and_wait(api):
    op = api.post("/v1/vms", {"name": "opwait", "vcpus": 1}).json()
    r = api.get("/v1/operations/" + op["id"], params={"wait": 30})
    assert r.json()["state"] == "succeeded"
    ids = [o["id"] for o in api.get("/v1/operations").json()["operations"]]
    assert op["id"] in ids
    err_of(api.get("/v1/operations/op-nope"), 404, "operation_not_found")
    err_of(api.get("/v1/operations/" + op["id"], params={"wait": "soon"}), 400,
           "invalid_request")
    api.delete_vm("opwait")


def test_bulk_actions(api):
    for n in ("bulk-a", "bulk-b"):
        api.create_vm(n, vcpus=1)
    r = api.post("/v1/vms/actions", {"action": "stop",
                                     "names": ["bulk-a", "bulk-b", "bulk-x"]},
                 params={"wait": 60})
    assert r.status_code == 200, r.text
    res = {x["name"]: x for x in r.json()["result"]["results"]}
    assert res["bulk-a"]["ok"] and res["bulk-b"]["ok"]
    assert res["bulk-a"]["vm"]["status"]["state"] == "stopped"
    assert not res["bulk-x"]["ok"]
    assert res["bulk-x"]["error"]["code"] == "vm_not_found"
    r = api.post("/v1/vms/actions", {"action": "delete",
                                     "names": ["bulk-a", "bulk-b"]},
                 params={"wait": 60})
    assert all(x["ok"] for x in r.json()["result"]["results"])
    err_of(api.post("/v1/vms/actions", {"action": "explode", "names": ["a"]}),
           400, "invalid_request")
    err_of(api.post("/v1/vms/actions", {"action": "stop", "names": ["a", "a"]}),
           400, "invalid_request")
    err_of(api.post("/v1/vms/actions", {"action": "stop", "names": ["A b"]}),
           400, "invalid_name")


# ---- images ----

def test_images(api, daemon):
    r = api.get("/v1/images")
    default = [i for i in r.json()["images"] if i["default"]]
    assert len(default) == 1 and default[0]["name"] == "default"
    assert default[0]["source"] == "bundle" and default[0]["available"]

    rootfs, seed = daemon.make_image("local")
    r = api.post("/v1/images", {"name": "local", "rootfs": rootfs, "work_seed": seed})
    assert r.status_code == 201, r.text
    assert r.json()["managed"] is False and r.json()["default"] is False
    rootfs2, _ = daemon.make_image("local2")
    r = api.post("/v1/images", {"name": "local", "rootfs": rootfs2})
    assert r.status_code == 200 and r.json()["rootfs"] == rootfs2
    assert r.json()["work_seed"] is None
    assert api.get("/v1/images/default").json()["default"] is True

    api.create_vm("imguser", image="local", vcpus=1)
    err_of(api.delete("/v1/images/local"), 409, "image_in_use")
    api.delete_vm("imguser")
    r = api.delete("/v1/images/local")
    assert r.status_code == 204
    assert os.path.exists(rootfs2), "unmanaged files are never deleted"
    err_of(api.get("/v1/images/local"), 404, "image_not_found")
    err_of(api.delete("/v1/images/default"), 409, "image_default")
    err_of(api.post("/v1/images", {"name": "default", "rootfs": rootfs}), 409,
           "image_default")


def test_image_register_bad_paths(api, daemon):
    err_of(api.post("/v1/images", {"name": "rel", "rootfs": "rootfs.ext4"}), 400,
           "invalid_path")
    err_of(api.post("/v1/images", {"name": "gone", "rootfs": "/nonexistent/x.ext4"}),
           400, "invalid_path")
    # An existing path that is not an image (tests/api/test_image_inputs.py
    # has every kind).
    err_of(api.post("/v1/images", {"name": "dir", "rootfs": daemon.dir}), 400,
           "invalid_image")
    err_of(api.post("/v1/images", {"name": "dots", "rootfs": "/tmp/../etc/x"}), 400,
           "invalid_path")
    err_of(api.post("/v1/images", {"name": "nopath"}), 400, "invalid_request")


# ---- bad input ----

@pytest.mark.parametrize("name", ["../x", "a b", "x" * 64, "Web", "-web",
                                  "web-", "wéb", "", "a_b", "a.b"])
def test_bad_vm_names(api, name):
    err_of(api.post("/v1/vms", {"name": name}), 400, "invalid_name")


@pytest.mark.parametrize("field,value", [
    ("vcpus", 0), ("vcpus", -1), ("vcpus", 33), ("vcpus", 10 ** 12),
    ("vcpus", "2"), ("vcpus", 2.5), ("memory_mib", 0), ("memory_mib", -5),
    ("memory_mib", 64), ("memory_mib", 10 ** 9), ("disk_gib", 0),
    ("disk_gib", 100000), ("nat", "yes"), ("image", 7),
])
def test_bad_create_values(api, field, value):
    # A value of the wrong type is invalid_field; one out of range,
    # invalid_request.
    wrong_type = isinstance(value, (str, float)) or \
        (field == "image" and not isinstance(value, str))
    err_of(api.post("/v1/vms", {"name": "badval", field: value}), 400,
           "invalid_field" if wrong_type else "invalid_request")
    err_of(api.get("/v1/vms/badval"), 404, "vm_not_found")


def test_malformed_and_unknown(api):
    err_of(api.request("POST", "/v1/vms", data="{not json",
                       headers={"Content-Type": "application/json"}),
           400, "invalid_json")
    err_of(api.request("POST", "/v1/vms", data="[1,2]",
                       headers={"Content-Type": "application/json"}),
           400, "invalid_json")
    err_of(api.request("POST", "/v1/vms", data="",
                       headers={"Content-Type": "application/json"}),
           400, "invalid_json")
    body = err_of(api.post("/v1/vms", {"name": "u", "colour": "red"}), 400,
                  "unknown_field")
    assert body["details"]["field"] == "colour"
    err_of(api.post("/v1/vms", {"vcpus": 1}), 400, "invalid_request")
    err_of(api.request("POST", "/v1/vms", data='{"name":"x"}',
                       headers={"Content-Type": "text/plain"}),
           415, "unsupported_media_type")
    err_of(api.post("/v1/vms/x/stop", {"grace": 1}), 400, "unknown_field")


def test_body_too_large(api):
    big = '{"name": "big", "pad": "' + "x" * (2 << 20) + '"}'
    r = api.request("POST", "/v1/vms", data=big,
                    headers={"Content-Type": "application/json"})
    err_of(r, 413, "payload_too_large")
    # The daemon is still fine afterwards.
    assert api.get("/v1/healthz").status_code == 200


def test_unknown_image_and_not_found(api):
    err_of(api.post("/v1/vms", {"name": "noimg", "image": "missing"}), 404,
           "image_not_found")
    err_of(api.get("/v1/vms/ghost"), 404, "vm_not_found")
    err_of(api.post("/v1/vms/ghost/start"), 404, "vm_not_found")
    err_of(api.get("/v1/vms/ghost/health"), 404, "vm_not_found")
    err_of(api.delete("/v1/vms/ghost"), 404, "vm_not_found")
    err_of(api.patch("/v1/vms/ghost", {"nat": True}), 404, "vm_not_found")
    err_of(api.get("/v1/vms/ghost", params={}), 404, "vm_not_found")
    err_of(api.delete("/v1/vms/ghost", params={"force": "maybe"}), 400,
           "invalid_request")


def test_duplicate_name(api):
    api.create_vm("dupe", vcpus=1)
    err_of(api.post("/v1/vms", {"name": "dupe"}), 409, "vm_exists")
    api.delete_vm("dupe")


# ---- concurrency ----

def test_twenty_concurrent_creates(api, daemon):
    names = ["par-%02d" % i for i in range(20)]

    def create(n):
        r = api.post("/v1/vms", {"name": n, "vcpus": 1, "memory_mib": 128},
                     params={"wait": 120}, timeout=180)
        return r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        results = list(ex.map(create, names))
    for status, op in results:
        assert status == 200 and op["state"] == "succeeded", op
    vms = {v["name"]: v for v in api.get("/v1/vms").json()["vms"]}
    ids = {vms[n]["id"] for n in names}
    pids = {vms[n]["status"]["pid"] for n in names}
    assert len(ids) == 20 and len(pids) == 20
    r = api.post("/v1/vms/actions", {"action": "delete", "names": names,
                                     "force": True}, params={"wait": 120},
                 timeout=180)
    assert all(x["ok"] for x in r.json()["result"]["results"]), r.text


# ---- rollback under injected faults ----

def assert_nothing_left(api, daemon, name):
    err_of(api.get("/v1/vms/" + name), 404, "vm_not_found")
    left = os.listdir(os.path.join(daemon.state, "vms"))
    assert left == [] or all(api_vm_has_dir(api, d) for d in left), left
    time.sleep(0.2)
    assert daemon.vmm_pids() == [] or all_owned(api, daemon), daemon.vmm_pids()


def api_vm_has_dir(api, vm_id):
    return vm_id in {v["id"] for v in api.get("/v1/vms").json()["vms"]}


def all_owned(api, daemon):
    running = {v["status"]["pid"] for v in api.get("/v1/vms").json()["vms"]}
    return set(daemon.vmm_pids()) <= running


@pytest.mark.parametrize("faults,code", [
    ({"fail": "PUT /machine-config"}, "vmm_error"),
    ({"fail": "PUT /drives/work", "fail_message": "drive exploded"}, "vmm_error"),
    ({"fail": "PUT /vsock"}, "vmm_error"),
    ({"fail": "PUT /actions"}, "vmm_error"),
    ({"exit_at_start": 1}, "vmm_error"),
    ({"die_after_start": True, "agent_delay_ms": 2000}, "vmm_error"),
    ({"no_agent": True}, "timeout"),
    ({"listen_delay_ms": 300}, "ok"),
])
def test_create_rollback(api, daemon, faults, code):
    name = "fault"
    daemon.set_faults(faults)
    try:
        r = api.post("/v1/vms", {"name": name, "vcpus": 1}, params={"wait": 60})
    finally:
        daemon.clear_faults()
    op = r.json()
    if op["state"] == "succeeded":
        api.delete_vm(name)
    if code == "ok":
        assert op["state"] == "succeeded", op
        return
    assert op["state"] == "failed", op
    if code:
        assert op["error"]["code"] == code, op["error"]
    if "fail_message" in faults:
        assert "drive exploded" in op["error"]["message"]
    assert_nothing_left(api, daemon, name)


def test_start_failure_keeps_vm_with_last_error(api, daemon):
    api.create_vm("startfail", vcpus=1)
    api.action("startfail", "stop")
    daemon.set_faults({"fail": "PUT /boot-source", "fail_message": "bad kernel"})
    try:
        op = api.post("/v1/vms/startfail/start", params={"wait": 60}).json()
    finally:
        daemon.clear_faults()
    assert op["state"] == "failed" and op["error"]["code"] == "vmm_error"
    vm = api.get("/v1/vms/startfail").json()
    assert vm["status"]["state"] == "stopped"
    assert "bad kernel" in vm["status"]["last_error"]
    assert vm["status"]["pid"] is None
    api.action("startfail", "start")
    assert api.get("/v1/vms/startfail").json()["status"]["last_error"] is None
    api.delete_vm("startfail")


def test_stop_escalates_when_guest_ignores_ctrl_alt_del(api, daemon):
    daemon.set_faults({"ignore_ctrl_alt_del": True, "ignore_poweroff": True})
    try:
        api.create_vm("stubborn", vcpus=1)
    finally:
        daemon.clear_faults()
    pid = api.get("/v1/vms/stubborn").json()["status"]["pid"]
    t = time.time()
    op = api.post("/v1/vms/stubborn/stop", {"timeout_s": 1}, params={"wait": 30}).json()
    assert op["state"] == "succeeded"
    assert time.time() - t >= 1.0
    assert not os.path.exists("/proc/%d" % pid) or \
        open("/proc/%d/stat" % pid).read().split()[2] == "Z"
    api.delete_vm("stubborn")


def test_vmm_crash_is_noticed(api, daemon):
    vm = api.create_vm("crashy", vcpus=1)["result"]
    os.kill(vm["status"]["pid"], signal.SIGKILL)
    deadline = time.time() + 5
    while time.time() < deadline:
        st = api.get("/v1/vms/crashy").json()["status"]
        if st["state"] == "stopped":
            break
        time.sleep(0.1)
    assert st["state"] == "stopped" and st["last_error"], st
    api.delete_vm("crashy")


# ---- daemon restart ----

def test_restart_adopts_running_vms(fresh_daemon):
    d = fresh_daemon.start()
    api = d.client
    vm = api.create_vm("keep", vcpus=1)["result"]
    api.create_vm("halted", vcpus=1)
    api.action("halted", "stop")
    assert d.stop(signal.SIGTERM) == 0
    assert os.path.exists("/proc/%d" % vm["status"]["pid"]), "VMs survive SIGTERM"
    assert not os.path.exists(d.socket)
    d.start()
    got = api.get("/v1/vms/keep").json()
    assert got["status"]["state"] == "running"
    assert got["status"]["pid"] == vm["status"]["pid"]
    assert api.get("/v1/vms/keep/health").json()["status"] == "ok"
    assert api.get("/v1/vms/halted").json()["status"]["state"] == "stopped"

    # kill -9 the daemon and the VMM: the VM comes back stopped.
    d.stop(signal.SIGKILL)
    os.kill(vm["status"]["pid"], signal.SIGKILL)
    time.sleep(0.2)
    d.start()
    got = api.get("/v1/vms/keep").json()
    assert got["status"]["state"] == "stopped"
    assert got["status"]["last_error"]
    api.action("keep", "start")
    for n in ("keep", "halted"):
        assert api.delete_vm(n).json()["state"] == "succeeded"
    assert d.vmm_pids() == []


def test_second_daemon_refused(daemon):
    import subprocess as sp
    r = sp.run([daemon.bangerd], env=daemon.env, capture_output=True, text=True,
               timeout=10)
    assert r.returncode != 0
    assert "another bangerd" in r.stderr


def test_config_check_prints_legacy_keys(tmp_path, daemon):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"ping_port": 2048, "ping_helper": "/x/agent"}))
    r = subprocess.run([daemon.bangerd, "-n", "--config", str(cfg)],
                       env=daemon.env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["agent_port"] == 2048 and out["agent"] == "/x/agent"
    assert "config.json:ping_port" in out["deprecated_keys"]
    cfg.write_text(json.dumps({"bogus": 1}))
    r = subprocess.run([daemon.bangerd, "-n", "--config", str(cfg)],
                       env=daemon.env, capture_output=True, text=True)
    assert r.returncode != 0 and "unknown key 'bogus'" in r.stderr


def test_events_stream(api, daemon):
    import threading
    got = []

    def listen():
        r = api.session.get(api.base + "/v1/events", params={"vm": "evt"},
                            stream=True, timeout=30)
        assert r.headers["Content-Type"].startswith("text/event-stream")
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                got.append(line[7:])
            if "vm.deleted" in got:
                break
        r.close()

    t = threading.Thread(target=listen)
    t.start()
    time.sleep(0.3)
    api.create_vm("evt", vcpus=1)
    api.delete_vm("evt")
    t.join(20)
    assert "vm.created" in got and "vm.state" in got and "vm.deleted" in got, got
    assert "operation.finished" in got


# ---- the remaining error codes ----

def test_image_unavailable(api, daemon):
    rootfs, seed = daemon.make_image("vanish")
    assert api.post("/v1/images", {"name": "vanish", "rootfs": rootfs}).status_code == 201
    os.unlink(rootfs)
    assert api.get("/v1/images/vanish").json()["available"] is False
    body = err_of(api.post("/v1/vms", {"name": "novanish", "image": "vanish"}), 409,
                  "image_unavailable")
    assert body["hint"]
    err_of(api.get("/v1/vms/novanish"), 404, "vm_not_found")
    assert api.delete("/v1/images/vanish").status_code == 204


def test_limit_reached(fresh_daemon):
    fresh_daemon.reconfigure(config={"max_vms": 1})
    d = fresh_daemon.start()
    d.client.create_vm("only", vcpus=1)
    body = err_of(d.client.post("/v1/vms", {"name": "second"}), 429, "limit_reached")
    assert "max_vms" in body["hint"]
    d.client.delete_vm("only")


def test_vmm_unavailable(fresh_daemon):
    fresh_daemon.reconfigure(bundle_extra={"firecracker": "/nonexistent/firecracker"})
    d = fresh_daemon.start()
    api = d.client
    body = err_of(api.post("/v1/vms", {"name": "novmm"}), 503, "vmm_unavailable")
    assert "firecracker" in body["message"] and body["hint"]
    err_of(api.get("/v1/vms/novmm"), 404, "vm_not_found")
    checks = {c["name"]: c for c in api.get("/v1/doctor").json()["checks"]}
    assert checks["vmm_firecracker"]["status"] == "fail"
    assert checks["vmm_firecracker"]["fix"]


def test_interrupted_operation_is_failed_after_restart(fresh_daemon):
    """kill -9 of bangerd in the middle of a create: after the restart the
    operation is failed (internal), the half-made VM, its files and its
    process are gone."""
    d = fresh_daemon.start()
    d.set_faults({"agent_delay_ms": 5000})
    op = d.client.post("/v1/vms", {"name": "halfway", "vcpus": 1}).json()
    deadline = time.time() + 5
    while time.time() < deadline:
        if d.client.get("/v1/operations/" + op["id"]).json()["stage"] == "wait_health":
            break
        time.sleep(0.02)
    d.stop(signal.SIGKILL)
    d.clear_faults()
    d.start()
    got = d.client.get("/v1/operations/" + op["id"]).json()
    assert got["state"] == "failed" and got["error"]["code"] == "internal", got
    err_of(d.client.get("/v1/vms/halfway"), 404, "vm_not_found")
    assert os.listdir(os.path.join(d.state, "vms")) == []
    time.sleep(0.2)
    assert d.vmm_pids() == []


def _cat_ext4(image, path):
    r = subprocess.run(["/sbin/debugfs", "-R", "cat " + path, image],
                       capture_output=True, text=True)
    return r.stdout


def test_work_disk_follows_its_seed(api, daemon):
    """Work disks come from a cached, grown copy of the seed; a changed seed
    must not be served from the cache."""
    from daemon import make_ext4
    d = os.path.join(daemon.dir, "seedcheck")
    os.makedirs(d, exist_ok=True)
    rootfs = make_ext4(os.path.join(d, "rootfs.ext4"), 16)
    seed = os.path.join(d, "seed.ext4")
    make_ext4(seed, 8, {".marker": "one\n"})
    api.post("/v1/images", {"name": "seeded", "rootfs": rootfs, "work_seed": seed})
    vm1 = api.create_vm("seed-a", image="seeded", vcpus=1, disk_gib=2)["result"]
    os.unlink(seed)
    make_ext4(seed, 8, {".marker": "two\n"})
    vm2 = api.create_vm("seed-b", image="seeded", vcpus=1, disk_gib=2)["result"]
    w1 = os.path.join(vm_files(daemon, vm1["id"]), "work.ext4")
    w2 = os.path.join(vm_files(daemon, vm2["id"]), "work.ext4")
    assert os.stat(w1).st_size == os.stat(w2).st_size == 2 << 30
    assert _cat_ext4(w1, "/.marker") == "one\n"
    assert _cat_ext4(w2, "/.marker") == "two\n"
    r = subprocess.run(["/sbin/e2fsck", "-fn", w2], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for n in ("seed-a", "seed-b"):
        api.delete_vm(n)
    api.delete("/v1/images/seeded")
