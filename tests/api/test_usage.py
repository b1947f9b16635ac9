"""What VMs use and what the host has: GET /v1/vms/{name}/usage, GET
/v1/metrics (Prometheus text) and the capacity in GET /v1/host, against
the Firecracker test double (its process, and its agent below it, are
the VM's processes), and banger vm show."""
import os
import re
import time

import pytest

# One sample line of the text format: name, optional labels, a value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*='
                    r'"[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? '
                    r'(-?[0-9.e+]+|\+Inf|NaN)$')


def parse_metrics(text):
    """{(name, frozenset(labels)): value}; every line must be valid and
    every sample's family must have a TYPE line before it."""
    out, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, "no TYPE for " + line
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="([^"]*)"',
                                      m.group(3) or ""))
        out[(name, labels)] = float(m.group(5))
    return out


def val(metrics, name, **labels):
    return metrics[(name, frozenset(labels.items()))]


@pytest.fixture
def vm(daemon):
    api = daemon.client
    api.create_vm("usage1", vcpus=2, memory_mib=256)
    yield "usage1"
    api.delete_vm("usage1")


def test_usage_of_a_running_and_a_stopped_vm(api, daemon, vm):
    r = api.get("/v1/vms/%s/usage" % vm)
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["running"] and u["state"] == "running", u
    # The double and its agent, at least.
    assert u["processes"] >= 2, u
    assert u["memory_bytes"] > 1 << 20, u
    pid = api.get("/v1/vms/" + vm).json()["status"]["pid"]
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    assert u["cpu_seconds"] >= own, (u, own)
    for k in ("read_bytes", "write_bytes"):
        assert u["disk"][k] >= 0
    assert set(u["network"]) == {"to_guest_bytes", "from_guest_bytes",
                                 "to_guest_packets", "from_guest_packets"}
    api.action(vm, "stop")
    u = api.get("/v1/vms/%s/usage" % vm).json()
    assert not u["running"] and u["state"] == "stopped", u
    assert u["cpu_seconds"] == 0 and u["memory_bytes"] == 0, u
    r = api.get("/v1/vms/nosuch/usage")
    assert r.status_code == 404 and r.json()["code"] == "vm_not_found"
    r = api.get("/v1/vms/Bad_Name/usage")
    assert r.status_code == 400 and r.json()["code"] == "invalid_name"


def test_metrics_count_what_happens(api, daemon, vm):
    r = api.get("/v1/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    m = parse_metrics(r.text)
    assert val(m, "banger_vms", state="running") >= 1
    assert val(m, "banger_vm_vcpus", vm=vm) == 2
    assert val(m, "banger_vm_memory_limit_bytes", vm=vm) == 256 << 20
    assert val(m, "banger_vm_memory_bytes", vm=vm) > 0
    assert ("banger_vm_cpu_seconds_total", frozenset({("vm", vm)})) in m
    created = val(m, "banger_operations_total", kind="vm.create",
                  result="succeeded")
    assert created >= 1
    hist = {k: v for k, v in m.items()
            if k[0] == "banger_operation_duration_seconds_count"}
    assert hist, "no operation histogram"
    gets = ("banger_api_request_duration_seconds_count",
            frozenset({("method", "GET"), ("route", "/v1/metrics")}))
    before = m.get(gets, 0)
    # Another create and a failing start; more requests.
    api.create_vm("usage2", vcpus=1)
    daemon.set_faults({"exit_at_start": True})
    r = api.post("/v1/vms/usage2/restart", params={"wait": 60})
    daemon.clear_faults()
    assert r.json()["state"] == "failed", r.text
    api.delete_vm("usage2")
    m2 = parse_metrics(api.get("/v1/metrics").text)
    assert val(m2, "banger_operations_total", kind="vm.create",
               result="succeeded") == created + 1
    assert val(m2, "banger_operations_total", kind="vm.delete",
               result="succeeded") >= 1
    assert val(m2, "banger_operations_total", kind="vm.restart",
               result="failed") >= 1
    assert m2[gets] == before + 1, (m2.get(gets), before)
    # Buckets are cumulative and end at the count.
    route = frozenset({("method", "GET"), ("route", "/v1/metrics")})
    buckets = sorted(
        (float(dict(k[1])["le"]) if dict(k[1])["le"] != "+Inf"
         else float("inf"), v) for k, v in m2.items()
        if k[0] == "banger_api_request_duration_seconds_bucket" and
        k[1] - {("le", dict(k[1])["le"])} == route)
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == m2[gets], buckets
    # Names are patterns: no series per VM name.
    assert not [k for k in m2 if ("route", "/v1/vms/usage2") in k[1]]
    # A stopped VM has no per-VM samples.
    assert ("banger_vm_vcpus", frozenset({("vm", "usage2")})) not in m2


def test_host_capacity_and_allocation(api, daemon, vm):
    h = api.get("/v1/host").json()
    cap = h["capacity"]
    assert cap["vcpus"] == os.sysconf("SC_NPROCESSORS_ONLN")
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) // 1024
    assert abs(cap["memory_mib"] - total) <= 1, (cap, total)
    st = os.statvfs(daemon.state)
    assert cap["disk_bytes"] == st.f_blocks * st.f_frsize
    vms = api.get("/v1/vms").json()["vms"]
    run = [v for v in vms if v["status"]["state"] in
           ("running", "paused", "starting", "stopping")]
    a = h["allocated"]
    assert a["running"] == {
        "vms": len(run), "vcpus": sum(v["spec"]["vcpus"] for v in run),
        "memory_mib": sum(v["spec"]["memory_mib"] for v in run)}, a
    assert a["defined"]["vms"] == len(vms)
    assert a["defined"]["disk_gib"] == sum(v["spec"]["disk_gib"] for v in vms)
    r = daemon.run_banger("host")
    assert r.returncode == 0, r.stderr
    assert "capacity   %d vCPUs" % cap["vcpus"] in r.stdout, r.stdout
    assert "running    %d VMs: %d vCPUs" % (len(run), a["running"]["vcpus"]) \
        in r.stdout, r.stdout
    api.action(vm, "stop")
    a2 = api.get("/v1/host").json()["allocated"]
    assert a2["running"]["vcpus"] == a["running"]["vcpus"] - 2
    assert a2["defined"] == a["defined"]


def test_vm_show_prints_usage(daemon, vm):
    r = daemon.run_banger("vm", "show", vm)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^cpu:\s+[0-9.]+ s$", r.stdout, re.M), r.stdout
    assert re.search(r"^memory_used:\s+[0-9.]+ MiB$", r.stdout, re.M), r.stdout
    assert re.search(r"^disk_io:\s+read .* written ", r.stdout, re.M), r.stdout
    assert re.search(r"^network:\s+in .* out ", r.stdout, re.M), r.stdout
    daemon.client.action(vm, "stop")
    r = daemon.run_banger("vm", "show", vm)
    assert r.returncode == 0 and "memory_used" not in r.stdout, r.stdout
