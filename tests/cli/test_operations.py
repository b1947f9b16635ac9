"""banger's handling of long operations against a live bangerd: several
VMs at once (POST /v1/vms/actions), --all, the progress display (piped,
on a terminal, --json, -q), Ctrl-C, --cancel and banger operation ...

Slow operations come from the test double's fault injection: with
agent_delay_ms the guest agent answers late, so a create or start sits in
its wait_health stage for that long."""
import json
import re
import signal
import subprocess
import time

import pytest

from ptyrun import run_pty
from test_cli import (USAGE_RE, assert_error, create_args, fails, image,  # noqa: F401
                      kv, ok, run, uniq)

OP_RE = re.compile(r"op-[0-9a-f]{16}")


def state_of(daemon, name):
    r = run(daemon, "vm", "show", name)
    return kv(r.stdout)["state"] if r.returncode == 0 else None


@pytest.fixture
def three(daemon, image):
    names = [uniq("fan") for _ in range(3)]
    for n in names:
        ok(run(daemon, *create_args(n, image)))
    yield names
    for n in names:
        run(daemon, "vm", "delete", "--force", n)


@pytest.fixture
def slow_agent(daemon):
    """The guest agent of VMs booted from now on answers after 3 s."""
    daemon.set_faults({"agent_delay_ms": 3000})
    yield 3.0
    daemon.clear_faults()


# ---------------------------------------------------------------- fan-out

def test_fan_out_with_an_unknown_vm(daemon, three):
    a, b, c = three
    ghost = uniq("ghost")
    r = fails(run(daemon, "vm", "stop", a, ghost, b), 3)
    assert r.stdout.splitlines() == ["%s: stopped" % a, "%s: stopped" % b]
    errs = [l for l in r.stderr.splitlines() if not l.startswith("stage: ")]
    assert errs == ["%s: error: vm_not_found: vm '%s' not found" % (ghost, ghost),
                    "banger: 1 of 3 vms failed"], r.stderr
    assert state_of(daemon, a) == state_of(daemon, b) == "stopped"
    assert state_of(daemon, c) == "running"

    r = ok(run(daemon, "vm", "start", a, b, c))
    assert sorted(r.stdout.splitlines()) == sorted(
        "%s: started" % n for n in (a, b, c))
    assert all(state_of(daemon, n) == "running" for n in three)


def test_fan_out_with_a_vm_in_the_wrong_state(daemon, three):
    a, b, c = three
    ok(run(daemon, "vm", "stop", "--timeout", "1", a, b))
    # c still runs: deleting it without --force fails, the others go.
    r = fails(run(daemon, "vm", "delete", a, b, c), 4)
    assert r.stdout.splitlines() == ["%s: deleted" % a, "%s: deleted" % b]
    assert "%s: error: vm_running: vm '%s' is running" % (c, c) in r.stderr
    assert "banger: 1 of 3 vms failed" in r.stderr
    assert state_of(daemon, a) is None and state_of(daemon, b) is None
    assert state_of(daemon, c) == "running"
    # --json: the operation only on stdout; the failure still on stderr.
    r = fails(run(daemon, "--json", "vm", "delete", c, uniq("ghost")), 4)
    op = json.loads(r.stdout)
    assert op["kind"] == "vms.actions" and op["state"] == "succeeded"
    assert [x["ok"] for x in op["result"]["results"]] == [False, False]
    assert "stage:" not in r.stderr
    assert "%s: error: vm_running" % c in r.stderr


def test_fan_out_flags_apply_to_all(daemon, three):
    a, b, c = three
    r = ok(run(daemon, "vm", "stop", "--timeout", "0", a, b, c))
    assert len(r.stdout.splitlines()) == 3
    r = ok(run(daemon, "-q", "vm", "start", a, b))
    assert r.stdout == "" and r.stderr == ""
    r = ok(run(daemon, "vm", "delete", "--force", a, b))
    assert r.stdout.splitlines() == ["%s: deleted" % a, "%s: deleted" % b]
    # The bulk route checks timeout_s like the single one.
    r = run(daemon, "vm", "stop", "--timeout", "601", c, a)
    assert_error(r, 1)


