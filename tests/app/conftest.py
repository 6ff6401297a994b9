"""Fixtures for the editor tests: no thread may outlive a test; windows close cleanly."""

from __future__ import annotations

import threading

import pytest

from app import worker as worker_module


@pytest.fixture(autouse=True)
def no_threads_left(request: pytest.FixtureRequest):
    """Fail any test that leaves an engine thread or a Python thread running (and stop it, so Qt won't abort)."""
    before = set(threading.enumerate())
    yield
    leaked_clients = worker_module.running_clients()
    for client in leaked_clients:
        client.shutdown(10_000)
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for thread in leaked:
        thread.join(10)
    problems = [f"engine thread of {c!r}" for c in leaked_clients] + [f"thread {t.name}" for t in leaked]
    if problems:
        pytest.fail("test left threads running: " + ", ".join(problems), pytrace=False)
