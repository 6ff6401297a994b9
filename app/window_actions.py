"""The editor's commands: every action with its keys, tooltip and icon, the menu bar, and the F1 shortcut list.

:func:`build_actions` makes the actions (added to the window, so their shortcuts work with the menu bar
hidden), :func:`build_menus` puts them in the menu bar, and :func:`shortcut_rows` lists their keys as the
menus have them, so the F1 list cannot go stale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from app.icons import icon
from app.recent_menu import RecentFilesMenu

if TYPE_CHECKING:
    from app.main_window import MainWindow

TOOLS = (  # name, label, shortcut, what it does
    ("brush", "Brush", "B", "paint over what should go"),
    ("eraser", "Eraser", "E", "remove paint from the mask"),
    ("rectangle", "Rectangle", "R", "drag a box onto the mask (Shift: square)"),
    ("edge_pen", "Edge pen", "P", "draw lines the fill should follow, inside the hole"),
    ("edge_eraser", "Edge eraser", "Shift+P", "mark \"no edge here\" inside the hole"),
    ("pan", "Pan", "H", "drag the view (or hold Space, or drag with the middle button)"),
)
TOOL_ACTIONS = tuple(f"tool_{name}" for name, *_ in TOOLS)
Keys = str | QKeySequence.StandardKey  # "Ctrl+G" or QKeySequence.Open
ICONED = ("open", "save", "save_as", "fill", "cancel", "predict_edges")  # actions whose icon has their own name


def tip(text: str, shortcut: str | None) -> str:
    """A tooltip naming the key: ``Open a photo (Ctrl+O)``."""
    return f"{text} ({shortcut})" if shortcut else text


def _native(key: QKeySequence.StandardKey) -> str:
    return QKeySequence(key).toString(QKeySequence.NativeText)


class _ActionMaker:
    """Makes the window's actions one by one into ``actions`` (key -> action), in menu order."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.actions: dict[str, QAction] = {}

    def __call__(self, key: str, text: str, slot: Callable | None = None, shortcut: Keys | list[Keys] | None = None,
                 tip_text: str | None = None, checkable: bool = False, icon_key: str | None = None,
                 label: Keys | None = None) -> QAction:
        action = QAction(text, self.window)
        if icon_key or key in ICONED:
            action.setIcon(icon(icon_key or key))
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if label is None:
            label = shortcut[0] if isinstance(shortcut, list) else shortcut
        if isinstance(label, QKeySequence.StandardKey):
            label = _native(label)
        action.setToolTip(tip(tip_text or text.replace("&", "").rstrip("…"), label))
        action.setStatusTip(tip_text or "")
        action.setCheckable(checkable)
        if slot is not None:  # checkable actions pass their state; others call the slot with no argument
            action.triggered.connect(slot if checkable else (lambda _checked=False, f=slot: f()))
        self.add(key, action)
        return action

    def add(self, key: str, action: QAction) -> None:
        self.window.addAction(action)  # shortcuts work even when the menu bar is hidden
        self.actions[key] = action


