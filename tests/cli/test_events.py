"""banger events against a live bangerd and the Firecracker test double.

'banger events' follows GET /v1/events until Ctrl-C (exit 0).  A stream
only shows what happens after it subscribed, so each test first waits for
a marker event it causes itself (a PATCH that emits vm.updated, or an
operation) before doing what it checks.  Every wait polls with a deadline.
"""
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid

import jsonschema
import pytest

from bangerlib import SPEC, _RESOLVER

EVENT_VALIDATOR = jsonschema.Draft202012Validator(
    {"$ref": "#/components/schemas/Event"}, resolver=_RESOLVER)
SCHEMA_OF_DATA = {"vm.created": "VM", "vm.updated": "VM",
                  "operation.created": "Operation",
                  "operation.updated": "Operation",
                  "operation.finished": "Operation"}
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


class Events:
    """A running 'banger events ARGS...' whose output is read as it comes."""

    def __init__(self, daemon, *args):
        self.argv = [daemon.banger, "events"] + list(args)
        self.p = subprocess.Popen(self.argv, env=daemon.env,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.out, self.err = [], []
        self._threads = [
            threading.Thread(target=self._read, args=(self.p.stdout, self.out),
                             daemon=True),
            threading.Thread(target=self._read, args=(self.p.stderr, self.err),
                             daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(f, into):
        for line in f:
            into.append(line.rstrip("\n"))

    def describe(self):
        return "%s\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.argv[1:]), "\n".join(self.out), "\n".join(self.err))

    def wait_for(self, pred, what, timeout=30, poke=None):
        """Until a stdout line satisfies pred; calls poke() between tries."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in list(self.out):
                if pred(line):
                    return line
            if self.p.poll() is not None:
                time.sleep(0.2)  # let the readers finish
                raise AssertionError("exited %s before %s\n%s" % (
                    self.p.returncode, what, self.describe()))
            if poke is not None:
                poke()
            time.sleep(0.1)
        raise AssertionError("no %s within %ds\n%s" % (
            what, timeout, self.describe()))

    def wait_stderr(self, text, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(text in l for l in list(self.err)):
                return
            time.sleep(0.1)
        raise AssertionError("stderr never said %r\n%s" % (text,
                                                           self.describe()))

    def events(self):
        return [json.loads(l) for l in list(self.out)]

    def interrupt(self, timeout=10):
        self.p.send_signal(signal.SIGINT)
        rc = self.p.wait(timeout)
        for t in self._threads:
            t.join(5)
        return rc

    def wait_exit(self, timeout):
        rc = self.p.wait(timeout)
        for t in self._threads:
            t.join(5)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def check_clean(self):
        for marker in SANITIZER_MARKERS:
            assert marker not in "\n".join(self.err), self.describe()


def is_event(line, type_, vm=None):
    """True for a --json line that is this event."""
    try:
        ev = json.loads(line)
    except ValueError:
        return False
    return ev.get("type") == type_ and (vm is None or ev.get("vm") == vm)


def patcher(api, name):
    """A poke that makes bangerd emit vm.updated for 'name'."""
    def poke():
        r = api.patch("/v1/vms/" + name, {"nat": False})
        assert r.status_code == 200, r.text
    return poke


@pytest.fixture
def marker_vm(api):
    """A VM whose PATCHes serve as 'the stream is live' markers."""
    name = uniq("mark")
    api.create_vm(name, vcpus=1)
    yield name
    api.delete_vm(name)


def test_events_lines_and_json(api, daemon, marker_vm):
    name = uniq("evt")
    text = Events(daemon)
    js = Events(daemon, "--json")
    try:
        poke = patcher(api, marker_vm)
        js.wait_for(lambda l: is_event(l, "vm.updated", marker_vm),
                    "the marker event", poke=poke)
        text.wait_for(lambda l: " vm.updated " in l and marker_vm in l,
                      "the marker line", poke=poke)

        api.create_vm(name, vcpus=1)
        api.action(name, "stop")
        js.wait_for(lambda l: is_event(l, "operation.finished", name)
                    and json.loads(l)["data"]["kind"] == "vm.stop",
                    "the stop operation's end")
        text.wait_for(lambda l: name in l and " operation.finished " in l
                      and "vm.stop succeeded" in l, "the stop line")

        # --json: one Event per line, valid against openapi.yaml.
        evs = js.events()
        ids = [e["id"] for e in evs]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
        for e in evs:
            EVENT_VALIDATOR.validate(e)
            kind = SCHEMA_OF_DATA.get(e["type"])
            if kind:
                jsonschema.Draft202012Validator(
                    {"$ref": "#/components/schemas/" + kind},
                    resolver=_RESOLVER).validate(e["data"])
        mine = [e for e in evs if e["vm"] == name]
        types = [e["type"] for e in mine]
        assert types[0] == "vm.created", types
        for t in ("operation.created", "operation.updated",
                  "operation.finished", "vm.state"):
            assert t in types, types
        states = [e["data"]["state"] for e in mine if e["type"] == "vm.state"]
        assert states[-1] == "stopped" and "running" in states, states
        ops = {e["operation"] for e in mine if e["type"].startswith("operation.")}
        assert len(ops) == 2 and all(o.startswith("op-") for o in ops), ops

        # Lines: time, type, VM, summary.
        lines = [l.split(None, 3) for l in text.out if name in l]
        assert lines[0][1] == "vm.created" and lines[0][2] == name, lines
        assert lines[0][0].endswith("Z") and "T" in lines[0][0], lines[0]
        assert "image default, 1 vcpus" in lines[0][3], lines[0]
        state_lines = [l[3] for l in lines if l[1] == "vm.state"]
        assert "running (was creating)" in state_lines, state_lines
        assert "stopped (was stopping)" in state_lines, state_lines
        assert any(l[1] == "operation.updated" and "vm.create running: " in l[3]
                   for l in lines), lines
    finally:
        rcs = (text.interrupt(), js.interrupt())
        api.delete_vm(name)
    # Ctrl-C is the normal way out.
    assert rcs == (0, 0), (rcs, text.describe(), js.describe())
    text.check_clean()
    js.check_clean()


def test_events_filters(api, daemon):
    x, y = uniq("fx"), uniq("fy")
    api.create_vm(x, vcpus=1)
    api.create_vm(y, vcpus=1)
    # --type repeats (and takes a,b); --vm names one VM.
    only_x = Events(daemon, "--json", "--vm", x, "--type", "vm.state",
                    "--type", "vm.updated")
    ops = Events(daemon, "--json", "--type", "operation.finished")
    family = Events(daemon, "--json", "--type", "image.*,vm.*")
    try:
        only_x.wait_for(lambda l: is_event(l, "vm.updated", x), "x's marker",
                        poke=patcher(api, x))
        family.wait_for(lambda l: is_event(l, "vm.updated", x),
                        "x's marker (vm.*)", poke=patcher(api, x))
        # ops only sees operations: cause some until one shows.
        acts = iter(["stop", "start"] * 10)
        ops.wait_for(lambda l: is_event(l, "operation.finished", y),
                     "an operation on y",
                     poke=lambda: api.action(y, next(acts)))

        api.action(y, "restart")
        api.action(x, "stop")
        # The last thing about x: once it shows, whatever came before it
        # (y's events) would have shown as well.
        patcher(api, x)()
        only_x.wait_for(lambda l: is_event(l, "vm.updated", x)
                        and json.loads(l)["data"]["status"]["state"] == "stopped",
                        "x's last marker")
        ops.wait_for(lambda l: is_event(l, "operation.finished", x),
                     "x's stop")
        family.wait_for(lambda l: is_event(l, "vm.updated", x)
                        and json.loads(l)["data"]["status"]["state"] == "stopped",
                        "x's last marker (vm.*)")
    finally:
        rcs = (only_x.interrupt(), ops.interrupt(), family.interrupt())
        api.delete_vm(x)
        api.delete_vm(y)
    assert rcs == (0, 0, 0), rcs

    evs = only_x.events()
    assert {e["vm"] for e in evs} == {x}, only_x.describe()
    assert {e["type"] for e in evs} == {"vm.state", "vm.updated"}, evs
    assert [e["data"]["state"] for e in evs if e["type"] == "vm.state"] == \
        ["stopping", "stopped"], only_x.describe()

    evs = ops.events()
    assert {e["type"] for e in evs} == {"operation.finished"}, ops.describe()
    kinds = {(e["vm"], e["data"]["kind"]) for e in evs}
    assert (y, "vm.restart") in kinds and (x, "vm.stop") in kinds, kinds

    evs = family.events()
    assert all(e["type"].startswith(("vm.", "image.")) for e in evs), evs
    assert any(e["type"] == "vm.state" and e["vm"] == y for e in evs), evs
    for s in (only_x, ops, family):
        s.check_clean()


def run_events(daemon, *args, timeout=20):
    return subprocess.run([daemon.banger, "events"] + list(args),
                          env=daemon.env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("bad", ["vm.bogus", "vm", "vm.", "*", "VM.STATE",
                                 "vm.state,nope", ""])
def test_events_bad_type_is_usage_error(daemon, bad):
    r = run_events(daemon, "--type", bad)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.startswith("banger: "), r.stderr
    assert "usage: banger events" in r.stderr, r.stderr
    assert r.stdout == ""


def test_events_bad_vm_name_is_rejected(daemon):
    # bangerd judges names, as for every other command: 400 invalid_name.
    r = run_events(daemon, "--vm", "Not_A_Label")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.startswith("banger: invalid vm name"), r.stderr
    assert r.stdout == ""
    r = run_events(daemon, "--vm", "")
    assert r.returncode == 2, r.stderr


def test_events_unknown_vm_is_a_filter(api, daemon):
    # A VM that does not exist yet can be watched, then created.
    name = uniq("later")
    s = Events(daemon, "--json", "--vm", name)
    try:
        # Nothing to poke for a VM that does not exist: create it once the
        # process has had time to subscribe, and again (as a new name's
        # events would not show) until its events show.
        def create():
            if api.get("/v1/vms/" + name).status_code == 404:
                api.create_vm(name, vcpus=1)
            else:
                api.action(name, "restart")
        s.wait_for(lambda l: is_event(l, "vm.state", name), "the VM's events",
                   poke=create, timeout=60)
    finally:
        rc = s.interrupt()
        api.delete_vm(name)
    assert rc == 0
    assert {e["vm"] for e in s.events()} == {name}


def test_events_reconnects_then_gives_up(fresh_daemon):
    d = fresh_daemon.start()
    api = d.client
    api.create_vm("recon", vcpus=1)
    s = Events(d, "--json")
    try:
        s.wait_for(lambda l: is_event(l, "vm.updated", "recon"), "the marker",
                   poke=patcher(api, "recon"))
        # bangerd restarts: the stream says so and comes back.
        d.stop()
        s.wait_stderr("banger: event stream lost")
        d.start()
        s.wait_stderr("banger: event stream reconnected")
        api.create_vm("after", vcpus=1)
        s.wait_for(lambda l: is_event(l, "vm.created", "after"),
                   "an event after the restart")
        # bangerd goes away for good: bounded retries, then exit 5.
        d.stop()
        rc = s.wait_exit(40)
    finally:
        s.kill()
    assert rc == 5, s.describe()
    err = "\n".join(s.err)
    assert "gave up after 8 reconnect attempts" in err, err
    assert "attempt 8 of 8" in err, err
    assert "hint: is bangerd running at %s?" % d.socket in err, err
    s.check_clean()


def test_events_no_daemon(tmp_path, daemon):
    env = dict(daemon.env)
    env["BANGER_SOCKET"] = str(tmp_path / "none.sock")
    r = subprocess.run([daemon.banger, "events"], env=env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 5, r.stderr
    assert r.stderr.startswith("banger: cannot reach bangerd"), r.stderr
