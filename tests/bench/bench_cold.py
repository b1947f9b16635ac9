#!/usr/bin/python3
"""Cold-boot benchmark (make bench-boot, part of make bench-create): a
fresh VM of the runtime bundle's Debian image, from the create request
until `ssh root@IP true` works, next to the tiny test guest (no init
system: the agent runs from its initrd), from the create request until
bangerd says it is healthy.  Both through bangerd, each under a bangerd of
its own in a network namespace of its own, alternating round by round in
one run, so both see the same machine.  The goal is a ratio, not a time:
Debian create->SSH at most 2.5x the tiny guest's create->healthy.

Each round creates a new VM (new disks: first boot, host keys made, work
disk checked), waits, then deletes it; a warm-up round of each (not
counted) fills the page cache.  Prints every round, the medians, the
ratio, and the Debian guest's own view of its last boot (kernel, initrd
and userspace until sshd, from its journal).  --baseline DIR adds a third
column in the same run: another build of the Debian image
(DIR/rootfs-docker.ext4 and DIR/work-seed.ext4, e.g. a copy of an older
runtime/), registered next to the default and booted the same way, to
compare two images by their ratios rather than by absolute times.

Needs root, qemu-system-x86_64, the runtime bundle (make runtime-bundle)
and what the tiny guest is built from (tests/e2e/qemu-boot.sh
--guest-only); without them it says what is missing and exits 0.  A
measurement, not a test: nothing fails on a slow machine.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from daemon import netns_daemon  # noqa: E402
from tinyguest import tiny_runtime  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.abspath(os.environ.get("BUILD") or os.path.join(REPO, "build"))
RUNTIME = os.path.abspath(os.environ.get("BANGER_E2E_RUNTIME")
                          or os.path.join(REPO, "runtime"))
KEY = os.path.join(RUNTIME, "id_ed25519")
GOAL = 2.5
POLL_S = 0.05
BOOT_S = 300


def ssh(ns, ip, cmd, timeout=30):
    return subprocess.run(
        ["nsenter", "--net=/run/netns/" + ns, "ssh", "-i", KEY,
         "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
         "-o", "ConnectTimeout=1", "root@" + ip, cmd],
        capture_output=True, text=True, timeout=timeout)


def wait_for(fn, t0, what):
    while time.monotonic() - t0 < BOOT_S:
        if fn():
            return time.monotonic() - t0
        time.sleep(POLL_S)
    raise RuntimeError("timed out after %d s waiting for %s" % (BOOT_S, what))


def wait_spare(d, timeout=120):
    """bangerd keeps a spare rootfs copy per image, made in the background
    after a create: let it finish, so no round pays for the last one's."""
    path = os.path.join(d.state, "cache", "spares")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isdir(path) and any(not n.startswith(".")
                                       for n in os.listdir(path)):
            return
        time.sleep(0.1)


def healthy(api, name):
    h = api.get("/v1/vms/%s/health" % name, validate=False)
    return h.status_code == 200 and h.json().get("status") == "ok"


def boot(d, name, vcpus, want_ssh, image=None):
    """Create NAME; seconds to healthy and (want_ssh) to a working ssh."""
    api = d.client
    wait_spare(d)
    body = {"name": name, "vcpus": vcpus}
    if image:
        body["image"] = image
    t0 = time.monotonic()
    r = api.post("/v1/vms", body, validate_body=False)
    if r.status_code != 202:
        raise RuntimeError("create %s: %s %s" % (name, r.status_code, r.text))
    t_health = wait_for(lambda: healthy(api, name), t0, name + " healthy")
    out = {"health": t_health}
    if want_ssh:
        ip = api.get("/v1/vms/" + name, validate=False).json()["status"]["ip"]
        out["ssh"] = wait_for(lambda: ssh(d.ns, ip, "true").returncode == 0,
                              t0, name + " ssh")
        out["guest"] = guest_timeline(d.ns, ip)
    r = api.delete("/v1/vms/" + name, params={"force": "true", "wait": 120},
                   validate_body=False)
    if r.status_code != 200:
        raise RuntimeError("delete %s: %s %s" % (name, r.status_code, r.text))
    return out


MARKS = (("init", "Run /init as init process"),
         ("systemd", "systemd[1]: systemd "),
         ("agent", "Started banger-vsock-agent.service"),
         ("sshd", "Server listening on 0.0.0.0 port 22"))


def guest_timeline(ns, ip):
    """Guest uptimes (s) of the boot's milestones, from its journal."""
    r = ssh(ns, ip, "journalctl -b -o short-monotonic --no-pager -q")
    t = {}
    for line in r.stdout.splitlines():
        if not line.startswith("["):
            continue
        for key, pat in MARKS:
            if key not in t and pat in line:
                try:
                    t[key] = float(line[1:line.index("]")])
                except ValueError:
                    pass
    return t


