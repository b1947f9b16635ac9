"""Fixtures of the test double's tests: a short temp dir, and spawn(),
which starts fakes in it and kills them and their agents afterwards."""
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from fakefc import Fake


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
