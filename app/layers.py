"""Numpy layers as QImages for drawing, with downscaled copies for zoomed-out views.

Full-resolution images wrap the document's arrays directly (no copy: a 24 MP photo is not duplicated,
and in-place edits show at once); the wrappers hold a reference to their array. The photo is
``Format_RGB888``; the mask and the edge layer are ``Format_Indexed8`` whose colour table gives each
value its colour, so a mask stroke needs no conversion at all before it can be drawn.

Zoomed out, drawing a 24 MP image with bilinear sampling both aliases (moire, 1-px edges vanish) and
reads far more memory than it shows, so each layer keeps a pyramid (1/2, 1/4, ...): area averages for the
photo and the mask's coverage, maximum (highest priority) for the edge codes so thin edges stay visible.
Pyramids update only the dirty box, aligned to each level's 2^k grid, so updates are exact and local.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF
from PySide6.QtGui import QColor, QImage, QPainter, qRgba

from app.rects import rect_to_box
from engine.box import Box
from engine.edges import canny_edges, to_gray

DEFAULT_MASK_COLOR = QColor(255, 40, 90, 120)
EDGE_NONE, EDGE_KNOWN, EDGE_PREDICTED, EDGE_DRAWN, EDGE_ERASED = 0, 1, 2, 3, 4
"""Edge-layer codes; a higher code wins where several apply (and survives max-pooling)."""
DEFAULT_EDGE_COLORS = {
    EDGE_KNOWN: QColor(80, 180, 255, 200),  # edges of the known area
    EDGE_PREDICTED: QColor(255, 210, 0, 230),  # completed by the edge generator inside the hole
    EDGE_DRAWN: QColor(60, 255, 90, 255),  # drawn by the user
    EDGE_ERASED: QColor(0, 255, 235, 255),  # marked "no edge" by the user: cyan, the red mask's complement
}


def rgb888_image(rgb: np.ndarray) -> QImage:
    """A QImage over an H x W x 3 uint8 C-contiguous array (no copy; the image keeps the array alive)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or not rgb.flags.c_contiguous:
        raise ValueError("rgb888_image wants a C-contiguous H x W x 3 uint8 array")
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, int(rgb.strides[0]), QImage.Format.Format_RGB888)


def indexed8_image(codes: np.ndarray, table: list[int]) -> QImage:
    """A QImage over an H x W uint8 (or bool) C-contiguous array with a colour table (no copy)."""
    if codes.dtype == np.bool_:
        codes = codes.view(np.uint8)
    if codes.ndim != 2 or codes.dtype != np.uint8 or not codes.flags.c_contiguous:
        raise ValueError("indexed8_image wants a C-contiguous H x W uint8 array")
    h, w = codes.shape
    image = QImage(codes.data, w, h, int(codes.strides[0]), QImage.Format.Format_Indexed8)
    image.setColorTable(table)
    return image


def rgba(color: QColor, alpha_scale: float = 1.0) -> int:
    """``qRgba`` of a colour with its alpha scaled."""
    return qRgba(color.red(), color.green(), color.blue(), round(color.alpha() * alpha_scale))


REDUCE_ROWS = 64  # output rows per chunk: the uint16 sums stay in cache (10x faster than one whole-array pass)


def _reduce_mean(src: np.ndarray) -> np.ndarray:
    """Exact 2x2 mean, rounded half up. (cv2.resize INTER_AREA is exact for a factor of 2 but rounds 0.5
    differently per platform.)"""
    h, w = src.shape[0] // 2, src.shape[1] // 2
    out = np.empty((h, w, *src.shape[2:]), np.uint8)
    for y in range(0, h, REDUCE_ROWS):
        y1 = min(h, y + REDUCE_ROWS)
        s = src[2 * y : 2 * y1, : 2 * w]
        total = s[0::2, 0::2].astype(np.uint16)
        total += s[1::2, 0::2]
        total += s[0::2, 1::2]
        total += s[1::2, 1::2]
        total += 2
        total >>= 2
        out[y:y1] = total
    return out


def _reduce_max(src: np.ndarray) -> np.ndarray:
    h, w = src.shape[0] // 2, src.shape[1] // 2
    s = src[: 2 * h, : 2 * w]
    return np.maximum(np.maximum(s[0::2, 0::2], s[1::2, 0::2]), np.maximum(s[0::2, 1::2], s[1::2, 1::2]))


