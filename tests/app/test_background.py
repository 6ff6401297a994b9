"""BackgroundRunner: slow file steps run off the GUI thread while the window keeps painting."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

from app.background import BackgroundRunner


@pytest.fixture
def window(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_a_quick_step_returns_its_value_in_place(window):
    runner = BackgroundRunner(window)
    assert runner("Opening x…", lambda: threading.current_thread().name) == "inpaint-file-io"
    assert window.isEnabled() and not runner.busy


def test_during_a_slow_step_the_gui_thread_keeps_running_and_the_window_takes_no_input(window):
    runner = BackgroundRunner(window)
    release = threading.Event()
    seen = []

    def during() -> None:  # runs in the GUI thread while the step is under way
        seen.append((window.isEnabled(), runner.busy))
        release.set()

    QTimer.singleShot(100, during)
    assert runner("Saving x…", lambda: release.wait(10) and "written") == "written"
    assert seen == [(False, True)]
    assert window.isEnabled() and not runner.busy


def test_the_step_s_exception_is_raised_in_the_caller(window):
    runner = BackgroundRunner(window)

    def fail():
        raise MemoryError("too big")

    with pytest.raises(MemoryError, match="too big"):
        runner("Opening x…", fail)
    assert window.isEnabled() and not runner.busy


def test_closing_the_editor_waits_for_a_save_in_progress(make_window, qtbot, photo_file, tmp_path, monkeypatch):
    from engine import imageio
    from tests.app.fakes import FakeEngine
    from tests.app.helpers import paint_box

    window = make_window(engine_factory=FakeEngine)
    assert window.open_path(photo_file)
    paint_box(window, (10, 10, 30, 30))
    real_save = imageio.save_image
    release = threading.Event()

    def slow_save(*args, **kwargs):
        release.wait(10)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(imageio, "save_image", slow_save)
    refused = []

    def try_to_close() -> None:
        refused.append(not window.close())  # close() is False when the window refused
        release.set()

    QTimer.singleShot(100, try_to_close)
    target = tmp_path / "out.png"
    assert window.files.save_as(target)
    assert refused == [True] and window.isVisible() and imageio.load_image(target).rgb.shape == (64, 96, 3)
