"""GET /v1/vms/{name}/files against the Firecracker test double, whose
agent is the real banger-vsock-agent (on the host, allowed with
--allow-files): a tar of a file or a tree streamed as it is made, the
refusals, and an agent without file copy."""
import io
import os
import shutil
import tarfile
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OLD_AGENT = os.path.join(ROOT, "tests", "fakes", "old_agent.py")


@pytest.fixture(scope="module")
def vm(daemon):
    api = daemon.client
    api.create_vm("filer", vcpus=1, memory_mib=128)
    yield "filer"
    api.delete_vm("filer")


@pytest.fixture
def tree():
    d = tempfile.mkdtemp(prefix="bgfiles")
    os.makedirs(os.path.join(d, "proj", "src"))
    with open(os.path.join(d, "proj", "src", "main.c"), "w") as f:
        f.write("int main(void) { return 0; }\n")
    with open(os.path.join(d, "proj", "big.bin"), "wb") as f:
        f.write(os.urandom(3 << 20))
    os.chmod(os.path.join(d, "proj", "big.bin"), 0o640)
    os.utime(os.path.join(d, "proj", "big.bin"), (1700000000, 1700000000))
    os.symlink("src/main.c", os.path.join(d, "proj", "link"))
    yield d
    shutil.rmtree(d)


def get_tar(api, vm, path):
    r = api.get("/v1/vms/%s/files" % vm, params={"path": path}, stream=True)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/x-tar"
    return tarfile.open(fileobj=io.BytesIO(r.content))


def test_a_tree_comes_out_as_tar(daemon, vm, tree):
    t = get_tar(daemon.client, vm, os.path.join(tree, "proj"))
    names = sorted(m.name for m in t.getmembers())
    assert names == ["proj", "proj/big.bin", "proj/link", "proj/src",
                     "proj/src/main.c"], names
    big = t.getmember("proj/big.bin")
    with open(os.path.join(tree, "proj", "big.bin"), "rb") as f:
        assert t.extractfile(big).read() == f.read()
    assert big.mode & 0o777 == 0o640 and big.mtime == 1700000000, big
    link = t.getmember("proj/link")
    assert link.issym() and link.linkname == "src/main.c", link
    # One file: one entry named by its base name.
    t = get_tar(daemon.client, vm, os.path.join(tree, "proj", "src",
                                                "main.c"))
    assert [m.name for m in t.getmembers()] == ["main.c"]


def test_refusals(daemon, vm, tree):
    api = daemon.client
    r = api.get("/v1/vms/%s/files" % vm, params={"path": tree + "/nope"})
    assert r.status_code == 404 and \
        r.json()["code"] == "guest_path_not_found", r.text
    r = api.get("/v1/vms/%s/files" % vm, params={"path": "relative/x"})
    assert r.status_code == 400, r.text
    r = api.get("/v1/vms/%s/files" % vm)
    assert r.status_code == 400, r.text
    r = api.get("/v1/vms/ghost/files", params={"path": "/etc"})
    assert r.status_code == 404 and r.json()["code"] == "vm_not_found"
    api.create_vm("resting", vcpus=1, memory_mib=128)
    api.action("resting", "stop")
    r = api.get("/v1/vms/resting/files", params={"path": "/etc"})
    assert r.status_code == 409 and r.json()["code"] == "invalid_state"
    api.delete_vm("resting")


def test_an_agent_without_file_copy_is_refused(fresh_daemon):
    fresh_daemon.env["BANGER_FAKE_AGENT"] = OLD_AGENT
    d = fresh_daemon.start()
    d.client.create_vm("oldie", vcpus=1, memory_mib=128)
    r = d.client.get("/v1/vms/oldie/files", params={"path": "/etc"})
    assert r.status_code == 409 and \
        r.json()["code"] == "unsupported_by_vmm", r.text


