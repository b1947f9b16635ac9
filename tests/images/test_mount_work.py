"""The work-disk mount step (rootfs/files/mount-work): the command line it
reads, the device it waits for, the check it runs and what a failed check
does.  The cases that mount need root and a loop device (a small ext4 image
stands in for /dev/vdb); the rest run anywhere, with every POSIX shell on
the host."""
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MOUNT_WORK = os.path.join(HERE, "..", "..", "rootfs", "files", "mount-work")


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


def run(shell, tmp_path, cmdline, *args, timeout=60):
    cmd = tmp_path / "cmdline"
    cmd.write_text(cmdline + "\n")
    argv = list(shell) + [MOUNT_WORK, "--cmdline", str(cmd)] + [str(a) for a in args]
    env = dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=env)


# ------------------------------------------------------------ without root

@pytest.mark.parametrize("args, msg", [
    (["--wait", "x"], "--wait must be a number"),
    (["--bogus"], "unknown option"),
    (["a", "b", "c"], "too many arguments"),
    (["/dev/null", "relative/dir"], "must be an absolute path"),
])
def test_usage_errors(shell, tmp_path, args, msg):
    r = run(shell, tmp_path, "", *args)
    assert r.returncode == 2 and msg in r.stderr, r.stderr


def test_no_work_disk_leaves_the_directory(shell, tmp_path):
    d = tmp_path / "root"
    d.mkdir()
    r = run(shell, tmp_path, "console=ttyS0", str(tmp_path / "vdb"), d)
    assert r.returncode == 0, r.stderr
    assert "no work disk" in r.stderr and str(tmp_path / "vdb") in r.stderr


def test_waits_for_the_device_the_command_line_names(shell, tmp_path):
    """banger.workdev= names the device: waited for up to 10 s (--wait
    overrides), then the directory stays as it is."""
    r = run(shell, tmp_path, "banger.workdev=%s" % (tmp_path / "vdx"),
            "--wait", "1")
    assert r.returncode == 0, r.stderr
    assert "no work disk (%s" % (tmp_path / "vdx") in r.stderr


def test_help():
    r = subprocess.run([MOUNT_WORK, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: mount-work" in r.stdout


# ---------------------------------------------------------- with a loop disk

def _loop_prereqs():
    if os.geteuid() != 0:
        return "mounting needs root"
    for tool in ("losetup", "mkfs.ext4", "debugfs", "e2fsck", "mountpoint"):
        if not shutil.which(tool):
            return tool + " is not installed"
    return None


needs_loop = pytest.mark.skipif(_loop_prereqs() is not None,
                                reason=_loop_prereqs() or "")


@pytest.fixture
def disk(tmp_path):
    """A 32 MiB ext4 work disk on a loop device; DIR to mount it on."""
    img = tmp_path / "work.ext4"
    with open(img, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "banger-work", str(img)],
                   check=True)
    dev = subprocess.run(["losetup", "-f", "--show", str(img)], check=True,
                         capture_output=True, text=True).stdout.strip()
    d = tmp_path / "root"
    d.mkdir()
    try:
        yield img, dev, d
    finally:
        subprocess.run(["umount", str(d)], capture_output=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def damage(dev, request):
    """Apply a debugfs request and mark the filesystem not clean, as a
    crash would leave it (e2fsck -p skips a clean one)."""
    for req in (request, "ssv state 0"):
        subprocess.run(["debugfs", "-w", "-R", req, dev], check=True,
                       capture_output=True)


def is_mounted(d):
    return subprocess.run(["mountpoint", "-q", str(d)]).returncode == 0


@needs_loop
def test_checks_and_mounts(tmp_path, disk):
    img, dev, d = disk
    sh = SHELLS[0][1]
    r = run(sh, tmp_path, "banger.workdev=" + dev, dev, d)
    assert r.returncode == 0, r.stderr
    assert "banger-work: clean" in r.stderr  # e2fsck -p said so
    assert is_mounted(d)
    # A second run finds it mounted and does nothing (no mount over it).
    r = run(sh, tmp_path, "", dev, str(d) + "/")
    assert r.returncode == 0 and "already a mount point" in r.stderr, r.stderr
    n = sum(1 for line in open("/proc/self/mountinfo")
            if line.split()[4] == str(d))
    assert n == 1


@needs_loop
def test_fixable_errors_are_fixed_and_mounted(tmp_path, disk):
    img, dev, d = disk
    damage(dev, "ssv free_blocks_count 7")
    r = run(SHELLS[0][1], tmp_path, "", dev, d)
    assert r.returncode == 0, r.stderr
    assert "fixed errors" in r.stderr and is_mounted(d)


@needs_loop
def test_errors_left_keep_it_unmounted(tmp_path, disk):
    """What preen (-p) will not fix: the disk stays off /root, the step
    fails (the unit shows failed; the agent says /root is not mounted)."""
    img, dev, d = disk
    damage(dev, "set_inode_field <2> mode 0100644")
    r = run(SHELLS[0][1], tmp_path, "", dev, d)
    assert r.returncode == 1, r.stderr
    assert "not mounting it" in r.stderr
    assert not is_mounted(d)


@needs_loop
@pytest.mark.parametrize("cmdline, request_, mounted", [
    # not checked at all, so mounted as it is
    ("fsck.mode=skip", "set_inode_field <2> links_count 7", True),
    # -n: found, not fixed, so not mounted
    ("fsck.repair=no", "set_inode_field <2> mode 0100644", False),
    # -f -y: checked although clean, fixed, mounted
    ("fsck.mode=force fsck.repair=yes", "ssv free_blocks_count 7", True),
])
def test_fsck_kernel_options(tmp_path, disk, cmdline, request_, mounted):
    """systemd-fsck's kernel command line options, honoured."""
    img, dev, d = disk
    subprocess.run(["debugfs", "-w", "-R", request_, dev], check=True,
                   capture_output=True)
    if "force" not in cmdline:
        damage(dev, "ssv state 0")
    r = run(SHELLS[0][1], tmp_path, cmdline, dev, d)
    assert (r.returncode == 0) == mounted, r.stderr
    assert is_mounted(d) == mounted
    if "force" in cmdline:
        assert "fixed errors" in r.stderr
