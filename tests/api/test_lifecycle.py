"""A lifecycle users can trust, against the Firecracker test double: a stop
asks the guest agent first and says how it ended; "running" waits for the
guest's readiness checks.

The double runs the real agent.  Its POST /poweroff comes back to the double
as the guest's poweroff or reboot: a reboot ends the double like
Firecracker's reset exit, a poweroff halts the "guest" and the double keeps
running, as Firecracker does on x86.  Faults (tests/fakes/firecracker.c)
make a guest ignore the agent's request or Ctrl-Alt-Del, and set the
agent's readiness checks.
"""
import json
import os
import socket
import threading
import time

import pytest

from bangerlib import ROOT

OLD_AGENT = os.path.join(ROOT, "tests", "fakes", "old_agent.py")


def fc_calls(daemon, vm_id):
    """The double's API calls for one VM, as (method, path, body)."""
    out = []
    with open(daemon.fc_log) as f:
        for line in f:
            rec = json.loads(line)
            if vm_id in json.dumps(rec):
                out.append(rec)
    return out


def sent_ctrl_alt_del(daemon, vm_id):
    return any("SendCtrlAltDel" in json.dumps(c) for c in fc_calls(daemon, vm_id))


def events_of(api, name, want, timeout=10):
    """Replay the event ring for one VM until want(event) holds."""
    got = []
    r = api.session.get(api.base + "/v1/events", params={"vm": name},
                        headers={"Last-Event-ID": "0"}, stream=True,
                        timeout=timeout)
    deadline = time.time() + timeout
    try:
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                ev = json.loads(line[6:])
                got.append(ev)
                if want(ev):
                    return got
            if time.time() > deadline:
                break
    finally:
        r.close()
    raise AssertionError("no matching event in %r" % got)


def stop_event(ev):
    return ev["type"] == "vm.state" and ev["data"]["state"] == "stopped" \
        and "stop" in ev["data"]


def test_stop_asks_the_agent_and_is_clean(api, daemon):
    vm = api.create_vm("polite", vcpus=1)["result"]
    t0 = time.time()
    op = api.action("polite", "stop")
    took = time.time() - t0
    assert op["state"] == "succeeded", op
    ls = op["result"]["status"]["last_stop"]
    assert ls["result"] == "clean" and ls["method"] == "agent", ls
    assert ls["summary"] == "clean"
    # Well within the grace (2 s here), and no Ctrl-Alt-Del was needed:
    # on Firecracker the agent was asked for a reboot, which ends it.
    assert took < 1.5, took
    assert not sent_ctrl_alt_del(daemon, vm["id"])
    ev = events_of(api, "polite", stop_event)[-1]
    assert ev["data"]["stop"]["result"] == "clean"
    assert ev["data"]["stop"]["method"] == "agent"
    # vm show says it too.
    out = daemon.run_banger("vm", "show", "polite")
    assert out.returncode == 0, out.stderr
    assert "last_stop" in out.stdout and "clean (agent" in out.stdout, out.stdout
    api.delete_vm("polite")


def test_stop_falls_back_to_ctrl_alt_del(api, daemon):
    """An agent that takes the request but whose guest does not go down:
    after two thirds of the grace, the VMM's own signal."""
    daemon.set_faults({"ignore_poweroff": True})
    try:
        vm = api.create_vm("deafguest", vcpus=1)["result"]
    finally:
        daemon.clear_faults()
    op = api.action("deafguest", "stop")
    ls = op["result"]["status"]["last_stop"]
    # Asked through the agent, ended by Ctrl-Alt-Del: still clean.
    assert ls["result"] == "clean", ls
    assert sent_ctrl_alt_del(daemon, vm["id"])
    assert ls["duration_ms"] >= 1000, ls
    api.delete_vm("deafguest")


def test_forced_stop_is_reported_and_doctor_warns(api, daemon):
    rootfs, seed = daemon.make_image("stubimg")
    assert api.post("/v1/images", {"name": "stubimg", "rootfs": rootfs,
                                   "work_seed": seed}).status_code == 201
    daemon.set_faults({"ignore_poweroff": True, "ignore_ctrl_alt_del": True})
    try:
        api.create_vm("mule", vcpus=1, image="stubimg")
    finally:
        daemon.clear_faults()
    doc = api.get("/v1/doctor").json()
    assert not [c for c in doc["checks"] if c["name"] == "clean_stops"
                and "stubimg" in c["message"]]
    op = api.post("/v1/vms/mule/stop", {"timeout_s": 1},
                  params={"wait": 30}).json()
    assert op["state"] == "succeeded", op
    ls = op["result"]["status"]["last_stop"]
    assert ls["result"] == "forced" and ls["method"] == "kill", ls
    assert ls["summary"] == "forced after 1 s", ls
    ev = events_of(api, "mule", stop_event)[-1]
    assert ev["data"]["stop"]["summary"] == "forced after 1 s"
    out = daemon.run_banger("vm", "show", "mule")
    assert "forced after 1 s (kill)" in out.stdout, out.stdout
    warn = [c for c in api.get("/v1/doctor").json()["checks"]
            if c["name"] == "clean_stops" and "stubimg" in c["message"]]
    assert warn and warn[0]["status"] == "warn", warn
    assert "forced" in warn[0]["message"] and warn[0]["fix"]
    api.delete_vm("mule")
    assert api.delete("/v1/images/stubimg").status_code == 204


