"""The shared-folder mount step (rootfs/files/mount-shares): the
banger.mount= words it reads, the tags and paths it refuses, the mount
command it runs, what it does with a path that is already mounted, the
state file it leaves for the agent and its exit status.  A stand-in mount
command records its arguments and appends the mount to a stand-in
mountinfo, so nothing is mounted and no root is needed; every path is
under the test's own directory.  Run with every POSIX shell on the host."""
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MOUNT_SHARES = os.path.join(HERE, "..", "..", "rootfs", "files", "mount-shares")

FAKE_MOUNT = """#!/bin/sh
# Stand-in for mount(8): records the call; mounts TAG on PATH in the
# stand-in mountinfo unless FAIL names PATH.
echo "$*" >>"$CALLS"
for a; do path=$a; done
for a; do [ "$a" = "$path" ] || tag=$a; done
if [ "$path" = "${FAIL:-}" ]; then
	echo "mount: $path: wrong fs type, bad option, bad superblock on $tag." >&2
	echo "       dmesg(1) may have more information." >&2
	exit 32
fi
echo "90 1 0:50 / $path rw,relatime shared:40 - virtiofs $tag rw" >>"$MOUNTINFO"
"""


def _shells():
    shells = []
    if shutil.which("dash"):
        shells.append(("dash", [shutil.which("dash")]))
    if shutil.which("busybox"):
        shells.append(("busybox", [shutil.which("busybox"), "sh"]))
    if shutil.which("bash"):
        shells.append(("bash-posix", [shutil.which("bash"), "--posix"]))
    return shells


SHELLS = _shells()


@pytest.fixture(params=[s[1] for s in SHELLS], ids=[s[0] for s in SHELLS])
def shell(request):
    return request.param


class Guest:
    """A directory standing in for the guest: its command line, mountinfo,
    state file and the mount command's calls."""

    def __init__(self, shell, tmp_path):
        self.shell = shell
        self.dir = tmp_path
        self.cmdline = tmp_path / "cmdline"
        self.mountinfo = tmp_path / "mountinfo"
        self.mountinfo.write_text(
            "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n")
        self.calls = tmp_path / "calls"
        self.state = tmp_path / "run" / "banger" / "shares-state"
        self.mount = tmp_path / "fake-mount"
        self.mount.write_text(FAKE_MOUNT)
        self.mount.chmod(0o755)

    def path(self, rel):
        return str(self.dir / rel)

    def run(self, cmdline, *args, fail=None):
        self.cmdline.write_text(cmdline + "\n")
        argv = list(self.shell) + [
            MOUNT_SHARES, "--cmdline", str(self.cmdline), "--state",
            str(self.state), "--mountinfo", str(self.mountinfo),
            "--mount-cmd", str(self.mount)] + list(args)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
               "CALLS": str(self.calls), "MOUNTINFO": str(self.mountinfo),
               "FAIL": fail or ""}
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=60, env=env)

    def mount_calls(self):
        if not self.calls.exists():
            return []
        return self.calls.read_text().splitlines()

    def state_lines(self):
        return self.state.read_text().splitlines()


@pytest.fixture
def guest(shell, tmp_path):
    return Guest(shell, tmp_path)


# ------------------------------------------------------------------ usage

