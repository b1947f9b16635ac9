"""Tests for the Firecracker test double (tests/fakes/firecracker).

Run with:  /usr/bin/python3 -m pytest tests/fakes/test_fake_firecracker.py

Environment:
  BANGER_FAKE_FC     path of the fake binary (default: tests/fakes/firecracker)
  BANGER_FAKE_AGENT  guest agent binary used by the fake (default:
                     runtime/banger-vsock-agent); agent tests skip if missing.
Only the standard library and pytest are used.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
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

    def __init__(self, d, vm_id="vm-test", faults=None, extra_args=(), env=None, wait=True):
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


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="fcf", dir="/tmp")  # short: sun_path is 108 bytes
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def spawn(workdir):
    fakes = []
    counter = [0]

    def _spawn(**kw):
        counter[0] += 1
        sub = workdir / f"f{counter[0]}"
        sub.mkdir()
        f = Fake(sub, **kw)
        fakes.append(f)
        return f

    yield _spawn
    for f in fakes:
        kids = f.agent_pids()
        f.stop()
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass


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


# --------------------------------------------------------------------------
# readiness, basic GETs, CLI
# --------------------------------------------------------------------------

def test_ready_and_instance_info(spawn):
    f = spawn(vm_id="vm-abc-1")
    st, body, hdrs = f.req("GET", "/")
    assert st == 200
    assert body == {"id": "vm-abc-1", "state": "Not started", "vmm_version": "1.16.1",
                    "app_name": "Firecracker"}
    assert hdrs.get("Content-Type") == "application/json"
    assert f.ok("GET", "/version") == {"firecracker_version": "1.16.1"}
    assert f.ok("GET", "/machine-config") == {"vcpu_count": 1, "mem_size_mib": 128, "smt": False,
                                               "track_dirty_pages": False, "huge_pages": "None"}
    assert "Running Firecracker v1.16.1" in f.stdout()


def test_socket_file_exists_before_listen(spawn):
    f = spawn(faults={"listen_delay_ms": 400}, wait=False)
    assert wait_until(lambda: os.path.exists(f.sock), 2.0)
    s = socket.socket(socket.AF_UNIX)
    with pytest.raises(ConnectionRefusedError):
        s.connect(f.sock)
    s.close()
    f.wait_ready()


def run_fc(args, env=None, timeout=5):
    e = dict(os.environ)
    e.pop("BANGER_FAKE_FC_FAULTS", None)
    e.update(env or {})
    return subprocess.run([str(FC), *args], capture_output=True, text=True, timeout=timeout, env=e)


def test_cli(workdir):
    r = run_fc(["--version"])
    assert r.returncode == 0 and "Firecracker v1.16.1" in r.stdout
    sock = str(workdir / "a.sock")
    assert run_fc(["--api-sock", sock, "--id", "bad_id"]).returncode == 153
    assert run_fc(["--api-sock", sock, "--id", "x" * 65]).returncode == 153
    assert run_fc(["--api-sock", sock, "--id", ""]).returncode == 153
    assert run_fc(["--api-sock", sock, "--bogus"]).returncode == 153
    assert run_fc(["--api-sock", sock, "--api-sock", sock]).returncode == 153
    assert run_fc(["--api-sock"]).returncode == 153
    r = run_fc(["--api-sock", sock, "--config-file", "/dev/null"])
    assert r.returncode == 153 and "config-file" in r.stderr
    assert not os.path.exists(sock)
    # existing path: "Address in use", exit 1, file untouched
    Path(sock).write_text("")
    r = run_fc(["--api-sock", sock, "--id", "a"])
    assert r.returncode == 1
    assert "Failed to open the API socket" in r.stdout + r.stderr
    assert "Address in use" in r.stderr
    assert Path(sock).is_file()
    long = str(workdir / ("x" * 120))
    r = run_fc(["--api-sock", long, "--id", "a"])
    assert r.returncode == 1 and not os.path.exists(long)


def test_log_path_flag(spawn, workdir):
    log = workdir / "fc.log"
    f = spawn(extra_args=["--log-path", str(log), "--level", "Debug", "--show-level"])
    assert "Running Firecracker v1.16.1" in log.read_text()
    assert ":INFO]" in log.read_text()
    # logger is configured already -> once only
    assert "once" in f.fault("PUT", "/logger", {"level": "Info"})


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

@pytest.mark.parametrize("path,body,expect", [
    ("/machine-config", {"vcpu_count": 2, "mem_size_mib": 256, "foo": 1},
     SERDE + "unknown field `foo`, expected one of `vcpu_count`, `mem_size_mib`, `smt`, "
     "`cpu_template`, `track_dirty_pages`, `huge_pages` at line 1 column 44."),
    ("/machine-config", {"vcpu_count": "2", "mem_size_mib": 256},
     SERDE + 'invalid type: string "2", expected u8 at line 1 column 18.'),
    ("/machine-config", {"mem_size_mib": 128}, SERDE + "missing field `vcpu_count` at line 1 column 21."),
    ("/machine-config", {"vcpu_count": 2}, SERDE + "missing field `mem_size_mib` at line 1 column 17."),
    ("/machine-config", {"vcpu_count": -1, "mem_size_mib": 1}, SERDE + "invalid value: integer `-1`, expected u8"),
    ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 1.5}, SERDE + "invalid type: floating point `1.5`"),
    ("/machine-config", {"vcpu_count": 33, "mem_size_mib": 128}, "Machine config error: The number of vCPUs"),
    ("/machine-config", {"vcpu_count": 0, "mem_size_mib": 128}, "Machine config error: The number of vCPUs"),
    ("/machine-config", {"vcpu_count": 3, "mem_size_mib": 128, "smt": True}, "Machine config error: The number"),
    ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 0}, "The memory size (MiB) is either 0"),
    ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64, "smt": "yes"}, "expected a boolean"),
    ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64, "huge_pages": "1G"}, "unknown variant `1G`"),
    ("/boot-source", {"boot_args": "x"}, SERDE + "missing field `kernel_image_path`"),
    ("/boot-source", {"kernel_image_path": "/nonexistent/vmlinux"},
     "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)"),
    ("/boot-source", {"kernel_image_path": "{kernel}", "initrd_path": "/nonexistent"},
     "The initrd file cannot be opened"),
    ("/boot-source", {"kernel_image_path": "{kernel}", "boot_args": 5}, "expected a string"),
    ("/drives/rootfs", {"drive_id": "other", "path_on_host": "{rootfs}", "is_root_device": True},
     "The id from the path does not match the id from the body!"),
    ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "{rootfs}"}, "missing field `is_root_device`"),
    ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/nonexistent", "is_root_device": True},
     "No such file or directory"),
    ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "{rootfs}", "is_root_device": True,
                        "cache_type": "Fast"}, "unknown variant `Fast`, expected `Unsafe` or `Writeback`"),
    ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "{rootfs}", "is_root_device": True,
                        "io_engine": "Uring"}, "unknown variant `Uring`"),
    ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "{rootfs}", "is_root_device": "yes"},
     "expected a boolean"),
    ("/drives/my-drive", {"drive_id": "my-drive", "path_on_host": "{rootfs}", "is_root_device": True},
     "API Resource IDs can only contain alphanumeric characters and underscores."),
    ("/drives", {"drive_id": "x", "path_on_host": "{rootfs}", "is_root_device": True},
     "The ID cannot be empty."),
    ("/network-interfaces/eth0", {"iface_id": "eth1", "host_dev_name": "tap0"},
     "The id from the path does not match the id from the body!"),
    ("/network-interfaces/eth0", {"iface_id": "eth0"}, "missing field `host_dev_name`"),
    ("/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz"},
     "invalid MAC address"),
    ("/vsock", {"guest_cid": 2, "uds_path": "{dir}/v.sock"}, "Vsock config error"),
    ("/vsock", {"uds_path": "{dir}/v.sock"}, "missing field `guest_cid`"),
    ("/vsock", {"guest_cid": 3}, "missing field `uds_path`"),
    ("/logger", {"level": "Loud"}, SERDE + "Invalid LevelFilter"),
    ("/logger", {"log_path": "/nonexistent/dir/fc.log"}, "Logger error: Failed to open target file"),
    ("/actions", {"action_type": "Reboot"}, "unknown variant `Reboot`, expected one of `FlushMetrics`, "
                                           "`InstanceStart`, `SendCtrlAltDel`"),
    ("/actions", {}, "missing field `action_type`"),
])
def test_put_validation(spawn, path, body, expect):
    f = spawn()
    body = json.loads(json.dumps(body).replace("{kernel}", str(f.kernel)).replace(
        "{rootfs}", str(f.rootfs)).replace("{dir}", str(f.dir)))
    msg = f.fault("PUT", path, body)
    assert expect in msg, msg


@pytest.mark.parametrize("method,path,raw,expect", [
    ("PUT", "/machine-config", '{"vcpu_count": 2, "mem_size_mib": 256', SERDE + "EOF while parsing an object"),
    ("PUT", "/machine-config", "not json", SERDE + "expected ident at line 1 column 2."),
    ("PUT", "/machine-config", '{"vcpu_count": 1,}', SERDE + "trailing comma"),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 2} x', SERDE + "trailing characters"),
    ("PUT", "/machine-config", '[1]', SERDE + "invalid type: sequence, expected struct MachineConfig"),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "vcpu_count": 1}', SERDE + "duplicate field `vcpu_count`"),
    ("PUT", "/drives/rootfs", "", "Empty PUT request."),
    ("PUT", "/nowhere", "", "Empty PUT request."),
    ("PATCH", "/machine-config", "", "Empty PATCH request."),
    ("PATCH", "/machine-config", "{}", "Empty PATCH request."),
    ("GET", "/", "x", "GET request cannot have a body."),
    ("GET", "/machine-config", "{}", "GET request cannot have a body."),
    ("GET", "/nowhere", None, "Invalid request method and/or path: GET nowhere."),
    ("PUT", "/nowhere", "{}", "Invalid request method and/or path: PUT nowhere."),
    ("DELETE", "/drives/rootfs", None, "Invalid request method and/or path: DELETE drives."),
    ("POST", "/actions", '{"action_type": "InstanceStart"}', "Invalid request method and/or path: POST actions."),
])
def test_malformed_requests(spawn, method, path, raw, expect):
    f = spawn()
    msg = f.fault(method, path, raw=raw)
    assert msg.startswith(expect) or expect in msg, msg


def test_drive_rules(spawn):
    f = spawn()
    other = f.dir / "work.ext4"
    other.write_bytes(b"\0")
    f.ok("PUT", "/drives/work", {"drive_id": "work", "path_on_host": str(other), "is_root_device": False,
                                 "is_read_only": True, "cache_type": "Writeback", "io_engine": "Async",
                                 "rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}})
    f.ok("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(f.rootfs), "is_root_device": True,
                                   "partuuid": "abcd-01"})
    msg = f.fault("PUT", "/drives/second", {"drive_id": "second", "path_on_host": str(other),
                                            "is_root_device": True})
    assert msg == "Drive config error: A root block device already exists!"
    # updating the root drive in place is fine
    f.ok("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(f.rootfs), "is_root_device": True})
    cfg = f.ok("GET", "/vm/config")
    assert [d["drive_id"] for d in cfg["drives"]] == ["rootfs", "work"]  # root always first
    work = cfg["drives"][1]
    assert work["is_read_only"] is True and work["cache_type"] == "Writeback" and work["io_engine"] == "Async"
    assert work["rate_limiter"] == {"bandwidth": {"size": 1000, "refill_time": 100}}


def test_network_rules(spawn):
    f = spawn()
    f.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                             "guest_mac": "06:00:AC:10:00:02"})
    assert "MAC address is already in use" in f.fault(
        "PUT", "/network-interfaces/eth1", {"iface_id": "eth1", "host_dev_name": "tap1",
                                            "guest_mac": "06:00:AC:10:00:02"})
    assert "Resource busy" in f.fault(
        "PUT", "/network-interfaces/eth1", {"iface_id": "eth1", "host_dev_name": "tap0"})
    f.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"})  # update in place
    cfg = f.ok("GET", "/vm/config")
    assert cfg["network-interfaces"] == [{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": None,
                                          "rx_rate_limiter": None, "tx_rate_limiter": None}]


def test_machine_config_put_and_patch(spawn):
    f = spawn()
    f.ok("PUT", "/machine-config", {"vcpu_count": 4, "mem_size_mib": 512, "smt": True})
    f.ok("PATCH", "/machine-config", {"mem_size_mib": 1024})
    assert f.ok("GET", "/machine-config") == {"vcpu_count": 4, "mem_size_mib": 1024, "smt": True,
                                               "track_dirty_pages": False, "huge_pages": "None"}
    # PUT resets optional fields that are left out
    f.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})
    assert f.ok("GET", "/machine-config")["smt"] is False
    st, _, hdrs = f.req("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "None"})
    assert st == 204 and hdrs.get("Deprecation") == "true"


def test_logger_once_and_levels(spawn):
    f = spawn()
    log = f.dir / "fc.log"
    f.ok("PUT", "/logger", {"log_path": str(log), "level": "wArNiNg", "show_level": True,
                            "show_log_origin": False})
    assert log.exists()  # created
    assert "only be configured once" in f.fault("PUT", "/logger", {"level": "Info"})
    assert ":ERROR]" in log.read_text()  # the failed request was logged at error level


def test_vm_config_shape(spawn):
    f = spawn()
    f.configure()
    f.ok("PUT", "/network-interfaces/net0", {"iface_id": "net0", "host_dev_name": "tap-a"})
    cfg = f.ok("GET", "/vm/config")
    assert cfg["boot-source"] == {"kernel_image_path": str(f.kernel),
                                  "boot_args": "console=ttyS0 reboot=k panic=1", "initrd_path": None}
    assert cfg["machine-config"]["vcpu_count"] == 2 and cfg["machine-config"]["mem_size_mib"] == 256
    assert cfg["drives"][0] == {"drive_id": "rootfs", "partuuid": None, "is_root_device": True,
                                "cache_type": "Unsafe", "is_read_only": False, "path_on_host": str(f.rootfs),
                                "io_engine": "Sync", "rate_limiter": None, "socket": None}
    assert cfg["vsock"] == {"guest_cid": 3, "uds_path": f.vsock}
    assert cfg["logger"] is None
    for key in ("balloon", "cpu-config", "metrics", "mmds-config", "entropy", "memory-hotplug"):
        assert cfg[key] is None
    assert cfg["pmem"] == []


# --------------------------------------------------------------------------
# pre-boot / post-boot state machine
# --------------------------------------------------------------------------

def test_post_boot_only_before_start(spawn):
    f = spawn()
    assert f.fault("PUT", "/actions", {"action_type": "SendCtrlAltDel"}) == NOT_BEFORE
    assert f.fault("PUT", "/actions", {"action_type": "FlushMetrics"}) == NOT_BEFORE
    assert f.fault("PATCH", "/vm", {"state": "Paused"}) == NOT_BEFORE
    assert f.fault("PATCH", "/drives/rootfs", {"drive_id": "rootfs"}) == NOT_BEFORE
    assert f.fault("PUT", "/actions", {"action_type": "InstanceStart"}) == \
        "Start microvm error: Cannot start microvm without kernel configuration."
    assert f.ok("GET", "/")["state"] == "Not started"


def test_pre_boot_only_after_start(spawn):
    f = spawn()
    f.configure(vsock=False)
    f.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"})
    f.start()
    assert f.ok("GET", "/")["state"] == "Running"
    calls = [
        ("/boot-source", {"kernel_image_path": str(f.kernel)}),
        ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}),
        ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(f.rootfs), "is_root_device": True}),
        ("/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"}),
        ("/vsock", {"guest_cid": 3, "uds_path": f.vsock}),
        ("/logger", {"level": "Info"}),
        ("/actions", {"action_type": "InstanceStart"}),
    ]
    for path, body in calls:
        assert f.fault("PUT", path, body) == NOT_AFTER, path
    assert f.fault("PATCH", "/machine-config", {"vcpu_count": 2}) == NOT_AFTER
    assert not os.path.exists(f.vsock)  # the rejected PUT /vsock did not bind
    # parse errors still come first, as in Firecracker
    assert f.fault("PUT", "/boot-source", {"bogus": 1}).startswith(SERDE)
    # post-boot calls work now
    f.ok("PATCH", "/vm", {"state": "Paused"})
    assert f.ok("GET", "/")["state"] == "Paused"
    f.ok("PATCH", "/vm", {"state": "Resumed"})
    assert f.ok("GET", "/")["state"] == "Running"
    f.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    f.ok("PATCH", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(f.rootfs)})
    f.ok("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0",
                                               "rx_rate_limiter": {"ops": {"size": 1, "refill_time": 1}}})
    assert "unknown variant `Running`" in f.fault("PATCH", "/vm", {"state": "Running"})


# --------------------------------------------------------------------------
# console, vsock, agent
# --------------------------------------------------------------------------

def test_console_output_on_start(spawn):
    f = spawn()
    f.configure(vsock=False)
    f.start()
    out = wait_until(lambda: "Run /sbin/init" in f.stdout() and f.stdout())
    assert "Linux version" in out
    assert "Command line: console=ttyS0 reboot=k panic=1 root=/dev/vda rw pci=off" in out


def test_no_console_without_ttyS0(spawn):
    f = spawn()
    f.configure(vsock=False, console=False)
    f.start()
    time.sleep(0.1)
    assert "Linux version" not in f.stdout()


def test_vsock_binds_on_put(spawn):
    f = spawn()
    f.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": f.vsock})
    assert Path(f.vsock).is_socket()
    # binding again at the same path fails like EADDRINUSE
    msg = f.fault("PUT", "/vsock", {"guest_cid": 4, "uds_path": f.vsock})
    assert msg == ("Vsock config error: Cannot create backend for vsock device: Error binding to the "
                   "host-side Unix socket: Address in use (os error 98)")
    # a stale file left by another (dead) VMM blocks the bind too
    g = spawn()
    Path(g.vsock).write_text("stale")
    assert "Address in use" in g.fault("PUT", "/vsock", {"guest_cid": 3, "uds_path": g.vsock})


def test_vsock_relay_to_real_agent(spawn):
    need_agent()
    f = spawn()
    f.configure()
    f.start()
    line, data = healthz_over_vsock(f.vsock)
    assert line == b"OK 1073741824\n"
    assert data.startswith(b"HTTP/1."), data[:200]
    assert b" 200 " in data.split(b"\r\n", 1)[0]
    # a lower-case keyword is accepted
    s, line = vsock_connect(f.vsock, keyword="connect")
    assert s is not None and line.startswith(b"OK ")
    s.close()
    # nobody listens on another guest port: closed with no message
    s, line = vsock_connect(f.vsock, port=52)
    assert s is None and line == b""
    # garbage instead of CONNECT: closed
    s, line = vsock_connect(f.vsock, keyword="HELLO")
    assert s is None and line == b""

    # several concurrent connections, host ports allocated upward
    results = []

    def worker():
        results.append(healthz_over_vsock(f.vsock))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 16
    ports = sorted(int(line.split()[1]) for line, _ in results)
    assert len(set(ports)) == 16 and ports[0] > 1073741824
    assert all(b" 200 " in d.split(b"\r\n", 1)[0] for _, d in results)
    assert Path(f.vsock + ".agent").exists()


def test_long_uds_path_still_reaches_agent(spawn):
    need_agent()
    f = spawn()
    long_dir = f.dir / ("d" * (104 - len(str(f.dir)) - 8))
    long_dir.mkdir()
    f.vsock = str(long_dir / "v.sock")
    assert len(f.vsock) == 104 and len(f.vsock + ".agent") > 107
    f.configure()
    f.start()
    line, data = healthz_over_vsock(f.vsock)
    assert line == b"OK 1073741824\n" and data.startswith(b"HTTP/1.")


def test_ctrl_alt_del_exits_cleanly(spawn):
    f, agents = boot_with_agent(spawn)
    assert len(agents) == 1
    f.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    assert f.proc.wait(3) == 0
    assert "reboot: Restarting system" in f.stdout()
    assert not any(pid_alive(p) for p in agents)
    # like Firecracker: sockets stay behind; the fake's own .agent socket is removed
    assert Path(f.sock).is_socket() and Path(f.vsock).is_socket()
    assert not os.path.exists(f.vsock + ".agent")


def test_ctrl_alt_del_while_paused_waits_for_resume(spawn):
    f = spawn()
    f.configure(vsock=False)
    f.start()
    f.ok("PATCH", "/vm", {"state": "Paused"})
    f.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    time.sleep(0.2)
    assert f.proc.poll() is None
    f.ok("PATCH", "/vm", {"state": "Resumed"})
    assert f.proc.wait(3) == 0


def test_sigterm_kills_fake_and_agent(spawn):
    f, agents = boot_with_agent(spawn)
    f.proc.send_signal(signal.SIGTERM)
    assert f.proc.wait(3) == -signal.SIGTERM
    assert wait_until(lambda: not any(pid_alive(p) for p in agents), 2)
    assert Path(f.sock).exists() and Path(f.vsock).exists()


def test_agent_dies_with_sigkilled_fake(spawn):
    f, agents = boot_with_agent(spawn)
    assert agents
    f.proc.kill()
    f.proc.wait()
    assert wait_until(lambda: not any(pid_alive(p) for p in agents), 2)


def test_missing_agent_binary_is_reported(spawn):
    f = spawn(env={"BANGER_FAKE_AGENT": "/nonexistent/agent"})
    f.configure()
    f.start()
    assert wait_until(lambda: "not usable" in f.stderr(), 2)
    s, line = vsock_connect(f.vsock)
    assert s is None and line == b""
    assert f.ok("GET", "/")["state"] == "Running"


# --------------------------------------------------------------------------
# fault injection
# --------------------------------------------------------------------------

def test_fault_fail(spawn):
    f = spawn(faults={"fail": "PUT /drives/work", "fail_message": "disk on fire"})
    work = f.dir / "work.ext4"
    work.write_bytes(b"\0")
    f.configure(vsock=False)
    assert f.fault("PUT", "/drives/work", {"drive_id": "work", "path_on_host": str(work),
                                           "is_root_device": False}) == "disk on fire"
    g = spawn(faults={"fail": ["PUT /actions", "GET /machine-config"]})
    assert g.fault("GET", "/machine-config") == "injected fault"
    g.configure(vsock=False)
    assert g.fault("PUT", "/actions", {"action_type": "InstanceStart"}) == "injected fault"
    assert g.ok("GET", "/")["state"] == "Not started"


def test_fault_listen_delay(spawn):
    t0 = time.monotonic()
    f = spawn(faults={"listen_delay_ms": 300})
    assert time.monotonic() - t0 >= 0.28
    assert f.ok("GET", "/")["id"] == "vm-test"


def test_fault_die_after_start(spawn):
    f = spawn(faults={"die_after_start": True})
    f.configure()
    f.start()  # answered 204 first
    assert f.proc.wait(3) == 1
    assert not os.path.exists(f.vsock + ".agent")


def test_fault_exit_at_start(spawn):
    f = spawn(faults={"exit_at_start": 7}, wait=False)
    assert f.proc.wait(3) == 7
    assert not os.path.exists(f.sock)


def test_fault_agent_delay(spawn):
    need_agent()
    f = spawn(faults={"agent_delay_ms": 500})
    f.configure()
    t0 = time.monotonic()
    f.start()
    # guest still "booting": the CONNECT is closed without an answer
    s, line = vsock_connect(f.vsock)
    assert s is None and line == b""
    line, data = healthz_over_vsock(f.vsock)
    assert line.startswith(b"OK ") and time.monotonic() - t0 >= 0.5


def test_fault_no_agent(spawn):
    f = spawn(faults={"no_agent": True})
    f.configure()
    f.start()
    time.sleep(0.2)
    assert f.agent_pids() == set()
    s, line = vsock_connect(f.vsock)
    assert s is None and line == b""


def test_fault_ignore_ctrl_alt_del(spawn):
    f = spawn(faults={"ignore_ctrl_alt_del": True})
    f.configure(vsock=False)
    f.start()
    f.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    time.sleep(0.3)
    assert f.proc.poll() is None
    f.proc.send_signal(signal.SIGTERM)
    assert f.proc.wait(3) == -signal.SIGTERM


def test_fault_shutdown_delay(spawn):
    f = spawn(faults={"shutdown_delay_ms": 400})
    f.configure(vsock=False)
    f.start()
    t0 = time.monotonic()
    f.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    assert f.proc.wait(3) == 0
    assert time.monotonic() - t0 >= 0.35


def test_fault_match_id(spawn):
    f = spawn(vm_id="vm-other", faults={"fail": "GET /", "match_id": "target"})
    assert f.ok("GET", "/")["id"] == "vm-other"
    g = spawn(vm_id="vm-target-7", faults={"fail": "GET /version", "match_id": "target"})
    assert g.fault("GET", "/version") == "injected fault"


@pytest.mark.parametrize("faults", ['{"fial": "PUT /actions"}', '{"die_after_start": 1}', "not json",
                                    '{"fail": "drives"}'])
def test_fault_file_errors_exit_2(spawn, faults):
    f = spawn(faults=faults, wait=False)
    assert f.proc.wait(3) == 2
    assert f.stderr().strip()


def test_fault_file_missing_is_ignored(spawn, workdir):
    f = spawn(env={"BANGER_FAKE_FC_FAULTS": str(workdir / "nope.json")})
    assert f.ok("GET", "/")["state"] == "Not started"


# --------------------------------------------------------------------------
# request log
# --------------------------------------------------------------------------

def test_request_log(spawn):
    f = spawn()
    f.configure(vsock=False)
    f.fault("PUT", "/drives/x", raw="")
    reqs = f.requests()
    calls = [(r["method"], r["path"], r["status"]) for r in reqs]
    assert calls[-4:] == [("PUT", "/machine-config", 204), ("PUT", "/boot-source", 204),
                          ("PUT", "/drives/rootfs", 204), ("PUT", "/drives/x", 400)]
    assert json.loads(reqs[-4]["body"]) == {"vcpu_count": 2, "mem_size_mib": 256}
    assert reqs[-1]["body"] is None and reqs[-1]["fault_message"] == "Empty PUT request."
    assert all(r["id"] == "vm-test" for r in reqs)
