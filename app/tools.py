"""Canvas tools: they turn pointer input (already mapped to document coordinates) into document edits.

Tools never draw the document; at most they describe a preview (the rectangle being dragged) that the
canvas outlines. A stroke tool paints live into the layers while dragging and pushes one undo command
on release (``Document.begin_stroke``).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt

from app import mask_ops

TOOL_NAMES = ("brush", "eraser", "rectangle", "edge_pen", "edge_eraser", "pan")


@dataclass
class ToolEvent:
    """One pointer event: document position, widget position (logical px), keyboard modifiers."""

    doc: QPointF
    widget: QPointF
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier


class Tool:
    """Base tool: ignores input."""

    name = ""
    cursor = Qt.CursorShape.ArrowCursor
    shows_brush = False  # the canvas draws a brush outline of the current size
    size_group = "brush"  # tools of one group share a size (brush/eraser vs. edge pen/edge eraser)

    def __init__(self, canvas) -> None:
        self.canvas = canvas
        self.active = False

    def press(self, event: ToolEvent) -> None:
        """Button down."""
        self.active = True

    def move(self, event: ToolEvent) -> None:
        """Pointer moved with the button down."""

    def release(self, event: ToolEvent) -> None:
        """Button up."""
        self.active = False

    def cancel(self) -> None:
        """Abandon the current drag (Escape, document replaced)."""
        self.active = False

    def commit(self) -> None:
        """End the current drag keeping what it did (another tool was chosen mid-drag)."""
        self.cancel()

    def preview_rect(self) -> QRectF | None:
        """A document rect to outline while dragging, if any."""
        return None


class StrokeTool(Tool):
    """Brush, eraser, edge pen and edge eraser: a round brush of the canvas's current size."""

    shows_brush = True
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas, name: str) -> None:
        super().__init__(canvas)
        self.name = name
        self.size_group = "edge" if name.startswith("edge") else "brush"
        self._stroke = None
        self._last: tuple[float, float] | None = None

    def press(self, event: ToolEvent) -> None:
        doc = self.canvas.document()
        if doc is None or doc.is_empty():
            return
        super().press(event)
        self._stroke = doc.begin_stroke(self.name)
        self._last = (event.doc.x(), event.doc.y())
        self._stroke.segment(self._last, self._last, self.canvas.brush_size)

    def move(self, event: ToolEvent) -> None:
        if self._stroke is None or self._stroke.finished:
            return
        point = (event.doc.x(), event.doc.y())
        self._stroke.segment(self._last, point, self.canvas.brush_size)
        self._last = point

    def release(self, event: ToolEvent) -> None:
        if self._stroke is not None and not self._stroke.finished:
            self.move(event)
            self._stroke.finish()
        self._stroke = None
        super().release(event)

    def cancel(self) -> None:
        if self._stroke is not None:
            self._stroke.cancel()
        self._stroke = None
        super().cancel()

    def commit(self) -> None:
        if self._stroke is not None and not self._stroke.finished:
            self._stroke.finish()
        self._stroke = None
        super().cancel()


class RectangleTool(Tool):
    """Drag to add a box to the mask; Shift keeps it square, Alt removes the box instead."""

    name = "rectangle"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self._start: QPointF | None = None
        self._end: QPointF | None = None
        self._square = False

    def press(self, event: ToolEvent) -> None:
        doc = self.canvas.document()
        if doc is None or doc.is_empty():
            return
        super().press(event)
        self._start = self._end = QPointF(event.doc)
        self._square = bool(event.modifiers & Qt.KeyboardModifier.ShiftModifier)

    def move(self, event: ToolEvent) -> None:
        if self._start is None:
            return
        self._end = QPointF(event.doc)
        self._square = bool(event.modifiers & Qt.KeyboardModifier.ShiftModifier)

    def _box(self):
        doc = self.canvas.document()
        return mask_ops.rectangle_box((self._start.x(), self._start.y()), (self._end.x(), self._end.y()),
                                      doc.height, doc.width, square=self._square)

    def release(self, event: ToolEvent) -> None:
        if self._start is not None:
            self.move(event)
            box = self._box()
            if box is not None:
                remove = bool(event.modifiers & Qt.KeyboardModifier.AltModifier)
                self.canvas.document().add_rectangle(box, value=not remove)
        self._start = self._end = None
        super().release(event)

    def cancel(self) -> None:
        self._start = self._end = None
        super().cancel()

    def preview_rect(self) -> QRectF | None:
        if self._start is None or self._end is None:
            return None
        box = self._box()
        if box is None:
            return None
        x0, y0, x1, y1 = box
        return QRectF(x0, y0, x1 - x0, y1 - y0)


class PanTool(Tool):
    """Drag to move the view."""

    name = "pan"
    cursor = Qt.CursorShape.OpenHandCursor

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self._last: QPointF | None = None

    def press(self, event: ToolEvent) -> None:
        super().press(event)
        self._last = QPointF(event.widget)

    def move(self, event: ToolEvent) -> None:
        if self._last is None:
            return
        delta = event.widget - self._last
        self._last = QPointF(event.widget)
        self.canvas.pan_by(delta.x(), delta.y())

    def release(self, event: ToolEvent) -> None:
        self.move(event)
        self._last = None
        super().release(event)

    def cancel(self) -> None:
        self._last = None
        super().cancel()


def make_tool(canvas, name: str) -> Tool:
    """The tool called ``name`` (one of :data:`TOOL_NAMES`)."""
    if name in ("brush", "eraser", "edge_pen", "edge_eraser"):
        return StrokeTool(canvas, name)
    if name == "rectangle":
        return RectangleTool(canvas)
    if name == "pan":
        return PanTool(canvas)
    raise ValueError(f"unknown tool {name!r}; expected one of {', '.join(TOOL_NAMES)}")
