"""Real boots through bangerd, with the runtime bundle (`make runtime-bundle`):
the Debian default image on the kernel and initrd of the bundle, through
the QEMU driver (TCG here: this machine's KVM cannot boot a standard guest).

bangerd runs in a named network namespace of its own (so a restarted
daemon finds its bridge and TAPs again, and nothing touches the host's
network); the host side of every check (ssh, dig, verify.sh) runs in it.

- verify.sh --nat: the whole smoke test, plus NAT to a stand-in outside
  world and the rules gone after stop;
- two VMs booted at once: health through the real agent, `<name>.vm` from
  the host's point of view, `banger vm ssh` running a command with its exit
  status passed through, bangerd restarted while they run (they keep
  running and are adopted), delete leaves no process.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from daemon import BANGER, netns_daemon

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from ptyrun import run_pty_typing  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUNTIME = os.path.abspath(os.environ.get("BANGER_E2E_RUNTIME")
                          or os.path.join(REPO, "runtime"))
BUNDLE_PARTS = ("bundle.json", "vmlinux", "initrd.img", "rootfs-docker.ext4",
                "work-seed.ext4", "id_ed25519", "banger-vsock-agent")
# TCG boots of the Debian image take 30-40 s alone, more with two at once
# or a loaded CI machine.
BOOT_S = 300


def qemu_missing():
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (make deps installs it)"
    if os.geteuid() != 0:
        return "needs root for TAP networking and network namespaces"
    return None


@pytest.fixture(scope="module")
def e2e():
    why = qemu_missing()
    if why:
        pytest.skip(why)
    missing = [p for p in BUNDLE_PARTS
               if not os.path.exists(os.path.join(RUNTIME, p))]
    assert not missing, "runtime bundle %s lacks %s: run make runtime-bundle" % (
        RUNTIME, ", ".join(missing))
    with netns_daemon("bge2e", runtime=RUNTIME,
                      config={"health_timeout_s": BOOT_S,
                              "stop_grace_s": 30}) as d:
        yield d


def console_tail(api, name, size=4000):
    """The end of a VM's serial console, for a failed boot's message."""
    r = api.get("/v1/vms/%s/console?tail=%d" % (name, size), validate=False)
    return "console of %s (HTTP %d):\n%s" % (name, r.status_code, r.text)


def in_ns(d, argv, timeout=120, env=None, input=None):
    """Run argv in the daemon's network namespace, with its environment."""
    e = dict(d.env)
    e.update(env or {})
    return subprocess.run(["nsenter", "--net=/run/netns/" + d.ns] + argv,
                          env=e, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, input=input)


def banger(d, *args, timeout=120):
    return in_ns(d, [BANGER] + list(args), timeout=timeout)


