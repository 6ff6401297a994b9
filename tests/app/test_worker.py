"""The engine worker: one thread, queued requests, copies, cancel, failures, shutdown."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.worker import EngineClient, copy_request
from engine.api import FillRequest
from tests.app.fakes import FakeEngine


def _request(size: int = 32) -> FillRequest:
    image = np.full((size, size, 3), 128, np.uint8)
    mask = np.zeros((size, size), bool)
    mask[8:16, 8:20] = True
    return FillRequest(image=image, mask=mask, model="telea")


@pytest.fixture
def client_for(qtbot):
    made: list[EngineClient] = []

    def make(engine, synchronous: bool = False) -> EngineClient:
        client = EngineClient(lambda: engine, synchronous=synchronous)
        made.append(client)
        return client

    yield make
    for client in made:
        assert client.shutdown()


def test_copy_request_owns_its_arrays():
    request = _request()
    copied = copy_request(request)
    assert not np.shares_memory(copied.image, request.image)
    assert not np.shares_memory(copied.mask, request.mask)


def test_fill_runs_in_the_worker_thread_and_changes_only_the_hole(qtbot, client_for):
    engine = FakeEngine()
    client = client_for(engine)
    with qtbot.waitSignal(client.device_changed, timeout=5000) as device:
        pass
    assert device.args == ["CPU (fake)"]
    request = _request()
    with qtbot.waitSignal(client.finished, timeout=5000) as done:
        client.fill(request)
    result = done.args[0]
    assert (result.image[request.mask] == (10, 200, 30)).all()
    assert (result.image[~request.mask] == 128).all()
    assert engine.thread_names and engine.thread_names[0] != threading.main_thread().name
    qtbot.waitUntil(lambda: not client.is_busy(), timeout=2000)


def test_request_arrays_are_copied_before_crossing_threads(qtbot, client_for):
    gate = threading.Event()
    client = client_for(FakeEngine(gate=gate))
    request = _request()
    with qtbot.waitSignal(client.finished, timeout=5000) as done:
        client.fill(request)
        request.image[:] = 0  # the caller keeps editing its own buffer
        request.mask[:] = False
        gate.set()
    result = done.args[0]
    assert result.image[0, 0, 0] == 128 and result.image[10, 10, 1] == 200


def test_cancel_stops_a_running_fill(qtbot, client_for):
    engine = FakeEngine(gate=threading.Event())
    client = client_for(engine)
    with qtbot.waitSignal(client.cancelled, timeout=5000):
        client.fill(_request())
        assert engine.started.wait(5)
        client.cancel()
    qtbot.waitUntil(lambda: not client.is_busy(), timeout=2000)


def test_cancel_also_drops_queued_requests(qtbot, client_for):
    engine = FakeEngine(gate=threading.Event())
    client = client_for(engine)
    cancelled = []
    client.cancelled.connect(lambda: cancelled.append(1))
    with qtbot.waitSignal(client.idle, timeout=5000):
        client.fill(_request())
        client.fill(_request())
        assert engine.started.wait(5)
        client.cancel()
    assert len(cancelled) == 2 and engine.calls == 1


def test_engine_error_is_reported_and_the_worker_keeps_working(qtbot, client_for):
    engine = FakeEngine(fail="The model file x is corrupt")
    client = client_for(engine)
    with qtbot.waitSignal(client.failed, timeout=5000) as failed:
        client.fill(_request())
    assert failed.args == ["The model file x is corrupt"]
    engine.fail = None
    with qtbot.waitSignal(client.finished, timeout=5000):
        client.fill(_request())


def test_engine_that_cannot_start_reports_it(qtbot, client_for):
    def broken():
        raise RuntimeError("no such device")

    client = EngineClient(broken)
    try:
        with qtbot.waitSignal(client.failed, timeout=5000) as failed:
            pass
        assert "no such device" in failed.args[0]
        with qtbot.waitSignal(client.failed, timeout=5000):
            client.fill(_request())
    finally:
        assert client.shutdown()


def test_refresh_models_starts_an_engine_that_could_not_start_before(qtbot):
    attempts: list[int] = []

    def factory():
        attempts.append(1)
        if len(attempts) == 1:  # e.g. a model file the user then removed
            raise RuntimeError("a bad model file")
        return FakeEngine()

    client = EngineClient(factory)
    try:
        qtbot.waitUntil(lambda: len(attempts) == 1, timeout=5000)
        with qtbot.waitSignal(client.models_changed, timeout=5000) as changed:
            client.refresh_models()
        assert len(attempts) == 2 and [m.name for m in changed.args[0]] == ["telea"]  # a fresh engine
    finally:
        assert client.shutdown()


def test_refresh_models_announces_the_new_list(qtbot, client_for):
    client = client_for(FakeEngine())
    qtbot.waitUntil(lambda: bool(client.models), timeout=5000)
    with qtbot.waitSignal(client.models_changed, timeout=5000) as changed:
        client.refresh_models()
    assert [m.name for m in changed.args[0]] == ["telea", "mine"]


def test_predict_edges_comes_back_on_its_own_signal(qtbot, client_for):
    client = client_for(FakeEngine())
    request = _request()
    with qtbot.waitSignal(client.edges_ready, timeout=5000) as done:
        client.predict_edges(request)
    assert (done.args[0].edges[request.mask] == 255).all()


def test_synchronous_mode_runs_inline(qtbot, client_for):
    engine = FakeEngine()
    client = client_for(engine, synchronous=True)
    results = []
    client.finished.connect(results.append)
    client.fill(_request())
    assert len(results) == 1 and engine.thread_names == [threading.main_thread().name]
    assert client.models[0].name == "telea"


def test_shutdown_during_a_fill_cancels_and_waits(qtbot):
    engine = FakeEngine(gate=threading.Event())
    client = EngineClient(lambda: engine)
    client.fill(_request())
    assert engine.started.wait(5)
    assert client.shutdown(10_000)
    assert not client.is_running()


def test_a_client_dropped_without_shutdown_is_detected_not_fatal(qtbot):
    import weakref

    from app.worker import running_engine_threads, stop_all_engine_threads

    clients = [EngineClient(FakeEngine)]
    qtbot.waitUntil(lambda: bool(clients[0].models), timeout=5000)
    gone = weakref.ref(clients[0])
    # The last reference: the client is destroyed right here, without shutdown(); without the registry this
    # would abort: "QThread: Destroyed while thread is still running". (No gc.collect(): collecting other tests'
    # Qt wrappers at an arbitrary point segfaulted now and then.)
    clients.clear()
    assert gone() is None
    assert len(running_engine_threads()) == 1
    assert stop_all_engine_threads() == 1
    assert running_engine_threads() == []
