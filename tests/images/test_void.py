"""Tests for rootfs/make-rootfs-void.sh, the experimental Void guest image.

Void mirrors cannot be reached from our machines, so a real build is never
run here. Everything around the download is: the --plan output, shellcheck,
the sha256 check of the static xbps tarball (local fixture files through
file:// URLs), the repository-key pinning, and the steps that need no
network (configure_root, make_images) on a small fixture tree, with the
resulting ext4 images read back through debugfs; main() end to end with a
stand-in xbps tarball served from a file:// mirror; and the guest-side
scripts (the runit core service, the agent's run script) run under dash in
private namespaces.

The fixture tree stands in for an installed Void root: etc/passwd and
etc/shadow with a root line, the runit service directories of runit-void and
openssh, etc/skel dotfiles, and usr/bin/{bash,dash} with usr/bin/sh pointing
at bash (as if bash had won the "sh" alternative). usermod is the host's real
one (Debian's usermod -R chroots into the tree). xbps-alternatives is a
PATH shim that emulates the two calls the script makes (-s PKG and
-l -g sh) on that tree.

Run: /usr/bin/python3 -m pytest -q tests/images/test_void.py
"""
import base64
import os
import re
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "rootfs" / "make-rootfs-void.sh"
VOID = REPO / "rootfs" / "void"
IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (usermod -R, mount namespaces, image ownership)")
needs_ssh_keygen = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) not installed")


def versions():
    """rootfs/void/versions.env as a dict (plain assignments only)."""
    out = {}
    for line in (VOID / "versions.env").read_text().splitlines():
        m = re.match(r'^([A-Z0-9_]+)=("?)(.*)\2$', line)
        if m:
            out[m.group(1)] = m.group(3)
    return out


PINS = versions()
PINNED_FPS = PINS["VOID_KEY_FINGERPRINTS"].split()


def run(args, env=None, check=False, **kw):
    return subprocess.run(args, capture_output=True, text=True, env=env, check=check, **kw)


def bash_fn(code, *args, env=None):
    """Source the script (which then only defines functions) and run CODE."""
    return run(["bash", "-c", f'source "{SCRIPT}"; {code}', "fn", *args], env=env)


def write(path, text="", mode=0o644):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# --------------------------------------------------------------- fixtures

ALT_SHIM = r"""#!/bin/sh
# Stand-in for xbps-alternatives on a fixture tree: -s PKG points
# usr/bin/sh at PKG; -l -g sh lists the sh group the way xbps does,
# current provider first. STUBBORN=1 ignores -s (bash keeps /bin/sh).
root= set_pkg= list=
while [ $# -gt 0 ]; do
	case $1 in
	-r) root=$2; shift 2 ;;
	-s) set_pkg=$2; shift 2 ;;
	-l) list=1; shift ;;
	-g) shift 2 ;;
	*) shift ;;
	esac
done
printf '%s\n' "called ${set_pkg:+-s $set_pkg}${list:+-l}" >>"$root/.alt-calls"
if [ -n "$set_pkg" ] && [ -z "$STUBBORN" ]; then
	ln -sfn "$set_pkg" "$root/usr/bin/sh"
fi
if [ -n "$list" ]; then
	cur=$(basename "$(readlink "$root/usr/bin/sh")")
	other=bash; [ "$cur" = bash ] && other=dash
	echo sh
	echo " - $cur (current)"
	echo "  - /usr/bin/sh:/usr/bin/$cur"
	echo " - $other"
	echo "  - /usr/bin/sh:/usr/bin/$other"
fi
"""


@pytest.fixture
def shim_path(tmp_path):
    bindir = tmp_path / "shims"
    write(bindir / "xbps-alternatives", ALT_SHIM, 0o755)
    return bindir


def shim_env(shim_path, **extra):
    env = dict(os.environ)
    env["PATH"] = f"{shim_path}:{env['PATH']}"
    env.update(extra)
    return env


