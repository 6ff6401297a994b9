"""A small line plot of training loss curves, drawn with QPainter from the trainer's JSONL records.

Each ``train`` record (``{"kind": "train", "step": N, "losses": {"image/g_l1": 0.12, ...}}``) adds one point
to every curve it names; records of a step already seen replace the later points (a resumed run). The y axis
is logarithmic when every value is positive and they span more than a factor of 20, else linear. Curves of
:data:`SMOOTH_FROM` points or more (batch-1 losses are noisy) are drawn faintly as they are, with an
exponential moving average on top (TensorBoard's smoothing, bias-corrected).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 12, 10, 26
SMOOTH_FROM = 30
SMOOTHING = 0.85


def smoothed(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Bias-corrected exponential moving average (the first value is not pulled towards zero)."""
    out, average, norm = [], 0.0, 0.0
    for value in values:
        average = weight * average + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        out.append(average / norm)
    return out


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    return [low + (high - low) * i / count for i in range(count + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.1e}"
    return f"{value:.3g}"


class LossPlot(QWidget):
    """Loss curves of a training run; feed it records with :meth:`add_record` or :meth:`set_records`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._series: dict[str, list[tuple[int, float]]] = {}
        self._colors: dict[str, QColor] = {}
        self.setMinimumSize(260, 150)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setToolTip("Training losses per step (from the run's metrics.jsonl)")

    def sizeHint(self) -> QSize:
        return QSize(420, 220)

    # ------------------------------------------------------------------ data
    def clear(self) -> None:
        self._series.clear()
        self._colors.clear()
        self.update()

    def set_records(self, records: Iterable[dict[str, Any]]) -> None:
        self._series.clear()
        for record in records:
            self._add(record)
        self.update()

    def add_record(self, record: dict[str, Any]) -> None:
        """Add a record (anything but ``train`` records is ignored)."""
        if self._add(record):
            self.update()

    def _add(self, record: dict[str, Any]) -> bool:
        if record.get("kind") != "train" or not isinstance(record.get("losses"), dict):
            return False
        try:
            step = int(record["step"])
        except (KeyError, TypeError, ValueError):
            return False
        added = False
        for name, value in record["losses"].items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                continue
            points = self._series.setdefault(str(name), [])
            while points and points[-1][0] >= step:
                points.pop()  # a resumed run rewrote these steps
            points.append((step, float(value)))
            if name not in self._colors:
                self._colors[name] = QColor(PALETTE[len(self._colors) % len(PALETTE)])
            added = True
        return added

    def series(self) -> dict[str, list[tuple[int, float]]]:
        """The curves: name -> [(step, value), ...]."""
        return {k: list(v) for k, v in self._series.items()}

    def color(self, name: str) -> QColor:
        return QColor(self._colors.get(name, QColor(PALETTE[0])))

    def uses_log_scale(self) -> bool:
        values = [v for points in self._series.values() for _, v in points]
        return bool(values) and min(values) > 0 and max(values) / min(values) > 20

    # ------------------------------------------------------------------ drawing
    def plot_rect(self) -> QRectF:
        """Where the curves are drawn, in widget coordinates."""
        return QRectF(MARGIN_LEFT, MARGIN_TOP, max(1, self.width() - MARGIN_LEFT - MARGIN_RIGHT),
                      max(1, self.height() - MARGIN_TOP - MARGIN_BOTTOM))

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing, True)
        painter.fillRect(self.rect(), self.palette().base())
        rect = self.plot_rect()
        text_color = self.palette().text().color()
        font = QFont(painter.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        points = [p for series in self._series.values() for p in series]
        if not points:
            painter.setPen(text_color)
            painter.drawText(self.rect(), Qt.AlignCenter, "Loss curves appear here once training runs.")
            painter.end()
            return
        log = self.uses_log_scale()

        def ty(value: float) -> float:
            return math.log10(value) if log else value

        steps = [s for s, _ in points]
        values = [ty(v) for _, v in points]
        x0, x1 = min(steps), max(steps)
        y0, y1 = min(values), max(values)
        if x1 == x0:
            x0, x1 = x0 - 1, x1 + 1
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad

        def to_xy(step: float, value: float) -> QPointF:
            return QPointF(rect.left() + (step - x0) / (x1 - x0) * rect.width(),
                           rect.bottom() - (ty(value) - y0) / (y1 - y0) * rect.height())

        grid = QColor(text_color)
        grid.setAlpha(40)
        for tick in _ticks(y0, y1):
            y = rect.bottom() - (tick - y0) / (y1 - y0) * rect.height()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
            painter.setPen(text_color)
            painter.drawText(QRectF(0, y - 8, MARGIN_LEFT - 4, 16), Qt.AlignRight | Qt.AlignVCenter,
                             _fmt(10 ** tick if log else tick))
        painter.setPen(QPen(text_color, 1))
        painter.drawRect(rect)
        painter.drawText(QRectF(rect.left(), rect.bottom() + 4, rect.width() / 2, 18), Qt.AlignLeft,
                         f"step {int(min(steps))}")
        painter.drawText(QRectF(rect.center().x(), rect.bottom() + 4, rect.width() / 2, 18), Qt.AlignRight,
                         f"step {int(max(steps))}" + ("  (log scale)" if log else ""))
        painter.save()
        painter.setClipRect(rect.adjusted(-1, -1, 1, 1))
        painter.setBrush(Qt.NoBrush)
        for name, series in self._series.items():
            if not series:
                continue
            color = self._colors[name]
            if len(series) == 1:
                painter.setPen(QPen(color, 2))
                painter.drawEllipse(to_xy(*series[0]), 2.5, 2.5)
                continue
            curves = [([v for _, v in series], QPen(color, 2))]
            if len(series) >= SMOOTH_FROM:
                faint = QColor(color)
                faint.setAlpha(70)
                curves = [(curves[0][0], QPen(faint, 1)), (smoothed(curves[0][0]), QPen(color, 2))]
            for values, pen in curves:
                path = QPainterPath(to_xy(series[0][0], values[0]))
                for (step, _), value in zip(series[1:], values[1:]):
                    path.lineTo(to_xy(step, value))
                painter.setPen(pen)
                painter.drawPath(path)
        painter.restore()
        # Legend: top right, one line per curve with its latest value.
        metrics = painter.fontMetrics()
        y = rect.top() + 4
        for name, series in self._series.items():
            label = f"{name.split('/')[-1]} {_fmt(series[-1][1])}"
            width = metrics.horizontalAdvance(label) + 18
            box = QRectF(rect.right() - width - 4, y, width, metrics.height())
            painter.fillRect(box, self.palette().base())
            painter.fillRect(QRectF(box.left() + 2, box.center().y() - 1.5, 10, 3), self._colors[name])
            painter.setPen(text_color)
            painter.drawText(box.adjusted(16, 0, 0, 0), Qt.AlignLeft | Qt.AlignVCenter, label)
            y += metrics.height() + 1
        painter.end()
