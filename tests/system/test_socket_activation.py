"""bangerd under socket activation, as bangerd.socket starts it.

systemd-socket-activate (Debian's systemd package) binds the listening
socket in a temporary directory, waits for the first connection and execs
bangerd with LISTEN_FDS/LISTEN_PID, as systemd does.  bangerd runs in its
own network namespace (when we are root) with the Firecracker test double,
like every API test.
"""
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from daemon import Daemon

SSA = shutil.which("systemd-socket-activate")

pytestmark = pytest.mark.skipif(
    SSA is None, reason="systemd-socket-activate not found (Debian package "
    "systemd); socket activation is not tested")


def activated_argv(d, listen, netns_setup=None):
    """argv that runs bangerd under systemd-socket-activate with 'listen'
    (its socket options).  systemd-socket-activate passes only the
    environment named with -E."""
    argv = [SSA] + listen
    for k in sorted(d.env):
        if k.startswith("BANGER_") or k in ("PATH", "HOME"):
            argv += ["-E", k]
    argv += [d.bangerd, "-d"]
    if not d.netns:
        return argv
    if netns_setup:
        # unshare, sh and systemd-socket-activate exec each other: one pid,
        # the one nsenter needs.
        return ["unshare", "-n", "sh", "-c", netns_setup + ' && exec "$@"',
                "sh"] + argv
    return ["unshare", "-n"] + argv


def spawn(d, argv):
    logf = open(d.log, "ab")
    d.proc = subprocess.Popen(argv, env=d.env, stdout=logf,
                              stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    logf.close()


def wait_for_log(d, text, timeout=10):
    """Wait for 'text' in the log.  systemd-socket-activate prints
    "Listening on ADDR" after listen(): the socket file alone appears at
    bind(), when connecting is still refused."""
    deadline = time.time() + timeout
    while text not in d.read_log():
        if d.proc.poll() is not None or time.time() > deadline:
            raise AssertionError("no %r in the log:\n%s" % (text, d.read_log()))
        time.sleep(0.02)


def wait_exit(d, timeout=15):
    try:
        rc = d.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        d.proc.wait()
        raise AssertionError("bangerd did not exit:\n" + d.read_log())
    d.proc = None
    return rc


@pytest.fixture
def sa_daemon():
    d = Daemon()
    yield d
    d.cleanup()


def test_serves_on_the_activated_socket(sa_daemon):
    d = sa_daemon
    spawn(d, activated_argv(d, ["-l", d.socket]))
    wait_for_log(d, "Listening on %s " % d.socket)
    before = os.stat(d.socket)
    # The first connection makes systemd-socket-activate exec bangerd,
    # which then answers it from the socket's backlog.
    r = d.client.get("/v1/healthz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    # (logged just after the server starts, so maybe after it answered)
    wait_for_log(d, "serving on %s (socket activation)" % d.socket)

    # The socket is the one systemd-socket-activate made: not re-bound,
    # not chmod-ed to bangerd's 0660, not re-grouped.
    after = os.stat(d.socket)
    assert (after.st_ino, after.st_mode, after.st_gid) == \
        (before.st_ino, before.st_mode, before.st_gid)
    assert stat.S_IMODE(before.st_mode) != 0o660, oct(before.st_mode)

    # The whole API is there: the CLI creates a VM on the test double.
    r = d.run_banger("vm", "create", "--name", "sa1", "--vcpus", "1",
                     "--memory", "128", "--disk", "1")
    assert r.returncode == 0, r.stderr
    r = d.run_banger("vm", "list", "-q")
    assert r.stdout.split() == ["sa1"], r.stdout
    # sd_listen_fds(1) unset LISTEN_* before the VMM was spawned.
    pids = d.vmm_pids()
    assert pids, "no VMM process for the VM"
    for pid in pids:
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
        assert not [e for e in env if e.startswith(b"LISTEN_")], env

    # SIGTERM: a clean exit that leaves systemd's socket where it is, and
    # the VM running.
    assert d.stop() == 0, d.read_log()
    assert os.stat(d.socket).st_ino == before.st_ino
    assert d.vmm_pids() == pids


def trigger_stream(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def assert_refused(d, message):
    rc = wait_exit(d)
    log = d.read_log()
    assert rc != 0, log
    assert message in log, log
    # Refused before touching anything: no state directory, no lock.
    assert not os.path.exists(d.state), os.listdir(d.state)


def test_two_sockets_are_refused(sa_daemon):
    d = sa_daemon
    second = os.path.join(d.dir, "second.sock")
    spawn(d, activated_argv(d, ["-l", d.socket, "-l", second]))
    wait_for_log(d, "Listening on %s " % second)
    conn = trigger_stream(d.socket)
    assert_refused(d, "socket activation passed 2 sockets")
    conn.close()


def test_seqpacket_socket_is_refused(sa_daemon):
    d = sa_daemon
    spawn(d, activated_argv(d, ["--seqpacket", "-l", d.socket]))
    wait_for_log(d, "Listening on %s " % d.socket)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(d.socket)
    assert_refused(d, "is not a listening AF_UNIX stream socket")
    s.close()


def test_tcp_socket_is_refused(sa_daemon):
    d = sa_daemon
    port = 40000 + os.getpid() % 20000
    addr = "127.0.0.1:%d" % port
    spawn(d, activated_argv(d, ["-l", addr], netns_setup="ip link set lo up"))
    # Listening, hence past unshare: nsenter then finds the new namespace.
    wait_for_log(d, "Listening on %s " % addr)
    connect = [sys.executable, "-c",
               "import socket, sys, time\n"
               "for _ in range(200):\n"
               "    try:\n"
               "        s = socket.create_connection(('127.0.0.1', %d)); break\n"
               "    except OSError:\n"
               "        time.sleep(0.05)\n"
               "else:\n"
               "    sys.exit('no listener')\n"
               "time.sleep(0.5)\n" % port]
    if d.netns:
        connect = ["nsenter", "-t", str(d.proc.pid), "-n"] + connect
    subprocess.run(connect, check=True, timeout=30)
    assert_refused(d, "is not a listening AF_UNIX stream socket")


def test_without_activation_nothing_changes(sa_daemon):
    """LISTEN_FDS meant for another process (LISTEN_PID) is ignored:
    bangerd binds its own socket, 0660, and removes it on exit."""
    d = sa_daemon
    d.env["LISTEN_FDS"] = "1"
    d.env["LISTEN_PID"] = "1"
    d.start()
    assert stat.S_IMODE(os.stat(d.socket).st_mode) == 0o660
    assert "(socket activation)" not in d.read_log()
    assert d.stop() == 0
    assert not os.path.exists(d.socket)
