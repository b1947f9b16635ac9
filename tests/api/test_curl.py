"""The README's curl examples, run with the real curl binary: a VM is
created, listed, health-checked, stopped, started and deleted through
`curl --unix-socket` against the Firecracker test double.  Also the
socket's permissions and the peer-credential check."""
import json
import os
import shutil
import subprocess

import pytest

from bangerlib import validate

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def curl(daemon, method, path, body=None, user=None):
    argv = [CURL, "-sS", "--unix-socket", daemon.socket, "-X", method,
            "-w", "\n%{http_code}", "http://localhost" + path]
    if body is not None:
        argv[1:1] = ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    if user is not None:
        argv = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
                "--clear-groups"] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    text, _, code = r.stdout.rpartition("\n")
    code = int(code)
    body = json.loads(text) if text.strip() else None
    if body is not None:
        validate(method, path.split("?")[0], code, body)
    return code, body


def test_lifecycle_with_curl(daemon):
    code, op = curl(daemon, "POST", "/v1/vms?wait=60",
                    {"name": "curly", "vcpus": 1, "memory_mib": 256})
    assert code == 200 and op["state"] == "succeeded", op
    code, listing = curl(daemon, "GET", "/v1/vms")
    assert "curly" in [v["name"] for v in listing["vms"]]
    code, health = curl(daemon, "GET", "/v1/vms/curly/health")
    assert code == 200 and health["status"] == "ok", health
    code, op = curl(daemon, "POST", "/v1/vms/curly/stop?wait=60")
    assert op["result"]["status"]["state"] == "stopped"
    code, op = curl(daemon, "POST", "/v1/vms/curly/start?wait=60")
    assert op["result"]["status"]["state"] == "running"
    code, op = curl(daemon, "DELETE", "/v1/vms/curly?force=true&wait=60")
    assert code == 200 and op["state"] == "succeeded"
    code, err = curl(daemon, "GET", "/v1/vms/curly")
    assert code == 404 and err["code"] == "vm_not_found"


def test_curl_default_form_content_type_is_read_as_json(daemon):
    # `curl -d` without -H sends application/x-www-form-urlencoded.
    r = subprocess.run([CURL, "-sS", "--unix-socket", daemon.socket, "-d",
                        '{"name": "Bad Name"}', "http://localhost/v1/vms"],
                       capture_output=True, text=True)
    assert json.loads(r.stdout)["code"] == "invalid_name"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to act as another user")
def test_socket_mode_and_peer_credentials(daemon):
    st = os.stat(daemon.socket)
    assert st.st_mode & 0o777 == 0o660
    os.chmod(daemon.dir, 0o711)  # let the other user reach the socket file
    # Another user cannot even connect to a 0660 root socket...
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", CURL, "-sS", "--unix-socket",
                        daemon.socket, "http://localhost/v1/healthz"],
                       capture_output=True, text=True)
    assert r.returncode == 7, (r.returncode, r.stderr)
    # ...and if the file mode were opened up, the credential check refuses.
    os.chmod(daemon.socket, 0o666)
    try:
        code, err = curl(daemon, "GET", "/v1/vms", user=65534)
    finally:
        os.chmod(daemon.socket, 0o660)
        os.chmod(daemon.dir, 0o700)
    assert code == 403 and err["code"] == "forbidden", err
    assert err["hint"]