def test_help():
    r = subprocess.run([MOUNT_SHARES, "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "usage: mount-shares" in r.stdout


@pytest.mark.parametrize("args, msg", [
    (["--bogus"], "unknown argument: --bogus"),
    (["extra"], "unknown argument: extra"),
    (["--mount-cmd"], "--mount-cmd needs a value"),
    (["--state", ""], "--state needs a value"),
])
def test_usage_errors(guest, args, msg):
    r = guest.run("banger.mount=banger0:" + guest.path("src"), *args)
    assert r.returncode == 2 and msg in r.stderr, r.stderr
    assert guest.mount_calls() == []
    assert not guest.state.exists()


def test_nothing_to_do_without_a_mount_word(guest):
    r = guest.run("console=ttyS0 banger.hostname=web xbanger.mount=banger0:/x")
    assert r.returncode == 0, r.stderr
    assert guest.mount_calls() == []
    assert not guest.state.exists()
    assert r.stderr == ""


# -------------------------------------------------------------- mounting

def test_mounts_read_only_and_read_write(guest):
    src, proj = guest.path("mnt/src"), guest.path("root/proj")
    r = guest.run("console=ttyS0 banger.mount=banger0:%s:ro "
                  "banger.mount=banger1:%s ip=off" % (src, proj))
    assert r.returncode == 0, r.stderr
    assert guest.mount_calls() == [
        "-t virtiofs -o ro banger0 " + src,
        "-t virtiofs banger1 " + proj]
    # The mount points are made (mkdir -p), the result recorded in order.
    assert os.path.isdir(src) and os.path.isdir(proj)
    assert guest.state_lines() == ["ok banger0 " + src, "ok banger1 " + proj]
    assert "mounted banger0 on %s (ro)" % src in r.stderr
    assert "mounted banger1 on %s (rw)" % proj in r.stderr


def test_an_existing_directory_is_used_as_it_is(guest):
    d = guest.dir / "data"
    d.mkdir(mode=0o700)
    (d / "keep").write_text("x")
    r = guest.run("banger.mount=banger3:" + str(d))
    assert r.returncode == 0, r.stderr
    assert guest.mount_calls() == ["-t virtiofs banger3 " + str(d)]
    assert (d / "keep").read_text() == "x"
    assert guest.state_lines() == ["ok banger3 " + str(d)]


BAD = [
    # (the word's value, with {d} for the test's directory; reason)
    ("bangerx:{d}/a", "bad tag 'bangerx' (want banger0..banger9)"),
    ("banger10:{d}/a", "bad tag 'banger10'"),
    ("virtiofs0:{d}/a", "bad tag 'virtiofs0'"),
    ("banger0", "no guest path"),
    ("banger0:", "no guest path"),
    ("banger0:relative/dir", "the guest path must be absolute"),
    ("banger0:/", "the guest path cannot be /"),
    ("banger0:{d}/a/../../etc", "an empty, . or .. component"),
    ("banger0:{d}/./a", "an empty, . or .. component"),
    ("banger0:{d}//a", "an empty, . or .. component"),
    ("banger0:{d}/a/..", "an empty, . or .. component"),
    ("banger0:{d}/a/", "the guest path ends with /"),
    ("banger0:{d}/a b", None),   # split by the shell: 'b' is another word
    ("banger0:{d}/a$x", "may hold only letters, digits and . _ / -"),
    ("banger0:{d}/a;b", "may hold only letters, digits and . _ / -"),
    ("banger0:{d}/a:rw", "may hold only letters, digits and . _ / -"),
    ("banger0:{d}/\u00e9t\u00e9", "may hold only letters, digits and . _ / -"),
    ("banger0:/" + "a" * 128, "too long (at most 128 bytes)"),
    ("banger0:/etc", "a system directory of the guest"),
    ("banger0:/root", "a system directory of the guest"),
    ("banger0:/usr/local", "a system directory of the guest"),
    ("banger0:/proc/sys", "in a system tree of the guest"),
    ("banger0:/run", "in a system tree of the guest"),
    ("banger0:/usr/local/lib/banger/x", "in a system tree of the guest"),
]


@pytest.mark.parametrize("value, why", [b for b in BAD if b[1]],
                         ids=[b[0].replace("{d}", "D")[:40] for b in BAD if b[1]])
def test_bad_tag_or_path_is_refused_without_mounting(guest, value, why):
    value = value.format(d=guest.dir)
    before = sorted(os.listdir(guest.dir))
    r = guest.run("console=ttyS0 banger.mount=" + value)
    assert r.returncode == 1, r.stderr
    assert guest.mount_calls() == []
    (line,) = guest.state_lines()
    assert line.startswith("failed ") and why in line, line
    assert why in r.stderr and "cannot mount" in r.stderr
    # Nothing made for a refused path.
    assert sorted(os.listdir(guest.dir)) == sorted(before + ["cmdline", "run"])


def test_a_refused_word_does_not_stop_the_others(guest):
    a, b = guest.path("a"), guest.path("b")
    r = guest.run("banger.mount=banger0:%s:ro banger.mount=banger1:/etc "
                  "banger.mount=banger2:%s" % (a, b))
    assert r.returncode == 1
    assert guest.mount_calls() == ["-t virtiofs -o ro banger0 " + a,
                                   "-t virtiofs banger2 " + b]
    assert guest.state_lines() == [
        "ok banger0 " + a,
        "failed banger1 /etc the guest path is a system directory of the guest",
        "ok banger2 " + b]


def test_a_path_of_128_bytes_is_taken(guest):
    base = str(guest.dir) + "/"
    p = base + "p" * (128 - len(base))
    assert len(p) == 128
    r = guest.run("banger.mount=banger7:%s:ro" % p)
    assert r.returncode == 0, r.stderr
    assert guest.mount_calls() == ["-t virtiofs -o ro banger7 " + p]
    r = guest.run("banger.mount=banger6:%sq" % p)
    assert r.returncode == 1
    assert "too long" in guest.state_lines()[0]


def test_state_line_fields_for_an_empty_tag_and_path(guest):
    r = guest.run("banger.mount=")
    assert r.returncode == 1
    assert guest.state_lines() == ["failed - - bad tag '' (want banger0..banger9)"]


def test_a_tag_given_twice_is_mounted_once(guest):
    a, b = guest.path("a"), guest.path("b")
    r = guest.run("banger.mount=banger0:%s banger.mount=banger0:%s" % (a, b))
    assert r.returncode == 1
    assert guest.mount_calls() == ["-t virtiofs banger0 " + a]
    assert guest.state_lines() == ["ok banger0 " + a,
                                   "failed banger0 %s tag banger0 is given twice" % b]


# ----------------------------------------------------- already mounted

def test_second_run_finds_the_shares_mounted(guest):
    a, b = guest.path("a"), guest.path("b")
    cmdline = "banger.mount=banger0:%s:ro banger.mount=banger1:%s" % (a, b)
    r = guest.run(cmdline)
    assert r.returncode == 0, r.stderr
    assert len(guest.mount_calls()) == 2
    r = guest.run(cmdline)
    assert r.returncode == 0, r.stderr
    assert len(guest.mount_calls()) == 2        # no mount over a mount
    assert "banger0 is already mounted on " + a in r.stderr
    assert guest.state_lines() == ["ok banger0 " + a, "ok banger1 " + b]


def test_another_mount_point_is_not_mounted_over(guest):
    a = guest.path("a")
    with open(guest.mountinfo, "a") as f:
        f.write("40 22 0:60 / %s rw,nosuid shared:9 - tmpfs tmpfs rw\n" % a)
        # Another tag's virtio-fs is not this share either.
        f.write("41 22 0:61 / %s/b rw - virtiofs banger5 rw\n" % a)
    r = guest.run("banger.mount=banger0:%s banger.mount=banger1:%s/b" % (a, a))
    assert r.returncode == 1
    assert guest.mount_calls() == []
    assert guest.state_lines() == [
        "failed banger0 %s %s is already a mount point (tmpfs tmpfs)" % (a, a),
        "failed banger1 %s/b %s/b is already a mount point (virtiofs banger5)"
        % (a, a)]


def test_the_topmost_mount_decides(guest):
    """A path mounted twice: the last mountinfo line is what is seen."""
    a = guest.path("a")
    with open(guest.mountinfo, "a") as f:
        f.write("40 22 0:60 / %s rw - tmpfs tmpfs rw\n" % a)
        f.write("41 40 0:61 / %s rw - virtiofs banger0 rw\n" % a)
    r = guest.run("banger.mount=banger0:" + a)
    assert r.returncode == 0, r.stderr
    assert guest.mount_calls() == []
    assert guest.state_lines() == ["ok banger0 " + a]


# ---------------------------------------------------------------- failures

def test_a_failed_mount_is_recorded_with_the_reason(guest):
    a, b = guest.path("a"), guest.path("b")
    r = guest.run("banger.mount=banger0:%s banger.mount=banger1:%s:ro" % (a, b),
                  fail=a)
    assert r.returncode == 1
    assert guest.mount_calls() == ["-t virtiofs banger0 " + a,
                                   "-t virtiofs -o ro banger1 " + b]
    reason = ("mount exited 32: mount: %s: wrong fs type, bad option, bad "
              "superblock on banger0." % a)
    assert guest.state_lines() == ["failed banger0 %s %s" % (a, reason),
                                   "ok banger1 " + b]
    assert "cannot mount banger0 on %s: %s" % (a, reason) in r.stderr


def test_a_path_that_cannot_be_made_is_a_failure(guest):
    (guest.dir / "file").write_text("not a directory\n")
    p = guest.path("file/sub")
    r = guest.run("banger.mount=banger0:" + p)
    assert r.returncode == 1
    assert guest.mount_calls() == []
    (line,) = guest.state_lines()
    assert line.startswith("failed banger0 %s cannot create %s: " % (p, p)), line
    assert "Not a directory" in line


def test_the_state_directory_is_made(guest):
    assert not guest.state.parent.exists()
    r = guest.run("banger.mount=banger0:" + guest.path("a"))
    assert r.returncode == 0, r.stderr
    assert guest.state.read_text() == "ok banger0 %s\n" % guest.path("a")


def test_an_unwritable_state_file_fails(guest):
    guest.state.parent.mkdir(parents=True)
    guest.state.mkdir()          # a directory where the file should go
    r = guest.run("banger.mount=banger0:" + guest.path("a"))
    assert r.returncode == 1
    assert "cannot write " + str(guest.state) in r.stderr
