"""The Preferences dialog edits exactly the settings the editor uses."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QLabel

from app.preferences import PreferencesDialog
from app.settings import Settings


def test_dialog_shows_and_writes_back_the_settings(qtbot):
    settings = Settings(device="cpu", brush_size=33, mask_color="#112233", clear_mask_after_fill=False, cpu_threads=1)
    dialog = PreferencesDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.device.currentData() == "cpu" and dialog.brush.value() == 33 and dialog.threads.value() == 1
    assert not dialog.clear_after.isChecked() and dialog.color_button.text() == "#112233"
    labels = [w.text() for w in dialog.findChildren(QLabel) + dialog.findChildren(QCheckBox)]
    assert "Default brush size" in labels
    assert not any("hardness" in label.lower() for label in labels)  # masks are on/off: no such setting

    dialog.brush.setValue(80)
    dialog.clear_after.setChecked(True)
    dialog._color = QColor("#00ff00")
    target = Settings()
    dialog.apply_to(target)
    assert (target.device, target.brush_size, target.mask_color, target.clear_mask_after_fill, target.cpu_threads) \
        == ("cpu", 80, "#00ff00", True, 1)
    assert "brush_hardness" not in target.to_dict()
