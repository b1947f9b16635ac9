"""Helpers for the tests of the Firecracker test double (tests/fakes/firecracker):
one fake process in a temp dir (Fake), vsock handshakes, the agent.

Environment:
  BANGER_FAKE_FC     path of the fake binary (default: tests/fakes/firecracker)
  BANGER_FAKE_AGENT  guest agent binary used by the fake (default:
                     runtime/banger-vsock-agent); agent tests skip if missing.
Only the standard library and pytest are used.
"""

import http.client
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _resolve(env, default):
    """Env path if set (relative paths: cwd first, then repo root), else default."""
    v = os.environ.get(env)
    if not v:
        return default
    p = Path(v)
    if not p.is_absolute() and not p.exists():
        p = REPO / p
    return p.absolute()


FC = _resolve("BANGER_FAKE_FC", REPO / "tests" / "fakes" / "firecracker")
AGENT = _resolve("BANGER_FAKE_AGENT", REPO / "runtime" / "banger-vsock-agent")

NOT_AFTER = "The requested operation is not supported after starting the microVM."
NOT_BEFORE = "The requested operation is not supported before starting the microVM."
SERDE = "An error occurred when deserializing the json body of a request: "


def require_fake():
    """Skip the calling test module when the fake is not built."""
    if not FC.is_file() or not os.access(FC, os.X_OK):
        pytest.skip(
            f"fake firecracker not built at {FC} (build: make tests/fakes/firecracker, "
            "from tests/fakes/fc/)",
            allow_module_level=True,
        )


def need_agent():
    if not (AGENT.is_file() and os.access(AGENT, os.X_OK)):
        pytest.skip(
            f"guest agent binary {AGENT} is missing: build agent/ into runtime/banger-vsock-agent "
            "or point BANGER_FAKE_AGENT at one"
        )


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False


def children_of(pid):
    kids = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.update(int(x) for x in f.read().split())
    except FileNotFoundError:
        pass
    return kids


def wait_until(pred, timeout=3.0, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Fake:
    """One fake Firecracker process in its own short temp dir."""

    def __init__(self, d, vm_id="vm-test", faults=None, extra_args=(), env=None, wait=True,
                 cwd=None):
        self.dir = Path(d)
        self.sock = str(self.dir / "api.sock")
        self.vsock = str(self.dir / "v.sock")
        self.kernel = self.dir / "vmlinux"
        self.rootfs = self.dir / "rootfs.ext4"
        self.kernel.write_bytes(b"\x7fELF")
        self.rootfs.write_bytes(b"\0" * 4096)
        self.reqlog = self.dir / "requests.jsonl"
        e = dict(os.environ)
        e["BANGER_FAKE_FC_LOG"] = str(self.reqlog)
        e.setdefault("BANGER_FAKE_AGENT", str(AGENT))
        e.pop("BANGER_FAKE_FC_FAULTS", None)
        if faults is not None:
            fpath = self.dir / "faults.json"
            fpath.write_text(json.dumps(faults) if not isinstance(faults, str) else faults)
            e["BANGER_FAKE_FC_FAULTS"] = str(fpath)
        if env:
            e.update(env)
        self.stdout_path = self.dir / "stdout.log"
        self.stderr_path = self.dir / "stderr.log"
        self.proc = subprocess.Popen(
            [str(FC), "--api-sock", self.sock, "--id", vm_id, *extra_args],
            stdout=open(self.stdout_path, "wb"),
            stderr=open(self.stderr_path, "wb"),
            env=e,
            cwd=cwd,
        )
        if wait:
            self.wait_ready()

    # -- helpers --
    def wait_ready(self, timeout=3.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"fake exited early with {self.proc.returncode}: {self.stderr()}")
            try:
                st, body, _ = self.req("GET", "/")
                if st == 200:
                    return body
            except (ConnectionRefusedError, FileNotFoundError):
                pass
            time.sleep(0.005)
        raise AssertionError("fake did not become ready")

    def req(self, method, path, body=None, raw=None):
        c = UnixHTTPConnection(self.sock)
        try:
            data = raw if raw is not None else (json.dumps(body) if body is not None else None)
            headers = {"Content-Type": "application/json"} if data is not None else {}
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            text = r.read()
            parsed = json.loads(text) if text else None
            return r.status, parsed, dict(r.getheaders())
        finally:
            c.close()

    def put(self, path, body=None, raw=None):
        return self.req("PUT", path, body, raw)

    def ok(self, method, path, body=None):
        st, b, _ = self.req(method, path, body)
        assert st in (200, 204), (method, path, st, b)
        return b

    def fault(self, method, path, body=None, raw=None):
        st, b, _ = self.req(method, path, body, raw)
        assert st == 400, (method, path, st, b)
        assert isinstance(b, dict) and set(b) == {"fault_message"}, b
        return b["fault_message"]

    def stdout(self):
        return self.stdout_path.read_text(errors="replace")

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def requests(self):
        if not self.reqlog.exists():
            return []
        return [json.loads(line) for line in self.reqlog.read_text().splitlines() if line]

    def configure(self, vsock=True, console=True):
        args = "console=ttyS0 reboot=k panic=1" if console else "reboot=k panic=1"
        self.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
        self.ok("PUT", "/boot-source", {"kernel_image_path": str(self.kernel), "boot_args": args})
        self.ok("PUT", "/drives/rootfs",
                {"drive_id": "rootfs", "path_on_host": str(self.rootfs), "is_root_device": True})
        if vsock:
            self.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": self.vsock})

    def start(self):
        self.ok("PUT", "/actions", {"action_type": "InstanceStart"})

    def agent_pids(self):
        return {p for p in children_of(self.proc.pid) if pid_alive(p)}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the fake removes its agent socket
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_fc(args, env=None, timeout=5):
    e = dict(os.environ)
    e.pop("BANGER_FAKE_FC_FAULTS", None)
    e.update(env or {})
    return subprocess.run([str(FC), *args], capture_output=True, text=True, timeout=timeout, env=e)


def vsock_connect(path, port=1024, keyword="CONNECT", timeout=2.0):
    """One hybrid-vsock handshake. Returns (socket, ok_line) or (None, b'') if closed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(f"{keyword} {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        try:
            d = s.recv(1)
        except ConnectionResetError:
            d = b""
        if not d:
            s.close()
            return None, line
        line += d
    return s, line


def boot_with_agent(spawn):
    """A started fake whose agent has answered over vsock, and the agent's pids."""
    need_agent()
    f = spawn()
    f.configure()
    f.start()
    healthz_over_vsock(f.vsock)
    return f, f.agent_pids()


def healthz_over_vsock(path, port=1024, deadline=5.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        s, line = vsock_connect(path, port)
        if s is None:
            time.sleep(0.02)
            continue
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        return line, data
    raise AssertionError("vsock CONNECT never succeeded")
