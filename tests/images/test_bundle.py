"""The runtime bundle: rootfs/make-bundle.sh (make runtime-bundle).

Manifest mode runs against file:// parts made here and needs nothing from
the network.  The legacy-key tests run the real daemon in check mode
(`bangerd -n`; BANGERD names the binary, default ./bangerd after
`make build`).  The local-assembly test builds the kernel and initrd from
Debian packages (cached in BANGER_CACHE, default /var/cache/banger as root)
with a stand-in for make-rootfs.sh, and is skipped when the kernel package
cannot be downloaded.
"""
import gzip
import hashlib
import json
import os
import stat
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAKE_BUNDLE = os.path.join(ROOT, "rootfs", "make-bundle.sh")
BANGERD = os.environ.get("BANGERD", os.path.join(ROOT, "bangerd"))

CONTRACT_KEYS = ["vmm", "firecracker", "qemu", "vhost_user_vsock", "kernel",
                 "initrd", "rootfs", "work_seed", "ssh_key", "agent",
                 "agent_port"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir():
    if os.environ.get("BANGER_CACHE"):
        return os.environ["BANGER_CACHE"]
    if os.geteuid() == 0:
        return "/var/cache/banger"
    return os.path.join(os.environ.get("XDG_CACHE_HOME")
                        or os.path.expanduser("~/.cache"), "banger")


def make_bundle(out, *args, manifest=None, env=None, timeout=600):
    e = dict(os.environ)
    e.pop("RUNTIME_MANIFEST", None)
    if manifest is not None:
        e["RUNTIME_MANIFEST"] = str(manifest)
    e.update(env or {})
    return subprocess.run([MAKE_BUNDLE, "--out", str(out)] + list(args),
                          capture_output=True, text=True, env=e,
                          timeout=timeout)


def snapshot(d):
    """Everything about a directory tree that a failed run must not change."""
    out = {}
    for base, dirs, files in os.walk(str(d)):
        for name in dirs + files:
            p = os.path.join(base, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, str(d))
            if stat.S_ISREG(st.st_mode):
                out[rel] = (st.st_mode, st.st_size, st.st_mtime_ns, sha256(p))
            else:
                out[rel] = (st.st_mode,)
    return out


def bangerd_check(runtime, tmp_path):
    if not os.access(BANGERD, os.X_OK):
        pytest.skip("%s is not built (make build)" % BANGERD)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BANGER_")}
    r = subprocess.run([BANGERD, "-n", "--runtime", str(runtime), "--config",
                        str(tmp_path / "no-config.json")],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# ---- manifest fixtures --------------------------------------------------

@pytest.fixture
def parts(tmp_path):
    """Small stand-in parts and a manifest naming them by file:// URL."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "vmlinux").write_bytes(b"\x7fELF kernel\n")
    (src / "initrd.img").write_bytes(b"initrd\n")
    # A sparse 16 MiB "disk image" with a little data at the start.
    with open(src / "rootfs.ext4", "wb") as f:
        f.write(b"rootfs")
        f.truncate(16 << 20)
    (src / "work-seed.ext4.gz").write_bytes(
        gzip.compress(b"work seed\n" * 100, mtime=0))
    (src / "agent").write_bytes(b"#!/bin/sh\necho agent\n")
    (src / "notes.txt").write_bytes(b"extra part\n")

    def part(fname, **kw):
        p = src / fname
        d = {"url": "file://" + str(p), "sha256": sha256(str(p))}
        d.update(kw)
        return d

    manifest = {
        "parts": {
            "kernel": part("vmlinux"),
            "initrd": part("initrd.img"),
            "rootfs": part("rootfs.ext4"),
            "work_seed": part("work-seed.ext4.gz", compression="gzip"),
            "agent": part("agent"),
            "notes": part("notes.txt", name="doc/notes.txt"),
        },
        "bundle": {"vmm": "qemu"},
    }
    return src, manifest


def write_manifest(tmp_path, manifest, name="manifest.json"):
    p = tmp_path / name
    p.write_text(json.dumps(manifest, indent=1))
    return p


@pytest.fixture
def agent(tmp_path):
    p = tmp_path / "fake-agent"
    p.write_bytes(b"#!/bin/sh\necho local agent\n")
    p.chmod(0o755)
    return p


@pytest.fixture
def good_bundle(tmp_path, parts, agent):
    """A bundle directory made from the good manifest."""
    _, manifest = parts
    out = tmp_path / "runtime"
    r = make_bundle(out, "--agent", str(agent),
                    manifest=write_manifest(tmp_path, manifest))
    assert r.returncode == 0, r.stderr
    return out


# ---- manifest: good -----------------------------------------------------

def test_good_manifest_writes_the_bundle(tmp_path, parts, agent):
    src, manifest = parts
    out = tmp_path / "runtime"
    (out / "tools").mkdir(parents=True)
    vhost = out / "tools" / "vhost-device-vsock"
    vhost.write_text("#!/bin/sh\n")
    vhost.chmod(0o755)
    t0 = time.monotonic()
    r = make_bundle(out, "--agent", str(agent),
                    manifest=write_manifest(tmp_path, manifest))
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "all 6 parts verified" in r.stderr

    bundle = json.loads((out / "bundle.json").read_text())
    assert list(bundle) == CONTRACT_KEYS
    assert bundle["vmm"] == "qemu"
    assert bundle["kernel"] == "vmlinux"
    assert bundle["initrd"] == "initrd.img"
    assert bundle["rootfs"] == "rootfs-docker.ext4"
    assert bundle["work_seed"] == "work-seed.ext4"
    assert bundle["ssh_key"] == "id_ed25519"
    assert bundle["agent"] == "banger-vsock-agent"
    assert bundle["agent_port"] == 1024
    assert bundle["vhost_user_vsock"] == "tools/vhost-device-vsock"

    assert (out / "vmlinux").read_bytes() == (src / "vmlinux").read_bytes()
    assert (out / "initrd.img").read_bytes() == b"initrd\n"
    assert (out / "work-seed.ext4").read_bytes() == b"work seed\n" * 100
    assert (out / "doc" / "notes.txt").read_bytes() == b"extra part\n"
    assert sha256(str(out / "rootfs-docker.ext4")) == \
        manifest["parts"]["rootfs"]["sha256"]
    st = os.stat(out / "rootfs-docker.ext4")
    assert st.st_size == 16 << 20
    assert st.st_blocks * 512 < 4 << 20, "the disk image was not kept sparse"
    assert os.stat(out / "banger-vsock-agent").st_mode & 0o777 == 0o755
    assert (out / "banger-vsock-agent").read_bytes() == \
        (src / "agent").read_bytes()

    # A key made here, private, never from the manifest.
    assert os.stat(out / "id_ed25519").st_mode & 0o777 == 0o600
    pub = (out / "id_ed25519.pub").read_text()
    assert pub.startswith("ssh-ed25519 ") and pub.strip().endswith(
        " banger-bundle")

    # Nothing left next to the bundle.
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["fake-agent", "manifest.json", "runtime",
         "src"])

    # bangerd reads it.
    cfg = bangerd_check(out, tmp_path)
    assert cfg["bundle"]["found"] is True
    assert cfg["bundle"]["kernel"] == str(out / "vmlinux")
    assert cfg["bundle"]["vmm"] == "qemu"
    assert cfg["deprecated_keys"] == []
    print("\nmanifest bundle (6 parts): %.2f s" % elapsed)


def test_rerun_keeps_the_key(tmp_path, parts, agent, good_bundle):
    key = (good_bundle / "id_ed25519").read_bytes()
    _, manifest = parts
    r = make_bundle(good_bundle, "--agent", str(agent),
                    manifest=write_manifest(tmp_path, manifest))
    assert r.returncode == 0, r.stderr
    assert "generated a new SSH key" not in r.stderr
    assert (good_bundle / "id_ed25519").read_bytes() == key


# ---- manifest: failures leave the old bundle alone ----------------------

def expect_failure(tmp_path, good_bundle, agent, manifest):
    before = snapshot(good_bundle)
    r = make_bundle(good_bundle, "--agent", str(agent),
                    manifest=write_manifest(tmp_path, manifest, "bad.json"))
    assert r.returncode != 0
    assert snapshot(good_bundle) == before, "the old bundle was changed"
    leftovers = [n for n in os.listdir(tmp_path) if "staging" in n]
    assert leftovers == []
    return r.stderr


def test_bad_checksum_stops_and_keeps_the_old_bundle(tmp_path, parts, agent,
                                                     good_bundle):
    src, manifest = parts
    (src / "rootfs.ext4").write_bytes(b"tampered")
    actual = sha256(str(src / "rootfs.ext4"))
    expected = manifest["parts"]["rootfs"]["sha256"]
    err = expect_failure(tmp_path, good_bundle, agent, manifest)
    assert "part 'rootfs'" in err
    assert "checksum mismatch" in err
    assert expected in err and actual in err


def test_bad_checksum_of_a_later_part_changes_nothing(tmp_path, parts, agent,
                                                      good_bundle):
    # The kernel and initrd verify; the agent (later) does not.
    _, manifest = parts
    manifest["parts"]["agent"]["sha256"] = "0" * 64
    err = expect_failure(tmp_path, good_bundle, agent, manifest)
    assert "part 'agent'" in err and "0" * 64 in err


def test_missing_required_part(tmp_path, parts, agent, good_bundle):
    _, manifest = parts
    del manifest["parts"]["work_seed"]
    err = expect_failure(tmp_path, good_bundle, agent, manifest)
    assert "missing part 'work_seed'" in err


def test_part_whose_file_is_missing(tmp_path, parts, agent, good_bundle):
    src, manifest = parts
    os.unlink(src / "initrd.img")
    err = expect_failure(tmp_path, good_bundle, agent, manifest)
    assert "part 'initrd'" in err and "download failed" in err


@pytest.mark.parametrize("mutate,message", [
    (lambda m: m["parts"]["kernel"].pop("sha256"),
     'part "kernel": needs "url" and "sha256"'),
    (lambda m: m["parts"]["kernel"].update(sha256="abc"),
     "is not 64 hex digits"),
    (lambda m: m["parts"].update(mystery={"url": "file:///x",
                                          "sha256": "0" * 64}),
     "part 'mystery': unknown part"),
    (lambda m: m["parts"]["kernel"].update(name="../escape"),
     "must be a relative path inside the bundle"),
    (lambda m: m["bundle"].update(colour="blue"),
     'unknown key "colour"'),
    (lambda m: m["bundle"].update(agent_port="1024"),
     "agent_port must be a positive integer"),
    (lambda m: m["parts"]["rootfs"].update(compression="rar"),
     "unknown compression 'rar'"),
])
def test_bad_manifest_entries(tmp_path, parts, agent, good_bundle, mutate,
                              message):
    _, manifest = parts
    mutate(manifest)
    err = expect_failure(tmp_path, good_bundle, agent, manifest)
    assert message in err, err


def test_not_a_manifest(tmp_path, agent, good_bundle):
    before = snapshot(good_bundle)
    p = tmp_path / "broken.json"
    p.write_text("{")
    r = make_bundle(good_bundle, "--agent", str(agent), manifest=p)
    assert r.returncode != 0 and "not valid JSON" in r.stderr
    r = make_bundle(good_bundle, "--agent", str(agent),
                    manifest=tmp_path / "nope.json")
    assert r.returncode != 0 and "no such file" in r.stderr
    assert snapshot(good_bundle) == before


# ---- legacy keys --------------------------------------------------------

def test_legacy_bundle_keys_load(tmp_path):
    rt = tmp_path / "legacy"
    rt.mkdir()
    (rt / "bundle.json").write_text(json.dumps(
        {"kernel": "vmlinux", "ping_helper": "old-ping-helper",
         "ping_port": 4242}))
    cfg = bangerd_check(rt, tmp_path)
    assert cfg["bundle"]["agent"] == str(rt / "old-ping-helper")
    assert cfg["bundle"]["agent_port"] == 4242
    dep = " ".join(cfg["deprecated_keys"])
    assert "ping_helper" in dep and "ping_port" in dep


def test_new_keys_win_over_legacy_ones(tmp_path):
    rt = tmp_path / "both"
    rt.mkdir()
    (rt / "bundle.json").write_text(json.dumps(
        {"agent": "new-agent", "agent_port": 1024, "ping_helper": "old",
         "ping_port": 4242}))
    cfg = bangerd_check(rt, tmp_path)
    assert cfg["bundle"]["agent"] == str(rt / "new-agent")
    assert cfg["bundle"]["agent_port"] == 1024


def test_manifest_legacy_keys_are_written_with_new_names(tmp_path, parts,
                                                         agent):
    _, manifest = parts
    manifest["bundle"] = {"ping_helper": "helper-bin", "ping_port": 2048}
    out = tmp_path / "runtime"
    r = make_bundle(out, "--agent", str(agent),
                    manifest=write_manifest(tmp_path, manifest))
    assert r.returncode == 0, r.stderr
    bundle = json.loads((out / "bundle.json").read_text())
    assert "ping_helper" not in bundle and "ping_port" not in bundle
    assert bundle["agent"] == "helper-bin"
    assert bundle["agent_port"] == 2048
    cfg = bangerd_check(out, tmp_path)
    assert cfg["deprecated_keys"] == []
    assert cfg["bundle"]["agent_port"] == 2048


def test_rewrite_keeps_a_legacy_port_under_its_new_name(tmp_path, parts,
                                                        agent):
    _, manifest = parts
    manifest.pop("bundle")
    out = tmp_path / "runtime"
    out.mkdir()
    (out / "bundle.json").write_text(json.dumps(
        {"vmm": "firecracker", "ping_port": 3333}))
    r = make_bundle(out, "--agent", str(agent),
                    manifest=write_manifest(tmp_path, manifest))
    assert r.returncode == 0, r.stderr
    bundle = json.loads((out / "bundle.json").read_text())
    assert list(bundle) == CONTRACT_KEYS
    assert bundle["vmm"] == "firecracker"
    assert bundle["agent_port"] == 3333


def test_bundle_key_is_git_ignored():
    paths = ["runtime/id_ed25519", "runtime/id_ed25519.pub",
             "runtime/bundle.json", "runtime/vmlinux"]
    r = subprocess.run(["git", "-C", ROOT, "check-ignore"] + paths,
                       capture_output=True, text=True, timeout=30)
    if r.returncode == 128:
        pytest.skip("git check-ignore failed: " + r.stderr.strip())
    assert r.stdout.split() == paths, "runtime/ parts are not git-ignored"


# ---- local assembly from Debian packages --------------------------------

FAKE_ROOTFS = """#!/bin/bash
# Stand-in for rootfs/make-rootfs.sh: checks the interface, records it.
set -euo pipefail
out="" agent="" pubkey="" cache=""
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift 2 ;;
	--agent) agent=$2; shift 2 ;;
	--pubkey) pubkey=$2; shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	*) echo "fake make-rootfs: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$out" ] && [ -x "$agent" ] && [ -s "$pubkey" ] && [ -n "$cache" ]
