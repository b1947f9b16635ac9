"""Port forwarding (make bench): throughput and added latency of a guest
port reached through banger, side by side with the same service reached
directly, in one run.

The guest is the Firecracker test double's: its agent (the real
banger-vsock-agent) runs on the host in bangerd's network namespace and
connects to the service there, so the numbers are banger's own path
(bangerd's listener and relay, the vsock hop through the double's
hybrid-vsock socket, the agent's relay), not a VMM's or a guest
kernel's.  Paths:

  direct        the service on 127.0.0.1, no banger
  spec forward  a forward in the VM's spec: bangerd listens
  port-forward  banger vm port-forward: the CLI listens, bangerd's
                POST /v1/vms/NAME/connect carries it

These are measurements, not tests: nothing here fails on a slow machine.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

from daemon import Daemon  # noqa: E402
from netns import ns_connect, ns_socket  # noqa: E402

GUEST = 7101
SPEC = 18101


class Service:
    """Per connection: a 1-byte ping answered at once until "s", then an
    8-byte length and a sink of that many bytes that answers "done" (no
    half-close: through Firecracker's vsock a host-side EOF ends the whole
    connection)."""

    def __init__(self, pid):
        self.sock = ns_socket(pid)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", GUEST))
        self.sock.listen(128)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    @staticmethod
    def one(c):
        with c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                b = c.recv(1)
                if not b or b == b"s":
                    break
                c.sendall(b)
            want = b""
            while b and len(want) < 8:
                b = c.recv(8 - len(want))
                want += b
            left = int.from_bytes(want, "big") if len(want) == 8 else 0
            while b and left > 0:
                b = c.recv(min(left, 1 << 20))
                left -= len(b)
            c.sendall(b"done")


def connect(pid, port):
    s = ns_connect(pid, port, timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def measure(pid, port, pings, mib):
    # Connection setup: connect and one round trip.
    setups = []
    for _ in range(20):
        t = time.perf_counter()
        s = connect(pid, port)
        s.sendall(b"p")
        assert s.recv(1) == b"p"
        setups.append((time.perf_counter() - t) * 1000)
        s.close()
    s = connect(pid, port)
    rtts = []
    for _ in range(pings):
        t = time.perf_counter()
        s.sendall(b"p")
        assert s.recv(1) == b"p"
        rtts.append((time.perf_counter() - t) * 1e6)
    s.sendall(b"s" + (mib << 20).to_bytes(8, "big"))
    chunk = os.urandom(1 << 20)
    t = time.perf_counter()
    for _ in range(mib):
        s.sendall(chunk)
    got = s.recv(64)
    took = time.perf_counter() - t
    s.close()
    assert got == b"done", got
    rtts.sort()
    return {"setup_ms": statistics.median(setups),
            "rtt_p50_us": statistics.median(rtts),
            "rtt_p99_us": rtts[int(0.99 * (len(rtts) - 1))],
            "mib_s": mib / took}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--mib", type=int, default=512)
    args = ap.parse_args()
    d = Daemon().start()
    pf = None
    try:
        pid = d.proc.pid if d.netns else None
        Service(pid)
        r = d.client.post("/v1/vms", {"name": "bp", "vcpus": 1,
                                      "ports": [{"host": SPEC,
                                                 "guest": GUEST}]},
                          params={"wait": 60}, validate_body=False)
        assert r.json()["state"] == "succeeded", r.text
        # The CLI listens in bangerd's namespace too, as a user would next
        # to bangerd.
        argv = [d.banger, "vm", "port-forward", "bp",
                "%d:%d" % (SPEC + 1, GUEST)]
        if pid is not None:
            argv = ["nsenter", "--net=/proc/%d/ns/net" % pid] + argv
        pf = subprocess.Popen(argv, env=d.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        assert pf.stdout.readline().startswith("forwarding"), pf.stderr.read()
        rows = [("direct", GUEST), ("spec forward", SPEC),
                ("port-forward", SPEC + 1)]
        res = {name: measure(pid, port, args.pings, args.mib)
               for name, port in rows}
        base = res["direct"]
        print("port forwarding (test double: host service, real agent), "
              "%d MiB one way, %d pings" % (args.mib, args.pings))
        print("  %-13s %10s %9s %12s %12s" % ("path", "MiB/s", "setup", "rtt p50",
                                            "rtt p99"))
        for name, _ in rows:
            m = res[name]
            print("  %-13s %10.0f %7.2f ms %9.0f us %9.0f us" % (
                name, m["mib_s"], m["setup_ms"], m["rtt_p50_us"],
                m["rtt_p99_us"]))
        for name in ("spec forward", "port-forward"):
            m = res[name]
            print("  %-13s throughput %.2fx direct, added rtt %.0f us (p50), "
                  "added setup %.2f ms" % (
                      name, m["mib_s"] / base["mib_s"],
                      m["rtt_p50_us"] - base["rtt_p50_us"],
                      m["setup_ms"] - base["setup_ms"]))
    finally:
        if pf is not None:
            pf.terminate()
            pf.communicate(timeout=10)
        d.cleanup()


if __name__ == "__main__":
    main()
