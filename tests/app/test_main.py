"""The ``inpaint-gui`` entry point: opens the photo given on the command line and exits cleanly."""

from __future__ import annotations

import numpy as np
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


def _make_home_read_only(monkeypatch, home) -> None:
    """Every write under ``home`` fails as on a read-only disk (chmod is no help: the tests may run as root)."""
    import builtins
    import errno
    import io
    import os

    from app import session_slots

    root = os.path.abspath(home)

    def under(path) -> bool:
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(root)
        except TypeError:  # a file descriptor
            return False

    def refuse(path):
        raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def guarded_open(file, mode="r", *args, **kwargs):
        if under(file) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if under(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if under(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    monkeypatch.setattr(session_slots.QLockFile, "tryLock", lambda self, timeout=0: False)  # Qt writes it


def test_a_read_only_user_data_folder_starts_warns_and_works(make_window, qtbot, photo_file, isolated_home,
                                                             monkeypatch):
    from app.settings import Settings

    _make_home_read_only(monkeypatch, isolated_home)
    settings = Settings.load()
    window = make_window(settings=settings)  # deleted by the fixture, not by a later garbage collection
    main_module.start_session(window, settings, str(photo_file))  # no traceback: the window is there
    assert not window.document.is_empty()
    qtbot.waitUntil(lambda: bool(window.models), timeout=10_000)
    assert window.select_model("telea")
    window.document.add_rectangle((30, 20, 60, 44))
    before = window.document.image.copy()
    with qtbot.waitSignal(window.autosaver.failed, timeout=10_000):
        window.autosaver.save_now()
    assert window.autosave_warning.isVisible()
    warnings = [text for kind, title, text in window.prompter.asked if kind == "warning" and "Autosave" in title]
    assert warnings and "Read-only file system" in warnings[0]
    with qtbot.waitSignal(window.engine.finished, timeout=20_000):
        assert window.fill()
    qtbot.waitUntil(lambda: not window.engine.is_busy(), timeout=20_000)
    assert not np.array_equal(window.document.image, before)  # the fill works
    window.prompter.confirms.extend([True] * 3)
    window.close()
    assert not window.engine.is_running()
    assert list(isolated_home.iterdir()) == []  # the guard held: nothing could be written there
