"""Port forwarding against the Firecracker test double, whose guest agent
is the real banger-vsock-agent (on the host, in bangerd's network
namespace, allowed to forward by --allow-forward): forwards in the spec
that bangerd keeps while the VM runs, live PATCHes, conflicts, a port
taken on the host, POST /v1/vms/{name}/connect upgraded to a raw stream,
and banger vm port-forward / create --port / set --port."""
import hashlib
import os
import signal
import socket
import subprocess
import time

import pytest

from netns import EchoServer, ns_connect, ns_socket, roundtrip

# Ports inside bangerd's own network namespace: nothing else uses them.
GUEST = 7001
HOST = 18080


def ns_pid(daemon):
    return daemon.proc.pid if daemon.netns else None


def refused(pid, port):
    try:
        s = ns_connect(pid, port, timeout=2)
    except (ConnectionRefusedError, socket.timeout):
        return True
    s.close()
    return False


def echo_through(pid, port, data):
    """data through a forwarded port and back; what came back."""
    s = ns_connect(pid, port)
    with s:
        return roundtrip(s, data)


def wait_for(pred, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


@pytest.fixture
def echo(daemon):
    srv = EchoServer(ns_pid(daemon), GUEST)
    yield srv
    srv.close()


def test_spec_is_validated(api, daemon):
    bad = [
        ([{"host": 0, "guest": 80}], 400),
        ([{"host": 8080, "guest": 70000}], 400),
        ([{"host": 8080}], 400),
        ([{"host": 8080, "guest": 80, "address": "localhost"}], 400),
        ([{"host": 8080, "guest": 80, "proto": "udp"}], 400),
        (["8080:80"], 400),
        ([{"host": 8080, "guest": 80}, {"host": 8080, "guest": 81}], 400),
        ([{"host": 8000 + i, "guest": 80} for i in range(17)], 400),
    ]
    for ports, status in bad:
        r = api.post("/v1/vms", {"name": "pv", "ports": ports})
        assert r.status_code == status, (ports, r.text)
        assert api.get("/v1/vms/pv").status_code == 404
    r = api.post("/v1/vms", {"name": "pv", "ports": {"host": 1}})
    assert r.status_code == 400, r.text
    vm = api.create_vm("pv", vcpus=1, ports=[
        {"host": 18081, "guest": 80},
        {"host": 18082, "guest": 22, "address": "::1"}])
    spec = vm["result"]["spec"]
    assert spec["ports"] == [
        {"host": 18081, "guest": 80, "address": "127.0.0.1"},
        {"host": 18082, "guest": 22, "address": "::1"}], spec
    # The same host port on the wildcard clashes with 127.0.0.1.
    r = api.post("/v1/vms", {"name": "pw", "ports": [
        {"host": 18081, "guest": 80, "address": "0.0.0.0"}]})
    assert r.status_code == 409 and r.json()["code"] == "port_in_use", r.text
    assert "'pv'" in r.json()["message"], r.text
    # Another family or port is fine.
    vm = api.create_vm("pw", vcpus=1, ports=[
        {"host": 18081, "guest": 80, "address": "::1"}])
    assert vm["state"] == "succeeded", vm
    r = api.patch("/v1/vms/pw", {"ports": [{"host": 18082, "guest": 1,
                                            "address": "::"}]})
    assert r.status_code == 409 and r.json()["code"] == "port_in_use", r.text
    assert api.get("/v1/vms/pw").json()["spec"]["ports"][0]["host"] == 18081
    api.delete_vm("pv")
    api.delete_vm("pw")


def test_forward_while_running(api, daemon, echo):
    pid = ns_pid(daemon)
    api.create_vm("fw", vcpus=1, ports=[{"host": HOST, "guest": GUEST}])
    data = os.urandom(3 << 20)
    got = echo_through(pid, HOST, data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    # Many at once.
    socks = [ns_connect(pid, HOST) for _ in range(40)]
    for i, s in enumerate(socks):
        s.sendall(b"n%d" % i)
    for i, s in enumerate(socks):
        assert s.recv(100) == b"n%d" % i
        s.close()
    # Stopped: nothing listens, and an open relay ends.
    held = ns_connect(pid, HOST)
    held.sendall(b"x")
    assert held.recv(1) == b"x"
    api.action("fw", "stop")
    assert refused(pid, HOST)
    held.settimeout(5)
    try:
        assert held.recv(1) == b""
    except ConnectionResetError:
        pass
    held.close()
    api.action("fw", "start")
    assert echo_through(pid, HOST, b"again") == b"again"
    api.delete_vm("fw")
    assert refused(pid, HOST)


def test_patch_applies_at_once(api, daemon, echo):
    pid = ns_pid(daemon)
    api.create_vm("fp", vcpus=1, ports=[{"host": HOST, "guest": GUEST}])
    r = api.patch("/v1/vms/fp", {"ports": [{"host": HOST + 1,
                                            "guest": GUEST}]})
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["ports"][0]["host"] == HOST + 1
    assert refused(pid, HOST)
    assert echo_through(pid, HOST + 1, b"moved") == b"moved"
    # The same host port to another guest port: kept, and re-pointed.
    r = api.patch("/v1/vms/fp", {"ports": [{"host": HOST + 1,
                                            "guest": GUEST + 1}]})
    assert r.status_code == 200, r.text
    s = ns_connect(pid, HOST + 1)
    s.settimeout(5)
    try:
        assert s.recv(1) == b""     # reset: nothing on GUEST + 1
    except ConnectionResetError:
        pass
    s.close()
    r = api.patch("/v1/vms/fp", {"ports": []})
    assert r.status_code == 200 and r.json()["spec"]["ports"] == [], r.text
    assert refused(pid, HOST + 1)
    api.delete_vm("fp")


def test_a_port_taken_on_the_host(api, daemon, echo):
    pid = ns_pid(daemon)
    taken = ns_socket(pid)
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", HOST))
    taken.listen(1)
    try:
        r = api.post("/v1/vms", {"name": "ft", "vcpus": 1, "ports": [
            {"host": HOST, "guest": GUEST}]}, params={"wait": 60})
        op = r.json()
        assert op["state"] == "failed", op
        assert op["error"]["code"] == "port_in_use", op
        assert api.get("/v1/vms/ft").status_code == 404
        # A stopped VM whose port is taken does not start, and stays stopped
        # with nothing half made; a live PATCH to it is refused.
        api.create_vm("ft", vcpus=1)
        r = api.patch("/v1/vms/ft", {"ports": [{"host": HOST,
                                                "guest": GUEST}]})
        assert r.status_code == 409 and r.json()["code"] == "port_in_use", \
            r.text
        assert api.get("/v1/vms/ft").json()["spec"]["ports"] == []
        api.action("ft", "stop")
        r = api.patch("/v1/vms/ft", {"ports": [{"host": HOST,
                                                "guest": GUEST}]})
        assert r.status_code == 200, r.text
        r = api.post("/v1/vms/ft/start", params={"wait": 60})
        op = r.json()
        assert op["state"] == "failed" and \
            op["error"]["code"] == "port_in_use", op
        vm = api.get("/v1/vms/ft").json()
        assert vm["status"]["state"] == "stopped", vm
        assert vm["status"]["pid"] is None, vm
    finally:
        taken.close()
    api.action("ft", "start")
    assert echo_through(pid, HOST, b"free now") == b"free now"
    api.delete_vm("ft")


def upgrade(daemon, path, extra=b"", headers=None):
    """POST path on the API socket asking for Upgrade: tcp; the socket and
    the reply's head (status, raw head) and what followed it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(daemon.socket)
    hdrs = headers if headers is not None else \
        "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: 0\r\n\r\n"
               % (path, hdrs)).encode() + extra)
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        assert b, buf
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    return s, int(head.split()[1]), head.decode(), rest


def test_connect_upgrades_to_the_guest_port(api, daemon, echo):
    api.create_vm("fc1", vcpus=1)
    s, status, head, rest = upgrade(daemon, "/v1/vms/fc1/connect?port=%d"
                                    % GUEST, extra=b"early bytes|")
    assert status == 101, head
    assert "upgrade: tcp" in head.lower(), head
    data = os.urandom(1 << 20)
    got = rest + roundtrip(s, data)
    assert got == b"early bytes|" + data
    s.close()
    # Refusals are JSON errors before any upgrade.
    for path, hdrs, code, status in [
            ("/v1/vms/fc1/connect?port=%d" % (GUEST + 5), None,
             "guest_port_unreachable", 502),
            ("/v1/vms/fc1/connect?port=0", None, "invalid_request", 400),
            ("/v1/vms/fc1/connect", None, "invalid_request", 400),
            ("/v1/vms/fc1/connect?port=%d" % GUEST, "", "invalid_request",
             400),
            ("/v1/vms/nosuch/connect?port=80", None, "vm_not_found", 404),
            ("/v1/vms/Bad_Name/connect?port=80", None, "invalid_name", 400)]:
        path, _, q = path.partition("?")
        params = dict([q.split("=")]) if q else None
        r = api.post(path, params=params, headers=None if hdrs == "" else
                     {"Connection": "Upgrade", "Upgrade": "tcp"})
        assert r.status_code == status, (path, r.text)
        assert r.json()["code"] == code, (path, r.text)
    api.action("fc1", "stop")
    r = api.post("/v1/vms/fc1/connect", params={"port": GUEST},
                 headers={"Connection": "Upgrade", "Upgrade": "tcp"})
    assert r.status_code == 409, r.text
    api.delete_vm("fc1")


def test_connect_ends_when_the_vm_stops(api, daemon, echo):
    api.create_vm("fc2", vcpus=1)
    s, status, head, _ = upgrade(daemon, "/v1/vms/fc2/connect?port=%d"
                                 % GUEST)
    assert status == 101, head
    s.sendall(b"ping")
    assert s.recv(4) == b"ping"
    api.action("fc2", "stop")
    s.settimeout(5)
    try:
        assert s.recv(1) == b""
    except ConnectionResetError:
        pass
    s.close()
    api.delete_vm("fc2")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_cli_port_forward(daemon, echo):
    api = daemon.client
    api.create_vm("fcli", vcpus=1)
    local = free_port()
    e = dict(daemon.env)
    p = subprocess.Popen([daemon.banger, "vm", "port-forward", "fcli",
                          "%d:%d" % (local, GUEST)], env=e,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("forwarding 127.0.0.1:%d -> fcli:%d"
                               % (local, GUEST)), line
        data = os.urandom(2 << 20)
        s = socket.create_connection(("127.0.0.1", local), timeout=10)
        with s:
            assert roundtrip(s, data) == data
        # Nothing on the guest port: reset, and the reason printed.
        p2 = subprocess.Popen([daemon.banger, "vm", "port-forward", "fcli",
                               "%d:%d" % (local + 1 if local < 65535 else
                                          local - 1, GUEST + 9)],
                              env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        try:
            p2.stdout.readline()
            s = socket.create_connection(
                ("127.0.0.1", local + 1 if local < 65535 else local - 1),
                timeout=10)
            s.settimeout(10)
            try:
                assert s.recv(1) == b""
            except ConnectionResetError:
                pass
            s.close()
        finally:
            p2.send_signal(signal.SIGINT)
            _, err2 = p2.communicate(timeout=10)
        assert "guest port %d" % (GUEST + 9) in err2, err2
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    # Bad input and a stopped VM.
    r = daemon.run_banger("vm", "port-forward", "fcli", "80")
    assert r.returncode == 2 and "HOST_PORT" in r.stderr, r.stderr
    r = daemon.run_banger("vm", "port-forward", "fcli", "x:1:2")
    assert r.returncode == 2 and "address" in r.stderr, r.stderr
    r = daemon.run_banger("vm", "port-forward", "nosuch", "1:2")
    assert r.returncode == 3, r.stderr
    api.action("fcli", "stop")
    r = daemon.run_banger("vm", "port-forward", "fcli", "%d:1" % local)
    assert r.returncode == 4 and "not running" in r.stderr, r.stderr
    api.delete_vm("fcli")


def test_cli_create_set_and_show_ports(daemon, echo):
    pid = ns_pid(daemon)
    r = daemon.run_banger("vm", "create", "--name", "fcs", "--vcpus", "1",
                          "--port", "%d:%d" % (HOST + 2, GUEST),
                          "--port", "[::1]:%d:22" % (HOST + 3))
    assert r.returncode == 0, r.stderr
    r = daemon.run_banger("vm", "show", "fcs")
    assert "127.0.0.1:%d->%d, [::1]:%d->22" % (HOST + 2, GUEST, HOST + 3) \
        in r.stdout, r.stdout
    assert echo_through(pid, HOST + 2, b"cli") == b"cli"
    r = daemon.run_banger("vm", "set", "fcs", "--port", "%d:%d"
                          % (HOST + 4, GUEST))
    assert r.returncode == 0, r.stderr
    assert "ports: 127.0.0.1:%d->%d" % (HOST + 4, GUEST) in r.stdout, r.stdout
    assert refused(pid, HOST + 2)
    assert echo_through(pid, HOST + 4, b"set") == b"set"
    r = daemon.run_banger("vm", "set", "fcs", "--no-ports")
    assert r.returncode == 0 and "ports: none" in r.stdout, r.stdout
    r = daemon.run_banger("vm", "set", "fcs", "--port", "1:2", "--no-ports")
    assert r.returncode == 2, r.stderr
    r = daemon.run_banger("vm", "set", "fcs", "--port", "99999:2")
    assert r.returncode == 2 and "host port" in r.stderr, r.stderr
    r = daemon.run_banger("vm", "set", "fcs", "other", "--port", "1:2")
    assert r.returncode == 2, r.stderr
    daemon.client.delete_vm("fcs")


def test_forwards_come_back_with_bangerd(fresh_daemon):
    """A VM bangerd adopts at its start gets its forwards listening again."""
    d = fresh_daemon.start()
    api = d.client
    vm = api.create_vm("fr", vcpus=1, ports=[{"host": HOST, "guest": GUEST}])
    vmm = vm["result"]["status"]["pid"]
    assert d.stop(signal.SIGTERM) == 0
    d.start()
    assert api.get("/v1/vms/fr").json()["status"]["state"] == "running"
    # The guest's service where the VM's agent is (the first bangerd's
    # namespace, which the VMM keeps); the forward in the new one.
    srv = EchoServer(vmm if d.netns else None, GUEST)
    try:
        assert wait_for(lambda: not refused(ns_pid(d), HOST))
        assert echo_through(ns_pid(d), HOST, b"adopted") == b"adopted"
    finally:
        srv.close()
    api.delete_vm("fr")
