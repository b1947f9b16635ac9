"""A VM's limits (spec "limits") against the Firecracker test double:
validation, Firecracker's rate limiters on the drives and the network
interface (the double checks the bodies against Firecracker's swagger),
and the cgroup each VM's processes go to.  This machine's cgroup v2 has
no controllers (its hierarchy is hybrid), so the cgroup is checked on
stand-in directories laid out as cgroupfs, v2 and a hybrid host's v1
(cgroup_root in config.json): what bangerd writes and where it moves the
VMM, not the kernel's enforcement, which the e2e suite shows."""
import json
import os
import shutil
import tempfile

import pytest

from daemon import Daemon


def fc_bodies(daemon, vm_id):
    out = {}
    if not os.path.exists(daemon.fc_log):
        return out
    with open(daemon.fc_log) as f:
        for line in f:
            rec = json.loads(line)
            if vm_id in json.dumps(rec):
                body = rec.get("body")
                if isinstance(body, str):
                    body = json.loads(body) if body else None
                out[rec["method"] + " " + rec["path"]] = body
    return out


def fake_cgroupfs(root, controllers):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "cgroup.controllers"), "w") as f:
        f.write(controllers + "\n")
    open(os.path.join(root, "cgroup.subtree_control"), "w").close()


@pytest.fixture(scope="module")
def cgd():
    """A bangerd whose cgroup_root is a stand-in cgroupfs (d.cg_root)."""
    root = tempfile.mkdtemp(prefix="bgcg")
    fake_cgroupfs(root, "cpuset cpu io memory pids")
    d = Daemon(config={"cgroup_root": root})
    d.cg_root = root
    d.start()
    yield d
    d.cleanup()
    shutil.rmtree(root, ignore_errors=True)


def test_limits_are_validated(cgd):
    daemon, api = cgd, cgd.client
    bad = [
        {"cpus": 3},                         # more than its 2 vCPUs
        {"cpus": 0.001},
        {"cpus": -1},
        {"cpus": "1"},
        {"memory_max_mib": 300},             # below 256 + the VMM's
        {"disk_bytes_per_s": 100},
        {"net_bytes_per_s": -5},
        {"iops": 5},
    ]
    for lim in bad:
        r = api.post("/v1/vms", {"name": "lv", "vcpus": 2, "memory_mib": 256,
                                 "limits": lim})
        assert r.status_code == 400, (lim, r.text)
        assert api.get("/v1/vms/lv").status_code == 404
    vm = api.create_vm("lv", vcpus=2, memory_mib=256, limits={
        "cpus": 1.5, "memory_max_mib": 512, "disk_bytes_per_s": 1 << 20,
        "disk_ops_per_s": 500, "net_bytes_per_s": 1 << 20})
    assert vm["state"] == "succeeded", vm
    got = api.get("/v1/vms/lv").json()["spec"]["limits"]
    assert got == {"cpus": 1.5, "memory_max_mib": 512,
                   "disk_bytes_per_s": 1 << 20, "disk_ops_per_s": 500,
                   "net_bytes_per_s": 1 << 20}, got
    # Limits change while the VM is stopped, and fit its size.
    r = api.patch("/v1/vms/lv", {"limits": {"cpus": 1}})
    assert r.status_code == 409 and r.json()["code"] == "vm_running", r.text
    api.action("lv", "stop")
    r = api.patch("/v1/vms/lv", {"vcpus": 1})
    assert r.status_code == 400 and "limits.cpus" in r.json()["message"], r.text
    r = api.patch("/v1/vms/lv", {"limits": {"cpus": 0.5}})
    assert r.status_code == 200 and r.json()["spec"]["limits"] == {
        "cpus": 0.5}, r.text
    r = api.patch("/v1/vms/lv", {"limits": None})
    assert r.status_code == 200 and r.json()["spec"]["limits"] == {}, r.text
    api.delete_vm("lv")


