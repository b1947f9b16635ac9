"""POST /v1/vms/{name}/exec with "tty": true, the connection upgraded,
against the Firecracker test double, whose guest agent is the real
banger-vsock-agent (on the host, allowed to exec by --allow-exec): the 101
and the frames both ways (output, resize, exit), the refusals as JSON
errors, the audit event, a client that leaves, and banger vm exec -t, on a
pseudo-terminal of its own and with piped input."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OLD_AGENT = os.path.join(ROOT, "tests", "fakes", "old_agent.py")
sys.path.insert(0, os.path.join(ROOT, "tests", "agent"))
sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
from ptyrun import run_pty_typing  # noqa: E402
from tty_client import Session, read_head  # noqa: E402


@pytest.fixture(scope="module")
def vm(daemon):
    api = daemon.client
    api.create_vm("termy", vcpus=1, memory_mib=128)
    yield "termy"
    api.delete_vm("termy")


def open_session(daemon, vm, body, headers=None):
    """The exec request as an upgrade: (status, Session or the JSON error)."""
    data = json.dumps(body).encode()
    hdrs = headers if headers is not None else \
        "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(daemon.socket)
    s.sendall(("POST /v1/vms/%s/exec HTTP/1.1\r\nHost: b\r\n%s"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
               % (vm, hdrs, len(data))).encode() + data)
    status, headers_in, rest = read_head(s, b"")
    if status == 101:
        assert headers_in.get("upgrade", "").lower() == "tcp", headers_in
        return status, Session(s, rest)
    n = int(headers_in.get("content-length", "0"))
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    s.close()
    return status, json.loads(rest[:n])


def finish(ss, limit=20):
    end = time.monotonic() + limit
    while time.monotonic() < end and ss.pump(0.2):
        pass
    return ss


def text(ss):
    return ss.output.decode("utf-8", "replace")


def test_session_with_resize_and_exit_code(daemon, vm):
    status, ss = open_session(daemon, vm, {
        "argv": ["sh", "-c", "tty; stty size; read x; stty size; "
                 "echo got:$x; exit 3"],
        "tty": True, "rows": 30, "cols": 100})
    assert status == 101, ss
    ss.parse()
    assert ss.wait_for(r"30 100\r\n"), text(ss)
    assert re.search(r"^/dev/pts/\d+\r$", text(ss), re.M), text(ss)
    ss.frame(4, struct.pack(">HH", 42, 132))
    ss.frame(0, b"typed\n")
    finish(ss)
    assert "42 132\r\n" in text(ss) and "got:typed\r\n" in text(ss), text(ss)
    assert ss.exit == {"exit_code": "3", "signal": "0", "timed_out": "0"}
    assert ss.frames[-1] == 3 and ss.closed


def test_signal_frame_and_timeout(daemon, vm):
    status, ss = open_session(daemon, vm, {"argv": ["sleep", "301.71"],
                                           "tty": True})
    assert status == 101, ss
    time.sleep(0.3)
    ss.frame(5, bytes([signal.SIGINT]))
    finish(ss)
    assert ss.exit == {"exit_code": "-1", "signal": "2", "timed_out": "0"}
    status, ss = open_session(daemon, vm, {"argv": ["sleep", "301.72"],
                                           "tty": True, "timeout_s": 1})
    assert status == 101, ss
    finish(ss)
    assert ss.exit["timed_out"] == "1", ss.exit


def pgrep(pattern):
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True,
                          text=True).stdout.split()


def test_a_client_that_leaves_ends_the_session(daemon, vm):
    status, ss = open_session(daemon, vm, {
        "argv": ["sh", "-c", "sleep 301.73 & sleep 301.74"], "tty": True})
    assert status == 101, ss
    deadline = time.time() + 10
    while not pgrep("sleep 301.74"):
        assert time.time() < deadline, "the command never started"
        time.sleep(0.05)
    ss.s.close()
    deadline = time.time() + 8
    while pgrep("sleep 301.7[34]"):
        assert time.time() < deadline, "still running after the client left"
        time.sleep(0.1)


def test_refusals_are_json_errors(daemon, vm):
    api = daemon.client

    def refused(body, status, code, name=vm, headers=None):
        st, e = open_session(daemon, name, body, headers)
        assert st == status and e["code"] == code, (st, e)
        return e

    e = refused({"argv": ["true"], "tty": True}, 400, "invalid_request",
                headers="")
    assert "Upgrade: tcp" in e["message"] and e["hint"], e
    e = refused({"argv": ["true"]}, 400, "invalid_request")
    assert "only a terminal session" in e["message"], e
    refused({"argv": ["true"], "tty": True, "stdin": "eA=="}, 400,
            "invalid_request")
    refused({"argv": ["true"], "rows": 10}, 400, "invalid_request",
            headers="")
    refused({"argv": ["true"], "tty": True, "rows": 0}, 400,
            "invalid_request")
    refused({"argv": ["true"], "tty": True, "cols": 10000}, 400,
            "invalid_request")
    refused({"argv": ["true"], "tty": "yes"}, 400, "invalid_field")
    refused({"argv": [], "tty": True}, 400, "invalid_request")
    refused({"argv": ["true"], "tty": True, "user": "no-such-user-4711"},
            400, "invalid_request")
    refused({"argv": ["true"], "tty": True}, 404, "vm_not_found",
            name="ghost")
    api.create_vm("stilled", vcpus=1, memory_mib=128)
    api.action("stilled", "stop")
    refused({"argv": ["true"], "tty": True}, 409, "invalid_state",
            name="stilled")
    api.delete_vm("stilled")


def test_tty_exec_is_in_the_event_stream(daemon, vm):
    status, ss = open_session(daemon, vm, {"argv": ["true", "audit-tty"],
                                           "tty": True})
    assert status == 101, ss
    finish(ss)
    r = daemon.client.get("/v1/events", params={"type": "vm.exec", "vm": vm},
                          headers={"Last-Event-ID": "0"}, stream=True,
                          timeout=10)
    data = None
    for line in r.iter_lines():
        if line.startswith(b"data: ") and b"audit-tty" in line:
            data = json.loads(line[6:])["data"]
            break
    r.close()
    assert data["argv"] == ["true", "audit-tty"] and data["tty"] is True
    assert data["peer_uid"] == os.getuid(), data


def run_on_pty(daemon, argv, rows, cols, actions, timeout=30):
    """argv on a pseudo-terminal of rows x cols, typing actions' bytes
    once the output matches their regex: (output, exit status)."""
    st, out = run_pty_typing(argv, daemon.env, actions, rows, cols, timeout)
    return out, st


def test_cli_exec_it_on_a_terminal(daemon, vm, tmp_path):
    # A shell around banger saves the terminal's settings before and after.
    before, after = tmp_path / "before", tmp_path / "after"
    wrapper = ['/bin/sh', '-c', 'stty -g >"$1"; shift; "$@"; '
               'echo "rc=$?"; stty -g >"$0"', str(after), str(before),
               daemon.banger, "vm", "exec", "-it", vm, "--", "sh", "-c",
               "stty size; echo TERM=$TERM; read x; echo got:$x; exit 3"]
    out, st = run_on_pty(daemon, wrapper, 37, 121,
                         [(r"TERM=", b"hello there\r")])
    assert st == 0, out
    assert "37 121" in out, out
    assert "TERM=xterm" in out or "TERM=" + daemon.env.get("TERM", "") in out
    assert "got:hello there" in out and "rc=3" in out, out
    assert before.read_text() == after.read_text(), \
        "the terminal was not restored"


def test_cli_ctrl_c_goes_to_the_command(daemon, vm):
    out, st = run_on_pty(daemon, [daemon.banger, "vm", "exec", "-t", "-i",
                                  vm, "--", "sh", "-c",
                                  "echo ready; exec sleep 301.75"],
                         24, 80, [(r"ready", b"\x03")])
    assert st == 130, out
    assert not pgrep("sleep 301.75")


def test_cli_exec_t_with_piped_input(daemon, vm):
    r = subprocess.run([daemon.banger, "vm", "exec", "--tty", vm, "--",
                        "sh", "-c", "read a; read b; echo [$a/$b]; cat; "
                        "exit 4"], env=daemon.env, input="one\ntwo\nthree\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 4, r
    assert "[one/two]" in r.stdout and "three" in r.stdout, r
    r = subprocess.run([daemon.banger, "vm", "exec", "-t", vm, "--", "sh",
                        "-c", "kill -9 $$"], env=daemon.env, input="",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 137, r
    r = subprocess.run([daemon.banger, "vm", "exec", "-t", "--timeout", "1",
                        vm, "--", "sleep", "301.76"], env=daemon.env,
                       input="", capture_output=True, text=True, timeout=60)
    assert r.returncode == 124 and "ran out of time" in r.stderr, r
    r = subprocess.run([daemon.banger, "vm", "exec", "-t", "ghost", "--",
                        "true"], env=daemon.env, input="",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and "vm 'ghost' not found" in r.stderr, r
    r = subprocess.run([daemon.banger, "vm", "exec", "-itx", vm, "--",
                        "true"], env=daemon.env, input="",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown flag '-x' in '-itx'" in r.stderr, r


def test_an_agent_without_exec_tty_is_refused(fresh_daemon):
    fresh_daemon.env["BANGER_FAKE_AGENT"] = OLD_AGENT
    fresh_daemon.env["OLD_AGENT_PROTOCOL"] = "6"
    d = fresh_daemon.start()
    d.client.create_vm("oldtty", vcpus=1, memory_mib=128)
    st, e = open_session(d, "oldtty", {"argv": ["true"], "tty": True})
    assert st == 409 and e["code"] == "unsupported_by_vmm", e
    assert "before exec -t" in e["message"], e
    r = subprocess.run([d.banger, "vm", "exec", "-it", "oldtty", "--",
                        "true"], env=d.env, input="", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 4 and "before exec -t" in r.stderr, r
