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


def test_the_photo_on_the_command_line_opens_after_a_recovered_session_too(make_window, photo_file, tmp_path):
    from app import session
    from app.session_slots import sessions_root
    from app.settings import Settings
    from tests.app.fakes import FakeEngine
    from tests.app.helpers import write_photo

    crashed = make_window(engine_factory=FakeEngine)
    assert crashed.open_path(photo_file)
    crashed.document.add_rectangle((10, 10, 30, 30))
    crashed.autosaver.save_sync()
    crashed.shutdown(clean=False)  # killed: its session stays
    assert any(session.has_session(p) for p in sessions_root().iterdir() if p.is_dir())
    other = write_photo(tmp_path / "other.png")
    window = make_window(engine_factory=FakeEngine)
    window.prompter.confirms.extend([True, True])  # recover it; then discard its mask to open the photo
    main_module.start_session(window, Settings(), str(other))
    assert window.files.original_path == other.resolve() or window.files.original_path == other
    assert [kind for kind, *_ in window.prompter.asked] == ["confirm", "confirm"]
