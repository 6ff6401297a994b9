"""Pixel boxes: the one box type of the project, and the operations on it.

Convention: ``Box(x0, y0, x1, y1)`` in image pixels, ``x`` the column and ``y`` the row, **ends exclusive**:
a box holds the pixels ``image[y0:y1, x0:x1]`` (``box.slices()``), its width is ``x1 - x0``, and two boxes
that only touch (``a.x1 == b.x0``) do not overlap. ``FillResult.regions``, ``engine.regions.Region`` and the
editor's history, layers and views all use it.

A ``Box`` is a ``NamedTuple``: it unpacks (``x0, y0, x1, y1 = box``), indexes and compares equal to the plain
4-tuple it replaced, so code and tests holding tuples keep working. Operations that need the image's size take
a numpy ``shape`` (height first, as ``array.shape``), never loose width and height arguments whose order could
be swapped. No Qt here: ``app.rects`` converts to and from ``QRect`` (whose ``right()`` is inclusive).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, TypeVar

import cv2
import numpy as np

T = TypeVar("T")


class Box(NamedTuple):
    """``(x0, y0, x1, y1)``: columns ``x0 <= x < x1``, rows ``y0 <= y < y1`` (see the module docstring)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def of_shape(cls, shape: Sequence[int]) -> Box:
        """The whole image of a numpy ``shape`` (height, width, ...)."""
        return cls(0, 0, int(shape[1]), int(shape[0]))

    @classmethod
    def from_xywh(cls, x: int, y: int, width: int, height: int) -> Box:
        """From a corner and a size (``QRect``, ``cv2`` component stats)."""
        return cls(x, y, x + width, y + height)

    @classmethod
    def bounding(cls, boxes: Iterable[Box | None]) -> Box | None:
        """Smallest box holding all the given boxes (Nones skipped); None when there are none."""
        out: Box | None = None
        for box in boxes:
            if box is not None:
                out = box.union(out)
        return out

    @property
    def width(self) -> int:
        """Columns covered (``x1 - x0``)."""
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        """Rows covered (``y1 - y0``)."""
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        """Pixels covered (0 for an empty box)."""
        return max(0, self.width) * max(0, self.height)

    @property
    def empty(self) -> bool:
        """True when the box covers no pixel."""
        return self.x1 <= self.x0 or self.y1 <= self.y0

    def slices(self) -> tuple[slice, slice]:
        """Row and column slices, for numpy indexing: ``array[box.slices()]`` is ``array[y0:y1, x0:x1]``."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def offset(self, dx: int, dy: int) -> Box:
        """The box moved by ``dx`` columns and ``dy`` rows."""
        return Box(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    def grow(self, margin: int, shape: Sequence[int] | None = None) -> Box:
        """``margin`` px more on every side (less for a negative one); clamped to the image of ``shape`` if given."""
        x0, y0, x1, y1 = self.x0 - margin, self.y0 - margin, self.x1 + margin, self.y1 + margin
        if shape is None:
            return Box(x0, y0, x1, y1)
        return Box(max(0, x0), max(0, y0), min(int(shape[1]), x1), min(int(shape[0]), y1))

    def clip(self, shape: Sequence[int]) -> Box | None:
        """The part inside the image of a numpy ``shape`` (height, width, ...); None when nothing is left."""
        return self.intersection(Box.of_shape(shape))

    def union(self, other: Box | None) -> Box:
        """Smallest box holding both (``other`` may be None)."""
        if other is None:
            return self
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def intersection(self, other: Box) -> Box | None:
        """The pixels both hold; None when they do not overlap."""
        box = Box(max(self.x0, other.x0), max(self.y0, other.y0), min(self.x1, other.x1), min(self.y1, other.y1))
        return None if box.empty else box

    def overlaps(self, other: Box, gap: int = 0) -> bool:
        """True when the boxes share a pixel, or with ``gap`` come closer than ``gap`` px (touching is not overlap)."""
        return (self.x0 < other.x1 + gap and other.x0 < self.x1 + gap
                and self.y0 < other.y1 + gap and other.y0 < self.y1 + gap)

    def contains(self, other: Box) -> bool:
        """True when ``other`` lies inside this box (edges included)."""
        return self.x0 <= other.x0 and self.y0 <= other.y0 and other.x1 <= self.x1 and other.y1 <= self.y1

    def subtract(self, cut: Box) -> list[Box]:
        """This box minus ``cut`` as at most four disjoint boxes: full-width bands above and below, then the
        pieces left and right of it."""
        if not self.overlaps(cut):
            return [self]
        x0, y0, x1, y1 = self
        cx0, cy0, cx1, cy1 = cut
        out = []
        if cy0 > y0:
            out.append(Box(x0, y0, x1, cy0))
        if cy1 < y1:
            out.append(Box(x0, cy1, x1, y1))
        my0, my1 = max(y0, cy0), min(y1, cy1)
        if cx0 > x0:
            out.append(Box(x0, my0, cx0, my1))
        if cx1 < x1:
            out.append(Box(cx1, my0, x1, my1))
        return out


def bbox_of(array: np.ndarray) -> Box | None:
    """Bounding box of the nonzero pixels of a 2-D array (or of any channel of an H x W x C one); None if all zero.

    Uses ``cv2.boundingRect`` on the bytes: for uint8 and bool it is several times faster than numpy
    reductions, and it stops early on a full mask.
    """
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    if array.dtype != np.uint8:
        array = (array != 0).view(np.uint8)
    if array.ndim == 3:
        h, w, c = array.shape
        flat = np.ascontiguousarray(array).reshape(h, w * c)
    else:
        c, flat = 1, np.ascontiguousarray(array)
    if flat.size == 0:
        return None
    x, y, bw, bh = cv2.boundingRect(flat)
    if bw == 0 or bh == 0:
        return None
    return Box(x // c, y, -(-(x + bw) // c), y + bh)


def diff_box(old: np.ndarray, new: np.ndarray) -> Box | None:
    """Bounding box of the pixels where two same-shaped arrays differ; None when equal."""
    if old.shape != new.shape:
        raise ValueError(f"shapes differ: {old.shape} vs {new.shape}")
    if old.dtype == np.bool_ and new.dtype == np.bool_:
        return bbox_of(np.not_equal(old, new))
    if old.dtype == np.uint8 and new.dtype == np.uint8:
        return bbox_of(cv2.absdiff(np.ascontiguousarray(old), np.ascontiguousarray(new)))
    return bbox_of(old != new)


def merge_overlapping(items: list[T], box_of: Callable[[T], Box], join: Callable[[T, T], T]) -> list[T]:
    """Replace any two items whose boxes overlap by ``join(a, b)`` until none overlap; order of first appearance."""
    merged = list(items)
    changed = True
    while changed:
        changed = False
        out: list[T] = []
        for item in merged:
            for i, other in enumerate(out):
                if box_of(item).overlaps(box_of(other)):
                    out[i] = join(item, other)
                    changed = True
                    break
            else:
                out.append(item)
        merged = out
    return merged


def merge_boxes(boxes: Iterable[Box]) -> list[Box]:
    """Merge boxes that overlap (until none do), so no pixel is covered twice; order of first appearance."""
    return merge_overlapping([Box(*box) for box in boxes], lambda box: box, Box.union)
