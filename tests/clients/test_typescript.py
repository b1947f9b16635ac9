"""The TypeScript client (clients/typescript) against a live bangerd.

The client and its node:test suite are compiled with tsc (which also checks
them against the generated schema.ts), then `node --test` runs the suite with
BANGER_SOCKET pointing at the daemon fixture's socket (Firecracker test
double, own network namespace; the socket is a plain file, so node in the
host namespace reaches it).
"""
import os
import re
import shutil
import subprocess

import pytest

from bangerlib import ROOT
from netns import EchoServer

ECHO_PORT = 7301

SDK = os.path.join(ROOT, "clients", "typescript")
SUITE = os.path.join(SDK, "dist", "test", "client.test.js")


def _tap_counts(out):
    counts = {}
    for key in ("tests", "pass", "fail", "skipped", "cancelled", "todo"):
        m = re.search(r"^# %s (\d+)$" % key, out, re.M)
        assert m, "no '# %s' line in the node --test output:\n%s" % (key, out)
        counts[key] = int(m.group(1))
    return counts


@pytest.fixture(scope="module")
def compiled():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: run .ci/deps.sh (make deps)")
    tsc = os.path.join(SDK, "node_modules", ".bin", "tsc")
    if not os.access(tsc, os.X_OK):
        pytest.fail("%s is missing: run 'npm ci' in %s (make deps does)"
                    % (tsc, SDK))
    r = subprocess.run([tsc, "-p", SDK], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, "tsc failed:\n" + r.stdout + r.stderr
    assert os.path.exists(SUITE), SUITE
    return node


def test_typescript_client_vm_lifecycle(daemon, compiled):
    env = dict(os.environ)
    env["BANGER_SOCKET"] = daemon.socket
    # A guest service for connect: in bangerd's network namespace, where
    # the double's agent connects.
    echo = EchoServer(daemon.proc.pid if daemon.netns else None, ECHO_PORT)
    env["BANGER_TEST_ECHO_PORT"] = str(ECHO_PORT)
    try:
        r = subprocess.run([compiled, "--test", "--test-reporter=tap", SUITE],
                           cwd=SDK, env=env, capture_output=True, text=True,
                           timeout=300)
    finally:
        echo.close()
    out = r.stdout + r.stderr
    assert r.returncode == 0, "node --test failed:\n" + out
    counts = _tap_counts(out)
    assert counts["tests"] > 0, out
    assert counts["pass"] == counts["tests"], out
    assert counts["skipped"] == 0, "the live-daemon suite was skipped:\n" + out
    for name in ("create answers 202 with an operation",
                 "list contains the VM with the requested spec",
                 "delete with force and wait removes the VM",
                 "is 404 vm_not_found",
                 "pause and resume answer with the VM",
                 "a snapshot is an operation whose result is the Snapshot",
                 "restore and clone",
                 "a warm image starts creates of its shape from its snapshot",
                 "exec streams a command's output and exit as NDJSON",
                 "files come out of a VM as a tar stream",
                 "ports in the spec, and connect streams to a guest port",
                 "shared folders: typed in the spec, refused on Firecracker",
                 "execTty runs a command on a terminal",
                 "usage, host capacity and metrics",
                 "a missing snapshot is 404 snapshot_not_found"):
        assert re.search(r"^\s*ok \d+ - .*%s" % re.escape(name), out, re.M), \
            "%r did not pass:\n%s" % (name, out)

    # Seen from the daemon's side: the client created a ts-* VM and deleted
    # it again, through operations that succeeded.
    ops = daemon.client.get("/v1/operations").json()["operations"]
    mine = [o for o in ops if (o["target"] or "").startswith("ts-")]
    kinds = {(o["kind"], o["state"]) for o in mine}
    assert ("vm.create", "succeeded") in kinds, mine
    assert ("vm.delete", "succeeded") in kinds, mine
    vms = daemon.client.get("/v1/vms").json()["vms"]
    assert not [v for v in vms if v["name"].startswith("ts-")], vms
