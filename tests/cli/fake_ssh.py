#!/usr/bin/python3
"""Stands in for ssh in the CLI tests (BANGER_SSH points here).

Appends {"argv": [...], "stdin_tty": bool} as one JSON line to
$FAKE_SSH_LOG, runs $FAKE_SSH_THEN (a JSON argv, e.g. banger vm stop web,
to change the VM during the "session") when set, then exits with
$FAKE_SSH_EXIT (default 0)."""
import json
import os
import subprocess
import sys

log = os.environ.get("FAKE_SSH_LOG")
if log:
    with open(log, "a") as f:
        f.write(json.dumps({"argv": sys.argv,
                            "stdin_tty": os.isatty(0)}) + "\n")
then = os.environ.get("FAKE_SSH_THEN")
if then:
    subprocess.run(json.loads(then), stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
sys.exit(int(os.environ.get("FAKE_SSH_EXIT", "0")))
