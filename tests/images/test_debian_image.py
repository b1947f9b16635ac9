"""The Debian default image, inspected without booting (debugfs only): the
SSH setup, root's shell, the units and their enablement, the agent and the
repair step, the absence of host keys, fstab, image-info and the work seed.
Also make-rootfs.sh's progress lines, its plugin modes and its cleanup after
a failure.  The build is cached between runs (see debimage.py)."""
import os
import re
import shutil
import subprocess

import pytest

from debimage import (MAKE_ROOTFS, ROOTFS, ROOTFS_CACHE, STAGE_RE, TEST_PUBKEY, Ext4,
                      agent_path, build_image, make_plugin_repo, read_versions)

UNIT_DIR = "/usr/local/lib/systemd/system"
WANTS = "/etc/systemd/system"


# -------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def plugin_repos(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    parent = str(tmp_path_factory.mktemp("plugin-repos"))
    return {
        "resurrect": make_plugin_repo(parent, "tmux-resurrect", "resurrect.tmux"),
        "continuum": make_plugin_repo(parent, "tmux-continuum", "continuum.tmux"),
    }


@pytest.fixture(scope="session")
def debian_image(plugin_repos):
    """The default image, built with fixture plugins (--tmux-plugins required)."""
    (res_repo, res_commit), (con_repo, con_commit) = plugin_repos["resurrect"], plugin_repos["continuum"]
    env = {
        "BANGER_TMUX_RESURRECT_URL": res_repo, "BANGER_TMUX_RESURRECT_COMMIT": res_commit,
        "BANGER_TMUX_CONTINUUM_URL": con_repo, "BANGER_TMUX_CONTINUUM_COMMIT": con_commit,
    }
    # Keyed by the fixture commits (stable), not the per-session repo paths.
    img = build_image("default", ["--tmux-plugins", "required"], env,
                      key_env={"resurrect": res_commit, "continuum": con_commit})
    img.plugin_commits = (res_commit, con_commit)
    return img


@pytest.fixture(scope="session")
def image_without_plugins(debian_image):
    """--tmux-plugins auto with an unreachable plugin repository."""
    env = {"BANGER_TMUX_RESURRECT_URL": "/nonexistent/tmux-resurrect.git",
           "BANGER_TMUX_CONTINUUM_URL": "/nonexistent/tmux-continuum.git"}
    return build_image("noplugins", ["--tmux-plugins", "auto"], env,
                       keep=["/etc/banger/image-info", "/etc/tmux.conf",
                             "/usr/share/banger/tmux-plugins"])


@pytest.fixture(scope="session")
def rootfs(debian_image):
    return Ext4(debian_image.rootfs)


@pytest.fixture(scope="session")
def seed(debian_image):
    return Ext4(debian_image.seed)



def repo_file(*parts):
    with open(os.path.join(ROOTFS, *parts), "rb") as f:
        return f.read()