echo "stage: packages 50"
printf '%s\\n' "$agent" "$cache" >"$LOG"
cat "$pubkey" >>"$LOG"
truncate -s 8M "$out/rootfs-docker.ext4"
printf 'rootfs for %s' "$(cat "$pubkey")" | dd of="$out/rootfs-docker.ext4" conv=notrunc status=none
printf 'seed\\n' >"$out/work-seed.ext4"
echo "stage: done 100"
"""


@pytest.fixture
def fake_rootfs(tmp_path):
    p = tmp_path / "fake-make-rootfs.sh"
    p.write_text(FAKE_ROOTFS)
    p.chmod(0o755)
    return p


def test_local_assembly(tmp_path, agent, fake_rootfs):
    out = tmp_path / "runtime"
    log = tmp_path / "rootfs-args.log"
    env = {"BANGER_MAKE_ROOTFS": str(fake_rootfs), "LOG": str(log)}
    cache = cache_dir()
    t0 = time.monotonic()
    r = make_bundle(out, "--agent", str(agent), "--cache", cache, env=env)
    first = time.monotonic() - t0
    if r.returncode != 0 and ("apt-get download" in r.stderr or
                              "apt knows no" in r.stderr):
        pytest.skip("Debian packages cannot be downloaded: "
                    + r.stderr.strip().splitlines()[-1])
    assert r.returncode == 0, r.stderr
    assert "stage: done 100" in r.stdout

    bundle = json.loads((out / "bundle.json").read_text())
    assert list(bundle) == CONTRACT_KEYS
    assert [bundle[k] for k in ("kernel", "initrd", "rootfs", "work_seed",
                                "ssh_key", "agent")] == [
        "vmlinux", "initrd.img", "rootfs-docker.ext4", "work-seed.ext4",
        "id_ed25519", "banger-vsock-agent"]
    with open(out / "vmlinux", "rb") as f:
        assert f.read(4) == b"\x7fELF"
    with gzip.open(out / "initrd.img", "rb") as f:
        assert f.read(6) == b"070701"
    assert (out / "banger-vsock-agent").read_bytes() == agent.read_bytes()

    # make-rootfs got the agent, a cache and the bundle's (new) public key.
    pub = (out / "id_ed25519.pub").read_text()
    lines = log.read_text().splitlines()
    assert lines[0] == str(agent)
    assert lines[1] == os.path.join(cache, "rootfs")
    assert "\n".join(lines[2:]) + "\n" == pub
    assert (out / "rootfs-docker.ext4").read_bytes().startswith(
        b"rootfs for " + pub.strip().encode())

    for vmm, exe in (("qemu", "qemu-system-x86_64"),
                     ("firecracker", "firecracker")):
        found = subprocess.run(["sh", "-c", "command -v " + exe],
                               capture_output=True, text=True).stdout.strip()
        assert bundle[vmm] == (found or exe)

    # Again: nothing changes, the key stays.
    before = snapshot(out)
    t0 = time.monotonic()
    r = make_bundle(out, "--agent", str(agent), "--cache", cache, env=env)
    again = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    for part in ("vmlinux", "initrd.img", "rootfs-docker.ext4",
                 "work-seed.ext4", "banger-vsock-agent"):
        assert "%s unchanged" % part in r.stderr
    after = snapshot(out)
    before.pop("bundle.json")
    after.pop("bundle.json")
    assert after == before
    print("\nlocal bundle: first run %.1f s, re-run %.1f s" % (first, again))


def test_local_assembly_without_make_rootfs(tmp_path, agent):
    out = tmp_path / "runtime"
    r = make_bundle(out, "--agent", str(agent), "--cache", cache_dir(),
                    env={"BANGER_MAKE_ROOTFS": str(tmp_path / "missing.sh")})
    if r.returncode != 0 and ("apt-get download" in r.stderr or
                              "apt knows no" in r.stderr):
        pytest.skip("Debian packages cannot be downloaded")
    assert r.returncode != 0
    assert "missing.sh missing (use --skip-rootfs" in r.stderr
    assert not (out / "bundle.json").exists()
    assert not (out / "id_ed25519").exists()