def test_old_agent_falls_back_to_the_vmm_signal(fresh_daemon):
    """An image whose agent predates POST /poweroff (404) and readiness
    (no "ready" field): it counts as ready, and a stop goes on to
    Ctrl-Alt-Del at once instead of waiting."""
    fresh_daemon.env["BANGER_FAKE_AGENT"] = OLD_AGENT
    d = fresh_daemon.start()
    api = d.client
    vm = api.create_vm("oldie", vcpus=1)["result"]
    assert vm["status"]["state"] == "running"
    assert vm["status"]["health"] == "ok"
    h = api.get("/v1/vms/oldie/health").json()
    assert h["status"] == "ok" and h["agent"]["protocol"] == 1, h
    # Protocol 1 without a list: bangerd assumes health only.
    assert h["agent_protocol"] == 1 and h["capabilities"] == ["health"], h
    # A resume still works; the clock is not asked of an agent without
    # the capability.
    assert api.post("/v1/vms/oldie/pause").status_code == 200
    r = api.post("/v1/vms/oldie/resume")
    assert r.status_code == 200 and r.json()["status"]["state"] == "running"
    with open(d.log) as f:
        assert "cannot set the clock" in f.read()
    t0 = time.time()
    op = api.action("oldie", "stop")
    ls = op["result"]["status"]["last_stop"]
    assert ls["result"] == "clean" and ls["method"] == "ctrl_alt_del", ls
    assert sent_ctrl_alt_del(d, vm["id"])
    assert time.time() - t0 < 1.5
    api.delete_vm("oldie")


def test_restart_reports_the_stop(api, daemon):
    api.create_vm("again", vcpus=1)
    op = api.action("again", "restart")
    st = op["result"]["status"]
    assert st["state"] == "running"
    assert st["last_stop"]["result"] == "clean", st
    api.delete_vm("again")


# ---- ready means ready ----

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_running_waits_for_readiness(fresh_daemon):
    """The guest's sshd check fails until something listens on its port:
    the create stays "starting" with the reason, and finishes only then."""
    d = fresh_daemon.start()
    api = d.client
    port = free_port()
    d.set_faults({"agent_ready": "sshd,workdisk", "agent_ssh_port": port})
    result = {}

    def create():
        result["r"] = api.post("/v1/vms", {"name": "slowssh", "vcpus": 1},
                               params={"wait": 30})

    t = threading.Thread(target=create)
    t.start()
    try:
        # bangerd is in its own network namespace; the double's agent runs
        # there too, so the listener must be made in that namespace.
        deadline = time.time() + 10
        h = None
        while time.time() < deadline:
            vm = api.get("/v1/vms/slowssh")
            if vm.status_code == 200 and vm.json()["status"]["health"] == "starting":
                h = api.get("/v1/vms/slowssh/health").json()
                if h["reason"] == "not_ready":
                    break
            time.sleep(0.1)
        assert h is not None and h["status"] == "starting", h
        assert h["detail"] == "sshd: nothing listens on port %d" % port, h
        out = d.run_banger("vm", "health", "slowssh")
        assert "detail" in out.stdout and \
            "sshd: nothing listens on port %d" % port in out.stdout, out.stdout
        assert api.get("/v1/vms/slowssh").json()["status"]["state"] == "creating"
        time.sleep(1)
        assert t.is_alive(), "the create finished before sshd listened"
        ev = events_of(api, "slowssh", lambda e: e["type"] == "vm.health"
                       and e["data"].get("reason") == "not_ready")[-1]
        assert ev["data"]["status"] == "starting"
        assert "sshd" in ev["data"]["detail"]
        listener = d.listen_tcp_in_netns(port)
        try:
            t.join(20)
            assert not t.is_alive()
            r = result["r"]
            assert r.status_code == 200, r.text
            st = r.json()["result"]["status"]
            assert st["state"] == "running" and st["health"] == "ok", st
        finally:
            listener.kill()
            listener.wait()
    finally:
        d.clear_faults()
        t.join(30)
    api.delete_vm("slowssh")