def unit_settings(text):
    """{key: [values]} of a unit file (comments dropped)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


# ------------------------------------------------------------------- the build

def test_progress_lines(debian_image):
    lines = debian_image.stages.splitlines()
    assert lines, "no progress on stdout"
    percents = []
    for line in lines:
        m = STAGE_RE.match(line)
        assert m, "stdout line is not a stage line: %r" % line
        percents.append(int(m.group(2)))
    assert percents == sorted(percents), "progress went backwards"
    assert lines[-1] == "stage: done 100"
    names = [STAGE_RE.match(x).group(1) for x in lines]
    for expected in ("fetch", "bootstrap", "customize", "mkfs", "done"):
        assert expected in names


def test_filesystems(debian_image, rootfs, seed):
    sb = rootfs.superblock()
    assert sb["Filesystem volume name"] == "rootfs"
    assert sb["Filesystem state"] == "clean"
    assert os.path.getsize(debian_image.rootfs) == 2048 * 1024 * 1024
    sb = seed.superblock()
    assert sb["Filesystem volume name"] == "banger-work"
    assert sb["Block size"] == "4096"  # grown later by resize2fs
    assert os.path.getsize(debian_image.seed) == 64 * 1024 * 1024
    for img in (debian_image.rootfs, debian_image.seed):
        r = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_size_budget(debian_image):
    """Allocated size stays under 850 MiB with the baseline, build-essential
    included (about 805 MiB; packages-debian.txt says why it is not 600)."""
    allocated = os.stat(debian_image.rootfs).st_blocks * 512
    assert allocated < 850 * 1024 * 1024, "rootfs allocates %d MiB" % (allocated >> 20)
    assert os.stat(debian_image.seed).st_blocks * 512 < 16 * 1024 * 1024


def test_c_toolchain_installed(rootfs):
    """build-essential is part of the baseline: cc, make and libc headers."""
    for path in ("/usr/bin/gcc", "/usr/bin/g++", "/usr/bin/make",
                 "/usr/include/stdio.h"):
        assert rootfs.stat(path) is not None, path


# ------------------------------------------------------------------------- SSH

def test_sshd_dropin(rootfs):
    text = rootfs.text("/etc/ssh/sshd_config.d/00-banger.conf")
    assert text is not None
    settings = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            k, v = line.split(None, 1)
            settings.setdefault(k, []).append(v)
    assert settings == {
        "PermitRootLogin": ["prohibit-password"],
        "PasswordAuthentication": ["no"],
        "KbdInteractiveAuthentication": ["no"],
        "AuthorizedKeysFile": ["/etc/ssh/banger/%u.keys .ssh/authorized_keys"],
        "HostKey": ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ecdsa_key"],
    }
    # Debian's sshd_config reads the drop-ins first (first value wins).
    main = rootfs.text("/etc/ssh/sshd_config")
    include = main.index("Include /etc/ssh/sshd_config.d/*.conf")
    m = re.search(r"^\s*(PermitRootLogin|PasswordAuthentication)\s", main, re.M)
    assert m is None or m.start() > include


def test_authorized_key_is_the_bundle_key(debian_image, rootfs):
    assert rootfs.text("/etc/ssh/banger/root.keys") == TEST_PUBKEY
    st = rootfs.stat("/etc/ssh/banger/root.keys")
    assert (st["type"], st["mode"], st["uid"], st["gid"]) == ("regular", 0o644, 0, 0)
    for d in ("/etc/ssh/banger", "/etc/ssh", "/etc"):
        st = rootfs.stat(d)
        assert (st["type"], st["uid"]) == ("directory", 0), d
        assert st["mode"] & 0o022 == 0, "%s is group/world writable (StrictModes)" % d


def test_no_host_keys_baked_in(rootfs):
    names = rootfs.ls("/etc/ssh")
    assert names, "no /etc/ssh"
    assert [n for n in names if n.startswith("ssh_host_")] == []


def test_hostkeys_unit(rootfs):
    s = unit_settings(rootfs.text(UNIT_DIR + "/banger-hostkeys.service"))
    assert s["Type"] == ["oneshot"]
    (cmd,) = s["ExecStart"]
    assert "/usr/bin/ssh-keygen" in cmd and "ed25519 ecdsa" in cmd and "rsa" not in cmd
    assert "ssh.service" in s["Before"][0].split()
    # Early, as sshd is: after / is writable, not after sysinit.target.
    assert s["DefaultDependencies"] == ["no"]
    assert s["After"] == ["systemd-remount-fs.service"]
    assert rootfs.stat("/usr/bin/ssh-keygen")["type"] == "regular"
    # Keys bangerd wrote before the first boot skip it without a process.
    assert sorted(s["ConditionFileNotEmpty"]) == [
        "|!/etc/ssh/ssh_host_ecdsa_key", "|!/etc/ssh/ssh_host_ed25519_key"]


# ----------------------------------------------------------------- accounts

def test_root_shell_is_bash_and_sh_is_dash(rootfs):
    passwd = rootfs.text("/etc/passwd").splitlines()
    root = [line for line in passwd if line.startswith("root:")]
    assert root == ["root:x:0:0:root:/root:/bin/bash"]
    shadow = [line for line in rootfs.text("/etc/shadow").splitlines()
              if line.startswith("root:")][0]
    assert shadow.split(":")[1] == "*", "root has a password or a locked ('!') field"
    st = rootfs.stat("/bin/sh")
    assert st["type"] == "symlink" and st["link"] == "dash"
    assert rootfs.stat("/usr/bin/dash")["type"] == "regular"
    assert rootfs.stat("/usr/bin/bash")["type"] == "regular"


def test_utf8_locale(rootfs):
    assert rootfs.text("/etc/default/locale") == "LANG=C.UTF-8\n"


def test_per_vm_identity(rootfs):
    assert rootfs.read("/etc/machine-id") == b""
    assert rootfs.text("/etc/hostname") == "banger\n"
    assert rootfs.read("/etc/resolv.conf") is None  # not the build host's


# -------------------------------------------------------------------- units

ENABLED = {
    "multi-user.target.wants/banger-vsock-agent.service": UNIT_DIR + "/banger-vsock-agent.service",
    "local-fs.target.wants/banger-workdisk.service": UNIT_DIR + "/banger-workdisk.service",
    "local-fs.target.wants/banger-shares.service": UNIT_DIR + "/banger-shares.service",
    "multi-user.target.wants/banger-hostkeys.service": UNIT_DIR + "/banger-hostkeys.service",
    "ssh.service.requires/banger-hostkeys.service": UNIT_DIR + "/banger-hostkeys.service",
    "sysinit.target.wants/banger-guest.service": UNIT_DIR + "/banger-guest.service",
}


@pytest.mark.parametrize("link", sorted(ENABLED))
def test_units_enabled(rootfs, link):
    st = rootfs.stat(WANTS + "/" + link)
    assert st is not None, "%s is not enabled" % link
    assert st["type"] == "symlink" and st["link"] == ENABLED[link]
    unit = rootfs.stat(ENABLED[link])
    assert (unit["type"], unit["mode"], unit["uid"]) == ("regular", 0o644, 0)


def test_unit_files_match_the_repo(rootfs):
    for name in ("banger-vsock-agent", "banger-workdisk", "banger-shares", "banger-hostkeys",
                 "banger-guest"):
        assert rootfs.read("%s/%s.service" % (UNIT_DIR, name)) == \
            repo_file("files", name + ".service")


def test_boot_extras_masked(rootfs):
    for unit in ("getty-static.service", "getty@tty1.service",
                 "e2scrub_reap.service", "modprobe@configfs.service",
                 "modprobe@dm_mod.service", "modprobe@efi_pstore.service",
                 "modprobe@fuse.service", "modprobe@loop.service",
                 "systemd-modules-load.service", "sys-kernel-debug.mount",
                 "sys-kernel-tracing.mount", "dev-hugepages.mount"):
        st = rootfs.stat(WANTS + "/" + unit)
        assert st is not None and st["link"] == "/dev/null", unit
    # The image has no kernel modules for those units to load.
    assert not rootfs.ls("/usr/lib/modules")


MASKED_GENERATORS = ("systemd-gpt-auto-generator", "systemd-cryptsetup-generator",
                     "systemd-integritysetup-generator", "systemd-veritysetup-generator",
                     "systemd-hibernate-resume-generator", "systemd-system-update-generator",
                     "systemd-run-generator", "systemd-debug-generator",
                     "systemd-getty-generator")


def test_generators_masked(rootfs):
    d = "/etc/systemd/system-generators/"
    for g in MASKED_GENERATORS:
        assert rootfs.stat("/usr/lib/systemd/system-generators/" + g) is not None, g
        st = rootfs.stat(d + g)
        assert st is not None and st["link"] == "/dev/null", g
    for g in ("systemd-fstab-generator", "systemd-rc-local-generator",
              "systemd-sysv-generator"):
        assert rootfs.stat(d + g) is None, g + " must stay"
    # What the getty generator did for console=ttyS0, done once here.
    st = rootfs.stat(WANTS + "/getty.target.wants/serial-getty@ttyS0.service")
    assert st is not None and st["link"] == "/lib/systemd/system/serial-getty@.service"


def test_needs_update_stamps(rootfs):
    """/etc/.updated and /var/.updated as systemd-update-done writes them,
    with /usr's mtime: ConditionNeedsUpdate= units (sysusers) skip."""
    usr = rootfs.stat("/usr")
    for d in ("/etc", "/var"):
        st = rootfs.stat(d + "/.updated")
        assert st is not None and st["mtime"] == usr["mtime"], d
        assert re.fullmatch(r"TIMESTAMP_NSEC=\d+\n", rootfs.text(d + "/.updated")), d


