#!/usr/bin/python3
"""Boot stress: real boots through bangerd, over and over, optionally under
load, with time-to-ready for every boot and the evidence of every failure.

    make stress-boot [N=20] [IMAGES=tiny,debian] [LOAD=none|cpu|io|cpu+io]
                     [VCPUS=1] [PARALLEL=1] [STORM=1]

For each image, N boots of one VM in the cycles users run: create, then
stop+start (a start right after a stop), restart, delete+create, in turn.
Every boot is timed from the request to the end of its operation (which,
since create/start/restart wait for the guest to be ready, is
time-to-ready).  A failed boot keeps, under build/stress/<run>/: the
operation's error, the VM's console.log and vmm.log (QEMU and
vhost-device-vsock) and the end of bangerd's log; the VM is then deleted
and the run goes on.  At the end: the distribution per image (min, p50,
p90, p99, max) and the failures by error code.  Exits 1 on any failure.

Images: "tiny" is the e2e test guest (tests/e2e/make-test-initrd.sh: the
cloud kernel, a busybox initrd with the agent); "debian" is the runtime
bundle's default image.  Each runs under its own bangerd, in a network
namespace of its own.  LOAD starts background work for the whole run:
"cpu" one busy loop per core, "io" a writer that syncs 64 MiB at a time
under build/stress, "cpu+io" both.  --vcpus sets the VMs' vCPUs;
--parallel 2 boots two VMs at once (each its own cycle, same bangerd).
--storm has an outside client connect to each booting VM's vsock.sock (and
hang up at once) every few milliseconds, as no user does: it shows the
vhost-device-vsock bug bangerd's boot wait steps around (vmm/qemu.c), so
expect boot_stalled with it.

vhost-device-vsock runs with RUST_LOG=debug (unless RUST_LOG is set), so
vmm.log has what it reports.  A boot still not ready after SLOW_S is
looked at while it is slow (diagnosis.txt): QEMU and the helper alive, the
helper's threads (vring_worker gone means its vsock is dead), what
CONNECTs get, whether the guest answers on its network.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from daemon import netns_daemon  # noqa: E402
from tinyguest import tiny_runtime  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.abspath(os.environ.get("BUILD") or os.path.join(REPO, "build"))
RUNTIME = os.path.abspath(os.environ.get("BANGER_E2E_RUNTIME")
                          or os.path.join(REPO, "runtime"))
BOOT_S = 300


def start_load(kind, workdir):
    procs = []
    if "cpu" in kind:
        for _ in range(os.cpu_count() or 1):
            procs.append(subprocess.Popen(
                ["nice", "-n", "5", "/usr/bin/python3", "-c",
                 "while True: pass"]))
    if "io" in kind:
        path = os.path.join(workdir, "io-load.bin")
        procs.append(subprocess.Popen(
            ["nice", "-n", "5", "sh", "-c",
             'while :; do dd if=/dev/zero of="$1" bs=1M count=64 '
             'conv=fsync status=none; rm -f "$1"; done', "_", path]))
    return procs


def pct(xs, p):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


SLOW_S = 25


def proc_threads(pid):
    """State and thread names: vhost-device-vsock runs a vring_worker
    thread; without it nothing serves the VM's vsock."""
    try:
        st = [x for x in open("/proc/%s/status" % pid).read().split("\n")
              if x.startswith("State")]
        names = []
        for t in sorted(os.listdir("/proc/%s/task" % pid)):
            with open("/proc/%s/task/%s/comm" % (pid, t)) as f:
                names.append(f.read().strip())
        return "%s threads %s" % (st, names)
    except OSError as e:
        return str(e)


def storm(path, stop):
    """Connect to a booting VM's vsock.sock and hang up, every 2 ms."""
    while not stop.is_set():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.002)


