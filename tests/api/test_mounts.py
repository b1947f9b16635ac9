"""Shared folders (spec "mounts") against the Firecracker test double:
every syntax and host check answers 400 before anything is made; valid
mounts on Firecracker, which has no virtio-fs, are 409
unsupported_by_vmm with the hint to use `vm cp`, at create and at patch;
doctor says so; the CLI's --mount.  The QEMU side (virtiofsd, the guest
mounting the folders) is in tests/unit/test_qemu.c and tests/e2e."""
import os
import tempfile

import pytest


@pytest.fixture
def share():
    d = tempfile.mkdtemp(prefix="bgshare")
    yield d
    os.rmdir(d)


def refused(api, mounts, status, code, needle):
    r = api.post("/v1/vms", {"name": "mnt", "vcpus": 1, "mounts": mounts})
    assert r.status_code == status, (mounts, r.text)
    err = r.json()
    assert err["code"] == code and needle in err["message"], (mounts, err)
    assert api.get("/v1/vms/mnt").status_code == 404, mounts
    return err


def test_mount_syntax_is_checked(api, share):
    g = {"host": share, "guest": "/mnt/src"}
    cases = [
        ([{"host": "rel/dir", "guest": "/mnt/a"}], "must be absolute"),
        ([{"host": share, "guest": "mnt"}], "must be absolute"),
        ([{"host": share, "guest": "/"}], "cannot be /"),
        ([{"host": share, "guest": "/etc"}], "system directory"),
        ([{"host": share, "guest": "/root"}], "system directory"),
        ([{"host": share, "guest": "/proc/x"}], "system tree"),
        ([{"host": share, "guest": "/mnt/../etc"}], ". or .."),
        ([{"host": share, "guest": "/mnt/a b"}], "only letters"),
        ([{"host": share, "guest": "/mnt/" + "a" * 130}], "too long"),
        ([{"host": share + "\n", "guest": "/mnt/a"}], "control character"),
        ([{"host": share}], "needs"),
        ([g, {"host": share, "guest": "/mnt/src/sub"}], "overlap"),
        ([dict(g, guest="/mnt/s%d" % i) for i in range(9)], "at most 8"),
    ]
    for mounts, needle in cases:
        refused(api, mounts, 400, "invalid_request", needle)
    refused(api, [dict(g, readonly="yes")], 400, "invalid_field",
            "readonly must be")
    refused(api, ["/srv:/mnt"], 400, "invalid_field", "must be an object")
    err = refused(api, [dict(g, size=1)], 400, "unknown_field", "size")
    assert err["details"]["field"] == "mounts", err
    r = api.post("/v1/vms", {"name": "mnt", "mounts": "x"})
    assert r.status_code == 400, r.text


def test_host_paths_are_checked_on_the_host(api, daemon, share):
    f = os.path.join(share, "file")
    open(f, "w").close()
    try:
        for host, needle in [(share + "/nope", "does not exist"),
                             (f, "is not a directory"),
                             ("/", "host's root"),
                             (daemon.state, "state directory"),
                             (os.path.dirname(daemon.state), "state directory"),
                             (os.path.join(daemon.state, "vms"),
                              "state directory")]:
            if not os.path.exists(host) and needle == "state directory":
                os.makedirs(host)
            err = refused(api, [{"host": host, "guest": "/mnt/x"}], 400,
                          "invalid_request", needle)
            assert err["details"]["field"] == "mounts", err
    finally:
        os.unlink(f)


def test_firecracker_refuses_shared_folders(api, share):
    err = refused(api, [{"host": share, "guest": "/mnt/src", "readonly": True}],
                  409, "unsupported_by_vmm", "no virtio-fs")
    assert "vm cp" in err["hint"], err
    # A VM without them can be made, and not given them later.
    vm = api.create_vm("mnt", vcpus=1)
    assert vm["state"] == "succeeded", vm
    assert api.get("/v1/vms/mnt").json()["spec"]["mounts"] == []
    op = api.post("/v1/vms/mnt/snapshots", {"name": "s"},
                  params={"wait": 60}).json()
    assert op["state"] == "succeeded", op
    api.action("mnt", "stop")
    r = api.patch("/v1/vms/mnt", {"mounts": [{"host": share,
                                              "guest": "/mnt/src"}]})
    assert r.status_code == 409 and r.json()["code"] == \
        "unsupported_by_vmm", r.text
    # Syntax first, as at create.
    r = api.patch("/v1/vms/mnt", {"mounts": [{"host": share, "guest": "/"}]})
    assert r.status_code == 400, r.text
    r = api.patch("/v1/vms/mnt", {"mounts": []})
    assert r.status_code == 200 and r.json()["spec"]["mounts"] == [], r.text
    # A clone cannot add them.
    r = api.post("/v1/vms", {"name": "mnt2", "from": "mnt@s", "mounts": [
        {"host": share, "guest": "/mnt/x"}]})
    assert r.status_code == 400 and "clone" in r.json()["message"], r.text
    assert api.get("/v1/vms/mnt2").status_code == 404
    api.delete_vm("mnt")
    doc = api.get("/v1/doctor").json()
    chk = [c for c in doc["checks"] if c["name"] == "shared_folders"]
    assert chk and chk[0]["status"] == "warn" and \
        "virtio-fs" in chk[0]["message"], doc


def test_cli_mount(daemon, share):
    d = daemon
    r = d.run_banger("vm", "create", "--name", "mcli", "--vcpus", "1",
                     "--mount", share + ":/mnt/src:ro")
    assert r.returncode == 4 and "virtio-fs" in r.stderr and \
        "vm cp" in r.stderr, (r.returncode, r.stderr)
    for bad, needle in [("nocolon", "HOST:GUEST"), (share + ":/etc",
                        "system directory"), (share + ":relative",
                        "absolute")]:
        r = d.run_banger("vm", "create", "--name", "mcli", "--mount", bad)
        assert r.returncode == 2 and needle in r.stderr, (bad, r.stderr)
    # A relative HOST is taken from the user's directory: bangerd then
    # says what is wrong with it.
    r = d.run_banger("vm", "create", "--name", "mcli", "--mount",
                     "no-such-dir-here:/mnt/x")
    assert r.returncode == 1 and os.path.join(os.getcwd(),
                                              "no-such-dir-here") in \
        r.stderr and "does not exist" in r.stderr, r.stderr
    assert d.client.get("/v1/vms/mcli").status_code == 404
    r = d.run_banger("vm", "set", "mcli", "--mount", share + ":/mnt/a",
                     "--no-mounts")
    assert r.returncode == 2 and "one at a time" in r.stderr, r.stderr
