"""The editor window: fills through the worker, cancel, close during a fill, errors, shortcuts, drop."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app import session as session_module
from tests.app.fakes import FakeEngine
from tests.app.helpers import paint_box, write_broken_model, write_tiny_structure_pair

BOX = (30, 20, 60, 44)


def _open(window, qtbot, path) -> None:
    assert window.open_path(path)
    assert not window.document.is_empty()


def _fill_and_wait(window, qtbot, timeout=20_000):
    with qtbot.waitSignal(window.engine.finished, timeout=timeout) as done:
        assert window.fill()
    qtbot.waitUntil(lambda: not window.engine.is_busy(), timeout=timeout)
    return done.args[0]


def test_fill_with_telea_through_the_worker_changes_only_masked_pixels(make_window, qtbot, photo_file):
    window = make_window()
    _open(window, qtbot, photo_file)
    qtbot.waitUntil(lambda: bool(window.models), timeout=10_000)
    assert window.select_model("telea")
    before = window.document.image.copy()
    # A real brush stroke with the mouse, plus a box.
    canvas = window.canvas
    canvas.set_brush_size(6)
    p0 = canvas.map_from_document(QPointF(10, 10)).toPoint()
    p1 = canvas.map_from_document(QPointF(25, 12)).toPoint()
    qtbot.mousePress(canvas, Qt.LeftButton, Qt.NoModifier, p0)
    qtbot.mouseMove(canvas, p1)
    qtbot.mouseRelease(canvas, Qt.LeftButton, Qt.NoModifier, p1)
    assert window.document.mask[11, 15]
    paint_box(window, BOX)
    mask = window.document.mask.copy()
    assert window.document.is_modified() and window.isWindowModified()

    result = _fill_and_wait(window, qtbot)
    assert result.backend == "telea"
    after = window.document.image
    assert np.array_equal(after[~mask], before[~mask])
    assert not np.array_equal(after[mask], before[mask])
    assert not window.document.mask.any()  # cleared after the fill (default preference)
    assert window.actions["fill"].isEnabled() and not window.actions["cancel"].isEnabled()

    # Undo / redo of the fill through the window's Edit actions.
    window.actions["undo"].trigger()
    assert np.array_equal(window.document.image, before)
    assert np.array_equal(window.document.mask, mask)
    window.actions["redo"].trigger()
    assert np.array_equal(window.document.image, after)
    assert not window.document.mask.any()


def test_fill_keeps_the_mask_when_the_preference_says_so(make_window, qtbot, photo_file):
    from app.settings import Settings

    settings = Settings.load()
    settings.clear_mask_after_fill = False
    settings.default_model = "telea"
    window = make_window(settings=settings)
    _open(window, qtbot, photo_file)
    qtbot.waitUntil(lambda: window.selected_model() == "telea", timeout=10_000)
    paint_box(window, BOX)
    _fill_and_wait(window, qtbot)
    assert window.document.mask.sum() == (BOX[2] - BOX[0]) * (BOX[3] - BOX[1])


def test_neural_pair_fill_and_predict_edges(make_window, qtbot, photo_file, tiny_bundled_models):
    window = make_window()
    _open(window, qtbot, photo_file)
    qtbot.waitUntil(lambda: any(m.name == "edgeconnect-image" for m in window.models), timeout=10_000)
    assert window.select_model("edgeconnect-image")
    assert window.actions["predict_edges"].isEnabled()
    paint_box(window, BOX)
    mask = window.document.mask.copy()
    before = window.document.image.copy()

    with qtbot.waitSignal(window.engine.edges_ready, timeout=30_000):
        assert window.predict_edges()
    qtbot.waitUntil(lambda: not window.engine.is_busy(), timeout=5000)
    assert window.document.predicted_edges is not None
    assert window.canvas.layer_visible("edges")
    assert np.array_equal(window.document.image, before)
    assert "correct them with the edge pen" in window.statusBar().currentMessage()  # this pair uses them

    result = _fill_and_wait(window, qtbot, timeout=30_000)
    assert result.backend == "edgeconnect-image"
    assert np.array_equal(window.document.image[~mask], before[~mask])
    assert not np.array_equal(window.document.image[mask], before[mask])


def test_predict_edges_with_a_sketch_guided_model_says_the_proposals_are_a_guide(make_window, qtbot, photo_file,
                                                                                 tmp_path, monkeypatch):
    """The structure model fills from the drawn lines only: the status bar must not promise that the yellow
    proposals steer the fill."""
    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", str(write_tiny_structure_pair(tmp_path / "bundled")))
    window = make_window()
    _open(window, qtbot, photo_file)
    qtbot.waitUntil(lambda: any(m.name == "structure-image" for m in window.models), timeout=10_000)
    assert window.select_model("structure-image")
    assert "as a guide" in window.actions["predict_edges"].toolTip()
    paint_box(window, BOX)
    with qtbot.waitSignal(window.engine.edges_ready, timeout=30_000):
        assert window.predict_edges()
    qtbot.waitUntil(lambda: not window.engine.is_busy(), timeout=5000)
    assert window.document.predicted_edges is not None
    message = window.statusBar().currentMessage()
    assert "as a guide only" in message and "follows the lines you draw" in message


def test_cancel_stops_the_fill_and_leaves_the_photo(make_window, qtbot, photo_file):
    engine = FakeEngine(gate=threading.Event())
    window = make_window(engine_factory=lambda: engine)
    _open(window, qtbot, photo_file)
    paint_box(window, BOX)
    before = window.document.image.copy()
    with qtbot.waitSignal(window.engine.cancelled, timeout=5000):
        assert window.fill()
        assert engine.started.wait(5)
        assert window.actions["cancel"].isEnabled() and not window.actions["fill"].isEnabled()
        assert window.progress.isVisible()
        window.actions["cancel"].trigger()
    qtbot.waitUntil(lambda: window.actions["fill"].isEnabled(), timeout=5000)
    assert np.array_equal(window.document.image, before)
    assert window.document.mask.any()
    assert not window.progress.isVisible()
    # The worker still works after a cancel.
    engine.gate.set()
    _fill_and_wait(window, qtbot)
    assert (window.document.image[BOX[1] + 1, BOX[0] + 1] == (10, 200, 30)).all()


def test_window_stays_responsive_and_closing_during_a_fill_cancels_and_waits(make_window, qtbot, photo_file):
    engine = FakeEngine(gate=threading.Event())
    window = make_window(engine_factory=lambda: engine)
    _open(window, qtbot, photo_file)
    paint_box(window, BOX)
    assert window.fill()
    assert engine.started.wait(5)
    # While the fill runs the GUI thread handles input: zoom and paint.
    window.actions["zoom_in"].trigger()
    paint_box(window, (2, 2, 8, 8))
    assert window.document.mask[4, 4]
    window.prompter.confirms.append(True)  # "Discard the mask?"
    window.close()
    assert window.isHidden()
    assert not window.engine.is_running()
    assert (window.document.image[BOX[1] + 1, BOX[0] + 1] != (10, 200, 30)).any()  # no late result


def test_what_is_painted_or_erased_during_a_fill_is_respected(make_window, qtbot, photo_file):
    engine = FakeEngine(gate=threading.Event())
    window = make_window(engine_factory=lambda: engine)
    _open(window, qtbot, photo_file)
    paint_box(window, BOX)
    doc = window.document
    before = doc.image.copy()
    with qtbot.waitSignal(window.autosaver.saved, timeout=5000):  # the session is saved as the fill starts
        assert window.fill()
    assert np.array_equal(session_module.read_session(window.autosaver.folder).layers["mask"], doc.mask)
    assert engine.started.wait(5)
    # While it runs: a stroke for the next object, and part of the sent mask erased again.
    next_box = (2, 2, 8, 8)
    paint_box(window, next_box)
    x0, y0, x1, y1 = BOX
    erased = (x0, y0, x0 + 4, y1)
    doc.add_rectangle(erased, value=False)
    with qtbot.waitSignal(window.engine.finished, timeout=5000):
        engine.gate.set()
    qtbot.waitUntil(lambda: window.actions["fill"].isEnabled(), timeout=5000)
    green = (doc.image == (10, 200, 30)).all(axis=2)
    assert green[y0:y1, x0 + 4:x1].all()  # the part still masked was filled
    assert np.array_equal(doc.image[y0:y1, x0:x0 + 4], before[y0:y1, x0:x0 + 4])  # the erased part was not
    assert doc.mask[3:8, 3:8].all() and doc.mask.sum() == 6 * 6  # the new stroke stays; the sent mask is cleared
    window.actions["undo"].trigger()  # the fill is one step: undo brings back the mask that was filled
    assert np.array_equal(doc.image, before) and doc.mask[y0:y1, x0 + 4:x1].all()


def test_failing_model_shows_an_error_and_the_editor_keeps_working(make_window, qtbot, photo_file,
                                                                    tiny_bundled_models):
    write_broken_model(tiny_bundled_models)
    window = make_window()
    _open(window, qtbot, photo_file)
    qtbot.waitUntil(lambda: window.select_model("broken-image"), timeout=10_000)
    paint_box(window, BOX)
    before = window.document.image.copy()
    with qtbot.waitSignal(window.engine.failed, timeout=20_000):
        window.fill()
    qtbot.waitUntil(lambda: window.actions["fill"].isEnabled(), timeout=5000)
    errors = [(title, text) for kind, title, text in window.prompter.asked if kind == "error"]
    assert len(errors) == 1 and errors[0][0] == "Fill failed"
    assert "broken-image" in errors[0][1]
    assert np.array_equal(window.document.image, before) and window.document.mask.any()
    assert window.select_model("telea")
    _fill_and_wait(window, qtbot)
    assert not np.array_equal(window.document.image, before)


def test_opening_a_bad_file_shows_an_error_and_keeps_the_photo(make_window, qtbot, photo_file, tmp_path):
    window = make_window(engine_factory=FakeEngine)
    _open(window, qtbot, photo_file)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    assert not window.open_path(bad)
    assert window.prompter.kinds() == ["error"]
    assert "broken.png" in window.prompter.asked[0][2]
    assert window.files.original_path == photo_file


def test_fill_without_mask_or_photo_only_hints(make_window, qtbot, photo_file):
    window = make_window(engine_factory=FakeEngine)
    assert not window.fill()
    assert "Open a photo" in window.statusBar().currentMessage()
    _open(window, qtbot, photo_file)
    assert not window.fill()
    assert "Paint over" in window.statusBar().currentMessage()
    assert window.prompter.asked == []


def test_drag_and_drop_opens_the_photo(make_window, qtbot, photo_file):
    window = make_window(engine_factory=FakeEngine)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo_file))])
    pos = QPointF(window.canvas.mapTo(window, QPoint(50, 50)))
    enter = QDragEnterEvent(pos.toPoint(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: not window.document.is_empty(), timeout=5000)
    assert window.files.original_path == photo_file
    text = QMimeData()
    text.setText("hello")
    refused = QDragEnterEvent(pos.toPoint(), Qt.CopyAction, text, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, refused)
    assert not refused.isAccepted()


def test_tool_shortcuts_tooltips_and_icons(make_window, qtbot, photo_file):
    window = make_window(engine_factory=FakeEngine)
    _open(window, qtbot, photo_file)
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(window.canvas.hasFocus, timeout=2000)
    for key, modifier, tool in ((Qt.Key_E, Qt.NoModifier, "eraser"), (Qt.Key_R, Qt.NoModifier, "rectangle"),
                                (Qt.Key_P, Qt.NoModifier, "edge_pen"), (Qt.Key_P, Qt.ShiftModifier, "edge_eraser"),
                                (Qt.Key_B, Qt.NoModifier, "brush")):
        qtbot.keyClick(window.canvas, key, modifier)
        assert window.canvas.tool() == tool
        assert window.actions[f"tool_{tool}"].isChecked()
    size = window.canvas.brush_size
    qtbot.keyClick(window.canvas, Qt.Key_BracketRight)
    assert window.canvas.brush_size > size and window.size_slider.value() == window.canvas.brush_size
    window.size_slider.setValue(25)
    assert window.canvas.brush_size == 25
    tips = {key: window.actions[key].toolTip() for key in ("tool_brush", "tool_eraser", "tool_rectangle",
                                                           "tool_edge_pen", "tool_edge_eraser", "fill")}
    assert "(B)" in tips["tool_brush"] and "(E)" in tips["tool_eraser"] and "(R)" in tips["tool_rectangle"]
    assert "(P)" in tips["tool_edge_pen"] and "(Shift+P)" in tips["tool_edge_eraser"]
    assert "Ctrl+Enter" in tips["fill"]
    for key in ("tool_brush", "tool_eraser", "fill", "cancel", "predict_edges", "undo", "open"):
        assert not window.actions[key].icon().isNull(), key


def test_hold_tab_compares_with_the_photo_before_the_fill(make_window, qtbot, photo_file):
    window = make_window(engine_factory=FakeEngine)
    _open(window, qtbot, photo_file)
    paint_box(window, BOX)
    _fill_and_wait(window, qtbot)
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(window.canvas.hasFocus, timeout=2000)
    qtbot.keyPress(window.canvas, Qt.Key_Tab)
    assert window.canvas.is_comparing()
    qtbot.keyRelease(window.canvas, Qt.Key_Tab)
    assert not window.canvas.is_comparing()
    # Tab held while another widget of the window has the focus compares too (window event filter).
    QApplication.sendEvent(window.model_combo, _key(Qt.Key_Tab, press=True))
    assert window.canvas.is_comparing()
    QApplication.sendEvent(window.model_combo, _key(Qt.Key_Tab, press=False))
    assert not window.canvas.is_comparing()


def _key(key, press: bool):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QKeyEvent

    return QKeyEvent(QEvent.KeyPress if press else QEvent.KeyRelease, key, Qt.NoModifier)


def test_mask_menu_and_view_actions(make_window, qtbot, photo_file, tmp_path):
    window = make_window(engine_factory=FakeEngine)
    _open(window, qtbot, photo_file)
    paint_box(window, BOX)
    count = window.document.mask.sum()
    assert window.grow_mask(3)
    assert window.document.mask.sum() > count
    assert window.shrink_mask(3)
    window.actions["invert_mask"].trigger()
    assert not window.document.mask[BOX[1] + 2, BOX[0] + 2]
    window.actions["clear_mask"].trigger()
    assert not window.document.mask.any()
    window.actions["undo"].trigger()
    assert window.document.mask.any()
    window.actions["show_mask"].trigger()
    assert not window.canvas.layer_visible("mask")
    window.actions["actual_size"].trigger()
    assert window.canvas.zoom() == 1.0
    window.actions["fit"].trigger()
    assert window.canvas.is_fit()


def test_models_menu_lists_backends_and_opens_fine_tune(make_window, qtbot):
    window = make_window()
    qtbot.waitUntil(lambda: bool(window.models), timeout=10_000)
    names = [window.model_combo.itemData(i) for i in range(window.model_combo.count())]
    assert names[0] == "default" and "telea" in names and "navier-stokes" in names
    fine_tune = window.actions["fine_tune"]
    assert fine_tune.isEnabled() and fine_tune in window.models_menu.actions()
    menu_models = [a.data() for a in window.model_actions.actions()]
    assert menu_models == names
    window.model_actions.actions()[names.index("telea")].trigger()
    assert window.selected_model() == "telea"
    assert window.device_label.text().startswith("CPU")
    # A refresh (a model installed or a fine-tune finished) replaces the entries: none twice, none left behind.
    listed = [window.selector.automatic, *window.models]
    for _ in range(3):
        window.on_models_changed(listed)
    qtbot.waitUntil(lambda: len(window.selector.findChildren(QAction)) == len(names), timeout=5_000)
    assert [a.data() for a in window.models_menu.actions() if a.data() in names] == names
    assert window.selected_model() == "telea"


def test_preferences_are_applied_and_kept(make_window, qtbot, photo_file):
    from app.settings import Settings

    settings = Settings.load()
    settings.brush_size = 55
    settings.mask_color = "#00ff00"
    window = make_window(engine_factory=FakeEngine, settings=settings)
    assert window.canvas.brush_size == 55 and window.size_slider.value() == 55
    assert window.canvas.mask_color().green() == 255 and window.canvas.mask_color().alpha() < 255
    window.canvas.set_brush_size(70)
    window.close()
    assert Settings.load().brush_size == 70


def test_changing_the_device_restarts_the_engine(make_window, qtbot):
    window = make_window()
    qtbot.waitUntil(lambda: bool(window.models), timeout=10_000)
    window.settings.device = "cpu"
    window.settings.cpu_threads = 1
    with qtbot.waitSignal(window.engine.device_changed, timeout=10_000) as changed:
        window.apply_preferences(engine_changed=True)
    assert changed.args == ["CPU (1 thread)"] and window.device_label.text() == "CPU (1 thread)"
    window.settings.device = "cuda:7"  # not on this machine: a clear message, the editor keeps running
    with qtbot.waitSignal(window.engine.failed, timeout=10_000):
        window.apply_preferences(engine_changed=True)
    errors = [(t, m) for k, t, m in window.prompter.asked if k == "error"]
    assert errors and errors[0][0] == "Fill engine" and "cuda:7" in errors[0][1]


def test_fine_tune_dialog_opens_once_and_a_registered_model_reaches_the_selector(make_window, qtbot):
    from app.finetune_dialog import FinetuneDialog
    from engine.model_files import ModelCard, save_model
    from engine.networks import EdgeGenerator, ImageGenerator
    from engine.paths import user_models_dir

    window = make_window()
    qtbot.waitUntil(lambda: bool(window.models), timeout=10_000)
    window.actions["fine_tune"].trigger()
    dialog = window._finetune
    assert isinstance(dialog, FinetuneDialog) and dialog.isVisible()
    window.actions["fine_tune"].trigger()
    assert window._finetune is dialog  # non-modal, one at a time

    args = {"base_channels": 8, "residual_blocks": 1}
    save_model(EdgeGenerator(**args), ModelCard("mine-edge", "edgeconnect-edge", args, "edge", 64), user_models_dir())
    save_model(ImageGenerator(**args), ModelCard("mine-image", "edgeconnect-image", args, "image", 64,
                                                 companion="mine-edge"), user_models_dir())
    dialog.model_registered.emit("mine-image", False)
    qtbot.waitUntil(lambda: "mine-image" in [window.model_combo.itemData(i)
                                             for i in range(window.model_combo.count())], timeout=10_000)


def test_closing_the_editor_during_a_fine_tune_asks_first(make_window):
    class TrainingDialog:  # stands for an open fine-tune dialog whose process is training
        stopped = False

        def is_running(self) -> bool:
            return not self.stopped

        def shutdown(self, timeout_ms: int = 30_000) -> None:
            self.stopped = True

    window = make_window(engine_factory=FakeEngine)
    training = TrainingDialog()
    window._finetune = training
    window.prompter.confirms.append(False)
    assert not window.close() and window.isVisible() and not training.stopped
    assert window.prompter.asked[-1][1] == "Stop fine-tuning?"
    window.prompter.confirms.append(True)
    assert window.close() and training.stopped  # stopped with a checkpoint, resumable later
    window._finetune = None


def _mask_with_a_line_through(window) -> None:
    """Paint the hole BOX and draw an edge-pen line across it."""
    paint_box(window, BOX)
    stroke = window.document.begin_stroke("edge_pen")
    stroke.segment((BOX[0] + 2.0, BOX[1] + 2.0), (BOX[2] - 2.0, BOX[3] - 2.0), 2)
    stroke.finish()


def test_a_line_the_texture_stage_followed_is_not_called_unused(make_window, qtbot, photo_file):
    engine = FakeEngine()
    engine.copies_lines = True  # a structure source's fill: the copy follows lines drawn in the hole
    window = make_window(engine_factory=lambda: engine)
    _open(window, qtbot, photo_file)
    _mask_with_a_line_through(window)
    _fill_and_wait(window, qtbot)
    assert "Filled with" in window.statusBar().currentMessage()
    assert "was not used" not in window.statusBar().currentMessage()


def test_predict_edges_follows_what_automatic_really_fills_with(make_window, qtbot, photo_file):
    from engine.api import ModelInfo

    engine = FakeEngine()
    engine.extra_models = [ModelInfo("edgeconnect-preview-image", "neural", "bundled", uses_edges=True)]
    window = make_window(engine_factory=lambda: engine)
    qtbot.waitUntil(lambda: len(window.models) == 2, timeout=5000)
    _open(window, qtbot, photo_file)
    predict = window.actions["predict_edges"]
    # "Automatic" is Telea until a pair named edgeconnect is installed: it proposes no edges.
    assert window.selected_model() == "default" and not predict.isEnabled()
    assert "choose an edge-guided model" in predict.toolTip()
    _mask_with_a_line_through(window)
    _fill_and_wait(window, qtbot)
    assert "your edge sketch was not used" in window.statusBar().currentMessage()
    assert window.select_model("edgeconnect-preview-image") and predict.isEnabled()


def test_predict_edges_takes_what_automatic_resolves_to_from_the_engine(make_window, qtbot, photo_file):
    from engine.api import ModelInfo

    engine = FakeEngine()
    engine.extra_models = [ModelInfo("default", "automatic", "built-in", "Automatic as the engine says it",
                                     uses_edges=True, structure_source=True, resolves_to="my-pair"),
                           ModelInfo("my-pair", "neural", "user", uses_edges=True)]
    window = make_window(engine_factory=lambda: engine)
    qtbot.waitUntil(lambda: len(window.models) == 2, timeout=5000)
    _open(window, qtbot, photo_file)
    assert window.selected_model() == "default" and window.actions["predict_edges"].isEnabled()
    assert window.automatic is not None and window.automatic.resolves_to == "my-pair"
    assert window.model_combo.itemData(0, Qt.ToolTipRole) == "Automatic as the engine says it"
    assert window.model_combo.itemText(0) == "Automatic: my-pair + texture"  # the label says what it uses
    assert window.model_combo.findData("default") == 0 and window.model_combo.count() == 3  # listed once


def test_keyboard_details_a_photo_editor_user_relies_on(make_window, qtbot, photo_file):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QKeyEvent, QWheelEvent

    from app.canvas import MAX_BRUSH

    window = make_window(engine_factory=FakeEngine)
    zoom = window.canvas.zoom()
    wheel = QWheelEvent(QPointF(50, 50), QPointF(50, 50), QPoint(0, 0), QPoint(0, 120), Qt.NoButton,
                        Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(window.canvas, wheel)
    assert window.canvas.zoom() == zoom  # no photo: the wheel does not zoom an empty view
    _open(window, qtbot, photo_file)
    rows = dict(window.shortcut_rows())  # the F1 list holds every action shortcut, from the actions themselves
    for keys in ("Ctrl+G", "Ctrl+Shift+G", "Ctrl+I", "Ctrl+E"):
        assert keys in rows, keys
    assert window.size_slider.maximum() == MAX_BRUSH  # the slider reaches what ] reaches
    assert window.fill_button.focusPolicy() == Qt.NoFocus  # Space must pan, never press Fill
    # Shift held for a square rectangle turns Tab into Backtab: it compares all the same.
    QApplication.sendEvent(window.canvas, QKeyEvent(QEvent.KeyPress, Qt.Key_Backtab, Qt.ShiftModifier))
    assert window.canvas.is_comparing()
    QApplication.sendEvent(window.canvas, QKeyEvent(QEvent.KeyRelease, Qt.Key_Backtab, Qt.ShiftModifier))
    assert not window.canvas.is_comparing()


def test_switching_tool_mid_drag_keeps_the_stroke(make_window, qtbot, photo_file):
    window = make_window(engine_factory=FakeEngine)
    _open(window, qtbot, photo_file)
    canvas = window.canvas
    canvas.set_tool("brush")
    start, end = canvas.map_from_document(QPointF(20, 20)), canvas.map_from_document(QPointF(60, 20))
    qtbot.mousePress(canvas, Qt.LeftButton, pos=start.toPoint())
    qtbot.mouseMove(canvas, end.toPoint())
    painted = int(window.document.mask.sum())
    assert painted > 0
    canvas.set_tool("eraser")  # E pressed while still dragging
    qtbot.mouseRelease(canvas, Qt.LeftButton, pos=end.toPoint())
    assert int(window.document.mask.sum()) == painted and window.document.undo_stack.count() == 1


def test_a_new_default_brush_size_applies_at_once_and_an_engine_failure_is_not_called_a_fill(make_window, qtbot):
    window = make_window(engine_factory=FakeEngine)
    window.settings.brush_size = 150  # what Preferences > OK does
    window.apply_preferences()
    assert window.canvas.brush_size == 150 and window.size_slider.value() == 150
    window.on_failed("Device 'cuda' was asked for, but this machine has no CUDA GPU.")  # no job was running
    assert window.prompter.asked[-1][1] == "Fill engine"
    assert "engine is not available" in window.statusBar().currentMessage()


def test_a_chosen_model_that_is_gone_is_said_not_silently_replaced(make_window, qtbot):
    from app.settings import Settings

    settings = Settings.load()
    settings.default_model = "my-old-model"
    window = make_window(engine_factory=FakeEngine, settings=settings)
    qtbot.waitUntil(lambda: bool(window.models), timeout=5000)
    assert window.selected_model() == "default"
    assert "'my-old-model' chosen last time is not available" in window.statusBar().currentMessage()


def test_texture_slider_reaches_the_fill_is_remembered_and_is_off_for_fills_without_texture(
        make_window, qtbot, photo_file):
    window = make_window()
    _open(window, qtbot, photo_file)
    qtbot.waitUntil(lambda: bool(window.models), timeout=10_000)
    assert window.select_model("harmonic") and window.texture_slider.isEnabled()
    window.texture_slider.setValue(0)
    assert window.settings.texture_strength == 0.0 and window.texture_label.text().strip() == "0%"
    paint_box(window, BOX)
    before = window.document.image.copy()
    smooth = _fill_and_wait(window, qtbot)
    assert smooth.timings["texture"] == 0  # structure only
    window.actions["undo"].trigger()
    assert np.array_equal(window.document.image, before)
    window.texture_slider.setValue(100)
    textured = _fill_and_wait(window, qtbot)
    assert textured.timings["texture"] > 0
    assert window.select_model("telea") and not window.texture_slider.isEnabled()
    window.close()
    assert make_window().texture_slider.value() == 100  # the setting survives a restart


def test_a_sketch_outside_the_hole_is_said_to_be_outside(make_window, qtbot, photo_file):
    window = make_window(engine_factory=FakeEngine)
    _open(window, qtbot, photo_file)
    paint_box(window, BOX)
    stroke = window.document.begin_stroke("edge_pen")
    stroke.segment((BOX[2] + 6.0, BOX[1]), (BOX[2] + 6.0, BOX[3]), 2)  # beside the hole, not in it
    stroke.finish()
    _fill_and_wait(window, qtbot)
    message = window.statusBar().currentMessage()
    assert "outside the hole" in message and "was not used" not in message


def test_the_shortcut_list_names_each_key_once(make_window):
    window = make_window(engine_factory=FakeEngine)
    keys = [k for k, _ in window.shortcut_rows()]
    for key in ("Esc", "[", "]"):
        assert sum(key in k.split(" / ") for k in keys) == 1, key


def test_after_a_fill_the_result_shows_not_the_edges(make_window, qtbot, photo_file):
    from PySide6.QtGui import QColor

    from app.layers import DEFAULT_EDGE_COLORS, DEFAULT_MASK_COLOR, EDGE_ERASED

    window = make_window(engine_factory=FakeEngine)
    _open(window, qtbot, photo_file)
    window.canvas.set_edges_visible(True)
    paint_box(window, BOX)
    _fill_and_wait(window, qtbot)
    assert not window.canvas.layer_visible("edges") and not window.actions["show_edges"].isChecked()
    erased, mask = DEFAULT_EDGE_COLORS[EDGE_ERASED], QColor(DEFAULT_MASK_COLOR)
    assert erased.alpha() == 255  # erased-edge marks stand out on the red mask: far from its colour
    assert abs(erased.hueF() - mask.hueF()) > 0.3 and erased.green() - mask.green() > 150


def test_holding_tab_shows_a_hint_that_the_original_is_shown(make_window, qtbot, photo_file):
    window = make_window(engine_factory=FakeEngine)
    _open(window, qtbot, photo_file)
    paint_box(window, BOX)
    _fill_and_wait(window, qtbot)
    before = window.canvas.grab().toImage()
    window.canvas.set_compare(True)
    during = window.canvas.grab().toImage()
    window.canvas.set_compare(False)
    width = before.width()
    changed = sum(before.pixel(x, 16) != during.pixel(x, 16) for x in range(width // 2, width))
    assert changed > 50  # the label sits top right over the view


def test_no_false_model_gone_warning_while_the_list_is_loading(make_window, qtbot):
    from app.settings import Settings
    from engine.api import ModelInfo

    settings = Settings.load()
    settings.default_model = "my-photos"
    engine = FakeEngine()
    engine.extra_models = [ModelInfo("my-photos", "neural", "user", uses_edges=True)]
    window = make_window(engine_factory=lambda: engine, settings=settings)
    window.on_models_changed([])  # what the window sees before the engine has listed anything
    assert "not available" not in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.selected_model() == "my-photos", timeout=5000)
    assert "not available" not in window.statusBar().currentMessage()


def test_model_names_are_shown_in_full_or_cut_in_the_middle(make_window, qtbot):
    from app.model_selector import MODEL_LABEL_CHARS, elide_middle, model_label
    from engine.api import ModelInfo

    assert elide_middle("abc", 10) == "abc"
    cut = elide_middle("x" * 30 + "-finetune-2", 20)
    assert len(cut) == 20 and cut.endswith("tune-2") and "…" in cut
    engine = FakeEngine()
    engine.extra_models = [ModelInfo("edgeconnect-preview-image", "neural", "bundled", uses_edges=True),
                           ModelInfo("edgeconnect-preview-image-my-garden-photos-ft", "neural", "user",
                                     uses_edges=True)]
    window = make_window(engine_factory=lambda: engine)
    qtbot.waitUntil(lambda: len(window.models) == 3, timeout=5000)
    combo = window.model_combo
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert any(t.startswith("edgeconnect-preview-image  (") for t in labels)  # short enough: whole
    long_label = next(t for t in labels if "…" in t)
    assert len(long_label) <= MODEL_LABEL_CHARS and long_label.endswith("(edge-guided, user)")
    beach, forest = (model_label(f"edgeconnect-preview-image-holiday-{place}-2026", "edge-guided", "user")
                     for place in ("beach", "forest"))
    assert beach != forest and "beach-2026  (edge-guided, user)" in beach and len(forest) <= MODEL_LABEL_CHARS
    assert combo.minimumSizeHint().width() >= combo.fontMetrics().horizontalAdvance("x" * 30)
    assert window.select_model("edgeconnect-preview-image-my-garden-photos-ft")
    assert "edgeconnect-preview-image-my-garden-photos-ft" in combo.toolTip()
    assert "combobox-popup: 0" in combo.styleSheet()


def test_fine_tuning_on_this_photo_after_a_fill_leaves_the_fill_out(make_window, qtbot, photo_file):
    window = make_window()
    _open(window, qtbot, photo_file)
    qtbot.waitUntil(lambda: bool(window.models), timeout=10_000)
    assert window.select_model("telea")
    paint_box(window, BOX)
    hole = window.document.mask.copy()
    _fill_and_wait(window, qtbot)
    assert not window.document.mask.any()
    window.actions["fine_tune"].trigger()
    dialog = window._finetune
    assert np.array_equal(dialog.mask, hole) and not dialog.user_mask.any()
    assert "filled in this session and is left out" in dialog.form_box.photo_note.text()
    dialog.close()
