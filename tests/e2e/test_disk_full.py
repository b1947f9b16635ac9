"""A full host disk never corrupts a guest (real boot, QEMU): VM disks live
on a small tmpfs (mounted at <state>/vms, where bangerd keeps them; its
database stays on the ordinary disk), a Debian guest writes until the host
has no room left, QEMU pauses the VM (werror=enospc) and bangerd shows it
paused with host_disk_full.  A resume is refused while the disk is still
full; once the tmpfs grows, the VM resumes, the write completes, the data
written before and during the fill is intact, the stop is clean and the
work disk is fsck-clean."""
import os
import subprocess
import tempfile

import pytest

from daemon import netns_daemon
from test_vms import (BANGER, BOOT_S, RUNTIME, console_tail, qemu_missing,
                      wait_until)

FILL_MIB = 600


@pytest.fixture(scope="module")
def small_disk():
    why = qemu_missing()
    if why:
        pytest.skip(why)
    assert os.path.exists(os.path.join(RUNTIME, "bundle.json")), \
        "no runtime bundle in %s: run make runtime-bundle" % RUNTIME
    rootfs = os.path.join(RUNTIME, "rootfs-docker.ext4")
    # Room for the VM's rootfs copy (its allocated blocks) and work disk,
    # and a little more: far less than FILL_MIB.
    need_mib = (os.stat(rootfs).st_blocks * 512 >> 20) + 64
    size_mib = need_mib + 200
    state = tempfile.mkdtemp(prefix="bgfull", dir="/tmp")
    vms = os.path.join(state, "vms")
    os.makedirs(vms)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % size_mib,
                    "bgfull", vms], check=True)
    try:
        with netns_daemon("bgfull", runtime=RUNTIME, state=state,
                          config={"health_timeout_s": BOOT_S,
                                  "stop_grace_s": 30, "disk_reserve_mib": 32,
                                  "rootfs_spares": 0}) as d:
            d.vms_mount = vms
            d.size_mib = size_mib
            yield d
    finally:
        subprocess.run(["umount", "-l", vms])
        subprocess.run(["rm", "-rf", state])


def ssh(d, cmd, timeout=300):
    return subprocess.run(["nsenter", "--net=/run/netns/" + d.ns, BANGER, "vm",
                           "ssh", "full", "--", cmd], env=d.env,
                          capture_output=True, text=True, timeout=timeout)


def test_full_host_disk_pauses_and_resumes_intact(small_disk):
    d = small_disk
    api = d.client
    op = api.post("/v1/vms", {"name": "full", "vcpus": 1, "memory_mib": 512},
                  params={"wait": BOOT_S + 60}).json()
    assert op["state"] == "succeeded", "%s\n%s" % (op, console_tail(api, "full"))
    # Data written (and synced) before the host fills up.
    r = ssh(d, "head -c 4M /dev/urandom >/root/before && sync && "
               "sha256sum /root/before")
    assert r.returncode == 0, r.stderr
    before = r.stdout.split()[0]
    host = api.get("/v1/host").json()
    print("host before the fill: %d MiB free, reserve %d MiB" % (
        host["free_bytes"] >> 20, host["reserve_bytes"] >> 20))

    # Write more than the host has: the write cannot finish while full.
    filler = subprocess.Popen(
        ["nsenter", "--net=/run/netns/" + d.ns, BANGER, "vm", "ssh", "full",
         "--", "dd if=/dev/zero of=/root/fill bs=1M count=%d conv=fsync "
         "status=none && sha256sum /root/fill" % FILL_MIB],
        env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def paused():
            v = api.get("/v1/vms/full").json()
            return v if v["status"]["state"] == "paused" else None
        vm = wait_until("the VM to be paused on the full disk", paused, 240)
        assert vm["status"]["paused_reason"] == "host_disk_full", vm
        assert filler.poll() is None, "the write finished on a full disk?"
        events = api.session.get(api.base + "/v1/events",
                                 params={"vm": "full"},
                                 headers={"Last-Event-ID": "0"}, stream=True,
                                 timeout=10)
        seen = None
        for line in events.iter_lines(decode_unicode=True):
            if line.startswith("data: ") and '"paused"' in line:
                seen = line
                break
        events.close()
        assert seen and "host_disk_full" in seen, seen
        # Still full: a resume is refused, the VM stays paused.
        r = api.post("/v1/vms/full/resume")
        assert r.status_code == 507 and r.json()["code"] == "host_disk_full", \
            r.text
        assert api.get("/v1/vms/full").json()["status"]["state"] == "paused"

        # Space comes back: the tmpfs grows past what the guest wants.
        subprocess.run(["mount", "-o", "remount,size=%dm" % (
            d.size_mib + FILL_MIB + 200), d.vms_mount], check=True)
        r = api.post("/v1/vms/full/resume")
        assert r.status_code == 200, r.text
        assert r.json()["status"]["state"] == "running"
        out, err = filler.communicate(timeout=300)
    finally:
        if filler.poll() is None:
            filler.kill()
    assert filler.returncode == 0, err
    assert out.split()[0] == subprocess.run(
        ["sh", "-c", "head -c %dM /dev/zero | sha256sum" % FILL_MIB],
        capture_output=True, text=True).stdout.split()[0], out
    r = ssh(d, "sha256sum /root/before; ls -l /root/fill | awk '{print $5}'; "
               "dmesg | grep -ciE 'EXT4-fs error|I/O error' || true")
    lines = r.stdout.split("\n")
    assert lines[0].split()[0] == before, r.stdout
    assert int(lines[1]) == FILL_MIB << 20, r.stdout
    assert lines[2].strip() == "0", "the guest saw I/O errors:\n" + r.stdout

    op = api.post("/v1/vms/full/stop", params={"wait": 120}).json()
    assert op["result"]["status"]["last_stop"]["result"] == "clean", op
    vm_id = api.get("/v1/vms/full").json()["id"]
    work = os.path.join(d.state, "vms", vm_id, "work.ext4")
    fsck = subprocess.run(["e2fsck", "-fn", work], capture_output=True,
                          text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
