"""banger benchmarks (make bench, make bench-create): print numbers.

control plane  GET /v1/vms with 100 VMs in the store, 8 keep-alive clients
               on the socket (target: >= 10,000 req/s, p99 <= 5 ms)
memory         bangerd's resident set idle and with 100 VMs (targets: 6 and
               12 MiB)
create         VM create through the API with the Firecracker test double
               answering at once, 1 GiB image with 200 MiB used (target:
               p50 <= 20 ms)
These are measurements, not tests: nothing here fails on a slow machine.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

from daemon import Daemon, ROOT  # noqa: E402

LOADGEN = os.path.join(ROOT, "build", "loadgen")


def mem_kib(pid):
    """Rss, Pss and anonymous (heap, stacks) from smaps_rollup, in KiB."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:", "Anonymous:"):
                out[parts[0][:-1]] = int(parts[1])
    return out


def mem_line(label, m):
    return "  %-14s RSS %5.1f MiB   PSS %5.1f MiB   anonymous %4.1f MiB" % (
        label, m["Rss"] / 1024, m["Pss"] / 1024, m["Anonymous"] / 1024)


def daemon_pid(d):
    # bangerd runs under `unshare -n`, which execs it: same pid.
    return d.proc.pid


def bench_control_plane(args):
    d = Daemon().start()
    try:
        time.sleep(0.5)
        idle = mem_kib(daemon_pid(d))
        t = time.time()
        for i in range(args.vms):
            r = d.client.post("/v1/vms", {"name": "b%03d" % i, "vcpus": 1,
                                          "memory_mib": 128, "disk_gib": 1},
                              params={"wait": 60}, validate_body=False)
            assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
        setup = time.time() - t
        time.sleep(0.5)
        with_vms = mem_kib(daemon_pid(d))
        out = subprocess.run([LOADGEN, d.socket, "/v1/vms", str(args.clients),
                              str(args.seconds)], capture_output=True, text=True)
        load = json.loads(out.stdout)
        after = mem_kib(daemon_pid(d))
        print("control plane: GET /v1/vms, %d VMs, %d clients, %.0f s"
              % (args.vms, args.clients, args.seconds))
        print("  requests/s     %8.0f   (target >= 10000)" % load["rps"])
        print("  p50 latency    %8.3f ms" % load["p50_ms"])
        print("  p99 latency    %8.3f ms (target <= 5)" % load["p99_ms"])
        print("  errors         %8d" % load["errors"])
        print("memory of bangerd (targets: 6 MiB idle, 12 MiB with 100 VMs)")
        print(mem_line("idle", idle))
        print(mem_line("%d VMs" % args.vms, with_vms))
        print(mem_line("after load", after))
        print("  (created %d VMs in %.1f s)" % (args.vms, setup))
        r = d.client.post("/v1/vms/actions", {"action": "delete", "force": True,
                                              "names": ["b%03d" % i for i in range(args.vms)]},
                          params={"wait": 300}, validate_body=False, timeout=400)
        assert r.status_code == 200
    finally:
        d.cleanup()


def make_image(path, total_mib, used_mib):
    """An ext4 image of total_mib with about used_mib of file data."""
    src = path + ".d"
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "payload.bin"), "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(used_mib):
            f.write(chunk)
    with open(path, "wb") as f:
        f.truncate(total_mib << 20)
    subprocess.run(["/sbin/mkfs.ext4", "-q", "-F", "-d", src, path], check=True)
    subprocess.run(["rm", "-rf", src], check=True)


class XfsMount:
    """A loop-mounted XFS with reflink, where FICLONE makes disk copies
    O(1) (root and xfsprogs needed)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bgxfs", dir="/tmp")
        self.img = os.path.join(self.dir, "xfs.img")
        self.mnt = os.path.join(self.dir, "m")
        os.makedirs(self.mnt)
        with open(self.img, "wb") as f:
            f.truncate(8 << 30)
        subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", self.img], check=True)
        subprocess.run(["mount", "-o", "loop", self.img, self.mnt], check=True)

    def close(self):
        subprocess.run(["umount", self.mnt], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def bench_pool(args):
    """Create with a TAP from the pool versus a TAP made on the spot (small
    default image, so the network step is what differs)."""
    for pool in (4, 0):
        d = Daemon(config={"tap_pool_size": pool}).start()
        try:
            time.sleep(0.5)  # let the pool fill
            times = []
            for i in range(args.creates):
                name = "t%03d" % i
                t = time.perf_counter()
                r = d.client.post("/v1/vms", {"name": name, "vcpus": 1,
                                              "memory_mib": 128, "disk_gib": 1},
                                  params={"wait": 60}, validate_body=False)
                times.append((time.perf_counter() - t) * 1000)
                assert r.json()["state"] == "succeeded", r.text
                d.client.delete("/v1/vms/" + name, params={"force": "true", "wait": 60},
                                validate_body=False)
                time.sleep(0.2)  # the pool refills in the background
            times.sort()
            print("create, TAP %-12s p50 %6.1f ms   p90 %6.1f ms" % (
                "from pool" if pool else "made per VM", statistics.median(times),
                times[int(0.9 * (len(times) - 1))]))
        finally:
            d.cleanup()


def bench_create(args):
    bench_pool(args)
    bench_create_on(args, None)
    if os.geteuid() == 0 and shutil.which("mkfs.xfs"):
        xfs = XfsMount()
        try:
            bench_create_on(args, xfs.mnt)
        finally:
            xfs.close()
    else:
        print("(skipped the reflink run: needs root and mkfs.xfs)")


def bench_create_on(args, where):
    d = Daemon(state=os.path.join(where, "s") if where else None).start()
    try:
        rootfs = os.path.join(where or d.dir, "big.ext4")
        make_image(rootfs, 1024, 200)
        st = os.stat(rootfs)
        seed = os.path.join(where or d.dir, "work-seed.ext4")
        make_image(seed, 16, 1)
        d.client.post("/v1/images", {"name": "big", "rootfs": rootfs,
                                     "work_seed": seed}, validate_body=False)
        times = []
        for i in range(args.creates):
            name = "c%03d" % i
            t = time.perf_counter()
            r = d.client.post("/v1/vms", {"name": name, "image": "big",
                                          "vcpus": 1, "memory_mib": 128,
                                          "disk_gib": 1},
                              params={"wait": 60}, validate_body=False)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
            d.client.delete("/v1/vms/" + name, params={"force": "true", "wait": 60},
                            validate_body=False)
        times.sort()
        fs = subprocess.run(["stat", "-f", "-c", "%T", d.state], capture_output=True,
                            text=True).stdout.strip()
        print("create (control plane, test double): %d creates" % args.creates)
        print("  image          1024 MiB, %d MiB allocated; work seed 16 MiB, "
              "disk_gib 1" % (st.st_blocks * 512 >> 20))
        print("  state dir fs   %s" % fs)
        print("  p50            %8.1f ms (target <= 20)" % statistics.median(times))
        print("  p90            %8.1f ms" % times[int(0.9 * (len(times) - 1))])
        print("  min / max      %8.1f / %.1f ms" % (times[0], times[-1]))
    finally:
        d.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["control", "create"])
    ap.add_argument("--vms", type=int, default=100)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--creates", type=int, default=20)
    args = ap.parse_args()
    if args.what == "control":
        bench_control_plane(args)
    else:
        bench_create(args)


if __name__ == "__main__":
    main()
