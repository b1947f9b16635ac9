"""banger vm ssh against a live bangerd, with a stand-in ssh (fake_ssh.py,
through BANGER_SSH) that records its argv and exits with a chosen status.

Interactive sessions run under a pseudo-terminal (ptyrun), since the
reminder only follows a session whose stdin is a terminal."""
import json
import os
import subprocess
import sys

import pytest

from ptyrun import run_pty
from test_cli import (api_get, assert_error, create_args, fails, image, kv,  # noqa: F401
                      ok, run, uniq, vm)

FAKE_SSH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "fake_ssh.py")


@pytest.fixture
def key(daemon):
    """The bundle's private key (the test bundle has none of its own)."""
    path = os.path.join(daemon.runtime, "id_ed25519")
    with open(path, "w") as f:
        f.write("not a real key: the ssh here is a stand-in\n")
    os.chmod(path, 0o600)
    yield os.path.realpath(path)
    os.unlink(path)


@pytest.fixture
def fake_ssh(tmp_path):
    log = str(tmp_path / "ssh.log")
    env = {"BANGER_SSH": FAKE_SSH, "FAKE_SSH_LOG": log}

    def calls():
        if not os.path.exists(log):
            return []
        with open(log) as f:
            return [json.loads(l) for l in f]
    return env, calls


def vm_status(daemon, name):
    return json.loads(ok(run(daemon, "--json", "vm", "show", name)).stdout)


def option(argv, name):
    """Values of every '-o NAME=value' in argv."""
    return [argv[i + 1].split("=", 1)[1] for i in range(len(argv) - 1)
            if argv[i] == "-o" and argv[i + 1].startswith(name + "=")]


def test_ssh_argv_and_exit_status(daemon, vm, key, fake_ssh):
    env, calls = fake_ssh
    r = ok(run(daemon, "vm", "ssh", vm, "--", "echo", "a b", "--", "-x",
               env=env))
    assert r.stderr == "" and r.stdout == ""
    (call,) = calls()
    argv = call["argv"]
    st = vm_status(daemon, vm)
    ip = st["status"]["ip"]
    assert ip, st
    # The bundle's key, this VM's own known hosts, new host keys accepted
    # once, and everything after "--" as the remote command.
    assert argv[argv.index("-i") + 1] == key
    known = option(argv, "UserKnownHostsFile")
    assert known == [os.path.join(os.path.realpath(daemon.state), "vms",
                                  st["id"], "known_hosts")]
    assert option(argv, "StrictHostKeyChecking") == ["accept-new"]
    assert option(argv, "IdentitiesOnly") == ["yes"]
    assert option(argv, "LogLevel") == ["ERROR"]
    assert argv[argv.index("-p") + 1] == "22"
    dd = argv.index("--")
    assert argv[dd + 1:] == ["root@" + ip, "echo", "a b", "--", "-x"]
    # The exit status is ssh's: the remote command's, or 255 from ssh.
    for status in (7, 255):
        e = dict(env, FAKE_SSH_EXIT=str(status))
        r = run(daemon, "vm", "ssh", vm, "--", "false", env=e)
        assert r.returncode == status, r.stderr
        assert "still running" not in r.stderr


def test_ssh_refuses_vm_not_running(daemon, vm, key, fake_ssh):
    env, calls = fake_ssh
    ghost = uniq("ghost")
    assert_error(run(daemon, "vm", "ssh", ghost, env=env), 3,
                 "vm '%s' not found" % ghost)
    ok(run(daemon, "vm", "stop", vm))
    r = run(daemon, "vm", "ssh", vm, "--", "true", env=env)
    assert_error(r, 4, "vm '%s' is stopped, not running" % vm)
    assert "hint: start it first: banger vm start %s" % vm in r.stderr
    assert calls() == [], "ssh is not run for a VM that is not running"


