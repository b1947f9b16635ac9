"""The image scripts themselves: shellcheck, --help, argument errors, and
guest-setup on fixture command lines.  Nothing here needs root or network."""
import os
import shutil
import stat
import subprocess

import pytest

from debimage import ROOTFS, TEST_PUBKEY

MINE = ["make-rootfs.sh", "customize.sh", "interactive.sh"]
POSIX = ["files/repair-root", "files/guest-setup", "files/mount-work",
         "files/mount-shares"]
GUEST_SETUP = os.path.join(ROOTFS, "files", "guest-setup")


def script(name):
    return os.path.join(ROOTFS, name)


def run(argv, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def shellcheck():
    sc = shutil.which("shellcheck")
    if sc is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    return sc


@pytest.mark.parametrize("name", MINE)
def test_shellcheck_bash(shellcheck, name):
    r = run([shellcheck, script(name)])
    assert r.returncode == 0, r.stdout
    with open(script(name)) as f:
        text = f.read()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "eval " not in text


@pytest.mark.parametrize("name", POSIX)
def test_shellcheck_posix(shellcheck, name):
    r = run([shellcheck, "-s", "sh", script(name)])
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("name", MINE + POSIX)
def test_executable(name):
    assert os.stat(script(name)).st_mode & stat.S_IXUSR


@pytest.mark.parametrize("name", MINE)
def test_help(name):
    r = run([script(name), "--help"])
    assert r.returncode == 0, r.stderr
    assert "usage: " + name in r.stdout
    r = run([script(name), "-h"])
    assert r.returncode == 0


# ------------------------------------------------------------ make-rootfs.sh

@pytest.fixture
def inputs(tmp_path):
    pub = tmp_path / "id.pub"
    pub.write_text(TEST_PUBKEY)
    agent = tmp_path / "agent"
    shutil.copy("/bin/true", agent)
    return {"pub": str(pub), "agent": str(agent), "out": str(tmp_path / "out"), "tmp": tmp_path}


def make_rootfs(*argv):
    return run([script("make-rootfs.sh")] + list(argv))


@pytest.mark.parametrize("drop", ["--out", "--agent", "--pubkey"])
def test_make_rootfs_requires(inputs, drop):
    args = {"--out": inputs["out"], "--agent": inputs["agent"], "--pubkey": inputs["pub"]}
    del args[drop]
    argv = [x for kv in args.items() for x in kv]
    r = make_rootfs(*argv)
    assert r.returncode == 2
    assert drop + " is required" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("extra,message", [
    (["--size", "abc"], "--size must be"),
    (["--size", "100"], "--size must be"),
    (["--tmux-plugins", "maybe"], "--tmux-plugins must be"),
    (["--bogus"], "unknown argument: --bogus"),
    (["--cache"], "--cache needs a value"),
    (["--out="], "--out needs a value"),
])
def test_make_rootfs_bad_arguments(inputs, extra, message):
    r = make_rootfs("--out", inputs["out"], "--agent", inputs["agent"],
                    "--pubkey", inputs["pub"], *extra)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert r.stdout == ""
    assert not os.path.exists(inputs["out"])


def test_make_rootfs_equals_form(inputs):
    r = make_rootfs("--out=" + inputs["out"], "--agent=" + inputs["agent"],
                    "--pubkey=" + inputs["pub"], "--size=12")
    assert r.returncode == 2 and "--size must be" in r.stderr


def test_make_rootfs_rejects_a_non_elf_agent(inputs):
    bad = inputs["tmp"] / "agent.sh"
    bad.write_text("#!/bin/sh\n")
    r = make_rootfs("--out", inputs["out"], "--agent", str(bad), "--pubkey", inputs["pub"])
    assert r.returncode == 1
    assert "not an ELF executable" in r.stderr


@pytest.mark.parametrize("content", [
    "",
    "not a key\n",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA=\n-----END OPENSSH PRIVATE KEY-----\n",
    TEST_PUBKEY + "garbage line\n",
    "ssh-ed25519 AAAA$(reboot)\n",
])
def test_make_rootfs_rejects_bad_keys(inputs, content):
    bad = inputs["tmp"] / "bad.pub"
    bad.write_text(content)
    r = make_rootfs("--out", inputs["out"], "--agent", inputs["agent"], "--pubkey", str(bad))
    assert r.returncode == 1
    assert "public key" in r.stderr
    assert not os.path.exists(inputs["out"])


def test_make_rootfs_missing_files(inputs):
    r = make_rootfs("--out", inputs["out"], "--agent", "/nonexistent", "--pubkey", inputs["pub"])
    assert r.returncode == 1 and "not a readable file" in r.stderr
    r = make_rootfs("--out", inputs["out"], "--agent", inputs["agent"], "--pubkey", "/nonexistent")
    assert r.returncode == 1 and "not a readable file" in r.stderr


def test_make_rootfs_bad_package_list(inputs):
    lst = inputs["tmp"] / "pkgs.txt"
    lst.write_text("git\ncurl; rm -rf /\n")
    r = make_rootfs("--out", inputs["out"], "--agent", inputs["agent"],
                    "--pubkey", inputs["pub"], "--packages", str(lst))
    assert r.returncode == 1
    assert "bad package name" in r.stderr or "must run as root" in r.stderr


def test_package_list_is_valid():
    import re
    names = []
    with open(script("packages-debian.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                assert re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", line), line
                names.append(line)
    assert len(names) == len(set(names))
    for needed in ("git", "curl", "build-essential", "tmux", "jq"):
        assert needed in names


def test_versions_env_is_parseable():
    import re
    keys = {}
    with open(script("versions.env")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=([A-Za-z0-9@/._:+=-]*)", line)
            assert m, line
            keys[m.group(1)] = m.group(2)
    for k in ("MISE_VERSION", "OPENCODE_VERSION", "MISE_SHA256", "OPENCODE_SHA256"):
        assert keys[k]
    assert keys["OPENCODE_NPM_PACKAGE"] == "opencode-linux-x64-baseline"
    assert keys["MISE_NPM_PACKAGE"] == "@jdxcode/mise-linux-x64"
    for k in ("TMUX_RESURRECT_COMMIT", "TMUX_CONTINUUM_COMMIT"):
        assert re.fullmatch(r"[0-9a-f]{40}", keys[k])
    for k in ("MISE_SHA256", "OPENCODE_SHA256"):
        assert re.fullmatch(r"[0-9a-f]{64}", keys[k])


# ------------------------------------------------- customize / interactive

@pytest.mark.parametrize("argv,message", [
    ([], "IMAGE is required"),
    (["img"], "nothing to do"),
    (["img", "--bogus"], "unknown option: --bogus"),
    (["img", "--install"], "--install needs at least one package"),
    (["img", "--install", "--copy", "a:/b"], "--install needs at least one package"),
    (["img", "--install", "Bad_Name"], "not a Debian package name"),
    (["img", "--copy"], "--copy needs SRC:DST"),
    (["img", "--copy", "a:relative"], "absolute DST"),
    (["img", "--grow", "big"], "--grow needs a size"),
    (["a.img", "b.img", "--grow", "10"], "only one IMAGE"),
])
def test_customize_argument_errors(argv, message):
    r = run([script("customize.sh")] + argv)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "usage: customize.sh" in r.stderr


def test_customize_missing_image(tmp_path):
    r = run([script("customize.sh"), str(tmp_path / "nope.ext4"), "--grow", "10"])
    assert r.returncode == 1
    assert "no such image file" in r.stderr


def test_customize_missing_copy_source(tmp_path):
    img = tmp_path / "x.ext4"
    img.write_bytes(b"")
    r = run([script("customize.sh"), str(img), "--copy", "%s:/etc/x" % (tmp_path / "nope")])
    assert r.returncode == 1
    assert "no such file or directory" in r.stderr


def test_customize_rejects_dotdot(tmp_path):
    img = tmp_path / "x.ext4"
    img.write_bytes(b"")
    src = tmp_path / "f"
    src.write_text("x")
    r = run([script("customize.sh"), str(img), "--copy", "%s:/etc/../../x" % src])
    assert r.returncode == 1
    assert "must not contain '..'" in r.stderr


@pytest.mark.parametrize("argv,message", [
    ([], "IMAGE is required"),
    (["--bogus"], "unknown option: --bogus"),
    (["a.img", "b.img"], "only one IMAGE"),
    (["--work-seed"], "--work-seed needs an image file"),
])
def test_interactive_argument_errors(argv, message):
    r = run([script("interactive.sh")] + argv)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "usage: interactive.sh" in r.stderr


def test_interactive_missing_files(tmp_path):
    r = run([script("interactive.sh"), str(tmp_path / "nope.ext4")])
    assert r.returncode == 1 and "no such image file" in r.stderr
    img = tmp_path / "x.ext4"
    img.write_bytes(b"")
    r = run([script("interactive.sh"), str(img), "--work-seed", str(tmp_path / "nope")])
    assert r.returncode == 1 and "no such work seed file" in r.stderr


# --------------------------------------------------------------- guest-setup

def guest_setup(tmp_path, cmdline, hosts=True):
    root = tmp_path / "g"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    if hosts and not (root / "etc" / "hosts").exists():
        shutil.copy(script("files/hosts"), root / "etc" / "hosts")
    cmd = tmp_path / "cmdline"
    cmd.write_text(cmdline + "\n")
    r = run(["sh", GUEST_SETUP, "--cmdline", str(cmd), "--root", str(root)])
    return r, root / "etc"


def test_guest_setup_banger_cmdline(tmp_path):
    line = ("console=ttyS0 reboot=k panic=1 root=/dev/vda rw "
            "ip=172.30.0.2::172.30.0.1:255.255.255.0:web:eth0:off:172.30.0.1 "
            "banger.hostname=web banger.agent_port=1024 banger.workdev=/dev/vdb")
    r, etc = guest_setup(tmp_path, line)
    assert r.returncode == 0, r.stderr
    assert (etc / "hostname").read_text() == "web\n"
    assert (etc / "resolv.conf").read_text().splitlines()[1:] == ["nameserver 172.30.0.1"]
    hosts = (etc / "hosts").read_text()
    assert "127.0.0.1\tlocalhost" in hosts and hosts.endswith("127.0.1.1\tweb\n")
    # Idempotent: a second boot rewrites nothing.
    before = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in etc.iterdir()}
    r, etc = guest_setup(tmp_path, line)
    assert r.returncode == 0
    assert {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in etc.iterdir()} == before
    # A new name replaces the old 127.0.1.1 line.
    r, etc = guest_setup(tmp_path, line.replace("banger.hostname=web", "banger.hostname=db"))
    hosts = (etc / "hosts").read_text()
    assert "web" not in hosts.replace("webx", "") and "127.0.1.1\tdb" in hosts


def test_guest_setup_two_dns_servers(tmp_path):
    r, etc = guest_setup(tmp_path, "ip=10.0.0.2::10.0.0.1:255.255.255.0:x:eth0:off:10.0.0.1:9.9.9.9")
    assert r.returncode == 0, r.stderr
    assert (etc / "resolv.conf").read_text().splitlines()[1:] == [
        "nameserver 10.0.0.1", "nameserver 9.9.9.9"]
    assert (etc / "hostname").read_text() == "x\n"  # from ip= when no banger.hostname


def test_guest_setup_without_dns_leaves_resolv_conf(tmp_path):
    (tmp_path / "g" / "etc").mkdir(parents=True)
    (tmp_path / "g" / "etc" / "resolv.conf").write_text("nameserver 1.1.1.1\n")
    r, etc = guest_setup(tmp_path, "ip=172.30.0.2::172.30.0.1:255.255.255.0:web:eth0:off banger.hostname=web")
    assert r.returncode == 0, r.stderr
    assert (etc / "resolv.conf").read_text() == "nameserver 1.1.1.1\n"


@pytest.mark.parametrize("bad", ["-lead", "under_score", "a" * 64, "semi;colon", "sp$ce"])
def test_guest_setup_ignores_bad_values(tmp_path, bad):
    r, etc = guest_setup(tmp_path, "banger.hostname=%s ip=1.2.3.4::1.2.3.1:255.0.0.0::eth0:off:1.2.3.$(x)" % bad)
    assert r.returncode == 0, r.stderr
    assert not (etc / "hostname").exists()
    assert not (etc / "resolv.conf").exists()
    assert "ignoring" in r.stderr


def test_guest_setup_nothing_on_the_cmdline(tmp_path):
    r, etc = guest_setup(tmp_path, "console=ttyS0 * ?")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in etc.iterdir()) == ["hosts"]


def test_guest_setup_empties_tmp(tmp_path):
    # As systemd-tmpfiles-setup would at boot, before sshd: everything in
    # /tmp goes, dot files and trees included; a symlink is removed, not
    # followed.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    tmp = tmp_path / "g" / "tmp"
    (tmp / "tree" / "deep").mkdir(parents=True)
    (tmp / "tree" / "deep" / "f").write_text("x")
    for name in ("a", ".hidden", "..dots", "-dash", "sp ace"):
        (tmp / name).write_text("x")
    (tmp / "link").symlink_to(outside)
    r, etc = guest_setup(tmp_path, "console=ttyS0")
    assert r.returncode == 0, r.stderr
    assert tmp.is_dir() and list(tmp.iterdir()) == []
    assert (outside / "keep").exists()
    # Already empty (a first boot): nothing to do, no program started.
    r, etc = guest_setup(tmp_path, "console=ttyS0")
    assert r.returncode == 0 and list(tmp.iterdir()) == []


def test_guest_setup_leaves_a_tmp_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("x")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "tmp").symlink_to(target)
    r, etc = guest_setup(tmp_path, "console=ttyS0")
    assert r.returncode == 0, r.stderr
    assert (target / "keep").exists()


