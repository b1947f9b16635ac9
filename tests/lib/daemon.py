"""A live bangerd against the Firecracker test double, for tests and benchmarks.

Each daemon gets a short temporary directory (socket paths must fit in 107
bytes), its own runtime bundle (a dummy kernel, small ext4 rootfs and work
seed), its own network namespace when we are root, and a client that checks
every JSON response against openapi.yaml.
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from bangerlib import Client, ROOT


def _exe(env_name, default):
    path = os.environ.get(env_name) or os.path.join(ROOT, default)
    return os.path.abspath(path)


BANGERD = _exe("BANGERD", "bangerd")
BANGER = _exe("BANGER", "banger")
FAKE_FC = _exe("BANGER_FAKE_FC", "tests/fakes/firecracker")
AGENT = _exe("BANGER_AGENT", "runtime/banger-vsock-agent")


def make_ext4(path, size_mib, files=None):
    """A small ext4 image made with mkfs.ext4 -d (no mounts needed)."""
    src = None
    if files:
        src = tempfile.mkdtemp(prefix="bgseed")
        for rel, content in files.items():
            full = os.path.join(src, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(content)
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    cmd = ["/sbin/mkfs.ext4", "-q", "-F"]
    if src:
        cmd += ["-d", src]
    subprocess.run(cmd + [path], check=True)
    if src:
        shutil.rmtree(src)
    return path


class Daemon:
    def __init__(self, netns=True, config=None, bundle_extra=None, state=None,
                 runtime=None, netns_path=None):
        """runtime: a real runtime bundle to use as it is (real boots);
        by default a fake one for the Firecracker test double is made.
        netns_path: run bangerd in this network namespace (e.g.
        /run/netns/NAME, so a restarted daemon finds its bridge and TAPs)
        rather than in a new one per start."""
        self.dir = tempfile.mkdtemp(prefix="bg", dir="/tmp")
        self.socket = os.path.join(self.dir, "api.sock")
        self.state = state or os.path.join(self.dir, "s")
        self.runtime = runtime or os.path.join(self.dir, "rt")
        self.faults = os.path.join(self.dir, "faults.json")
        self.fc_log = os.path.join(self.dir, "fc-calls.log")
        self.log = os.path.join(self.dir, "bangerd.log")
        if runtime is None:
            self._fake_bundle(bundle_extra)
        self.config_path = os.path.join(self.dir, "config.json")
        cfg = {"health_timeout_s": 10, "stop_grace_s": 2}
        cfg.update(config or {})
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("BANGER_FAKE_FC_") or k in ("BANGER_VMM",):
                del self.env[k]
        self.env.update({
            "BANGER_SOCKET": self.socket,
            "BANGER_STATE_DIR": self.state,
            "BANGER_RUNTIME_DIR": self.runtime,
            "BANGER_CONFIG": self.config_path,
            "BANGER_FAKE_AGENT": AGENT,
            "BANGER_FAKE_FC_FAULTS": self.faults,
            "BANGER_FAKE_FC_LOG": self.fc_log,
            "BANGER_NO_AUTOSTART": "1",
        })
        self.netns = netns and os.geteuid() == 0 and shutil.which("unshare")
        self.netns_path = netns_path
        self.banger = BANGER
        self.bangerd = BANGERD
        self.proc = None
        self.client = Client(self.socket)

    def reconfigure(self, **kw):
        """Start over (not started yet) with other arguments, removing the
        directory made for the first ones."""
        assert self.proc is None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.__init__(**kw)

    def _fake_bundle(self, bundle_extra):
        os.makedirs(self.runtime)
        with open(os.path.join(self.runtime, "vmlinux"), "wb") as f:
            f.write(b"\x7fELF fake kernel for the test double\n")
        make_ext4(os.path.join(self.runtime, "rootfs-docker.ext4"), 64,
                  {"etc/hostname": "banger\n"})
        make_ext4(os.path.join(self.runtime, "work-seed.ext4"), 16,
                  {".bashrc": "# banger work seed\n"})
        bundle = {"vmm": "firecracker", "firecracker": FAKE_FC,
                  "agent": AGENT, "agent_port": 1024}
        bundle.update(bundle_extra or {})
        with open(os.path.join(self.runtime, "bundle.json"), "w") as f:
            json.dump(bundle, f)

    # -- process control --
    def start(self):
        argv = [BANGERD, "-d"]
        if self.netns_path:
            argv = ["nsenter", "--net=" + self.netns_path] + argv
        elif self.netns:
            argv = ["unshare", "-n"] + argv
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(argv, env=self.env, stdout=logf,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("bangerd exited: " + self.read_log())
            try:
                if self.client.get("/v1/healthz", validate=False).status_code == 200:
                    if self.netns and not self.netns_path:
                        # A loopback like any host's (forwarded ports
                        # listen on it).
                        subprocess.run(["nsenter", "-t", str(self.proc.pid),
                                        "-n", "ip", "link", "set", "lo", "up"],
                                       check=True)
                    return self
            except Exception:
                pass
            time.sleep(0.02)
        raise RuntimeError("bangerd did not come up: " + self.read_log())

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def read_log(self, whole=False):
        """The log's last 4000 characters, or all of it."""
        try:
            with open(self.log, errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        return text if whole else text[-4000:]

    def vmm_pids(self):
        """Test-double processes that belong to this daemon's state dir."""
        out = subprocess.run(["pgrep", "-f", self.state], capture_output=True,
                             text=True).stdout.split()
        return [int(p) for p in out if int(p) != os.getpid()]

    def cleanup(self):
        rc = self.stop()
        log = self.read_log(whole=True)
        for pid in self.vmm_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        # A clean SIGTERM exit, and nothing from the sanitizers (the suite
        # also runs against an ASan+UBSan build).
        # The whole log is searched: a leak report is long, and its direct
        # leaks come first.
        found = [log.find(m) for m in
                 ("AddressSanitizer", "LeakSanitizer", "runtime error:")]
        found = [at for at in found if at >= 0]
        assert not found, log[max(0, min(found) - 600):][:12000]
        assert rc in (None, 0), "bangerd exited %s:\n%s" % (rc, log[-4000:])

    # -- helpers for tests --
    def listen_tcp_in_netns(self, port):
        """A process listening on port (any address) in bangerd's network
        namespace (where the double's guest agent looks); kill() it."""
        code = ("import socket, sys, time\n"
                "s = socket.socket()\n"
                "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                "s.bind(('', %d)); s.listen(4)\n"
                "print('listening', flush=True)\n"
                "time.sleep(600)\n" % port)
        argv = ["/usr/bin/python3", "-c", code]
        if self.netns or self.netns_path:
            argv = ["nsenter", "--net=/proc/%d/ns/net" % self.proc.pid] + argv
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "listening"
        return p

    def set_faults(self, faults):
        with open(self.faults, "w") as f:
            json.dump(faults, f)

    def clear_faults(self):
        try:
            os.unlink(self.faults)
        except FileNotFoundError:
            pass

    def make_image(self, name, size_mib=32):
        d = os.path.join(self.dir, "img-" + name)
        os.makedirs(d, exist_ok=True)
        rootfs = make_ext4(os.path.join(d, "rootfs.ext4"), size_mib,
                           {"etc/hostname": name + "\n"})
        seed = make_ext4(os.path.join(d, "work-seed.ext4"), 8,
                         {".profile": "# " + name + "\n"})
        return rootfs, seed

    def run_banger(self, *args, env=None, timeout=60):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run([BANGER] + list(args), env=e, capture_output=True,
                              text=True, timeout=timeout)




@contextlib.contextmanager
def netns_daemon(prefix, **kw):
    """A started Daemon in a named network namespace of its own (so a
    restarted bangerd finds its bridge and TAPs, and nothing touches the
    host's network): real boots.  d.ns is the namespace's name.  On the
    way out every VM is deleted, bangerd stopped, the namespace removed."""
    ns = "%s-%d" % (prefix, os.getpid())
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    d = Daemon(netns_path="/run/netns/" + ns, **kw)
    d.ns = ns
    try:
        d.start()
        yield d
    finally:
        try:
            if d.proc is not None:
                for vm in d.client.get("/v1/vms", validate=False).json()["vms"]:
                    d.client.delete_vm(vm["name"])
            d.cleanup()
        finally:
            subprocess.run(["ip", "netns", "del", ns])
