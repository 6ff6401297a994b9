"""The Preferences dialog: device, CPU threads, brush default, mask colour, clear-mask-after-fill."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.settings import Settings


def device_choices() -> list[tuple[str, str]]:
    """(value, label) pairs for the device box; GPUs are listed when torch sees them."""
    choices = [("auto", "Automatic (GPU if available)"), ("cpu", "CPU")]
    try:
        from engine.devices import available_devices

        choices += [(name, name.upper()) for name in available_devices() if name != "cpu"]
    except Exception:  # no torch device query possible: auto and CPU still work
        pass
    return choices


class PreferencesDialog(QDialog):
    """Edits a copy of the settings; :meth:`apply_to` writes the choices back."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        form = QFormLayout(self)
        self.device = QComboBox()
        for value, label in device_choices():
            self.device.addItem(label, value)
        index = self.device.findData(settings.device)
        if index < 0:
            self.device.addItem(settings.device, settings.device)
            index = self.device.count() - 1
        self.device.setCurrentIndex(index)
        form.addRow("Compute device", self.device)

        self.threads = QSpinBox()
        from engine.devices import cpu_cores

        self.threads.setRange(1, cpu_cores())
        self.threads.setValue(min(settings.cpu_threads, self.threads.maximum()))
        self.threads.setToolTip("Torch CPU threads for fills; keep one core free so the window stays smooth.")
        form.addRow("CPU threads", self.threads)

        self.brush = QSpinBox()
        self.brush.setRange(1, 1000)
        self.brush.setSuffix(" px")
        self.brush.setValue(settings.brush_size)
        form.addRow("Default brush size", self.brush)

        self._color = QColor(settings.mask_color)
        self.color_button = QPushButton()
        self.color_button.clicked.connect(self._pick_color)
        self._show_color()
        form.addRow("Mask colour", self.color_button)

        self.clear_after = QCheckBox("Clear the mask after a fill")
        self.clear_after.setChecked(settings.clear_mask_after_fill)
        form.addRow("", self.clear_after)

        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _show_color(self) -> None:
        self.color_button.setText(self._color.name())
        self.color_button.setStyleSheet(f"background-color: {self._color.name()};")

    def _pick_color(self) -> None:
        color = QColorDialog.getColor(self._color, self, "Mask colour")
        if color.isValid():
            self._color = color
            self._show_color()

    def apply_to(self, settings: Settings) -> None:
        """Copy the dialog's values into ``settings``."""
        settings.device = str(self.device.currentData())
        settings.cpu_threads = int(self.threads.value())
        settings.brush_size = int(self.brush.value())
        settings.mask_color = self._color.name()
        settings.clear_mask_after_fill = self.clear_after.isChecked()