def test_guest_setup_usage():
    r = run(["sh", GUEST_SETUP, "--bogus"])
    assert r.returncode == 2
    r = run(["sh", GUEST_SETUP, "--help"])
    assert r.returncode == 0 and "usage: guest-setup" in r.stdout


# ------------------------------------------------------- banger-hostkeys unit

def hostkeys_command(etc_ssh):
    """The unit's ExecStart as sh would run it ($$ is systemd's $), with
    /etc/ssh moved to a scratch dir."""
    with open(script("files/banger-hostkeys.service")) as f:
        line = [x for x in f.read().splitlines() if x.startswith("ExecStart=")]
    assert len(line) == 1
    cmd = line[0][len("ExecStart="):]
    prefix = "/bin/sh -c '"
    assert cmd.startswith(prefix) and cmd.endswith("'")
    body = cmd[len(prefix):-1].replace("$$", "$").replace("/etc/ssh", str(etc_ssh))
    return ["sh", "-c", body]


def test_hostkeys_command_makes_fast_keys_once(tmp_path):
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (openssh-client)")
    etc = tmp_path / "ssh"
    etc.mkdir()
    argv = hostkeys_command(etc)
    if not os.path.exists("/usr/bin/ssh-keygen"):
        pytest.skip("no /usr/bin/ssh-keygen")
    r = run(argv)
    assert r.returncode == 0, r.stderr
    names = sorted(os.listdir(etc))
    assert names == ["ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub",
                     "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]
    assert os.stat(etc / "ssh_host_ed25519_key").st_mode & 0o077 == 0
    before = {n: (etc / n).read_bytes() for n in names}
    r = run(argv)
    assert r.returncode == 0, r.stderr
    assert {n: (etc / n).read_bytes() for n in os.listdir(etc)} == before
    # A missing one is made again, the other is kept.
    (etc / "ssh_host_ecdsa_key").unlink()
    (etc / "ssh_host_ecdsa_key.pub").unlink()
    r = run(argv)
    assert r.returncode == 0, r.stderr
    assert (etc / "ssh_host_ed25519_key").read_bytes() == before["ssh_host_ed25519_key"]
    assert (etc / "ssh_host_ecdsa_key").exists()


# -------------------------------------------------------- banger-shares unit

def unit_file(name):
    """{key: [values]} of a unit file in rootfs/files (comments dropped)."""
    out = {}
    with open(script("files/" + name)) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";", "[")):
                continue
            k, _, v = line.partition("=")
            out.setdefault(k.strip(), []).extend(v.split() or [""])
    return out


