"""make install / make uninstall, and the systemd units they install."""
import json
import os
import shutil
import stat
import subprocess

import pytest

from bangerlib import ROOT

MAKE = shutil.which("make") or "make"


def make(*args):
    r = subprocess.run([MAKE, "-s", "-C", ROOT] + list(args),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "make %s: exit %d\n%s\n%s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr)
    return r


def rootfs_files():
    r = subprocess.run(["git", "-C", ROOT, "ls-files", "rootfs"],
                       capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.split("\n")[:-1]
    out = []
    for dirpath, _, names in os.walk(os.path.join(ROOT, "rootfs")):
        for n in names:
            out.append(os.path.relpath(os.path.join(dirpath, n), ROOT))
    return out


def expected_files():
    """Installed path (under PREFIX) -> mode."""
    want = {
        "bin/bangerd": 0o755,
        "bin/banger": 0o755,
        "lib/systemd/system/bangerd.service": 0o644,
        "lib/systemd/system/bangerd.socket": 0o644,
        "share/bash-completion/completions/banger": 0o644,
        "share/zsh/site-functions/_banger": 0o644,
        "share/doc/banger/README.md": 0o644,
        "lib/banger/runtime/banger-vsock-agent": 0o755,
    }
    for f in rootfs_files():
        src = os.path.join(ROOT, f)
        want["lib/banger/" + f] = 0o755 if os.access(src, os.X_OK) else 0o644
    return want


def files_under(top):
    got = {}
    for dirpath, _, names in os.walk(top):
        for n in names:
            p = os.path.join(dirpath, n)
            got[os.path.relpath(p, top)] = stat.S_IMODE(os.lstat(p).st_mode)
    return got


def unit_keys(path):
    """[(section, key, value)] of a unit file (keys may repeat)."""
    out, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            out.append((section, k.strip(), v.strip()))
    return out


def test_install_layout_and_uninstall(tmp_path):
    dest = str(tmp_path / "dest")
    make("install", "DESTDIR=" + dest, "PREFIX=/usr")
    usr = os.path.join(dest, "usr")

    # Exactly these files, with these modes, and nothing outside /usr.
    assert os.listdir(dest) == ["usr"]
    assert files_under(usr) == expected_files()

    # Every @PREFIX@ was substituted.
    for rel in files_under(usr):
        with open(os.path.join(usr, rel), "rb") as f:
            assert b"@PREFIX@" not in f.read(), rel

    service = unit_keys(os.path.join(usr, "lib/systemd/system/bangerd.service"))
    assert ("Service", "ExecStart", "/usr/bin/bangerd") in service
    assert ("Service", "KillMode", "process") in service
    assert ("Service", "Type", "notify") in service
    assert ("Unit", "Requires", "bangerd.socket") in service
    sock = unit_keys(os.path.join(usr, "lib/systemd/system/bangerd.socket"))
    for kv in (("Socket", "ListenStream", "/run/banger/bangerd.sock"),
               ("Socket", "SocketMode", "0660"),
               ("Socket", "SocketGroup", "banger")):
        assert kv in sock, sock

    # The installed banger prints the installed completion scripts.
    for shell, rel in (("bash", "share/bash-completion/completions/banger"),
                       ("zsh", "share/zsh/site-functions/_banger")):
        r = subprocess.run([os.path.join(usr, "bin/banger"), "completion",
                            shell], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(usr, rel)) as f:
            assert f.read() == r.stdout

    # The installed bangerd finds the installed bundle directory (run from
    # / so that no ./runtime of a checkout is in the way).
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGER_")}
    r = subprocess.run([os.path.join(usr, "bin/bangerd"), "-n"], cwd="/",
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert cfg["runtime_dir"] == os.path.realpath(
        os.path.join(usr, "lib/banger/runtime")), cfg

    # uninstall removes every file install put there, but keeps a runtime
    # bundle made in the installed runtime directory.
    bundle_part = os.path.join(usr, "lib/banger/runtime/vmlinux")
    with open(bundle_part, "w") as f:
        f.write("kernel\n")
    make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
    assert files_under(usr) == {"lib/banger/runtime/vmlinux": 0o644}


def analyze_verify(*paths):
    return subprocess.run(["systemd-analyze", "verify", "--man=no"] +
                          list(paths), capture_output=True, text=True,
                          timeout=120)


def test_units_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not found (Debian package systemd); "
                    "the unit files are not verified")
    # Can systemd-analyze verify run here at all?  A unit that is
    # certainly valid tells.
    probe = tmp_path / "probe.service"
    probe.write_text("[Unit]\nDescription=probe\n\n[Service]\n"
                     "ExecStart=/bin/true\n")
    r = analyze_verify(str(probe))
    if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
        pytest.skip("systemd-analyze verify cannot run in this environment "
                    "(a trivial unit fails: %s)" % (r.stderr or r.stdout).strip())
    # Install for real under a prefix so that ExecStart names an existing
    # executable, which verify checks.
    prefix = str(tmp_path / "prefix")
    make("install", "PREFIX=" + prefix)
    units = os.path.join(prefix, "lib/systemd/system")
    r = analyze_verify(os.path.join(units, "bangerd.socket"),
                       os.path.join(units, "bangerd.service"))
    assert r.returncode == 0 and not r.stdout.strip() and \
        not r.stderr.strip(), "systemd-analyze verify:\n%s%s" % (r.stdout,
                                                                 r.stderr)
