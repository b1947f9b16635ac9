"""The test double's guest: the serial console, the vsock relay to the real
agent, shutdown and signals, and the faults a test can inject.

Run with:  /usr/bin/python3 -m pytest tests/fakes   (BANGER_FAKE_AGENT: the
agent, default runtime/banger-vsock-agent; agent tests skip without it)
"""
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from fakefc import (boot_with_agent, healthz_over_vsock, need_agent, pid_alive,
                    require_fake, vsock_connect, wait_until)

require_fake()


# --------------------------------------------------------------------------
# console, vsock, agent
# --------------------------------------------------------------------------

def test_console_output_on_start(spawn):
    f = spawn()
    f.configure(vsock=False)
    f.start()
    out = wait_until(lambda: "Run /sbin/init" in f.stdout() and f.stdout())
    assert "Linux version" in out
    assert "Command line: console=ttyS0 reboot=k panic=1 root=/dev/vda rw pci=off" in out


def test_no_console_without_ttyS0(spawn):
    f = spawn()
    f.configure(vsock=False, console=False)
    f.start()
    time.sleep(0.1)
    assert "Linux version" not in f.stdout()


def test_vsock_binds_on_put(spawn):
    f = spawn()
    f.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": f.vsock})
    assert Path(f.vsock).is_socket()
    # binding again at the same path fails like EADDRINUSE
    msg = f.fault("PUT", "/vsock", {"guest_cid": 4, "uds_path": f.vsock})
    assert msg == ("Vsock config error: Cannot create backend for vsock device: Error binding to the "
                   "host-side Unix socket: Address in use (os error 98)")
    # a stale file left by another (dead) VMM blocks the bind too
    g = spawn()
    Path(g.vsock).write_text("stale")
    assert "Address in use" in g.fault("PUT", "/vsock", {"guest_cid": 3, "uds_path": g.vsock})


def test_vsock_relay_to_real_agent(spawn):
    need_agent()
    f = spawn()
    f.configure()
    f.start()
    line, data = healthz_over_vsock(f.vsock)
    assert line == b"OK 1073741824\n"
    assert data.startswith(b"HTTP/1."), data[:200]
    assert b" 200 " in data.split(b"\r\n", 1)[0]
    # a lower-case keyword is accepted
    s, line = vsock_connect(f.vsock, keyword="connect")
    assert s is not None and line.startswith(b"OK ")
    s.close()
    # nobody listens on another guest port: closed with no message
    s, line = vsock_connect(f.vsock, port=52)
    assert s is None and line == b""
    # garbage instead of CONNECT: closed
    s, line = vsock_connect(f.vsock, keyword="HELLO")
    assert s is None and line == b""

    # several concurrent connections, host ports allocated upward
    results = []

    def worker():
        results.append(healthz_over_vsock(f.vsock))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 16
    ports = sorted(int(line.split()[1]) for line, _ in results)
    assert len(set(ports)) == 16 and ports[0] > 1073741824
    assert all(b" 200 " in d.split(b"\r\n", 1)[0] for _, d in results)
    assert Path(f.vsock + ".agent").exists()


def test_agent_runs_exec(spawn):
    # The double starts its agent with --allow-exec: POST /exec runs here.
    need_agent()
    f = spawn()
    f.configure()
    f.start()
    healthz_over_vsock(f.vsock)   # the agent is up
    s, line = vsock_connect(f.vsock)
    assert s is not None and line.startswith(b"OK ")
    # HTTP/1.0: no chunks, the frames run to the close
    s.sendall(b"POST /exec?arg=echo&arg=hi HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n", 1)[0], head
    exit_text = b"exit_code=0\nsignal=0\ntimed_out=0\n"
    assert body == (b"\x01\0\0\0\0\0\0\x03hi\n" + b"\x03\0\0\0" +
                    len(exit_text).to_bytes(4, "big") + exit_text), body


def test_long_uds_path_still_reaches_agent(spawn):
    need_agent()
    f = spawn()
    long_dir = f.dir / ("d" * (104 - len(str(f.dir)) - 8))
    long_dir.mkdir()
    f.vsock = str(long_dir / "v.sock")
    assert len(f.vsock) == 104 and len(f.vsock + ".agent") > 107
    f.configure()
    f.start()
    line, data = healthz_over_vsock(f.vsock)
    assert line == b"OK 1073741824\n" and data.startswith(b"HTTP/1.")


def test_ctrl_alt_del_exits_cleanly(spawn):
    f, agents = boot_with_agent(spawn)
    assert len(agents) == 1
    f.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    assert f.proc.wait(3) == 0
    assert "reboot: Restarting system" in f.stdout()
    assert not any(pid_alive(p) for p in agents)
    # like Firecracker: sockets stay behind; the fake's own .agent socket is removed
    assert Path(f.sock).is_socket() and Path(f.vsock).is_socket()
    assert not os.path.exists(f.vsock + ".agent")


def test_ctrl_alt_del_while_paused_waits_for_resume(spawn):
    f = spawn()
    f.configure(vsock=False)
    f.start()
    f.ok("PATCH", "/vm", {"state": "Paused"})
    f.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    time.sleep(0.2)
    assert f.proc.poll() is None
    f.ok("PATCH", "/vm", {"state": "Resumed"})
    assert f.proc.wait(3) == 0


