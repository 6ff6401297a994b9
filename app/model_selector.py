"""Choosing the fill model: the model box of the fill bar and the model entries of the Models menu, in step.

:class:`ModelSelector` lists what ``Engine.models()`` reports, remembers the choice in
``settings.default_model``, says when last time's choice is gone, and answers what the chosen model does
(:meth:`ModelSelector.uses_edges`, :meth:`ModelSelector.takes_texture`). It owns what "Automatic" means in
the editor: the engine's own entry for it (``DEFAULT_MODEL``, with what it resolves to), never a guess here.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QComboBox, QMenu, QStatusBar

from app.settings import Settings
from engine.api import DEFAULT_MODEL, ModelInfo

MODEL_LABEL_CHARS = 52  # the model box shows this many characters; longer labels lose their middle
MODEL_KIND_LABEL = {"neural": "edge-guided", "completion": "completion", "classical": "classical"}
BOX_TIP = "Fill model: bundled, your own trained models, or classical fills"


def elide_middle(text: str, limit: int) -> str:
    """``text`` cut in the middle to ``limit`` characters, so both its start and its end stay readable; the end
    keeps two thirds (a model and its fine-tunes share the start and differ at the end)."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 3
    tail = limit - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def model_label(name: str, kind: str, source: str, limit: int = MODEL_LABEL_CHARS) -> str:
    """``name  (kind, source)`` in at most ``limit`` characters: only the name is cut, so the kind and source
    stay whole and the name keeps as much of its end as fits."""
    suffix = f"  ({kind}, {source})"
    return elide_middle(name, max(12, limit - len(suffix))) + suffix


def automatic_label(info: ModelInfo | None, limit: int = MODEL_LABEL_CHARS) -> str:
    """The box's label for "Automatic": what it resolves to now, as the engine says (the structure model, with
    texture copied from the photo on top), or a placeholder before the engine has listed its models."""
    if info is None or not info.resolves_to:
        return "Automatic (best available)"
    texture = " + texture" if info.structure_source else ""
    prefix = "Automatic: "
    return prefix + elide_middle(info.resolves_to, max(12, limit - len(prefix) - len(texture))) + texture


def make_model_box() -> QComboBox:
    """The model box as the fill bar shows it."""
    combo = QComboBox()
    combo.setMinimumContentsLength(MODEL_LABEL_CHARS)  # a model and its fine-tunes differ at the end
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    # a list that always drops down below the box (Fusion otherwise puts the current item under the pointer)
    combo.setStyleSheet("QComboBox { combobox-popup: 0; }")
    combo.setMaxVisibleItems(16)
    combo.view().setTextElideMode(Qt.ElideMiddle)
    combo.setToolTip(BOX_TIP)
    combo.setFocusPolicy(Qt.NoFocus)
    return combo


