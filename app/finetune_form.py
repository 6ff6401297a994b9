"""The fine-tune dialog's settings form ("New fine-tune"): base model, what to train on, steps, name, device.

The widgets and how they follow each other (a base without an edge model cannot train on "this photo", the
data source sets the defaults, joint training needs the adversarial losses); :meth:`FinetuneFormBox.form`
reads them into a :class:`app.finetune_presenter.FinetuneForm`, whose meaning the presenter decides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import finetune_presenter as presenter
from engine.api import ModelInfo
from engine.devices import device_choices
from engine.errors import ModelFileError
from engine.model_files import read_card
from trainer import finetune_protocol as protocol


def tunable_models(models: list[ModelInfo]) -> list[ModelInfo]:
    """The models a fine-tune can start from (networks with files)."""
    return [m for m in models if m.kind in ("neural", "completion") and m.path]


class FinetuneFormBox(QGroupBox):
    """The settings of a new fine-tune. ``image``/``user_mask``/``filled``: the open photo (None: none open).

    Signals: ``settings_changed()`` when a value the time estimate depends on changed; ``steps_changed()``
    (the estimate's total only); ``problem(str)`` for a base model that cannot be read, or none to start from.
    Call :meth:`on_base_changed` once its signals are connected.
    """

    settings_changed = Signal()
    steps_changed = Signal()
    problem = Signal(str)

    def __init__(self, models: list[ModelInfo], image: np.ndarray | None, user_mask: np.ndarray,
                 filled: np.ndarray, mask: np.ndarray | None, photo_name: str, device: str,
                 parent: QWidget | None = None) -> None:
        super().__init__("New fine-tune", parent)
        self.base_models = tunable_models(models)
        self.image, self.user_mask, self.filled, self.mask = image, user_mask, filled, mask
        self.photo_name = photo_name
        self._prefer_photo = image is not None  # until the user picks the folder
        self._base_resolution = 256
        self.setMinimumWidth(520)
        form = QFormLayout(self)
        self.base_combo = QComboBox()
        self._fill_base_combo()
        self.base_combo.setToolTip("The model to start from; the new model keeps its architecture")
        form.addRow("Base model", self.base_combo)
        form.addRow("Train on", self._build_data())
        self.parts_combo = QComboBox()
        self.parts_combo.addItem("Image model (keeps the base's edge model)", "image")
        self.parts_combo.addItem("Edge and image models (joint; slower)", "joint")
        form.addRow("Train", self.parts_combo)
        self.adversarial_check = QCheckBox("Adversarial + feature-matching losses (sharper textures, slower)")
        form.addRow("", self.adversarial_check)
        self._build_training(form, device)
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
        self._connect()

    def _build_data(self) -> QVBoxLayout:
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
        if self.image is None:
            self.photo_radio.setEnabled(False)
            self.photo_note.setText("Open a photo to fine-tune on it.")
        else:
            self.photo_note.setText(presenter.photo_note(self.photo_name, self.user_mask, self.filled))
        (self.photo_radio if self.image is not None else self.folder_radio).setChecked(True)
        return data

    def _build_training(self, form: QFormLayout, device: str) -> None:
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
        self.size_spin = QSpinBox()
        self.size_spin.setRange(24, 2048)
        self.size_spin.setSingleStep(4)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Side of the training crops (a multiple of 4); the base model's working "
                                  "resolution is what the editor fills at. For this photo the crops are cut at "
                                  "the scale the editor fills your mask at")
        form.addRow("Training resolution", self.size_spin)
        self.device_combo = QComboBox()
        for choice, label in device_choices():
            self.device_combo.addItem(label, choice)
        wanted = device
        if wanted == "auto":
            wanted = self.device_combo.itemData(self.device_combo.count() - 1)
        index = self.device_combo.findData("cuda:0" if wanted == "cuda" else wanted)
        self.device_combo.setCurrentIndex(max(0, index))
        form.addRow("Device", self.device_combo)

    def _connect(self) -> None:
        self.base_combo.currentIndexChanged.connect(self.on_base_changed)
        self.folder_radio.toggled.connect(self._on_mode_changed)
        self.folder_radio.clicked.connect(lambda: setattr(self, "_prefer_photo", False))
        self.photo_radio.clicked.connect(lambda: setattr(self, "_prefer_photo", True))
        self.browse_button.clicked.connect(self._browse)
        self.name_edit.textChanged.connect(self.check_name)
        self.parts_combo.currentIndexChanged.connect(self._on_parts_changed)
        for widget in (self.folder_edit, self.lr_edit):
            widget.textChanged.connect(self.settings_changed)
        for spin in (self.batch_spin, self.size_spin):
            spin.valueChanged.connect(self.settings_changed)
        self.steps_spin.valueChanged.connect(self.steps_changed)
        self.device_combo.currentIndexChanged.connect(self.settings_changed)
        self.adversarial_check.toggled.connect(self.settings_changed)

    def _fill_base_combo(self) -> None:
        self.base_combo.clear()
        for info in self.base_models:
            kind = "edge-guided" if info.kind == "neural" else "completion"
            self.base_combo.addItem(f"{info.name}  ({kind}, {info.source})", info.name)

    def set_models(self, models: list[ModelInfo]) -> bool:
        """A new model list; keeps the chosen base when still listed. True when the chosen base changed (then
        call :meth:`on_base_changed`)."""
        current = self.base_combo.currentData()
        self.base_models = tunable_models(models)
        self.base_combo.blockSignals(True)
        self._fill_base_combo()
        self.base_combo.setCurrentIndex(max(0, self.base_combo.findData(current)))
        self.base_combo.blockSignals(False)
        return self.base_combo.currentData() != current

    # ================================================================== values
    def base_info(self) -> ModelInfo | None:
        """The chosen base model, if any."""
        index = self.base_combo.currentIndex()
        return self.base_models[index] if 0 <= index < len(self.base_models) else None

    def mode(self) -> str:
        """``photo`` or ``folder``."""
        return "photo" if self.photo_radio.isChecked() else "folder"

    def parts(self) -> str:
        """What is trained: ``image``, ``joint`` (edge and image) or ``completion``."""
        info = self.base_info()
        if info is not None and info.kind == "completion":
            return "completion"
        return "joint" if self.mode() == "folder" and self.parts_combo.currentData() == "joint" else "image"

    def form(self) -> presenter.FinetuneForm:
        """The form's values, for the presenter's checks."""
        return presenter.FinetuneForm(
            base=self.base_info(), mode=self.mode(), folder=self.folder_edit.text(), name=self.name_edit.text(),
            parts=self.parts(), adversarial=self.adversarial_check.isChecked(), steps=self.steps_spin.value(),
            batch_size=self.batch_spin.value(), lr_text=self.lr_edit.text(), size=self.size_spin.value(),
            device=str(self.device_combo.currentData() or "cpu"), photo_name=self.photo_name, image=self.image,
            mask=self.mask, filled=self.filled)

    def estimate_key(self) -> tuple:
        """The values a time measurement depends on (the steps only scale it)."""
        return (self.base_combo.currentData(), self.mode(), self.folder_edit.text().strip(), self.parts(),
                self.adversarial_check.isChecked(), self.batch_spin.value(), self.size_spin.value(),
                self.device_combo.currentData())

    # ================================================================== how the values follow each other
    @Slot()
    def on_base_changed(self) -> None:
        """Another base model: "this photo" needs an edge-guided one; the defaults follow its resolution."""
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
                self.problem.emit(str(exc))
        self._on_mode_changed()
        if not self.base_models:
            self.problem.emit("No model to fine-tune: train one with inpaint-train, or add a bundled model.")

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
        self.suggest_name()
        self.settings_changed.emit()

    @Slot()
    def _on_parts_changed(self) -> None:
        joint = self.parts() == "joint"
        if joint:
            self.adversarial_check.setChecked(True)  # the edge generator learns only from its discriminator
        self.adversarial_check.setEnabled(not joint)
        self.check_name()
        self.settings_changed.emit()

    def suggest_name(self) -> None:
        """Propose a free name from the base and the data, unless the person typed one."""
        info = self.base_info()
        if info is None or (self.name_edit.text() and self.name_edit.isModified()):
            return
        source = Path(self.photo_name).stem if self.mode() == "photo" and self.photo_name else \
            Path(self.folder_edit.text().strip() or "photos").name
        stem = presenter.suggest_name(f"{info.name.removesuffix('-image')}-{source or 'photo'}")
        self.name_edit.setText(protocol.free_name(stem, self.parts()))

    @Slot()
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of your photos", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
            self.suggest_name()

    @Slot()
    def check_name(self) -> bool:
        """Show under the name field whether it can be used; True when it can."""
        ok, text = presenter.name_status(self.name_edit.text(), self.parts())
        self.name_status.setStyleSheet("color: #2e7d32" if ok else "color: #c0392b")
        self.name_status.setText(text)
        return ok