def diagnose(d, name):
    """A boot slower than SLOW_S, looked at while it is stuck: are QEMU and
    vhost-device-vsock alive, what does a CONNECT to the agent's port (and
    to a port nobody listens on) get, does the guest answer on its
    network.  Returns the findings as text."""
    import socket as so
    out = []
    vm = d.client.get("/v1/vms/" + name, validate=False).json()
    vm_id = vm.get("id", "?")
    vmdir = os.path.join(d.state, "vms", vm_id)
    out.append("vm: %s" % json.dumps(vm.get("status")))
    for pat in ("qemu-system", "vhost-device-vsock"):
        r = subprocess.run(["pgrep", "-af", pat + ".*" + vm_id],
                           capture_output=True, text=True)
        out.append("pgrep %s: %s" % (pat, r.stdout.strip() or "(none)"))
        for line in r.stdout.split("\n"):
            if line.strip():
                pid = line.split()[0]
                out.append("  %s %s" % (pid, proc_threads(pid)))
    for port in (1024, 4242):
        s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
        s.settimeout(5)
        t = time.monotonic()
        try:
            s.connect(os.path.join(vmdir, "vsock.sock"))
            s.sendall(b"CONNECT %d\n" % port)
            got = s.recv(64)
            out.append("CONNECT %d: %r after %.2f s" % (
                port, got, time.monotonic() - t))
            if got.startswith(b"OK"):
                s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                out.append("  healthz: %r" % s.recv(300))
        except OSError as e:
            out.append("CONNECT %d: %s after %.2f s" % (
                port, e, time.monotonic() - t))
        finally:
            s.close()
    # A failed create takes its directory with it: keep the logs now.
    for part in ("console.log", "vmm.log"):
        try:
            with open(os.path.join(vmdir, part), errors="replace") as f:
                out.append("--- %s (end) ---\n%s" % (part, f.read()[-3000:]))
        except OSError as e:
            out.append("--- %s: %s" % (part, e))
    ip = (vm.get("status") or {}).get("ip")
    if ip:
        r = subprocess.run(["nsenter", "--net=" + d.netns_path, "curl", "-s",
                            "-m", "5", "http://%s:8080/" % ip],
                           capture_output=True, text=True)
        out.append("guest http :8080: rc %d %r" % (r.returncode,
                                                   r.stdout[:80]))
    return "\n".join(out) + "\n"


def keep_evidence(d, api, name, vm_id, op, outdir, tag):
    dest = os.path.join(outdir, tag)
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, "operation.json"), "w") as f:
        json.dump(op, f, indent=1)
    vmdir = os.path.join(d.state, "vms", vm_id) if vm_id else None
    for part in ("console.log", "vmm.log"):
        src = os.path.join(vmdir, part) if vmdir else None
        if src and os.path.exists(src):
            shutil.copy(src, os.path.join(dest, part))
    with open(os.path.join(dest, "bangerd.log"), "w") as f:
        f.write(d.read_log())
    return dest


def cycle(d, image, name, n, opts, outdir, times, failures, lock):
    """n boots of VM `name` in the user cycles; results under lock."""
    api = d.client
    exists = False
    vm_id = None
    for i in range(n):
        if not exists:
            kind = "create"
        else:
            kind = ("start-after-stop", "restart", "recreate")[i % 3]
        if kind == "start-after-stop":
            api.post("/v1/vms/%s/stop" % name, params={"wait": 120},
                     validate_body=False, timeout=180)
        if kind == "recreate":
            api.delete("/v1/vms/" + name, params={"force": "true",
                                                  "wait": 120},
                       validate_body=False, timeout=180)
            exists = False
        stop_storm = threading.Event()
        stormer = None
        t0 = time.monotonic()
        # Started without waiting, then followed: a boot that is slow
        # is looked at while it is still slow (diagnose()).
        async_ = {"validate_body": False, "timeout": 60}
        if not exists:
            r = api.post("/v1/vms", {"name": name, "vcpus": opts.vcpus,
                                     "memory_mib": 512}, **async_)
        elif kind == "start-after-stop":
            r = api.post("/v1/vms/%s/start" % name, **async_)
        else:
            r = api.post("/v1/vms/%s/restart" % name, **async_)
        op = r.json()
        diag = None
        while op.get("state") in ("pending", "running"):
            if opts.storm and stormer is None:
                # A new VM has an id (and a directory) once its create runs.
                vm = api.get("/v1/vms/" + name, validate=False)
                if vm.status_code == 200:
                    vmdir = os.path.join(d.state, "vms", vm.json()["id"])
                    stormer = threading.Thread(target=storm, daemon=True,
                                               args=(os.path.join(
                                                   vmdir, "vsock.sock"),
                                                   stop_storm))
                    stormer.start()
            time.sleep(0.05 if opts.storm and stormer is None else 0.2)
            op = api.get("/v1/operations/" + op["id"], validate=False).json()
            if diag is None and time.monotonic() - t0 > SLOW_S:
                diag = diagnose(d, name)
        stop_storm.set()
        took = time.monotonic() - t0
        vm = api.get("/v1/vms/" + name, validate=False)
        vm_id = vm.json()["id"] if vm.status_code == 200 else vm_id
        tag = "%s-%s-%03d" % (image, name, i + 1)
        if op.get("state") == "succeeded":
            exists = True
            with lock:
                times.append(took)
                print("%-6s %-9s boot %3d/%d %-16s ready in %6.2f s" % (
                    image, name, i + 1, n, kind, took), flush=True)
            continue
        code = (op.get("error") or {}).get("code", "?")
        with lock:
            where = keep_evidence(d, api, name, vm_id, op, outdir, tag)
            if diag:
                with open(os.path.join(where, "diagnosis.txt"), "w") as f:
                    f.write(diag)
            failures.append((i + 1, kind, code, where))
            print("%-6s %-9s boot %3d/%d %-16s FAILED after %.1f s: %s: %s "
                  "(%s)" % (image, name, i + 1, n, kind, took, code,
                            (op.get("error") or {}).get("message", ""),
                            where), flush=True)
        api.delete("/v1/vms/" + name, params={"force": "true", "wait": 120},
                   validate_body=False, timeout=180)
        exists = False


