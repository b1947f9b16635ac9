"""banger (the CLI) against a live bangerd and the Firecracker test double.

Uses the fixtures of tests/conftest.py: `daemon` (.socket, .env, .banger,
.make_image(name) -> (rootfs, work_seed)) and, when present, its JSON client
and openapi.yaml validation for comparing --json output with the API.

Exit statuses under test (see 'banger help'): 0 ok, 1 rejected/other,
2 usage, 3 not found, 4 conflict, 5 cannot reach bangerd, 6 server-side.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

try:
    from bangerlib import validate as api_validate
except ImportError:  # the suite still runs without the contract checker
    api_validate = None

USAGE_RE = re.compile(r"^usage: banger ", re.M)


def run(daemon, *args, env=None, unset=(), cwd=None, timeout=120, text=True):
    e = dict(daemon.env)
    for k in unset:
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([daemon.banger] + list(args), env=e, cwd=cwd,
                          capture_output=True, text=text, timeout=timeout)


def ok(r):
    assert r.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (
        r.returncode, r.stdout, r.stderr)
    return r


def fails(r, code):
    assert r.returncode == code, "want exit %d, got %d\nstdout:\n%s\nstderr:\n%s" % (
        code, r.returncode, r.stdout, r.stderr)
    return r


def error_lines(r):
    """stderr without the progress lines of a followed operation."""
    return [l for l in r.stderr.splitlines() if not l.startswith("stage: ")]


def assert_error(r, code, message=None):
    fails(r, code)
    lines = error_lines(r)
    assert lines and lines[0].startswith("banger: "), r.stderr
    if message is not None:
        assert lines[0] == "banger: " + message, r.stderr
    for extra in lines[1:]:
        assert extra.startswith("hint: "), r.stderr


def kv(stdout):
    """Parse 'key: value' lines."""
    out = {}
    for line in stdout.splitlines():
        k, sep, v = line.partition(":")
        assert sep, line
        out[k.strip()] = v.strip()
    return out


def table(stdout):
    lines = stdout.splitlines()
    header = lines[0].split()
    return header, [dict(zip(header, l.split())) for l in lines[1:]]


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def wait_state(daemon, name, state, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = run(daemon, "vm", "show", name)
        if r.returncode == 0 and kv(r.stdout)["state"] == state:
            return
        time.sleep(0.2)
    raise AssertionError("vm %s never reached %s" % (name, state))


def api_get(daemon, path):
    client = getattr(daemon, "client", None)
    if client is None:
        pytest.skip("the daemon fixture has no API client")
    r = client.get(path)
    assert r.status_code == 200, r.text
    return r.json()


def check_contract(method, path, status, body):
    if api_validate is not None:
        api_validate(method, path, status, body)


@pytest.fixture
def image(daemon):
    name = uniq("img")
    rootfs, seed = daemon.make_image(name)
    ok(run(daemon, "image", "register", "--name", name, "--rootfs", rootfs,
           "--work-seed", seed))
    yield name
    run(daemon, "image", "delete", name)


def create_args(name, image):
    return ["vm", "create", "--name", name, "--image", image, "--vcpus", "1",
            "--memory", "128", "--disk", "1"]


@pytest.fixture
def vm(daemon, image):
    name = uniq("vm")
    ok(run(daemon, *create_args(name, image)))
    yield name
    run(daemon, "vm", "delete", "--force", name)


# ---------------------------------------------------------------- lifecycle

def test_vm_lifecycle(daemon, image):
    name = uniq("life")
    r = ok(run(daemon, *create_args(name, image)))
    assert r.stdout == "vm '%s' created (running)\n" % name
    # Not a TTY: progress comes as plain "stage: X" lines, nothing else.
    for line in r.stderr.splitlines():
        assert line.startswith("stage: "), r.stderr
    try:
        r = ok(run(daemon, "vm", "list"))
        header, rows = table(r.stdout)
        assert header == ["NAME", "STATE", "IP", "VCPUS", "MEMORY", "DISK",
                          "NAT", "IMAGE", "HEALTH"]
        row = [x for x in rows if x["NAME"] == name]
        assert len(row) == 1, r.stdout
        assert row[0]["STATE"] == "running"
        assert row[0]["VCPUS"] == "1"
        assert row[0]["MEMORY"] == "128MiB"
        assert row[0]["DISK"] == "1GiB"
        assert row[0]["NAT"] == "no"
        assert row[0]["IMAGE"] == image

        r = ok(run(daemon, "vm", "show", name))
        f = kv(r.stdout)
        assert list(f) == ["name", "id", "state", "image", "vcpus",
                           "memory_mib", "disk_gib", "nat", "ip", "dns_name",
                           "vmm", "pid", "health", "created_at", "started_at",
                           "last_error", "ports", "limits", "mounts", "cpu",
                           "memory_used", "disk_io", "network"]
        assert f["name"] == name and f["state"] == "running"
        assert f["image"] == image and f["vcpus"] == "1"
        assert f["memory_mib"] == "128" and f["disk_gib"] == "1"
        assert f["nat"] == "no" and f["ports"] == "none" and \
            f["limits"] == "none" and f["mounts"] == "none"

        r = ok(run(daemon, "vm", "stop", name, "--timeout", "5"))
        assert r.stdout == "vm '%s' stopped\n" % name
        assert kv(ok(run(daemon, "vm", "show", name)).stdout)["state"] == "stopped"

        r = ok(run(daemon, "vm", "start", name))
        assert r.stdout == "vm '%s' started (running)\n" % name

        r = ok(run(daemon, "vm", "restart", name))
        assert r.stdout == "vm '%s' restarted (running)\n" % name

        # A running VM is only deleted with --force.
        assert_error(run(daemon, "vm", "delete", name), 4)
        r = ok(run(daemon, "vm", "delete", "--force", name))
        assert r.stdout == "vm '%s' deleted\n" % name
        assert_error(run(daemon, "vm", "show", name), 3,
                     "vm '%s' not found" % name)
    finally:
        run(daemon, "vm", "delete", "--force", name)


def test_delete_stopped_vm_without_force(daemon, vm):
    ok(run(daemon, "vm", "stop", vm))
    r = ok(run(daemon, "vm", "delete", vm))
    assert r.stdout == "vm '%s' deleted\n" % vm


def test_stop_and_start_are_idempotent(daemon, vm):
    ok(run(daemon, "vm", "start", vm))
    ok(run(daemon, "vm", "stop", vm))
    r = ok(run(daemon, "vm", "stop", vm))
    assert r.stdout == "vm '%s' stopped\n" % vm


def test_pause_and_resume(daemon, image):
    """One NAME: the call is synchronous and says where the VM is.  Several:
    one bulk action, a line per VM, the first failure's exit status.
    --all takes the running VMs (pause) or the paused ones (resume)."""
    a, b = uniq("pa"), uniq("pb")
    ok(run(daemon, *create_args(a, image)))
    ok(run(daemon, *create_args(b, image)))
    try:
        r = ok(run(daemon, "vm", "pause", a))
        assert r.stdout == "vm '%s' paused\n" % a
        assert kv(ok(run(daemon, "vm", "show", a)).stdout)["state"] == "paused"
        assert_error(run(daemon, "vm", "pause", a), 4,
                     "vm '%s' is paused, not running" % a)
        r = ok(run(daemon, "vm", "resume", a))
        assert r.stdout == "vm '%s' resumed\n" % a
        assert kv(ok(run(daemon, "vm", "show", a)).stdout)["state"] == "running"

        r = ok(run(daemon, "vm", "pause", a, b))
        assert sorted(r.stdout.splitlines()) == sorted(
            ["%s: paused" % a, "%s: paused" % b]), r.stdout
        r = run(daemon, "vm", "resume", a, "ghost-vm", b)
        assert r.returncode != 0
        assert "%s: running" % a in r.stdout and "%s: running" % b in r.stdout
        assert "ghost-vm: error: vm_not_found" in r.stderr, r.stderr

        r = ok(run(daemon, "vm", "pause", "--all"))
        assert "%s: paused" % a in r.stdout and "%s: paused" % b in r.stdout
        ok(run(daemon, "vm", "stop", b))   # stop works from paused
        r = ok(run(daemon, "vm", "resume", "--all"))
        assert "%s: running" % a in r.stdout and b not in r.stdout, r.stdout
        r = ok(run(daemon, "vm", "resume", "--all"))
        assert r.stdout == "no paused vms to resume\n", r.stdout
        fails(run(daemon, "vm", "pause"), 2)
        fails(run(daemon, "vm", "pause", "--all", a), 2)
    finally:
        run(daemon, "vm", "resume", "--all")
        run(daemon, "vm", "delete", "--force", a, b)


def test_vm_snapshot(daemon, vm):
    r = ok(run(daemon, "vm", "snapshot", "create", vm, "s1"))
    assert r.stdout == "vm '%s' saved as 's1'\n" % vm, r.stdout
    header, rows = table(ok(run(daemon, "vm", "snapshot", "list", vm)).stdout)
    assert header == ["NAME", "STATE", "VMM", "SHAPE", "SIZE", "CREATED"]
    assert rows[0]["NAME"] == "s1" and rows[0]["STATE"] == "ready" and \
        rows[0]["VMM"] == "firecracker" and rows[0]["SHAPE"] == "1v/128M", rows
    r = ok(run(daemon, "-q", "vm", "snapshot", "list", vm))
    assert r.stdout == "s1\n"
    r = ok(run(daemon, "vm", "snapshot", "restore", vm, "s1"))
    assert r.stdout == "vm '%s' restored from 's1'\n" % vm, r.stdout
    assert kv(ok(run(daemon, "vm", "show", vm)).stdout)["state"] == "running"
    assert_error(run(daemon, "vm", "snapshot", "create", vm, "s1"), 4)
    assert_error(run(daemon, "vm", "snapshot", "restore", vm, "nope"), 3)
    r = ok(run(daemon, "vm", "snapshot", "delete", vm, "s1"))
    assert r.stdout == "snapshot 's1' of vm '%s' deleted\n" % vm, r.stdout
    assert ok(run(daemon, "-q", "vm", "snapshot", "list", vm)).stdout == ""
    fails(run(daemon, "vm", "snapshot"), 2)
    fails(run(daemon, "vm", "snapshot", "bogus", vm, "x"), 2)
    fails(run(daemon, "vm", "snapshot", "create", vm), 2)
    fails(run(daemon, "vm", "snapshot", "list", vm, "extra"), 2)


def test_quiet(daemon, image):
    name = uniq("quiet")
    try:
        r = ok(run(daemon, "-q", *create_args(name, image)))
        assert r.stdout == "" and r.stderr == ""
        r = ok(run(daemon, "vm", "list", "-q"))
        assert name in r.stdout.split("\n")
        for line in r.stdout.splitlines():
            assert " " not in line
        r = ok(run(daemon, "image", "list", "-q"))
        assert image in r.stdout.split("\n")
        r = ok(run(daemon, "-q", "vm", "stop", name))
        assert r.stdout == "" and r.stderr == ""
    finally:
        run(daemon, "vm", "delete", "--force", name)


def test_no_wait(daemon, image):
    name = uniq("nowait")
    try:
        r = ok(run(daemon, *create_args(name, image), "--no-wait"))
        op_id = r.stdout.strip()
        assert re.fullmatch(r"\S+", op_id), r.stdout
        assert r.stderr == ""
        client = getattr(daemon, "client", None)
        if client is not None:
            op = client.get("/v1/operations/%s" % op_id,
                            params={"wait": 60}).json()
            assert op["state"] == "succeeded", op
            assert op["kind"] == "vm.create" and op["target"] == name
        wait_state(daemon, name, "running")
        r = ok(run(daemon, "--json", "vm", "stop", name, "--no-wait"))
        op = json.loads(r.stdout)
        assert op["kind"] == "vm.stop" and op["state"] in (
            "pending", "running", "succeeded")
        wait_state(daemon, name, "stopped")
    finally:
        run(daemon, "vm", "delete", "--force", name)


def test_vm_set(daemon, vm):
    # Resources only while stopped.
    assert_error(run(daemon, "vm", "set", vm, "--vcpus", "2"), 4)
    r = ok(run(daemon, "vm", "set", vm, "--nat"))
    assert r.stdout.startswith("vm '%s' updated" % vm)
    assert kv(ok(run(daemon, "vm", "show", vm)).stdout)["nat"] == "yes"
    ok(run(daemon, "vm", "stop", vm))
    ok(run(daemon, "vm", "set", vm, "--vcpus", "2", "--memory", "256",
           "--no-nat"))
    f = kv(ok(run(daemon, "vm", "show", vm)).stdout)
    assert (f["vcpus"], f["memory_mib"], f["nat"]) == ("2", "256", "no")
    r = ok(run(daemon, "--json", "vm", "set", vm, "--disk", "2"))
    body = json.loads(r.stdout)
    assert body["name"] == vm and body["spec"]["disk_gib"] == 2
    # Nothing to change is a usage error, found before any request.
    r = fails(run(daemon, "vm", "set", vm), 2)
    assert USAGE_RE.search(r.stderr)


def test_health_and_console(daemon, vm):
    r = ok(run(daemon, "vm", "health", vm))
    f = kv(r.stdout)
    for key in ("status", "reason", "protocol", "latency", "checked_at"):
        assert key in f, r.stdout
    assert f["status"] in ("ok", "degraded", "unreachable")
    body = json.loads(ok(run(daemon, "--json", "vm", "health", vm)).stdout)
    assert body["name"] == vm
    if body.get("agent"):
        assert f["agent_version"] == body["agent"]["agent_version"]
        assert "workdisk" in f or "workdisk" not in body["agent"]

    # The serial log is passed through byte for byte.
    ok(run(daemon, "vm", "console", vm, text=False))
    r = ok(run(daemon, "vm", "console", vm, "--tail", "10", text=False))
    assert len(r.stdout) <= 10


# ---------------------------------------------------------------- --json

def test_json_bodies_match_api(daemon, image):
    name = uniq("json")
    try:
        r = ok(run(daemon, "--json", *create_args(name, image)))
        assert "stage:" not in r.stderr
        op = json.loads(r.stdout)
        check_contract("GET", "/v1/operations/x", 200, op)
        assert op["kind"] == "vm.create" and op["state"] == "succeeded"
        assert op["result"]["name"] == name
        assert op["error"] is None

        show = json.loads(ok(run(daemon, "vm", "show", name, "--json")).stdout)
        check_contract("GET", "/v1/vms/x", 200, show)
        assert set(show) == {"name", "id", "spec", "status"}
        api = api_get(daemon, "/v1/vms/" + name)
        assert show["id"] == api["id"] and show["spec"] == api["spec"]
        assert set(show["status"]) == set(api["status"])

        lst = json.loads(ok(run(daemon, "--json", "vm", "list")).stdout)
        check_contract("GET", "/v1/vms", 200, lst)
        assert [v["name"] for v in lst["vms"]] == sorted(v["name"] for v in lst["vms"])
        assert name in [v["name"] for v in lst["vms"]]

        imgs = json.loads(ok(run(daemon, "--json", "image", "list")).stdout)
        check_contract("GET", "/v1/images", 200, imgs)
        assert image in [i["name"] for i in imgs["images"]]

        img = json.loads(ok(run(daemon, "--json", "image", "show", image)).stdout)
        check_contract("GET", "/v1/images/x", 200, img)
        assert img["name"] == image and img["source"] == "registered"

        op = json.loads(ok(run(daemon, "--json", "vm", "stop", name)).stdout)
        assert op["kind"] == "vm.stop" and op["state"] == "succeeded"
        assert op["result"]["status"]["state"] == "stopped"

        op = json.loads(ok(run(daemon, "--json", "vm", "delete", name)).stdout)
        assert op["kind"] == "vm.delete" and op["state"] == "succeeded"
        assert op["result"] is None
    finally:
        run(daemon, "vm", "delete", "--force", name)


def test_json_error_body(daemon):
    name = uniq("missing")
    r = fails(run(daemon, "--json", "vm", "show", name), 3)
    body = json.loads(r.stdout)
    check_contract("GET", "/v1/vms/x", 404, body)
    assert body["code"] == "vm_not_found" and body["status"] == 404
    assert set(body) == {"code", "message", "status", "details", "hint"}
    assert r.stderr.startswith("banger: " + body["message"])


def test_version_and_doctor(daemon):
    r = ok(run(daemon, "version"))
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"banger \S+", lines[0]), r.stdout
    root = json.loads(ok(run(daemon, "--json", "version")).stdout)
    assert root["api_version"] == "1"
    assert lines[1].startswith("bangerd %s" % root["server_version"])

    r = run(daemon, "doctor")
    body = json.loads(run(daemon, "--json", "doctor").stdout)
    check_contract("GET", "/v1/doctor", 200, body)
    failed = any(c["status"] == "fail" for c in body["checks"])
    assert r.returncode == (1 if failed else 0), r.stdout + r.stderr
    names = []
    for line in r.stdout.splitlines():
        if line.startswith("       fix: "):
            continue
        m = re.match(r"^\[( ok |warn|fail)\] (\S+): ", line)
        assert m, line
        names.append(m.group(2))
    assert names == [c["name"] for c in body["checks"]]


def test_version_and_doctor_say_which_bangerd(daemon):
    """GET /v1 names the daemon that answered; banger version prints it, and
    doctor warns when this checkout's runtime is not the daemon's."""
    root = json.loads(ok(run(daemon, "--json", "version")).stdout)
    d = root["daemon"]
    assert d["pid"] == daemon.proc.pid
    assert os.path.realpath(d["binary"]) == os.path.realpath(daemon.bangerd)
    assert d["runtime_dir"] == daemon.runtime
    assert d["state_dir"] == daemon.state and d["socket"] == daemon.socket
    assert re.fullmatch(r"[0-9a-f]{16}", d["bundle"]["id"])
    assert d["bundle"]["found"] is True
    out = ok(run(daemon, "version")).stdout
    assert "  pid %d, %s" % (d["pid"], d["binary"]) in out, out
    assert "  runtime %s (bundle %s)" % (daemon.runtime, d["bundle"]["id"]) in out
    # This banger is ./banger of a checkout whose runtime/ is not the test
    # daemon's bundle: both commands say so.
    repo = os.path.dirname(os.path.realpath(daemon.banger))
    if os.path.exists(os.path.join(repo, "Makefile")) and \
            os.path.isdir(os.path.join(repo, "runtime")):
        assert "warning: this banger is from checkout %s" % repo in out, out
        doc = run(daemon, "--json", "doctor")
        checks = {c["name"]: c for c in json.loads(doc.stdout)["checks"]}
        c = checks["checkout"]
        assert c["status"] == "warn" and c["fix"], c
        assert daemon.runtime in c["message"] and repo in c["message"], c
        assert "[warn] checkout: " in run(daemon, "doctor").stdout
    # A touched bundle file changes the identity.
    os.utime(os.path.join(daemon.runtime, "vmlinux"))
    again = json.loads(ok(run(daemon, "--json", "version")).stdout)
    assert again["daemon"]["bundle"]["id"] != d["bundle"]["id"]


def test_doctor_is_happy_with_its_own_checkout(fresh_daemon):
    """bangerd on this checkout's runtime/: doctor's checkout check is ok."""
    repo = os.path.dirname(os.path.realpath(fresh_daemon.banger))
    if not os.path.exists(os.path.join(repo, "Makefile")):
        pytest.skip("banger is not run from a checkout")
    fresh_daemon.reconfigure(runtime=os.path.join(repo, "runtime"))
    d = fresh_daemon.start()
    doc = json.loads(run(d, "--json", "doctor").stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["checkout"]["status"] == "ok", checks["checkout"]
    out = ok(run(d, "version")).stdout
    assert "warning:" not in out, out


def test_version_without_daemon_never_starts_one(daemon, tmp_path):
    sock = str(tmp_path / "none.sock")
    r = ok(run(daemon, "version", env={"BANGER_SOCKET": sock},
               unset=("BANGER_NO_AUTOSTART",)))
    assert r.stdout.startswith("banger ")
    assert "not reachable" in r.stdout
    assert not os.path.exists(sock)


# ---------------------------------------------------------------- errors

def test_not_found(daemon):
    name = uniq("ghost")
    for args in (["vm", "show", name], ["vm", "start", name],
                 ["vm", "stop", name], ["vm", "delete", name],
                 ["vm", "health", name], ["vm", "set", name, "--nat"]):
        r = run(daemon, *args)
        assert_error(r, 3, "vm '%s' not found" % name)
    assert_error(run(daemon, "image", "show", name), 3)
    assert_error(run(daemon, "image", "delete", name), 3)


def test_duplicate_create_conflicts(daemon, vm, image):
    r = run(daemon, *create_args(vm, image))
    assert_error(r, 4)


def test_bad_name_is_rejected(daemon, image):
    r = run(daemon, *create_args("Bad_Name!", image))
    assert_error(r, 1)
    # Range checks are bangerd's; the CLI only checks the integer syntax.
    r = run(daemon, "vm", "create", "--name", uniq("range"), "--image", image,
            "--vcpus", "0")
    assert_error(r, 1)


def test_missing_image(daemon):
    r = run(daemon, "vm", "create", "--name", uniq("noimg"), "--image",
            uniq("noimg"))
    assert_error(r, 3)


@pytest.mark.parametrize("args", [
    [],
    ["nosuch"],
    ["vm"],
    ["vm", "nosuch"],
    ["vm", "create"],
    ["vm", "create", "--name"],
    ["vm", "create", "--name", "x", "--bogus"],
    ["vm", "create", "--name", "x", "--vcpus", "two"],
    ["vm", "create", "--name", "x", "--memory", "1.5"],
    ["vm", "show"],
    ["vm", "show", "a", "b"],
    ["vm", "stop", "x", "--timeout"],
    ["vm", "console", "x", "--tail", "-"],
    ["vm", "list", "extra"],
    ["image", "register", "--name", "x"],
    ["image", "register", "--rootfs", "/x"],
    ["image", "show"],
    ["doctor", "--nat"],
    ["vm", "exec", "x", "-itz", "--", "sh"],
    ["vm", "exec", "x", "-t=1", "--", "sh"],
    ["vm", "list", "-qt"],
])
def test_usage_errors(daemon, args):
    # No request is made: an unreachable socket would give exit 5.
    r = run(daemon, *args, env={"BANGER_SOCKET": "/nonexistent/banger.sock",
                                "BANGER_NO_AUTOSTART": "1"})
    fails(r, 2)
    assert r.stderr.startswith("banger: "), r.stderr
    assert USAGE_RE.search(r.stderr), r.stderr
    assert r.stdout == ""


def test_help(daemon):
    r = ok(run(daemon, "help"))
    assert r.stdout.startswith("usage: banger ")
    assert "Exit status" in r.stdout
    for code in range(7):
        assert re.search(r"^  %d " % code, r.stdout, re.M), code
    for cmd in ("vm create", "vm list", "image register", "doctor", "version"):
        assert cmd in r.stdout
    r = ok(run(daemon, "vm", "create", "--help"))
    assert r.stdout.startswith("usage: banger vm create --name NAME")
    assert "--no-wait" in r.stdout
    assert ok(run(daemon, "help", "vm", "stop")).stdout.startswith(
        "usage: banger vm stop")
    assert "vm console" in ok(run(daemon, "vm", "--help")).stdout
    assert ok(run(daemon, "--help")).stdout == ok(run(daemon, "help")).stdout


def test_short_flags_combine(daemon):
    # One-letter switches go together, the command's and the global ones.
    r = ok(run(daemon, "vm", "exec", "-ith"))
    assert r.stdout.startswith("usage: banger vm exec NAME [-t|--tty] "
                               "[-i|--interactive]"), r.stdout
    assert "  -t, --tty " in r.stdout
    env = {"BANGER_SOCKET": "/nonexistent/banger.sock",
           "BANGER_NO_AUTOSTART": "1"}
    for flags in (["-it"], ["-ti"], ["-i", "-t"], ["-itq"], ["--tty"]):
        r = run(daemon, "vm", "exec", "x", *flags, "--", "sh", env=env)
        # Parsed: the request is made (and finds nobody).
        fails(r, 5)
        assert "cannot reach bangerd" in r.stderr, (flags, r.stderr)


def test_unreachable(daemon, tmp_path):
    sock = str(tmp_path / "nobody.sock")
    r = run(daemon, "--no-autostart", "--socket", sock, "vm", "list",
            unset=("BANGER_NO_AUTOSTART",))
    fails(r, 5)
    assert r.stderr.startswith("banger: cannot reach bangerd at %s: " % sock)
    assert "\nhint: " in r.stderr
    r = run(daemon, "vm", "list", env={"BANGER_SOCKET": sock,
                                       "BANGER_NO_AUTOSTART": "1"})
    fails(r, 5)
    assert r.stderr.startswith("banger: cannot reach bangerd at %s: " % sock)
    # --socket wins over BANGER_SOCKET.
    r = run(daemon, "vm", "list", "--socket", sock,
            env={"BANGER_NO_AUTOSTART": "1"})
    fails(r, 5)
    assert sock in r.stderr
    assert not os.path.exists(sock)


def test_socket_flag_beats_env(daemon):
    r = ok(run(daemon, "--socket", daemon.socket, "vm", "list",
               env={"BANGER_SOCKET": "/nonexistent/banger.sock"}))
    assert r.stdout.startswith("NAME ")


def test_failed_operation_exits_6(daemon, image):
    if not hasattr(daemon, "set_faults"):
        pytest.skip("the daemon fixture cannot inject VMM faults")
    name = uniq("fault")
    daemon.set_faults({"fail": "PUT /actions", "fail_message": "injected boom"})
    try:
        r = run(daemon, *create_args(name, image))
        assert_error(r, 6)
        assert "injected boom" in r.stderr
        r = run(daemon, "--json", *create_args(uniq("fault"), image))
        fails(r, 6)
        op = json.loads(r.stdout)
        assert op["state"] == "failed" and op["error"]["code"] == "vmm_error"
    finally:
        daemon.clear_faults()
        for vm in json.loads(run(daemon, "--json", "vm", "list").stdout)["vms"]:
            if vm["name"].startswith("fault-"):
                run(daemon, "vm", "delete", "--force", vm["name"])


# ---------------------------------------------------------------- images

def test_image_register_list_show_delete(daemon):
    name = uniq("reg")
    rootfs, seed = daemon.make_image(name)
    try:
        r = ok(run(daemon, "image", "register", "--name", name, "--rootfs",
                   rootfs))
        assert r.stdout == "image '%s' registered\n" % name
        # Registering again updates; a relative path is made absolute.
        r = ok(run(daemon, "image", "register", "--name", name, "--rootfs",
                   os.path.basename(rootfs), "--work-seed", seed,
                   cwd=os.path.dirname(rootfs)))
        assert r.stdout == "image '%s' updated\n" % name

        header, rows = table(ok(run(daemon, "image", "list")).stdout)
        assert header == ["NAME", "SOURCE", "DEFAULT", "AVAILABLE", "WARM",
                          "ROOTFS"]
        row = [x for x in rows if x["NAME"] == name]
        assert row == [{"NAME": name, "SOURCE": "registered", "DEFAULT": "no",
                        "AVAILABLE": "yes", "WARM": "-", "ROOTFS": rootfs}]

        f = kv(ok(run(daemon, "image", "show", name)).stdout)
        assert f["name"] == name and f["rootfs"] == rootfs
        assert f["work_seed"] == seed and f["default"] == "no"

        r = ok(run(daemon, "image", "delete", name))
        assert r.stdout == "image '%s' deleted\n" % name
        assert_error(run(daemon, "image", "show", name), 3)
    finally:
        run(daemon, "image", "delete", name)


def test_image_warm(daemon, image):
    """banger image warm: the image keeps a snapshot; a create of its
    shape starts from it, another boots cold and the note says why."""
    r = ok(run(daemon, "image", "warm", image))
    assert r.stdout == ("image '%s' is warm: creates with 2 vcpus, 1024 MiB "
                        "and a 8 GiB disk start from its snapshot\n" % image), \
        r.stdout
    header, rows = table(ok(run(daemon, "image", "list")).stdout)
    assert [x["WARM"] for x in rows if x["NAME"] == image] == ["2cpu/1024M/8G"]
    assert kv(ok(run(daemon, "image", "show", image)).stdout)["warm"] == \
        "2cpu/1024M/8G"
    hot, cold = uniq("hot"), uniq("cold")
    try:
        r = ok(run(daemon, "vm", "create", "--name", hot, "--image", image))
        assert "note: warm start" in r.stderr, r.stderr
        r = ok(run(daemon, *create_args(cold, image)))
        notes = [l for l in r.stderr.splitlines() if l.startswith("note: ")]
        assert len(notes) == 1 and "booted cold" in notes[0], r.stderr
    finally:
        run(daemon, "vm", "delete", "--force", hot)
        run(daemon, "vm", "delete", "--force", cold)
    r = ok(run(daemon, "image", "warm", "--drop", image))
    assert r.stdout == "image '%s': warm snapshot dropped\n" % image, r.stdout
    assert_error(run(daemon, "image", "warm", "--drop", image), 3)
    assert_error(run(daemon, "image", "warm", uniq("ghost")), 3)
    fails(run(daemon, "image", "warm"), 2)


def test_image_errors(daemon, vm, image):
    # In use by a VM, and the bundle's default: conflicts.
    assert_error(run(daemon, "image", "delete", image), 4)
    assert_error(run(daemon, "image", "delete", "default"), 4)
    # A missing file and a bad name are rejected.
    assert_error(run(daemon, "image", "register", "--name", uniq("nofile"),
                     "--rootfs", "/nonexistent/rootfs.ext4"), 1)
    rootfs, _ = daemon.make_image(uniq("badname"))
    assert_error(run(daemon, "image", "register", "--name", "Bad_Name",
                     "--rootfs", rootfs), 1)


# ---------------------------------------------------------------- autostart

def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _kill(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + 10
    while _pid_alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def test_autostart(daemon):
    bangerd = os.path.join(os.path.dirname(os.path.abspath(daemon.banger)),
                           "bangerd")
    if not os.access(bangerd, os.X_OK):
        pytest.skip("no bangerd next to %s" % daemon.banger)
    tmp = tempfile.mkdtemp(prefix="bgcli", dir="/tmp")
    sock = os.path.join(tmp, "run", "bangerd.sock")
    env = {"BANGER_SOCKET": sock, "BANGER_STATE_DIR": os.path.join(tmp, "state")}
    unset = ("BANGER_NO_AUTOSTART", "BANGER_BANGERD")
    # As root, keep the spawned bangerd off the host network, as the
    # fixture does.
    argv = ["vm", "list"]
    prefix = []
    if os.geteuid() == 0 and shutil.which("unshare"):
        prefix = ["unshare", "-n"]
    e = dict(daemon.env)
    for k in unset:
        e.pop(k, None)
    e.update(env)
    pid = None
    try:
        r = subprocess.run(prefix + [daemon.banger] + argv, env=e,
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"starting bangerd \(pid (\d+)", r.stderr)
        if m:
            pid = int(m.group(1))
        else:
            found = subprocess.run(["pgrep", "-f", sock], capture_output=True,
                                   text=True).stdout.split()
            pid = int(found[0]) if found else None
        ok(r)
        assert r.stdout.startswith("NAME "), r.stdout
        assert pid is not None and _pid_alive(pid)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().split(b"\0")
        assert b"--socket" in cmdline and sock.encode() in cmdline
        assert os.getsid(pid) == pid  # its own session
        assert os.path.exists(os.path.join(tmp, "run", "bangerd.log"))

        # The next call finds it running and starts nothing.
        r = ok(run(daemon, "vm", "list", env=env, unset=unset))
        assert "starting bangerd" not in r.stderr
        assert "bangerd " in ok(run(daemon, "version", env=env,
                                    unset=unset)).stdout
    finally:
        if pid is not None:
            _kill(pid)
        shutil.rmtree(tmp, ignore_errors=True)


def test_vm_set_nat_on_several_vms(daemon):
    names = ["nset-a", "nset-b"]
    for n in names:
        ok(run(daemon, "vm", "create", "--name", n, "--vcpus", "1"))
    r = ok(run(daemon, "vm", "set", "--nat", *names))
    assert r.stdout.splitlines() == ["nset-a: nat on", "nset-b: nat on"]
    for n in names:
        show = kv(ok(run(daemon, "vm", "show", n)).stdout)
        assert show["nat"] == "yes", show
    # One unknown VM among several: the others still change, exit says not found.
    r = fails(run(daemon, "vm", "set", "--no-nat", "nset-a", "nset-ghost", "nset-b"), 3)
    assert r.stdout.splitlines() == ["nset-a: nat off", "nset-b: nat off"]
    assert "nset-ghost: error: vm_not_found: vm 'nset-ghost' not found" in r.stderr
    assert "banger: 1 of 3 vms failed" in r.stderr
    # Several VMs take only --nat/--no-nat.
    r = fails(run(daemon, "vm", "set", "--vcpus", "2", *names), 2)
    assert USAGE_RE.search(r.stderr)
    for n in names:
        ok(run(daemon, "vm", "delete", "--force", n))
