"""Host networking, each daemon in its own network namespace: bridge, TAPs
and the pool, leases, NAT rules and real forwarding, .vm DNS, reconcile.
Needs root (network namespaces, netlink, nftables)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="host networking tests need root and unshare (network namespaces)")


def host(d, *argv, check=True):
    """Run a command in the daemon's network namespace."""
    r = subprocess.run(["nsenter", "-t", str(d.proc.pid), "-n"] + list(argv),
                       capture_output=True, text=True, timeout=30)
    if check:
        assert r.returncode == 0, (argv, r.stdout, r.stderr)
    return r


def links(d):
    out = host(d, "ip", "-j", "link", "show").stdout
    return {l["ifname"]: l for l in json.loads(out)}


def nft_table(d):
    r = host(d, "nft", "list", "table", "inet", "banger", check=False)
    return r.stdout if r.returncode == 0 else None


def wait_for(fn, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


@pytest.fixture
def netd(fresh_daemon):
    d = fresh_daemon.start()
    # A fresh namespace starts with lo down; a real host has it up (local
    # traffic to the bridge address goes through it).
    host(d, "ip", "link", "set", "lo", "up")
    return d


def test_bridge_tap_and_lease(netd):
    d, api = netd, netd.client
    calls_before = 0
    if os.path.exists(d.fc_log):
        with open(d.fc_log) as f:
            calls_before = len(f.readlines())
    vm = api.create_vm("web", vcpus=1)["result"]
    st = vm["status"]
    assert st["ip"].startswith("172.30.0.") and st["dns_name"] == "web.vm", st
    ls = links(d)
    assert "banger0" in ls
    tap = "bt-" + vm["id"][:12]
    assert tap in ls and ls[tap].get("master") == "banger0", ls.get(tap)
    assert "UP" in ls[tap]["flags"]
    # Firecracker got the NIC and the kernel the address.
    with open(d.fc_log) as f:
        calls = [json.loads(l) for l in f.readlines()[calls_before:]]
    nic = [c for c in calls if c["path"] == "/network-interfaces/eth0"]
    assert nic, [c["path"] for c in calls]
    body = json.loads(nic[0]["body"])
    assert body["host_dev_name"] == tap
    assert body["guest_mac"].startswith("06:00:ac:1e:00:")
    boot = json.loads([c for c in calls if c["path"] == "/boot-source"][0]["body"])
    assert "ip=%s::172.30.0.1:255.255.255.0:web:eth0:off" % st["ip"] in boot["boot_args"]
    # The lease survives stop/start; the TAP does not outlive the run.
    api.action("web", "stop")
    assert tap not in links(d)
    again = api.action("web", "start")["result"]["status"]
    assert again["ip"] == st["ip"]
    assert api.delete_vm("web").json()["state"] == "succeeded"
    assert tap not in links(d)


def test_tap_pool_is_used_and_refilled(netd):
    d, api = netd, netd.client
    pool = lambda: sorted(n for n in links(d) if n.startswith("tap-pool-"))
    assert len(wait_for(lambda: len(pool()) == 4 and pool())) == 4
    for n in ("p1", "p2"):
        api.create_vm(n, vcpus=1)
    # Taken TAPs are renamed after their VM; the pool is topped up again.
    assert wait_for(lambda: len(pool()) == 4), pool()
    for n in ("p1", "p2"):
        api.delete_vm(n)
    ls = links(d)
    assert not [n for n in ls if n.startswith("bt-")], ls.keys()
    assert len(pool()) == 4, "deleted VMs' TAPs returned or removed, pool stays at size"


def test_nat_rules_follow_the_vms(netd):
    d, api = netd, netd.client
    a = api.create_vm("nat-a", vcpus=1, nat=True)["result"]["status"]["ip"]
    b = api.create_vm("nat-b", vcpus=1)["result"]["status"]["ip"]
    t = nft_table(d)
    assert t and a in t and b not in t, t
    r = api.patch("/v1/vms/nat-b", {"nat": True})
    assert r.status_code == 200
    t = nft_table(d)
    assert a in t and b in t
    # Bulk set through /v1/vms/actions.
    r = api.post("/v1/vms/actions", {"action": "set", "nat": False,
                                     "names": ["nat-a", "nat-b"]}, params={"wait": 30})
    assert all(x["ok"] for x in r.json()["result"]["results"]), r.text
    assert nft_table(d) is None, "no NAT VMs: no table"
    api.patch("/v1/vms/nat-a", {"nat": True})
    assert a in nft_table(d)
    api.action("nat-a", "stop")
    assert nft_table(d) is None, "stopped VMs have no rules"
    api.action("nat-a", "start")
    assert a in nft_table(d)
    # A daemon restart rebuilds the same table.
    d.stop()
    host_pid_gone = d.proc is None
    assert host_pid_gone
    d.start()
    assert a in (nft_table(d) or "")
    for n in ("nat-a", "nat-b"):
        api.delete_vm(n)
    assert nft_table(d) is None
    # Other tables are never touched.
    host(d, "nft", "add", "table", "inet", "other")
    api.create_vm("nat-c", vcpus=1, nat=True)
    api.delete_vm("nat-c")
    assert host(d, "nft", "list", "table", "inet", "other").returncode == 0


def test_dns_answers_for_vm_names(netd):
    d, api = netd, netd.client
    ip = api.create_vm("dnsweb", vcpus=1)["result"]["status"]["ip"]

    def dig(*args):
        return host(d, "dig", "+time=2", "+tries=1", "@172.30.0.1", *args).stdout

    assert dig("+short", "dnsweb.vm").strip() == ip
    assert dig("+short", "+tcp", "DNSWEB.vm").strip() == ip
    assert "status: NXDOMAIN" in dig("nothere.vm")
    assert "status: REFUSED" in dig("example.com")
    api.delete_vm("dnsweb")
    assert "status: NXDOMAIN" in dig("dnsweb.vm")
    checks = {c["name"]: c for c in api.get("/v1/doctor").json()["checks"]}
    assert checks["dns"]["status"] == "ok", checks["dns"]
    assert checks["bridge"]["status"] == "ok"
    assert checks["nftables"]["status"] == "ok"


def test_nat_forwards_with_masquerade(netd):
    """A namespace standing in for the guest (on the bridge, with the VM's
    address) reaches a listener in a namespace standing in for the outside
    world, and the listener sees the host's address, not the guest's."""
    d, api = netd, netd.client
    tag = uuid.uuid4().hex[:6]
    guest_ns, out_ns, out2_ns = "bg-g-" + tag, "bg-o-" + tag, "bg-p-" + tag
    for ns in (guest_ns, out_ns, out2_ns):
        subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        # outside world: 10.99.0.2, reached through wan0 (the default route)
        host(d, "ip", "link", "add", "wan0", "type", "veth", "peer", "name", "out0")
        host(d, "ip", "link", "set", "out0", "netns", out_ns)
        host(d, "ip", "addr", "add", "10.99.0.1/24", "dev", "wan0")
        host(d, "ip", "link", "set", "wan0", "up")
        host(d, "ip", "route", "add", "default", "via", "10.99.0.2")
        ox = ["ip", "netns", "exec", out_ns]
        subprocess.run(ox + ["ip", "addr", "add", "10.99.0.2/24", "dev", "out0"], check=True)
        subprocess.run(ox + ["ip", "link", "set", "out0", "up"], check=True)
        subprocess.run(ox + ["ip", "link", "set", "lo", "up"], check=True)

        # A second uplink, not the default route yet: 10.98.0.2 behind wan1
        # (a VPN coming up, a second NIC, wifi after ethernet).
        host(d, "ip", "link", "add", "wan1", "type", "veth", "peer", "name", "out1")
        host(d, "ip", "link", "set", "out1", "netns", out2_ns)
        host(d, "ip", "addr", "add", "10.98.0.1/24", "dev", "wan1")
        host(d, "ip", "link", "set", "wan1", "up")
        px = ["ip", "netns", "exec", out2_ns]
        subprocess.run(px + ["ip", "addr", "add", "10.98.0.2/24", "dev", "out1"], check=True)
        subprocess.run(px + ["ip", "link", "set", "out1", "up"], check=True)
        subprocess.run(px + ["ip", "link", "set", "lo", "up"], check=True)

        ip = api.create_vm("natty", vcpus=1, nat=True)["result"]["status"]["ip"]
        table = nft_table(d)
        # No rule names an uplink: every egress but the bridge masquerades.
        assert 'oifname != "banger0" masquerade' in table, table
        assert "wan0" not in table and "wan1" not in table
        # guest: a veth on the bridge with the VM's address
        host(d, "ip", "link", "add", "vg0", "type", "veth", "peer", "name", "eth0g")
        host(d, "ip", "link", "set", "eth0g", "netns", guest_ns)
        host(d, "ip", "link", "set", "vg0", "master", "banger0")
        host(d, "ip", "link", "set", "vg0", "up")
        gx = ["ip", "netns", "exec", guest_ns]
        subprocess.run(gx + ["ip", "addr", "add", ip + "/24", "dev", "eth0g"], check=True)
        subprocess.run(gx + ["ip", "link", "set", "eth0g", "up"], check=True)
        subprocess.run(gx + ["ip", "route", "add", "default", "via", "172.30.0.1"],
                       check=True)

        listener = subprocess.Popen(ox + ["/usr/bin/python3", "-c", """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.99.0.2", 8099)); s.listen(1); s.settimeout(10)
c, peer = s.accept(); print(peer[0], c.recv(64).decode(), flush=True)
"""], stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        r = subprocess.run(gx + ["/usr/bin/python3", "-c", """
import socket
s = socket.create_connection(("10.99.0.2", 8099), timeout=5); s.sendall(b"hello")
"""], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        out, _ = listener.communicate(timeout=15)
        src, msg = out.split()
        assert msg == "hello"
        assert src == "10.99.0.1", "masqueraded to the host's wan address, got " + src

        # The default route moves to wan1 while the VM runs; nothing is
        # rebuilt, and the VM reaches the world behind wan1 as wan1's
        # address.  (A route change alone: the old world stays reachable
        # on its own subnet, through wan0, masqueraded as wan0's address.)
        host(d, "ip", "route", "replace", "default", "via", "10.98.0.2", "dev", "wan1")
        for world, ns, want in (("10.98.0.2", px, "10.98.0.1"),
                                ("10.99.0.2", ox, "10.99.0.1")):
            listener = subprocess.Popen(ns + ["/usr/bin/python3", "-c", """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8099)); s.listen(1); s.settimeout(10)
print("up", flush=True)
c, peer = s.accept(); print(peer[0], c.recv(64).decode(), flush=True)
""", world], stdout=subprocess.PIPE, text=True)
            assert listener.stdout.readline().strip() == "up"
            r = subprocess.run(gx + ["/usr/bin/python3", "-c", """
import socket, sys
s = socket.create_connection((sys.argv[1], 8099), timeout=5); s.sendall(b"again")
""", world], capture_output=True, text=True, timeout=20)
            assert r.returncode == 0, (world, r.stderr)
            out, _ = listener.communicate(timeout=15)
            assert out.split() == [want, "again"], (world, out)
        assert nft_table(d) == table, "the rules did not change"
        # Without NAT the same connection does not get out.
        api.patch("/v1/vms/natty", {"nat": False})
        r = subprocess.run(gx + ["/usr/bin/python3", "-c", """
import socket, sys
try:
    socket.create_connection(("10.99.0.2", 8099), timeout=2)
except OSError:
    sys.exit(3)
"""], capture_output=True, text=True, timeout=20)
        assert r.returncode == 3
        api.delete_vm("natty")
        assert nft_table(d) is None
    finally:
        for ns in (guest_ns, out_ns, out2_ns):
            subprocess.run(["ip", "netns", "del", ns])


def test_kill9_and_restart_leave_nothing_behind(netd):
    d, api = netd, netd.client
    vm = api.create_vm("crashme", vcpus=1, nat=True)["result"]
    tap = "bt-" + vm["id"][:12]
    d.stop(signal.SIGKILL)
    os.kill(vm["status"]["pid"], signal.SIGKILL)
    time.sleep(0.2)
    d.start()
    got = api.get("/v1/vms/crashme").json()
    assert got["status"]["state"] == "stopped"
    assert got["status"]["ip"] == vm["status"]["ip"], "the lease is kept"
    assert tap not in links(d), "orphaned TAP removed"
    assert nft_table(d) is None, "no rules for a VM that is not running"
    api.action("crashme", "start")
    assert vm["status"]["ip"] in nft_table(d)
    api.delete_vm("crashme")
    assert not [n for n in links(d) if n.startswith("bt-")]


def test_subnet_overlap_is_refused(netd):
    d, api = netd, netd.client
    host(d, "ip", "link", "add", "ovl9", "type", "veth", "peer", "name", "ovl9p")
    host(d, "ip", "link", "set", "ovl9", "up")
    host(d, "ip", "link", "set", "ovl9p", "up")
    host(d, "ip", "route", "add", "172.30.0.0/16", "dev", "ovl9")
    op = api.post("/v1/vms", {"name": "clash", "vcpus": 1}, params={"wait": 30}).json()
    assert op["state"] == "failed"
    msg = op["error"]["message"]
    assert "172.30.0.0/24" in msg and "172.30.0.0/16" in msg and "ovl9" in msg, msg
    assert op["error"]["hint"]
    checks = {c["name"]: c for c in api.get("/v1/doctor").json()["checks"]}
    assert checks["subnet"]["status"] == "fail" and checks["subnet"]["fix"]