def make_tar(entries):
    """entries: (name, kind, payload): kind file|dir|symlink|hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = payload
                t.addfile(ti)
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = payload
                t.addfile(ti)
            else:
                ti.size = len(payload)
                ti.mode = 0o640
                t.addfile(ti, io.BytesIO(payload))
    return buf.getvalue()


def put_tar(api, vm, path, data, chunked=False):
    body = (data[i:i + 65536] for i in range(0, len(data), 65536)) \
        if chunked else data
    return api.request("PUT", "/v1/vms/%s/files" % vm, data=body,
                       params={"path": path},
                       headers={"Content-Type": "application/x-tar"})


def test_a_tar_goes_in(daemon, vm, tree):
    api = daemon.client
    dst = os.path.join(tree, "in")
    os.mkdir(dst)
    big = os.urandom(2 << 20)
    data = make_tar([("pkg", "dir", None), ("pkg/a.txt", "file", b"alpha\n"),
                     ("pkg/big.bin", "file", big),
                     ("pkg/link", "symlink", "a.txt")])
    for chunked in (False, True):
        r = put_tar(api, vm, dst, data, chunked)
        assert r.status_code == 200, r.text
        s = r.json()
        assert s["files"] == 2 and s["dirs"] == 1, s
        with open(os.path.join(dst, "pkg", "big.bin"), "rb") as f:
            assert f.read() == big
        assert os.readlink(os.path.join(dst, "pkg", "link")) == "a.txt"
        st = os.stat(os.path.join(dst, "pkg", "a.txt"))
        assert st.st_mode & 0o777 == 0o640 and st.st_mtime == 1700000000


@pytest.mark.parametrize("entries", [
    [("../evil", "file", b"x")],
    [("/tmp/bg-abs-evil", "file", b"x")],
    [("out", "symlink", "/tmp"), ("out/bg-through-evil", "file", b"x")],
    [("pw", "hardlink", "/etc/passwd")],
], ids=["dotdot", "absolute", "through-symlink", "hardlink-out"])
def test_hostile_archives_are_refused(daemon, vm, tree, entries):
    api = daemon.client
    dst = os.path.join(tree, "in")
    os.mkdir(dst)
    r = put_tar(api, vm, dst, make_tar(entries))
    assert r.status_code == 400 and r.json()["code"] == "invalid_request", \
        r.text
    for p in (os.path.join(tree, "evil"), "/tmp/bg-abs-evil",
              "/tmp/bg-through-evil"):
        assert not os.path.exists(p), p


def test_put_refusals(daemon, vm, tree):
    api = daemon.client
    data = make_tar([("a", "file", b"a")])
    r = put_tar(api, vm, os.path.join(tree, "missing"), data)
    assert r.status_code == 404 and \
        r.json()["code"] == "guest_path_not_found", r.text
    r = put_tar(api, vm, "rel", data)
    assert r.status_code == 400, r.text
    r = put_tar(api, "ghost", "/tmp", data)
    assert r.status_code == 404 and r.json()["code"] == "vm_not_found", r.text


def banger(daemon, *args):
    return subprocess.run([daemon.banger] + list(args), env=daemon.env,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120)


def test_banger_vm_cp_both_ways(daemon, vm, tree):
    out = os.path.join(tree, "out")
    os.mkdir(out)
    r = banger(daemon, "vm", "cp", "%s:%s" % (vm, os.path.join(tree, "proj")),
               out)
    assert r.returncode == 0, r
    assert r.stdout.startswith("copied 2 files, 2 directories, 1 links"), \
        r.stdout
    with open(os.path.join(out, "proj", "big.bin"), "rb") as a, \
            open(os.path.join(tree, "proj", "big.bin"), "rb") as b:
        assert a.read() == b.read()
    assert os.readlink(os.path.join(out, "proj", "link")) == "src/main.c"
    assert os.stat(os.path.join(out, "proj", "big.bin")).st_mtime == \
        1700000000
    into = os.path.join(tree, "into")
    os.mkdir(into)
    r = banger(daemon, "vm", "cp", os.path.join(tree, "proj"),
               "%s:%s" % (vm, into))
    assert r.returncode == 0, r
    with open(os.path.join(into, "proj", "src", "main.c")) as f:
        assert f.read().startswith("int main")
    r = banger(daemon, "vm", "cp", "%s:%s/nope" % (vm, tree), out)
    assert r.returncode == 3, r
    r = banger(daemon, "vm", "cp", out, out)
    assert r.returncode == 2, r


def test_banger_vm_cp_to_a_new_name(daemon, vm, tree):
    """DST that is not a directory, in one that is, names the copy, as cp
    and docker cp do: a file or a tree, both ways; an existing directory
    (or a trailing /) is still copied into."""
    proj, main = os.path.join(tree, "proj"), os.path.join(tree, "proj",
                                                          "src", "main.c")
    out = os.path.join(tree, "out")
    os.mkdir(out)
    # Out: a file and a tree, each to a new name.
    r = banger(daemon, "vm", "cp", "%s:%s" % (vm, main),
               os.path.join(out, "renamed.c"))
    assert r.returncode == 0, r
    assert sorted(os.listdir(out)) == ["renamed.c"]
    with open(os.path.join(out, "renamed.c")) as f:
        assert f.read().startswith("int main")
    r = banger(daemon, "vm", "cp", "%s:%s" % (vm, proj),
               os.path.join(out, "copy"))
    assert r.returncode == 0, r
    assert os.readlink(os.path.join(out, "copy", "link")) == "src/main.c"
    assert os.path.isfile(os.path.join(out, "copy", "src", "main.c"))
    # ... and over an existing file of that name.
    r = banger(daemon, "vm", "cp", "%s:%s" % (vm, os.path.join(proj,
                                                                "big.bin")),
               os.path.join(out, "renamed.c"))
    assert r.returncode == 0, r
    assert os.path.getsize(os.path.join(out, "renamed.c")) == 3 << 20
    r = banger(daemon, "vm", "cp", "%s:%s" % (vm, main),
               os.path.join(out, "nodir", "x.c"))
    assert r.returncode == 1 and "not a directory" in r.stderr, r
    r = banger(daemon, "vm", "cp", "%s:%s" % (vm, main),
               os.path.join(out, "new") + "/")
    assert r.returncode == 1, r
    # In: the guest's DST decides, as the agent sees it.
    into = os.path.join(tree, "in")
    os.mkdir(into)
    r = banger(daemon, "vm", "cp", main, "%s:%s/other.c" % (vm, into))
    assert r.returncode == 0 and "to %s:%s/other.c" % (vm, into) in \
        r.stdout, r
    assert sorted(os.listdir(into)) == ["other.c"]
    r = banger(daemon, "vm", "cp", proj, "%s:%s/tree" % (vm, into))
    assert r.returncode == 0, r
    assert os.path.isfile(os.path.join(into, "tree", "src", "main.c"))
    # An existing directory: into it, by the source's name.
    r = banger(daemon, "vm", "cp", main, "%s:%s/tree" % (vm, into))
    assert r.returncode == 0 and "into" in r.stdout, r
    assert os.path.isfile(os.path.join(into, "tree", "main.c"))
    # Over an existing file.
    r = banger(daemon, "vm", "cp", os.path.join(proj, "big.bin"),
               "%s:%s/other.c" % (vm, into))
    assert r.returncode == 0, r
    assert os.path.getsize(os.path.join(into, "other.c")) == 3 << 20
    # A parent that does not exist is the agent's 404.
    r = banger(daemon, "vm", "cp", main, "%s:%s/nodir/x.c" % (vm, into))
    assert r.returncode == 3, r


def serve_tar_once(sock_path, data):
    """A stand-in for bangerd on sock_path answering one request with
    data as a tar stream (what a hostile guest could make bangerd pass
    on)."""
    import socket
    import threading
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(sock_path)
    srv.listen(1)

    def run():
        c, _ = srv.accept()
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                  % len(data) + data)
        c.close()
        srv.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("entries", [
    [("../evil", "file", b"x")],
    [("/tmp/bg-cli-abs-evil", "file", b"x")],
    [("out", "symlink", "/tmp"), ("out/bg-cli-through", "file", b"x")],
    [("pw", "hardlink", "/etc/passwd")],
], ids=["dotdot", "absolute", "through-symlink", "hardlink"])
def test_banger_vm_cp_unpacks_nothing_outside_dst(daemon, tree, entries):
    sock = os.path.join(tree, "fake.sock")
    t = serve_tar_once(sock, make_tar(entries))
    out = os.path.join(tree, "out")
    os.mkdir(out)
    r = subprocess.run([daemon.banger, "--socket", sock, "--no-autostart",
                        "vm", "cp", "filer:/x", out], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    t.join(10)
    assert r.returncode != 0, r
    for p in (os.path.join(tree, "evil"), "/tmp/bg-cli-abs-evil",
              "/tmp/bg-cli-through"):
        assert not os.path.exists(p), p
    assert os.stat("/etc/passwd").st_nlink == 1
