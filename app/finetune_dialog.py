"""Models > Fine-tune…: adapt a model to the user's photos (a folder, or the photo being edited).

The dialog collects the settings, writes a job folder (``user_home()/finetune/<name>/job.json``) and runs
``python -m trainer.finetune_job`` in a separate process through :class:`app.finetune_runner.FinetuneRunner`
(the same ``train()`` the CLI uses). It shows the run live from the job's ``metrics.jsonl``: a progress bar
with ETA, the loss curves (:class:`app.loss_plot.LossPlot`), the latest sample grid and the validation
figures. Stop saves a checkpoint; unfinished runs are listed at the top and Resume continues them, also after
the editor was closed. When a run completes, the job has registered the model in the user models folder and
the dialog emits :attr:`FinetuneDialog.model_registered` so the window rescans the models.

Its parts: the settings form (:mod:`app.finetune_form`), the unfinished runs (:mod:`app.finetune_runs`), the
live view (:mod:`app.finetune_progress`), the time estimate (:mod:`app.finetune_estimate`); what the values
mean and the texts shown are :mod:`app.finetune_presenter`'s. The dialog itself runs, stops and resumes jobs.

The window opens it non-modally (training may take long and the editor stays usable)::

    dialog = FinetuneDialog(window.models, image, mask, window.settings, window, photo_name="IMG_1.jpg")
    dialog.model_registered.connect(window.on_model_registered)   # (name, make_default)
    window.engine.models_changed.connect(dialog.set_models)        # the list may still be loading
    dialog.show()
    ...  # on window close: dialog.shutdown()
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app import finetune_presenter as presenter
from app.finetune_estimate import TimeEstimate
from app.finetune_form import FinetuneFormBox
from app.finetune_progress import TrainingBox
from app.finetune_runner import FinetuneRunner, RunOutcome
from app.finetune_runs import UnfinishedRunsBox
from app.settings import Settings
from engine.api import ModelInfo
from trainer import finetune_protocol as protocol

log = logging.getLogger(__name__)

Confirm = Callable[[str, str], bool]
AskName = Callable[[str, str, str], str | None]  # (title, text, proposal) -> the name typed, or None


def _ask_name(parent: QWidget) -> AskName:
    def ask(title: str, text: str, proposal: str) -> str | None:
        name, ok = QInputDialog.getText(parent, title, text, text=proposal)
        return name.strip() if ok and name.strip() else None
    return ask


def _ask(parent: QWidget) -> Confirm:
    def confirm(title: str, text: str) -> bool:
        return QMessageBox.question(parent, title, text, QMessageBox.Yes | QMessageBox.No,
                                    QMessageBox.No) == QMessageBox.Yes
    return confirm


class FinetuneDialog(QDialog):
    """Fine-tune a model from the editor. See the module docstring for how the window uses it.

    Signals: ``model_registered(name, make_default)`` once a run's model is in the user models folder (the
    settings' ``default_model`` is already set when ``make_default``); ``run_finished(RunOutcome)`` after every
    run process; ``estimate_ready(dict | None)`` after every time estimate.

    Parts: ``form_box`` (the settings), ``runs_box`` (unfinished runs), ``live_box`` (the run shown),
    ``time_estimate``.
    """

    model_registered = Signal(str, bool)
    run_finished = Signal(object)
    estimate_ready = Signal(object)

    def __init__(self, models: list[ModelInfo], image: np.ndarray | None, mask: np.ndarray | None,
                 settings: Settings, parent: QWidget | None = None, *, photo_name: str = "",
                 auto_estimate: bool = True, confirm: Confirm | None = None, ask_name: AskName | None = None,
                 env: dict[str, str] | None = None,
                 python: str | None = None, filled: np.ndarray | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune a model")
        self.setModal(False)
        self.settings = settings
        self.image = image
        shape = image.shape[:2] if image is not None else (0, 0)
        # "This photo" learns only from pixels that came from the file: the user's mask and every region filled
        # in this session (``filled``, from the undo history) have no ground truth, so both go to the trainer as
        # its user mask.
        self.user_mask = np.asarray(mask, bool) if mask is not None else np.zeros(shape, bool)
        self.filled = np.asarray(filled, bool) if filled is not None else np.zeros(shape, bool)
        self.mask = self.user_mask | self.filled if image is not None else mask
        self.photo_name = photo_name
        self.confirm = confirm or _ask(self)
        self.ask_name = ask_name or _ask_name(self)
        self.env = dict(env or {})
        self.python = python
        self.runner: FinetuneRunner | None = None
        self.run_dir: Path | None = None
        self.spec: protocol.JobSpec | None = None
        self.outcome: RunOutcome | None = None
        self.last_error = ""
        self.registered_name = ""
        self._close_when_stopped = False
        self._build(models)
        self.time_estimate = TimeEstimate(self.form_box, self.is_running, auto=auto_estimate, python=python,
                                          env=self.env, parent=self)
        self._connect()
        self.form_box.on_base_changed()
        self.refresh_runs()
        self._update_buttons()

    # ================================================================== construction
    def _build(self, models: list[ModelInfo]) -> None:
        self.runs_box = UnfinishedRunsBox()
        self.form_box = FinetuneFormBox(models, self.image, self.user_mask, self.filled, self.mask,
                                        self.photo_name, self.settings.device)
        self.live_box = TrainingBox()
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b")
        self.error_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step and save a checkpoint (Resume continues it)")
        self.make_default_button = QPushButton("Make Default")
        self.make_default_button.setToolTip("Use the new model for fills from now on")
        self.close_button = QPushButton("Close")
        bottom = QHBoxLayout()
        bottom.addWidget(self.error_label, 1)
        for button in (self.start_button, self.stop_button, self.make_default_button, self.close_button):
            bottom.addWidget(button)

        left = QVBoxLayout()
        left.addWidget(self.runs_box)
        left.addWidget(self.form_box, 1)
        left_column = QWidget()
        left_column.setLayout(left)
        # the settings keep their width while a run's long status lines and curves claim space on the right
        left_column.setMinimumWidth(max(520, left_column.sizeHint().width()))
        left_column.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Preferred)
        self.left_column = left_column
        columns = QHBoxLayout()
        columns.addWidget(left_column, 0)
        columns.addWidget(self.live_box, 1)
        outer = QVBoxLayout(self)
        outer.addLayout(columns, 1)
        outer.addLayout(bottom)
        self.resize(1040, 720)

    def _connect(self) -> None:
        self.form_box.problem.connect(self._error)
        self.time_estimate.ready.connect(self.estimate_ready)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop_training)
        self.make_default_button.clicked.connect(self.make_default)
        self.close_button.clicked.connect(self.close)
        self.runs_box.resume_requested.connect(self.resume_run)
        self.runs_box.delete_requested.connect(self._delete_run)
        self.runs_box.selection_changed.connect(self._update_buttons)

    @Slot(list)
    def set_models(self, models: list[ModelInfo]) -> None:
        """A new model list (connect the engine's ``models_changed``); keeps the chosen base when still listed."""
        changed = self.form_box.set_models(models)
        if self.form_box.base_models and self.last_error.startswith("No model to fine-tune"):
            self._error("")
        if changed:
            self.form_box.on_base_changed()

    # ================================================================== what scripts and tests read
    @property
    def status_label(self) -> QLabel:
        """The line under the progress bar where the dialog says what happens."""
        return self.live_box.status_label

    @property
    def estimate_label(self) -> QLabel:
        """The form's time estimate line."""
        return self.form_box.estimate_label

    @property
    def estimate(self) -> dict[str, Any] | None:
        """The last time estimate shown (see :class:`app.finetune_estimate.TimeEstimate`), or None."""
        return self.time_estimate.estimate

    def current_spec(self, name: str | None = None) -> protocol.JobSpec:
        """The job the form describes (not yet checked)."""
        return presenter.job_spec(self.form_box.form(), name)

    def problems(self) -> str | None:
        """What keeps the form from starting (the first problem), or None."""
        return presenter.problems(self.form_box.form())

    # ================================================================== running
    def is_running(self) -> bool:
        """True while a run's process is training."""
        return self.runner is not None and self.runner.is_running()

    @Slot()
    def start(self) -> bool:
        """Check the form, write the job folder and start training; False (with a message) if it cannot."""
        if self.is_running():
            return False
        self._error("")
        problem = self.problems()
        if problem:
            self._error(problem)
            return False
        if not self._replace_unfinished(self.form_box.name_edit.text().strip()):
            return False
        spec = self.current_spec()
        run_dir = protocol.runs_root() / spec.name
        try:
            if run_dir.exists():  # a finished (registered) run's record of the same name, or a run never started
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
            if spec.mode == "photo":
                presenter.write_photo(run_dir, self.image, self.mask)
            protocol.write_spec(run_dir, spec)
        except OSError as exc:
            shutil.rmtree(run_dir, ignore_errors=True)
            self._error(f"Could not prepare the run folder {run_dir}: {exc.strerror or exc}" +
                        (" — the disk is full." if protocol.is_disk_full(exc) else ""))
            return False
        self._launch(run_dir, spec)
        return True

    def _replace_unfinished(self, name: str) -> bool:
        """An unfinished run of this name (e.g. one that ran out of memory) is replaced, once the person agrees:
        that is how a failed run is tried again with other settings. False = keep it, do not start."""
        run = protocol.unfinished_run(name)
        if run is None:
            return True
        info = protocol.run_info(run)
        if info.state == "running":
            self._error(f"The run '{info.name}' is being trained by another process right now: choose another "
                        "name.")
            return False
        question = (f"An unfinished fine-tune named '{info.name}' exists ({info.state}, step {info.step}/"
                    f"{info.total}). Start over with the new settings? Its checkpoints are deleted; Resume would "
                    "continue it instead.")
        if not self.confirm("Replace unfinished run", question):
            return False
        shutil.rmtree(run, ignore_errors=True)
        self.refresh_runs()
        return True

    def resume_run(self, run_dir: str | Path) -> bool:
        """Continue an unfinished run from its last checkpoint (or start it over if it has none)."""
        if self.is_running():
            return False
        self._error("")
        run_dir = Path(run_dir)
        try:
            spec = protocol.read_spec(run_dir)
        except protocol.JobError as exc:
            self._error(str(exc))
            return False
        if protocol.run_info(run_dir).state == "running":
            pid = protocol.read_status(run_dir).get("pid")
            self._error(f"The run '{spec.name}' is being trained by another process right now (pid {pid}).")
            return False
        problem = protocol.check_name(spec.name, spec.parts, spec.registered_dir(), check_runs=False)
        while problem:  # the name was taken meanwhile: the run can still be registered under another one
            name = self.ask_name("Name taken", f"{problem}\n\nThe run keeps its checkpoints. Register it as:",
                                 protocol.free_name(spec.name, spec.parts, spec.registered_dir()))
            if name is None:
                self._error(problem + " (the run keeps its checkpoints: Resume asks for another name)")
                return False
            try:
                run_dir = protocol.rename_run(run_dir, name)
            except protocol.JobError as exc:
                problem = str(exc)
                continue
            spec = protocol.read_spec(run_dir)
            problem = None
            self.refresh_runs()
        self._launch(run_dir, spec)
        return True

    def _launch(self, run_dir: Path, spec: protocol.JobSpec) -> None:
        self.time_estimate.shutdown()
        self.run_dir, self.spec, self.outcome = run_dir, spec, None
        self.registered_name = ""
        self.live_box.start(spec)
        runner = FinetuneRunner(run_dir, parent=self, python=self.python, env=self.env)
        runner.record.connect(self.on_record)
        runner.reset.connect(self.live_box.reset)
        runner.finished.connect(self.on_run_finished)
        self.runner = runner
        runner.start()
        self._update_buttons()

    @Slot()
    def stop_training(self) -> None:
        """Stop after the current step; a checkpoint is saved and the run can be resumed."""
        if self.is_running():
            self.runner.request_stop()
            self.status_label.setText("Stopping after this step and saving a checkpoint…")
            self._update_buttons()

    @Slot(dict)
    def on_record(self, record: dict[str, Any]) -> None:
        """One metrics record of the running job."""
        self.live_box.show_record(record, self.spec.steps if self.spec else 1)

    @Slot(object)
    def on_run_finished(self, outcome: RunOutcome) -> None:
        """The run's process ended: say how, and offer the model or the resume."""
        self.outcome = outcome
        spec = self.spec
        if outcome.state == "registered" and spec is not None:
            self.registered_name = spec.name
            self.live_box.finish("done", complete=True)
            make_default = self.form_box.default_check.isChecked()
            if make_default:
                self._set_default(spec.name)
            kept = protocol.held_out_gain(self.run_dir) if spec.mode == "photo" and self.run_dir is not None else ""
            self.status_label.setText(f"Done: '{spec.name}' is in your models folder and in the model selector"
                                      + (" and is now the default model." if make_default else ".") + kept
                                      + ("" if kept else self.live_box.worse_than_base()))
            self.model_registered.emit(spec.name, make_default)
            self.form_box.name_edit.clear()  # the name is taken now: offer a free one for a next run
            self.form_box.suggest_name()
        elif outcome.state == "stopped":
            self.live_box.finish("stopped — Resume continues")
            self.status_label.setText(outcome.message + " Resume it from the list above, also after restarting "
                                                        "the editor.")
        else:
            self.live_box.finish("failed")
            self.status_label.setText("The fine-tune did not finish.")
            self._error(outcome.message)
            if outcome.stderr:
                log.warning("fine-tune process output:\n%s", outcome.stderr[-4000:])
        self.refresh_runs()
        self.form_box.check_name()
        self._update_buttons()
        self.run_finished.emit(outcome)
        if self._close_when_stopped:
            self._close_when_stopped = False
            self.close()

    # ================================================================== registered model
    def _set_default(self, name: str) -> None:
        self.settings.default_model = name
        try:
            self.settings.save()
        except OSError as exc:
            log.warning("could not save preferences: %s", exc)

    @Slot()
    def make_default(self) -> None:
        """Make the model registered by the last run the default (settings ``default_model``)."""
        if self.registered_name:
            self._set_default(self.registered_name)
            self.form_box.default_check.setChecked(True)
            self.status_label.setText(f"'{self.registered_name}' is now the default model.")
            self.model_registered.emit(self.registered_name, True)
            self._update_buttons()

    # ================================================================== unfinished runs
    def refresh_runs(self) -> None:
        """List the unfinished runs (not the one running now)."""
        self.runs_box.refresh(self.run_dir if self.is_running() else None)

    @Slot(object)
    def _delete_run(self, run_dir: Path) -> None:
        if protocol.run_info(run_dir).state == "running":
            pid = protocol.read_status(run_dir).get("pid")
            self._error(f"The run '{run_dir.name}' is being trained by another process right now (pid {pid}): "
                        "stop it there first.")
            return
        if not self.confirm("Delete run", f"Delete the run '{run_dir.name}' with its checkpoints? It cannot be "
                                          "resumed afterwards."):
            return
        shutil.rmtree(run_dir, ignore_errors=True)
        self.refresh_runs()
        self.form_box.check_name()

    # ================================================================== state, messages, closing
    @Slot(str)
    def _error(self, text: str) -> None:
        self.last_error = text
        self.error_label.setText(text)

    @Slot()
    def _update_buttons(self) -> None:
        running = self.is_running()
        stopping = running and self.runner.stop_requested
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running and not stopping)
        self.form_box.setEnabled(not running)
        self.runs_box.set_actions_enabled(not running)
        self.make_default_button.setVisible(bool(self.registered_name))
        self.make_default_button.setEnabled(bool(self.registered_name)
                                            and self.settings.default_model != self.registered_name)

    def closeEvent(self, event) -> None:
        if self.is_running():
            if self.runner.stop_requested or self.confirm(
                    "Stop training?", "Training is still running. Stop it now? A checkpoint is saved and the run "
                                      "can be resumed later from this dialog."):
                self._close_when_stopped = True
                self.stop_training()
            event.ignore()
            return
        self.time_estimate.stop()
        super().closeEvent(event)

    def reject(self) -> None:
        """Esc, or the window's close button through ``closeEvent``: asks first while training runs."""
        if self.is_running():
            self.close()
            return
        self.time_estimate.stop()
        super().reject()

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Stop everything now (the editor is closing): the training saves a checkpoint, or is killed after
        ``timeout_ms``; the time estimate is killed."""
        self.time_estimate.shutdown()
        if self.runner is not None and self.runner.is_running():
            self.runner.shutdown(timeout_ms)