def build_actions(window: MainWindow) -> dict[str, QAction]:
    """Every action of the editor, keyed by name (``open``, ``fill``, ``tool_brush``...)."""
    a = _ActionMaker(window)
    files, doc, canvas = window.files, window.document, window.canvas
    a("open", "&Open…", files.ask_open, QKeySequence.Open, "Open a photo")
    a("save", "&Save", files.save, QKeySequence.Save, "Save the photo (keeps format, EXIF and colour profile)")
    a("save_as", "Save &As…", files.save_as, QKeySequence.SaveAs, "Save under a new name")
    a("import_mask", "&Import Mask…", files.import_mask, None, "Load a PNG mask (white = remove)")
    a("export_mask", "&Export Mask…", files.export_mask, None, "Write the mask as a PNG (white = remove)")
    a("preferences", "&Preferences…", window.show_preferences, QKeySequence.Preferences, icon_key="preferences")
    a("quit", "&Quit", window.close, QKeySequence.Quit)

    undo = doc.undo_stack.createUndoAction(window, "&Undo")
    undo.setShortcuts(QKeySequence.Undo)
    undo.setIcon(icon("undo"))
    undo.setToolTip(tip("Undo", _native(QKeySequence.Undo)))
    redo = doc.undo_stack.createRedoAction(window, "&Redo")
    redo.setShortcuts(QKeySequence.Redo)
    redo.setIcon(icon("redo"))
    redo.setToolTip(tip("Redo", _native(QKeySequence.Redo)))
    a.add("undo", undo)
    a.add("redo", redo)
    a("clear_sketch", "Clear Edge &Sketch", doc.clear_sketch, None, "Remove drawn and erased edges")

    a("grow_mask", "&Grow Mask…", window.grow_mask, "Ctrl+G", "Grow the mask by N pixels (halos, shadows)",
      icon_key="mask_grow")
    a("shrink_mask", "S&hrink Mask…", window.shrink_mask, "Ctrl+Shift+G", "Shrink the mask by N pixels",
      icon_key="mask_shrink")
    a("clear_mask", "&Clear Mask", doc.clear_mask, "Ctrl+Shift+D", "Clear the whole mask", icon_key="mask_clear")
    a("invert_mask", "&Invert Mask", doc.invert_mask_command, "Ctrl+I", "Invert the mask", icon_key="mask_invert")

    a("zoom_in", "Zoom &In", canvas.zoom_in, [QKeySequence.ZoomIn, "Ctrl+="], icon_key="zoom_in")
    a("zoom_out", "Zoom &Out", canvas.zoom_out, QKeySequence.ZoomOut, icon_key="zoom_out")
    a("fit", "&Fit to Window", canvas.fit, "Ctrl+0", icon_key="fit")
    a("actual_size", "&Actual Pixels (100%)", canvas.actual_size, "Ctrl+1", icon_key="actual_size")
    a("show_mask", "Show &Mask", canvas.set_mask_visible, "M", "Show or hide the mask", checkable=True)
    a("show_edges", "Show &Edges", canvas.set_edges_visible, "Shift+E",
      "Show or hide the edge layer (known, predicted and sketched edges)", checkable=True)

    group = QActionGroup(window)
    group.setExclusive(True)
    for name, label, key, what in TOOLS:
        action = a(f"tool_{name}", label, None, key, f"{label}: {what}", checkable=True, icon_key=name)
        action.triggered.connect(lambda _=False, n=name: canvas.set_tool(n))
        group.addAction(action)
    a("brush_smaller", "Smaller Brush", lambda: canvas.step_brush_size(-1), "[")
    a("brush_larger", "Larger Brush", lambda: canvas.step_brush_size(+1), "]")

    a("fill", "&Fill", window.fill, ["Ctrl+Return", "Ctrl+Enter"], "Fill the masked area", label="Ctrl+Enter")
    a("cancel", "&Cancel", window.cancel_job, "Esc", "Stop the running fill")
    a("predict_edges", "&Predict Edges", window.predict_edges, "Ctrl+E",
      "Show the edges the model proposes inside the hole; correct them with the edge pen before filling")
    a("compare", "Compare (hold Tab)", None, None,
      "Hold Tab (or this button) to see the photo before the last fill", icon_key="compare")

    a("refresh_models", "&Refresh Model List", window.engine.refresh_models, None,
      "Rescan the bundled and user model folders")
    a("fine_tune", "&Fine-tune…", window.show_finetune, None,
      "Adapt a model to your photos, or to the open photo (trains in its own process)", icon_key="fine_tune")
    a("about", "&About Inpaint Studio", window.show_about, None, icon_key="about")
    a("shortcuts", "&Keyboard Shortcuts", window.show_shortcuts, "F1")
    return a.actions


@dataclass
class Menus:
    """The menus the window changes later."""

    recent: RecentFilesMenu  # File > Open Recent
    models: QMenu  # lists the models above ``models_anchor``
    models_anchor: QAction


def _add(menu: QMenu, actions: dict[str, QAction], keys: tuple[str | None, ...]) -> None:
    for key in keys:  # None: a separator
        menu.addSeparator() if key is None else menu.addAction(actions[key])


def build_menus(window: MainWindow, actions: dict[str, QAction]) -> Menus:
    """File, Edit, Mask, Tools, View, Models and Help in the window's menu bar."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addAction(actions["open"])
    recent = RecentFilesMenu("Open &Recent", window.settings, window.open_path, file_menu)
    file_menu.addMenu(recent)
    _add(file_menu, actions, (None, "save", "save_as", None, "preferences", None, "quit"))
    _add(bar.addMenu("&Edit"), actions, ("undo", "redo", None, "clear_sketch", None, "fill", "predict_edges",
                                         "cancel"))
    _add(bar.addMenu("&Mask"), actions, ("grow_mask", "shrink_mask", "clear_mask", "invert_mask", None,
                                         "import_mask", "export_mask"))
    _add(bar.addMenu("&Tools"), actions, (*TOOL_ACTIONS, None, "brush_smaller", "brush_larger"))
    _add(bar.addMenu("&View"), actions, ("zoom_in", "zoom_out", "fit", "actual_size", None, "show_mask",
                                         "show_edges"))
    models = bar.addMenu("M&odels")
    anchor = models.addSeparator()
    _add(models, actions, ("refresh_models", "fine_tune"))
    models.setToolTipsVisible(True)
    _add(bar.addMenu("&Help"), actions, ("shortcuts", "about"))
    return Menus(recent, models, anchor)


def shortcut_rows(actions: dict[str, QAction]) -> list[tuple[str, str]]:
    """(keys, what they do) for the F1 list: the tools, held keys, then every action with a shortcut."""
    rows = [(key, f"{label}: {what}") for _, label, key, what in TOOLS]
    rows += [("[ / ]", "smaller / larger brush"), ("Esc", "cancel the fill, or the drag in progress"),
             ("Tab (hold)", "compare with the photo before the last fill"), ("Space (hold)", "pan")]
    # the keys written out above are not listed a second time from their actions
    listed = {"[", "]", "Esc", "Tab", "Space"}
    for key, action in actions.items():  # as the menus have them, so the list cannot go stale
        keys = " / ".join(k.toString(QKeySequence.NativeText) for k in action.shortcuts() if not k.isEmpty())
        if keys in listed:
            continue
        if keys and key not in TOOL_ACTIONS:
            rows.append((keys, action.text().replace("&", "").rstrip("…")))
    return rows
