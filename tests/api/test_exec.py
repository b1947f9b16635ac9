"""POST /v1/vms/{name}/exec against the Firecracker test double, whose
guest agent is the real banger-vsock-agent (on the host, allowed to exec
by --allow-exec): output streamed as NDJSON lines, exit codes, signals,
stdin, env and cwd, timeouts, a client that leaves, the refusals, the
audit event, and banger vm exec."""
import base64
import json
import os
import socket
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OLD_AGENT = os.path.join(ROOT, "tests", "fakes", "old_agent.py")


def exec_vm(api, vm, body, status=200):
    r = api.post("/v1/vms/%s/exec" % vm, body, stream=True)
    assert r.status_code == status, r.text
    if status != 200:
        return r.json()
    assert r.headers["Content-Type"] == "application/x-ndjson"
    return [json.loads(line) for line in r.iter_lines() if line]


def collect(lines):
    out = {"stdout": b"", "stderr": b""}
    for ev in lines[:-1]:
        assert ev["type"] in ("stdout", "stderr"), lines
        out[ev["type"]] += base64.b64decode(ev["data"])
    assert lines[-1]["type"] == "exit", lines
    return out["stdout"], out["stderr"], lines[-1]


@pytest.fixture(scope="module")
def vm(daemon):
    api = daemon.client
    api.create_vm("runner", vcpus=1, memory_mib=128)
    yield "runner"
    api.delete_vm("runner")


def test_output_and_exit_code(daemon, vm):
    lines = exec_vm(daemon.client, vm, {
        "argv": ["sh", "-c", "echo hi; echo oops >&2; exit 3"]})
    out, err, ex = collect(lines)
    assert out == b"hi\n" and err == b"oops\n", lines
    assert ex["exit_code"] == 3 and ex["signal"] == 0 and \
        not ex["timed_out"], ex


def test_signal_stdin_env_and_cwd(daemon, vm):
    api = daemon.client
    _, _, ex = collect(exec_vm(api, vm, {"argv": ["sh", "-c",
                                                  "kill -TERM $$"]}))
    assert ex["exit_code"] == -1 and ex["signal"] == 15, ex
    data = os.urandom(50000)
    out, _, ex = collect(exec_vm(api, vm, {
        "argv": ["cat"], "stdin": base64.b64encode(data).decode()}))
    assert out == data and ex["exit_code"] == 0
    out, _, _ = collect(exec_vm(api, vm, {
        "argv": ["sh", "-c", 'echo "$GREETING"; pwd'],
        "env": {"GREETING": "hello there"}, "cwd": "/tmp"}))
    assert out == b"hello there\n/tmp\n", out
    out, err, ex = collect(exec_vm(api, vm, {"argv": ["no-such-cmd-4711"]}))
    assert ex["exit_code"] == 127 and b"no-such-cmd-4711" in err, (err, ex)
    # Big output arrives whole, in pieces.
    lines = exec_vm(api, vm, {"argv": ["head", "-c", "3000000",
                                       "/dev/zero"]})
    out, _, ex = collect(lines)
    assert len(out) == 3000000 and ex["exit_code"] == 0
    assert len(lines) > 3, len(lines)


def pgrep(pattern):
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True,
                       text=True)
    return r.stdout.split()


def test_timeout_ends_the_whole_group(daemon, vm):
    t0 = time.time()
    _, _, ex = collect(exec_vm(daemon.client, vm, {
        "argv": ["sh", "-c", "sleep 297.1 & sleep 297.2"], "timeout_s": 1}))
    assert ex["timed_out"] and time.time() - t0 < 6, ex
    deadline = time.time() + 5
    while pgrep("sleep 297.[12]"):
        assert time.time() < deadline, "the command's group outlived it"
        time.sleep(0.1)