def test_no_dynamic_motd(rootfs):
    assert rootfs.stat("/etc/update-motd.d") is None
    assert rootfs.stat("/etc/motd") is not None


def test_ssh_starts_early(rootfs):
    text = rootfs.read("/etc/systemd/system/ssh.service.d/banger.conf")
    assert text == repo_file("files", "ssh-early.conf")
    s = unit_settings(text.decode())
    assert s["DefaultDependencies"] == ["no"]
    assert set(s["After"][0].split()) == {
        "banger-guest.service", "banger-hostkeys.service",
        "banger-workdisk.service"}
    assert s["Conflicts"] == ["shutdown.target"] and s["Before"] == ["shutdown.target"]
    assert s["ExecStartPre"] == [""]


@pytest.mark.parametrize("unit", [
    "systemd-journal-flush", "systemd-sysctl", "systemd-random-seed",
    "systemd-tmpfiles-setup-dev", "systemd-tmpfiles-setup",
    "systemd-update-utmp"])
def test_early_boot_work_after_sshd(rootfs, unit):
    text = rootfs.read("/etc/systemd/system/%s.service.d/banger.conf" % unit)
    assert text == repo_file("files", "boot-late.conf")
    s = unit_settings(text.decode())
    assert s["After"] == ["ssh.service banger-vsock-agent.service"]
    assert s["Nice"] == ["19"]


