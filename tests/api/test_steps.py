"""Every VM operation is a table of steps (src/core/lifecycle.c).  Each
step of each table is made to fail in turn (bangerd's failpoint file) and
the host must be left as the VM's record says: no VMM process, TAP, NAT
rule, lease, directory or row that the failed operation made and did not
take back.  The tables come from `bangerd --list-steps`, so a step added
later is covered without a new test.  Needs root (TAPs, nftables in a
network namespace)."""
import json
import os
import shutil
import sqlite3
import subprocess

import pytest

from daemon import BANGERD, Daemon

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="the step tests need root and unshare (TAPs, nftables)")

NAME = "fp"
# What each kind needs before it runs: no VM, a stopped one, a running one,
# a running one with a snapshot (SNAP) taken before its work disk changed,
# or no VM and the default image warm.
SETUP = {"vm.create": None, "vm.start": "stopped", "vm.stop": "running",
         "vm.restart": "running", "vm.delete": "running",
         "vm.snapshot": "running", "vm.restore": "snapshot",
         "vm.clone": "snapshot", "vm.create_warm": "warm"}
SNAP = "s0"
CLONE = "fpc"
# Each VM forwards a host port while it runs (the "ports" step).
PORTS = {NAME: [{"host": 18090, "guest": 1}],
         CLONE: [{"host": 18091, "guest": 1}]}
# Written at the end of the work disk file after SNAP was taken: a restore
# takes it away, a failed restore must leave it.
MARK = b"written-after-the-snapshot"


def tables():
    out = subprocess.run([BANGERD, "--list-steps"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


CASES = [(t["kind"], s["name"]) for t in tables() for s in t["steps"]]


def ns(d, *argv):
    return subprocess.run(["nsenter", "-t", str(d.proc.pid), "-n"] +
                          list(argv), capture_output=True, text=True,
                          timeout=30)


@pytest.fixture(scope="module")
def stepd():
    d = Daemon()
    d.failpoint = os.path.join(d.dir, "failpoint")
    d.env["BANGERD_FAILPOINT_FILE"] = d.failpoint
    d.start()
    ns(d, "ip", "link", "set", "lo", "up")
    yield d
    d.cleanup()


def ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def set_failpoint(d, value):
    with open(d.failpoint, "w") as f:
        f.write(value)


def host_view(d):
    """What exists on the host, next to what the store says."""
    api = d.client
    vms = {v["name"]: v for v in api.get("/v1/vms").json()["vms"]}
    vmdir = os.path.join(d.state, "vms")
    warmdir = os.path.join(d.state, "warm")
    links = json.loads(ns(d, "ip", "-j", "link", "show").stdout)
    nft = ns(d, "nft", "list", "table", "inet", "banger")
    listening = {int(line.split()[3].rsplit(":", 1)[1]) for line in
                 ns(d, "ss", "-Hltn").stdout.splitlines() if line.strip()}
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.state, "banger.db"),
                         uri=True)
    try:
        leases = {r[0] for r in db.execute("SELECT vm_id FROM leases")}
        rows = {r[0] for r in db.execute("SELECT name FROM vms")}
        snaps = {(r[0], r[1]) for r in
                 db.execute("SELECT vm_id, name FROM snapshots")}
        warm = {r[0] for r in db.execute("SELECT image FROM warm")}
    finally:
        db.close()
    snapdirs = set()
    if os.path.isdir(vmdir):
        for vid in os.listdir(vmdir):
            sd = os.path.join(vmdir, vid, "snapshots")
            if os.path.isdir(sd):
                snapdirs |= {(vid, n) for n in os.listdir(sd)}
    return {
        "vms": vms,
        "rows": rows,
        "dirs": set(os.listdir(vmdir)) if os.path.isdir(vmdir) else set(),
        "procs": set(d.vmm_pids()),
        "taps": {l["ifname"] for l in links if l["ifname"].startswith("bt-")},
        "nft": nft.stdout if nft.returncode == 0 else "",
        "listening": listening,
        "leases": leases,
        "snaps": snaps,
        "snapdirs": snapdirs,
        "warm": warm,
        "warmdirs": set(os.listdir(warmdir)) if os.path.isdir(warmdir)
        else set(),
    }


def assert_consistent(d, case):
    """The host holds exactly what the records say."""
    v = host_view(d)
    why = "%s: %r" % (case, {k: v[k] for k in v if k != "vms"})
    assert set(v["vms"]) == v["rows"], why
    ids = {vm["id"] for vm in v["vms"].values()}
    assert v["dirs"] <= ids, "a directory without its VM: " + why
    assert v["leases"] <= ids, "a lease without its VM: " + why
    assert v["snaps"] == v["snapdirs"], "snapshot rows and files differ: " + why
    assert v["warm"] == v["warmdirs"], "warm rows and files differ: " + why
    live = set()
    for vm in v["vms"].values():
        st = vm["status"]
        pid = st.get("pid") or 0
        assert st["state"] in ("running", "stopped", "error"), why
        if st["state"] == "running":
            assert pid in v["procs"], "running without a VMM: " + why
            live.add(pid)
            assert "bt-" + vm["id"][:12] in v["taps"], why
            if vm["spec"]["nat"]:
                assert st["ip"] in v["nft"], "NAT rule missing: " + why
            for p in vm["spec"]["ports"]:
                assert p["host"] in v["listening"], "no forward: " + why
        elif st["state"] == "stopped":
            assert not pid, why
            assert "bt-" + vm["id"][:12] not in v["taps"], why
            assert not st.get("ip") or st["ip"] not in v["nft"], why
            for p in vm["spec"]["ports"]:
                assert p["host"] not in v["listening"], \
                    "a stopped VM's forward: " + why
            for sock in ("fc.sock", "vsock.sock"):
                assert not os.path.exists(os.path.join(
                    d.state, "vms", vm["id"], sock)), why
    ours = {p["host"] for ports in PORTS.values() for p in ports}
    kept = {p["host"] for vm in v["vms"].values()
            if vm["status"]["state"] == "running" for p in vm["spec"]["ports"]}
    assert v["listening"] & ours == kept, "a forward no VM owns: " + why
    # The double runs the guest agent as its child.
    owned = {p for p in v["procs"] if p in live or ppid(p) in live}
    assert v["procs"] == owned, "a VMM process no VM owns: " + why
    return v