def wait_until(what, fn, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(2)
    raise AssertionError("timed out waiting for " + what + ": " + repr(last))


def dura(api):
    """The VM several tests share, booted by the first that needs it."""
    vm = api.get("/v1/vms/dura")
    if vm.status_code == 404:
        op = api.post("/v1/vms", {"name": "dura", "vcpus": 1},
                      params={"wait": BOOT_S + 60}).json()
        assert op["state"] == "succeeded", (op, console_tail(api, "dura"))
        vm = api.get("/v1/vms/dura")
    return vm.json()


def test_verify_with_nat(e2e):
    r = in_ns(e2e, ["./verify.sh", "--nat"], timeout=1200)
    out = r.stdout + r.stderr
    print(out)
    assert r.returncode == 0, out + "\n" + e2e.read_log()
    assert "not ok" not in out
    assert "NAT: the guest reaches the outside world" in out


def test_two_vms_dns_ssh_restart(e2e):
    api = e2e.client
    ops = []
    for name in ("e2ea", "e2eb"):
        r = api.post("/v1/vms", {"name": name, "vcpus": 1, "memory_mib": 512})
        assert r.status_code == 202, r.text
        ops.append(r.json())
    for op in ops:
        done = api.wait_op(op, timeout=BOOT_S + 60)
        assert done["state"] == "succeeded", "%s\n%s" % (
            done, console_tail(api, op["target"]))
    vms = {}
    for name in ("e2ea", "e2eb"):
        vm = api.get("/v1/vms/" + name).json()
        assert vm["status"]["state"] == "running", vm
        assert vm["status"]["vmm"] == "qemu"
        vms[name] = vm

    # Health through the real agent in each guest.
    for name in vms:
        h = api.get("/v1/vms/%s/health" % name).json()
        assert h["status"] == "ok", h

    # <name>.vm from the host, against the responder on the bridge.
    bridge_ip = "172.30.0.1"
    for name, vm in vms.items():
        r = in_ns(e2e, ["dig", "+short", "+time=2", "+tries=2",
                        "@" + bridge_ip, name + ".vm"], timeout=30)
        assert r.stdout.strip() == vm["status"]["ip"], r.stdout + r.stderr
    assert vms["e2ea"]["status"]["ip"] != vms["e2eb"]["status"]["ip"]

    # banger vm ssh: a one-shot command, its output and exit status.
    def ssh_uname():
        r = banger(e2e, "vm", "ssh", "e2ea", "--", "uname", "-sn")
        return r if r.returncode == 0 else None
    r = wait_until("ssh into e2ea", ssh_uname, BOOT_S)
    assert r.stdout.split() == ["Linux", "e2ea"], r.stdout
    # Host keys made by bangerd, each VM its own, and the ones its sshd
    # shows: vm ssh checks them (StrictHostKeyChecking=yes), so the ssh
    # above would have failed on any other.
    keys = {n: api.get("/v1/vms/%s/ssh" % n).json()["host_keys"]
            for n in vms}
    assert len(keys["e2ea"]) == 2 and keys["e2ea"] != keys["e2eb"], keys
    r = banger(e2e, "vm", "ssh", "e2ea", "--", "cat",
               "/etc/ssh/ssh_host_ed25519_key.pub")
    assert r.stdout.startswith(keys["e2ea"][0] + " "), (r, keys)
    # COMMAND goes to the remote shell, as with ssh.
    r = banger(e2e, "vm", "ssh", "e2eb", "--", "exit 7")
    assert r.returncode == 7, r.stdout + r.stderr
    assert r.stderr == "", r.stderr  # no reminder, no ssh chatter

    # bangerd restarted while both run: the VMs keep running and are adopted.
    pids = {n: vm["status"]["pid"] for n, vm in vms.items()}
    assert e2e.stop() == 0
    for n, pid in pids.items():
        os.kill(pid, 0)  # still alive without the daemon
    e2e.start()
    for name in vms:
        vm = api.get("/v1/vms/" + name).json()
        assert vm["status"]["state"] == "running", vm
        assert vm["status"]["pid"] == pids[name]
        h = api.get("/v1/vms/%s/health" % name).json()
        assert h["status"] == "ok", h
    r = banger(e2e, "vm", "ssh", "e2eb", "--", "cat", "/etc/hostname")
    assert r.returncode == 0 and r.stdout.strip() == "e2eb", r.stdout + r.stderr

    for name in vms:
        r = api.delete_vm(name)
        assert r.status_code == 200, r.text
    for n, pid in pids.items():
        wait_until("%s's VMM (pid %d) to exit" % (n, pid),
                   lambda: not os.path.exists("/proc/%d" % pid), 30)
    assert e2e.vmm_pids() == []


def ssh_now(d, name, *cmd):
    """One ssh attempt, no retry: readiness promises it works at once."""
    return banger(d, "vm", "ssh", name, "--", *cmd, timeout=120)


def qmp(sock, command):
    """One QMP command on a VM's monitor socket."""
    import json
    import socket as so
    s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    f = s.makefile("rw")
    f.readline()  # greeting
    for cmd in ("qmp_capabilities", command):
        f.write(json.dumps({"execute": cmd}) + "\n")
        f.flush()
        while True:
            reply = json.loads(f.readline())
            if "return" in reply or "error" in reply:
                break
    s.close()
    return reply


def test_durable_clean_stop_and_ready(e2e):
    """A stop asks the guest to power off: writes that were never synced
    survive it, and the next boot replays no journal.  Running means ready:
    ssh works the instant create or start returns, every time."""
    api = e2e.client
    op = api.post("/v1/vms", {"name": "dura", "vcpus": 1, "memory_mib": 512},
                  params={"wait": BOOT_S + 60}).json()
    assert op["state"] == "succeeded", "%s\n%s" % (op, console_tail(api, "dura"))
    r = ssh_now(e2e, "dura", "true")
    assert r.returncode == 0, "ssh right after create: " + r.stderr + \
        console_tail(api, "dura")
    grace = 30  # the e2e daemon's stop_grace_s
    for cycle in range(3):
        token = "unsynced-%d-%d" % (cycle, time.time())
        r = ssh_now(e2e, "dura", "echo %s >/root/unsynced; "
                    "echo %s >/var/tmp/unsynced" % (token, token))
        assert r.returncode == 0, r.stderr
        op = api.post("/v1/vms/dura/stop", params={"wait": 120}).json()
        assert op["state"] == "succeeded", op
        ls = op["result"]["status"]["last_stop"]
        print("stop %d: %s by %s in %d ms" % (cycle, ls["result"], ls["method"],
                                             ls["duration_ms"]))
        assert ls["result"] == "clean" and ls["method"] == "agent", \
            "%s\n%s" % (ls, console_tail(api, "dura"))
        assert ls["duration_ms"] < grace * 1000
        op = api.post("/v1/vms/dura/start", params={"wait": BOOT_S + 60}).json()
        assert op["state"] == "succeeded", "%s\n%s" % (op, console_tail(api, "dura"))
        r = ssh_now(e2e, "dura", "cat /root/unsynced /var/tmp/unsynced; "
                    "dmesg | grep -E 'EXT4-fs \\((vda|vdb)\\)'")
        assert r.returncode == 0, "ssh right after start (cycle %d): %s\n%s" % (
            cycle, r.stderr, console_tail(api, "dura"))
        lines = r.stdout.splitlines()
        assert lines[:2] == [token, token], r.stdout
        ext4 = "\n".join(lines[2:])
        assert "mounted filesystem" in ext4, ext4
        for bad in ("recovery complete", "orphan", "errors", "needs_recovery"):
            assert bad not in ext4, "cycle %d: %s\n%s" % (cycle, bad, ext4)


# Run in the daemon's namespace: one connection to a forwarded port that
# stays open, reporting how it ends once told to look.
HOLD_OPEN = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
print(s.recv(64).decode(errors="replace").strip(), flush=True)
sys.stdin.readline()
try:
    print("data" if s.recv(64) else "eof", flush=True)
except OSError:
    print("reset", flush=True)
"""
# One connection made now, and what it first reads.
CONNECT_ONCE = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
print(s.recv(64).decode(errors="replace").strip(), flush=True)
"""


def test_pause_and_resume_the_debian_image(e2e):
    """Pause holds QEMU's vCPUs (QMP status paused); resume lets the guest
    run on where it was: its shell works at once, its uptime went on.
    The guest's vsock comes through a pause with traffic on it: a
    forwarded connection open at the pause is ended before QEMU stops,
    and one made while paused waits and is answered after the resume
    (either, reaching vhost-device-vsock while paused, used to leave the
    guest's agent unreachable for good)."""
    api = e2e.client
    vm = dura(api)
    sock = os.path.join(e2e.state, "vms", vm["id"], "qmp.sock")
    r = ssh_now(e2e, "dura", "cat /proc/uptime")
    assert r.returncode == 0, r.stderr
    before = float(r.stdout.split()[0])
    r = api.patch("/v1/vms/dura", {"ports": [{"host": 18022, "guest": 22}]})
    assert r.status_code == 200, r.text
    py = ["nsenter", "--net=/run/netns/" + e2e.ns, "/usr/bin/python3", "-c"]
    held = late = None
    try:
        held = subprocess.Popen(py + [HOLD_OPEN, "18022"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert held.stdout.readline().startswith("SSH-2.0"), \
            held.stderr.read()
        r = api.post("/v1/vms/dura/pause")
        assert r.status_code == 200, r.text
        assert r.json()["status"]["paused_reason"] == "user"
        assert qmp(sock, "query-status")["return"]["status"] == "paused"
        out, err = held.communicate("look\n", timeout=30)
        assert out.strip() in ("eof", "reset"), (out, err)
        late = subprocess.Popen(py + [CONNECT_ONCE, "18022"],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # Long enough that a guest clock left standing would be seen
        # behind, and short of the 5 s a forward waits for a resume.
        time.sleep(3)
        assert late.poll() is None, late.communicate()
        t0 = time.time()
        r = api.post("/v1/vms/dura/resume")
        took = time.time() - t0
        assert r.status_code == 200, r.text
        out, err = late.communicate(timeout=30)
        assert out.startswith("SSH-2.0"), (out, err, e2e.read_log()[-3000:])
    finally:
        for p in (held, late):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()
        api.patch("/v1/vms/dura", {"ports": []})
    st = r.json()["status"]
    assert st["state"] == "running" and st["health"] == "ok", \
        (st, console_tail(api, "dura"))
    print("resume -> healthy: %.2f s" % took)
    assert qmp(sock, "query-status")["return"]["status"] == "running"
    r = ssh_now(e2e, "dura", "cat /proc/uptime; date +%s.%N")
    host_now = time.time()
    assert r.returncode == 0, r.stderr + console_tail(api, "dura")
    words = r.stdout.split()   # uptime, idle time, the guest's clock
    uptime, guest_now = float(words[0]), float(words[2])
    assert uptime >= before
    # bangerd set the guest's clock through the agent after the resume.
    assert abs(guest_now - host_now) < 2.5, (guest_now, host_now)


def test_qemu_says_why_it_cannot_snapshot(e2e):
    """QEMU 7.2 cannot migrate a VM with vhost-user-vsock: a snapshot is
    refused before anything is made, with QEMU's own reasons, and the VM
    runs on."""
    api = e2e.client
    dura(api)
    r = api.post("/v1/vms/dura/snapshots", {"name": "s"}, params={"wait": 60})
    op = r.json()
    assert op["state"] == "failed", op
    assert op["error"]["code"] == "unsupported_by_vmm", op
    assert "vhost-user-vsock" in op["error"]["message"], op
    assert api.get("/v1/vms/dura/snapshots").json()["snapshots"] == []
    st = api.get("/v1/vms/dura").json()["status"]
    assert st["state"] == "running", st
    # Nor can it keep a warm snapshot of an image: refused before a VM
    # is booted for it.
    before = {v["name"] for v in api.get("/v1/vms").json()["vms"]}
    r = api.post("/v1/images/default/warm")
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "unsupported_by_vmm", r.text
    assert {v["name"] for v in api.get("/v1/vms").json()["vms"]} == before
    assert api.get("/v1/images/default").json()["warm"] is None


def test_exec_in_the_debian_image(e2e):
    """banger vm exec through the agent over vsock: the guest's own
    hostname and root, stdin, the exit status, and a timeout that ends
    the command inside the guest."""
    api = e2e.client
    dura(api)
    r = banger(e2e, "vm", "exec", "--no-stdin", "dura", "--", "sh", "-c",
               "hostname; id -u; echo to-stderr >&2; exit 4")
    assert r.returncode == 4, r.stderr + console_tail(api, "dura")
    assert r.stdout == "dura\n0\n" and "to-stderr" in r.stderr, r
    r = in_ns(e2e, [BANGER, "vm", "exec", "dura", "--", "sha256sum"],
              input="banger\n")
    want = hashlib.sha256(b"banger\n").hexdigest()
    assert r.returncode == 0 and r.stdout.split()[0] == want, r
    t0 = time.time()
    r = banger(e2e, "vm", "exec", "--no-stdin", "--timeout", "2", "dura", "--",
               "sleep", "300.5")
    assert r.returncode == 124 and time.time() - t0 < 30, r
    r = banger(e2e, "vm", "exec", "--no-stdin", "dura", "--", "pgrep", "-f",
               "sleep 300.5")
    assert r.returncode == 1, "the timed-out command still runs: %r" % r


def test_interactive_exec_in_the_debian_image(e2e):
    """banger vm exec -it dura -- bash on a pseudo-terminal here: bash
    gets a terminal of its own in the guest (/dev/pts), this terminal's
    size, what is typed, and its exit status comes back.  Needs an image
    whose agent has exec_tty (protocol 7)."""
    api = e2e.client
    dura(api)
    caps = api.get("/v1/vms/dura/health").json().get("capabilities") or []
    assert "exec_tty" in caps, \
        "the image's agent predates exec -t: rebuild it (make rootfs)"
    st, out = run_pty_typing(
        ["/usr/bin/nsenter", "--net=/run/netns/" + e2e.ns, BANGER, "vm",
         "exec", "-it", "dura", "--", "bash"], e2e.env,
        [(r"[#$] ", b"tty; stty size; exit 7\r")], rows=33, cols=101,
        timeout=120)
    assert st == 7, out + console_tail(api, "dura")
    # bash's own escapes (bracketed paste, the title) come before.
    assert re.search(r"/dev/pts/\d+\r\n33 101\r\n", out), out


def test_copy_100_mib_in_and_out_of_the_debian_image(e2e, tmp_path):
    """banger vm cp through the agent over vsock, both ways, a 100 MiB
    file and a small tree, checked by SHA-256 on each side."""
    api = e2e.client
    dura(api)
    src = tmp_path / "load"
    (src / "sub").mkdir(parents=True)
    blob = os.urandom(1 << 20) * 100
    (src / "big.bin").write_bytes(blob)
    (src / "sub" / "note.txt").write_text("hello\n")
    want = hashlib.sha256(blob).hexdigest()
    t0 = time.time()
    r = banger(e2e, "vm", "cp", str(src), "dura:/root")
    took_in = time.time() - t0
    assert r.returncode == 0, r.stderr + console_tail(api, "dura")
    r = banger(e2e, "vm", "exec", "--no-stdin", "dura", "--", "sha256sum",
               "/root/load/big.bin")
    assert r.returncode == 0 and r.stdout.split()[0] == want, r
    out = tmp_path / "back"
    out.mkdir()
    t0 = time.time()
    r = banger(e2e, "vm", "cp", "dura:/root/load", str(out))
    took_out = time.time() - t0
    assert r.returncode == 0, r.stderr
    got = hashlib.sha256((out / "load" / "big.bin").read_bytes()).hexdigest()
    assert got == want
    assert (out / "load" / "sub" / "note.txt").read_text() == "hello\n"
    print("cp 100 MiB in %.1f s, out %.1f s" % (took_in, took_out))
    banger(e2e, "vm", "exec", "--no-stdin", "dura", "--", "rm", "-rf",
           "/root/load")


def test_port_forward_to_the_debian_image(e2e):
    """A service bound to the guest's loopback, NAT off, reached from the
    host through a forward in the VM's spec (added while it runs) and
    through banger vm port-forward: the agent carries it over vsock."""
    api = e2e.client
    dura(api)
    assert api.get("/v1/vms/dura").json()["spec"]["nat"] is False
    # A one-line HTTP server on 127.0.0.1:8000 in the guest, in a session
    # of its own so that it outlives the exec.
    serve = ("while :; do printf 'HTTP/1.0 200 OK\\r\\nContent-Length: 13"
             "\\r\\n\\r\\nhello banger\\n' | nc -N -l 127.0.0.1 8000; "
             "done")
    r = banger(e2e, "vm", "exec", "--no-stdin", "dura", "--", "sh", "-c",
               "setsid -f sh -c \"%s\" </dev/null >/dev/null 2>&1" % serve)
    assert r.returncode == 0, r.stderr + console_tail(api, "dura")
    curl = ["curl", "-sS", "--max-time", "20", "--retry", "10",
            "--retry-all-errors", "--retry-delay", "1"]
    r = api.patch("/v1/vms/dura", {"ports": [{"host": 18000, "guest": 8000}]})
    assert r.status_code == 200, r.text
    try:
        r = in_ns(e2e, curl + ["http://127.0.0.1:18000/"])
        assert r.stdout == "hello banger\n", (r, e2e.read_log()[-3000:])
        # The guest's address is not listening: only the loopback is.
        ip = api.get("/v1/vms/dura").json()["status"]["ip"]
        r = in_ns(e2e, ["curl", "-sS", "--max-time", "5",
                        "http://%s:8000/" % ip])
        assert r.returncode != 0, r
        pf = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + e2e.ns, BANGER, "vm",
             "port-forward", "dura", "18001:8000"], env=e2e.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert pf.stdout.readline().startswith("forwarding"), \
                pf.stderr.read()
            r = in_ns(e2e, curl + ["http://127.0.0.1:18001/"])
            assert r.stdout == "hello banger\n", r
        finally:
            pf.terminate()
            pf.communicate(timeout=10)
    finally:
        api.patch("/v1/vms/dura", {"ports": []})
        for pattern in ("while :", "nc -N -l"):
            banger(e2e, "vm", "exec", "--no-stdin", "dura", "--", "pkill",
                   "-f", pattern)


def test_shared_folders_in_the_debian_image(e2e, tmp_path):
    """virtio-fs through virtiofsd: a read-write folder and a read-only
    one (under /root, on the work disk), mounted by the guest at boot.
    The host's file is read in the guest, the guest's write shows on the
    host, the read-only one refuses writes (also to root), the binds stay
    out of the host's mount table, and the virtiofsds go with the VM."""
    api = e2e.client
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (rw / "from-host").write_text("hello from the host\n")
    (ro / "keep").write_text("read only\n")
    op = api.post("/v1/vms", {"name": "share", "vcpus": 1, "mounts": [
        {"host": str(rw), "guest": "/mnt/rw"},
        {"host": str(ro), "guest": "/root/ro", "readonly": True}]},
        params={"wait": BOOT_S + 60}).json()
    assert op["state"] == "succeeded", (op, console_tail(api, "share"))
    vm = api.get("/v1/vms/share").json()
    vmdir = os.path.join(e2e.state, "vms", vm["id"])
    try:
        assert vm["status"]["health"] == "ok", vm
        assert [m["guest"] for m in vm["spec"]["mounts"]] == ["/mnt/rw",
                                                             "/root/ro"]
        r = banger(e2e, "vm", "exec", "--no-stdin", "share", "--", "cat",
                   "/mnt/rw/from-host", "/root/ro/keep")
        assert r.returncode == 0 and r.stdout == \
            "hello from the host\nread only\n", (r, console_tail(api, "share"))
        r = banger(e2e, "vm", "exec", "--no-stdin", "share", "--", "sh", "-c",
                   "echo from the guest > /mnt/rw/from-guest")
        assert r.returncode == 0, r
        assert (rw / "from-guest").read_text() == "from the guest\n"
        r = banger(e2e, "vm", "exec", "--no-stdin", "share", "--", "sh", "-c",
                   "touch /root/ro/x || mount -o remount,rw /root/ro && "
                   "touch /root/ro/y")
        assert r.returncode != 0 and "Read-only" in r.stderr, r
        assert sorted(os.listdir(ro)) == ["keep"]
        with open("/proc/self/mountinfo") as f:
            assert vmdir not in f.read(), "a share's bind shows on the host"
        assert os.path.exists(os.path.join(vmdir, "fs1.pid"))
        r = banger(e2e, "vm", "show", "share")
        assert "/root/ro (ro)" in r.stdout, r.stdout
        r = api.patch("/v1/vms/share", {"mounts": []})
        assert r.status_code == 409 and r.json()["code"] == "vm_running", \
            r.text
        api.action("share", "stop")
        for f in ("fs0.pid", "fs0.sock", "fs1.dir"):
            assert not os.path.exists(os.path.join(vmdir, f)), f
        r = subprocess.run(["pgrep", "-f", vmdir + "/fs"], capture_output=True)
        assert r.returncode == 1, "a virtiofsd outlived its VM: " + r.stdout.decode()
    finally:
        api.delete_vm("share")


def memory_cgroup_kind():
    """Where bangerd keeps a memory limit on this host, as it picks
    (src/core/cgroup.c): "v2" with the cpu and memory controllers, else
    "v1" with a hybrid host's memory and cpu hierarchies, else "v2" with
    memory alone; None when neither."""
    root = "/sys/fs/cgroup"
    try:
        with open(root + "/cgroup.controllers") as f:
            v2 = f.read().split()
    except OSError:
        v2 = None
    v1 = os.path.isfile(root + "/memory/memory.limit_in_bytes") and \
        os.path.isfile(root + "/cpu/cpu.cfs_quota_us")
    if v2 is not None and "cpu" in v2 and "memory" in v2:
        return "v2"
    if v1:
        return "v1"
    return "v2" if v2 is not None and "memory" in v2 else None


def read_cg(cg, name):
    try:
        with open(os.path.join(cg, name)) as f:
            return f.read().strip()
    except OSError:
        return None


def test_memory_limit_is_enforced(e2e):
    """limits.memory_max_mib holds the VM's processes: a guest that fills
    its memory takes its VMM past the limit (the guest's memory is a
    shared memfd, charged to QEMU, which faults it in), the kernel's OOM
    killer ends it within the cgroup, and bangerd shows the VM stopped.
    On a hybrid host the cgroup is in the v1 memory hierarchy."""
    kind = memory_cgroup_kind()
    if kind is None:
        pytest.skip("no cgroup v2 with the memory controller and no v1 "
                    "memory and cpu hierarchies at /sys/fs/cgroup: a "
                    "memory limit cannot be kept here")
    api = e2e.client
    op = api.post("/v1/vms", {"name": "capped", "vcpus": 1, "memory_mib": 512,
                              "limits": {"memory_max_mib": 576}},
                  params={"wait": BOOT_S + 60}).json()
    assert op["state"] == "succeeded", op
    vm = op["result"]
    slice_ = "banger.slice/vm-" + vm["id"]
    pid = str(vm["status"]["pid"])
    if kind == "v2":
        cg = "/sys/fs/cgroup/" + slice_
        usage = "memory.current"
        assert read_cg(cg, "memory.max") == str(576 << 20)
        cgs = [cg]
    else:
        cg = "/sys/fs/cgroup/memory/" + slice_
        usage = "memory.usage_in_bytes"
        assert read_cg(cg, "memory.limit_in_bytes") == str(576 << 20)
        if os.path.exists(cg + "/memory.memsw.limit_in_bytes"):
            assert read_cg(cg, "memory.memsw.limit_in_bytes") == \
                str(576 << 20)
        cpu = "/sys/fs/cgroup/cpu/" + slice_
        assert read_cg(cpu, "cpu.cfs_quota_us") == "-1"
        assert pid in read_cg(cpu, "cgroup.procs").split()
        cgs = [cg, cpu]
    assert pid in read_cg(cg, "cgroup.procs").split()
    print("%s cgroup %s: %s bytes after boot" % (kind, cg, read_cg(cg, usage)))
    # tail keeps a line in memory until its end: 500 MiB of zeros are one.
    r = banger(e2e, "vm", "exec", "--no-stdin", "--timeout", "120", "capped",
               "--", "sh", "-c", "head -c 500M /dev/zero | tail >/dev/null",
               timeout=300)
    seen = []

    def stopped():
        seen.append(read_cg(cg, usage))
        return api.get("/v1/vms/capped").json()["status"]["state"] == \
            "stopped"
    try:
        wait_until("the capped VM to be stopped", stopped, 120)
    except AssertionError as e:
        raise AssertionError("%s\nexec: %d %s\n%s usage: %s" % (
            e, r.returncode, r.stderr[-500:], cg, seen[-3:]))
    print("stopped; last usage %s; exec said %d %s" % (
        seen[-2:], r.returncode, r.stderr.strip()[-200:]))
    api.delete("/v1/vms/capped", params={"wait": 60, "force": "true"})
    for d in cgs:
        assert not os.path.exists(d), "the VM's cgroup %s stays" % d


def test_power_button_stops_the_debian_image(e2e):
    """The fallback for hosts and steps without the agent's route: QEMU's
    ACPI power button, which the image's agent acts on."""
    api = e2e.client
    vm = dura(api)
    assert vm["status"]["state"] == "running", vm
    sock = os.path.join(e2e.state, "vms", vm["id"], "qmp.sock")
    t0 = time.time()
    reply = qmp(sock, "system_powerdown")
    assert "return" in reply, reply
    wait_until("the guest to power off on the power button",
               lambda: api.get("/v1/vms/dura").json()["status"]["state"] == "stopped",
               120)
    print("power button: stopped after %.1f s" % (time.time() - t0))
    tail = console_tail(api, "dura", 20000)
    assert "reboot: Power down" in tail, tail
    assert api.delete_vm("dura").status_code == 200
