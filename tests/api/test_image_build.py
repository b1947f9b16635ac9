"""POST /v1/images/build: bangerd runs the build script as a child, follows
its stage lines, registers a managed image, and leaves nothing behind when
the build fails.  A stand-in script plays make-rootfs.sh here (it makes two
small ext4 files quickly); the real script is tested in tests/images."""
import os
import signal
import stat
import subprocess
import threading
import time

import pytest

STANDIN = r"""#!/bin/bash
set -euo pipefail
out= agent= pubkey=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --pubkey) pubkey=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$agent" ] && [ -r "$pubkey" ]
echo "stage: bootstrap 10"
if [ -e "$(dirname "$0")/SLOW" ]; then sleep 59.7; fi
sleep 0.3
echo "stage: customize 50"
if [ -e "$(dirname "$0")/FAIL" ]; then
  truncate -s 1M "$out/rootfs-docker.ext4"
  echo "mmdebstrap: E: cannot reach the mirror" >&2
  exit 3
fi
truncate -s 32M "$out/rootfs-docker.ext4" && /sbin/mkfs.ext4 -q -F "$out/rootfs-docker.ext4"
truncate -s 8M "$out/work-seed.ext4" && /sbin/mkfs.ext4 -q -F "$out/work-seed.ext4"
echo "stage: mkfs 90"
"""


@pytest.fixture
def builder(fresh_daemon):
    d = fresh_daemon
    scripts = os.path.join(d.dir, "rootfs")
    os.makedirs(scripts)
    path = os.path.join(scripts, "make-rootfs.sh")
    with open(path, "w") as f:
        f.write(STANDIN)
    os.chmod(path, 0o755)
    with open(os.path.join(d.runtime, "id_ed25519.pub"), "w") as f:
        f.write("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBanger banger-test\n")
    d.env["BANGER_ROOTFS_DIR"] = scripts
    d.start()
    return d, scripts


def test_build_registers_a_managed_image(builder):
    d, _ = builder
    api = d.client
    stages = []

    def follow():
        r = api.session.get(api.base + "/v1/events",
                            params={"type": "operation.updated"}, stream=True,
                            timeout=30)
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data: ") and '"image.build"' in line:
                stages.append(line)
            if len(stages) >= 3:
                break
        r.close()

    t = threading.Thread(target=follow)
    t.start()
    import time
    time.sleep(0.2)
    op = api.post("/v1/images/build", {"name": "built"}, params={"wait": 60}).json()
    t.join(10)
    assert op["state"] == "succeeded", op
    img = op["result"]
    assert img["source"] == "built" and img["managed"] is True
    assert img["rootfs"].startswith(os.path.join(d.state, "images", "built"))
    assert any('"stage":"customize"' in s for s in stages), stages
    assert api.get("/v1/images/built").json()["available"] is True
    # A VM boots from it, and the image cannot go while the VM exists.
    api.create_vm("onbuilt", image="built", vcpus=1)
    assert api.delete("/v1/images/built").status_code == 409
    api.delete_vm("onbuilt")
    assert api.delete("/v1/images/built").status_code == 204
    assert not os.path.exists(os.path.join(d.state, "images", "built")), \
        "a managed image's files go with it"
    r = api.post("/v1/images/build", {"name": "default"})
    assert r.status_code == 409 and r.json()["code"] == "image_default"
    r = api.post("/v1/images/build", {"name": "x", "distro": "arch"})
    assert r.status_code == 400


def test_failed_build_leaves_nothing(builder):
    d, scripts = builder
    api = d.client
    open(os.path.join(scripts, "FAIL"), "w").close()
    op = api.post("/v1/images/build", {"name": "broken"}, params={"wait": 60}).json()
    assert op["state"] == "failed"
    assert "cannot reach the mirror" in op["error"]["message"], op["error"]
    assert "broken.log" in op["error"]["hint"]
    assert api.get("/v1/images/broken").status_code == 404
    left = os.listdir(os.path.join(d.state, "images"))
    assert left == ["broken.log"], left
    os.unlink(os.path.join(scripts, "FAIL"))
    op = api.post("/v1/images/build", {"name": "broken"}, params={"wait": 60}).json()
    assert op["state"] == "succeeded"
    r = api.post("/v1/images/build", {"name": "broken"})
    assert r.status_code == 409 and r.json()["code"] == "image_exists"


def test_build_needs_the_bundle_key(fresh_daemon):
    d = fresh_daemon.start()
    r = d.client.post("/v1/images/build", {"name": "nokey"})
    assert r.status_code in (409, 503), r.text
    assert r.json()["hint"]


def test_build_through_the_cli(builder):
    d, scripts = builder
    r = d.run_banger("image", "build", "--name", "clibuilt")
    assert r.returncode == 0, r.stderr
    assert "image 'clibuilt' built: " in r.stdout
    assert "stage: " in r.stderr, "progress lines when stderr is not a terminal"
    open(os.path.join(scripts, "FAIL"), "w").close()
    r = d.run_banger("image", "build", "--name", "clibroken")
    assert r.returncode == 6, (r.returncode, r.stderr)
    assert "banger: " in r.stderr and "hint: the whole build log is" in r.stderr


def _sleepers():
    return subprocess.run(["pgrep", "-f", "sleep 59.7"], capture_output=True,
                          text=True).stdout.split()


def test_cancel_build_ends_its_script(builder):
    d, scripts = builder
    api = d.client
    open(os.path.join(scripts, "SLOW"), "w").close()
    op = api.post("/v1/images/build", {"name": "slowbuild"}).json()
    deadline = time.time() + 20
    while api.get("/v1/operations/" + op["id"]).json()["stage"] != "bootstrap":
        assert time.time() < deadline
        time.sleep(0.05)
    assert _sleepers(), "the stand-in sleeps in its bootstrap stage"
    r = api.post("/v1/operations/%s/cancel" % op["id"])
    assert r.status_code == 202, r.text
    t0 = time.time()
    done = api.wait_op(op, timeout=30)
    assert time.time() - t0 < 5
    assert done["state"] == "failed" and done["error"]["code"] == "cancelled"
    assert api.get("/v1/images/slowbuild").status_code == 404
    assert os.listdir(os.path.join(d.state, "images")) == ["slowbuild.log"]
    assert _sleepers() == [], "the whole process group was ended"


def test_cancel_build_through_the_cli(builder):
    d, scripts = builder
    open(os.path.join(scripts, "SLOW"), "w").close()
    p = subprocess.Popen([d.banger, "image", "build", "--name", "clislow",
                          "--cancel"], env=d.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    seen = []
    for line in p.stderr:
        seen.append(line)
        if line.startswith("stage: bootstrap"):
            p.send_signal(signal.SIGINT)
            break
    out, err = p.communicate(timeout=30)
    err = "".join(seen) + err
    assert p.returncode == 130, err
    assert "banger: cancelling operation op-" in err
    assert "was cancelled" in err and out == ""
    assert d.client.get("/v1/images/clislow").status_code == 404
    assert _sleepers() == []