def test_a_client_that_leaves_ends_the_command(daemon, vm):
    body = json.dumps({"argv": ["sleep", "298.3"]}).encode()
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.socket)
    s.sendall(b"POST /v1/vms/%s/exec HTTP/1.1\r\nHost: b\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % (vm.encode(), len(body)) + body)
    deadline = time.time() + 10
    while not pgrep("sleep 298.3"):
        assert time.time() < deadline, "the command never started"
        time.sleep(0.05)
    s.close()
    deadline = time.time() + 8
    while pgrep("sleep 298.3"):
        assert time.time() < deadline, "still running after the client left"
        time.sleep(0.1)


def test_refusals(daemon, vm):
    api = daemon.client

    def refused(body, status, code, name=vm):
        e = exec_vm(api, name, body, status)
        assert e["code"] == code, e
        return e

    refused({"argv": []}, 400, "invalid_request")
    refused({"argv": ["echo", 1]}, 400, "invalid_request")
    refused({"argv": ["echo"], "stdin": "***"}, 400, "invalid_request")
    refused({"argv": ["echo"], "cwd": "tmp"}, 400, "invalid_request")
    refused({"argv": ["echo"], "env": {"A=B": "c"}}, 400, "invalid_request")
    refused({"argv": ["echo"], "timeout_s": -1}, 400, "invalid_request")
    refused({"argv": ["echo"], "shell": True}, 400, "unknown_field")
    e = refused({"argv": ["echo", "x" * 8000]}, 400, "invalid_request")
    assert "at most 7168" in e["message"], e
    e = refused({"argv": ["cat"], "stdin": base64.b64encode(
        b"x" * 70000).decode()}, 400, "invalid_request")
    assert "stdin" in e["message"], e
    refused({"argv": ["echo"], "user": "no-such-user-4711"}, 400,
            "invalid_request")
    refused({"argv": ["echo"]}, 404, "vm_not_found", name="ghost")
    api.create_vm("idle", vcpus=1, memory_mib=128)
    api.action("idle", "stop")
    refused({"argv": ["echo"]}, 409, "invalid_state", name="idle")
    api.delete_vm("idle")


def test_exec_is_in_the_event_stream(daemon, vm):
    api = daemon.client
    collect(exec_vm(api, vm, {"argv": ["true", "audit-me"], "user": "root"}))
    r = api.get("/v1/events", params={"type": "vm.exec", "vm": vm},
                headers={"Last-Event-ID": "0"}, stream=True, timeout=10)
    data = None
    for line in r.iter_lines():
        if line.startswith(b"data: ") and b"audit-me" in line:
            data = json.loads(line[6:])["data"]
            break
    r.close()
    assert data["argv"] == ["true", "audit-me"] and data["user"] == "root"
    assert data["peer_uid"] == os.getuid(), data


def banger(daemon, *args, stdin=""):
    return subprocess.run([daemon.banger] + list(args), env=daemon.env,
                          input=stdin, capture_output=True, text=True,
                          timeout=60)


def test_banger_vm_exec(daemon, vm):
    r = banger(daemon, "vm", "exec", vm, "--", "sh", "-c",
                          "echo out; echo err >&2; exit 5")
    assert r.returncode == 5 and r.stdout == "out\n" and \
        r.stderr == "err\n", r
    r = banger(daemon, "vm", "exec", "--env", "X=1 2", "--cwd", "/tmp", vm,
               "--", "sh", "-c", 'read line; echo "$X $line $(pwd)"',
               stdin="piped\n")
    assert r.returncode == 0 and r.stdout == "1 2 piped /tmp\n", r
    r = banger(daemon, "vm", "exec", "--timeout", "1", vm, "--", "sleep",
                          "299.4")
    assert r.returncode == 124 and "ran out of time" in r.stderr, r
    r = banger(daemon, "vm", "exec", vm, "--", "sh", "-c", "kill -9 $$")
    assert r.returncode == 137, r
    r = banger(daemon, "vm", "exec", "ghost", "--", "true")
    assert r.returncode == 3 and "vm 'ghost' not found" in r.stderr, r
    r = banger(daemon, "vm", "exec", vm)
    assert r.returncode == 2, r


def test_an_agent_without_exec_is_refused(fresh_daemon):
    fresh_daemon.env["BANGER_FAKE_AGENT"] = OLD_AGENT
    d = fresh_daemon.start()
    d.client.create_vm("oldie", vcpus=1, memory_mib=128)
    e = exec_vm(d.client, "oldie", {"argv": ["true"]}, 409)
    assert e["code"] == "unsupported_by_vmm", e
    assert "before exec" in e["message"], e
