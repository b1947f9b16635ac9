#!/usr/bin/python3
"""Ready means ready: N stop/start cycles of the runtime bundle's Debian
image through bangerd, each followed by exactly one `banger vm ssh` the
instant the start returns.  Every ssh must succeed; each stop must be
clean.  Prints a line per cycle and a summary; exits 1 on any failure,
with the console tail of the VM.

    make stress-ready [N=20]

Real boots (QEMU, TCG on machines whose KVM cannot boot a standard guest):
bangerd runs in a network namespace of its own, as in tests/e2e.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

from daemon import BANGER, netns_daemon  # noqa: E402
from test_vms import console_tail, in_ns  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
RUNTIME = os.path.abspath(os.environ.get("BANGER_E2E_RUNTIME")
                          or os.path.join(REPO, "runtime"))
BOOT_S = 300


def cycles(d, api, name, n, starts, stops, failures):
    """Create, then n stop/start cycles with one ssh the instant each start
    returns; the number of cycles that were all good."""
    ok = 0
    op = api.post("/v1/vms", {"name": name, "vcpus": 1},
                  params={"wait": BOOT_S + 60}, validate_body=False).json()
    if op.get("state") != "succeeded":
        sys.exit("create failed: %s\n%s" % (op, console_tail(api, name)))
    for i in range(n):
        t0 = time.monotonic()
        op = api.post("/v1/vms/%s/stop" % name, params={"wait": 120},
                      validate_body=False).json()
        stops.append(time.monotonic() - t0)
        how = op.get("result", {}).get("status", {}).get("last_stop") or {}
        t0 = time.monotonic()
        op = api.post("/v1/vms/%s/start" % name, params={"wait": BOOT_S + 60},
                      validate_body=False).json()
        starts.append(time.monotonic() - t0)
        if op.get("state") != "succeeded":
            failures.append((i + 1, "start: %s" % op.get("error")))
            print("cycle %2d: start FAILED: %s" % (i + 1, op.get("error")),
                  flush=True)
            break
        r = in_ns(d, [BANGER, "vm", "ssh", name, "--", "true"])
        good = r.returncode == 0 and how.get("result") == "clean"
        ok += good
        print("cycle %2d: stop %5.2f s (%s by %s), start %6.2f s, ssh %s"
              % (i + 1, stops[-1], how.get("result"), how.get("method"),
                 starts[-1], "ok" if r.returncode == 0 else
                 "FAILED: " + r.stderr.strip().splitlines()[-1]
                 if r.stderr.strip() else "FAILED"), flush=True)
        if not good:
            failures.append((i + 1, r.stderr.strip() or how))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20, help="cycles (default 20)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("ready_cycles: needs root (TAP networking, namespaces)")
    if not os.path.exists(os.path.join(RUNTIME, "bundle.json")):
        sys.exit("ready_cycles: no runtime bundle in %s: make runtime-bundle"
                 % RUNTIME)
    api = None
    name = "ready"
    ok = 0
    starts, stops, failures = [], [], []
    with netns_daemon("bgready", runtime=RUNTIME,
                      config={"health_timeout_s": BOOT_S,
                              "stop_grace_s": 30}) as d:
        api = d.client
        try:
            ok = cycles(d, api, name, args.n, starts, stops, failures)
        finally:
            if failures:
                print(console_tail(api, name))
    med = statistics.median
    print("%d of %d cycles: ssh at once after start, clean stop" % (ok, args.n))
    if starts:
        print("start -> ready: median %.2f s, max %.2f s; stop: median %.2f s,"
              " max %.2f s" % (med(starts), max(starts), med(stops), max(stops)))
    sys.exit(0 if ok == args.n else 1)


if __name__ == "__main__":
    main()