def test_all(fresh_daemon):
    d = fresh_daemon.start()
    names = ["all-a", "all-b", "all-c"]
    for n in names:
        ok(run(d, "vm", "create", "--name", n, "--vcpus", "1", "--memory",
               "128", "--disk", "1"))
    r = ok(run(d, "vm", "stop", "--all"))
    assert r.stdout.splitlines() == ["%s: stopped" % n for n in names]
    r = ok(run(d, "vm", "restart", "--all"))
    assert r.stdout.splitlines() == ["%s: restarted" % n for n in names]
    assert all(state_of(d, n) == "running" for n in names)
    # NAMEs and --all do not mix; deleting every VM needs --yes.
    r = fails(run(d, "vm", "stop", "--all", "all-a"), 2)
    assert USAGE_RE.search(r.stderr)
    r = fails(run(d, "vm", "delete", "--all", "--force"), 2)
    assert "add --yes to confirm" in r.stderr
    fails(run(d, "vm", "delete", "--yes", "all-a"), 2)
    assert all(state_of(d, n) == "running" for n in names)
    # --yes alone still refuses running VMs (they need --force).
    r = fails(run(d, "vm", "delete", "--all", "--yes"), 4)
    assert r.stderr.count("error: vm_running") == 3
    r = ok(run(d, "vm", "delete", "--all", "--yes", "--force"))
    assert r.stdout.splitlines() == ["%s: deleted" % n for n in names]
    r = ok(run(d, "vm", "stop", "--all"))
    assert r.stdout == "no vms to stop\n"


# ---------------------------------------------------------------- progress

def test_progress_piped_json_and_quiet(daemon, image, slow_agent):
    name = uniq("prog")
    try:
        r = ok(run(daemon, *create_args(name, image)))
        lines = r.stderr.splitlines()
        assert lines and all(l.startswith("stage: ") for l in lines), r.stderr
        stages = [l.split()[1] for l in lines]
        # One line per stage change, the slow stage among them.
        assert "wait_health" in stages, r.stderr
        assert all(x != y for x, y in zip(stages, stages[1:])), r.stderr
        assert stages[-1] == "done"
        assert "\r" not in r.stderr and "\x1b" not in r.stderr

        r = ok(run(daemon, "--json", "vm", "restart", name))
        assert r.stderr == ""
        op = json.loads(r.stdout)  # one JSON document, nothing else
        assert op["kind"] == "vm.restart" and op["state"] == "succeeded"

        r = ok(run(daemon, "-q", "vm", "restart", name))
        assert r.stdout == "" and r.stderr == ""
    finally:
        run(daemon, "vm", "delete", "--force", name)


def test_progress_shows_every_stage(daemon, image):
    """Stages that pass within a millisecond are shown too: the CLI follows
    the event stream, not a poll.  The test double's API socket comes up
    after 600 ms, so the stream is open before spawn_vmm ends; everything
    after it (configure and instance_start take well under a millisecond
    here) must be shown, in order.  The stages before it may pass before
    the stream opens, and are shown when they do not."""
    order = ["prepare_disks", "prepare_work_disk", "network", "spawn_vmm",
             "configure", "instance_start", "wait_health", "done"]
    name = uniq("every")
    daemon.set_faults({"listen_delay_ms": 600})
    try:
        r = ok(run(daemon, *create_args(name, image)))
        stages = [l.split()[1] for l in r.stderr.splitlines()]
        shown = [s for s in stages if s in order]
        assert shown == sorted(shown, key=order.index), r.stderr
        assert shown[-5:] == order[-5:], r.stderr
    finally:
        daemon.clear_faults()
        run(daemon, "vm", "delete", "--force", name)


def test_progress_on_a_terminal(daemon, image, slow_agent):
    name = uniq("tty")
    try:
        rc, out = run_pty([daemon.banger] + create_args(name, image),
                          daemon.env)
        assert rc == 0, out
        # One line redrawn in place: \r and erase-line, stage and percent.
        assert "\r\x1b[K" in out, repr(out)
        assert re.search(r"creating vm '%s': wait_health \(\d+%%\)" % name,
                         out), repr(out)
        assert "stage: " not in out
        # Cleared before the result is printed.
        assert out.endswith("\r\x1b[Kvm '%s' created (running)\r\n" % name), \
            repr(out)
    finally:
        run(daemon, "vm", "delete", "--force", name)


