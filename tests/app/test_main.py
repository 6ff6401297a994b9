"""The ``inpaint-gui`` entry point: opens the photo given on the command line and exits cleanly."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app import main as main_module
from app.main_window import MainWindow


def test_parse_args():
    args = main_module.parse_args(["photo.jpg", "--no-recover"])
    assert args.image == "photo.jpg" and args.no_recover


def test_main_opens_the_photo_then_closes_cleanly(qapp, photo_file, monkeypatch):
    threads = []
    monkeypatch.setattr(main_module, "configure_torch_threads", threads.append)
    seen = {}

    def poll() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and not windows[0].document.is_empty():
            window = windows[0]
            seen["title"] = window.windowTitle()
            seen["size"] = (window.document.width, window.document.height)
            timer.stop()
            window.close()
            seen["engine_running"] = window.engine.is_running()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(20)
    assert main_module.main([str(photo_file)]) == 0
    assert seen == {"title": "photo.jpg[*] — Inpaint Studio", "size": (96, 64), "engine_running": False}
    assert threads and threads[0] >= 1
