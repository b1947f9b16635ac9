"""banger vm cp (make bench): throughput in and out of a VM next to a
local tar pipe of the same data, in one run.

The guest is the Firecracker test double's: its agent (the real
banger-vsock-agent) runs on the host, so the "guest" side is a host
directory and the numbers are banger's own path (CLI and libarchive,
bangerd's streamed relay, the double's hybrid vsock, the agent's
extraction), not a VMM's or a guest kernel's.  One large file, then a
tree of small ones (where per-entry work shows).

These are measurements, not tests: nothing here fails on a slow machine.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

from daemon import Daemon  # noqa: E402


def timed(argv, env=None):
    t = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    assert r.returncode == 0, (argv, r.stderr)
    return took


def local_tar(src_parent, name, dst):
    """The same bytes through tar | tar, no banger."""
    t = time.perf_counter()
    p1 = subprocess.Popen(["tar", "-C", src_parent, "-cf", "-", name],
                          stdout=subprocess.PIPE)
    p2 = subprocess.run(["tar", "-C", dst, "-xf", "-"], stdin=p1.stdout)
    p1.stdout.close()
    assert p1.wait() == 0 and p2.returncode == 0
    return time.perf_counter() - t


def make_payloads(base, mib, files):
    big = os.path.join(base, "src", "big")
    os.makedirs(big)
    chunk = os.urandom(1 << 20)
    with open(os.path.join(big, "blob.bin"), "wb") as f:
        for _ in range(mib):
            f.write(chunk)
    small = os.path.join(base, "src", "small")
    for i in range(files):
        d = os.path.join(small, "d%02d" % (i % 50))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d.txt" % i), "wb") as f:
            f.write(chunk[:4096])
    return {"big": (mib << 20, 1), "small": (files * 4096, files)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--files", type=int, default=5000)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="bgcp")
    d = Daemon().start()
    try:
        sizes = make_payloads(base, args.mib, args.files)
        r = d.client.post("/v1/vms", {"name": "bcp", "vcpus": 1},
                          params={"wait": 60}, validate_body=False)
        assert r.json()["state"] == "succeeded", r.text
        print("banger vm cp (test double: host directory, real agent)")
        print("  %-6s %8s %11s %11s %11s" % ("data", "size", "local tar",
                                             "cp in", "cp out"))
        for name, (size, count) in sizes.items():
            src = os.path.join(base, "src", name)
            for sub in ("local", "in", "out"):
                os.makedirs(os.path.join(base, sub, name))
            t_local = local_tar(os.path.join(base, "src"), name,
                                os.path.join(base, "local", name))
            t_in = timed([d.banger, "vm", "cp", src, "bcp:" +
                          os.path.join(base, "in", name)], env=d.env)
            t_out = timed([d.banger, "vm", "cp", "bcp:" +
                           os.path.join(base, "in", name, name),
                           os.path.join(base, "out", name)], env=d.env)
            mib = size / (1 << 20)
            label = "%d MiB" % mib if count == 1 else "%d x 4K" % count
            print("  %-6s %8s %8.0f MiB/s %6.0f MiB/s %6.0f MiB/s" % (
                name, label, mib / t_local, mib / t_in, mib / t_out))
            print("  %-6s %8s %11s %10.2fx %10.2fx" % (
                "", "", "vs local", t_local / t_in, t_local / t_out))
    finally:
        d.cleanup()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
