"""The canvas: draws a Document (photo, mask overlay, edge layer) with zoom and pan, and feeds the tools.

Why a plain QWidget with its own paintEvent rather than QGraphicsView: the scene is one image plus
overlays under a single view transform, so a scene graph buys nothing, while a custom paintEvent lets
each repaint draw just the exposed document rect from the right pyramid level (``app.layers``) with
exactly the sampling we want (nearest when zoomed in, filtered from a 1/2^k copy when zoomed out). A
brush dab thus repaints a few hundred device pixels on a 24 MP photo, and a pan or zoom repaints one
widget's worth of pixels whatever the photo size.

View model: ``widget = doc * s + offset`` in logical pixels, ``s = zoom / devicePixelRatio``;
``zoom`` is device pixels per photo pixel, so ``actual_size()`` (zoom 1) shows one photo pixel per
screen pixel on high-DPI screens too.

Keys handled while the canvas has focus: ``[``/``]`` brush size, Ctrl+= / Ctrl++ / Ctrl+- zoom,
Ctrl+0 fit, Ctrl+1 100%, Space (held) pan, Tab (held) compare with the photo before the last fill,
Escape cancels a drag. The main window may bind the same actions to these public methods instead.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QTransform
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.document import Document
from app.layers import DEFAULT_MASK_COLOR, EdgeLayer, MaskLayer, PhotoLayer
from app.tools import TOOL_NAMES, Tool, ToolEvent, make_tool

MIN_ZOOM, MAX_ZOOM = 0.01, 64.0
ZOOM_STEP = 1.25
MIN_BRUSH, MAX_BRUSH = 1, 1000
DEFAULT_SIZES = {"brush": 40, "edge": 3}
BACKGROUND = QColor(48, 48, 52)


def _clamp_brush(size: float) -> int:
    """A brush diameter in whole photo pixels within MIN_BRUSH..MAX_BRUSH."""
    return int(min(MAX_BRUSH, max(MIN_BRUSH, round(float(size)))))


class Canvas(QWidget):
    """Zoomable, pannable view of a :class:`Document` that turns pointer input into tool edits."""

    zoom_changed = Signal(float)
    brush_size_changed = Signal(int)
    tool_changed = Signal(str)
    layer_visibility_changed = Signal(str, bool)
    compare_changed = Signal(bool)
    cursor_position_changed = Signal(int, int)  # document pixel under the pointer, (-1, -1) when off the photo

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._doc: Document | None = None
        self._photo: PhotoLayer | None = None
        self._mask_layer: MaskLayer | None = None
        self._edge_layer: EdgeLayer | None = None
        self._compare_layers: list[PhotoLayer] = []  # pre-fill pixels, one per box the last fill changed
        self._mask_color = QColor(DEFAULT_MASK_COLOR)
        self._visible = {"mask": True, "edges": False}
        self._compare = False
        self._zoom = 1.0
        self._offset = QPointF(0.0, 0.0)
        self._fit_mode = True
        self._sizes = dict(DEFAULT_SIZES)
        self._tool: Tool = make_tool(self, "brush")
        self._cursor_pos: QPointF | None = None  # widget position of the pointer, None when outside
        self._pan_last: QPointF | None = None  # set while panning with middle button / space
        self._space = False
        self._preview: QRectF | None = None
        self.setCursor(self._tool.cursor)

    # ------------------------------------------------------------------ document
    def document(self) -> Document | None:
        """The document shown."""
        return self._doc

    def set_document(self, doc: Document | None) -> None:
        """Show ``doc`` (or nothing); the view fits the photo."""
        if self._doc is doc:
            return
        self._tool.cancel()
        if self._doc is not None:
            self._doc.layer_changed.disconnect(self._on_layer_changed)
            self._doc.changed.disconnect(self._on_changed)
            self._doc.image_replaced.disconnect(self._on_image_replaced)
            self._doc.undo_stack.indexChanged.disconnect(self._on_history_changed)
        self._doc = doc
        if doc is not None:
            doc.layer_changed.connect(self._on_layer_changed)
            doc.changed.connect(self._on_changed)
            doc.image_replaced.connect(self._on_image_replaced)
            doc.undo_stack.indexChanged.connect(self._on_history_changed)
        self._on_image_replaced()

    def _on_image_replaced(self) -> None:
        self._tool.cancel()
        doc = self._doc
        self._compare_layers = []
        if doc is None or doc.is_empty():
            self._photo = self._mask_layer = self._edge_layer = None
        else:
            self._photo = PhotoLayer(doc.image)
            self._mask_layer = MaskLayer(doc.mask, self._mask_color)
            self._edge_layer = EdgeLayer(doc) if self._visible["edges"] else None
        self._fit_mode = True
        self._apply_fit()
        self.update()

    def _on_layer_changed(self, group: str, rect: QRect) -> None:
        if self._photo is None:
            return
        if group in ("image", "all"):
            self._photo.update(rect)
        if group in ("mask", "all") and self._mask_layer is not None:
            self._mask_layer.update(rect)
        if self._edge_layer is not None:
            if group in ("image", "all"):
                self._edge_layer.image_changed(rect)
            self._edge_layer.recompute(rect)

    def _on_changed(self, rect: QRect) -> None:
        self.update(self.widget_rect(rect))

    def _on_history_changed(self, _index: int) -> None:
        if self._compare:
            self._build_compare()
            self.update()

    # ---------------------------------------------------------------- mapping
    def _dpr(self) -> float:
        return float(self.devicePixelRatioF())

    def _scale(self) -> float:
        """Logical widget pixels per document pixel."""
        return self._zoom / self._dpr()

    def transform(self) -> QTransform:
        """Document -> widget (logical pixels)."""
        s = self._scale()
        return QTransform(s, 0.0, 0.0, s, self._offset.x(), self._offset.y())

    def map_to_document(self, point: QPointF) -> QPointF:
        """Widget point (logical px) to document coordinates."""
        s = self._scale()
        return QPointF((point.x() - self._offset.x()) / s, (point.y() - self._offset.y()) / s)

    def map_from_document(self, point: QPointF) -> QPointF:
        """Document point to widget coordinates (logical px)."""
        s = self._scale()
        return QPointF(point.x() * s + self._offset.x(), point.y() * s + self._offset.y())

    def widget_rect(self, doc_rect: QRect | QRectF) -> QRect:
        """The widget rect covering a document rect, padded by 2 px for filtering and rounding."""
        mapped = self.transform().mapRect(QRectF(doc_rect))
        return mapped.toAlignedRect().adjusted(-2, -2, 2, 2)

    def document_rect(self, widget_rect: QRect | QRectF) -> QRectF:
        """The document rect under a widget rect."""
        inverse, _ok = self.transform().inverted()
        return inverse.mapRect(QRectF(widget_rect))

    # ------------------------------------------------------------------- zoom
    def zoom(self) -> float:
        """Device pixels per photo pixel (1.0 = 100%)."""
        return self._zoom

    def offset(self) -> QPointF:
        """Widget position (logical px) of the photo's top-left corner."""
        return QPointF(self._offset)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the document point under ``anchor`` (widget px; default: centre) where it is."""
        zoom = min(MAX_ZOOM, max(self._min_zoom(), float(zoom)))
        if anchor is None:
            anchor = QPointF(self.width() / 2.0, self.height() / 2.0)
        fixed = self.map_to_document(anchor)
        self._zoom = zoom
        s = self._scale()
        self._offset = QPointF(anchor.x() - fixed.x() * s, anchor.y() - fixed.y() * s)
        self._fit_mode = False
        self._view_changed()

    def _min_zoom(self) -> float:
        return min(MIN_ZOOM, self._fit_zoom())

    def _fit_zoom(self) -> float:
        if self._doc is None or self._doc.is_empty() or self.width() <= 0 or self.height() <= 0:
            return 1.0
        margin = 8
        sx = max(1, self.width() - 2 * margin) / self._doc.width
        sy = max(1, self.height() - 2 * margin) / self._doc.height
        return min(sx, sy) * self._dpr()

    def zoom_in(self, anchor: QPointF | None = None) -> None:
        """One step closer (about ``anchor`` or the pointer if it is over the canvas, else the centre)."""
        self.set_zoom(self._zoom * ZOOM_STEP, anchor if anchor is not None else self._cursor_pos)

    def zoom_out(self, anchor: QPointF | None = None) -> None:
        """One step further."""
        self.set_zoom(self._zoom / ZOOM_STEP, anchor if anchor is not None else self._cursor_pos)

    def fit(self) -> None:
        """Show the whole photo, centred; stays fitted when the canvas is resized until the next zoom or pan."""
        self._fit_mode = True
        self._apply_fit()

    def actual_size(self) -> None:
        """100%: one photo pixel per device pixel, about the centre."""
        self.set_zoom(1.0)

    def is_fit(self) -> bool:
        """The view is in fit mode."""
        return self._fit_mode

    def _apply_fit(self) -> None:
        self._zoom = self._fit_zoom()
        if self._doc is not None and not self._doc.is_empty():
            s = self._scale()
            self._offset = QPointF((self.width() - self._doc.width * s) / 2.0,
                                   (self.height() - self._doc.height * s) / 2.0)
        self._view_changed()

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the view by a widget-pixel delta."""
        if dx == 0 and dy == 0:
            return
        self._offset = QPointF(self._offset.x() + dx, self._offset.y() + dy)
        self._fit_mode = False
        self._view_changed()

    def set_view(self, zoom: float, offset: QPointF) -> None:
        """Set zoom and offset directly (tests, restoring a view)."""
        self._zoom = min(MAX_ZOOM, max(self._min_zoom(), float(zoom)))
        self._offset = QPointF(offset)
        self._fit_mode = False
        self._view_changed()

    def _view_changed(self) -> None:
        self.update()
        self.zoom_changed.emit(self._zoom)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self._apply_fit()

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps == 0 or self._doc is None or self._doc.is_empty():
            event.ignore()
            return
        self.set_zoom(self._zoom * (ZOOM_STEP ** steps), event.position())
        event.accept()

    # ------------------------------------------------------------- tools, brush
    def tool(self) -> str:
        """Name of the current tool."""
        return self._tool.name

    def set_tool(self, name: str) -> None:
        """Switch tool: ``brush``, ``eraser``, ``rectangle``, ``edge_pen``, ``edge_eraser`` or ``pan``.

        Edge tools show the edge layer. ``brush_size`` follows the tool: brush and eraser share one size,
        the edge pen and edge eraser another.
        """
        if name not in TOOL_NAMES:
            raise ValueError(f"unknown tool {name!r}; expected one of {', '.join(TOOL_NAMES)}")
        if name == self._tool.name:
            return
        old_size = self.brush_size
        self._tool.commit()  # a tool key pressed mid-drag keeps what was painted (one undo step)
        self._tool = make_tool(self, name)
        self.setCursor(self._tool.cursor)
        if name.startswith("edge"):
            self.set_layer_visible("edges", True)
        self.tool_changed.emit(name)
        if self.brush_size != old_size:
            self.brush_size_changed.emit(self.brush_size)
        self.update()

    @property
    def brush_size(self) -> int:
        """Diameter in photo pixels of the current tool's brush."""
        return self._sizes[self._tool.size_group]

    @brush_size.setter
    def brush_size(self, size: int) -> None:
        self.set_brush_size(size)

    def set_brush_size(self, size: int) -> None:
        """Set the current tool's brush diameter (photo pixels, clamped to 1..1000)."""
        size = _clamp_brush(size)
        group = self._tool.size_group
        if size == self._sizes[group]:
            return
        old = self._brush_outline_rect()
        self._sizes[group] = size
        self.update(old.united(self._brush_outline_rect()))
        self.brush_size_changed.emit(size)

    def set_brush_size_for(self, group: str, size: int) -> None:
        """Set the brush size of a tool group (``brush``: brush and eraser; ``edge``: the edge tools)."""
        if group == self._tool.size_group:
            self.set_brush_size(size)
        else:
            self._sizes[group] = _clamp_brush(size)

    def step_brush_size(self, direction: int) -> None:
        """``[`` / ``]``: shrink or grow the brush by about 15% (at least 1 px)."""
        size = self.brush_size
        step = max(1, round(size * 0.15))
        self.set_brush_size(size + step if direction > 0 else size - step)

    # ----------------------------------------------------------------- layers
    def layer_visible(self, name: str) -> bool:
        """Whether the ``mask`` or ``edges`` layer is shown."""
        return self._visible[name]

    def set_layer_visible(self, name: str, visible: bool) -> None:
        """Show or hide the ``mask`` or ``edges`` layer."""
        if name not in self._visible:
            raise ValueError(f"unknown layer {name!r}; expected 'mask' or 'edges'")
        if self._visible[name] == visible:
            return
        self._visible[name] = visible
        if name == "edges":
            doc = self._doc
            self._edge_layer = EdgeLayer(doc) if visible and doc is not None and not doc.is_empty() else None
        self.layer_visibility_changed.emit(name, visible)
        self.update()

    def set_mask_visible(self, visible: bool) -> None:
        """Toggle the mask overlay."""
        self.set_layer_visible("mask", visible)

    def set_edges_visible(self, visible: bool) -> None:
        """Toggle the edge layer (known, predicted, sketched edges)."""
        self.set_layer_visible("edges", visible)

    def set_mask_color(self, color: QColor) -> None:
        """Overlay colour of the mask, alpha included."""
        self._mask_color = QColor(color)
        if self._mask_layer is not None:
            self._mask_layer.set_color(self._mask_color)
        self.update()

    def mask_color(self) -> QColor:
        """Overlay colour of the mask."""
        return QColor(self._mask_color)

    def set_compare(self, on: bool) -> None:
        """Show the photo as it was before the last fill (``document.image_before_last_fill()``) instead."""
        on = bool(on)
        if on == self._compare:
            return
        self._compare = on
        if on:
            self._build_compare()
        else:
            self._compare_layers = []
        self.compare_changed.emit(on)
        self.update()

    def is_comparing(self) -> bool:
        """Compare mode is on."""
        return self._compare

    def _build_compare(self) -> None:
        patches = self._doc.last_fill_patches() if self._doc is not None else []
        self._compare_layers = [PhotoLayer(old, origin=(rect.x(), rect.y())) for rect, old in patches]

    # ---------------------------------------------------------------- painting
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        for rect in event.region():
            painter.fillRect(rect, BACKGROUND)
        if self._photo is not None:
            self._paint_document(painter, event)
        painter.resetTransform()
        self._paint_decorations(painter)
        painter.end()

    def _paint_document(self, painter: QPainter, event: QPaintEvent) -> None:
        doc_bounds = QRectF(0, 0, self._doc.width, self._doc.height)
        device_scale = self._zoom
        painter.setTransform(self.transform())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, device_scale < 1.0)
        for rect in event.region():
            area = self.document_rect(rect).intersected(doc_bounds)
            if area.isEmpty():
                continue
            self._photo.draw(painter, area, device_scale)
            if self._compare:
                for layer in self._compare_layers:
                    layer.draw(painter, area, device_scale)
            if self._visible["mask"] and self._mask_layer is not None:
                self._mask_layer.draw(painter, area, device_scale)
            if self._visible["edges"] and self._edge_layer is not None:
                self._edge_layer.draw(painter, area, device_scale)

    COMPARE_HINT = "Original (release Tab for the fill)"

    def _paint_decorations(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self._compare:
            metrics = painter.fontMetrics()
            box = QRectF(metrics.boundingRect(self.COMPARE_HINT)).adjusted(-8, -5, 8, 5)
            box.moveTopRight(QPointF(self.width() - 10, 10))  # top right: out of the way of a left-top photo
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 190))
            painter.drawRoundedRect(box, 4, 4)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.COMPARE_HINT)
        preview = self._tool.preview_rect()
        if preview is not None:
            r = self.transform().mapRect(preview)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor(0, 0, 0, 200), 1.0))
            painter.drawRect(r)
            painter.setPen(QPen(QColor(255, 255, 255, 230), 1.0, Qt.PenStyle.DashLine))
            painter.drawRect(r)
        self._preview = preview
        if self._brush_visible():
            center, radius = self._cursor_pos, self.brush_size / 2.0 * self._scale()
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor(0, 0, 0, 200), 1.0))
            painter.drawEllipse(center, radius + 1.0, radius + 1.0)
            painter.setPen(QPen(QColor(255, 255, 255, 230), 1.0))
            painter.drawEllipse(center, radius, radius)

    def _brush_visible(self) -> bool:
        return (self._tool.shows_brush and self._cursor_pos is not None and self._pan_last is None
                and not self._space and self._photo is not None)

    def _brush_outline_rect(self) -> QRect:
        if self._cursor_pos is None:
            return QRect()
        r = self.brush_size / 2.0 * self._scale() + 3.0
        c = self._cursor_pos
        return QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r).toAlignedRect()

    def _update_preview(self) -> None:
        new = self._tool.preview_rect()
        for rect in (self._preview, new):
            if rect is not None:
                self.update(self.widget_rect(rect))

    # ------------------------------------------------------------------ input
    def _tool_event(self, event: QMouseEvent) -> ToolEvent:
        pos = event.position()
        return ToolEvent(self.map_to_document(pos), QPointF(pos), event.modifiers())

    def _move_cursor(self, pos: QPointF | None) -> None:
        old = self._brush_outline_rect()
        self._cursor_pos = QPointF(pos) if pos is not None else None
        if self._tool.shows_brush:
            self.update(old)
            self.update(self._brush_outline_rect())
        if pos is not None and self._doc is not None:
            p = self.map_to_document(pos)
            x, y = math.floor(p.x()), math.floor(p.y())
            inside = 0 <= x < self._doc.width and 0 <= y < self._doc.height
            self.cursor_position_changed.emit(x if inside else -1, y if inside else -1)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._pan_last = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if button == Qt.MouseButton.LeftButton and not self._tool.active:
            self._tool.press(self._tool_event(event))
            self._update_preview()
            event.accept()
            return
        event.ignore()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_last is not None:
            delta = pos - self._pan_last
            self._pan_last = pos
            self.pan_by(delta.x(), delta.y())
        elif self._tool.active:
            self._tool.move(self._tool_event(event))
            self._update_preview()
        self._move_cursor(pos)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if self._pan_last is not None and button in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_last = None
            self.setCursor(Qt.CursorShape.OpenHandCursor if self._space else self._tool.cursor)
            self.update(self._brush_outline_rect())
            event.accept()
            return
        if button == Qt.MouseButton.LeftButton and self._tool.active:
            self._tool.release(self._tool_event(event))
            self._update_preview()
            event.accept()
            return
        event.ignore()

    def enterEvent(self, event) -> None:
        self._move_cursor(event.position())
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:
        self._move_cursor(None)
        super().leaveEvent(event)

    def cancel_interaction(self) -> None:
        """Abandon a drag in progress (the stroke's dabs are removed, no undo step is left)."""
        self._tool.cancel()
        self._pan_last = None
        self._update_preview()

    def event(self, event) -> bool:
        # Tab toggles focus by default; held on the canvas it shows the photo before the last fill.
        # Shift+Tab arrives as Backtab (Shift held for a square rectangle, say): it compares too.
        if event.type() in (event.Type.KeyPress, event.Type.KeyRelease) and \
                event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            if not event.isAutoRepeat():
                self.set_compare(event.type() == event.Type.KeyPress)
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        key, mods = event.key(), event.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            if self._pan_last is None:
                self.setCursor(Qt.CursorShape.OpenHandCursor)
            self.update(self._brush_outline_rect())
        elif key == Qt.Key.Key_BracketLeft:
            self.step_brush_size(-1)
        elif key == Qt.Key.Key_BracketRight:
            self.step_brush_size(+1)
        elif ctrl and key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif ctrl and key == Qt.Key.Key_Minus:
            self.zoom_out()
        elif ctrl and key == Qt.Key.Key_0:
            self.fit()
        elif ctrl and key == Qt.Key.Key_1:
            self.actual_size()
        elif key == Qt.Key.Key_Escape:
            self.cancel_interaction()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            if self._pan_last is None:
                self.setCursor(self._tool.cursor)
            self.update(self._brush_outline_rect())
            event.accept()
            return
        super().keyReleaseEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(800, 600)