# ---------------------------------------------------------------- Ctrl-C

def interrupt_during(daemon, argv, stage="wait_health", timeout=30):
    """Run banger, send SIGINT once it shows 'stage', return the result."""
    p = subprocess.Popen([daemon.banger] + argv, env=daemon.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    seen = []
    deadline = time.time() + timeout
    for line in p.stderr:
        seen.append(line)
        if line.startswith("stage: %s" % stage):
            p.send_signal(signal.SIGINT)
            break
        assert time.time() < deadline, seen
    else:
        p.kill()
        raise AssertionError("never reached %s: %s" % (stage, seen))
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, "".join(seen) + err


def test_ctrl_c_stops_waiting_only(daemon, image, slow_agent):
    name = uniq("intr")
    try:
        rc, out, err = interrupt_during(daemon, create_args(name, image))
        assert rc == 130, err
        m = re.search(r"banger: stopped waiting; operation (op-[0-9a-f]+) "
                      r"goes on in bangerd", err)
        assert m, err
        op_id = m.group(1)
        assert "hint: follow it with 'banger operation wait %s'" % op_id in err
        assert out == ""
        # It went on: following it again sees it through.
        assert state_of(daemon, name) == "creating"
        r = ok(run(daemon, "operation", "wait", op_id))
        assert r.stdout == "operation %s (vm.create %s) succeeded\n" % (
            op_id, name)
        assert state_of(daemon, name) == "running"
        f = kv(ok(run(daemon, "operation", "show", op_id)).stdout)
        assert f["state"] == "succeeded" and f["kind"] == "vm.create"
        # A finished operation cannot be cancelled.
        assert_error(run(daemon, "operation", "cancel", op_id), 4)
    finally:
        run(daemon, "vm", "delete", "--force", name)


def test_cancel_create(daemon, image, slow_agent):
    name = uniq("cncl")
    try:
        t0 = time.time()
        rc, out, err = interrupt_during(
            daemon, create_args(name, image) + ["--cancel"])
        assert rc == 130, err
        assert re.search(r"banger: cancelling operation op-[0-9a-f]+", err), err
        m = re.search(r"banger: operation (op-[0-9a-f]+) was cancelled", err)
        assert m, err
        # Cancelled in its wait for the guest, not after it.
        assert time.time() - t0 < slow_agent + 2.5, err
        # A cancelled create leaves nothing.
        assert state_of(daemon, name) is None
        op = json.loads(ok(run(daemon, "--json", "operation", "show",
                               m.group(1))).stdout)
        assert op["state"] == "failed" and op["error"]["code"] == "cancelled"
        # Waiting on it again reports the cancel (a conflict, exit 4).
        r = fails(run(daemon, "operation", "wait", m.group(1)), 4)
        assert "was cancelled" in r.stderr
    finally:
        run(daemon, "vm", "delete", "--force", name)


def test_cancel_start_from_another_shell(daemon, image, slow_agent):
    name = uniq("cstart")
    ok(run(daemon, *create_args(name, image)))
    try:
        ok(run(daemon, "vm", "stop", name))
        r = ok(run(daemon, "vm", "start", name, "--no-wait"))
        op_id = r.stdout.strip()
        assert OP_RE.fullmatch(op_id), r.stdout
        r = ok(run(daemon, "operation", "cancel", op_id))
        assert r.stdout == "operation %s (vm.start %s): cancel requested\n" % (
            op_id, name)
        r = fails(run(daemon, "operation", "wait", op_id), 4)
        assert "operation %s was cancelled" % op_id in r.stderr
        assert state_of(daemon, name) == "stopped"
    finally:
        run(daemon, "vm", "delete", "--force", name)


def test_operation_commands_usage_and_errors(daemon):
    assert_error(run(daemon, "operation", "show", "op-0000000000000000"), 3)
    assert_error(run(daemon, "operation", "cancel", "op-0000000000000000"), 3)
    fails(run(daemon, "operation", "wait"), 2)
    r = ok(run(daemon, "operation", "list"))
    assert r.stdout.split("\n")[0].split() == ["ID", "KIND", "TARGET",
                                               "STATE", "STAGE", "CREATED"]
    assert "operation wait" in ok(run(daemon, "help")).stdout