def run_image(image, runtime, n, opts, outdir):
    names = ["stress%d" % k for k in range(opts.parallel)]
    times, failures = [], []
    lock = threading.Lock()
    errors = []

    def worker(d, name):
        try:
            cycle(d, image, name, n, opts, outdir, times, failures, lock)
        except Exception as e:  # noqa: BLE001 - reported, run goes on
            errors.append("%s: %r" % (name, e))

    with netns_daemon("bgstress-" + image, runtime=runtime,
                      config={"health_timeout_s": BOOT_S,
                              "stop_grace_s": 30}) as d:
        threads = [threading.Thread(target=worker, args=(d, nm))
                   for nm in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        sys.exit("stress_boot: " + "; ".join(errors))
    return times, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20, help="boots per image")
    ap.add_argument("--images", default="tiny,debian")
    ap.add_argument("--load", default="none",
                    choices=["none", "cpu", "io", "cpu+io"])
    ap.add_argument("--vcpus", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=1, choices=[1, 2])
    ap.add_argument("--storm", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("RUST_LOG", "debug")
    if os.geteuid() != 0:
        sys.exit("stress_boot: needs root (TAP networking, namespaces)")
    # A SIGTERM (make interrupted, a CI timeout) still ends the load, the
    # VM, bangerd and the namespace through the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run = time.strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(BUILD, "stress", run)
    os.makedirs(outdir, exist_ok=True)
    load = start_load(args.load, outdir) if args.load != "none" else []
    results = {}
    try:
        for image in args.images.split(","):
            if image == "tiny":
                try:
                    runtime = tiny_runtime(os.path.join(BUILD, "stress",
                                                        "tiny-runtime"), BUILD)
                except RuntimeError as e:
                    sys.exit("stress_boot: %s" % e)
            elif image == "debian":
                if not os.path.exists(os.path.join(RUNTIME, "bundle.json")):
                    sys.exit("stress_boot: no runtime bundle in %s" % RUNTIME)
                runtime = RUNTIME
            else:
                sys.exit("stress_boot: unknown image %s" % image)
            results[image] = run_image(image, runtime, args.n, args, outdir)
    finally:
        for p in load:
            p.kill()
            p.wait()
        try:
            os.unlink(os.path.join(outdir, "io-load.bin"))
        except FileNotFoundError:
            pass
    print("\nboot stress: %d boots per image and VM, load %s, %d vCPU, %d "
          "VM(s) at once%s (%d host cores)" % (
              args.n, args.load, args.vcpus, args.parallel,
              ", vsock storm" if args.storm else "", os.cpu_count() or 1))
    total_fail = 0
    for image, (times, failures) in results.items():
        total_fail += len(failures)
        if times:
            print("  %-6s %3d ok, %d failed; time to ready: min %.2f  p50 %.2f"
                  "  p90 %.2f  p99 %.2f  max %.2f s (mean %.2f)" % (
                      image, len(times), len(failures), min(times),
                      pct(times, 50), pct(times, 90), pct(times, 99),
                      max(times), statistics.mean(times)))
        else:
            print("  %-6s no boot succeeded" % image)
        by_code = {}
        for _, _, code, _ in failures:
            by_code[code] = by_code.get(code, 0) + 1
        for code, k in sorted(by_code.items()):
            print("         %d x %s" % (k, code))
    if total_fail:
        print("evidence of every failure (console, vmm.log, bangerd log): %s"
              % outdir)
    else:
        shutil.rmtree(outdir, ignore_errors=True)
    sys.exit(1 if total_fail else 0)


if __name__ == "__main__":
    main()
