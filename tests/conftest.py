"""Shared pytest fixtures: a live bangerd against the Firecracker test double
(see tests/lib/daemon.py)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))

from daemon import Daemon  # noqa: E402


@pytest.fixture(scope="session")
def daemon():
    d = Daemon().start()
    yield d
    d.cleanup()


@pytest.fixture
def fresh_daemon():
    """A daemon of its own, for tests that restart or kill it."""
    d = Daemon()
    yield d
    d.cleanup()


@pytest.fixture
def api(daemon):
    daemon.clear_faults()
    return daemon.client