def test_shares_unit_runs_only_for_a_vm_with_shares():
    s = unit_file("banger-shares.service")
    # systemd matches the bare word against banger.mount=... words too.
    assert s["ConditionKernelCommandLine"] == ["banger.mount"]
    assert s["ExecStart"] == ["/usr/local/lib/banger/mount-shares"]
    assert s["Type"] == ["oneshot"] and s["RemainAfterExit"] == ["yes"]
    assert s["StandardOutput"] == ["journal+console"]
    assert s["WantedBy"] == ["local-fs.target"]


def test_shares_unit_order():
    """After the work disk (shares may be under /root) and a writable /
    (mount points are made); before sshd and the agent; early, as the
    work disk is, with no ordering loop back to either."""
    s = unit_file("banger-shares.service")
    assert s["DefaultDependencies"] == ["no"]
    assert {"banger-workdisk.service", "systemd-remount-fs.service"} <= set(s["After"])
    assert {"ssh.service", "banger-vsock-agent.service", "local-fs.target"} <= set(s["Before"])
    for other in ("banger-workdisk.service", "banger-vsock-agent.service"):
        o = unit_file(other)
        assert "banger-shares.service" not in o.get("Before", []), other
    assert "banger-shares.service" not in unit_file("ssh-early.conf").get("Before", [])
    work = unit_file("banger-workdisk.service")
    assert set(work["Before"]) >= {"ssh.service", "banger-vsock-agent.service"}