def test_tmp_is_emptied_by_banger_guest_not_tmpfiles(rootfs):
    # Debian's "D /tmp" (emptied by systemd-tmpfiles-setup, now after
    # sshd) becomes "d": guest-setup empties /tmp before sshd instead.
    lines = [line.split() for line in
             rootfs.text("/etc/tmpfiles.d/tmp.conf").splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == [["d", "/tmp", "1777", "root", "root", "-"]]
    s = unit_settings(rootfs.text(UNIT_DIR + "/banger-guest.service"))
    assert "ssh.service" in s["Before"][0].split()


@pytest.mark.parametrize("unit", ["systemd-udevd", "systemd-udev-trigger"])
def test_udev_after_sshd(rootfs, unit):
    text = rootfs.read("/etc/systemd/system/%s.service.d/banger.conf" % unit)
    assert text == repo_file("files", "udev-late.conf")
    s = unit_settings(text.decode())
    assert s["After"] == ["ssh.service banger-vsock-agent.service"]
    assert s["Nice"] == ["10"]


def test_ssh_enabled_and_apt_timers_off(rootfs):
    wants = rootfs.ls(WANTS + "/multi-user.target.wants")
    assert "ssh.service" in wants
    timers = rootfs.ls(WANTS + "/timers.target.wants")
    assert "apt-daily.timer" not in timers
    assert "apt-daily-upgrade.timer" not in timers


def test_agent_unit(rootfs):
    s = unit_settings(rootfs.text(UNIT_DIR + "/banger-vsock-agent.service"))
    assert s["Type"] == ["simple"]
    assert s["Restart"] == ["always"]
    assert s["ExecStart"] == ["/usr/local/bin/banger-vsock-agent --listen vsock:1024"]
    assert s["DefaultDependencies"] == ["no"]
    after = s["After"][0].split()
    assert "banger-workdisk.service" in after and "local-fs.target" not in after
    assert s["Conflicts"] == ["shutdown.target"] and s["Before"] == ["shutdown.target"]


def test_workdisk_unit(rootfs):
    s = unit_settings(rootfs.text(UNIT_DIR + "/banger-workdisk.service"))
    assert s["Type"] == ["oneshot"]
    assert s["DefaultDependencies"] == ["no"]
    assert s["After"] == ["systemd-journald.socket"]
    assert set(s["Before"][0].split()) == {"local-fs.target", "ssh.service",
                                           "banger-vsock-agent.service"}
    assert s["ExecStart"] == [
        "/usr/local/lib/banger/mount-work",
        "/usr/local/lib/banger/repair-root --state /run/banger/layout-state /root"]


def test_shares_unit(rootfs):
    s = unit_settings(rootfs.text(UNIT_DIR + "/banger-shares.service"))
    assert s["Type"] == ["oneshot"]
    assert s["ConditionKernelCommandLine"] == ["banger.mount"]
    assert s["DefaultDependencies"] == ["no"]
    assert set(s["After"][0].split()) == {"systemd-journald.socket",
                                          "systemd-remount-fs.service",
                                          "banger-workdisk.service"}
    assert set(s["Before"][0].split()) == {"local-fs.target", "ssh.service",
                                           "banger-vsock-agent.service"}
    assert s["ExecStart"] == ["/usr/local/lib/banger/mount-shares"]
    # What it orders itself after is in the image.
    assert rootfs.stat("/usr/lib/systemd/system/systemd-remount-fs.service") is not None


def test_guest_unit(rootfs):
    s = unit_settings(rootfs.text(UNIT_DIR + "/banger-guest.service"))
    assert s["ExecStart"] == ["/usr/local/lib/banger/guest-setup"]
    assert "ssh.service" in s["Before"][0].split()


# ------------------------------------------------------------ installed files

def dump(fs, path):
    data = fs.read(path)
    assert data is not None, path + " is missing"
    return data


def test_agent_installed(rootfs):
    st = rootfs.stat("/usr/local/bin/banger-vsock-agent")
    assert (st["type"], st["mode"], st["uid"]) == ("regular", 0o755, 0)
    with open(agent_path(), "rb") as f:
        assert dump(rootfs, "/usr/local/bin/banger-vsock-agent") == f.read()


@pytest.mark.parametrize("name", ["repair-root", "guest-setup", "mount-work", "mount-shares"])
def test_boot_helpers_installed(rootfs, name):
    path = "/usr/local/lib/banger/" + name
    st = rootfs.stat(path)
    assert (st["type"], st["mode"], st["uid"]) == ("regular", 0o755, 0)
    assert dump(rootfs, path) == repo_file("files", name)


def test_mise_and_opencode(rootfs):
    for name in ("mise", "opencode"):
        st = rootfs.stat("/usr/local/bin/" + name)
        assert (st["type"], st["mode"], st["uid"]) == ("regular", 0o755, 0), name
        assert st["size"] > 10 * 1024 * 1024, name
    assert rootfs.stat("/usr/bin/node") is None, "no Node in the guest"
    bashrc = rootfs.text("/etc/bash.bashrc")
    assert "mise activate bash" in bashrc


def test_fstab(rootfs):
    lines = [line.split() for line in rootfs.text("/etc/fstab").splitlines()
             if line.strip() and not line.startswith("#")]
    # The work disk is banger-workdisk.service's (mount-work), not fstab's:
    # an fstab line would make systemd wait for udev to announce it.  The
    # root is mounted read-write by the initrd: a line for it would only
    # have systemd-remount-fs run mount(8) again on sshd's path.
    assert lines == []


def test_baseline_packages_installed(rootfs):
    for path in ("/usr/bin/git", "/usr/bin/curl", "/usr/bin/tmux", "/usr/bin/jq",
                 "/usr/bin/make", "/usr/sbin/sshd", "/usr/sbin/ip", "/usr/bin/udevadm",
                 "/usr/bin/kmod", "/usr/bin/ssh-keygen", "/usr/bin/cmp",
                 "/etc/ssl/certs/ca-certificates.crt", "/usr/lib/systemd/systemd"):
        assert rootfs.stat(path) is not None, path + " missing"
    st = rootfs.stat("/sbin/init")
    assert st and st["type"] == "symlink"
    # Documentation is excluded from the image (size).
    assert [n for n in rootfs.ls("/usr/share/man")] == []


def test_image_info(debian_image, rootfs):
    text = rootfs.text("/etc/banger/image-info")
    info = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    pins = read_versions()
    assert info["builder"] == "make-rootfs.sh"
    assert info["builder_version"].isdigit()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["built_at"])
    assert re.fullmatch(r"[0-9a-f]{64}", info["packages_sha256"])
    assert "openssh-server" in info["packages"].split()
    assert info["mise_version"] == pins["MISE_VERSION"]
    assert info["opencode_version"] == pins["OPENCODE_VERSION"]
    assert info["tmux_plugins"] == "installed"
    assert (info["tmux_resurrect_commit"], info["tmux_continuum_commit"]) == \
        debian_image.plugin_commits


