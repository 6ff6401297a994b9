"""Texture copied from the photo itself, steered by a structure fill: guided PatchMatch / EM completion.

The structure source (the neural structure model, or the harmonic fill) gives the fill at strength 0; this stage
copies real texture from the photo at full resolution with this project's own multi-scale PatchMatch / EM
search (engine.texture.guided), and ``strength`` blends the two (1 = the copy).

- Which patches are copied is steered by the structure: every patch distance adds the candidate's low pass
  against the structure's over the whole patch (engine.texture.guided.GuideWeights.guide).
- Source patches come only from known pixels outside a ring of ``RING`` px around the user's *whole* mask (no
  copying of the removed object's halo, nor of another hole); other holes' pixels carry no weight in a patch.
- A line the user drew through the hole adds an edge term: the drawn line in the hole against the photo's own
  edges elsewhere, so patches that hold an edge are copied along the line.

Measured and dropped (docs/quality.md): pypatchmatch's guided entry point (its regularity term compares patch
centres only and wraps periodically, which turned a structure guide into a fine noisy mesh), and the structure's
low band recombined with an unguided copy's detail (a blurred ghost in the object's shape).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from engine.texture.guided import GuideWeights, guided_copy

PATCH_RADIUS = 3  # 7 x 7 patches, pypatchmatch's radius 3 as IOPaint uses it
RING = 1  # px around the user's mask (full resolution) that never serve as sources
EDGE_WEIGHT = 4.0  # weight of the drawn-line term (edge maps in [0, 1]) against the patch colour distance
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


def synthesize(inp: TextureInput, strength: float = DEFAULT_STRENGTH, step: StepFn | None = None) -> TextureResult:
    """Guided synthesis of ``inp.hole``; see the module docstring. Deterministic (a fixed seed).

    ``step(fraction, label)`` is called between the search's scales; it may raise to cancel."""
    strength = check_strength(strength)
    structure = np.clip(np.nan_to_num(inp.structure.astype(np.float32), nan=0.5), 0.0, 1.0)
    hole = inp.hole.astype(bool)
    if strength == 0.0 or not hole.any():
        return TextureResult(structure)
    h, w = hole.shape
    blocked = _dilate(inp.excluded.astype(bool) | hole, RING) & ~hole  # neither filled nor a source
    side = 2 * PATCH_RADIUS + 1
    sources = cv2.erode((~(blocked | hole)).astype(np.uint8), np.ones((side, side), np.uint8),
                        borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if h < side or w < side or int(sources.sum()) < MIN_SOURCES:
        return TextureResult(structure, "Not enough known pixels around the hole to copy texture from; "
                                        "the structure fill was used as it is.")
    image = np.ascontiguousarray(inp.image[..., :3], dtype=np.uint8)
    drawn = draws_through(inp)
    edge_map = np.where(hole, inp.edges, inp.source_edges).astype(np.float32) if drawn else None
    weights = GuideWeights(edge=EDGE_WEIGHT if drawn else 0.0)
    unknown = inp.excluded.astype(bool) & ~hole  # other holes of the user's mask: their colours mean nothing
    copied = guided_copy(image, hole, blocked, structure, edge_map, weights, PATCH_RADIUS, SEED, step, unknown)
    if copied is None:
        return TextureResult(structure, "Not enough known pixels around the hole to copy texture from; "
                                        "the structure fill was used as it is.")
    out = structure + np.float32(strength) * (copied - structure)
    return TextureResult(np.where(hole[..., None], np.clip(out, 0.0, 1.0), structure).astype(np.float32))