def test_sigterm_kills_fake_and_agent(spawn):
    f, agents = boot_with_agent(spawn)
    f.proc.send_signal(signal.SIGTERM)
    assert f.proc.wait(3) == -signal.SIGTERM
    assert wait_until(lambda: not any(pid_alive(p) for p in agents), 2)
    assert Path(f.sock).exists() and Path(f.vsock).exists()


def test_agent_dies_with_sigkilled_fake(spawn):
    f, agents = boot_with_agent(spawn)
    assert agents
    f.proc.kill()
    f.proc.wait()
    assert wait_until(lambda: not any(pid_alive(p) for p in agents), 2)


def test_missing_agent_binary_is_reported(spawn):
    f = spawn(env={"BANGER_FAKE_AGENT": "/nonexistent/agent"})
    f.configure()
    f.start()
    assert wait_until(lambda: "not usable" in f.stderr(), 2)
    s, line = vsock_connect(f.vsock)
    assert s is None and line == b""
    assert f.ok("GET", "/")["state"] == "Running"


# --------------------------------------------------------------------------
# fault injection
# --------------------------------------------------------------------------

def test_fault_fail(spawn):
    f = spawn(faults={"fail": "PUT /drives/work", "fail_message": "disk on fire"})
    work = f.dir / "work.ext4"
    work.write_bytes(b"\0")
    f.configure(vsock=False)
    assert f.fault("PUT", "/drives/work", {"drive_id": "work", "path_on_host": str(work),
                                           "is_root_device": False}) == "disk on fire"
    g = spawn(faults={"fail": ["PUT /actions", "GET /machine-config"]})
    assert g.fault("GET", "/machine-config") == "injected fault"
    g.configure(vsock=False)
    assert g.fault("PUT", "/actions", {"action_type": "InstanceStart"}) == "injected fault"
    assert g.ok("GET", "/")["state"] == "Not started"


def test_fault_listen_delay(spawn):
    t0 = time.monotonic()
    f = spawn(faults={"listen_delay_ms": 300})
    assert time.monotonic() - t0 >= 0.28
    assert f.ok("GET", "/")["id"] == "vm-test"


def test_fault_die_after_start(spawn):
    f = spawn(faults={"die_after_start": True})
    f.configure()
    f.start()  # answered 204 first
    assert f.proc.wait(3) == 1
    assert not os.path.exists(f.vsock + ".agent")


def test_fault_exit_at_start(spawn):
    f = spawn(faults={"exit_at_start": 7}, wait=False)
    assert f.proc.wait(3) == 7
    assert not os.path.exists(f.sock)


def test_fault_agent_delay(spawn):
    need_agent()
    f = spawn(faults={"agent_delay_ms": 500})
    f.configure()
    t0 = time.monotonic()
    f.start()
    # guest still "booting": the CONNECT is closed without an answer
    s, line = vsock_connect(f.vsock)
    assert s is None and line == b""
    line, data = healthz_over_vsock(f.vsock)
    assert line.startswith(b"OK ") and time.monotonic() - t0 >= 0.5


def test_fault_no_agent(spawn):
    f = spawn(faults={"no_agent": True})
    f.configure()
    f.start()
    time.sleep(0.2)
    assert f.agent_pids() == set()
    s, line = vsock_connect(f.vsock)
    assert s is None and line == b""


def test_fault_ignore_ctrl_alt_del(spawn):
    f = spawn(faults={"ignore_ctrl_alt_del": True})
    f.configure(vsock=False)
    f.start()
    f.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    time.sleep(0.3)
    assert f.proc.poll() is None
    f.proc.send_signal(signal.SIGTERM)
    assert f.proc.wait(3) == -signal.SIGTERM


def test_fault_shutdown_delay(spawn):
    f = spawn(faults={"shutdown_delay_ms": 400})
    f.configure(vsock=False)
    f.start()
    t0 = time.monotonic()
    f.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    assert f.proc.wait(3) == 0
    assert time.monotonic() - t0 >= 0.35


def test_fault_match_id(spawn):
    f = spawn(vm_id="vm-other", faults={"fail": "GET /", "match_id": "target"})
    assert f.ok("GET", "/")["id"] == "vm-other"
    g = spawn(vm_id="vm-target-7", faults={"fail": "GET /version", "match_id": "target"})
    assert g.fault("GET", "/version") == "injected fault"


@pytest.mark.parametrize("faults", ['{"fial": "PUT /actions"}', '{"die_after_start": 1}', "not json",
                                    '{"fail": "drives"}'])
def test_fault_file_errors_exit_2(spawn, faults):
    f = spawn(faults=faults, wait=False)
    assert f.proc.wait(3) == 2
    assert f.stderr().strip()


def test_fault_file_missing_is_ignored(spawn, workdir):
    f = spawn(env={"BANGER_FAKE_FC_FAULTS": str(workdir / "nope.json")})
    assert f.ok("GET", "/")["state"] == "Not started"
