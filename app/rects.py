"""``QRect`` <-> :class:`engine.box.Box`, the one place the two conventions meet.

A ``QRect`` is a corner and a size, and its ``right()``/``bottom()`` are *inclusive* (``x + width - 1``); a
``Box`` has exclusive ends. Convert through these two functions, never with ``right()``.
"""

from __future__ import annotations

from PySide6.QtCore import QRect

from engine.box import Box


def box_to_rect(box: Box) -> QRect:
    """``(x0, y0, x1, y1)`` (exclusive ends) to a QRect."""
    x0, y0, x1, y1 = box
    return QRect(x0, y0, x1 - x0, y1 - y0)


def rect_to_box(rect: QRect) -> Box:
    """A QRect to the box of the pixels it covers."""
    return Box.from_xywh(rect.x(), rect.y(), rect.width(), rect.height())
