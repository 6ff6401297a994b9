"""The editor window: canvas, menus, toolbars and status bar, and the wiring between them and the rest.

The window owns one :class:`app.document.Document`, one :class:`app.canvas.Canvas`, one
:class:`app.worker.EngineClient` (the long-lived engine thread), a :class:`app.file_ops.FileOps` and an
:class:`app.session.AutoSaver`. Fill jobs are :class:`app.fill_controller.FillController`'s, the model
choice :class:`app.model_selector.ModelSelector`'s; the actions and menus come from
:mod:`app.window_actions`, the bars from :mod:`app.window_bars`. Questions and errors go through
``self.prompter`` (see :mod:`app.prompts`), so tests can answer them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QApplication,
    QInputDialog,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from app import recovery, session_slots
from app import session as session_module
from app.background import BackgroundRunner
from app.canvas import Canvas
from app.document import Document
from app.file_ops import FileOps
from app.fill_controller import FillController
from app.mirror import ImageMirror
from app.model_selector import ModelSelector
from app.prompts import Prompter, QtPrompter
from app.settings import Settings
from app.window_actions import build_actions, build_menus, shortcut_rows
from app.window_bars import FillBar, StatusWidgets, ToolsBar
from app.worker import EngineClient, EngineFactory, default_engine_factory
from engine import imageio
from engine.api import ModelInfo

log = logging.getLogger(__name__)

APP_TITLE = "Inpaint Studio"


class MainWindow(QMainWindow):
    """The Inpaint Studio editor window."""

    def __init__(self, settings: Settings | None = None, engine_factory: EngineFactory | None = None,
                 prompter: Prompter | None = None, synchronous: bool = False, autosave: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else Settings.load()
        self.prompter: Prompter = prompter if prompter is not None else QtPrompter(self)
        self.document = Document(self)
        self.canvas = Canvas(self)
        self.canvas.set_document(self.document)
        self.setCentralWidget(self.canvas)
        self.file_io = BackgroundRunner(self)  # decoding and encoding photos off the GUI thread
        self.files = FileOps(self.document, self.prompter, self.settings, self, runner=self.file_io)
        self._closing = False
        self._shut_down = False
        self._grow_step = 8
        self._finetune = None  # the fine-tune dialog while it is open (non-modal)
        # A warm copy of the photo for the autosave thread (only changed rects are copied).
        self._autosave_mirror = ImageMirror(self.document)

        factory = engine_factory or default_engine_factory(self.settings.device, self.settings.cpu_threads)
        self.engine = EngineClient(factory, synchronous=synchronous, parent=self)
        self.session_slot = session_slots.claim_new()  # this editor's own session folder, locked while it runs
        self.autosaver = session_module.AutoSaver(self._snapshot, self.session_slot.folder,
                                                  int(self.settings.autosave_seconds * 1000), parent=self,
                                                  busy=self.engine.is_busy)
        self.autosaver.enabled = autosave

        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.resize(1280, 860)
        self.actions = build_actions(self)
        menus = build_menus(self, self.actions)
        self.recent_menu, self.models_menu = menus.recent, menus.models
        self.selector = ModelSelector(self.settings, menus.models, menus.models_anchor, self.statusBar(),
                                      self._save_settings, parent=self)
        self.model_combo, self.model_actions = self.selector.combo, self.selector.actions
        self._build_bars()
        self._connect()
        self._apply_settings()
        self._update_actions()
        self._update_title()
        QApplication.instance().installEventFilter(self)
        self.on_models_changed(self.engine.models)
        if self.engine.device_name:
            self.on_device_changed(self.engine.device_name)

    # ================================================================== construction
    def _build_bars(self) -> None:
        self.toolbar = ToolsBar(self.actions, self)
        self.addToolBar(Qt.TopToolBarArea, self.toolbar)
        self.size_slider, self.size_value = self.toolbar.size_slider, self.toolbar.size_value
        self.fill_toolbar = FillBar(self.actions, self.model_combo, self.settings.texture_strength, self)
        self.addToolBarBreak(Qt.TopToolBarArea)
        self.addToolBar(Qt.TopToolBarArea, self.fill_toolbar)
        self.texture_slider, self.fill_button = self.fill_toolbar.texture_slider, self.fill_toolbar.fill_button
        self.texture_label = self.fill_toolbar.texture_label
        self._show_texture()
        status = StatusWidgets(self.statusBar())
        self.progress, self.device_label, self.autosave_warning = (status.progress, status.device_label,
                                                                   status.autosave_warning)
        self.position_label, self.zoom_label = status.position_label, status.zoom_label

    def _connect(self) -> None:
        doc, canvas, engine = self.document, self.canvas, self.engine
        self.fills = FillController(doc, engine, self.settings, self.prompter, autosaver=self.autosaver,
                                    canvas=canvas, status=self.statusBar(), progress=self.progress,
                                    selected_model=self.selector.selected,
                                    follows_sketch_only=self.selector.follows_sketch_only,
                                    parent=self)
        self.fills.changed.connect(self._update_actions)
        self.selector.changed.connect(self._show_texture)
        self.selector.changed.connect(self._update_actions)
        self.texture_slider.valueChanged.connect(self._on_texture_changed)
        self.toolbar.compare_button.pressed.connect(lambda: canvas.set_compare(True))
        self.toolbar.compare_button.released.connect(lambda: canvas.set_compare(False))
        doc.undo_stack.indexChanged.connect(self._on_history_changed)
        doc.undo_stack.cleanChanged.connect(self._on_clean_changed)
        doc.image_replaced.connect(self._on_image_replaced)
        doc.layer_changed.connect(self._autosave_mirror.mark)
        canvas.brush_size_changed.connect(self._on_brush_size)
        canvas.tool_changed.connect(self._on_tool_changed)
        canvas.zoom_changed.connect(self._on_zoom)
        canvas.layer_visibility_changed.connect(self._on_layer_visibility)
        canvas.cursor_position_changed.connect(self._on_cursor)
        self.size_slider.valueChanged.connect(canvas.set_brush_size)
        self.files.opened.connect(self._on_opened)
        self.files.saved.connect(self._on_saved)
        self.autosaver.failed.connect(self._on_autosave_failed)
        self.autosaver.saved.connect(lambda _path: self.autosave_warning.setVisible(False))
        engine.models_changed.connect(self.on_models_changed)
        engine.device_changed.connect(self.on_device_changed)

    def _apply_settings(self) -> None:
        s = self.settings
        self.canvas.set_tool("brush")
        self.actions["tool_brush"].setChecked(True)
        self.canvas.set_brush_size(s.brush_size)
        self._applied_brush_size = s.brush_size  # the preference as last applied (Preferences may change it)
        self._on_brush_size(self.canvas.brush_size)
        color = QColor(s.mask_color)
        color.setAlphaF(s.mask_opacity)
        self.canvas.set_mask_color(color)
        self.actions["show_mask"].setChecked(self.canvas.layer_visible("mask"))
        self.actions["show_edges"].setChecked(self.canvas.layer_visible("edges"))

    # ================================================================== state display
    def _update_title(self) -> None:
        path = self.files.save_target or self.files.original_path
        name = path.name if path else ("untitled" if not self.document.is_empty() else "")
        self.setWindowTitle(f"{name}[*] — {APP_TITLE}" if name else APP_TITLE)
        self.setWindowModified(self.document.is_modified())

    def _update_actions(self) -> None:
        has_image = not self.document.is_empty()
        busy = self.engine.is_busy()
        for key in ("save", "save_as", "import_mask", "export_mask", "grow_mask", "shrink_mask", "clear_mask",
                    "invert_mask", "clear_sketch", "zoom_in", "zoom_out", "fit", "actual_size", "compare"):
            self.actions[key].setEnabled(has_image)
        self.actions["fill"].setEnabled(has_image and not busy)
        uses_edges = self.selector.uses_edges()
        self.actions["predict_edges"].setEnabled(has_image and not busy and uses_edges)
        self.actions["predict_edges"].setToolTip(
            ("Show the edges the edge model proposes inside the hole, as a guide: the fill follows the lines you "
             "draw with the edge pen" if self.selector.follows_sketch_only() else
             "Show the edges the model proposes inside the hole; correct them with the edge pen before filling")
            if uses_edges else "The chosen model fills without edges: choose an edge-guided model in the model "
                               "box to predict edges and to use your edge sketch")
        self.actions["cancel"].setEnabled(busy)

    @Slot(int)
    def _on_history_changed(self, _index: int) -> None:
        if self._shut_down:
            return
        self._update_title()
        self.autosaver.schedule()

    @Slot(bool)
    def _on_clean_changed(self, _clean: bool) -> None:
        if not self._shut_down:
            self._update_title()

    @Slot()
    def _on_image_replaced(self) -> None:
        if self._shut_down:
            return
        self.fills.photo_replaced()  # a result for the previous photo must not land on this one
        self.autosaver.flush()
        self._autosave_mirror.reset()
        self._update_actions()
        self._update_title()

    @Slot(int)
    def _on_brush_size(self, size: int) -> None:
        self.size_slider.blockSignals(True)
        self.size_slider.setValue(min(size, self.size_slider.maximum()))
        self.size_slider.blockSignals(False)
        self.size_value.setText(f"{size} px")

    @Slot(str)
    def _on_tool_changed(self, name: str) -> None:
        action = self.actions.get(f"tool_{name}")
        if action is not None and not action.isChecked():
            action.setChecked(True)
        self._on_brush_size(self.canvas.brush_size)

    @Slot(float)
    def _on_zoom(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f}%")

    @Slot(str, bool)
    def _on_layer_visibility(self, name: str, visible: bool) -> None:
        action = self.actions.get("show_mask" if name == "mask" else "show_edges")
        if action is not None and action.isChecked() != visible:
            action.setChecked(visible)

    @Slot(int, int)
    def _on_cursor(self, x: int, y: int) -> None:
        self.position_label.setText("" if x < 0 else f"{x}, {y}")

    # ================================================================== models and device
    @property
    def models(self) -> list[ModelInfo]:
        """The models listed (every one but "Automatic")."""
        return self.selector.models

    @property
    def automatic(self) -> ModelInfo | None:
        """What "Automatic" is as the engine describes it (``resolves_to``); None until it lists its models."""
        return self.selector.automatic

    @Slot(list)
    def on_models_changed(self, models: list) -> None:
        """Fill the model selector and the Models menu from ``Engine.models()``."""
        self.selector.set_models(models)

    def selected_model(self) -> str:
        """Name of the model chosen in the selector (``default`` = automatic)."""
        return self.selector.selected()

    def select_model(self, name: str) -> bool:
        """Choose ``name`` in the selector; False if it is not listed."""
        return self.selector.select(name)

    @Slot(int)
    def _on_texture_changed(self, value: int) -> None:
        self.settings.texture_strength = value / 100
        self._show_texture()
        self._save_settings()

    @Slot()
    def _show_texture(self) -> None:
        self.fill_toolbar.show_texture(self.selector.takes_texture())

    @Slot(str)
    def on_device_changed(self, name: str) -> None:
        self.device_label.setText(name)

    # ================================================================== fill
    @Slot()
    def fill(self) -> bool:
        """Fill the masked area in the worker (see :class:`app.fill_controller.FillController`)."""
        return self.fills.fill()

    @Slot()
    def predict_edges(self) -> bool:
        """Ask the edge generator for the edges it proposes in the hole (shown on the edge layer)."""
        return self.fills.predict_edges()

    def cancel_job(self) -> None:
        """Stop the running fill (cooperative: it ends at the engine's next check)."""
        self.fills.cancel()

    @Slot(str)
    def on_failed(self, message: str) -> None:
        """Any engine error: a clear dialog; the editor keeps working."""
        self.fills.on_failed(message)

    # ================================================================== mask menu
    def grow_mask(self, pixels: int | None = None) -> bool:
        """Grow the mask by ``pixels`` (asked for when None) as one undo step."""
        if pixels is None:
            pixels, ok = QInputDialog.getInt(self, "Grow mask", "Grow the mask by (pixels):", self._grow_step, 1, 500)
            if not ok:
                return False
            self._grow_step = pixels
        return self.document.grow_mask(pixels)

    def shrink_mask(self, pixels: int | None = None) -> bool:
        """Shrink the mask by ``pixels`` (asked for when None) as one undo step."""
        if pixels is None:
            pixels, ok = QInputDialog.getInt(self, "Shrink mask", "Shrink the mask by (pixels):",
                                             self._grow_step, 1, 500)
            if not ok:
                return False
            self._grow_step = pixels
        return self.document.shrink_mask(pixels)

    # ================================================================== files
    def open_path(self, path: str | Path) -> bool:
        """Open a photo (asks about unsaved changes first)."""
        return self.files.open(path)

    def _on_opened(self, path: Path) -> None:
        session_module.clear_session(self.autosaver.folder)
        self.canvas.setFocus()
        notes = getattr(self.document.source, "notes", ())
        self.statusBar().showMessage(f"Opened {path.name} ({self.document.width} x {self.document.height}). "
                                     + (" ".join(notes) or "Paint over what should go, then Fill (Ctrl+Enter)."),
                                     8000)
        self._update_actions()
        self._update_title()

    def _on_saved(self, path: Path) -> None:
        self.statusBar().showMessage(f"Saved {path}", 6000)
        self._update_title()
        self.autosaver.save_now()

    def dragEnterEvent(self, event) -> None:
        if self._dropped_path(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        path = self._dropped_path(event.mimeData())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        others = sum(1 for url in event.mimeData().urls() if url.isLocalFile()) - 1

        def open_dropped() -> None:
            if self.open_path(path) and others > 0:
                self.statusBar().showMessage(f"Opened {path.name}; the other {others} dropped file(s) were not "
                                             "opened (one photo at a time).", 8000)

        QTimer.singleShot(0, open_dropped)  # leave the drag-and-drop loop before dialogs

    @staticmethod
    def _dropped_path(mime) -> Path | None:
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                path = Path(url.toLocalFile())
                if path.suffix.lower() in imageio.SUPPORTED_EXTENSIONS:
                    return path
        return None

    # ================================================================== session
    @Slot(str)
    def _on_autosave_failed(self, text: str) -> None:
        """Say it once in a dialog (work is not protected against a crash any more), then keep a mark in the
        status bar until an autosave works again."""
        first = not self.autosave_warning.isVisible()
        self.autosave_warning.setToolTip(text)
        self.autosave_warning.setVisible(True)
        self.statusBar().showMessage(text, 8000)
        if first:
            self.prompter.warning("Autosave failed", f"{text}\n\nUntil this is fixed (free some disk space?), a "
                                                     "crash would lose the changes made since the last autosave.")

    def _snapshot(self):
        doc = self.document
        if doc.is_empty() or doc.undo_stack.count() == 0:
            return None
        return session_module.take_snapshot(doc, self.files.save_target, mirror=self._autosave_mirror)

    def offer_recovery(self) -> bool:
        """At startup: offer the sessions of editors that did not close cleanly (see
        :func:`app.recovery.offer_recovery`); True if one was recovered."""
        if not recovery.offer_recovery(self.document, self.files, self.autosaver, self.prompter):
            return False
        self.statusBar().showMessage("Session recovered.", 6000)
        self._update_actions()
        self._update_title()
        return True

    # ================================================================== dialogs
    def show_preferences(self) -> None:
        from app.preferences import PreferencesDialog

        dialog = PreferencesDialog(self.settings, self)
        if dialog.exec() != PreferencesDialog.Accepted:
            return
        old = (self.settings.device, self.settings.cpu_threads)
        dialog.apply_to(self.settings)
        self.apply_preferences(engine_changed=old != (self.settings.device, self.settings.cpu_threads))

    def apply_preferences(self, engine_changed: bool = False) -> None:
        """Use the current settings (after the dialog); rebuilds the engine if device or threads changed."""
        color = QColor(self.settings.mask_color)
        color.setAlphaF(self.settings.mask_opacity)
        self.canvas.set_mask_color(color)
        if self.settings.brush_size != self._applied_brush_size:  # a new default brush size applies at once
            self.canvas.set_brush_size_for("brush", self.settings.brush_size)
            self._applied_brush_size = self.settings.brush_size
        self._save_settings()
        if engine_changed:
            self.device_label.setText("Engine: restarting…")
            self.engine.set_engine_factory(default_engine_factory(self.settings.device, self.settings.cpu_threads))

    def show_finetune(self) -> None:
        """Models > Fine-tune…: non-modal (training runs in its own process; the editor stays usable)."""
        from app.finetune_dialog import FinetuneDialog

        if self._finetune is not None:
            self._finetune.show()
            self._finetune.raise_()
            self._finetune.activateWindow()
            return
        doc = self.document
        image = None if doc.is_empty() else doc.image.copy()
        mask = None if doc.is_empty() else doc.mask.copy()
        filled = None if doc.is_empty() else doc.filled_in_session()
        path = self.files.save_target or self.files.original_path
        dialog = FinetuneDialog(self.models, image, mask, self.settings, self, photo_name=path.name if path else "",
                                filled=filled)
        dialog.model_registered.connect(self.on_model_registered)
        self.engine.models_changed.connect(dialog.set_models)
        dialog.finished.connect(self._on_finetune_closed)
        self._finetune = dialog
        dialog.show()

    @Slot(str, bool)
    def on_model_registered(self, name: str, make_default: bool) -> None:
        """A fine-tune registered ``name``: rescan (the selector then picks ``settings.default_model``)."""
        self.engine.refresh_models()
        self.statusBar().showMessage(f"Fine-tuned model '{name}' is ready"
                                     + (" and is now the default." if make_default else "."), 8000)

    @Slot()
    def _on_finetune_closed(self) -> None:
        if self._finetune is not None:
            self._finetune.deleteLater()
            self._finetune = None

    def show_about(self) -> None:
        QMessageBox.about(self, f"About {APP_TITLE}",
                          f"<b>{APP_TITLE}</b><p>Removes things from photos with edge-guided inpainting "
                          "(EdgeConnect-style: an edge generator completes the lines in the hole, an image "
                          "generator fills guided by them), plus classical Telea and Navier-Stokes fills.</p>"
                          f"<p>Engine: {self.engine.device_name or 'starting'}</p>")

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(keys, what they do) for the F1 list (see :func:`app.window_actions.shortcut_rows`)."""
        return shortcut_rows(self.actions)

    def show_shortcuts(self) -> None:
        lines = [f"<tr><td><b>{keys}</b></td><td>{what}</td></tr>" for keys, what in self.shortcut_rows()]
        QMessageBox.information(self, "Keyboard shortcuts", "<table>" + "".join(lines) + "</table>")

    # ================================================================== events
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Hold Tab anywhere in the window to compare (the canvas handles it itself when focused)."""
        kind = event.type()
        if (kind in (QEvent.KeyPress, QEvent.KeyRelease) and isinstance(obj, QWidget) and obj is not self.canvas
                and event.key() == Qt.Key_Tab and obj.window() is self and not self._closing):
            if not event.isAutoRepeat():
                self.canvas.set_compare(kind == QEvent.KeyPress)
            return True
        return super().eventFilter(obj, event)

    def closeEvent(self, event) -> None:
        if self._shut_down:
            event.accept()
            return
        if self.file_io.busy:  # a photo is being read or written: closing now could cut a save short
            event.ignore()
            return
        if self._finetune is not None and self._finetune.is_running() and not self.prompter.confirm(
                "Stop fine-tuning?", "A fine-tune is still training. Close the editor and stop it? A checkpoint "
                                     "is saved, and Models > Fine-tune… can resume it later."):
            event.ignore()
            return
        if not self.files.maybe_keep_changes():
            event.ignore()
            return
        self.shutdown(clean=True)
        event.accept()

    def shutdown(self, clean: bool = True) -> None:
        """Cancel and wait for the worker, stop autosaving (``clean`` removes the session), save preferences."""
        if self._shut_down:
            return
        self._closing = True
        self._shut_down = True
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        stack = self.document.undo_stack
        stack.indexChanged.disconnect(self._on_history_changed)
        stack.cleanChanged.disconnect(self._on_clean_changed)
        self.document.image_replaced.disconnect(self._on_image_replaced)
        self.fills.stop()
        self.document.layer_changed.disconnect(self._autosave_mirror.mark)
        if self._finetune is not None:
            self._finetune.shutdown()  # training saves a checkpoint (Resume continues it next time)
        self.engine.shutdown()
        self.autosaver.stop(clear=clean)
        self.session_slot.release(clear=clean)
        self.settings.brush_size = self._sizes_for_settings()
        self._save_settings()

    def _sizes_for_settings(self) -> int:
        return int(self.canvas.brush_size) if self.canvas.tool() in ("brush", "eraser") else self.settings.brush_size

    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            log.warning("could not save preferences: %s", exc)
