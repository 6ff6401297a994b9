"""Models > Fine-tune…: adapt a model to the user's photos (a folder, or the photo being edited).

The dialog collects the settings, writes a job folder (``user_home()/finetune/<name>/job.json``) and runs
``python -m trainer.finetune_job`` in a separate process through :class:`app.finetune_runner.FinetuneRunner`
(the same ``train()`` the CLI uses). It shows the run live from the job's ``metrics.jsonl``: a progress bar
with ETA, the loss curves (:class:`app.loss_plot.LossPlot`), the latest sample grid and the validation
figures. Stop saves a checkpoint; unfinished runs are listed at the top and Resume continues them, also after
the editor was closed. When a run completes, the job has registered the model in the user models folder and
the dialog emits :attr:`FinetuneDialog.model_registered` so the window rescans the models.

The window opens it non-modally (training may take long and the editor stays usable)::

    dialog = FinetuneDialog(window.models, image, mask, window.settings, window, photo_name="IMG_1.jpg")
    dialog.model_registered.connect(window.on_model_registered)   # (name, make_default)
    window.engine.models_changed.connect(dialog.set_models)        # the list may still be loading
    dialog.show()
    ...  # on window close: dialog.shutdown()
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QDoubleValidator, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import finetune_presenter as presenter
from app.finetune_presenter import format_duration, photo_note, suggest_name
from app.finetune_runner import FinetuneRunner, RunOutcome
from app.fitted_image import FittedImageLabel
from app.loss_plot import LossPlot
from app.settings import Settings
from engine.api import ModelInfo
from engine.atomic import write_with_atomic
from engine.devices import device_choices
from engine.errors import ModelFileError
from engine.model_files import read_card
from trainer import finetune_protocol as protocol

log = logging.getLogger(__name__)

ESTIMATE_PHOTO_SIDE = 1024  # the estimate trains on a downscaled copy (the step cost depends on the crop size)
VAL_COLUMNS = (("hole_psnr", "hole PSNR"), ("psnr", "PSNR"), ("ssim", "SSIM"), ("l1", "L1 %"))
Confirm = Callable[[str, str], bool]
AskName = Callable[[str, str, str], str | None]  # (title, text, proposal) -> the name typed, or None


WORSE_DB = 1.0  # a registered model validating this much below its base gets a warning


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
        self.base_models = [m for m in models if m.kind in ("neural", "completion") and m.path]
        self.image = image
        shape = image.shape[:2] if image is not None else (0, 0)
        # "This photo" learns only from pixels that came from the file: the user's mask and every region filled
        # in this session (``filled``, from the undo history) have no ground truth, so both go to the trainer as
        # its user mask.
        self.user_mask = np.asarray(mask, bool) if mask is not None else np.zeros(shape, bool)
        self.filled = np.asarray(filled, bool) if filled is not None else np.zeros(shape, bool)
        self.mask = self.user_mask | self.filled if image is not None else mask
        self.photo_name = photo_name
        self.auto_estimate = auto_estimate
        self.confirm = confirm or _ask(self)
        self.ask_name = ask_name or _ask_name(self)
        self.env = dict(env or {})
        self.python = python
        self.runner: FinetuneRunner | None = None
        self.estimator: FinetuneRunner | None = None
        self.run_dir: Path | None = None
        self.spec: protocol.JobSpec | None = None
        self.outcome: RunOutcome | None = None
        self.estimate: dict[str, Any] | None = None
        self.last_error = ""
        self.registered_name = ""
        self._estimates: dict[tuple, dict[str, Any]] = {}
        self._first_val: dict[str, Any] | None = None
        self._last_val: dict[str, Any] | None = None
        self._close_when_stopped = False
        self._prefer_photo = image is not None  # until the user picks the folder
        self._build()
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(700)
        self._estimate_timer.timeout.connect(self.start_estimate)
        self._connect()
        self._on_base_changed()
        self.refresh_runs()
        self._update_buttons()

    # ================================================================== construction
    def _build(self) -> None:
        self.runs_box = QGroupBox("Unfinished runs (stopped, failed or interrupted)")
        self.runs_list = QListWidget()
        self.runs_list.setMaximumHeight(90)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the selected run from its last checkpoint")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected run's folder (checkpoints, curves, samples)")
        runs_layout = QHBoxLayout(self.runs_box)
        runs_layout.addWidget(self.runs_list, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        runs_layout.addLayout(buttons)

        self.form_box = QGroupBox("New fine-tune")
        self.form_box.setMinimumWidth(520)
        form = QFormLayout(self.form_box)
        self.base_combo = QComboBox()
        self._fill_base_combo()
        self.base_combo.setToolTip("The model to start from; the new model keeps its architecture")
        form.addRow("Base model", self.base_combo)

        self.folder_radio = QRadioButton("A folder of my photos")
        self.photo_radio = QRadioButton("This photo: the part of the open image that came from the file")
        self.data_group = QButtonGroup(self)
        self.data_group.addButton(self.folder_radio)
        self.data_group.addButton(self.photo_radio)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("folder of photos (subfolders included)")
        self.browse_button = QPushButton("Browse…")
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        data = QVBoxLayout()
        data.addWidget(self.folder_radio)
        data.addLayout(folder_row)
        data.addWidget(self.photo_radio)
        self.photo_note = QLabel()
        self.photo_note.setWordWrap(True)
        self.photo_note.setStyleSheet("color: gray")
        data.addWidget(self.photo_note)
        form.addRow("Train on", data)
        if self.image is None:
            self.photo_radio.setEnabled(False)
            self.photo_note.setText("Open a photo to fine-tune on it.")
        else:
            self.photo_note.setText(photo_note(self.photo_name, self.user_mask, self.filled))
        (self.photo_radio if self.image is not None else self.folder_radio).setChecked(True)

        self.parts_combo = QComboBox()
        self.parts_combo.addItem("Image model (keeps the base's edge model)", "image")
        self.parts_combo.addItem("Edge and image models (joint; slower)", "joint")
        form.addRow("Train", self.parts_combo)
        self.adversarial_check = QCheckBox("Adversarial + feature-matching losses (sharper textures, slower)")
        form.addRow("", self.adversarial_check)

        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 10_000_000)
        self.steps_spin.setSingleStep(100)
        form.addRow("Steps", self.steps_spin)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 512)
        form.addRow("Batch size", self.batch_spin)
        self.lr_edit = QLineEdit()
        validator = QDoubleValidator(1e-7, 1.0, 8, self.lr_edit)
        validator.setNotation(QDoubleValidator.ScientificNotation)
        self.lr_edit.setValidator(validator)
        form.addRow("Learning rate", self.lr_edit)
        self._base_resolution = 256
        self.size_spin = QSpinBox()
        self.size_spin.setRange(24, 2048)
        self.size_spin.setSingleStep(4)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Side of the training crops (a multiple of 4); the base model's working "
                                  "resolution is what the editor fills at. For this photo the crops are cut at "
                                  "the scale the editor fills your mask at")
        form.addRow("Training resolution", self.size_spin)
        self.device_combo = QComboBox()
        for device, label in device_choices():
            self.device_combo.addItem(label, device)
        wanted = self.settings.device
        if wanted == "auto":
            wanted = self.device_combo.itemData(self.device_combo.count() - 1)
        index = self.device_combo.findData("cuda:0" if wanted == "cuda" else wanted)
        self.device_combo.setCurrentIndex(max(0, index))
        form.addRow("Device", self.device_combo)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. holiday-photos")
        self.name_status = QLabel()
        self.name_status.setWordWrap(True)
        self.name_status.setMinimumHeight(self.fontMetrics().height() * 2 + 4)  # wrapped text is not clipped
        name_box = QVBoxLayout()
        name_box.addWidget(self.name_edit)
        name_box.addWidget(self.name_status)
        form.addRow("New model's name", name_box)
        self.default_check = QCheckBox("Make it the default model when done")
        form.addRow("", self.default_check)
        self.estimate_label = QLabel()
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setMinimumHeight(self.fontMetrics().height() * 4 + 4)
        form.addRow("Time", self.estimate_label)

        self.live_box = QGroupBox("Training")
        live = QVBoxLayout(self.live_box)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("not started")
        self.status_label = QLabel("Choose the settings on the left, then Start.")
        self.status_label.setWordWrap(True)
        self.loss_plot = LossPlot()
        self.sample_label = FittedImageLabel("The latest sample grid (input, edges, output, truth) appears here.")
        self.sample_label.setMinimumHeight(120)
        self.val_label = QLabel("Validation")
        self.val_table = QTableWidget(0, len(VAL_COLUMNS))
        self.val_table.setHorizontalHeaderLabels([label for _, label in VAL_COLUMNS])
        self.val_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.val_table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.val_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.val_table.verticalHeader().setMaximumWidth(320)
        live.addWidget(self.progress_bar)
        live.addWidget(self.status_label)
        live.addWidget(self.loss_plot, 1)
        live.addWidget(self.sample_label, 1)
        live.addWidget(self.val_label)
        live.addWidget(self.val_table)
        self._fit_table_height()

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
        self.base_combo.currentIndexChanged.connect(self._on_base_changed)
        self.folder_radio.toggled.connect(self._on_mode_changed)
        self.folder_radio.clicked.connect(lambda: setattr(self, "_prefer_photo", False))
        self.photo_radio.clicked.connect(lambda: setattr(self, "_prefer_photo", True))
        self.browse_button.clicked.connect(self._browse)
        self.name_edit.textChanged.connect(self._check_name)
        self.parts_combo.currentIndexChanged.connect(self._on_parts_changed)
        for widget in (self.folder_edit, self.lr_edit):
            widget.textChanged.connect(self._settings_changed)
        for spin in (self.batch_spin, self.size_spin):
            spin.valueChanged.connect(self._settings_changed)
        self.steps_spin.valueChanged.connect(self._show_estimate)
        self.device_combo.currentIndexChanged.connect(self._settings_changed)
        self.adversarial_check.toggled.connect(self._settings_changed)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop_training)
        self.make_default_button.clicked.connect(self.make_default)
        self.close_button.clicked.connect(self.close)
        self.resume_button.clicked.connect(self._resume_selected)
        self.delete_button.clicked.connect(self._delete_selected)
        self.runs_list.currentRowChanged.connect(lambda _row: self._update_buttons())

    def _fill_base_combo(self) -> None:
        self.base_combo.clear()
        for info in self.base_models:
            kind = "edge-guided" if info.kind == "neural" else "completion"
            self.base_combo.addItem(f"{info.name}  ({kind}, {info.source})", info.name)

    @Slot(list)
    def set_models(self, models: list[ModelInfo]) -> None:
        """A new model list (connect the engine's ``models_changed``); keeps the chosen base when still listed."""
        current = self.base_combo.currentData()
        self.base_models = [m for m in models if m.kind in ("neural", "completion") and m.path]
        self.base_combo.blockSignals(True)
        self._fill_base_combo()
        self.base_combo.setCurrentIndex(max(0, self.base_combo.findData(current)))
        self.base_combo.blockSignals(False)
        if self.base_models and self.last_error.startswith("No model to fine-tune"):
            self._error("")
        if self.base_combo.currentData() != current:
            self._on_base_changed()

    # ================================================================== form state
    def base_info(self) -> ModelInfo | None:
        index = self.base_combo.currentIndex()
        return self.base_models[index] if 0 <= index < len(self.base_models) else None

    def mode(self) -> str:
        return "photo" if self.photo_radio.isChecked() else "folder"

    def parts(self) -> str:
        info = self.base_info()
        if info is not None and info.kind == "completion":
            return "completion"
        return "joint" if self.mode() == "folder" and self.parts_combo.currentData() == "joint" else "image"

    @Slot()
    def _on_base_changed(self) -> None:
        info = self.base_info()
        neural = info is not None and info.kind == "neural"
        self.photo_radio.setEnabled(self.image is not None and neural)
        if not neural and self.photo_radio.isChecked():
            self.folder_radio.setChecked(True)
        elif neural and self._prefer_photo and self.image is not None and not self.photo_radio.isChecked():
            self.photo_radio.setChecked(True)
        self.photo_radio.setToolTip("" if neural else "Fine-tuning on one photo needs an edge-guided model")
        if info is not None:
            try:
                self._base_resolution = int(read_card(info.path).resolution)
            except ModelFileError as exc:
                self._error(str(exc))
        self._on_mode_changed()
        if not self.base_models:
            self._error("No model to fine-tune: train one with inpaint-train, or add a bundled model.")

    @Slot()
    def _on_mode_changed(self) -> None:
        photo = self.mode() == "photo"
        defaults = protocol.PHOTO_DEFAULTS if photo else protocol.FOLDER_DEFAULTS
        self.size_spin.setValue(protocol.default_crop_size(self._base_resolution, photo))
        self.steps_spin.setValue(defaults["steps"])
        self.batch_spin.setValue(defaults["batch"])
        self.lr_edit.setText(f"{defaults['lr']:g}")
        self.folder_edit.setEnabled(not photo)
        self.browse_button.setEnabled(not photo)
        self.parts_combo.setEnabled(not photo and self.parts() != "completion")
        if photo:
            self.parts_combo.setCurrentIndex(0)
        self._on_parts_changed()
        self._suggest_name()
        self._settings_changed()

    @Slot()
    def _on_parts_changed(self) -> None:
        joint = self.parts() == "joint"
        if joint:
            self.adversarial_check.setChecked(True)  # the edge generator learns only from its discriminator
        self.adversarial_check.setEnabled(not joint)
        self._check_name()
        self._settings_changed()

    def _suggest_name(self) -> None:
        info = self.base_info()
        if info is None or (self.name_edit.text() and self.name_edit.isModified()):
            return
        source = Path(self.photo_name).stem if self.mode() == "photo" and self.photo_name else \
            Path(self.folder_edit.text().strip() or "photos").name
        stem = suggest_name(f"{info.name.removesuffix('-image')}-{source or 'photo'}")
        self.name_edit.setText(protocol.free_name(stem, self.parts()))

    @Slot()
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of your photos", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
            self._suggest_name()

    @Slot()
    def _check_name(self) -> bool:
        ok, text = presenter.name_status(self.name_edit.text(), self.parts())
        self.name_status.setStyleSheet("color: #2e7d32" if ok else "color: #c0392b")
        self.name_status.setText(text)
        return ok

    def learning_rate(self) -> float | None:
        return presenter.parse_learning_rate(self.lr_edit.text())

    def form(self) -> presenter.FinetuneForm:
        """The form's values, for the presenter's checks."""
        return presenter.FinetuneForm(
            base=self.base_info(), mode=self.mode(), folder=self.folder_edit.text(), name=self.name_edit.text(),
            parts=self.parts(), adversarial=self.adversarial_check.isChecked(), steps=self.steps_spin.value(),
            batch_size=self.batch_spin.value(), lr_text=self.lr_edit.text(), size=self.size_spin.value(),
            device=str(self.device_combo.currentData() or "cpu"), photo_name=self.photo_name, image=self.image,
            mask=self.mask, filled=self.filled)

    def current_spec(self, name: str | None = None) -> protocol.JobSpec:
        """The job the form describes (not yet checked)."""
        return presenter.job_spec(self.form(), name)

    # ================================================================== checks
    def problems(self) -> str | None:
        """What keeps the form from starting (the first problem), or None."""
        return presenter.problems(self.form())

    # ================================================================== estimate
    def _estimate_key(self) -> tuple:
        return (self.base_combo.currentData(), self.mode(), self.folder_edit.text().strip(), self.parts(),
                self.adversarial_check.isChecked(), self.batch_spin.value(), self.size_spin.value(),
                self.device_combo.currentData())

    @Slot()
    def _settings_changed(self) -> None:
        if not hasattr(self, "_estimate_timer"):
            return
        self._show_estimate()
        if self.auto_estimate and self._estimate_key() not in self._estimates and not self.is_running():
            self._estimate_timer.start()

    @Slot()
    def _show_estimate(self) -> None:
        result = self._estimates.get(self._estimate_key())
        device = self.device_combo.currentText()
        if result is None:
            problem = presenter.memory_problem(self.form())
            if problem:
                self.estimate_label.setText(problem)
                return
            busy = self.estimator is not None and self.estimator.is_running()
            self.estimate_label.setText(f"Measuring a few steps on {device}…" if busy else
                                        "The time estimate appears here (a few steps are measured on the device).")
            return
        steps = self.steps_spin.value()
        total = result["startup_s"] + steps * result["seconds_per_step"] * 1.05
        self.estimate = {**result, "total_s": total, "steps_total": steps}
        self.estimate_label.setText(
            f"About {format_duration(total)} on {device} — an estimate: {result['seconds_per_step']:.2f} s per "
            f"step measured just now over {result['steps']} steps, plus {format_duration(result['startup_s'])} to "
            "start and a little for validation; other programs running at the same time make it slower.")

    @Slot()
    def start_estimate(self) -> bool:
        """Time a few steps of the current settings in a separate process (``estimate_ready`` follows)."""
        if self.is_running() or self.problems_for_estimate():
            self._show_estimate()
            return False
        self._stop_estimator()
        folder = protocol.runs_root() / ".estimate"
        shutil.rmtree(folder, ignore_errors=True)
        try:
            folder.mkdir(parents=True)
            spec = self.current_spec(name="estimate")
            if spec.mode == "photo":
                self._write_photo(folder, max_side=ESTIMATE_PHOTO_SIDE)
            protocol.write_spec(folder, spec)
        except (OSError, protocol.JobError, ModelFileError) as exc:
            self.estimate_label.setText(f"No time estimate: {exc}")
            return False
        key = self._estimate_key()
        runner = FinetuneRunner(folder, estimate=True, parent=self, python=self.python, env=self.env)
        runner.finished.connect(lambda outcome, k=key: self._on_estimated(k, outcome))
        self.estimator = runner
        runner.start()
        self._show_estimate()
        return True

    def problems_for_estimate(self) -> str | None:
        return presenter.problems_for_estimate(self.form())

    def _on_estimated(self, key: tuple, outcome: RunOutcome) -> None:
        result = outcome.estimate if outcome.state == "estimated" else None
        if result is not None and math.isfinite(result.get("seconds_per_step", math.nan)):
            self._estimates[key] = result
            self._show_estimate()
        elif key == self._estimate_key():
            if outcome.state in ("oom", "crashed"):
                why = ("measuring a few steps ran out of memory or was killed: these settings would likely fail "
                       "the same way; use a smaller batch size or training resolution.")
            else:
                why = outcome.message or "the measurement failed."
            self.estimate_label.setText(f"No time estimate: {why}")
        shutil.rmtree(protocol.runs_root() / ".estimate", ignore_errors=True)
        self.estimate_ready.emit(result)

    def _stop_estimator(self) -> None:
        if self.estimator is not None:
            with contextlib.suppress(RuntimeError):
                self.estimator.finished.disconnect()
            self.estimator.kill()
            self.estimator.wait(5_000)
            self.estimator.deleteLater()
            self.estimator = None

    # ================================================================== running
    def is_running(self) -> bool:
        return self.runner is not None and self.runner.is_running()

    def _write_photo(self, folder: Path, max_side: int | None = None) -> None:
        import cv2

        image, mask = self.image, self.mask
        if max_side and max(image.shape[:2]) > max_side:
            scale = max_side / max(image.shape[:2])
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0

        def writer(array: np.ndarray) -> Callable[[Path], None]:
            def write(tmp: Path) -> None:
                if not cv2.imwrite(str(tmp), array, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
                    raise OSError(f"could not write {tmp.name} (is the disk full?)")
            return write

        write_with_atomic(folder / protocol.PHOTO_FILE, writer(np.ascontiguousarray(image[..., ::-1])))
        write_with_atomic(folder / protocol.MASK_FILE, writer(mask.astype(np.uint8) * 255))

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
        if not self._replace_unfinished(self.name_edit.text().strip()):
            return False
        spec = self.current_spec()
        run_dir = protocol.runs_root() / spec.name
        try:
            if run_dir.exists():  # a finished (registered) run's record of the same name, or a run never started
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
            if spec.mode == "photo":
                self._write_photo(run_dir)
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
        self._stop_estimator()
        self._estimate_timer.stop()
        self.run_dir, self.spec, self.outcome = run_dir, spec, None
        self.registered_name = ""
        self._first_val = self._last_val = None
        self.loss_plot.clear()
        self.val_table.setRowCount(0)
        self.sample_label.clear_image("The latest sample grid appears after the first validation.")
        self.progress_bar.setRange(0, spec.steps)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting…")
        self.status_label.setText(f"Fine-tuning {spec.base} into '{spec.name}' on {spec.device}…")
        runner = FinetuneRunner(run_dir, parent=self, python=self.python, env=self.env)
        runner.record.connect(self.on_record)
        runner.reset.connect(self._on_reset)
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

    @Slot()
    def _on_reset(self) -> None:
        self.loss_plot.clear()
        self.val_table.setRowCount(0)
        self._first_val = self._last_val = None

    @Slot(dict)
    def on_record(self, record: dict[str, Any]) -> None:
        """One metrics record of the running job."""
        kind = record.get("kind")
        total = int(record.get("total_steps") or (self.spec.steps if self.spec else 1))
        if kind == "start":
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(int(record.get("step", 0)))
            notes = [m for m in record.get("messages", []) if m]
            self.status_label.setText(f"Training on {record.get('hardware', '?')}." +
                                      (" " + " ".join(notes[-3:]) if notes else ""))
        elif kind == "train":
            step = int(record.get("step", 0))
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(min(step, total))
            eta = record.get("eta_s")
            left = f" — about {format_duration(float(eta))} left" if isinstance(eta, int | float) else ""
            self.progress_bar.setFormat(f"step {step} / {total}{left}")
            self.loss_plot.add_record(record)
        elif kind == "val":
            self._show_validation(record)
        elif kind == "sample":
            self._show_sample(record.get("path", ""))
        elif kind == "checkpoint":
            self.status_label.setText(f"Checkpoint saved at step {record.get('step')}.")

    def _show_validation(self, record: dict[str, Any]) -> None:
        table = record.get("table") or {}
        if not isinstance(table, dict):
            return
        if self._first_val is None:
            self._first_val = record
        self._last_val = record
        # "all" repeats the only bucket when there is one (a "this photo" run's held-out holes): show it once.
        shown = {b: m for b, m in table.items() if not (b == "all" and len(table) == 2)}
        self.val_table.setRowCount(len(shown))
        self.val_table.setVerticalHeaderLabels([str(b) for b in shown])
        for row, metrics in enumerate(shown.values()):
            for col, (key, _) in enumerate(VAL_COLUMNS):
                value = metrics.get(key) if isinstance(metrics, dict) else None
                text = f"{value:.3f}" if key == "ssim" and isinstance(value, float) else \
                    f"{value:.2f}" if isinstance(value, float) else "–"
                self.val_table.setItem(row, col, QTableWidgetItem(text))
        first = (self._first_val.get("table") or {}).get("all", {})
        latest = table.get("all", {})
        text = f"Validation at step {record.get('step')}"
        if self._first_val is not record and "hole_psnr" in first and "hole_psnr" in latest:
            gain = latest["hole_psnr"] - first["hole_psnr"]
            where = "the base model" if self._first_val.get("step") == 0 else f"step {self._first_val.get('step')}"
            text += f" — hole PSNR {latest['hole_psnr']:.2f} dB, {gain:+.2f} dB against {where}"
        self.val_label.setText(text)
        self._fit_table_height()

    def _fit_table_height(self) -> None:
        """The validation table is as tall as its rows (no empty band below them)."""
        table = self.val_table
        rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
        table.setFixedHeight(table.horizontalHeader().sizeHint().height() + rows + 2 * table.frameWidth())

    def _show_sample(self, path: str) -> None:
        pixmap = QPixmap(path)
        if pixmap.isNull():
            return
        self.sample_label.setToolTip(path)
        self.sample_label.set_image(pixmap)

    @Slot(object)
    def on_run_finished(self, outcome: RunOutcome) -> None:
        self.outcome = outcome
        spec = self.spec
        if outcome.state == "registered" and spec is not None:
            self.registered_name = spec.name
            self.progress_bar.setValue(self.progress_bar.maximum())
            self.progress_bar.setFormat("done")
            make_default = self.default_check.isChecked()
            if make_default:
                self._set_default(spec.name)
            kept = protocol.held_out_gain(self.run_dir) if spec.mode == "photo" and self.run_dir is not None else ""
            self.status_label.setText(f"Done: '{spec.name}' is in your models folder and in the model selector"
                                      + (" and is now the default model." if make_default else ".") + kept
                                      + ("" if kept else self._worse_than_base()))
            self.model_registered.emit(spec.name, make_default)
            self.name_edit.clear()  # the name is taken now: offer a free one for a next run
            self._suggest_name()
        elif outcome.state == "stopped":
            self.progress_bar.setFormat("stopped — Resume continues")
            self.status_label.setText(outcome.message + " Resume it from the list above, also after restarting "
                                                        "the editor.")
        else:
            self.progress_bar.setFormat("failed")
            self.status_label.setText("The fine-tune did not finish.")
            self._error(outcome.message)
            if outcome.stderr:
                log.warning("fine-tune process output:\n%s", outcome.stderr[-4000:])
        self.refresh_runs()
        self._check_name()
        self._update_buttons()
        self.run_finished.emit(outcome)
        if self._close_when_stopped:
            self._close_when_stopped = False
            self.close()

    def _worse_than_base(self) -> str:
        """A warning when the registered weights validated clearly worse than the model the run started from."""
        first, last = self._first_val, self._last_val
        if not first or not last or first is last or first.get("step") != 0:
            return ""
        before = (first.get("table") or {}).get("all", {}).get("hole_psnr")
        after = (last.get("table") or {}).get("all", {}).get("hole_psnr")
        if not isinstance(before, float) or not isinstance(after, float) or after > before - WORSE_DB:
            return ""
        return (f" Warning: its validation is {before - after:.1f} dB worse than the base model's (hole PSNR "
                f"{after:.2f} against {before:.2f} dB): a lower learning rate or fewer steps would likely do better.")

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
            self.default_check.setChecked(True)
            self.status_label.setText(f"'{self.registered_name}' is now the default model.")
            self.model_registered.emit(self.registered_name, True)
            self._update_buttons()

    # ================================================================== unfinished runs
    def refresh_runs(self) -> None:
        """List the unfinished runs (not the one running now)."""
        self.runs_list.clear()
        running = self.run_dir if self.is_running() else None
        for info in protocol.list_runs():
            if running is not None and info.run_dir == running:
                continue
            spec = info.spec
            what = ("this photo" if spec.mode == "photo" else Path(spec.folder).name) if spec else "?"
            text = f"{info.name} — step {info.step}/{info.total} — {info.state} ({what})"
            item = QListWidgetItem(text)
            item.setData(Qt.UserRole, str(info.run_dir))
            item.setToolTip(info.message or str(info.run_dir))
            self.runs_list.addItem(item)
        self.runs_box.setVisible(self.runs_list.count() > 0)
        if self.runs_list.count():
            self.runs_list.setCurrentRow(0)

    def _selected_run(self) -> Path | None:
        item = self.runs_list.currentItem()
        return Path(item.data(Qt.UserRole)) if item is not None else None

    @Slot()
    def _resume_selected(self) -> None:
        run_dir = self._selected_run()
        if run_dir is not None:
            self.resume_run(run_dir)

    @Slot()
    def _delete_selected(self) -> None:
        run_dir = self._selected_run()
        if run_dir is not None and protocol.run_info(run_dir).state == "running":
            pid = protocol.read_status(run_dir).get("pid")
            self._error(f"The run '{run_dir.name}' is being trained by another process right now (pid {pid}): "
                        "stop it there first.")
            return
        if run_dir is None or not self.confirm("Delete run", f"Delete the run '{run_dir.name}' with its "
                                                             "checkpoints? It cannot be resumed afterwards."):
            return
        shutil.rmtree(run_dir, ignore_errors=True)
        self.refresh_runs()
        self._check_name()

    # ================================================================== state, messages, closing
    def _error(self, text: str) -> None:
        self.last_error = text
        self.error_label.setText(text)

    def _update_buttons(self) -> None:
        running = self.is_running()
        stopping = running and self.runner.stop_requested
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running and not stopping)
        self.form_box.setEnabled(not running)
        self.resume_button.setEnabled(not running and self.runs_list.currentItem() is not None)
        self.delete_button.setEnabled(not running and self.runs_list.currentItem() is not None)
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
        self._stop_estimator()
        super().closeEvent(event)

    def reject(self) -> None:
        """Esc, or the window's close button through ``closeEvent``: asks first while training runs."""
        if self.is_running():
            self.close()
            return
        self._stop_estimator()
        super().reject()

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Stop everything now (the editor is closing): the training saves a checkpoint, or is killed after
        ``timeout_ms``; the time estimate is killed."""
        self._estimate_timer.stop()
        self._stop_estimator()
        if self.runner is not None and self.runner.is_running():
            self.runner.shutdown(timeout_ms)
