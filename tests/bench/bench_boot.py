"""Real-boot create benchmark (part of make bench-create): banger next to a
raw QEMU boot of the same kernel, initrd, rootfs and work disk, measured
in one run, alternating, so both see the same machine.

For each of N rounds:
  banger  POST /v1/vms (default image), then poll until the guest agent
          answers /healthz through bangerd, then until `ssh root@IP true`
          works.  Host-side work is the time from the request until the
          VMM process exists (its start time in /proc).
  raw     the very argv bangerd gave vhost-device-vsock and QEMU for that
          VM (read from /proc/PID/cmdline), pointed at fresh copies of the
          image rootfs and work disk (made and synced before the clock
          starts), a TAP of its own on the same bridge and a directory of
          its own, without -S (so no QMP round trip); timed from spawn to
          the agent answering over the vsock socket and to SSH.
Prints per round and medians, and banger/raw ratios (target <= 1.10).

Needs root, QEMU and the runtime bundle (make runtime-bundle).  A
measurement, not a test: nothing fails on a slow machine.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

from daemon import Daemon, ROOT  # noqa: E402

RUNTIME = os.path.abspath(os.environ.get("BANGER_E2E_RUNTIME")
                          or os.path.join(ROOT, "runtime"))
KEY = os.path.join(RUNTIME, "id_ed25519")
AGENT_PORT = 1024
POLL_S = 0.05
BOOT_S = 300
CLK_TCK = os.sysconf("SC_CLK_TCK")


def in_ns(ns, argv, **kw):
    return subprocess.run(["nsenter", "--net=/run/netns/" + ns] + argv, **kw)


def ssh_ok(ns, ip):
    r = in_ns(ns, ["ssh", "-i", KEY, "-o", "BatchMode=yes",
                   "-o", "StrictHostKeyChecking=no",
                   "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                   "-o", "ConnectTimeout=1", "root@" + ip, "true"],
              capture_output=True, timeout=30)
    return r.returncode == 0


def wait_for(fn, t0, what):
    while time.monotonic() - t0 < BOOT_S:
        if fn():
            return time.monotonic() - t0
        time.sleep(POLL_S)
    raise RuntimeError("timed out waiting for " + what)


def agent_healthy(uds):
    """Firecracker's hybrid vsock, as bangerd speaks it: CONNECT, then HTTP."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(uds)
            s.sendall(b"CONNECT %d\n" % AGENT_PORT)
            if not s.recv(64).startswith(b"OK"):
                return False
            s.sendall(b"GET /healthz HTTP/1.0\r\nHost: agent\r\n\r\n")
            reply = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n")[0]
    except OSError:
        return False


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode() for a in f.read().split(b"\0")[:-1]]