def test_ssh_usage(daemon):
    # A command needs "--" in front of it; flags after "--" are the
    # command's.
    r = fails(run(daemon, "vm", "ssh", "web", "uname"), 2)
    assert "unexpected extra argument 'uname'" in r.stderr
    fails(run(daemon, "vm", "ssh"), 2)
    r = ok(run(daemon, "vm", "ssh", "--help"))
    assert r.stdout.startswith("usage: banger vm ssh NAME")


def test_ssh_without_key_or_binary(daemon, vm, fake_ssh, tmp_path):
    env, calls = fake_ssh
    # No key in the bundle: bangerd says so, nothing runs.
    r = run(daemon, "vm", "ssh", vm, "--", "true", env=env)
    assert_error(r, 4)
    assert "ssh key" in r.stderr and calls() == []
    # No ssh client: 127, as a shell would say.
    keyf = os.path.join(daemon.runtime, "id_ed25519")
    with open(keyf, "w") as f:
        f.write("x\n")
    try:
        r = run(daemon, "vm", "ssh", vm, "--", "true",
                env={"BANGER_SSH": str(tmp_path / "no-such-ssh")})
        assert r.returncode == 127, r.stderr
        assert "banger: cannot run %s" % (tmp_path / "no-such-ssh") in r.stderr
    finally:
        os.unlink(keyf)


def test_reminder_after_interactive_session(daemon, vm, key, fake_ssh):
    env, calls = fake_ssh
    e = dict(daemon.env, **env)
    rc, out = run_pty([daemon.banger, "vm", "ssh", vm], e)
    assert rc == 0, out
    (call,) = calls()
    assert call["stdin_tty"], "ssh gets the terminal"
    line = "%s is still running (health: " % vm
    assert line in out, out
    assert "); stop it with: banger vm stop %s" % vm in out, out
    health = out.split(line, 1)[1].split(")", 1)[0]
    assert health in ("ok", "degraded", "unreachable", "unknown"), out

    # Not with --no-reminder, not after a command, not with -q.
    for args in (["vm", "ssh", vm, "--no-reminder"],
                 ["vm", "ssh", vm, "--", "uptime"],
                 ["-q", "vm", "ssh", vm]):
        rc, out = run_pty([daemon.banger] + args, e)
        assert rc == 0, out
        assert "still running" not in out, (args, out)


def test_no_reminder_when_vm_stopped_or_deleted_meanwhile(daemon, image, key,
                                                          fake_ssh):
    env, calls = fake_ssh
    name = uniq("sess")
    ok(run(daemon, *create_args(name, image)))
    try:
        # The session stops the VM (as 'poweroff' inside it would).
        then = json.dumps([daemon.banger, "vm", "stop", name])
        rc, out = run_pty([daemon.banger, "vm", "ssh", name],
                          dict(daemon.env, FAKE_SSH_THEN=then, **env))
        assert rc == 0, out
        assert kv(ok(run(daemon, "vm", "show", name)).stdout)["state"] == "stopped"
        assert "still running" not in out, out

        ok(run(daemon, "vm", "start", name))
        then = json.dumps([daemon.banger, "vm", "delete", "--force", name])
        rc, out = run_pty([daemon.banger, "vm", "ssh", name],
                          dict(daemon.env, FAKE_SSH_THEN=then,
                               FAKE_SSH_EXIT="255", **env))
        assert rc == 255, out
        assert "still running" not in out and "banger:" not in out, out
        assert len(calls()) == 2
    finally:
        run(daemon, "vm", "delete", "--force", name)


def test_known_hosts_go_with_the_vm(daemon, image, key, fake_ssh):
    """bangerd's known-hosts file is in the VM's directory: deleted with
    the VM, and a new VM of the same name starts without one."""
    env, calls = fake_ssh
    name = uniq("kh")
    ok(run(daemon, *create_args(name, image)))
    try:
        ok(run(daemon, "vm", "ssh", name, "--", "true", env=env))
        first = option(calls()[-1]["argv"], "UserKnownHostsFile")[0]
        with open(first, "w") as f:
            f.write("172.30.0.9 ssh-ed25519 AAAAold\n")
        ok(run(daemon, "vm", "delete", "--force", name))
        assert not os.path.exists(first)
        ok(run(daemon, *create_args(name, image)))
        ok(run(daemon, "vm", "ssh", name, "--", "true", env=env))
        second = option(calls()[-1]["argv"], "UserKnownHostsFile")[0]
        assert second != first and not os.path.exists(second)
    finally:
        run(daemon, "vm", "delete", "--force", name)


