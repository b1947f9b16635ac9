"""The host's disk: GET /v1/host (free, committed by sparse VM disks, the
reserve), creates and starts refused below disk_reserve_mib (507
host_disk_full), doctor's disk check, and resume of a VM that is not
paused.  The QEMU side (a VM paused on a full disk, resumed once space is
back) is tested with a real guest in tests/e2e/test_disk_full.py and with
the fake QEMU in tests/unit/test_qemu.c."""
import os
import shutil



def err_of(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    return body


def test_host_reports_free_committed_reserve(api, daemon):
    vm = api.create_vm("sparse", vcpus=1, disk_gib=2)["result"]
    h = api.get("/v1/host").json()
    st = os.statvfs(daemon.state)
    assert h["state_dir"] == daemon.state
    assert abs(h["free_bytes"] - st.f_bavail * st.f_frsize) < 256 << 20
    assert h["reserve_bytes"] == 1024 << 20   # the default
    mine = [v for v in h["vms"] if v["name"] == "sparse"]
    assert len(mine) == 1
    # A 2 GiB work disk grown sparse: most of it is still to be claimed.
    work = os.path.join(daemon.state, "vms", vm["id"], "work.ext4")
    s = os.stat(work)
    assert mine[0]["committed_bytes"] >= s.st_size - s.st_blocks * 512
    assert mine[0]["committed_bytes"] > 1 << 30
    assert h["committed_bytes"] >= mine[0]["committed_bytes"]
    out = daemon.run_banger("host")
    assert out.returncode == 0 and "committed" in out.stdout, out.stderr
    checks = {c["name"]: c for c in api.get("/v1/doctor").json()["checks"]}
    assert checks["disk"]["status"] in ("ok", "warn"), checks["disk"]
    api.delete_vm("sparse")


def test_reserve_refuses_creates_and_starts(fresh_daemon):
    d = fresh_daemon.start()
    api = d.client
    api.create_vm("before", vcpus=1)
    api.action("before", "stop")
    d.stop()
    # A reserve larger than the disk: nothing new may claim space.
    free_mib = shutil.disk_usage(d.state).free >> 20
    with open(d.config_path) as f:
        cfg = f.read()
    with open(d.config_path, "w") as f:
        f.write(cfg.rstrip().rstrip("}") + ', "disk_reserve_mib": %d}'
                % (free_mib + 1024))
    d.start()
    e = err_of(api.post("/v1/vms", {"name": "after", "vcpus": 1}), 507,
               "host_disk_full")
    assert "kept in reserve" in e["message"] and e["hint"], e
    assert api.get("/v1/vms/after").status_code == 404
    op = api.post("/v1/vms/before/start", params={"wait": 30}).json()
    assert op["state"] == "failed", op
    assert op["error"]["code"] == "host_disk_full", op
    assert api.get("/v1/vms/before").json()["status"]["state"] == "stopped"
    h = api.get("/v1/host").json()
    assert h["reserve_bytes"] == (free_mib + 1024) << 20
    checks = {c["name"]: c for c in api.get("/v1/doctor").json()["checks"]}
    assert checks["disk"]["status"] == "warn" and checks["disk"]["fix"]
    r = d.run_banger("vm", "create", "--name", "cli-after")
    assert r.returncode == 6 and "kept in reserve" in r.stderr, (r.returncode,
                                                                 r.stderr)


def test_resume_needs_a_paused_vm(api, daemon):
    api.create_vm("awake", vcpus=1)
    e = err_of(api.post("/v1/vms/awake/resume"), 409, "invalid_state")
    assert "not paused" in e["message"]
    err_of(api.post("/v1/vms/ghost/resume"), 404, "vm_not_found")
    r = daemon.run_banger("vm", "resume", "awake")
    assert r.returncode == 4 and "not paused" in r.stderr, (r.returncode, r.stderr)
    assert api.get("/v1/vms/awake").json()["status"]["paused_reason"] is None
    api.delete_vm("awake")