def test_tmux_plugins_and_config(rootfs):
    base = "/usr/share/banger/tmux-plugins"
    for name, entry in (("tmux-resurrect", "resurrect.tmux"), ("tmux-continuum", "continuum.tmux")):
        st = rootfs.stat("%s/%s/%s" % (base, name, entry))
        assert st is not None, name + " missing"
        assert st["uid"] == 0 and st["mode"] & 0o022 == 0
        assert rootfs.stat("%s/%s/scripts/helpers.sh" % (base, name)) is not None
    conf = rootfs.text("/etc/tmux.conf")
    assert conf.encode() == repo_file("files", "tmux.conf")
    res = conf.index(base + "/tmux-resurrect/resurrect.tmux")
    con = conf.index(base + "/tmux-continuum/continuum.tmux")
    assert res < con, "resurrect must load before continuum"
    assert "@continuum-restore 'on'" in conf


def test_rootfs_root_home_matches_the_seed(rootfs, seed):
    for name in (".bashrc", ".profile", ".tmux.conf"):
        assert rootfs.read("/root/" + name) == seed.read("/" + name)
    assert rootfs.stat("/root")["mode"] == 0o700


# ---------------------------------------------------------------- work seed

def test_work_seed_contents(rootfs, seed):
    names = seed.ls("/")
    assert {".bashrc", ".profile", ".tmux.conf", ".ssh", "lost+found"} <= set(names)
    assert "root" not in names, "the seed itself must not be nested"
    assert seed.read("/.bashrc") == rootfs.read("/etc/skel/.bashrc")
    assert seed.read("/.profile") == rootfs.read("/etc/skel/.profile")
    assert seed.read("/.tmux.conf") == repo_file("files", "root-tmux.conf")
    st = seed.stat("/")
    assert (st["mode"], st["uid"], st["gid"]) == (0o700, 0, 0)
    assert seed.stat("/.ssh")["mode"] == 0o700


