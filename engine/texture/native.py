"""The unguided native copy: multi-scale PatchMatch completion through the ``pypatchmatch`` wheel.

Kept apart from the guided synthesis so that a child process (engine.texture.copier) can run it without
loading the guided search's numba kernels.
"""

from __future__ import annotations

import cv2
import numpy as np

PATCH_RADIUS = 3  # 7 x 7 patches, pypatchmatch's radius 3 as IOPaint uses it
RING = 1  # px around the user's mask (full resolution) that never serve as sources
MIN_SOURCES = 64  # fewer usable source pixels than this: the structure fill is returned as it is
SEED = 0  # fixed: the same request gives the same bytes


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask.copy()
    square = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), square).astype(bool)


def load_patchmatch() -> tuple[object | None, str]:
    """(the ``patchmatch`` module, "") when its native library loads, else (None, why not)."""
    try:
        import patchmatch
    except Exception as exc:  # an ImportError, or the native library failing to load on this platform
        return None, f"the pypatchmatch package cannot be imported ({type(exc).__name__}: {exc})"
    if not getattr(patchmatch, "patchmatch_available", False):
        return None, "the pypatchmatch native library does not load on this platform"
    return patchmatch, ""


def blocked_and_sources(hole: np.ndarray, excluded: np.ndarray) -> tuple[np.ndarray, int]:
    """(pixels that are neither filled nor a source, number of usable patch centres)."""
    blocked = dilate(excluded.astype(bool) | hole, RING) & ~hole
    side = 2 * PATCH_RADIUS + 1
    sources = cv2.erode((~(blocked | hole)).astype(np.uint8), np.ones((side, side), np.uint8),
                        borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return blocked, int(sources.sum())


def native_copy(module: object, image: np.ndarray, hole: np.ndarray, blocked: np.ndarray) -> np.ndarray:
    """The native completion of ``hole`` (float32 in [0, 1]); ``blocked`` pixels are neither filled nor sources."""
    module.set_random_seed(SEED)  # type: ignore[attr-defined]
    native = module.inpaint(image, hole.astype(np.uint8) * 255,  # type: ignore[attr-defined]
                            global_mask=blocked.astype(np.uint8) * 255, patch_size=PATCH_RADIUS)
    return np.asarray(native, dtype=np.float32) * np.float32(1 / 255)


def copy_ahead(image: np.ndarray, hole: np.ndarray, excluded: np.ndarray) -> np.ndarray | None:
    """The unguided native copy of ``hole``, which needs no structure (so it can run beside the structure
    model); None where ``synthesize`` would not use it (no native library, a crop too small or too few
    sources). Pass the result to ``synthesize(..., copied=)`` when no line is drawn through the hole."""
    hole = hole.astype(bool)
    module, _ = load_patchmatch()
    h, w = hole.shape
    side = 2 * PATCH_RADIUS + 1
    if module is None or not hole.any() or h < side or w < side:
        return None
    blocked, sources = blocked_and_sources(hole, excluded)
    if sources < MIN_SOURCES:
        return None
    return native_copy(module, np.ascontiguousarray(image[..., :3], dtype=np.uint8), hole, blocked)
