"""Texture copied from the photo itself: PatchMatch completion (Barnes et al. 2009) on top of a structure fill.

The structure source (the neural image model, or the harmonic fill) gives the fill at strength 0; this stage
copies real texture from the photo at full resolution with the multi-scale PatchMatch / EM completion of the
``pypatchmatch`` wheel (the fallback IOPaint ships), and ``strength`` blends the two (1 = the copy).

- Source patches come only from known pixels outside a ring of ``RING`` px around the user's *whole* mask
  (no copying of the removed object's halo, nor of another hole): the native code's "global mask". The
  native search also leaves global-mask pixels out when it compares a hole patch with its surroundings, so
  every pixel of ring loosens the seam: 0.3 dB PSNR per px on val, hence a 1 px ring.
- The search runs on the region's whole context crop (half the hole's long side around it, see
  engine.regions). A tighter window around the hole was tried for speed: where the hole spans the window
  (the sailboat, which reaches the photo's edge) the search no longer converged and left a blurred column.
- A line the user drew through the hole steers the copy through the native regularity term: the drawn line
  in the hole against the photo's own edges elsewhere (one guide channel), so patches that hold an edge are
  copied along the line. That term compares the patch *centres* only, and periodically (a difference d counts
  as min(d, 1 - d)), so the channel is scaled into [0, GUIDE_RANGE] where it cannot wrap.

Measured and dropped (docs/quality.md): steering every fill by the structure's low-pass luminance through the
same term. The centre-only term breaks the coherence of neighbouring matches, and the vote over overlapping
patches turns that into a fine noisy mesh over the whole fill (the elk, the pheasant, the sailboat); the
structure's low band recombined with the copy's detail scored +0.7 dB but left the structure's blurred ghost
in the object's shape. A numba EM kernel of this project's own converged to one uniform texture.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

PATCH_RADIUS = 3  # 7 x 7 patches, pypatchmatch's radius 3 as IOPaint uses it
RING = 1  # px around the user's mask (full resolution) that never serve as sources
GUIDE_WEIGHT = 1.0  # weight of the drawn-line term against the patch colour distance
GUIDE_RANGE = 0.5  # the guide channel lies in [0, GUIDE_RANGE]: the native periodic difference never wraps
EDGE_SIGMA = 1.5  # px of the blur that lets an edge match a neighbouring one
MIN_SOURCES = 64  # fewer usable source pixels than this: the structure fill is returned as it is
SEED = 0  # fixed: the same request gives the same bytes
DEFAULT_STRENGTH = 1.0

StepFn = Callable[[float, str], None]


@dataclass
class TextureInput:
    """One crop at full resolution."""

    image: np.ndarray  # h x w x 3 uint8; what lies under ``hole`` is ignored
    hole: np.ndarray  # h x w bool: the pixels to synthesise
    excluded: np.ndarray  # h x w bool: the user's whole mask in the crop, never a source (includes ``hole``)
    structure: np.ndarray  # h x w x 3 float32 in [0, 1]: the structure fill, valid in ``hole``
    edges: np.ndarray | None = None  # h x w float32 in [0, 1]: lines the fill must follow (the user's sketch)
    source_edges: np.ndarray | None = None  # h x w float32: the photo's own edges outside the mask


@dataclass
class TextureResult:
    image: np.ndarray  # h x w x 3 float32 in [0, 1]: the synthesised crop (meaningful in ``hole``)
    message: str | None = None  # why the structure was returned unchanged, if it was


def check_strength(strength: object) -> float:
    """``strength`` as a float in [0, 1], else ``ValueError`` naming the problem."""
    try:
        value = float(strength)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"texture strength must be a number between 0 and 1, got {strength!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"texture strength must be between 0 and 1, got {strength!r}")
    return value


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask.copy()
    square = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), square).astype(bool)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def load_patchmatch() -> tuple[object | None, str]:
    """(the ``patchmatch`` module, "") when its native library loads, else (None, why not)."""
    try:
        import patchmatch
    except Exception as exc:  # an ImportError, or the native library failing to load on this platform
        return None, f"the pypatchmatch package cannot be imported ({type(exc).__name__}: {exc})"
    if not getattr(patchmatch, "patchmatch_available", False):
        return None, "the pypatchmatch native library does not load on this platform"
    return patchmatch, ""


def draws_through(inp: TextureInput) -> bool:
    """Whether the user drew a line inside the hole (the only case the copy is steered)."""
    return inp.edges is not None and inp.source_edges is not None and bool((inp.edges[inp.hole] > 0).any())


def guide_map(inp: TextureInput) -> np.ndarray:
    """The h x w x 3 float32 regularity map handed to the native search: channel 0 the drawn line in the hole and
    the photo's own edges elsewhere (blurred, scaled to [0, GUIDE_RANGE]); channels 1 and 2 unused (zero)."""
    assert inp.edges is not None and inp.source_edges is not None
    edges = _blur(np.where(inp.hole, inp.edges, inp.source_edges).astype(np.float32), EDGE_SIGMA)
    edges = edges / max(float(edges.max()), 1e-6) * np.float32(GUIDE_RANGE)
    zero = np.zeros_like(edges)
    return np.ascontiguousarray(np.stack([edges, zero, zero], axis=-1), dtype=np.float32)


def synthesize(inp: TextureInput, strength: float = DEFAULT_STRENGTH, step: StepFn | None = None) -> TextureResult:
    """Guided synthesis of ``inp.hole``; see the module docstring. Deterministic (a fixed seed).

    ``step(fraction, label)`` is called before and after the native search; it may raise to cancel (the
    search itself cannot be interrupted)."""
    strength = check_strength(strength)
    structure = np.clip(np.nan_to_num(inp.structure.astype(np.float32), nan=0.5), 0.0, 1.0)
    hole = inp.hole.astype(bool)
    if strength == 0.0 or not hole.any():
        return TextureResult(structure)
    module, why = load_patchmatch()
    if module is None:
        return TextureResult(structure, f"Texture synthesis is not available ({why}); the structure fill was "
                                        "used as it is.")
    h, w = hole.shape
    blocked = _dilate(inp.excluded.astype(bool) | hole, RING) & ~hole  # neither filled nor a source
    side = 2 * PATCH_RADIUS + 1
    sources = cv2.erode((~(blocked | hole)).astype(np.uint8), np.ones((side, side), np.uint8),
                        borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if h < side or w < side or int(sources.sum()) < MIN_SOURCES:
        return TextureResult(structure, "Not enough known pixels around the hole to copy texture from; "
                                        "the structure fill was used as it is.")
    inp = TextureInput(inp.image, hole, inp.excluded, structure, inp.edges, inp.source_edges)
    if step is not None:
        step(0.0, "texture")
    module.set_random_seed(SEED)
    image = np.ascontiguousarray(inp.image[..., :3], dtype=np.uint8)
    hole_u8, blocked_u8 = hole.astype(np.uint8) * 255, blocked.astype(np.uint8) * 255
    if draws_through(inp):
        copied = module.inpaint_regularity(image, hole_u8, guide_map(inp), global_mask=blocked_u8,
                                           patch_size=PATCH_RADIUS, guide_weight=GUIDE_WEIGHT)
    else:
        copied = module.inpaint(image, hole_u8, global_mask=blocked_u8, patch_size=PATCH_RADIUS)
    if step is not None:
        step(1.0, "texture")
    copy = np.asarray(copied, dtype=np.float32) * np.float32(1 / 255)
    out = structure + np.float32(strength) * (copy - structure)
    return TextureResult(np.where(hole[..., None], np.clip(out, 0.0, 1.0), structure).astype(np.float32))
