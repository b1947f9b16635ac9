"""verify.sh's own behaviour, without a VM: a stand-in `banger` (BANGER=)
plays a daemon whose guest refuses ssh.  verify.sh must ask bangerd (not
this checkout's runtime/) how to log in and where state lives, and every
failed check must say why: the command's last error line and the console
tail."""
import os
import stat
import subprocess

from bangerlib import ROOT

STUB = r"""#!/bin/bash
# A stand-in banger: records its arguments, answers like a daemon whose
# guest never accepts ssh.
echo "$*" >>"$STUB_LOG"
case "$*" in
"--json version")
  echo '{"api_version":"1","server_version":"0","extensions":[],"daemon":{"pid":4242,"binary":"/opt/x/bangerd","socket":"/run/x.sock","state_dir":"/srv/banger-state","runtime_dir":"/opt/x/runtime","bundle":{"found":true,"id":"0123456789abcdef","kernel":"k","rootfs":"r"}}}' ;;
"--json vm show "*) echo '{"id":"00000000deadbeef","status":{"ip":"172.30.0.9","last_stop":{"result":"forced"}}}' ;;
"vm ssh "*)
  echo "ssh: connect to host 172.30.0.9 port 22: Connection refused" >&2
  exit 255 ;;
"vm console "*) printf 'early line\nsshd: fatal: no host keys\n' ;;
"--json vm health "*) echo '{"status":"degraded"}' ;;
*) exit 0 ;;
esac
"""


def test_failed_checks_say_why(tmp_path):
    stub = tmp_path / "banger"
    stub.write_text(STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.log"
    env = dict(os.environ, BANGER=str(stub), STUB_LOG=str(log),
               VERIFY_SSH_TRIES="1")
    r = subprocess.run(["bash", os.path.join(ROOT, "verify.sh")], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    out = r.stdout
    assert r.returncode != 0, out
    # Which daemon answered is said up front.
    assert "# bangerd pid 4242 (/opt/x/bangerd), runtime /opt/x/runtime, " \
        "state /srv/banger-state" in out, out
    lines = out.splitlines()
    i = lines.index("not ok 3 - ssh answers at 172.30.0.9")
    after = "\n".join(lines[i + 1:i + 8])
    assert "# ssh: connect to host 172.30.0.9 port 22: Connection refused" \
        in after, after
    assert "# console of verify-" in after and "#   sshd: fatal: no host keys" \
        in after, after
    # The stop check names the forced stop.
    assert any(l.startswith("not ok") and "the stop was clean" in l
               for l in lines), out
    # ssh went through bangerd, with no key of this checkout's.
    calls = log.read_text()
    assert "vm ssh verify-" in calls
    assert "id_ed25519" not in calls and "runtime/" not in calls
    # The VM directory looked for is under the daemon's state dir.
    assert "no VM directory left" in out


def test_no_daemon_is_a_clear_error(tmp_path):
    stub = tmp_path / "banger"
    stub.write_text("#!/bin/sh\necho 'banger: cannot reach bangerd' >&2\nexit 5\n")
    stub.chmod(0o755)
    r = subprocess.run(["bash", os.path.join(ROOT, "verify.sh")], cwd=ROOT,
                       env=dict(os.environ, BANGER=str(stub)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "no bangerd answers" in r.stderr, r.stderr
