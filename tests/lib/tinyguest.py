"""The tiny test guest as a runtime bundle of its own: the cloud kernel and
a busybox initrd that runs the agent (tests/e2e/make-test-initrd.sh, built
by qemu-boot.sh --guest-only).  Real-boot stress runs and benchmarks boot
it next to the Debian image as the floor: what a boot costs with no init
system at all."""
import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
E2E = os.path.join(REPO, "tests", "e2e")


def tiny_runtime(out, build):
    """Build the tiny guest under BUILD and write OUT/bundle.json naming it.
    Returns OUT; raises RuntimeError with the build's output on failure."""
    guest = os.path.join(build, "e2e", "guest")
    r = subprocess.run(["bash", os.path.join(E2E, "qemu-boot.sh"),
                        "--guest-only"], env=dict(os.environ, BUILD=build),
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("cannot build the tiny guest:\n" + r.stdout +
                           r.stderr)
    os.makedirs(out, exist_ok=True)
    bundle = {"vmm": "qemu",
              "qemu": shutil.which("qemu-system-x86_64"),
              "vhost_user_vsock": os.path.join(build, "tools",
                                               "vhost-device-vsock"),
              "kernel": os.path.join(guest, "vmlinuz"),
              "initrd": os.path.join(guest, "initrd.img"),
              "rootfs": os.path.join(guest, "rootfs.ext4"),
              "work_seed": os.path.join(guest, "work.ext4"),
              "agent": os.path.join(REPO, "runtime", "banger-vsock-agent"),
              "agent_port": 1024}
    with open(os.path.join(out, "bundle.json"), "w") as f:
        json.dump(bundle, f)
    return out
