"""Warm-start benchmarks through bangerd with the Firecracker test double
(make bench-create): pause/resume latency, snapshot time and size against
guest memory size, restore time, a clone next to a cold create of the
same VM, and creates of a warm image next to cold ones.

The double boots at once and its memory file is sparse until a guest
writes to it, so these numbers are bangerd's own share of the work:
checks, disk copies, checksums of state and memory, the VMM calls, the
agent's answers.  A real guest's boot (what a warm create saves) is
measured by bench_boot.py against QEMU.  Measurements, not tests.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

from daemon import Daemon  # noqa: E402


def ms(t0):
    return (time.perf_counter() - t0) * 1000


def op(api, method, path, body=None):
    t = time.perf_counter()
    r = api.request(method, path, json_body=body, params={"wait": 120},
                    validate_body=False)
    took = ms(t)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j.get("state", "succeeded") == "succeeded", j
    return j, took


def p50(xs):
    return statistics.median(xs)


def bench_pause(api, rounds):
    api.create_vm("held", vcpus=1, memory_mib=128)
    pause, resume = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        assert api.post("/v1/vms/held/pause").status_code == 200
        pause.append(ms(t))
        t = time.perf_counter()
        r = api.post("/v1/vms/held/resume")
        resume.append(ms(t))
        assert r.status_code == 200 and \
            r.json()["status"]["health"] == "ok", r.text
    print("pause / resume (%d rounds; resume includes the clock and a "
          "health probe)" % rounds)
    print("  pause   p50 %7.1f ms   max %7.1f ms" % (p50(pause), max(pause)))
    print("  resume  p50 %7.1f ms   max %7.1f ms" % (p50(resume), max(resume)))
    api.delete_vm("held")


def bench_snapshots(api, sizes):
    print("snapshot and restore against guest memory (sparse memory file)")
    print("  %8s  %10s  %10s  %10s" % ("memory", "snapshot", "size", "restore"))
    for mib in sizes:
        name = "m%d" % mib
        api.create_vm(name, vcpus=1, memory_mib=mib, disk_gib=1)
        j, took = op(api, "POST", "/v1/vms/%s/snapshots" % name, {"name": "s"})
        size = j["result"]["bytes"]
        _, rtook = op(api, "POST", "/v1/vms/%s/restore" % name,
                      {"snapshot": "s"})
        print("  %6d M  %7.0f ms  %7.1f M  %7.0f ms" % (mib, took,
                                                     size / 2**20, rtook))
        api.delete_vm(name)


def bench_clone(api, rounds):
    api.create_vm("src", vcpus=1, memory_mib=256, disk_gib=1)
    op(api, "POST", "/v1/vms/src/snapshots", {"name": "base"})
    cold, warm = [], []
    for i in range(rounds):
        _, t = op(api, "POST", "/v1/vms", {"name": "cold%d" % i, "vcpus": 1,
                                          "memory_mib": 256, "disk_gib": 1})
        cold.append(t)
        _, t = op(api, "POST", "/v1/vms", {"name": "warm%d" % i,
                                          "from": "src@base"})
        warm.append(t)
        api.delete_vm("cold%d" % i)
        api.delete_vm("warm%d" % i)
    print("create: cold (boot of the image) vs clone of a snapshot, "
          "%d each, 256 MiB, 1 GiB disk" % rounds)
    print("  cold    p50 %7.1f ms" % p50(cold))
    print("  clone   p50 %7.1f ms   (clone/cold %.2f; bangerd's share only: "
          "the double does not boot)" % (p50(warm), p50(warm) / p50(cold)))
    api.delete_vm("src")


def bench_warm(api, rounds):
    """Creates of the default image (the daemon's default shape): cold,
    then warmed, then from its warm snapshot."""
    cold, warm = [], []
    for i in range(rounds):
        _, t = op(api, "POST", "/v1/vms", {"name": "c%d" % i})
        cold.append(t)
        api.delete_vm("c%d" % i)
    _, wtook = op(api, "POST", "/v1/images/default/warm")
    for i in range(rounds):
        j, t = op(api, "POST", "/v1/vms", {"name": "w%d" % i})
        assert j["kind"] == "vm.create_warm", j
        warm.append(t)
        api.delete_vm("w%d" % i)
    print("warm image: %d creates each of the default image, %d MiB" %
          (rounds, api.get("/v1/images/default").json()["warm"]["memory_mib"]))
    print("  warming     %7.1f ms (boot, snapshot, delete)" % wtook)
    print("  cold    p50 %7.1f ms" % p50(cold))
    print("  warm    p50 %7.1f ms   (warm/cold %.2f; bangerd's share only: "
          "the double does not boot)" % (p50(warm), p50(warm) / p50(cold)))
    assert api.delete("/v1/images/default/warm").status_code == 204


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--sizes", default="128,512,2048")
    args = ap.parse_args()
    d = Daemon(config={"default_vcpus": 1, "default_memory_mib": 256,
                       "default_disk_gib": 1}).start()
    try:
        api = d.client
        bench_pause(api, args.rounds)
        bench_snapshots(api, [int(x) for x in args.sizes.split(",")])
        bench_clone(api, max(3, args.rounds // 2))
        bench_warm(api, max(3, args.rounds // 2))
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