def test_firecracker_rate_limiters(cgd):
    daemon, api = cgd, cgd.client
    vm = api.create_vm("lr", vcpus=1, limits={
        "disk_bytes_per_s": 8 << 20, "disk_ops_per_s": 1000,
        "net_bytes_per_s": 4 << 20})["result"]
    bodies = fc_bodies(daemon, vm["id"])
    for drive in ("rootfs", "work"):
        rl = bodies["PUT /drives/" + drive]["rate_limiter"]
        assert rl == {"bandwidth": {"size": 8 << 20, "refill_time": 1000},
                      "ops": {"size": 1000, "refill_time": 1000}}, rl
    net = bodies.get("PUT /network-interfaces/eth0")
    if net is not None:     # with networking on
        for k in ("rx_rate_limiter", "tx_rate_limiter"):
            assert net[k] == {"bandwidth": {"size": 4 << 20,
                                            "refill_time": 1000}}, net
    api.delete_vm("lr")
    # Without limits, no limiter.
    vm = api.create_vm("lr", vcpus=1)["result"]
    bodies = fc_bodies(daemon, vm["id"])
    assert "rate_limiter" not in bodies["PUT /drives/rootfs"]
    api.delete_vm("lr")


def test_cgroup_per_vm(cgd):
    d, root = cgd, cgd.cg_root
    api = d.client
    vm = api.create_vm("cg", vcpus=2, memory_mib=256, limits={
        "cpus": 0.5, "memory_max_mib": 400})["result"]
    cg = os.path.join(root, "banger.slice", "vm-" + vm["id"])

    def read(name, where=cg):
        with open(os.path.join(where, name)) as f:
            return f.read()
    assert read("cpu.max") == "50000 100000"
    assert read("memory.max") == str(400 << 20)
    assert read("memory.swap.max") == "0"
    # The VMM went in (the double's agent is its child: born there).
    assert read("cgroup.procs") == str(vm["status"]["pid"])
    # Controllers handed down to the slice and the VM.
    assert "+cpu" in read("cgroup.subtree_control", root)
    assert "+memory" in read("cgroup.subtree_control",
                             os.path.join(root, "banger.slice"))
    doc = api.get("/v1/doctor").json()
    chk = [c for c in doc["checks"] if c["name"] == "cgroups"]
    assert chk and chk[0]["status"] == "ok", doc
    api.action("cg", "stop")
    assert not os.path.exists(cg), "a stopped VM's cgroup goes"
    # No limits: still its own cgroup, unlimited.
    api.patch("/v1/vms/cg", {"limits": {}})
    api.action("cg", "start")
    assert read("cpu.max") == "max 100000" and read("memory.max") == "max"
    api.delete_vm("cg")
    assert not os.path.exists(cg)


def fake_cgroup_v1(root, cpu=True):
    """A hybrid host's cgroup_root as a plain directory: v1 memory and cpu
    hierarchies (cpu a link to cpu,cpuacct, as on many hosts), and
    unified/, a v2 hierarchy without controllers; no cgroup.controllers
    at the top."""
    mem = os.path.join(root, "memory")
    os.makedirs(mem)
    for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                 "cgroup.procs"):
        open(os.path.join(mem, name), "w").close()
    if cpu:
        both = os.path.join(root, "cpu,cpuacct")
        os.makedirs(both)
        for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares",
                     "cgroup.procs"):
            open(os.path.join(both, name), "w").close()
        os.symlink("cpu,cpuacct", os.path.join(root, "cpu"))
        os.symlink("cpu,cpuacct", os.path.join(root, "cpuacct"))
    os.makedirs(os.path.join(root, "unified"))
    open(os.path.join(root, "unified", "cgroup.controllers"), "w").close()


