"""Strict image inputs: POST /v1/images takes only ext4 image files (symlinks
resolved, outside /proc, /sys and /dev, readable, as long as their
superblock says) for rootfs and work_seed; everything else is 400
invalid_image naming the field, the path and what is wrong.  null for a
field that is not nullable is 400 invalid_field, as is a value of the wrong
type."""
import os
import time

import pytest

from daemon import make_ext4


def err_of(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    return body


@pytest.fixture
def bad(daemon, tmp_path):
    """Every kind of file that is not an ext4 image, by name."""
    d = tmp_path
    (d / "text").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (d / "dir").mkdir()
    os.mkfifo(d / "fifo")
    os.mknod(d / "chardev", 0o600 | 0o020000, os.makedev(1, 3))
    (d / "empty").write_bytes(b"")
    trunc = d / "trunc.ext4"
    make_ext4(str(trunc), 8)
    with open(trunc, "r+b") as f:
        f.truncate(2 << 20)
    files = {
        "text": (str(d / "text"), "not an ext4 image"),
        "dir": (str(d / "dir"), "is a directory"),
        "fifo": (str(d / "fifo"), "is a FIFO"),
        "chardev": (str(d / "chardev"), "is a character device"),
        "devnull": ("/dev/null", "is under /dev"),
        "procmem": ("/proc/self/mem", "is under /proc"),
        "sys": ("/sys/kernel/uevent_seqnum", "is under /sys"),
        "passwd": ("/etc/passwd", "not an ext4 image"),
        "empty": (str(d / "empty"), "is empty"),
        "trunc": (str(trunc), "is truncated: the superblock says 8388608 bytes,"
                  " the file has 2097152"),
    }
    for name, (path, why) in list(files.items()):
        link = d / ("link-" + name)
        os.symlink(path, link)
        files["link-" + name] = (str(link), why)
    return files


FIELDS = ["rootfs", "work_seed"]


@pytest.mark.parametrize("field", FIELDS)
def test_register_refuses_what_is_not_an_ext4_image(api, daemon, bad, field):
    good_rootfs, good_seed = daemon.make_image("strict-" + field)
    for name, (path, why) in bad.items():
        body = {"name": "strict", "rootfs": good_rootfs, "work_seed": good_seed}
        body[field] = path
        t0 = time.time()
        r = api.post("/v1/images", body)
        # A FIFO must not make bangerd wait for a writer.
        assert time.time() - t0 < 5, name
        e = err_of(r, 400, "invalid_image")
        assert e["details"]["field"] == field, (name, e)
        assert path in e["message"] and why in e["message"], (name, e["message"])
    assert api.get("/v1/images/strict").status_code == 404


def test_register_takes_an_ext4_image_through_a_symlink(api, daemon, tmp_path):
    rootfs, seed = daemon.make_image("linked")
    os.symlink(rootfs, tmp_path / "rootfs-link")
    r = api.post("/v1/images", {"name": "linked",
                                "rootfs": str(tmp_path / "rootfs-link"),
                                "work_seed": seed})
    assert r.status_code == 201, r.text
    assert r.json()["available"] is True
    assert api.delete("/v1/images/linked").status_code == 204


def test_missing_and_relative_paths_stay_invalid_path(api):
    err_of(api.post("/v1/images", {"name": "gone", "rootfs": "/nonexistent.ext4"}),
           400, "invalid_path")
    err_of(api.post("/v1/images", {"name": "rel", "rootfs": "rootfs.ext4"}),
           400, "invalid_path")


def test_create_checks_the_image_again(api, daemon):
    """An image whose rootfs was replaced by junk after registering is not
    copied into a VM: 409 image_unavailable says why."""
    rootfs, seed = daemon.make_image("swapped")
    assert api.post("/v1/images", {"name": "swapped", "rootfs": rootfs,
                                   "work_seed": seed}).status_code == 201
    with open(rootfs, "w") as f:
        f.write("not a filesystem any more\n")
    assert api.get("/v1/images/swapped").json()["available"] is False
    e = err_of(api.post("/v1/vms", {"name": "swapvm", "image": "swapped"}), 409,
               "image_unavailable")
    assert "not an ext4 image" in e["message"], e
    err_of(api.get("/v1/vms/swapvm"), 404, "vm_not_found")
    make_ext4(rootfs, 32)
    assert api.get("/v1/images/swapped").json()["available"] is True
    assert api.delete("/v1/images/swapped").status_code == 204


def test_cli_register_prints_why(daemon):
    r = daemon.run_banger("image", "register", "--name", "pw", "--rootfs",
                          "/etc/passwd")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "rootfs /etc/passwd: is not an ext4 image" in r.stderr, r.stderr


@pytest.mark.parametrize("path,body", [
    ("/v1/vms", {"name": "nul", "vcpus": None}),
    ("/v1/vms", {"name": "nul", "memory_mib": None}),
    ("/v1/vms", {"name": "nul", "nat": None}),
    ("/v1/vms", {"name": "nul", "image": None}),
    ("/v1/vms", {"name": None}),
    ("/v1/images", {"name": "nul", "rootfs": None}),
    ("/v1/images", {"name": None, "rootfs": "/x.ext4"}),
    ("/v1/images/build", {"name": "nul", "distro": None}),
    ("/v1/vms/actions", {"action": "stop", "names": None}),
    ("/v1/vms/actions", {"action": None, "names": ["a"]}),
])
def test_null_is_not_absent(api, path, body):
    field = [k for k, v in body.items() if v is None][0]
    e = err_of(api.post(path, body), 400, "invalid_field")
    assert e["details"]["field"] == field, e
    assert "not null" in e["message"], e


def test_null_in_patch_and_stop(api):
    api.create_vm("nulpatch", vcpus=1)
    try:
        e = err_of(api.patch("/v1/vms/nulpatch", {"nat": None}), 400,
                   "invalid_field")
        assert e["details"]["field"] == "nat"
        e = err_of(api.post("/v1/vms/nulpatch/stop", {"timeout_s": None}), 400,
                   "invalid_field")
        assert e["details"]["field"] == "timeout_s"
        vm = api.get("/v1/vms/nulpatch").json()
        assert vm["spec"]["nat"] is False and vm["status"]["state"] == "running"
    finally:
        api.delete_vm("nulpatch")


def test_work_seed_may_be_null(api, daemon):
    rootfs, _ = daemon.make_image("noseed")
    r = api.post("/v1/images", {"name": "noseed", "rootfs": rootfs,
                                "work_seed": None})
    assert r.status_code == 201, r.text
    assert r.json()["work_seed"] is None
    assert api.delete("/v1/images/noseed").status_code == 204


def test_fs_check_does_not_open_a_fifo(api, tmp_path):
    """A FIFO nobody writes to: opening it for reading would block bangerd's
    request thread forever."""
    fifo = tmp_path / "slowfifo"
    os.mkfifo(fifo)
    t0 = time.time()
    err_of(api.post("/v1/images", {"name": "fifo", "rootfs": str(fifo)}), 400,
           "invalid_image")
    assert time.time() - t0 < 2
    # And bangerd still answers.
    assert api.get("/v1/healthz").status_code == 200
