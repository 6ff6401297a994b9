"""Canvas: view transform, zoom about the cursor, pan, layers, compare and pixel snapshots."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.canvas import BACKGROUND, Canvas
from app.document import Document
from app.layers import DEFAULT_EDGE_COLORS, EDGE_DRAWN
from engine.api import FillResult

W, H = 320, 240


@pytest.fixture
def doc(qapp):
    d = Document()
    yy, xx = np.mgrid[0:60, 0:80]
    rgb = np.stack([(xx * 3) % 256, (yy * 4) % 256, ((xx + yy) * 2) % 256], axis=2).astype(np.uint8)
    d.load_array(rgb)
    return d


@pytest.fixture
def canvas(qtbot, doc):
    c = Canvas()
    qtbot.addWidget(c)
    c.setFixedSize(W, H)
    c.set_document(doc)
    c.show()
    qtbot.waitExposed(c)
    return c


def grab(canvas: Canvas) -> np.ndarray:
    image = canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    h, w, bpl = image.height(), image.width(), image.bytesPerLine()
    return np.frombuffer(image.constBits(), np.uint8, h * bpl).reshape(h, bpl)[:, : w * 3].reshape(h, w, 3).copy()


def expected_view(doc: Document, zoom: int, ox: int, oy: int, mask_color: QColor) -> np.ndarray:
    """What the canvas should show at an integer zoom and offset: nearest pixels, mask colour blended on top."""
    a = mask_color.alphaF()
    color = np.array([mask_color.red(), mask_color.green(), mask_color.blue()], float)
    shown = doc.image.astype(float)
    shown[doc.mask] = shown[doc.mask] * (1 - a) + color * a
    out = np.empty((H, W, 3), float)
    out[:] = [BACKGROUND.red(), BACKGROUND.green(), BACKGROUND.blue()]
    ys, xs = np.mgrid[0:H, 0:W]
    dx, dy = (xs - ox) // zoom, (ys - oy) // zoom
    inside = (dx >= 0) & (dy >= 0) & (dx < doc.width) & (dy < doc.height)
    out[inside] = shown[dy[inside], dx[inside]]
    return out


def test_fit_centres_the_photo(canvas, doc):
    assert canvas.is_fit()
    z = canvas.zoom()
    assert z == pytest.approx(min((W - 16) / 80, (H - 16) / 60))
    top_left = canvas.map_from_document(QPointF(0, 0))
    bottom_right = canvas.map_from_document(QPointF(80, 60))
    assert top_left.x() + bottom_right.x() == pytest.approx(W)
    assert top_left.y() + bottom_right.y() == pytest.approx(H)


def test_snapshot_crisp_zoom_matches_expected(canvas, doc):
    canvas.set_tool("pan")  # no brush outline in the picture
    doc.add_rectangle((10, 5, 30, 25))
    canvas.set_view(3.0, QPointF(20, 11))
    got = grab(canvas).astype(float)
    want = expected_view(doc, 3, 20, 11, canvas.mask_color())
    diff = np.abs(got - want).max(axis=2)
    assert np.mean(diff > 3) < 0.002  # nearest-neighbour, pixel exact but for rounding
    assert diff.mean() < 0.5
    canvas.set_mask_visible(False)
    got = grab(canvas).astype(float)
    assert np.abs(got - expected_view(doc, 3, 20, 11, QColor(0, 0, 0, 0))).max(axis=2).mean() < 0.5
    canvas.set_mask_visible(True)
    canvas.set_mask_color(QColor(0, 0, 255, 200))
    doc.add_rectangle((40, 30, 50, 40))  # drawn after the colour change: the overlay still tracks the mask live
    got = grab(canvas).astype(float)
    want = expected_view(doc, 3, 20, 11, QColor(0, 0, 255, 200))
    assert np.mean(np.abs(got - want).max(axis=2) > 3) < 0.002


def test_snapshot_zoomed_out_is_smooth_and_close(qtbot, qapp):
    doc = Document()
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (800, 1200, 3), dtype=np.uint8)
    doc.load_array(rgb)
    c = Canvas()
    qtbot.addWidget(c)
    c.setFixedSize(W, H)
    c.set_document(doc)
    c.set_tool("pan")
    c.show()
    qtbot.waitExposed(c)
    c.set_view(0.25, QPointF(0, 0))
    got = grab(c).astype(float)
    # Noise averaged over 4 x 4 blocks is close to mid-grey: the view is filtered, not point-sampled.
    block = rgb.reshape(200, 4, 300, 4, 3).mean(axis=(1, 3))
    inner = got[2:198, 2:298]
    assert np.abs(inner - block[2:198, 2:298]).mean() < 12
    assert inner.std() < 0.5 * rgb.std()


def test_zoom_about_cursor_keeps_point_fixed(canvas):
    canvas.set_view(1.7, QPointF(-35, 12))
    anchor = QPointF(211.0, 97.0)
    before = canvas.map_to_document(anchor)
    event = QWheelEvent(anchor, canvas.mapToGlobal(anchor), QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, event)
    assert canvas.zoom() == pytest.approx(1.7 * 1.25 ** 2)
    after = canvas.map_to_document(anchor)
    assert (after.x(), after.y()) == pytest.approx((before.x(), before.y()), abs=1e-6)
    assert not canvas.is_fit()
    canvas.zoom_out(anchor)
    assert canvas.zoom() == pytest.approx(1.7 * 1.25)
    canvas.fit()
    assert canvas.is_fit()


def test_actual_size_and_high_dpi(canvas, monkeypatch):
    canvas.actual_size()
    assert canvas.zoom() == 1.0
    p = canvas.map_from_document(QPointF(10, 0)) - canvas.map_from_document(QPointF(0, 0))
    assert p.x() == pytest.approx(10)
    monkeypatch.setattr(canvas, "_dpr", lambda: 2.0)
    canvas.actual_size()
    p = canvas.map_from_document(QPointF(10, 0)) - canvas.map_from_document(QPointF(0, 0))
    assert p.x() == pytest.approx(5)  # 10 photo px = 10 device px = 5 logical px on a 2x screen


def test_middle_button_and_space_drag_pan(canvas, qtbot):
    canvas.set_view(2.0, QPointF(0, 0))
    qtbot.mousePress(canvas, Qt.MouseButton.MiddleButton, pos=QPoint(100, 100))
    qtbot.mouseMove(canvas, QPoint(130, 90))
    qtbot.mouseRelease(canvas, Qt.MouseButton.MiddleButton, pos=QPoint(130, 90))
    assert (canvas.offset().x(), canvas.offset().y()) == (30, -10)
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(canvas, QPoint(90, 120))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(90, 120))
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert (canvas.offset().x(), canvas.offset().y()) == (20, 10)
    assert canvas.document().undo_stack.count() == 0  # panning painted nothing


def test_keys_zoom_and_brush_size(canvas, qtbot):
    canvas.set_view(1.0, QPointF(0, 0))
    qtbot.keyClick(canvas, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom() == pytest.approx(1.25)
    qtbot.keyClick(canvas, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom() == pytest.approx(1.0)
    qtbot.keyClick(canvas, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.is_fit()
    size = canvas.brush_size
    with qtbot.waitSignal(canvas.brush_size_changed) as blocker:
        qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert blocker.args[0] == canvas.brush_size > size
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size < size
    canvas.brush_size = 5000
    assert canvas.brush_size == 1000


def test_brush_size_follows_tool_group(canvas, qtbot):
    canvas.brush_size = 25
    with qtbot.waitSignal(canvas.brush_size_changed) as blocker:
        canvas.set_tool("edge_pen")
    assert blocker.args == [3] and canvas.layer_visible("edges")
    canvas.set_tool("eraser")
    assert canvas.brush_size == 25
    with pytest.raises(ValueError):
        canvas.set_tool("lasso")


def test_compare_shows_photo_before_last_fill(canvas, doc, qtbot):
    canvas.set_tool("pan")
    canvas.set_view(2.0, QPointF(0, 0))
    original = doc.image.copy()
    doc.add_rectangle((10, 10, 20, 20))
    out = doc.image.copy()
    out[doc.mask] = (0, 255, 0)
    doc.apply_fill(FillResult(image=out, edges=None, timings={}))
    shown = grab(canvas)
    assert tuple(shown[31, 31]) == (0, 255, 0)
    qtbot.keyPress(canvas, Qt.Key.Key_Tab)
    assert canvas.is_comparing()
    assert np.abs(grab(canvas)[31, 31].astype(int) - original[15, 15]).max() <= 1
    qtbot.keyRelease(canvas, Qt.Key.Key_Tab)
    assert not canvas.is_comparing()
    assert tuple(grab(canvas)[31, 31]) == (0, 255, 0)


def test_compare_shows_pre_fill_pixels_in_every_filled_region(canvas, doc, qtbot):
    canvas.set_tool("pan")
    canvas.set_view(4.0, QPointF(0, 0))  # 80 x 60 document px fill the 320 x 240 canvas
    original = doc.image.copy()
    doc.add_rectangle((2, 2, 8, 8))
    doc.add_rectangle((66, 46, 76, 56))
    out = doc.image.copy()
    out[doc.mask] = (0, 255, 0)
    cmd = doc.apply_fill(FillResult(image=out, edges=None, timings={}, regions=[(0, 0, 20, 20), (56, 36, 80, 60)]))
    assert [p.box for p in cmd.image_patches] == [(2, 2, 8, 8), (66, 46, 76, 56)]
    points = [(5, 5), (70, 50), (75, 55)]  # document (x, y) inside both holes
    shown = grab(canvas)
    for x, y in points:
        assert tuple(shown[4 * y + 2, 4 * x + 2]) == (0, 255, 0)
    canvas.set_compare(True)
    before = grab(canvas)
    for x, y in points:
        assert np.abs(before[4 * y + 2, 4 * x + 2].astype(int) - original[y, x]).max() <= 1, (x, y)
    assert np.abs(before[4 * 30 + 2, 4 * 40 + 2].astype(int) - original[30, 40]).max() <= 1  # between them
    canvas.set_mask_visible(False)
    doc.undo_stack.undo()  # compare follows the history: with no fill applied it shows the photo as is
    assert canvas.is_comparing()
    assert np.abs(grab(canvas)[4 * 50 + 2, 4 * 70 + 2].astype(int) - original[50, 70]).max() <= 1
    canvas.set_compare(False)


def test_edge_layer_draws_sketch_in_its_colour(canvas, doc):
    canvas.set_tool("pan")
    canvas.set_edges_visible(True)
    canvas.set_mask_visible(False)
    canvas.set_view(4.0, QPointF(0, 0))
    s = doc.begin_stroke("edge_pen")
    s.segment((40.5, 30.5), (40.5, 30.5), 1)
    s.finish()
    drawn = DEFAULT_EDGE_COLORS[EDGE_DRAWN]
    assert tuple(grab(canvas)[122, 162]) == (drawn.red(), drawn.green(), drawn.blue())
    canvas.set_edges_visible(False)
    assert np.abs(grab(canvas)[122, 162].astype(int) - doc.image[30, 40]).max() <= 1


def test_only_touched_area_is_repainted(canvas, doc, qtbot, monkeypatch):
    canvas.set_view(2.0, QPointF(0, 0))
    rects = []
    monkeypatch.setattr(canvas, "update", lambda *a: rects.append(a[0] if a else None))
    s = doc.begin_stroke("brush")
    s.segment((20, 20), (22, 20), 4)
    s.finish()
    assert rects and all(r is not None for r in rects)
    total = rects[0]
    for r in rects[1:]:
        total = total.united(r)
    assert total.width() < 30 and total.height() < 30 and total.contains(42, 40)