def prepare(d, kind):
    api = d.client
    set_failpoint(d, "")
    for name in (CLONE, NAME):
        if api.get("/v1/vms/" + name).status_code == 200:
            api.delete_vm(name)
    want = SETUP[kind]
    if want == "warm":
        if api.get("/v1/images/default").json()["warm"] is None:
            op = api.post("/v1/images/default/warm",
                          params={"wait": 60}).json()
            assert op["state"] == "succeeded", op
    elif want is not None:
        vm = api.create_vm(NAME, vcpus=1, nat=True, ports=PORTS[NAME])
        assert vm["state"] == "succeeded", vm
        if want == "stopped":
            api.action(NAME, "stop")
        if want == "snapshot":
            op = api.post("/v1/vms/%s/snapshots" % NAME, {"name": SNAP},
                          params={"wait": 60}).json()
            assert op["state"] == "succeeded", op
            with open(work_disk(d), "ab") as f:
                f.write(MARK)


def work_disk(d):
    vm = d.client.get("/v1/vms/" + NAME).json()
    return os.path.join(d.state, "vms", vm["id"], "work.ext4")


def marked(d):
    with open(work_disk(d), "rb") as f:
        f.seek(-len(MARK), os.SEEK_END)
        return f.read() == MARK


def run(d, kind):
    api = d.client
    if kind == "vm.create":
        r = api.post("/v1/vms", {"name": NAME, "vcpus": 1, "nat": True,
                                 "ports": PORTS[NAME]}, params={"wait": 60})
    elif kind == "vm.delete":
        r = api.delete("/v1/vms/" + NAME, params={"wait": 60,
                                                  "force": "true"})
    elif kind == "vm.snapshot":
        r = api.post("/v1/vms/%s/snapshots" % NAME, {"name": "s1"},
                     params={"wait": 60})
    elif kind == "vm.restore":
        r = api.post("/v1/vms/%s/restore" % NAME, {"snapshot": SNAP},
                     params={"wait": 60})
    elif kind == "vm.clone":
        r = api.post("/v1/vms", {"name": CLONE, "from": NAME + "@" + SNAP,
                                 "nat": True, "ports": PORTS[CLONE]},
                     params={"wait": 60})
    elif kind == "vm.create_warm":
        # The default image's shape: a copy of its warm snapshot.
        r = api.post("/v1/vms", {"name": CLONE, "nat": True,
                                 "ports": PORTS[CLONE]}, params={"wait": 60})
    else:
        r = api.post("/v1/vms/%s/%s" % (NAME, kind[3:]), params={"wait": 60})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("kind,step", CASES,
                         ids=["%s:%s" % c for c in CASES])
def test_a_failing_step_leaves_nothing_behind(stepd, kind, step):
    d = stepd
    prepare(d, kind)
    before = assert_consistent(d, "before")
    set_failpoint(d, "%s:%s" % (kind, step))
    op = run(d, kind)
    set_failpoint(d, "")
    assert op["state"] == "failed", op
    assert "failpoint %s:%s" % (kind, step) in op["error"]["message"], op
    after = assert_consistent(d, "%s:%s" % (kind, step))
    # What the failure leaves, per kind.
    vm = after["vms"].get(NAME)
    if kind == "vm.create":
        assert vm is None, vm
        assert after["dirs"] == before["dirs"]
    elif kind == "vm.clone":
        assert CLONE not in after["vms"], after["vms"]
        assert after["dirs"] == before["dirs"]
        assert vm["status"]["state"] == "running", vm
    elif kind == "vm.create_warm":
        assert CLONE not in after["vms"], after["vms"]
        assert after["dirs"] == before["dirs"]
        assert after["warm"] == {"default"}, "the warm snapshot stays"
    elif kind == "vm.start":
        assert vm["status"]["state"] == "stopped", vm
    elif kind == "vm.snapshot":
        # The VM runs on; the snapshot is not there.
        assert vm["status"]["state"] == "running", vm
        snaps = d.client.get("/v1/vms/%s/snapshots" % NAME).json()
        assert [s["name"] for s in snaps["snapshots"]] == [], snaps
    elif kind == "vm.restore":
        # Untouched (a failed check), or stopped with its own disks.
        assert vm["status"]["state"] in ("running", "stopped"), vm
        assert marked(d), "a failed restore must give the VM its disks back"
    else:
        # A stop is not undone: the VM is still up, or stopped for good.
        assert vm is not None and vm["status"]["state"] in ("running",
                                                             "stopped"), vm
    # And the VM works again: the next run of the same operation succeeds.
    if kind != "vm.create" or vm is None:
        prepare(d, kind)
        again = run(d, kind)
        assert again["state"] == "succeeded", again
        assert_consistent(d, "%s again" % kind)
        if kind == "vm.restore":
            assert not marked(d), "the restored work disk is the snapshot's"


def test_every_operation_has_a_table():
    kinds = {t["kind"] for t in tables()}
    assert kinds == set(SETUP), kinds
    for t in tables():
        names = [s["name"] for s in t["steps"]]
        assert len(names) == len(set(names)), t
