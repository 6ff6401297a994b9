"""Tools driven by real mouse events at a zoom other than 1 and with a pan offset."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from app.canvas import Canvas
from app.commands import StrokeCommand
from app.document import Document
from engine.api import FillResult

ZOOM, OX, OY = 1.5, 13.0, 7.0


@pytest.fixture
def doc(qapp):
    d = Document()
    d.load_array(np.random.default_rng(2).integers(0, 256, (150, 200, 3), dtype=np.uint8))
    return d


@pytest.fixture
def canvas(qtbot, doc):
    c = Canvas()
    qtbot.addWidget(c)
    c.setFixedSize(360, 260)
    c.set_document(doc)
    c.show()
    qtbot.waitExposed(c)
    c.set_view(ZOOM, QPointF(OX, OY))
    return c


def to_doc(x: float, y: float) -> tuple[float, float]:
    return (x - OX) / ZOOM, (y - OY) / ZOOM


def drag(qtbot, canvas, points, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, modifier, QPoint(*points[0]))
    for p in points[1:]:
        qtbot.mouseMove(canvas, QPoint(*p))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, modifier, QPoint(*points[-1]))


def test_brush_stroke_paints_where_drawn_only(canvas, doc, qtbot):
    canvas.brush_size = 6
    drag(qtbot, canvas, [(50, 52), (120, 52), (200, 52)])
    x0, y = to_doc(50, 52)
    x1, _ = to_doc(200, 52)
    row = int(y)
    assert doc.mask[row, int(x0) + 1 : int(x1)].all()  # continuous, no gaps between mouse moves
    assert not doc.mask[row - 5].any() and not doc.mask[row + 5].any()
    assert not doc.mask[:, int(x1) + 5 :].any() and not doc.mask[:, : int(x0) - 4].any()
    assert doc.undo_stack.count() == 1 and isinstance(doc.undo_stack.command(0), StrokeCommand)
    doc.undo_stack.undo()
    assert not doc.mask.any()
    doc.undo_stack.redo()
    assert doc.mask[row, int(x0) + 1 : int(x1)].all()


def test_one_command_per_stroke_with_many_moves(canvas, doc, qtbot):
    canvas.brush_size = 4
    drag(qtbot, canvas, [(40 + 5 * i, 60 + (i % 7) * 3) for i in range(40)])
    drag(qtbot, canvas, [(60, 150), (80, 170)])
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    assert doc.undo_stack.count() == 2 and doc.undo_stack.index() == 1
    assert not doc.mask[int(to_doc(0, 165)[1])].any()


def test_eraser_removes_mask_under_the_drag(canvas, doc, qtbot):
    doc.add_rectangle((20, 20, 120, 80))
    canvas.set_tool("eraser")
    canvas.brush_size = 10
    drag(qtbot, canvas, [(100, 100), (100, 100)])
    cx, cy = to_doc(100, 100)
    assert not doc.mask[int(cy) - 3 : int(cy) + 3, int(cx) - 3 : int(cx) + 3].any()
    assert doc.mask[25, 25] and doc.mask[75, 115]
    assert doc.undo_stack.count() == 2


def test_rectangle_drag_and_shift_square(canvas, doc, qtbot):
    canvas.set_tool("rectangle")
    drag(qtbot, canvas, [(40, 40), (100, 70), (130, 85)])
    (ax, ay), (bx, by) = to_doc(40, 40), to_doc(130, 85)
    ys, xs = np.nonzero(doc.mask)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (int(ax), int(ay), int(np.ceil(bx)), int(np.ceil(by)))
    assert doc.mask.sum() == (xs.max() + 1 - xs.min()) * (ys.max() + 1 - ys.min())  # filled box
    doc.undo_stack.undo()
    drag(qtbot, canvas, [(40, 40), (130, 70)], Qt.KeyboardModifier.ShiftModifier)
    ys, xs = np.nonzero(doc.mask)
    assert xs.max() - xs.min() == ys.max() - ys.min()  # square: the longer side wins
    assert xs.max() - xs.min() + 1 >= int((130 - 40) / ZOOM)
    assert doc.undo_stack.count() == 1


def test_rectangle_preview_while_dragging(canvas, qtbot):
    canvas.set_tool("rectangle")
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(40, 40))
    qtbot.mouseMove(canvas, QPoint(100, 70))
    preview = canvas._tool.preview_rect()
    assert preview is not None and preview.width() == pytest.approx(np.ceil(to_doc(100, 0)[0]) - int(to_doc(40, 0)[0]))
    assert not canvas.document().mask.any()  # nothing added until release
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(100, 70))
    assert not canvas.document().mask.any() and canvas.document().undo_stack.count() == 0


def test_edge_pen_and_edge_eraser(canvas, doc, qtbot):
    canvas.set_tool("edge_pen")
    canvas.brush_size = 2
    drag(qtbot, canvas, [(60, 100), (200, 100)])
    row = int(to_doc(0, 100)[1])
    assert doc.sketch_drawn[row, int(to_doc(60, 0)[0]) + 1 : int(to_doc(200, 0)[0])].all()
    assert not doc.mask.any()
    canvas.set_tool("edge_eraser")
    canvas.brush_size = 8
    drag(qtbot, canvas, [(130, 80), (130, 120)])
    col = int(to_doc(130, 0)[0])
    assert not doc.sketch_drawn[row, col - 2 : col + 3].any()
    assert doc.sketch_erased[row - 5 : row + 5, col].all()
    assert doc.sketch_drawn[row, col - 20]
    drawn, erased = doc.sketch_drawn.copy(), doc.sketch_erased.copy()
    doc.undo_stack.undo()
    assert doc.sketch_drawn[row, col] and not doc.sketch_erased.any()
    doc.undo_stack.undo()
    assert not doc.sketch_drawn.any()
    doc.undo_stack.redo()
    doc.undo_stack.redo()  # redo of both strokes: the layers as they were after drawing
    assert np.array_equal(doc.sketch_drawn, drawn) and np.array_equal(doc.sketch_erased, erased)
    assert not doc.mask.any()


def test_escape_cancels_a_stroke(canvas, doc, qtbot):
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(60, 60))
    qtbot.mouseMove(canvas, QPoint(120, 60))
    assert doc.mask.any()
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(120, 60))
    assert not doc.mask.any() and doc.undo_stack.count() == 0


def test_pan_tool(canvas, doc, qtbot):
    canvas.set_tool("pan")
    drag(qtbot, canvas, [(100, 100), (150, 80)])
    assert (canvas.offset().x(), canvas.offset().y()) == (OX + 50, OY - 20)
    assert not doc.mask.any()


def test_undo_mid_stroke_keeps_history_consistent(canvas, doc, qtbot):
    canvas.brush_size = 10
    drag(qtbot, canvas, [(60, 60), (150, 60)])
    first = doc.mask.copy()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(100, 40))
    qtbot.mouseMove(canvas, QPoint(100, 90))
    doc.undo_stack.undo()  # e.g. Ctrl+Z while dragging: removes the first stroke (and the new one's dabs over it)
    qtbot.mouseMove(canvas, QPoint(100, 120))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(100, 120))
    final = doc.mask.copy()
    assert doc.undo_stack.count() == 1 and not final[first & ~final].any()
    doc.undo_stack.undo()
    assert not doc.mask.any()  # no ghost of the undone first stroke
    doc.undo_stack.redo()
    assert np.array_equal(doc.mask, final)


def test_fill_then_undo_through_canvas_strokes(canvas, doc, qtbot):
    original = doc.image.copy()
    canvas.brush_size = 12
    drag(qtbot, canvas, [(80, 80), (160, 120)])
    out = doc.image.copy()
    out[doc.mask] = 0
    doc.apply_fill(FillResult(image=out, edges=None, timings={}))
    assert not doc.mask.any() and (doc.image != original).any()
    doc.undo_stack.undo()
    assert np.array_equal(doc.image, original) and doc.mask.any()