def test_work_seed_owned_by_root(seed):
    entries = list(seed.walk("/"))
    assert len(entries) >= 5
    bad = [(p, u, g) for p, _, u, g in entries if (u, g) != (0, 0)]
    assert bad == []


# ----------------------------------------------------------- plugin modes

def test_auto_mode_builds_without_unreachable_plugins(image_without_plugins):
    img = image_without_plugins
    info = img.kept("/etc/banger/image-info").decode()
    assert "tmux_plugins=unavailable" in info.splitlines()
    assert img.kept_listing("/usr/share/banger/tmux-plugins") is None
    assert img.kept("/usr/share/banger/tmux-plugins") is None
    assert "WARNING" in img.log
    assert "building WITHOUT them" in img.log
    assert img.stages.splitlines()[-1] == "stage: done 100"
    # tmux.conf only loads what is there.
    assert b"if-shell 'test -f /usr/share/banger/tmux-plugins/tmux-resurrect/resurrect.tmux'" \
        in img.kept("/etc/tmux.conf")


# --------------------------------------------------------- failure cleanup

def run_failing(tmp_path, env_extra, extra_args=()):
    out = tmp_path / "out"
    pub = tmp_path / "k.pub"
    pub.write_text(TEST_PUBKEY)
    env = dict(os.environ, **env_extra)
    r = subprocess.run([MAKE_ROOTFS, "--out", str(out), "--agent", agent_path(),
                        "--pubkey", str(pub), "--cache", ROOTFS_CACHE] + list(extra_args),
                       env=env, capture_output=True, text=True, timeout=600)
    return r, out


def cache_leftovers():
    found = []
    for dirpath, _, filenames in os.walk(ROOTFS_CACHE):
        found += [os.path.join(dirpath, n) for n in filenames if n.startswith(".tmp.")]
    return found


def test_required_plugins_failure_leaves_nothing(debian_image, tmp_path):
    before = cache_leftovers()
    r, out = run_failing(tmp_path, {"BANGER_TMUX_RESURRECT_URL": "/nonexistent/repo.git"},
                         ["--tmux-plugins", "required"])
    assert r.returncode != 0
    assert "tmux plugins are required" in r.stderr
    assert "removed the partial output" in r.stderr
    assert os.listdir(out) == []
    assert cache_leftovers() == before
    for line in r.stdout.splitlines():
        assert STAGE_RE.match(line), line


