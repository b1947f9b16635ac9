"""banger tui in a detached tmux session against a live bangerd (the
Firecracker test double): keys go in with 'tmux send-keys', the screen
comes back with 'tmux capture-pane -p'.  Every check polls the screen or
the API until a deadline; nothing relies on a fixed sleep.
"""
import os
import re
import shutil
import subprocess
import time
import uuid

import pytest

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None, reason="tmux is not installed (.ci/deps.sh installs it)")

STATES = ("creating", "stopped", "starting", "running", "stopping", "error",
          "paused")
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:6])


class Tui:
    """banger tui running in a private tmux server."""

    def __init__(self, daemon, width=120, height=30):
        self.dir = daemon.dir
        self.sock = os.path.join(daemon.dir, "tmux-%s.sock" % uuid.uuid4().hex[:6])
        self.exit_file = os.path.join(daemon.dir, "tui.exit")
        self.err_file = os.path.join(daemon.dir, "tui.stderr")
        for f in (self.exit_file, self.err_file):
            if os.path.exists(f):
                os.unlink(f)
        env = dict(daemon.env)
        env["TERM"] = "xterm-256color"
        env.pop("TMUX", None)
        # No detect_leaks=0 here: under the sanitizer build the tui is held
        # to the same checks as every command (ncurses frees its state in
        # delscreen(); a leak report makes the exit status non-zero).
        # The screen is stdout; stderr (sanitizer reports) goes to a file.
        cmd = "%s tui 2>%s; echo $? >%s" % (
            daemon.banger, self.err_file, self.exit_file)
        self.tmux("new-session", "-d", "-s", "tui", "-x", str(width),
                  "-y", str(height), cmd, env=env)

    def tmux(self, *args, env=None, check=True):
        return subprocess.run([TMUX, "-S", self.sock] + list(args), env=env,
                              capture_output=True, text=True, check=check,
                              timeout=20)

    def screen(self):
        r = self.tmux("capture-pane", "-p", "-t", "tui", check=False)
        return r.stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "tui", *keys)

    def wait(self, pred, what, timeout=20):
        deadline = time.time() + timeout
        while True:
            s = self.screen()
            if pred(s):
                return s
            if os.path.exists(self.exit_file) or time.time() > deadline:
                raise AssertionError("the screen never showed %s:\n%s\n%s" % (
                    what, s, self.stderr()))
            time.sleep(0.1)

    def wait_exit(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(self.exit_file):
                with open(self.exit_file) as f:
                    text = f.read().strip()
                if text:
                    return int(text)
            time.sleep(0.1)
        raise AssertionError("banger tui did not exit:\n" + self.screen())

    def stderr(self):
        try:
            with open(self.err_file, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        self.tmux("kill-server", check=False)


def rows(screen):
    """The VM table: {name: (selected, [cells])}."""
    out = {}
    for line in screen.splitlines():
        m = re.match(r"^([ >])(\S+)\s+(%s)\b(.*)$" % "|".join(STATES), line)
        if m:
            out[m.group(2)] = (m.group(1) == ">",
                               [m.group(3)] + m.group(4).split())
    return out


def row_state(screen, name):
    r = rows(screen).get(name)
    return r[1][0] if r else None


def title(screen):
    lines = screen.splitlines()
    return lines[0] if lines else ""


def poll_api(check, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("the API never showed " + what)


def vm_state(api, name):
    r = api.get("/v1/vms/" + name)
    return r.json()["status"]["state"] if r.status_code == 200 else None


def selected(screen):
    for name, (sel, _) in rows(screen).items():
        if sel:
            return name
    return None


def select(tui, name):
    """Move the selection ('>') to 'name': Home, then down one row at a
    time, each step confirmed on screen."""
    tui.keys("g")
    first = tui.wait(lambda s: rows(s), "the VM list")
    first_name = sorted(rows(first))[0]
    tui.wait(lambda s: selected(s) == first_name, "the first row selected")
    for _ in range(100):
        cur = selected(tui.screen())
        if cur == name:
            return
        tui.keys("j")
        tui.wait(lambda s: selected(s) != cur, "the selection moving")
    raise AssertionError("could not select %s:\n%s" % (name, tui.screen()))


def check_layout(screen, width, height):
    """A clean screen of this size: title first, key help last, the table
    in between, nothing wrapped or left over from the old size."""
    lines = screen.split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    assert len(lines) == height, (len(lines), screen)
    assert all(len(l) <= width for l in lines), screen
    assert lines[0].startswith(" banger tui "), screen
    assert lines[-1].startswith(" s start  x stop"), screen
    assert sum(1 for l in lines if "banger tui" in l) == 1, screen
    assert sum(1 for l in lines if l.startswith(" NAME ")) == 1, screen
    assert lines[1].startswith(" NAME "), screen
    # Between the header and the message line: VM rows or blank lines.
    for l in lines[2:-2]:
        assert l.strip() == "" or re.match(r"^[ >]\S+\s+(%s)\b" % "|".join(STATES), l) \
            or "more below" in l, "stray line %r in\n%s" % (l, screen)


@pytest.fixture
def tui_daemon(fresh_daemon):
    return fresh_daemon.start()


def test_tui(tui_daemon):
    d, api = tui_daemon, tui_daemon.client
    a, b = "tui-a", "tui-b"
    api.create_vm(a, vcpus=1)
    tui = Tui(d)
    try:
        s = tui.wait(lambda s: row_state(s, a) == "running" and
                     "connected" in title(s), "vm a and 'connected'")
        check_layout(s, 120, 30)
        cells = rows(s)[a][1]
        ip = api.get("/v1/vms/" + a).json()["status"]["ip"]
        # STATE IP HEALTH UPTIME NAT IMAGE
        assert cells[1] == ip and cells[2] == "ok" and cells[4] == "off" \
            and cells[5] == "default", cells
        assert re.match(r"^\d+[smhd]", cells[3]), cells
        # CPU% and MEM from the VM's usage, sampled every 2 s.
        s = tui.wait(lambda s: len(rows(s)[a][1]) > 7 and
                     re.match(r"^\d+$", rows(s)[a][1][6]) and
                     re.match(r"^\d+M$", rows(s)[a][1][7]),
                     "CPU% and MEM of vm a")

        # Changes made from outside show up live.
        api.create_vm(b, vcpus=1)
        tui.wait(lambda s: row_state(s, b) == "running", "vm b created outside")
        api.action(b, "stop")
        tui.wait(lambda s: row_state(s, b) == "stopped", "vm b stopped outside")

        # x stops the selected VM, s starts it again.
        select(tui, a)
        tui.keys("x")
        poll_api(lambda: vm_state(api, a) == "stopped", "a stopped")
        tui.wait(lambda s: row_state(s, a) == "stopped", "a stopped on screen")
        tui.wait(lambda s: "vm.stop tui-a: done" in s, "the stop's outcome")
        tui.keys("s")
        poll_api(lambda: vm_state(api, a) == "running", "a running")
        tui.wait(lambda s: row_state(s, a) == "running", "a running on screen")
        tui.keys("r")
        tui.wait(lambda s: "vm.restart tui-a: done" in s, "the restart")
        assert vm_state(api, a) == "running"

        # p pauses the selected VM, and resumes it when paused.
        tui.keys("p")
        poll_api(lambda: vm_state(api, a) == "paused", "a paused")
        tui.wait(lambda s: row_state(s, a) == "paused", "a paused on screen")
        tui.wait(lambda s: "tui-a: paused" in s, "the pause's outcome")
        tui.keys("p")
        poll_api(lambda: vm_state(api, a) == "running", "a resumed")
        tui.wait(lambda s: row_state(s, a) == "running" and
                 "tui-a: running" in s, "a running again on screen")

        # n toggles NAT.
        tui.keys("n")
        poll_api(lambda: api.get("/v1/vms/" + a).json()["spec"]["nat"] is True,
                 "nat on")
        tui.wait(lambda s: rows(s)[a][1][4] == "on", "NAT on on screen")

        # d asks first; anything but y cancels.
        select(tui, b)
        tui.keys("d")
        tui.wait(lambda s: "Delete vm 'tui-b'?" in s, "the confirmation")
        tui.keys("n")
        tui.wait(lambda s: "delete of tui-b cancelled" in s, "the cancel")
        assert api.get("/v1/vms/" + b).status_code == 200
        assert api.get("/v1/vms/" + a).json()["spec"]["nat"] is True, \
            "the 'n' answering the question must not toggle NAT"
        tui.keys("d")
        tui.wait(lambda s: "Delete vm 'tui-b'?" in s, "the confirmation")
        tui.keys("y")
        poll_api(lambda: api.get("/v1/vms/" + b).status_code == 404, "b gone")
        tui.wait(lambda s: b not in rows(s), "b gone from the screen")

        # The other views.
        tui.keys("2")
        s = tui.wait(lambda s: re.search(r"^ default\s+bundle\s+yes\s+yes\s+/",
                                         s, re.M) is not None, "the images view")
        assert "[2 Images]" in title(s) and " NAME " in s and "ROOTFS" in s, s
        tui.keys("3")
        s = tui.wait(lambda s: "host readiness:" in s and "[ok  ]" in s,
                     "the doctor view")
        assert "[3 Doctor]" in title(s), s
        tui.keys("Tab")
        tui.wait(lambda s: "[1 VMs]" in title(s) and a in rows(s),
                 "Tab back to the VMs")

        # Resizing redraws at the new size, nothing left over.
        for w, h in ((70, 14), (100, 24), (120, 30)):
            tui.tmux("resize-window", "-t", "tui", "-x", str(w), "-y", str(h))
            s = tui.wait(lambda s: len(s.rstrip("\n").split("\n")) == h and
                         title(s).rstrip().endswith("connected") and
                         len(title(s)) <= w and a in rows(s),
                         "a %dx%d screen" % (w, h))
            check_layout(s, w, h)

        # c leaves curses for 'banger vm ssh NAME' and comes back.  The VM
        # is stopped, so that command fails whatever it does; the tui
        # keeps its message on screen until Enter.
        tui.keys("x")
        poll_api(lambda: vm_state(api, a) == "stopped", "a stopped")
        tui.keys("c")
        s = tui.wait(lambda s: "press Enter to return to banger tui" in s,
                     "the ssh child's end")
        assert "ssh to vm 'tui-a'" in s and \
            "[banger vm ssh tui-a exited with status" in s, s
        tui.keys("Enter")
        s = tui.wait(lambda s: title(s).startswith(" banger tui") and
                     "ssh to tui-a failed" in s, "the list again")
        check_layout(s, 120, 30)

        tui.keys("q")
        assert tui.wait_exit() == 0
    finally:
        tui.close()
    err = tui.stderr()
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err


def test_tui_survives_daemon_death(tui_daemon):
    d, api = tui_daemon, tui_daemon.client
    api.create_vm("alive", vcpus=1)
    tui = Tui(d, 100, 20)
    try:
        tui.wait(lambda s: row_state(s, "alive") == "running" and
                 title(s).rstrip().endswith("connected"), "the VM")
        d.proc.kill()
        d.proc.wait()
        d.proc = None
        s = tui.wait(lambda s: "disconnected, retrying" in title(s),
                     "the disconnected status")
        # Still answering keys: views switch, actions say what failed.
        tui.keys("2")
        tui.wait(lambda s: "[2 Images]" in title(s), "the images view", timeout=5)
        tui.keys("1")
        tui.wait(lambda s: "[1 VMs]" in title(s) and "alive" in rows(s),
                 "the VMs again", timeout=5)
        # Every press reports its own failure, never left at "stopping...":
        # the refusal comes back at once, so the pending message must not
        # be able to overwrite it.  Alternate so each press is told apart.
        for i in range(8):
            action = ("stop", "start")[i % 2]
            tui.keys("x" if action == "stop" else "s")
            tui.wait(lambda s: "POST /v1/vms/alive/%s: cannot reach bangerd"
                     % action in s, "the failed %s (press %d)" % (action, i + 1),
                     timeout=10)
        # bangerd back: reconnected, and the list read again.
        d.start()
        tui.wait(lambda s: title(s).rstrip().endswith("connected") and
                 "disconnected" not in title(s), "reconnected", timeout=30)
        api.create_vm("back", vcpus=1)
        tui.wait(lambda s: row_state(s, "back") == "running", "a new VM")
        tui.keys("q")
        assert tui.wait_exit() == 0
    finally:
        tui.close()
    err = tui.stderr()
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err


def test_tui_needs_a_terminal(daemon):
    r = subprocess.run([daemon.banger, "tui"], env=daemon.env,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2, r.stderr
    assert "needs a terminal" in r.stderr, r.stderr