def test_known_hosts_of_our_own_when_the_vm_dir_is_not_writable(
        daemon, vm, key, fake_ssh, tmp_path):
    """A user who may not write bangerd's VM directory keeps a file per VM
    id under $XDG_STATE_HOME; files of VMs that are gone are dropped."""
    env, calls = fake_ssh
    vm_id = vm_status(daemon, vm)["id"]
    vm_dir = os.path.join(daemon.state, "vms", vm_id)
    # Root passes permission checks; an immutable directory it cannot
    # write either.
    r = subprocess.run(["chattr", "+i", vm_dir], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip("cannot make %s immutable (chattr: %s)" %
                    (vm_dir, r.stderr.strip()))
    try:
        state = tmp_path / "xdg-state"
        own = state / "banger" / "known_hosts"
        own.mkdir(parents=True)
        stale = own / "0123456789abcdef"
        stale.write_text("old vm\n")
        unrelated = own / "notes.txt"
        unrelated.write_text("kept\n")
        ok(run(daemon, "vm", "ssh", vm, "--", "true",
               env=dict(env, XDG_STATE_HOME=str(state))))
        known = option(calls()[-1]["argv"], "UserKnownHostsFile")
        assert known == [str(own / vm_id)]
        assert not stale.exists(), "known hosts of a VM that is gone"
        assert unrelated.exists()
    finally:
        subprocess.run(["chattr", "-i", vm_dir], check=True)


def test_ssh_pins_the_host_keys_bangerd_made(daemon, key, fake_ssh):
    """An image with sshd gets host keys made by bangerd and written into
    the new VM's rootfs; banger vm ssh writes them as the VM's known hosts
    and has ssh check them (StrictHostKeyChecking=yes)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
    from daemon import make_ext4
    env, calls = fake_ssh
    name, img = uniq("pin"), uniq("sshd")
    d = os.path.join(daemon.dir, "img-" + img)
    os.makedirs(d)
    rootfs = make_ext4(os.path.join(d, "rootfs.ext4"), 32,
                       {"etc/ssh/sshd_config": "Port 22\n"})
    ok(run(daemon, "image", "register", "--name", img, "--rootfs", rootfs))
    try:
        ok(run(daemon, *create_args(name, img)))
        st = vm_status(daemon, name)
        keys = api_get(daemon, "/v1/vms/%s/ssh" % name)["host_keys"]
        assert [k.split()[0] for k in keys] == ["ssh-ed25519",
                                                "ecdsa-sha2-nistp256"]
        # They are the VM's: in its rootfs, where its sshd reads them.
        vmroot = os.path.join(daemon.state, "vms", st["id"], "rootfs.ext4")
        r = subprocess.run(["/sbin/debugfs", "-R",
                            "cat /etc/ssh/ssh_host_ed25519_key.pub", vmroot],
                           capture_output=True, text=True)
        assert r.stdout.startswith(keys[0] + " "), r
        ok(run(daemon, "vm", "ssh", name, "--", "true", env=env))
        (call,) = calls()
        argv = call["argv"]
        assert option(argv, "StrictHostKeyChecking") == ["yes"]
        (known,) = option(argv, "UserKnownHostsFile")
        with open(known) as f:
            assert f.read() == "".join("%s %s\n" % (st["status"]["ip"], k)
                                       for k in keys)
        # Nothing private left on the host.
        hk = os.path.join(daemon.state, "vms", st["id"], "hostkeys")
        assert sorted(os.listdir(hk)) == ["ssh_host_ecdsa_key.pub",
                                          "ssh_host_ed25519_key.pub"]
    finally:
        run(daemon, "vm", "delete", "--force", name)
        run(daemon, "image", "delete", img)