def test_bootstrap_failure_leaves_nothing(debian_image, tmp_path):
    """A mirror that refuses connections: mmdebstrap fails after the tree
    was started; no files, temp dirs or mounts remain."""
    r, out = run_failing(tmp_path, {"BANGER_DEBIAN_MIRROR": "http://127.0.0.1:9/debian"},
                         ["--tmux-plugins", "skip"])
    assert r.returncode != 0
    assert "mmdebstrap failed" in r.stderr
    assert os.listdir(out) == []
    with open("/proc/self/mountinfo") as f:
        assert str(out) not in f.read()
    assert "stage: done 100" not in r.stdout


# ------------------------------------------------- manual helpers on a copy

def loop_available():
    return os.path.exists("/dev/loop-control") and shutil.which("losetup") is not None


@pytest.fixture
def image_copy(debian_image, tmp_path):
    if not loop_available():
        pytest.skip("no loop devices here")
    dst = tmp_path / "copy.ext4"
    subprocess.run(["cp", "--sparse=always", debian_image.rootfs, str(dst)], check=True)
    return dst


def test_customize_copy_and_grow(image_copy, tmp_path):
    src = tmp_path / "motd"
    src.write_text("hello from customize\n")
    r = subprocess.run([os.path.join(ROOTFS, "customize.sh"), str(image_copy),
                        "--grow", "2304", "--copy", "%s:/etc/motd" % src],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(image_copy) == 2304 * 1024 * 1024
    fs = Ext4(str(image_copy))
    assert fs.text("/etc/motd") == "hello from customize\n"
    assert fs.stat("/etc/motd")["uid"] == 0
    info = fs.text("/etc/banger/image-info")
    assert "customized_copies=" in info and "customized_size_mib=2304" in info
    assert [n for n in fs.ls("/etc/ssh") if n.startswith("ssh_host_")] == []
    assert not [n for n in os.listdir(tmp_path) if ".customize-" in n]


def test_customize_failure_keeps_the_image(image_copy, tmp_path):
    before = os.stat(image_copy)
    with open(image_copy, "rb") as f:
        head = f.read(1 << 20)
    r = subprocess.run([os.path.join(ROOTFS, "customize.sh"), str(image_copy),
                        "--grow", "100"], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "is unchanged" in r.stderr
    assert os.stat(image_copy).st_size == before.st_size
    with open(image_copy, "rb") as f:
        assert f.read(1 << 20) == head
    assert not [n for n in os.listdir(tmp_path) if ".customize-" in n]


def test_interactive_runs_a_command_and_cleans_up(image_copy, debian_image):
    r = subprocess.run([os.path.join(ROOTFS, "interactive.sh"), str(image_copy),
                        "--work-seed", debian_image.seed, "--",
                        "/bin/sh", "-c", "cat /etc/ssh/banger/root.keys; ls -a /root; "
                        "/usr/local/lib/banger/repair-root /root"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert TEST_PUBKEY in r.stdout
    assert ".tmux.conf" in r.stdout
    assert r.stdout.rstrip().endswith("ok")
    with open("/proc/self/mountinfo") as f:
        assert str(image_copy) not in f.read()
    losetup = subprocess.run(["losetup", "-j", str(image_copy)], capture_output=True, text=True)
    assert losetup.stdout.strip() == ""


def test_interactive_exit_status_passes_through(image_copy):
    r = subprocess.run([os.path.join(ROOTFS, "interactive.sh"), str(image_copy), "--",
                        "/bin/sh", "-c", "exit 7"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 7


def test_guest_setup_in_the_image(image_copy, tmp_path):
    """The installed guest-setup, run by the image's own dash against a
    scratch etc: hostname and resolv.conf from a banger cmdline."""
    script = ("mkdir -p /tmp/g/etc && cp /etc/hosts /tmp/g/etc/ && "
              "echo 'console=ttyS0 ip=172.30.0.2::172.30.0.1:255.255.255.0:web:eth0:off:172.30.0.1 "
              "banger.hostname=web banger.agent_port=1024' > /tmp/cmdline && "
              "/usr/local/lib/banger/guest-setup --cmdline /tmp/cmdline --root /tmp/g && "
              "cat /tmp/g/etc/hostname /tmp/g/etc/resolv.conf /tmp/g/etc/hosts")
    r = subprocess.run([os.path.join(ROOTFS, "interactive.sh"), str(image_copy), "--",
                        "/bin/sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "web\n" in r.stdout
    assert "nameserver 172.30.0.1" in r.stdout
    assert "127.0.1.1\tweb" in r.stdout
