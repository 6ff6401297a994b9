"""The fine-tune dialog's time estimate: a few steps of the form's settings, measured in a separate process.

Changing a setting restarts a short debounce timer; when it fires, :class:`TimeEstimate` writes a throw-away
job folder (``runs_root()/.estimate``) and times a few steps there through a :class:`FinetuneRunner`. Each
measurement is kept per setting (the steps only scale it), so going back to earlier settings costs nothing.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app import finetune_presenter as presenter
from app.finetune_form import FinetuneFormBox
from app.finetune_runner import FinetuneRunner, RunOutcome
from engine.errors import ModelFileError
from trainer import finetune_protocol as protocol

DEBOUNCE_MS = 700


class TimeEstimate(QObject):
    """Measures and shows (in ``form_box.estimate_label``) how long the form's run would take.

    ``busy()`` says when nothing may be measured (a run is training); with ``auto`` a changed setting starts a
    measurement by itself. ``estimate``: the last estimate shown (the measurement plus ``total_s`` and
    ``steps_total``), or None. Signal ``ready(dict | None)`` after every measurement.
    """

    ready = Signal(object)

    def __init__(self, form_box: FinetuneFormBox, busy: Callable[[], bool], *, auto: bool = True,
                 python: str | None = None, env: dict[str, str] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.form_box = form_box
        self.busy = busy
        self.auto = auto
        self.python = python
        self.env = dict(env or {})
        self.runner: FinetuneRunner | None = None
        self.estimate: dict[str, Any] | None = None
        self._measured: dict[tuple, dict[str, Any]] = {}
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self.start)
        form_box.settings_changed.connect(self.settings_changed)
        form_box.steps_changed.connect(self.show)

    @Slot()
    def settings_changed(self) -> None:
        """A setting changed: show what is known and, with ``auto``, measure it soon unless already measured."""
        self.show()
        if self.auto and self.form_box.estimate_key() not in self._measured and not self.busy():
            self.timer.start()

    @Slot()
    def show(self) -> None:
        """Show the estimate for the current settings, or why there is none yet."""
        box = self.form_box
        result = self._measured.get(box.estimate_key())
        device = box.device_combo.currentText()
        if result is None:
            problem = presenter.memory_problem(box.form())
            if problem:
                box.estimate_label.setText(problem)
                return
            busy = self.runner is not None and self.runner.is_running()
            box.estimate_label.setText(f"Measuring a few steps on {device}…" if busy else
                                       "The time estimate appears here (a few steps are measured on the device).")
            return
        steps = box.steps_spin.value()
        total, text = presenter.estimate_text(result, steps, device)
        self.estimate = {**result, "total_s": total, "steps_total": steps}
        box.estimate_label.setText(text)

    @Slot()
    def start(self) -> bool:
        """Time a few steps of the current settings in a separate process (``ready`` follows)."""
        form = self.form_box.form()
        if self.busy() or presenter.problems_for_estimate(form):
            self.show()
            return False
        self.stop()
        folder = protocol.runs_root() / ".estimate"
        shutil.rmtree(folder, ignore_errors=True)
        try:
            folder.mkdir(parents=True)
            spec = presenter.job_spec(form, name="estimate")
            if spec.mode == "photo":
                presenter.write_photo(folder, form.image, form.mask, max_side=presenter.ESTIMATE_PHOTO_SIDE)
            protocol.write_spec(folder, spec)
        except (OSError, protocol.JobError, ModelFileError) as exc:
            self.form_box.estimate_label.setText(f"No time estimate: {exc}")
            return False
        key = self.form_box.estimate_key()
        runner = FinetuneRunner(folder, estimate=True, parent=self, python=self.python, env=self.env)
        runner.finished.connect(lambda outcome, k=key: self._measured_one(k, outcome))
        self.runner = runner
        runner.start()
        self.show()
        return True

    def _measured_one(self, key: tuple, outcome: RunOutcome) -> None:
        result = outcome.estimate if outcome.state == "estimated" else None
        if result is not None and math.isfinite(result.get("seconds_per_step", math.nan)):
            self._measured[key] = result
            self.show()
        elif key == self.form_box.estimate_key():
            self.form_box.estimate_label.setText(presenter.estimate_failure(outcome.state, outcome.message))
        shutil.rmtree(protocol.runs_root() / ".estimate", ignore_errors=True)
        self.ready.emit(result)

    def stop(self) -> None:
        """Kill a measurement still running (its result is dropped)."""
        if self.runner is not None:
            with contextlib.suppress(RuntimeError):
                self.runner.finished.disconnect()
            self.runner.kill()
            self.runner.wait(5_000)
            self.runner.deleteLater()
            self.runner = None

    def shutdown(self) -> None:
        """Stop the debounce timer and any measurement (the dialog closes for good)."""
        self.timer.stop()
        self.stop()