@pytest.fixture
def pubkey(tmp_path):
    if shutil.which("ssh-keygen"):
        key = tmp_path / "id_ed25519"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "banger-test", "-f", str(key)],
            check=True)
        return key.with_suffix(".pub")
    return write(tmp_path / "id_ed25519.pub",
                 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFake1 t\n")


@pytest.fixture
def agent(tmp_path):
    return write(tmp_path / "banger-vsock-agent", "#!/bin/sh\necho agent \"$@\"\n", 0o755)


@pytest.fixture
def gfiles(tmp_path):
    """Stand-ins for rootfs/files (the guest files shared with Debian)."""
    d = tmp_path / "files"
    write(d / "repair-root", "#!/bin/sh\necho ok\n", 0o755)
    write(d / "guest-setup", "#!/bin/sh\nexit 0\n", 0o755)
    write(d / "mount-work", "#!/bin/sh\nexit 0\n", 0o755)
    write(d / "mount-shares", "#!/bin/sh\nexit 0\n", 0o755)
    return d


def make_fixture_root(root):
    """A directory with the few files of an installed Void root that
    configure_root and make_images touch."""
    write(root / "etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\n"
          "nobody:x:99:99:Unprivileged User:/dev/null:/bin/false\n")
    write(root / "etc/group", "root:x:0:\nnogroup:x:99:\n")
    write(root / "etc/shadow", "root::19000:0:99999:7:::\nnobody:!:19000::::::\n", 0o600)
    write(root / "etc/sv/sshd/run",
          "#!/bin/sh\nssh-keygen -A >/dev/null 2>&1\nexec /usr/bin/sshd -D\n", 0o755)
    for tty in ["ttyS0"] + [f"tty{i}" for i in range(1, 7)]:
        write(root / f"etc/sv/agetty-{tty}/run", "#!/bin/sh\nexec agetty\n", 0o755)
    rsv = root / "etc/runit/runsvdir/default"
    rsv.mkdir(parents=True)
    for i in range(1, 7):
        os.symlink(f"/etc/sv/agetty-tty{i}", rsv / f"agetty-tty{i}")
    os.symlink("default", root / "etc/runit/runsvdir/current")
    write(root / "etc/ssh/sshd_config", "PermitRootLogin yes\nPasswordAuthentication yes\n")
    write(root / "etc/ssh/ssh_host_ed25519_key", "baked private key\n", 0o600)
    write(root / "etc/ssh/ssh_host_ed25519_key.pub", "baked public key\n")
    write(root / "etc/skel/.bashrc", "# skel bashrc\n")
    write(root / "etc/skel/.bash_profile", "[ -f ~/.bashrc ] && . ~/.bashrc\n")
    write(root / "usr/bin/bash", "#!/bin/sh\n", 0o755)
    write(root / "usr/bin/dash", "#!/bin/sh\n", 0o755)
    os.symlink("bash", root / "usr/bin/sh")
    os.symlink("usr/bin", root / "bin")
    (root / "root").mkdir(mode=0o700)
    write(root / "root/.bashrc", "# already there: must be kept\n")
    return root


@pytest.fixture
def fixture_root(tmp_path):
    return make_fixture_root(tmp_path / "root")


def configure(root, agent, pubkey, gfiles, env):
    return bash_fn('configure_root "$1" "$2" "$3" "$4"',
                   str(root), str(agent), str(pubkey), str(gfiles), env=env)


# ------------------------------------------------------------------ --plan

def plan(tmp_path, *extra, network=False):
    agent = write(tmp_path / "agent", "x", 0o755)
    pub = write(tmp_path / "key.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbc test\n")
    args = ["bash", str(SCRIPT), "--plan", "--out", str(tmp_path / "out"),
            "--agent", str(agent), "--pubkey", str(pub), *extra]
    if IS_ROOT and not network:
        args = ["unshare", "-n", "--"] + args     # no network at all
    env = dict(os.environ, HOME=str(tmp_path / "home"))
    env.pop("XDG_CACHE_HOME", None)
    return run(args, env=env)


def test_plan_prints_every_step_and_exits_0(tmp_path):
    r = plan(tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    numbers = [int(n) for n in re.findall(r"^\[(\d+)\] ", out, re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 14
    mirror = PINS["VOID_MIRROR_DEFAULT"]
    expected = [
        # keys, download, checksum
        *[f"key {fp}: fingerprint checked, pinned" for fp in PINNED_FPS],
        f"{mirror}/static/{PINS['XBPS_STATIC_FILE']}",
        f"sha256: {PINS['XBPS_STATIC_SHA256']}",
        "$ sha256sum ",
        "$ tar -xJf ",
        # keys seeded, the install itself
        "/var/db/xbps/keys/60:ae:0c:d6:f0:95:17:80:bc:93:46:7a:89:af:a3:2d.plist",
        "$ env XBPS_ARCH=x86_64 ",
        f"/xbps-install -S -r ",
        f"-R {mirror}/current ",
        "-y base-container bash openssh iproute2 e2fsprogs",
        "unshare -m --propagation private",
        "$ mount -t proc proc ",
        "check that no repository key was imported",
        # configure_root
        "$ ln -sfn /etc/sv/banger-sshd ",
        "/etc/sv/banger-sshd/run",
        "$ ln -sfn /etc/sv/banger-vsock-agent ",
        "$ ln -sfn /etc/sv/agetty-ttyS0 ",
        "/runsvdir/default/agetty-tty1 ",
        "/usr/local/bin/banger-vsock-agent",
        "/etc/sv/banger-vsock-agent/log/run",
        "$ usermod -R ",
        r"-s /bin/bash -p \* root",
        "xbps-alternatives -r ",
        " -s dash",
        " -l -g sh",
        "/etc/ssh/sshd_config",
        "/etc/ssh/banger/root.keys",
        "-name ssh_host_\\* -delete",
        "/etc/fstab",
        "/usr/local/lib/banger/repair-root",
        "/usr/local/lib/banger/guest-setup",
        "/usr/local/lib/banger/mount-work",
        "/usr/local/lib/banger/mount-shares",
        "/etc/runit/core-services/50-banger.sh",
        # images
        "$ mkfs.ext4 -q -F -L rootfs ",
        "$ mkfs.ext4 -q -F -L banger-work ",
        "/rootfs-void.ext4",
        "/work-seed-void.ext4",
        "$ mv -f ",
    ]
    missing = [e for e in expected if e not in out]
    assert not missing, f"missing from the plan: {missing}\n{out}"
    # nothing was written: neither the output directory nor the cache
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "home").exists()


def test_plan_uses_the_given_mirror(tmp_path):
    r = plan(tmp_path, "--mirror", "file:///srv/void-mirror/", "--cache", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    assert f"file:///srv/void-mirror/static/{PINS['XBPS_STATIC_FILE']}" in r.stdout
    assert "-R file:///srv/void-mirror/current " in r.stdout
    assert f"{tmp_path}/c/pkgs" in r.stdout
    assert not (tmp_path / "c").exists()


def test_plan_rejects_bad_arguments(tmp_path):
    pub = write(tmp_path / "key.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbc test\n")
    agent = write(tmp_path / "agent", "x", 0o755)
    r = run(["bash", str(SCRIPT), "--plan", "--out", str(tmp_path / "o"), "--agent", str(agent)])
    assert r.returncode == 2 and "Usage:" in r.stderr
    bad = write(tmp_path / "bad.pub", "not a key\n")
    r = run(["bash", str(SCRIPT), "--plan", "--out", str(tmp_path / "o"),
             "--agent", str(agent), "--pubkey", str(bad)])
    assert r.returncode == 1 and "public key" in r.stderr
    r = run(["bash", str(SCRIPT), "--plan", "--out", str(tmp_path / "o"), "--agent",
             str(agent), "--pubkey", str(pub), "--mirror", "ftp://x"])
    assert r.returncode == 1 and "--mirror" in r.stderr
    r = run(["bash", str(SCRIPT), "--bogus"])
    assert r.returncode == 1 and "unknown argument" in r.stderr


# --------------------------------------------------------------- shellcheck

def test_shellcheck_clean():
    assert shutil.which("shellcheck"), "shellcheck is needed (make deps installs it)"
    r = run(["shellcheck", str(SCRIPT)])
    assert r.returncode == 0, r.stdout + r.stderr
    guest = [VOID / "sv/banger-vsock-agent/run", VOID / "sv/banger-vsock-agent/log/run",
             VOID / "core-services/50-banger.sh", VOID / "sv/banger-sshd/run"]
    r = run(["shellcheck", "-s", "sh", *map(str, guest)])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(["shellcheck", str(VOID / "versions.env")])
    assert r.returncode == 0, r.stdout + r.stderr


# ------------------------------------------------------------------- pins

def test_versions_env_pins():
    assert re.fullmatch(r"xbps-static-static-[0-9.]+_[0-9]+\.x86_64-musl\.tar\.xz",
                        PINS["XBPS_STATIC_FILE"])
    assert "latest" not in PINS["XBPS_STATIC_FILE"]
    assert re.fullmatch(r"[0-9a-f]{64}", PINS["XBPS_STATIC_SHA256"])
    assert PINS["VOID_ARCH"] == "x86_64"
    assert PINS["VOID_PACKAGES"].split() == [
        "base-container", "bash", "openssh", "iproute2", "e2fsprogs"]
    assert sorted(p.name for p in (VOID / "keys").iterdir()) == sorted(
        f"{fp}.plist" for fp in PINNED_FPS)


# ------------------------------------------------------- sha256 of tarball

def test_fetch_refuses_a_tarball_with_the_wrong_sha256(tmp_path):
    src = write(tmp_path / "mirror/static/x.tar.xz", "not the pinned bytes\n")
    dest = tmp_path / "cache/x.tar.xz"
    good = subprocess.run(["sha256sum", str(src)], capture_output=True, text=True).stdout.split()[0]
    wrong = PINS["XBPS_STATIC_SHA256"]
    assert good != wrong
    r = bash_fn('fetch_verified "$1" "$2" "$3"', f"file://{src}", str(dest), wrong)
    assert r.returncode != 0
    assert "sha256 mismatch" in r.stderr and "refusing" in r.stderr
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []          # no .part left behind


def test_fetch_accepts_the_pinned_sha256_and_reuses_the_cache(tmp_path):
    src = write(tmp_path / "mirror/static/x.tar.xz", "the pinned bytes\n")
    dest = tmp_path / "cache/x.tar.xz"
    sha = subprocess.run(["sha256sum", str(src)], capture_output=True, text=True).stdout.split()[0]
    r = bash_fn('fetch_verified "$1" "$2" "$3"', f"file://{src}", str(dest), sha)
    assert r.returncode == 0, r.stderr
    assert dest.read_text() == "the pinned bytes\n"
    src.unlink()                                      # cached copy is enough now
    r = bash_fn('fetch_verified "$1" "$2" "$3"', f"file://{src}", str(dest), sha)
    assert r.returncode == 0 and "cached copy matches" in r.stdout
    dest.write_text("corrupted\n")                    # a bad cache entry is not used
    r = bash_fn('fetch_verified "$1" "$2" "$3"', f"file://{src}", str(dest), sha)
    assert r.returncode != 0 and not dest.exists()


@needs_root
@needs_ssh_keygen
def test_build_stops_at_a_tarball_with_the_wrong_sha256(tmp_path, agent, pubkey):
    """The whole script, against a local file:// mirror serving a fake
    tarball under the pinned name: it must stop before unpacking it."""
    for name in ("repair-root", "guest-setup"):
        if not (REPO / "rootfs/files" / name).exists():
            pytest.skip(f"rootfs/files/{name} is not in the tree yet")
    mirror = tmp_path / "mirror"
    write(mirror / "static" / PINS["XBPS_STATIC_FILE"], "fake tarball\n")
    out, cache = tmp_path / "out", tmp_path / "cache"
    r = run(["unshare", "-n", "--", "bash", str(SCRIPT), "--out", str(out), "--agent", str(agent),
             "--pubkey", str(pubkey), "--mirror", f"file://{mirror}", "--cache", str(cache)])
    assert r.returncode != 0
    assert "sha256 mismatch" in r.stderr
    assert "[3] unpack" not in r.stdout
    assert list(cache.iterdir()) == []
    assert list(out.iterdir()) == []                  # work dir removed, no images


# -------------------------------------------------------- repository keys

def fingerprint_of_plist(plist):
    return bash_fn('xbps_key_fingerprint "$1"', str(plist)).stdout.strip()


def rsa_key_plist(path, bits=2048):
    """An xbps key plist for a fresh RSA key (not Void's), named by its real
    fingerprint."""
    pem = run(["bash", "-c", f"openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:{bits} "
                             "2>/dev/null | openssl pkey -pubout"], check=True).stdout
    data = base64.b64encode(pem.encode()).decode()
    tmp = write(path / "tmp.plist", textwrap.dedent(f"""\
        <?xml version="1.0" encoding="UTF-8"?>
        <plist version="1.0">
        <dict>
          <key>public-key</key>
          <data>{data}</data>
          <key>public-key-size</key>
          <integer>{bits}</integer>
          <key>signature-by</key>
          <string>Not Void</string>
        </dict>
        </plist>
        """))
    fp = fingerprint_of_plist(tmp)
    assert re.fullmatch(r"([0-9a-f]{2}:){15}[0-9a-f]{2}", fp), fp
    return tmp.rename(path / f"{fp}.plist"), fp


@needs_ssh_keygen
def test_pinned_key_files_have_their_pinned_fingerprints():
    for fp in PINNED_FPS:
        assert fingerprint_of_plist(VOID / "keys" / f"{fp}.plist") == fp
    r = bash_fn('verify_pinned_keys "$1" $2', str(VOID / "keys"), " ".join(PINNED_FPS))
    assert r.returncode == 0, r.stderr
    for fp in PINNED_FPS:
        assert f"key {fp}: fingerprint checked, pinned" in r.stdout


@needs_ssh_keygen
def test_an_unpinned_key_is_refused(tmp_path):
    keys = tmp_path / "keys"
    shutil.copytree(VOID / "keys", keys)
    _, fp = rsa_key_plist(keys)                       # valid key, right name, not pinned
    r = bash_fn('verify_pinned_keys "$1" $2', str(keys), " ".join(PINNED_FPS))
    assert r.returncode != 0
    assert f"{fp} is not pinned" in r.stderr


@needs_ssh_keygen
def test_a_key_file_whose_key_does_not_match_its_pin_is_refused(tmp_path):
    keys = tmp_path / "keys"
    shutil.copytree(VOID / "keys", keys)
    other, _ = rsa_key_plist(tmp_path)
    shutil.copy(other, keys / f"{PINNED_FPS[0]}.plist")   # pinned name, other key
    r = bash_fn('verify_pinned_keys "$1" $2', str(keys), " ".join(PINNED_FPS))
    assert r.returncode != 0
    assert f"not the pinned {PINNED_FPS[0]}" in r.stderr


@needs_ssh_keygen
def test_a_missing_pinned_key_or_stray_file_is_refused(tmp_path):
    keys = tmp_path / "keys"
    shutil.copytree(VOID / "keys", keys)
    (keys / f"{PINNED_FPS[1]}.plist").unlink()
    r = bash_fn('verify_pinned_keys "$1" $2', str(keys), " ".join(PINNED_FPS))
    assert r.returncode != 0 and PINNED_FPS[1] in r.stderr
    shutil.copy(VOID / "keys" / f"{PINNED_FPS[1]}.plist", keys)
    write(keys / "README", "x")
    r = bash_fn('verify_pinned_keys "$1" $2', str(keys), " ".join(PINNED_FPS))
    assert r.returncode != 0 and "unexpected file" in r.stderr


@needs_ssh_keygen
def test_a_key_imported_into_the_target_is_caught(tmp_path):
    root = tmp_path / "root"
    keys = root / "var/db/xbps/keys"
    shutil.copytree(VOID / "keys", keys)
    r = bash_fn('check_target_keys "$1"', str(root))
    assert r.returncode == 0, r.stderr
    rsa_key_plist(keys)
    r = bash_fn('check_target_keys "$1"', str(root))
    assert r.returncode != 0 and "not pinned" in r.stderr


# ---------------------------------------------------- configure_root on a tree

@needs_root
def test_configure_root_on_a_fixture_tree(fixture_root, agent, pubkey, gfiles, shim_path):
    root = fixture_root
    r = configure(root, agent, pubkey, gfiles, shim_env(shim_path))
    assert r.returncode == 0, r.stdout + r.stderr

    # services: enabled by symlink, tty1-6 gettys gone
    rsv = root / "etc/runit/runsvdir/default"
    links = {p.name: os.readlink(p) for p in rsv.iterdir()}
    assert links == {"sshd": "/etc/sv/banger-sshd",
                     "banger-vsock-agent": "/etc/sv/banger-vsock-agent",
                     "agetty-ttyS0": "/etc/sv/agetty-ttyS0"}
    assert os.readlink(root / "etc/runit/runsvdir/current") == "default"
    for rel, src in [("etc/sv/banger-vsock-agent/run", VOID / "sv/banger-vsock-agent/run"),
                     ("etc/sv/banger-vsock-agent/log/run",
                      VOID / "sv/banger-vsock-agent/log/run"),
                     ("usr/local/bin/banger-vsock-agent", agent),
                     ("usr/local/lib/banger/repair-root", gfiles / "repair-root"),
                     ("usr/local/lib/banger/guest-setup", gfiles / "guest-setup"),
                     ("usr/local/lib/banger/mount-work", gfiles / "mount-work"),
                     ("usr/local/lib/banger/mount-shares", gfiles / "mount-shares"),
                     ("etc/sv/banger-sshd/run", VOID / "sv/banger-sshd/run")]:
        p = root / rel
        assert p.read_bytes() == Path(src).read_bytes(), rel
        assert stat.S_IMODE(p.stat().st_mode) == 0o755, rel
    run_script = (root / "etc/sv/banger-vsock-agent/run").read_text()
    assert "--listen" in run_script and "exec 2>&1" in run_script
    assert "svlogd -tt /var/log/banger-vsock-agent" in (
        root / "etc/sv/banger-vsock-agent/log/run").read_text()

    # root account
    passwd = (root / "etc/passwd").read_text().splitlines()
    assert passwd[0].split(":")[6] == "/bin/bash"
    assert passwd[1] == "nobody:x:99:99:Unprivileged User:/dev/null:/bin/false"
    shadow = (root / "etc/shadow").read_text().splitlines()
    assert shadow[0].split(":")[1] == "*"
    assert not (root / "etc/.pwd.lock").exists()

    # /bin/sh is dash again, set and then checked through xbps-alternatives
    assert os.readlink(root / "usr/bin/sh") == "dash"
    assert (root / ".alt-calls").read_text().split("\n")[:2] == ["called -s dash", "called -l"]

    # sshd
    cfg = root / "etc/ssh/sshd_config"
    assert cfg.read_text() == (VOID / "sshd_config").read_text()
    text = cfg.read_text()
    for line in ["PermitRootLogin prohibit-password", "PasswordAuthentication no",
                 "KbdInteractiveAuthentication no",
                 "AuthorizedKeysFile /etc/ssh/banger/%u.keys .ssh/authorized_keys"]:
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    assert "PermitRootLogin yes" not in text
    keys = root / "etc/ssh/banger/root.keys"
    assert keys.read_text() == pubkey.read_text()
    assert stat.S_IMODE(keys.stat().st_mode) == 0o644
    assert stat.S_IMODE(keys.parent.stat().st_mode) == 0o755
    assert not list((root / "etc/ssh").glob("ssh_host_*"))
    # Host keys: the ones sshd_config names, made by our run script, no RSA.
    assert re.findall(r"^HostKey (\S+)$", text, re.M) == [
        "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ecdsa_key"]
    sshd_run = (root / "etc/sv/banger-sshd/run").read_text()
    code = [l for l in sshd_run.splitlines() if not l.lstrip().startswith("#")]
    assert not [l for l in code if "ssh-keygen -A" in l]
    assert "for t in ed25519 ecdsa; do" in code
    # the package's service is kept as it is, just not linked
    assert "ssh-keygen -A" in (root / "etc/sv/sshd/run").read_text()

    # fstab (no work disk: mount-work's), repair hook
    fstab = (root / "etc/fstab").read_text()
    mounts = [l.split() for l in fstab.splitlines() if l.strip() and not l.startswith("#")]
    assert [m[1] for m in mounts] == ["/", "/tmp"]
    hook = root / "etc/runit/core-services/50-banger.sh"
    assert hook.read_text() == (VOID / "core-services/50-banger.sh").read_text()

    # root's dotfiles: skel copied, existing ones kept
    home = root / "root"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home / ".bashrc").read_text() == "# already there: must be kept\n"
    assert (home / ".bash_profile").read_text() == "[ -f ~/.bashrc ] && . ~/.bashrc\n"


@needs_root
def test_configure_root_twice_changes_nothing(fixture_root, agent, pubkey, gfiles, shim_path):
    env = shim_env(shim_path)
    assert configure(fixture_root, agent, pubkey, gfiles, env).returncode == 0

    def snapshot():
        snap = {}
        for p in sorted(fixture_root.rglob("*")):
            rel = str(p.relative_to(fixture_root))
            if rel in (".alt-calls", "etc/passwd-", "etc/shadow-"):
                continue
            if p.is_symlink():
                snap[rel] = ("link", os.readlink(p))
            elif p.is_file():
                snap[rel] = ("file", p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            else:
                snap[rel] = ("dir", stat.S_IMODE(p.stat().st_mode))
        return snap

    before = snapshot()
    r = configure(fixture_root, agent, pubkey, gfiles, env)
    assert r.returncode == 0, r.stderr
    assert snapshot() == before


@needs_root
def test_configure_root_refuses_when_sh_stays_bash(fixture_root, agent, pubkey, gfiles,
                                                   shim_path):
    r = configure(fixture_root, agent, pubkey, gfiles, shim_env(shim_path, STUBBORN="1"))
    assert r.returncode != 0
    assert "/bin/sh would not be dash" in r.stderr


@needs_root
def test_configure_root_refuses_a_tree_without_sshd(fixture_root, agent, pubkey, gfiles,
                                                    shim_path):
    shutil.rmtree(fixture_root / "etc/sv/sshd")
    r = configure(fixture_root, agent, pubkey, gfiles, shim_env(shim_path))
    assert r.returncode != 0 and "sshd/run is missing" in r.stderr


# ------------------------------------------------------------ make_images

def debugfs(image, request):
    r = run(["debugfs", "-R", request, str(image)])
    assert r.returncode == 0, r.stderr
    return r.stdout


def ls_names(image, path):
    """Names in directory PATH of IMAGE (debugfs "ls -p": /ino/mode/uid/gid/name/size/)."""
    names = set()
    for line in debugfs(image, f"ls -p {path}").splitlines():
        parts = line.split("/")
        if len(parts) >= 7:
            names.add(parts[5])
    return names - {".", ".."}


@needs_root
def test_make_images_writes_two_ext4_images(tmp_path, fixture_root, agent, pubkey, gfiles,
                                            shim_path):
    assert configure(fixture_root, agent, pubkey, gfiles, shim_env(shim_path)).returncode == 0
    out = tmp_path / "out"
    r = bash_fn('install_cleanup_trap; make_images "$1" "$2"', str(fixture_root), str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    rootfs, seed = out / "rootfs-void.ext4", out / "work-seed-void.ext4"
    assert sorted(p.name for p in out.iterdir()) == [rootfs.name, seed.name]

    # the rootfs
    assert "Filesystem volume name:   rootfs" in debugfs(rootfs, "stats")
    assert ls_names(rootfs, "/etc/runit/runsvdir/default") == {
        "sshd", "banger-vsock-agent", "agetty-ttyS0"}
    assert 'Fast link dest: "/etc/sv/banger-sshd"' in debugfs(
        rootfs, "stat /etc/runit/runsvdir/default/sshd")
    assert debugfs(rootfs, "cat /etc/ssh/banger/root.keys") == pubkey.read_text()
    assert "root:x:0:0:root:/root:/bin/bash" in debugfs(rootfs, "cat /etc/passwd")
    assert debugfs(rootfs, "cat /etc/ssh/sshd_config") == (VOID / "sshd_config").read_text()
    assert not re.search(r"^/dev/vdb", debugfs(rootfs, "cat /etc/fstab"), re.M)
    assert ls_names(rootfs, "/usr/local/lib/banger") == {"repair-root", "guest-setup",
                                                         "mount-work", "mount-shares"}
    assert not {n for n in ls_names(rootfs, "/etc/ssh") if n.startswith("ssh_host_")}
    st = debugfs(rootfs, "stat /usr/local/bin/banger-vsock-agent")
    assert re.search(r"User:\s+0\s+Group:\s+0", st) and "Mode:  0755" in st
    assert "Mode:  0700" in debugfs(rootfs, "stat /root")

    # the work seed: root's dotfiles at its top, no nested root/ directory
    assert "Filesystem volume name:   banger-work" in debugfs(seed, "stats")
    names = ls_names(seed, "/")
    assert {".bashrc", ".bash_profile"} <= names
    assert "root" not in names
    assert debugfs(seed, "cat /.bashrc") == "# already there: must be kept\n"
    assert re.search(r"User:\s+0\s+Group:\s+0", debugfs(seed, "stat /.bash_profile"))

    for img in (rootfs, seed):
        r = run(["e2fsck", "-fn", str(img)])
        assert r.returncode == 0, r.stdout + r.stderr


@needs_root
def test_make_images_failure_leaves_old_images_and_no_temporaries(tmp_path, fixture_root):
    out = tmp_path / "out"
    old_rootfs = write(out / "rootfs-void.ext4", "old rootfs\n")
    old_seed = write(out / "work-seed-void.ext4", "old seed\n")
    # mkfs.ext4 that fails for the work seed, after the rootfs was made
    shims = tmp_path / "failshim"
    real = shutil.which("mkfs.ext4")
    write(shims / "mkfs.ext4", textwrap.dedent(f"""\
        #!/bin/sh
        case " $* " in *" banger-work "*) echo "mkfs failed (test)" >&2; exit 1 ;; esac
        exec {real} "$@"
        """), 0o755)
    env = dict(os.environ, PATH=f"{shims}:{os.environ['PATH']}")
    r = bash_fn('install_cleanup_trap; make_images "$1" "$2"',
                str(fixture_root), str(out), env=env)
    assert r.returncode != 0
    assert sorted(p.name for p in out.iterdir()) == [old_rootfs.name, old_seed.name]
    assert old_rootfs.read_text() == "old rootfs\n"
    assert old_seed.read_text() == "old seed\n"


# ------------------------------------------- guest scripts, run for real

def private_ns(script, env=None):
    """Run SCRIPT (sh) as root in private mount and UTS namespaces, so it
    can mount over /run, /usr/local, /root and /proc/cmdline without
    touching the host."""
    return run(["unshare", "-m", "-u", "--propagation", "private", "--",
                "sh", "-euc", script], env=env)


def hook_ns(tmp_path, repair_text, extra="", cmdline="console=ttyS0 banger.hostname=web7\n",
            repair_path=None, mount_text='#!/bin/sh\necho "mount-work" >>/run/order\n',
            shares_text='#!/bin/sh\necho "mount-shares $*" >>/run/order\n'):
    """Source the core-service hook with dash the way runit's stage 1 does,
    with stand-ins at /usr/local/lib/banger; print what it left in /run."""
    cmd = write(tmp_path / "cmdline", cmdline)
    libdir = tmp_path / "lib"
    if repair_path is None:
        repair_path = write(libdir / "repair-root", repair_text, 0o755)
    # guest-setup stand-in: records that it ran (and in which order)
    write(libdir / "guest-setup",
          '#!/bin/sh\necho "guest-setup $(cat /proc/cmdline)" >>/run/order\n', 0o755)
    mount_path = write(libdir / "mount-work", mount_text, 0o755)
    shares_path = write(libdir / "mount-shares", shares_text, 0o755)
    return private_ns(f"""
        mount -t tmpfs tmpfs /run
        mount -t tmpfs tmpfs /usr/local
        mkdir -p /usr/local/lib/banger
        cp {libdir}/guest-setup /usr/local/lib/banger/guest-setup
        cp {mount_path} /usr/local/lib/banger/mount-work
        cp {repair_path} /usr/local/lib/banger/repair-root
        cp {shares_path} /usr/local/lib/banger/mount-shares
        mount --bind {cmd} /proc/cmdline
        {extra}
        dash -c '. {VOID}/core-services/50-banger.sh; echo "still here"'
        echo "state=$(cat /run/banger/layout-state 2>/dev/null || echo none)"
        echo "order=$(cat /run/order | tr '\\n' ';')"
        echo "log=$(cat /run/banger/boot.log | tr '\\n' ';')"
    """)


@needs_root
@pytest.mark.parametrize("word", ["ok", "repaired", "conflicts"])
def test_core_service_hook_publishes_the_repair_word(tmp_path, word):
    r = hook_ns(tmp_path, f'#!/bin/sh\necho "repair $*" >>/run/order\n'
                          f'echo noise >&2\necho {word}\n')
    assert r.returncode == 0, r.stderr
    assert "still here" in r.stdout          # sourced: it must not end stage 1
    assert f"state={word}\n" in r.stdout
    # guest-setup first (it reads the cmdline), mount-work, repair-root on /root
    assert ("order=guest-setup console=ttyS0 banger.hostname=web7;mount-work;"
            "repair /root;\n") in r.stdout
    assert "log=noise;\n" in r.stdout


@needs_root
def test_core_service_hook_leaves_no_state_when_repair_fails(tmp_path):
    r = hook_ns(tmp_path, "#!/bin/sh\necho boom\nexit 3\n")
    assert r.returncode == 0, r.stderr
    assert "work disk repair step failed" in r.stdout
    assert "state=none\n" in r.stdout
    assert "log=repair-root exited 3;\n" in r.stdout


@needs_root
def test_core_service_hook_without_a_mounted_work_disk(tmp_path):
    """mount-work failed (a check left errors): said on the console, no
    repair on the image's own /root, no state (the agent says unknown and
    that /root is not mounted), and stage 1 goes on."""
    r = hook_ns(tmp_path, '#!/bin/sh\necho "repair $*" >>/run/order\necho ok\n',
                mount_text="#!/bin/sh\necho e2fsck said no >&2\nexit 1\n")
    assert r.returncode == 0, r.stderr
    assert "still here" in r.stdout
    assert "the work disk is not mounted on /root" in r.stdout
    assert "state=none\n" in r.stdout
    assert "repair" not in r.stdout.split("order=")[1].split("\n")[0]
    assert "log=e2fsck said no;mount-work exited 1;\n" in r.stdout


@needs_root
def test_core_service_hook_with_the_real_repair_step(tmp_path):
    """The hook with rootfs/files/mount-work and repair-root, on a nested
    layout in a private tmpfs mounted over /root; a second boot finds
    nothing to do."""
    real = REPO / "rootfs/files/repair-root"
    if not real.exists():
        pytest.skip("rootfs/files/repair-root is not in the tree yet")
    first_boot = (f"mount -t tmpfs tmpfs /root; mkdir -p /root/root; "
                  f"echo nested >/root/root/.bashrc; "
                  f"dash -c '. {VOID}/core-services/50-banger.sh' >/dev/null; "
                  'echo "first=$(cat /run/banger/layout-state) bashrc=$(cat /root/.bashrc)"')
    # The real mount-work too: it finds /root already mounted.
    r = hook_ns(tmp_path, "", repair_path=real, extra=first_boot,
                mount_text=(REPO / "rootfs/files/mount-work").read_text())
    assert r.returncode == 0, r.stderr
    assert "first=repaired bashrc=nested\n" in r.stdout
    assert "/root is already a mount point" in r.stdout
    assert "state=ok\n" in r.stdout          # the second boot: already repaired


SHARES = ("console=ttyS0 banger.mount=banger0:/mnt/src:ro "
          "banger.mount=banger1:/root/proj banger.hostname=web7\n")


@needs_root
def test_core_service_hook_runs_mount_shares_only_with_shares(tmp_path):
    r = hook_ns(tmp_path, '#!/bin/sh\necho "repair $*" >>/run/order\necho ok\n')
    assert r.returncode == 0, r.stderr
    assert "mount-shares" not in r.stdout
    assert "shared folder" not in r.stdout


@needs_root
def test_core_service_hook_mounts_shares_after_the_work_disk(tmp_path):
    """With banger.mount= words: mount-shares last, after mount-work and
    repair-root (a share may be under /root), and stage 1 goes on."""
    r = hook_ns(tmp_path, '#!/bin/sh\necho "repair $*" >>/run/order\necho ok\n',
                cmdline=SHARES)
    assert r.returncode == 0, r.stderr
    assert "still here" in r.stdout
    order = r.stdout.split("order=")[1].split("\n")[0].split(";")
    assert order[1:] == ["mount-work", "repair /root", "mount-shares ", ""]
    assert "=> banger: shared folders mounted" in r.stdout


@needs_root
def test_core_service_hook_says_when_a_share_failed(tmp_path):
    r = hook_ns(tmp_path, "#!/bin/sh\necho ok\n", cmdline=SHARES,
                shares_text="#!/bin/sh\necho 'mount-shares: cannot mount' >&2\nexit 1\n")
    assert r.returncode == 0, r.stderr
    assert "still here" in r.stdout
    assert "=> banger: a shared folder did not mount, see /run/banger/boot.log" in r.stdout
    assert "log=mount-shares: cannot mount;mount-shares exited 1;\n" in r.stdout


@needs_root
def test_core_service_hook_with_the_real_mount_shares(tmp_path):
    """rootfs/files/mount-shares itself, in the namespace, with the real
    mount(8): there is no virtio-fs device here, so each mount fails and
    the state file says why; a bad path is refused without a mount."""
    real = (REPO / "rootfs/files/mount-shares").read_text()
    r = hook_ns(tmp_path, "#!/bin/sh\necho ok\n",
                cmdline="console=ttyS0 banger.mount=banger0:/mnt/src:ro "
                        "banger.mount=banger1:/etc\n",
                shares_text=real,
                extra="mount -t tmpfs tmpfs /mnt; "
                      'trap \'echo "shares=$(cat /run/banger/shares-state | tr "\\n" ";")"; '
                      'echo "made=$(ls /mnt)"\' EXIT')
    assert r.returncode == 0, r.stderr
    assert "=> banger: a shared folder did not mount" in r.stdout
    shares = r.stdout.split("shares=")[1].split("\n")[0].split(";")
    assert shares[0].startswith("failed banger0 /mnt/src mount exited "), shares
    assert shares[1] == ("failed banger1 /etc the guest path is a system "
                         "directory of the guest"), shares
    assert "made=src\n" in r.stdout


@needs_root
@pytest.mark.parametrize("cmdline,port", [("console=ttyS0 banger.agent_port=2048", "2048"),
                                          ("console=ttyS0", "1024")])
def test_agent_run_script_takes_the_port_from_the_cmdline(tmp_path, cmdline, port):
    cmd = write(tmp_path / "cmdline", cmdline + "\n")
    fake = write(tmp_path / "agent", '#!/bin/sh\necho "agent $*"\n', 0o755)
    r = private_ns(f"""
        mount -t tmpfs tmpfs /usr/local
        mkdir -p /usr/local/bin
        cp {fake} /usr/local/bin/banger-vsock-agent
        mount --bind {cmd} /proc/cmdline
        dash {VOID}/sv/banger-vsock-agent/run
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"agent --listen vsock:{port}\n"


FAKE_XBPS_INSTALL = r"""#!/bin/sh
# Stand-in for the static xbps-install: checks how it is called, then lays
# the fixture tree ($FIXTURE_TREE) into the target root.
set -eu
root= repo= cache= sync= yes=
while [ $# -gt 0 ]; do
	case $1 in
	-S) sync=1; shift ;;
	-y) yes=1; shift ;;
	-r) root=$2; shift 2 ;;
	-R) repo=$2; shift 2 ;;
	-c) cache=$2; shift 2 ;;
	*) break ;;
	esac
done
[ "${XBPS_ARCH:-}" = x86_64 ] || { echo "XBPS_ARCH is '${XBPS_ARCH:-}'" >&2; exit 1; }
[ -e "$root/proc/self/stat" ] || { echo "no /proc in the target" >&2; exit 1; }
[ -c "$root/dev/null" ] || { echo "no /dev in the target" >&2; exit 1; }
[ -t 0 ] && { echo "stdin is a terminal" >&2; exit 1; }
ls "$root/var/db/xbps/keys" >"$cache/keys-seen"
echo "sync=$sync yes=$yes repo=$repo pkgs=$*" >"$cache/args"
cp -a "$FIXTURE_TREE/." "$root/"
"""


@needs_root
@needs_ssh_keygen
def test_full_build_with_a_stand_in_xbps(tmp_path, agent, pubkey, gfiles):
    """main() end to end without network: a copy of rootfs/ whose
    versions.env pins a stand-in tarball (fake xbps-install and
    xbps-alternatives) served from a file:// mirror."""
    tools = tmp_path / "tarball"
    write(tools / "usr/bin/xbps-install", FAKE_XBPS_INSTALL, 0o755)
    write(tools / "usr/bin/xbps-alternatives", ALT_SHIM, 0o755)
    mirror = tmp_path / "mirror"
    tarball = mirror / "static" / PINS["XBPS_STATIC_FILE"]
    tarball.parent.mkdir(parents=True)
    run(["tar", "-cJf", str(tarball), "-C", str(tools), "./usr"], check=True)
    sha = run(["sha256sum", str(tarball)], check=True).stdout.split()[0]

    copy = tmp_path / "rootfs"
    copy.mkdir()
    shutil.copy(SCRIPT, copy / SCRIPT.name)
    shutil.copytree(VOID, copy / "void")
    (copy / "files").mkdir()
    for name in ("repair-root", "guest-setup", "mount-work", "mount-shares"):
        real = REPO / "rootfs/files" / name
        shutil.copy(real if real.exists() else gfiles / name, copy / "files" / name)
    env_file = copy / "void/versions.env"
    env_file.write_text(env_file.read_text().replace(PINS["XBPS_STATIC_SHA256"], sha))

    tree = make_fixture_root(tmp_path / "tree")
    out, cache = tmp_path / "out", tmp_path / "cache"
    r = run(["unshare", "-n", "--", "bash", str(copy / SCRIPT.name), "--out", str(out),
             "--agent", str(agent), "--pubkey", str(pubkey),
             "--mirror", f"file://{mirror}", "--cache", str(cache)],
            env=dict(os.environ, FIXTURE_TREE=str(tree)))
    assert r.returncode == 0, r.stdout + r.stderr

    args = (cache / "pkgs/args").read_text()
    assert args == (f"sync=1 yes=1 repo=file://{mirror}/current "
                    "pkgs=base-container bash openssh iproute2 e2fsprogs\n")
    assert sorted((cache / "pkgs/keys-seen").read_text().split()) == sorted(
        f"{fp}.plist" for fp in PINNED_FPS)
    assert (cache / PINS["XBPS_STATIC_FILE"]).exists()
    assert sorted(p.name for p in out.iterdir()) == ["rootfs-void.ext4", "work-seed-void.ext4"]
    rootfs = out / "rootfs-void.ext4"
    assert debugfs(rootfs, "cat /etc/ssh/banger/root.keys") == pubkey.read_text()
    assert ls_names(rootfs, "/var/db/xbps/keys") == {f"{fp}.plist" for fp in PINNED_FPS}
    assert ls_names(rootfs, "/etc/runit/runsvdir/default") == {
        "sshd", "banger-vsock-agent", "agetty-ttyS0"}
    assert "Mode:  0755" in debugfs(rootfs, "stat /")
    assert ".bash_profile" in ls_names(out / "work-seed-void.ext4", "/")
