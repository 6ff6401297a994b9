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
    engine_threads = [t.objectName() or "engine thread" for t in worker_module.running_engine_threads()]
    worker_module.stop_all_engine_threads(10_000)
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for thread in leaked:
        thread.join(10)
    problems = [f"QThread {name}" for name in engine_threads] + [f"thread {t.name}" for t in leaked]
    if problems:
        pytest.fail("test left threads running: " + ", ".join(problems), pytrace=False)


@pytest.fixture
def make_window(qtbot):
    """Build editor windows (real engine unless ``engine_factory`` is given); each is closed cleanly after."""
    from app.main_window import MainWindow
    from app.prompts import ScriptedPrompter
    from app.settings import Settings

    windows = []

    def make(**kwargs):
        kwargs.setdefault("settings", Settings.load())
        kwargs.setdefault("prompter", ScriptedPrompter())
        window = MainWindow(**kwargs)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.prompter.unsaved.clear()  # any leftover question: discard
        window.prompter.confirms.clear()
        window.prompter.confirms.extend([True] * 3)  # "Discard the mask?" and the like: yes
        window.close()
        assert window.isHidden(), "the window refused to close"
        assert not window.engine.is_running(), "the engine thread outlived its window"
        window.deleteLater()


@pytest.fixture
def photo_file(tmp_path):
    """A 96 x 64 JPEG with EXIF (camera make, orientation 1) and structure (gradient + a dark bar)."""
    from tests.app.helpers import write_photo

    return write_photo(tmp_path / "photo.jpg")


@pytest.fixture
def tiny_bundled_models(tmp_path, monkeypatch):
    """A tiny random edge + image pair written with ``save_model`` into a temp bundled-model folder."""
    from tests.app.helpers import write_tiny_pair

    folder = write_tiny_pair(tmp_path / "bundled")
    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", str(folder))
    return folder
