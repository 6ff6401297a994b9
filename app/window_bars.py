"""The editor window's bars: the tools toolbar, the fill toolbar and the status bar's permanent widgets.

They only lay out widgets and actions; the window connects them (see ``MainWindow._connect``).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QProgressBar, QSlider, QStatusBar, QToolBar, QToolButton, QWidget

from app.canvas import MAX_BRUSH, MIN_BRUSH
from app.window_actions import TOOL_ACTIONS

ICON_SIZE = QSize(22, 22)
TEXTURE_TIP = ("Texture copied from the photo itself on top of the structure fill: 0% = the smooth structure alone, "
               "100% = full detail")
NO_TEXTURE_TIP = ("The selected fill copies no texture (Telea, Navier-Stokes and PatchMatch are complete fills of "
                  "their own)")


def _text_beside_icon(button: QWidget | None) -> None:
    """Label and icon on a button that takes no keyboard focus: keys stay with the canvas (Space must pan,
    never press a focused Fill button)."""
    if isinstance(button, QToolButton):
        button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)


class ToolsBar(QToolBar):
    """Open and Save, Undo and Redo, the tools, the brush size, the mask commands, Compare and Predict Edges."""

    def __init__(self, actions: dict[str, QAction], parent: QWidget | None = None) -> None:
        super().__init__("Tools", parent)
        self.setObjectName("tools")
        self.setIconSize(ICON_SIZE)
        self.setMovable(False)
        for key in ("open", "save", None, "undo", "redo", None, *TOOL_ACTIONS, None):
            self.addSeparator() if key is None else self.addAction(actions[key])

        self.size_label = QLabel("Size")
        self.size_slider = QSlider(Qt.Horizontal)
        self.size_slider.setRange(MIN_BRUSH, MAX_BRUSH)
        self.size_slider.setFixedWidth(140)
        self.size_slider.setToolTip("Brush size in photo pixels ([ smaller, ] larger)")
        self.size_slider.setFocusPolicy(Qt.NoFocus)
        self.size_value = QLabel()
        self.size_value.setMinimumWidth(48)
        self.addWidget(self.size_label)
        self.addWidget(self.size_slider)
        self.addWidget(self.size_value)
        self.addSeparator()
        for key in ("grow_mask", "shrink_mask", "clear_mask", "invert_mask"):
            self.addAction(actions[key])
        self.addSeparator()

        self.compare_button = QToolButton()  # held down, not clicked: the window connects pressed / released
        self.compare_button.setDefaultAction(actions["compare"])
        self.compare_button.setFocusPolicy(Qt.NoFocus)
        self.addWidget(self.compare_button)
        self.addAction(actions["predict_edges"])
        self.predict_button = self.widgetForAction(actions["predict_edges"])
        _text_beside_icon(self.predict_button)


class FillBar(QToolBar):
    """Model, texture and Fill, on a row of their own: on one row with the tools, a long model name pushed the
    Fill button into the toolbar's overflow menu at 1440 px."""

    def __init__(self, actions: dict[str, QAction], model_box: QComboBox, texture: float,
                 parent: QWidget | None = None) -> None:
        super().__init__("Fill", parent)
        self.setObjectName("fill")
        self.setIconSize(ICON_SIZE)
        self.setMovable(False)
        self.addWidget(QLabel(" Model "))
        self.addWidget(model_box)
        self.texture_slider = QSlider(Qt.Horizontal)
        self.texture_slider.setRange(0, 100)
        self.texture_slider.setFixedWidth(90)
        self.texture_slider.setFocusPolicy(Qt.NoFocus)
        self.texture_slider.setValue(round(100 * texture))
        self.texture_label = QLabel()
        self.addWidget(QLabel(" Texture "))
        self.addWidget(self.texture_slider)
        self.addWidget(self.texture_label)
        self.addSeparator()
        self.fill_button = QToolButton()
        self.fill_button.setDefaultAction(actions["fill"])
        self.fill_button.setObjectName("fillButton")
        self.addWidget(self.fill_button)
        self.cancel_button = QToolButton()
        self.cancel_button.setDefaultAction(actions["cancel"])
        self.addWidget(self.cancel_button)
        _text_beside_icon(self.fill_button)
        _text_beside_icon(self.cancel_button)

    def show_texture(self, takes: bool) -> None:
        """Show the texture strength, enabled only when the selected fill takes it (``takes``)."""
        self.texture_label.setText(f"{self.texture_slider.value()}% ")
        self.texture_slider.setEnabled(takes)
        self.texture_slider.setToolTip(TEXTURE_TIP if takes else NO_TEXTURE_TIP)


class StatusWidgets:
    """The status bar's permanent widgets, right to left: engine device, zoom, pointer position, fill progress,
    and the mark shown while autosaving fails."""

    def __init__(self, status: QStatusBar) -> None:
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(220)
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        self.position_label = QLabel()
        self.zoom_label = QLabel()
        self.device_label = QLabel("Engine: starting…")
        self.device_label.setToolTip("Where fills run (set in Preferences)")
        self.autosave_warning = QLabel("⚠ Autosave failing")
        self.autosave_warning.setStyleSheet("color: #e67e22")
        self.autosave_warning.setVisible(False)
        for widget in (self.autosave_warning, self.progress, self.position_label, self.zoom_label, self.device_label):
            status.addPermanentWidget(widget)