class Pyramid:
    """Levels 1..n of a uint8 layer (level k is 2^k times smaller), kept in step with level 0 box by box."""

    def __init__(self, base: np.ndarray, mode: str = "mean", scale0: int = 1, min_side: int = 48,
                 max_levels: int = 7) -> None:
        self.base = base
        self._reduce = _reduce_mean if mode == "mean" else _reduce_max
        self._scale0 = scale0  # level 0 values are multiplied by this before reducing (bool mask -> 0..255)
        h, w = base.shape[:2]
        self.levels: list[np.ndarray] = []
        k = 1
        while k <= max_levels and min(h >> k, w >> k) >= min_side:
            self.levels.append(np.zeros((h >> k, w >> k, *base.shape[2:]), dtype=np.uint8))
            k += 1
        self.update()

    @property
    def count(self) -> int:
        """Number of reduced levels (level 0 not included)."""
        return len(self.levels)

    def array(self, k: int) -> np.ndarray:
        """Level ``k`` (0 = the base layer)."""
        return self.base if k == 0 else self.levels[k - 1]

    def update(self, box: Box | None = None) -> None:
        """Recompute every level over the level-0 box ``box`` (None: everything)."""
        h, w = self.base.shape[:2]
        x0, y0, x1, y1 = box if box is not None else (0, 0, w, h)
        for k, level in enumerate(self.levels, start=1):
            lh, lw = level.shape[:2]
            kx0, ky0 = x0 >> k, y0 >> k
            kx1, ky1 = min(lw, -(-x1 >> k)), min(lh, -(-y1 >> k))
            if kx1 <= kx0 or ky1 <= ky0:
                return
            src = self.array(k - 1)[2 * ky0 : 2 * ky1, 2 * kx0 : 2 * kx1]
            if k == 1 and self._scale0 != 1:
                src = src.view(np.uint8) * np.uint8(self._scale0)
            level[ky0:ky1, kx0:kx1] = self._reduce(src)

    def level_for(self, device_scale: float) -> int:
        """The level to sample at ``device_scale`` device px per level-0 px: the smallest one still >= 1:1."""
        if device_scale >= 0.5:
            return 0
        k = int(np.floor(np.log2(1.0 / device_scale)))
        return max(0, min(k, self.count))


class ImageLayer:
    """One drawable layer: a full-resolution QImage, its pyramid and their QImages, at a document offset."""

    def __init__(self, base: np.ndarray, mode: str, scale0: int = 1, origin: tuple[int, int] = (0, 0)) -> None:
        self.base = base
        self.origin = origin
        self.pyramid = Pyramid(base, mode, scale0)
        self.images: list[QImage] = []

    def update(self, rect: QRect | None = None) -> None:
        """Refresh the reduced levels over a document rect (None: all)."""
        box = None
        if rect is not None:
            ox, oy = self.origin
            box = rect_to_box(rect).offset(-ox, -oy).clip(self.base.shape)
            if box is None:
                return
        self.pyramid.update(box)

    def draw(self, painter: QPainter, doc_rect: QRectF, device_scale: float) -> None:
        """Draw the part of the layer under ``doc_rect`` (document coordinates, painter maps doc -> device)."""
        k = self.pyramid.level_for(device_scale)
        f = float(1 << k)
        image = self.images[k]
        ox, oy = self.origin
        margin = 2.0 * f  # sample a little beyond the rect: no seams where bilinear filtering meets a clip edge
        sx0 = max(0.0, np.floor((doc_rect.left() - ox - margin) / f))
        sy0 = max(0.0, np.floor((doc_rect.top() - oy - margin) / f))
        sx1 = min(float(image.width()), np.ceil((doc_rect.right() - ox + margin) / f))
        sy1 = min(float(image.height()), np.ceil((doc_rect.bottom() - oy + margin) / f))
        if sx1 <= sx0 or sy1 <= sy0:
            return
        source = QRectF(sx0, sy0, sx1 - sx0, sy1 - sy0)
        target = QRectF(ox + sx0 * f, oy + sy0 * f, (sx1 - sx0) * f, (sy1 - sy0) * f)
        painter.drawImage(target, image, source)


