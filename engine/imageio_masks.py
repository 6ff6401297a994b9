"""Hole masks (white = hole) and edge sketches (white = draw an edge, pure red = no edge here) as files."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from engine.errors import ImageFileError
from engine.imageio_read import LoadedImage, load_image, luma, to_8bit
from engine.imageio_save import save_png


def load_mask(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> np.ndarray:
    """A hole mask (H x W bool) from any image: True where the pixel is white.

    White means brighter than half the format's range (luminance > 127 of 255, or > 32767 of 65535); when the
    image has alpha, the pixel must also be opaque (alpha > 127), so a mask painted on a transparent layer
    works. A label mask, which holds only 0 and one darker value (0/1 masks of datasets, or a 16-bit file
    saved with 8-bit values), marks its hole with that value. ``size`` = (width, height) resizes with nearest
    neighbour.
    """
    loaded = load_image(path)
    level = _mask_level(loaded)
    half = 32767 if level.dtype == np.uint16 else 127
    hole = level > half
    if not hole.any():
        top = level.max()
        if top > 0 and np.all((level == 0) | (level == top)):
            hole = level == top
    if loaded.alpha is not None:
        hole &= _alpha8(loaded.alpha) > 127
    return _resize_labels(hole.astype(np.uint8), size).astype(bool)


def _mask_level(loaded: LoadedImage) -> np.ndarray:
    """Brightness of a mask image at its own depth: 16-bit sources keep all 16 bits (so dark values survive)."""
    if loaded.rgb16 is None:
        return luma(loaded.rgb)
    if loaded.rgb16.ndim == 2:
        return loaded.rgb16
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    return np.round(loaded.rgb16.astype(np.float32) @ weights).astype(np.uint16)


def save_mask(path: str | os.PathLike[str], mask: np.ndarray) -> None:
    """Write a hole mask as a PNG, white (255) = hole, black (0) = keep; atomic."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ImageFileError(f"Cannot save {p}: masks are saved as PNG; use a .png file name.")
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be H x W, got {mask.shape}")
    image = Image.fromarray(np.where(mask.astype(bool), 255, 0).astype(np.uint8))
    save_png(p, image)


def load_sketch(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(drawn, erased) H x W bools from a sketch image.

    White (all channels > 127) = a drawn edge; red (R > 127, G and B <= 127) = erased, "no edge here";
    anything else, including transparent pixels (alpha <= 127), = let the model decide. The thresholds
    make a sketch survive lossy saving. ``size`` = (width, height) resizes with nearest neighbour.
    """
    loaded = load_image(path)
    bright = loaded.rgb > 127
    drawn = bright.all(axis=2)
    erased = bright[..., 0] & ~bright[..., 1] & ~bright[..., 2]
    if loaded.alpha is not None:
        opaque = _alpha8(loaded.alpha) > 127
        drawn &= opaque
        erased &= opaque
    labels = _resize_labels(drawn.astype(np.uint8) + 2 * erased.astype(np.uint8), size)
    return labels == 1, labels == 2


def save_sketch(path: str | os.PathLike[str], drawn: np.ndarray, erased: np.ndarray) -> None:
    """Write a sketch as an RGBA PNG: opaque white = drawn, opaque pure red = erased, transparent = neither.

    Where a pixel is both drawn and erased, erased wins (the explicit "no edge"). Atomic.
    """
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ImageFileError(f"Cannot save {p}: sketches are saved as PNG; use a .png file name.")
    drawn, erased = np.asarray(drawn, dtype=bool), np.asarray(erased, dtype=bool)
    if drawn.ndim != 2 or drawn.shape != erased.shape:
        raise ValueError(f"drawn and erased must be H x W of one size, got {drawn.shape} and {erased.shape}")
    rgba = np.zeros((*drawn.shape, 4), np.uint8)
    rgba[drawn] = (255, 255, 255, 255)
    rgba[erased] = (255, 0, 0, 255)
    save_png(p, Image.fromarray(rgba))


def _alpha8(alpha: np.ndarray) -> np.ndarray:
    return alpha if alpha.dtype == np.uint8 else to_8bit(alpha)


def _resize_labels(labels: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Nearest-neighbour resize of a uint8 label map to ``size`` = (width, height) (pixel-centre exact)."""
    if size is None or (labels.shape[1], labels.shape[0]) == tuple(size):
        return labels
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