def test_cgroup_v1_per_vm(fresh_daemon):
    root = tempfile.mkdtemp(prefix="bgcg1")
    try:
        fake_cgroup_v1(root)
        d = fresh_daemon
        d.reconfigure(config={"cgroup_root": root})
        d.start()
        api = d.client
        doc = api.get("/v1/doctor").json()
        chk = [c for c in doc["checks"] if c["name"] == "cgroups"]
        assert chk and chk[0]["status"] == "ok", doc
        assert "cgroup v1 (hybrid host)" in chk[0]["message"], chk
        vm = api.create_vm("cg1", vcpus=2, memory_mib=256, limits={
            "cpus": 1.5, "memory_max_mib": 400})["result"]
        mem = os.path.join(root, "memory", "banger.slice", "vm-" + vm["id"])
        cpu = os.path.join(root, "cpu,cpuacct", "banger.slice",
                           "vm-" + vm["id"])

        def read(where, name):
            with open(os.path.join(where, name)) as f:
                return f.read()
        assert read(mem, "memory.limit_in_bytes") == str(400 << 20)
        assert read(mem, "memory.memsw.limit_in_bytes") == str(400 << 20)
        assert read(cpu, "cpu.cfs_period_us") == "100000"
        assert read(cpu, "cpu.cfs_quota_us") == "150000"
        pid = str(vm["status"]["pid"])
        assert read(mem, "cgroup.procs") == pid
        assert read(cpu, "cgroup.procs") == pid
        # Nothing of v2's: the top is no v2 hierarchy.
        assert not os.path.exists(os.path.join(root, "banger.slice"))
        assert not os.path.exists(os.path.join(root, "unified",
                                               "banger.slice"))
        api.action("cg1", "stop")
        assert not os.path.exists(mem) and not os.path.exists(cpu), \
            "a stopped VM's cgroups go, in both hierarchies"
        # A cpu limit alone: the memory cgroup too, unlimited.
        api.patch("/v1/vms/cg1", {"limits": {"cpus": 0.25}})
        api.action("cg1", "start")
        assert read(mem, "memory.limit_in_bytes") == "-1"
        assert read(mem, "memory.memsw.limit_in_bytes") == "-1"
        assert read(cpu, "cpu.cfs_quota_us") == "25000"
        api.action("cg1", "stop")
        # No limits: where bangerd runs, as on a host without cgroups.
        api.patch("/v1/vms/cg1", {"limits": None})
        api.action("cg1", "start")
        assert not os.path.exists(mem) and not os.path.exists(cpu)
        api.delete_vm("cg1")
        assert os.listdir(os.path.join(root, "memory", "banger.slice")) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


def half_v1(tmp):
    """A hybrid layout with a v1 memory hierarchy and no cpu one."""
    fake_cgroup_v1(tmp, cpu=False)
    return tmp


@pytest.mark.parametrize("layout", ["none", "memory-only"])
def test_limits_without_cgroup_v2(fresh_daemon, tmp_path, layout):
    d = fresh_daemon
    root = "/nonexistent/cgroup" if layout == "none" else half_v1(
        str(tmp_path / "cg"))
    d.reconfigure(config={"cgroup_root": root})
    d.start()
    api = d.client
    r = api.post("/v1/vms", {"name": "nocg", "vcpus": 1, "limits": {
        "cpus": 0.5}}, params={"wait": 60})
    op = r.json()
    assert op["state"] == "failed", op
    assert op["error"]["code"] == "unsupported_by_vmm", op
    assert "cgroup v2" in op["error"]["message"], op
    assert api.get("/v1/vms/nocg").status_code == 404
    assert not d.vmm_pids()
    # Rates are the VMM's: they need no cgroup.
    vm = api.create_vm("nocg", vcpus=1, limits={"disk_ops_per_s": 100})
    assert vm["state"] == "succeeded", vm
    doc = api.get("/v1/doctor").json()
    chk = [c for c in doc["checks"] if c["name"] == "cgroups"]
    assert chk and chk[0]["status"] == "warn", doc
    api.delete_vm("nocg")


def test_cli_limits(cgd):
    d = cgd
    r = d.run_banger("vm", "create", "--name", "lcli", "--vcpus", "2",
                     "--limit", "cpus=1.5", "--limit", "disk_ops_per_s=200")
    assert r.returncode == 0, r.stderr
    r = d.run_banger("vm", "show", "lcli")
    assert "limits:" in r.stdout and "cpus 1.5" in r.stdout and \
        "disk_ops_per_s 200" in r.stdout, r.stdout
    r = d.run_banger("vm", "set", "lcli", "--limit", "cpus=1")
    assert r.returncode == 4 and "stopped" in r.stderr, r.stderr
    d.client.action("lcli", "stop")
    r = d.run_banger("vm", "set", "lcli", "--no-limits")
    assert r.returncode == 0 and "limits: none" in r.stdout, r.stdout
    r = d.run_banger("vm", "set", "lcli", "--limit", "cpus=9")
    assert r.returncode == 1 and "limits.cpus" in r.stderr, r.stderr
    r = d.run_banger("vm", "set", "lcli", "--limit", "cpus")
    assert r.returncode == 2 and "KEY=NUMBER" in r.stderr, r.stderr
    r = d.run_banger("vm", "set", "lcli", "--limit", "speed=3")
    assert r.returncode == 1 and "speed" in r.stderr, r.stderr
    d.client.delete_vm("lcli")