def missing():
    why = []
    if os.geteuid() != 0:
        why.append("root (TAP networking, namespaces)")
    if not shutil.which("qemu-system-x86_64"):
        why.append("qemu-system-x86_64 (apt-get install qemu-system-x86)")
    parts = [p for p in ("bundle.json", "rootfs-docker.ext4", "id_ed25519")
             if not os.path.exists(os.path.join(RUNTIME, p))]
    if parts:
        why.append("the runtime bundle in %s (make runtime-bundle; no %s)"
                   % (RUNTIME, ", ".join(parts)))
    return why


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vcpus", type=int, default=2)
    ap.add_argument("--baseline", metavar="DIR",
                    help="also boot the Debian image built in DIR")
    args = ap.parse_args()
    why = missing()
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
        for p in ("rootfs-docker.ext4", "work-seed.ext4"):
            if not os.path.isfile(os.path.join(args.baseline, p)):
                sys.exit("bench_cold: no %s in %s" % (p, args.baseline))
    if why:
        print("(skipped the cold-boot benchmark: needs %s)" % "; ".join(why))
        return
    try:
        tiny = tiny_runtime(os.path.join(BUILD, "bench", "tiny-runtime"), BUILD)
    except RuntimeError as e:
        print("(skipped the cold-boot benchmark: %s)" % e)
        return
    cfg = {"health_timeout_s": BOOT_S, "stop_grace_s": 30}
    rows = []
    with netns_daemon("bgcold-t", runtime=tiny, config=cfg) as dt, \
            netns_daemon("bgcold-d", runtime=RUNTIME, config=cfg) as dd:
        kinds = [("tiny", lambda n: boot(dt, n, args.vcpus, False)),
                 ("debian", lambda n: boot(dd, n, args.vcpus, True))]
        if args.baseline:
            r = dd.client.post("/v1/images", {
                "name": "baseline",
                "rootfs": os.path.join(args.baseline, "rootfs-docker.ext4"),
                "work_seed": os.path.join(args.baseline, "work-seed.ext4")},
                validate_body=False)
            if r.status_code not in (200, 201):
                sys.exit("bench_cold: register %s: %s" % (args.baseline, r.text))
            kinds.append(("baseline", lambda n: boot(dd, n, args.vcpus, True,
                                                     "baseline")))
        warm = {k: fn("warm-" + k) for k, fn in kinds}
        print("warm-up (not counted): " + ", ".join(
            "%s %s" % (k, show(w)) for k, w in warm.items()), flush=True)
        for i in range(args.rounds):
            # A different one goes first each round.
            j = i % len(kinds)
            row = {k: fn("%s%02d" % (k, i)) for k, fn in kinds[j:] + kinds[:j]}
            rows.append(row)
            print("round %d  " % (i + 1) + "   ".join(
                "%s: %s" % (k, show(row[k], row["tiny"]["health"]))
                for k, _ in kinds), flush=True)
    med = statistics.median
    th = med(r["tiny"]["health"] for r in rows)
    print("cold boots (%d rounds, %d vCPU, %d host cores), medians:"
          % (len(rows), args.vcpus, os.cpu_count() or 1))
    print("  tiny guest   create -> healthy  %6.2f s" % th)
    for k, _ in kinds[1:]:
        dh = med(r[k]["health"] for r in rows)
        ds = med(r[k]["ssh"] for r in rows)
        label = "debian image" if k == "debian" else "baseline    "
        print("  %s create -> healthy  %6.2f s" % (label, dh))
        print("  %s create -> ssh      %6.2f s   ratio to tiny %.2f "
              "(goal <= %.1f: %s)" % (label, ds, ds / th, GOAL,
                                     "met" if ds / th <= GOAL else "NOT met"))
    for k, _ in kinds[1:]:
        g = rows[-1][k]["guest"]
        if all(m in g for m, _ in MARKS):
            print("  %s guest, last round (uptime): /init %.2f s, systemd "
                  "%.2f s, agent %.2f s, sshd listening %.2f s"
                  % (k, g["init"], g["systemd"], g["agent"], g["sshd"]))


def show(b, tiny=None):
    s = "healthy %6.2f s" % b["health"]
    if "ssh" in b:
        s += ", ssh %6.2f s" % b["ssh"]
        if tiny:
            s += " (x%.2f)" % (b["ssh"] / tiny)
    return s

if __name__ == "__main__":
    main()
