"""Bitmap operations on bool layers (mask, sketch): brush segments, rectangles, grow/shrink.

Pure numpy/cv2, no Qt. Boxes are :class:`engine.box.Box` (``x0, y0, x1, y1``, exclusive ends) in document
pixels, the same as ``FillResult.regions``; bounding boxes come from ``engine.box.bbox_of``. Document
coordinates are continuous: pixel (i, j) covers ``[j, j + 1) x [i, i + 1)`` and its centre is at
``(j + 0.5, i + 0.5)``.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from engine.box import Box, bbox_of


def capsule(p0: tuple[float, float], p1: tuple[float, float], radius: float, height: int, width: int):
    """Pixels covered by a round brush of ``radius`` dragged from ``p0`` to ``p1`` (document coordinates).

    The brush is swept continuously along the segment (a capsule), so fast mouse moves leave no gaps
    between dabs. A pixel is covered when its centre lies within ``radius`` of the segment; the pixels
    holding the two end points are always covered, so a 1-px brush still paints. Returns ``(box,
    footprint)`` with ``footprint`` a bool array of the box's size, or None when outside the image.
    """
    r = max(float(radius), 0.5)
    (ax, ay), (bx, by) = (float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1]))
    box = Box(
        int(np.floor(min(ax, bx) - r)),
        int(np.floor(min(ay, by) - r)),
        int(np.floor(max(ax, bx) + r)) + 1,
        int(np.floor(max(ay, by) + r)) + 1,
    )
    clipped = box.clip((height, width))
    if clipped is None:
        return None
    x0, y0, x1, y1 = clipped
    px = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, :]
    py = (np.arange(y0, y1, dtype=np.float32) + 0.5)[:, None]
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 > 1e-12:
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0)
        ex, ey = px - (ax + t * dx), py - (ay + t * dy)
    else:
        ex, ey = px - ax, py - ay
    footprint = ex * ex + ey * ey <= r * r
    for qx, qy in ((ax, ay), (bx, by)):
        i, j = int(np.floor(qy)) - y0, int(np.floor(qx)) - x0
        if 0 <= i < footprint.shape[0] and 0 <= j < footprint.shape[1]:
            footprint[i, j] = True
    return clipped, footprint


def rectangle_box(p0: tuple[float, float], p1: tuple[float, float], height: int, width: int,
                  square: bool = False) -> Box | None:
    """Pixel box spanned by two document points (any order), clipped to the image.

    With ``square`` the shorter side grows to the longer one, away from ``p0`` towards ``p1``. Every
    pixel the rectangle touches is included, so a click-sized drag still covers one pixel.
    """
    ax, ay = float(p0[0]), float(p0[1])
    bx, by = float(p1[0]), float(p1[1])
    if square:
        side = max(abs(bx - ax), abs(by - ay))
        bx = ax + side * (1 if bx >= ax else -1)
        by = ay + side * (1 if by >= ay else -1)
    x0, x1 = sorted((ax, bx))
    y0, y1 = sorted((ay, by))
    box = Box(int(np.floor(x0)), int(np.floor(y0)), max(int(np.ceil(x1)), int(np.floor(x0)) + 1),
              max(int(np.ceil(y1)), int(np.floor(y0)) + 1))
    return box.clip((height, width))


@functools.lru_cache(maxsize=64)
def _ellipse_kernel(n: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * n + 1, 2 * n + 1))


def _morph_region(mask: np.ndarray, n: int, grow: bool) -> tuple[Box, np.ndarray] | None:
    """Grow (dilate) or shrink (erode) by ``n`` px, computed on the mask's bounding box plus ``n`` only."""
    if n <= 0:
        return None
    box = bbox_of(mask)
    if box is None:
        return None
    # The n-px margin around the box is empty mask (or beyond the photo's edge, where the crop stops).
    box = box.grow(n, mask.shape)
    crop = np.ascontiguousarray(mask[box.slices()], dtype=np.uint8)
    kernel = _ellipse_kernel(int(n))
    # Beyond the crop lies either that empty margin's outside (irrelevant: more than n px from any hole) or
    # the photo's edge: dilation never invents holes there and erosion never eats a hole that touches it.
    if grow:
        out = cv2.dilate(crop, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    else:
        out = cv2.erode(crop, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=1) > 0
    return box, out


def grow_region(mask: np.ndarray, n: int) -> tuple[Box, np.ndarray] | None:
    """The mask dilated by ``n`` px (elliptical kernel) as ``(box, new values of box)``; None if no change."""
    return _morph_region(mask, n, grow=True)


def shrink_region(mask: np.ndarray, n: int) -> tuple[Box, np.ndarray] | None:
    """The mask eroded by ``n`` px (elliptical kernel) as ``(box, new values of box)``; None if no change.

    The photo's border does not erode a hole that touches it (nothing is known beyond it).
    """
    return _morph_region(mask, n, grow=False)


def _apply_region(mask: np.ndarray, region: tuple[Box, np.ndarray] | None) -> np.ndarray:
    out = mask.astype(bool, copy=True)
    if region is not None:
        box, values = region
        out[box.slices()] = values
    return out


def grow(mask: np.ndarray, n: int) -> np.ndarray:
    """A new mask dilated by ``n`` px."""
    return _apply_region(mask, grow_region(mask, n))


def shrink(mask: np.ndarray, n: int) -> np.ndarray:
    """A new mask eroded by ``n`` px."""
    return _apply_region(mask, shrink_region(mask, n))


def invert(mask: np.ndarray) -> np.ndarray:
    """A new mask with hole and known swapped."""
    return ~mask.astype(bool)


def clear(mask: np.ndarray) -> np.ndarray:
    """A new, empty mask of the same size."""
    return np.zeros(mask.shape, dtype=bool)