class PhotoLayer(ImageLayer):
    """The photo (or the pre-fill patch shown by compare), H x W x 3 uint8 RGB."""

    def __init__(self, rgb: np.ndarray, origin: tuple[int, int] = (0, 0)) -> None:
        super().__init__(np.ascontiguousarray(rgb), "mean", origin=origin)
        self.images = [rgb888_image(self.pyramid.array(k)) for k in range(self.pyramid.count + 1)]


class MaskLayer(ImageLayer):
    """The mask in a semi-transparent colour; reduced levels hold coverage 0..255 mapped to alpha."""

    def __init__(self, mask: np.ndarray, color: QColor = DEFAULT_MASK_COLOR) -> None:
        super().__init__(mask, "mean", scale0=255)
        self.images = [indexed8_image(self.pyramid.array(k), []) for k in range(self.pyramid.count + 1)]
        self.set_color(color)

    def set_color(self, color: QColor) -> None:
        """Change the overlay colour (alpha included)."""
        self.color = QColor(color)
        self.images[0].setColorTable([0, rgba(color)])
        ramp = [rgba(color, i / 255.0) for i in range(256)]
        for image in self.images[1:]:
            image.setColorTable(ramp)


class EdgeLayer(ImageLayer):
    """Known edges, predicted edges inside the hole and the user's sketch, one colour each.

    Codes (``EDGE_*``) live in their own H x W uint8 buffer, recomputed per dirty rect from the document:
    known = Canny of the photo outside the hole (computed lazily, once per photo change), predicted =
    the edge generator's proposal inside the hole, then the sketch's drawn and erased pixels on top.
    """

    def __init__(self, document, colors: dict[int, QColor] | None = None) -> None:
        self.document = document
        h, w = document.height, document.width
        self.codes = np.zeros((h, w), dtype=np.uint8)
        self._canny: np.ndarray | None = None
        super().__init__(self.codes, "max")
        self.images = [indexed8_image(self.pyramid.array(k), []) for k in range(self.pyramid.count + 1)]
        self.set_colors(colors or DEFAULT_EDGE_COLORS)
        self.recompute(None)

    def set_colors(self, colors: dict[int, QColor]) -> None:
        """Colours per edge code."""
        self.colors = {**DEFAULT_EDGE_COLORS, **colors}
        table = [0] + [rgba(self.colors[code]) for code in range(1, 5)]
        for image in self.images:
            image.setColorTable(table)

    def image_changed(self, rect: QRect | None) -> None:
        """The photo changed under ``rect`` (None: all): its known edges need recomputing there."""
        if self._canny is None:
            return
        if rect is None:
            self._canny = None
            return
        doc = self.document
        pad = 12  # Gaussian blur reach (sigma 2) and Canny's 3x3 neighbourhoods
        changed = rect_to_box(rect)
        box = changed.grow(pad).clip(doc.image.shape)
        inside = changed.clip(doc.image.shape)
        if box is None or inside is None:
            return
        edges = canny_edges(to_gray(doc.image[box.slices()]))
        self._canny[inside.slices()] = edges[inside.offset(-box.x0, -box.y0).slices()]

    def _known(self) -> np.ndarray:
        if self._canny is None:
            self._canny = canny_edges(to_gray(self.document.image))
        return self._canny

    def recompute(self, rect: QRect | None) -> None:
        """Recompute the codes (and pyramid) under ``rect`` (None: everything)."""
        doc = self.document
        h, w = self.codes.shape
        box = Box(0, 0, w, h) if rect is None else rect_to_box(rect).clip((h, w))
        if box is None:
            return
        x0, y0, x1, y1 = box
        sl = np.s_[y0:y1, x0:x1]
        hole = doc.mask[sl]
        out = np.where(self._known()[sl] & ~hole, EDGE_KNOWN, EDGE_NONE).astype(np.uint8)
        if doc.predicted_edges is not None:
            out[(doc.predicted_edges[sl] > 0) & hole] = EDGE_PREDICTED
        out[doc.sketch_drawn[sl]] = EDGE_DRAWN
        out[doc.sketch_erased[sl]] = EDGE_ERASED
        self.codes[sl] = out
        self.pyramid.update(box)