def started_boottime(pid):
    """The process's start, in seconds of CLOCK_BOOTTIME (10 ms steps)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[19]) / CLK_TCK


def banger_round(d, ns, name):
    api = d.client
    t0 = time.monotonic()
    b0 = time.clock_gettime(time.CLOCK_BOOTTIME)
    r = api.post("/v1/vms", {"name": name}, validate_body=False)
    assert r.status_code == 202, r.text

    def healthy():
        h = api.get("/v1/vms/%s/health" % name, validate=False)
        return h.status_code == 200 and h.json().get("status") == "ok"
    t_health = wait_for(healthy, t0, name + " healthy")
    vm = api.get("/v1/vms/" + name, validate=False).json()
    ip, pid = vm["status"]["ip"], vm["status"]["pid"]
    t_ssh = wait_for(lambda: ssh_ok(ns, ip), t0, name + " ssh")
    host_side = started_boottime(pid) - b0
    vmdir = os.path.join(d.state, "vms", vm["id"])
    qemu = cmdline(pid)
    helpers = subprocess.run(["pgrep", "-f", "vhost-device-vsock.*" + vm["id"]],
                             capture_output=True, text=True).stdout.split()
    assert len(helpers) == 1, helpers
    vhost = cmdline(int(helpers[0]))
    # A stop asks the guest to power off first: how long a clean stop
    # takes, against the grace it may use.
    s0 = time.monotonic()
    r = api.post("/v1/vms/%s/stop" % name, params={"wait": 120},
                 validate_body=False)
    t_stop = time.monotonic() - s0
    assert r.status_code == 200, r.text
    stop = r.json()["result"]["status"]["last_stop"]
    r = api.delete("/v1/vms/" + name, params={"force": "true", "wait": 120},
                   validate_body=False)
    assert r.status_code == 200, r.text
    return {"health": t_health, "ssh": t_ssh, "host": host_side, "ip": ip,
            "vmdir": vmdir, "qemu": qemu, "vhost": vhost, "stop": t_stop,
            "stop_how": "%s by %s" % (stop["result"], stop["method"])}


def raw_round(d, ns, b, bridge):
    """Boot the argv banger used, by hand, on fresh disks."""
    raw = tempfile.mkdtemp(prefix="bgraw", dir="/tmp")
    tap = "bgraw%d" % (os.getpid() % 100000)
    procs = []
    try:
        # Fresh disks, made the way an image's disks are: the rootfs from
        # the bundle, the work disk from bangerd's cached template.
        subprocess.run(["cp", "--sparse=always", "--reflink=auto",
                        os.path.join(RUNTIME, "rootfs-docker.ext4"),
                        os.path.join(raw, "rootfs.ext4")], check=True)
        cache = os.path.join(d.state, "cache")
        templates = [os.path.join(cache, f) for f in os.listdir(cache)
                     if f.startswith("work-") and f.endswith(".ext4")]
        assert len(templates) == 1, templates
        subprocess.run(["cp", "--sparse=always", "--reflink=auto", templates[0],
                        os.path.join(raw, "work.ext4")], check=True)
        # Written back before the clock starts, like bangerd's spare made
        # ahead of time (QEMU reads with O_DIRECT, which would otherwise
        # wait for the copy's dirty pages).
        os.sync()
        argv_q = [a.replace(b["vmdir"], raw) for a in b["qemu"] if a != "-S"]
        argv_v = [a.replace(b["vmdir"], raw) for a in b["vhost"]]
        # Disk paths that are not in the VM directory name themselves.
        disks = [a for a in argv_q if a.startswith("file=") or ",file=" in a]
        assert disks, argv_q
        # The TAP: banger's name swapped for ours, same bridge.
        argv_q = [swap_tap(a, tap) for a in argv_q]
        in_ns(ns, ["ip", "tuntap", "add", "dev", tap, "mode", "tap"], check=True)
        in_ns(ns, ["ip", "link", "set", tap, "master", bridge, "up"], check=True)
        uds = [a.split("=", 1)[1] for a in argv_v if a.startswith("--uds-path=")][0]
        t0 = time.monotonic()
        procs.append(subprocess.Popen(["nsenter", "--net=/run/netns/" + ns] + argv_v,
                                      stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        sock = [a.split("=", 1)[1] for a in argv_v if a.startswith("--socket=")][0]
        sock = sock.split(",")[0]
        wait_for(lambda: os.path.exists(sock), t0, "vhost-device-vsock socket")
        procs.append(subprocess.Popen(["nsenter", "--net=/run/netns/" + ns] + argv_q,
                                      stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        t_health = wait_for(lambda: agent_healthy(uds), t0, "raw boot healthy")
        t_ssh = wait_for(lambda: ssh_ok(ns, b["ip"]), t0, "raw boot ssh")
        return {"health": t_health, "ssh": t_ssh}
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        in_ns(ns, ["ip", "link", "del", tap], capture_output=True)
        shutil.rmtree(raw, ignore_errors=True)


def wait_spare(d, timeout=120):
    path = os.path.join(d.state, "cache", "spares")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isdir(path) and any(not n.startswith(".")
                                       for n in os.listdir(path)):
            return
        time.sleep(0.1)
    print("(no spare rootfs appeared within %d s: creates copy the image)" % timeout)


def swap_tap(arg, tap):
    if not arg.startswith("tap,"):
        return arg
    parts = [("ifname=" + tap) if p.startswith("ifname=") else p
             for p in arg.split(",")]
    return ",".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    missing = [p for p in ("bundle.json", "vmlinux", "rootfs-docker.ext4", "id_ed25519")
               if not os.path.exists(os.path.join(RUNTIME, p))]
    if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or missing:
        print("(skipped the real-boot run: needs root, qemu-system-x86_64 and "
              "the runtime bundle (make runtime-bundle); missing: %s)"
              % (", ".join(missing) or "-"))
        return
    ns = "bgbench-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    d = Daemon(runtime=RUNTIME, netns_path="/run/netns/" + ns,
               config={"health_timeout_s": BOOT_S, "stop_grace_s": 30})
    rows = []
    try:
        d.start()
        bridge = "banger0"
        # Steady state: the default image's spare rootfs is ready (the
        # filler makes it within seconds of a start or a create).
        wait_spare(d)
        # A warm-up create (not counted) gives the argv to replay and
        # warms the page cache for both sides.
        last = banger_round(d, ns, "warmup")
        print("warm-up round (not counted): healthy %.2f s, ssh %.2f s"
              % (last["health"], last["ssh"]), flush=True)
        for i in range(args.rounds):
            # Alternate who boots first, so neither always gets the
            # quieter machine.
            wait_spare(d)
            if i % 2 == 0:
                b = banger_round(d, ns, "boot%02d" % i)
                r = raw_round(d, ns, b, bridge)
            else:
                r = raw_round(d, ns, last, bridge)
                wait_spare(d)
                b = banger_round(d, ns, "boot%02d" % i)
            last = b
            rows.append((b, r))
            print("round %d  banger: host-side %5.0f ms, healthy %6.2f s, ssh %6.2f s"
                  "   raw qemu: healthy %6.2f s, ssh %6.2f s   ratio %.3f / %.3f"
                  "   stop %5.2f s (%s)"
                  % (i + 1, b["host"] * 1000, b["health"], b["ssh"], r["health"],
                     r["ssh"], b["health"] / r["health"], b["ssh"] / r["ssh"],
                     b["stop"], b["stop_how"]),
                  flush=True)
    finally:
        d.cleanup()
        subprocess.run(["ip", "netns", "del", ns])
    if not rows:
        return
    med = statistics.median
    bh, bs = med(b["health"] for b, _ in rows), med(b["ssh"] for b, _ in rows)
    rh, rs = med(r["health"] for _, r in rows), med(r["ssh"] for _, r in rows)
    accel = "TCG" if "tcg" in " ".join(rows[0][0]["qemu"]) else "KVM"
    print("real boots (%s, default image, %d rounds), medians:" % (accel, len(rows)))
    print("  host-side work of a create   %6.0f ms (target <= 150)"
          % (med(b["host"] for b, _ in rows) * 1000))
    print("  banger create -> healthy     %6.2f s    raw qemu boot -> healthy %6.2f s"
          "   ratio %.3f (target <= 1.10)" % (bh, rh, bh / rh))
    print("  banger create -> ssh         %6.2f s    raw qemu boot -> ssh     %6.2f s"
          "   ratio %.3f" % (bs, rs, bs / rs))
    hows = sorted(set(b["stop_how"] for b, _ in rows))
    print("  banger stop                  %6.2f s    grace 30 s   (%s)"
          % (med(b["stop"] for b, _ in rows), ", ".join(hows)))


if __name__ == "__main__":
    main()
