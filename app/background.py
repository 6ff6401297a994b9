"""Run a slow step (decoding or encoding a large photo) off the GUI thread while the window keeps painting."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QProgressDialog, QWidget

T = TypeVar("T")
QUICK_S = 0.03  # steps that end this fast return at once, without an event loop or any visible change
DIALOG_DELAY_MS = 400  # a busy dialog with the step's label appears when it takes longer


class BackgroundRunner:
    """``runner(label, fn)`` runs ``fn`` in a worker thread and returns its result (or raises its exception).

    Meanwhile a local event loop keeps the window painting and the engine's signals flowing, and the window
    is disabled, so nothing the person does can interleave with the step (opening another photo during a
    save, say); a slow step shows a busy dialog naming it. ``busy`` is True while a step runs (the window's
    close waits for it).
    """

    def __init__(self, window: QWidget) -> None:
        self.window = window
        self.busy = False

    def __call__(self, label: str, fn: Callable[[], T]) -> T:
        outcome: dict[str, object] = {}
        done = threading.Event()

        def work() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as exc:  # re-raised in the calling thread below
                outcome["error"] = exc
            finally:
                done.set()

        thread = threading.Thread(target=work, name="inpaint-file-io", daemon=True)
        self.busy = True
        thread.start()
        try:
            if not done.wait(QUICK_S):
                self._wait(label, done)
            thread.join()
        finally:
            self.busy = False
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["value"]  # type: ignore[return-value]

    def _wait(self, label: str, done: threading.Event) -> None:
        """Disable the window, run an event loop until ``done``; a busy dialog shows after a short delay."""
        self.window.setEnabled(False)
        dialog = QProgressDialog(label, "", 0, 0, self.window)
        dialog.setCancelButton(None)
        dialog.setWindowModality(Qt.WindowModal)
        dialog.setMinimumDuration(DIALOG_DELAY_MS)
        dialog.setValue(0)  # starts the dialog's own show timer
        loop = QEventLoop()
        timer = QTimer()
        timer.setInterval(15)
        timer.timeout.connect(lambda: done.is_set() and loop.quit())
        timer.start()
        try:
            if not done.is_set():
                loop.exec()
        finally:
            timer.stop()
            dialog.reset()
            dialog.deleteLater()
            self.window.setEnabled(True)
