"""The test double's API: readiness, the command line, request bodies read
as Firecracker reads them, the pre-boot / post-boot state machine, the
request log.

Run with:  /usr/bin/python3 -m pytest tests/fakes   (BANGER_FAKE_FC: the
binary, default tests/fakes/firecracker; see fakefc.py)
"""
import json
import os
import socket
from pathlib import Path

import pytest

from fakefc import NOT_AFTER, NOT_BEFORE, SERDE, require_fake, run_fc, wait_until

require_fake()


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