class ModelSelector(QObject):
    """The model box (``combo``) and the model entries of ``menu`` (inserted above ``anchor``).

    ``save_settings`` is called when the choice changes; ``changed`` is emitted when the list or the choice
    changed, so whatever depends on what the chosen model does (Predict Edges, the texture slider) can follow.
    """

    changed = Signal()

    def __init__(self, settings: Settings, menu: QMenu, anchor: QAction, status: QStatusBar,
                 save_settings: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.menu = menu
        self.anchor = anchor
        self.status = status
        self.save_settings = save_settings
        self.combo = make_model_box()
        self.actions = QActionGroup(self)  # the models listed in the Models menu
        self.actions.setExclusive(True)
        self.models: list[ModelInfo] = []  # every model but "Automatic"
        self.automatic: ModelInfo | None = None  # "Automatic" as the engine describes it (resolves_to)
        self.combo.currentIndexChanged.connect(self._on_selected)
        self.combo.currentIndexChanged.connect(self._sync_tooltip)

    @Slot(list)
    def set_models(self, models: list) -> None:
        """Fill the model box and the Models menu from ``Engine.models()``."""
        self.automatic = next((m for m in models if m.name == DEFAULT_MODEL), None)  # the engine says what it is
        self.models = [m for m in models if m.name != DEFAULT_MODEL]
        wanted = self.settings.default_model  # the last choice (kept up to date by the selector)
        combo = self.combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(automatic_label(self.automatic), DEFAULT_MODEL)
        if self.automatic is not None:
            combo.setItemData(0, self.automatic.description, Qt.ToolTipRole)
        for info in self.models:
            kind = MODEL_KIND_LABEL.get(info.kind, info.kind)
            combo.addItem(model_label(info.name, kind, info.source), info.name)
            tip = f"{info.name} ({kind}, {info.source})" + (f"\n{info.description}" if info.description else "")
            combo.setItemData(combo.count() - 1, tip, Qt.ToolTipRole)
        index = combo.findData(wanted)
        combo.setCurrentIndex(max(0, index))
        combo.blockSignals(False)
        self._sync_tooltip(combo.currentIndex())
        gone_note = f"The model '{wanted}' chosen last time is not available now"
        if index >= 0 and self.status.currentMessage().startswith(gone_note):
            self.status.clearMessage()  # an earlier, shorter list did not have it; this one does
        # an empty list is the one before the engine has listed anything: nothing can be said yet
        if index < 0 and self.models and wanted and wanted != DEFAULT_MODEL:  # kept in the settings
            self.status.showMessage(f"The model '{wanted}' chosen last time is not available now: fills use "
                                    "Automatic until you choose another.", 10000)
        for action in self.actions.actions():
            self.menu.removeAction(action)
            self.actions.removeAction(action)
        for i in range(combo.count()):
            action = QAction(combo.itemText(i), self, checkable=True)
            action.setData(combo.itemData(i))
            action.setChecked(i == combo.currentIndex())
            action.triggered.connect(lambda _=False, row=i: self.combo.setCurrentIndex(row))
            self.actions.addAction(action)
            self.menu.insertAction(self.anchor, action)
        self.changed.emit()

    def selected(self) -> str:
        """Name of the model chosen in the box (``default`` = automatic)."""
        data = self.combo.currentData()
        return str(data) if data else DEFAULT_MODEL

    def select(self, name: str) -> bool:
        """Choose ``name`` in the box; False if it is not listed."""
        index = self.combo.findData(name)
        if index >= 0:
            self.combo.setCurrentIndex(index)
        return index >= 0

    def _selected_has(self, flag: str) -> bool:
        """``flag`` of the ModelInfo a fill with the selection uses (for "Automatic", as the engine resolves it)."""
        name = self.selected()
        if name == DEFAULT_MODEL:
            return self.automatic is not None and bool(getattr(self.automatic, flag))
        return any(m.name == name and getattr(m, flag) for m in self.models)

    def uses_edges(self) -> bool:
        """Whether the model a fill will use guides itself with edges."""
        return self._selected_has("uses_edges")

    def follows_sketch_only(self) -> bool:
        """Whether the selected fill ignores Predict Edges' proposals and follows the drawn lines only."""
        return self._selected_has("sketch_guided")

    def takes_texture(self) -> bool:
        """Whether the texture strength applies to the selected fill (Automatic always is a structure source)."""
        name = self.selected()
        return name == DEFAULT_MODEL or any(m.name == name and m.structure_source for m in self.models)

    @Slot(int)
    def _sync_tooltip(self, index: int) -> None:
        """The box's tooltip names the chosen model in full, whatever the box has room for."""
        tip = self.combo.itemData(index, Qt.ToolTipRole) if index >= 0 else None
        self.combo.setToolTip(f"Fill model: {tip}" if tip else BOX_TIP)

    @Slot(int)
    def _on_selected(self, index: int) -> None:
        for i, action in enumerate(self.actions.actions()):
            action.setChecked(i == index)
        self.settings.default_model = self.selected()
        self.save_settings()
        self.changed.emit()
