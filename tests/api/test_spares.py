"""Spare rootfs copies (config rootfs_spares): made in the background for
the default image, taken by a create (renamed, so the VM's rootfs is the
spare's inode), refilled, pruned when their image goes, off with 0."""
import os
import time

import pytest

from daemon import Daemon, make_ext4


def spares(d):
    path = os.path.join(d.state, "cache", "spares")
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return {}
    out = {}
    for n in names:
        if n.startswith("."):
            continue
        # bangerd prunes and renames spares while we look: one that is gone
        # between listdir and stat is not there.
        try:
            out[n] = os.stat(os.path.join(path, n)).st_ino
        except FileNotFoundError:
            pass
    return out


def wait_spares(d, pred, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = spares(d)
        if pred(got):
            return got
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s: %r" % (what, spares(d)))


def vm_rootfs(d, name):
    vm = d.client.get("/v1/vms/" + name).json()
    return os.path.join(d.state, "vms", vm["id"], "rootfs.ext4")


@pytest.fixture
def sd():
    d = Daemon(config={"rootfs_spares": 1}).start()
    yield d
    d.cleanup()


def test_create_takes_the_spare_and_it_is_refilled(sd):
    first = wait_spares(sd, lambda s: len(s) == 1, "the default image's spare")
    (name, ino), = first.items()
    sd.client.create_vm("sp1")
    path = vm_rootfs(sd, "sp1")
    assert os.stat(path).st_ino == ino, "the create renamed the spare in"
    with open(path, "rb") as a, open(os.path.join(sd.runtime,
                                                  "rootfs-docker.ext4"), "rb") as b:
        assert a.read() == b.read(), "the spare is a faithful copy"
    again = wait_spares(sd, lambda s: name in s and s[name] != ino, "a new spare")
    assert list(again) == [name]
    # Two creates back to back: one gets the spare, the other copies.
    sd.client.create_vm("sp2")
    sd.client.create_vm("sp3")
    inos = {os.stat(vm_rootfs(sd, n)).st_ino for n in ("sp1", "sp2", "sp3")}
    assert len(inos) == 3
    wait_spares(sd, lambda s: len(s) == 1, "the refill after two creates")


def test_spares_follow_images(sd):
    wait_spares(sd, lambda s: len(s) == 1, "the default image's spare")
    rootfs = make_ext4(os.path.join(sd.dir, "other.ext4"), 32,
                       {"etc/hostname": "other\n"})
    r = sd.client.post("/v1/images", {"name": "other", "rootfs": rootfs})
    assert r.status_code == 201, r.text
    sd.client.create_vm("spo", image="other")
    both = wait_spares(sd, lambda s: len(s) == 2, "a spare of the other image")
    # A changed image misses its old spare: the VM gets the new content
    # (not the inode: the pruned spare's may be reused by the copy).
    sd.client.delete_vm("spo")
    with open(rootfs, "rb") as f:
        old = f.read()
    make_ext4(rootfs, 32, {"etc/hostname": "changed\n"})
    with open(rootfs, "rb") as f:
        new = f.read()
    assert new != old
    sd.client.create_vm("spo", image="other")
    with open(vm_rootfs(sd, "spo"), "rb") as a:
        assert a.read() == new
    # Deleting the image prunes its spares; the default image's stays.
    sd.client.delete_vm("spo")
    r = sd.client.delete("/v1/images/other")
    assert r.status_code == 204, r.text
    left = wait_spares(sd, lambda s: len(s) == 1, "the other image's spare pruned")
    assert set(left) <= set(both)


def test_no_spares_when_off():
    d = Daemon(config={"rootfs_spares": 0}).start()
    try:
        d.client.create_vm("nosp")
        time.sleep(0.5)  # give a (wrongly) running filler time to show up
        assert spares(d) == {}
        assert os.path.exists(vm_rootfs(d, "nosp"))
    finally:
        d.cleanup()