def test_never_ready_fails_with_not_ready(fresh_daemon):
    fresh_daemon.reconfigure(config={"health_timeout_s": 2})
    d = fresh_daemon.start()
    api = d.client
    port = free_port()
    d.set_faults({"agent_ready": "sshd", "agent_ssh_port": port})
    try:
        r = api.post("/v1/vms", {"name": "nossh", "vcpus": 1}, params={"wait": 30})
    finally:
        d.clear_faults()
    op = r.json()
    assert op["state"] == "failed", op
    err = op["error"]
    assert err["code"] == "not_ready", err
    assert "sshd: nothing listens on port %d" % port in err["message"], err
    assert err["status"] == 504
    # A failed create leaves nothing behind.
    assert api.get("/v1/vms/nossh").status_code == 404
    assert not d.vmm_pids()


def test_start_not_ready_cli_message(fresh_daemon):
    fresh_daemon.reconfigure(config={"health_timeout_s": 2})
    d = fresh_daemon.start()
    api = d.client
    api.create_vm("later", vcpus=1)
    api.action("later", "stop")
    port = free_port()
    d.set_faults({"agent_ready": "sshd", "agent_ssh_port": port})
    try:
        out = d.run_banger("vm", "start", "later")
    finally:
        d.clear_faults()
    assert out.returncode != 0
    assert "did not become ready in time: sshd: nothing listens on port %d" \
        % port in out.stderr, out.stderr
    vm = api.get("/v1/vms/later").json()
    assert vm["status"]["state"] == "stopped"
    assert "sshd" in vm["status"]["last_error"]
    api.delete_vm("later")


@pytest.mark.parametrize("checks", ["workdisk", "none"])
def test_ready_checks_that_pass(fresh_daemon, checks):
    d = fresh_daemon.start()
    d.set_faults({"agent_ready": checks})
    try:
        vm = d.client.create_vm("fine", vcpus=1)["result"]
    finally:
        d.clear_faults()
    assert vm["status"]["health"] == "ok"
    h = d.client.get("/v1/vms/fine/health").json()
    assert h["agent"]["ready"] is True and h["agent"]["not_ready"] is None
    assert sorted(h["agent"]["checks"]) == ([] if checks == "none" else [checks])
    out = d.run_banger("vm", "health", "fine")
    assert out.returncode == 0, out.stderr
    if checks == "workdisk":
        assert "workdisk ok" in out.stdout, out.stdout
    d.client.delete_vm("fine")


# ---- boots that never hang ----

def test_stalled_boot_fails_fast_with_the_console(fresh_daemon):
    """No agent and a console that stopped growing: after boot_stall_s the
    create fails with boot_stalled and the console's last line, instead
    of holding the operation for health_timeout_s."""
    fresh_daemon.reconfigure(config={"health_timeout_s": 60, "boot_stall_s": 2})
    d = fresh_daemon.start()
    d.set_faults({"no_agent": True})
    try:
        t0 = time.time()
        op = d.client.post("/v1/vms", {"name": "wedged", "vcpus": 1},
                           params={"wait": 90}).json()
        took = time.time() - t0
    finally:
        d.clear_faults()
    assert op["state"] == "failed", op
    err = op["error"]
    assert err["code"] == "boot_stalled" and err["status"] == 504, err
    assert "no console output and no answer from the guest agent for 2 s" \
        in err["message"], err
    console = d.client.get("/v1/vms/wedged/console", validate=False)
    # The VM is rolled back with its create; its last console line was
    # carried in the error.
    assert err["details"]["console_tail"], err
    assert console.status_code == 404
    assert took < 20, took
    assert not d.vmm_pids()


def test_stall_detection_can_be_turned_off(fresh_daemon):
    fresh_daemon.reconfigure(config={"health_timeout_s": 3, "boot_stall_s": 0})
    d = fresh_daemon.start()
    d.set_faults({"no_agent": True})
    try:
        t0 = time.time()
        op = d.client.post("/v1/vms", {"name": "patient", "vcpus": 1},
                           params={"wait": 60}).json()
    finally:
        d.clear_faults()
    assert op["state"] == "failed" and op["error"]["code"] == "timeout", op
    assert time.time() - t0 >= 3


def test_a_slow_but_talking_guest_is_not_stalled(fresh_daemon):
    """An agent that answers "not ready" is progress, console or not."""
    fresh_daemon.reconfigure(config={"health_timeout_s": 4, "boot_stall_s": 1})
    d = fresh_daemon.start()
    port = free_port()
    d.set_faults({"agent_ready": "sshd", "agent_ssh_port": port})
    try:
        op = d.client.post("/v1/vms", {"name": "chatty", "vcpus": 1},
                           params={"wait": 60}).json()
    finally:
        d.clear_faults()
    assert op["state"] == "failed" and op["error"]["code"] == "not_ready", op
