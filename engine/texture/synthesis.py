"""Texture copied from the photo itself: PatchMatch completion (Barnes et al. 2009) on top of a structure fill.

The structure source (the neural structure model, or the harmonic fill) gives the fill at strength 0; this stage
copies real texture from the photo at full resolution and puts the structure's low band under the copy's detail
(``compose``); ``strength`` blends from the structure alone (0) to that composite (1).

- Without a drawn line: the multi-scale PatchMatch / EM completion of the ``pypatchmatch`` wheel (the fallback
  IOPaint ships), unguided. It needs nothing of the structure, so the engine runs it beside the structure model
  (``copy_ahead``, in a child process: engine.texture.copier, so a cancel stops it at once); where its native
  library does not load, the guided search below without a guide.
- With a line the user drew through the hole: the same unguided copy, then, in a band of ``LINE_BAND`` px either
  side of the line only, this project's own guided search (engine.texture.guided), whose patch distance adds
  the drawn line in the hole against the photo's own edges elsewhere over the whole patch, so patches that hold
  an edge are copied along the line. The rest of the hole keeps the unguided copy and is the band's context
  (its colours count in the band's patches; it is never a source). Run over the whole hole, that search let
  smooth sky patches spread over the carrier's sea (docs/quality.md, session 16).
- Source patches come only from known pixels outside a ring of ``RING`` px around the user's *whole* mask (no
  copying of the removed object's halo, nor of another hole). The native search also leaves those pixels out
  when it compares a hole patch with its surroundings, so every pixel of ring loosens the seam (0.3 dB PSNR per
  px on val), hence a 1 px ring.
- The composite: the copy plus the structure's low band minus the copy's (Gaussian, ``LOW_BAND_SIGMA`` px at the
  structure's own scale), the shift clipped to ``LOW_BAND_CLIP`` and weighted by the copy's own local detail
  (``_detail_weight``). The copy brings the detail, the structure says where the hole is darker or brighter (a
  hedge's edge, a tree line) where the copy broke it. Where the copy is smooth (sky, calm water) the structure
  does not move it: there a structure that smears a neighbour's colour into the hole (a branch, a hull) shows
  as a grey smudge. A second, coarser correction (``COARSE_SIGMA``) moves what is still off by at most
  ``COARSE_CLIP``, reached ``COARSE_REACH`` px deep into the hole and none at its border, with the same weight:
  deep in a large hole the copy drifts furthest from the photo's colours and the structure is the better guess
  (+0.15 dB on val; docs/quality.md, session 21). In the hole's thin parts (``THIN_TRUSTED``: strokes, legs,
  tails, with known pixels close on both sides) the fill is the structure itself plus the copy's fine detail
  (+0.2 dB and SSIM above PatchMatch's in every bucket; session 22).

Measured and dropped (docs/quality.md): steering the *search* by the structure. Through pypatchmatch's regularity
term (centres only, periodic) it left a fine noisy mesh; through the guided search's whole-patch term it carried
the harmonic fill's ghost into the copy (the sailboat, the beetle, the lizard, the carrier).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from engine.texture.guided import GuideWeights, guided_copy
from engine.texture.native import (
    MIN_SOURCES,
    PATCH_RADIUS,
    SEED,
    blocked_and_sources,
    dilate,
    load_patchmatch,
    native_copy,
)

# A drawn line: the edge term (edge maps in [0, 1]) against the patch colours, and no pull towards the structure
# (at weight 2 the harmonic fill's ghost came with it: a sail-shaped patch of water over the sailboat's sky).
LINE_WEIGHTS = GuideWeights(guide=0.0, edge=4.0)
UNGUIDED = GuideWeights(guide=0.0)  # the own search in place of a native library that does not load
LINE_BAND = 8  # px either side of a drawn line that the own search fills along it; the rest is the unguided copy
# The band along a line keeps coarse pixels that are partly hole as holes (guided.COARSE_HOLE_SHARE is for the
# whole hole): there the coarse levels establish the line, and without them a line drawn where the photo has no
# edge was covered half as well (docs/quality.md, session 18).
LINE_COARSE_HOLE_SHARE = 0.0
DEFAULT_STRENGTH = 1.0
LOW_BAND_SIGMA = 3.0  # px at the structure's scale: the band the structure decides, the rest is the copy's
LOW_BAND_CLIP = 0.12  # the most the structure moves the copy (30 of 255 levels); 0.16 left grey smudges
DETAIL_FOR_FULL_SHIFT = 0.03  # mean gradient (per px, in [0, 1]) above which the copy takes the full shift
COARSE_SIGMA = 8.0  # px at the structure's scale: the second correction's band
COARSE_CLIP = 0.12  # its most (30 of 255 levels); 0.24 brought a dark smudge back to the sailboat's tree line
COARSE_REACH = 32.0  # px at the structure's scale into the hole where the second correction reaches its most
# Thin parts of the hole (a stroke, a leg, a tail): known pixels lie close on both sides, and there the structure is
# the better guess down to fine detail. Where the widest disc inside the hole that covers a pixel has a radius of at
# most THIN_TRUSTED px (at the structure's scale) the fill is the structure plus the copy's detail finer than
# THIN_SIGMA; above THIN_UNTRUSTED px, the composite above; between, a blend (docs/quality.md, session 22).
THIN_TRUSTED = 12.0
THIN_UNTRUSTED = 24.0
THIN_SIGMA = 2.25
THIN_CLIP = 0.24  # the most it moves the composite (60 levels): a structure far from every known colour stays out

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
    structure_scale: float = 1.0  # full-resolution px per px of the structure's working resolution


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


def draws_through(inp: TextureInput) -> bool:
    """Whether the user drew a line inside the hole (the only case the copy is steered)."""
    return inp.edges is not None and inp.source_edges is not None and bool((inp.edges[inp.hole] > 0).any())


def _detail_weight(copy: np.ndarray, sigma: float) -> np.ndarray:
    """How far the structure may move the copy, per pixel: 1 where the copy is textured, falling to 0 where
    it is smooth (sky, calm water), where a shift shows as a grey smudge and the copy is rarely wrong."""
    luma = copy.mean(axis=-1)
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy) * np.float32(1 / 8), (0, 0), 2 * sigma)
    return np.clip(energy / np.float32(DETAIL_FOR_FULL_SHIFT), 0.0, 1.0)


def compose(structure: np.ndarray, copied: np.ndarray, image: np.ndarray, hole: np.ndarray,
            structure_scale: float = 1.0, along_line: np.ndarray | None = None) -> np.ndarray:
    """The copy's detail on the structure's low band where the copy is textured, in ``hole`` (float32 in
    [0, 1]; the photo elsewhere). ``along_line``: the band a drawn line's search filled, which the coarse
    correction leaves alone (fading in over ``2 * COARSE_SIGMA`` px), as it would wash the line out.

    Worked on the hole's box plus the reach of its blurs only: the same values as on the whole crop (where the
    structure's scale is above 1, up to the coarse band's resampling)."""
    known = image[..., :3].astype(np.float32) * np.float32(1 / 255)
    if not hole.any():
        return known
    scale = max(1.0, float(structure_scale))
    margin = math.ceil(4 * max(2 * LOW_BAND_SIGMA, COARSE_SIGMA) * scale) + 2
    x, y, w, h = cv2.boundingRect(hole.astype(np.uint8))
    box = (slice(max(0, y - margin), y + h + margin), slice(max(0, x - margin), x + w + margin))
    out = known.copy()
    out[box] = _compose_box(structure[box], copied[box], known[box], hole[box], scale,
                            None if along_line is None else along_line[box])
    return out


def _compose_box(structure: np.ndarray, copied: np.ndarray, known: np.ndarray, hole: np.ndarray, scale: float,
                 along_line: np.ndarray | None) -> np.ndarray:
    inside = hole[..., None]
    sigma = LOW_BAND_SIGMA * scale
    # the low band of the structure minus the copy's, both meeting the photo outside the hole: one blur of the
    # difference, which is 0 there
    shift = cv2.GaussianBlur(np.where(inside, structure - copied, np.float32(0)), (0, 0), sigma)
    weight = _detail_weight(np.where(inside, copied, known), sigma)[..., None]
    out = copied + weight * np.clip(shift, -LOW_BAND_CLIP, LOW_BAND_CLIP)
    away = None
    if along_line is not None and along_line.any():
        away = cv2.distanceTransform((~along_line).astype(np.uint8), cv2.DIST_L2, 3) * np.float32(1 / scale)
    trust = thin_trust(hole, scale)
    if away is not None:  # a drawn line keeps its own search's copy
        trust *= np.minimum(away * np.float32(1 / (2 * LOW_BAND_SIGMA)), 1.0)
    if trust.any():
        toward = structure + _copy_detail(copied, hole, THIN_SIGMA, scale) - out
        out += trust[..., None] * np.clip(toward, -THIN_CLIP, THIN_CLIP)
    depth = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3) * np.float32(1 / scale)
    reach = np.minimum(depth * np.float32(1 / COARSE_REACH), 1.0) * np.float32(COARSE_CLIP)
    if away is not None:
        reach *= np.minimum(away * np.float32(1 / (2 * COARSE_SIGMA)), 1.0)
    out += weight * np.clip(_coarse_blur(np.where(inside, structure - out, np.float32(0)), scale),
                            -reach[..., None], reach[..., None])
    return np.where(inside, np.clip(out, 0.0, 1.0), known).astype(np.float32)


def local_thickness(hole: np.ndarray, radii: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Per hole pixel, the largest of ``radii`` (ascending, px at the structure's scale) whose disc fits inside
    the hole and covers it, else 0: half the width of a stroke, whatever its length. Worked at the structure's
    scale (a 24 MP crop would take seconds at full size)."""
    h, w = hole.shape
    small = hole
    if scale > 1.0:
        small = cv2.resize(hole.astype(np.float32), _at_scale(h, w, scale), interpolation=cv2.INTER_AREA) >= 0.5
    depth = cv2.distanceTransform(small.astype(np.uint8), cv2.DIST_L2, 3)
    thickness = np.zeros(small.shape, np.float32)
    for radius in radii:  # a disc that covers a pixel holds smaller ones that do too
        core = (depth <= radius).astype(np.uint8)  # 0 where a disc of this radius fits, centred there
        if core.all():
            break
        thickness[(cv2.distanceTransform(core, cv2.DIST_L2, 3) <= radius) & small] = radius
    if small is not hole:
        thickness = cv2.resize(thickness, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(hole, thickness, np.float32(0))


def thin_trust(hole: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """How far the thin-part rule replaces the composite, per pixel: 1 where the hole is at most ``THIN_TRUSTED``
    px thick, falling to 0 at ``THIN_UNTRUSTED``."""
    radii = np.arange(THIN_TRUSTED + 2, THIN_UNTRUSTED + 1, 2, dtype=np.float32)
    thickness = np.maximum(local_thickness(hole, radii, scale), np.float32(THIN_TRUSTED))
    trust = (np.float32(THIN_UNTRUSTED) - thickness) * np.float32(1 / (THIN_UNTRUSTED - THIN_TRUSTED))
    return np.where(hole, trust, np.float32(0)).astype(np.float32)


def _copy_detail(copied: np.ndarray, hole: np.ndarray, sigma: float, scale: float) -> np.ndarray:
    """The copy minus its local mean over hole pixels only (a normalised blur of ``sigma`` px at the structure's
    scale, computed at that scale): its fine detail."""
    inside = np.where(hole[..., None], copied, np.float32(0))
    weight = hole.astype(np.float32)
    h, w = hole.shape
    if scale > 1.0:
        size = _at_scale(h, w, scale)
        inside = cv2.resize(inside, size, interpolation=cv2.INTER_AREA)
        weight = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    mean = cv2.GaussianBlur(inside, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma),
                                                                np.float32(1e-3))[..., None]
    if scale > 1.0:
        mean = cv2.resize(mean, (w, h), interpolation=cv2.INTER_LINEAR)
    return copied - mean


def _at_scale(h: int, w: int, scale: float) -> tuple[int, int]:
    """The (width, height) of an h x w crop at the structure's working scale, for ``cv2.resize``."""
    return max(1, round(w / scale)), max(1, round(h / scale))


def _coarse_blur(difference: np.ndarray, scale: float) -> np.ndarray:
    """``difference`` blurred by ``COARSE_SIGMA`` px at the structure's scale; computed at that scale (a band this
    coarse loses nothing there, and a 24 MP crop would take seconds at full size)."""
    if scale <= 1.0:
        return cv2.GaussianBlur(difference, (0, 0), COARSE_SIGMA)
    h, w = difference.shape[:2]
    small = cv2.resize(difference, _at_scale(h, w, scale), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), COARSE_SIGMA), (w, h), interpolation=cv2.INTER_LINEAR)


def synthesize(inp: TextureInput, strength: float = DEFAULT_STRENGTH, step: StepFn | None = None,
               copied: np.ndarray | None = None, native: bool = True) -> TextureResult:
    """Guided synthesis of ``inp.hole``; see the module docstring. Deterministic (a fixed seed).

    ``copied``: the result of ``copy_ahead`` on the same crop, used instead of running the native copy again.
    ``native=False``: the own search even where the native
    library loads (the native copy failed on this crop). ``step(fraction, label)`` is called between the scales of
    the guided search, before and after the native one; it may raise to cancel."""
    strength = check_strength(strength)
    structure = np.clip(np.nan_to_num(inp.structure.astype(np.float32), nan=0.5), 0.0, 1.0)
    hole = inp.hole.astype(bool)
    if strength == 0.0 or not hole.any():
        return TextureResult(structure)
    h, w = hole.shape
    blocked, sources = blocked_and_sources(hole, inp.excluded)
    side = 2 * PATCH_RADIUS + 1
    if h < side or w < side or sources < MIN_SOURCES:
        return TextureResult(structure, "Not enough known pixels around the hole to copy texture from; "
                                        "the structure fill was used as it is.")
    image = np.ascontiguousarray(inp.image[..., :3], dtype=np.uint8)
    module = load_patchmatch()[0] if native else None
    drawn = draws_through(inp)
    edge_map = np.where(hole, inp.edges, inp.source_edges).astype(np.float32) if drawn else None
    unknown = inp.excluded.astype(bool) & ~hole  # other holes of the user's mask: their colours mean nothing
    band = hole & dilate(hole & (inp.edges > 0), LINE_BAND) if drawn else None  # what the line's search fills
    if module is None:  # the own search stands in for the whole hole where the native library fails
        copied = guided_copy(image, hole, blocked, structure, edge_map, LINE_WEIGHTS if drawn else UNGUIDED,
                             PATCH_RADIUS, SEED, step, unknown)
        if copied is None:
            return TextureResult(structure, "Not enough known pixels around the hole to copy texture from; "
                                            "the structure fill was used as it is.")
    else:
        if step is not None:
            step(0.0, "texture")
        if copied is None:
            copied = native_copy(module, image, hole, blocked)
        if drawn:
            copied = _along_the_line(image, hole, blocked, unknown, structure, edge_map, copied, band, step)
        if step is not None:
            step(1.0, "texture")
    full = compose(structure, copied, image, hole, inp.structure_scale, band)
    out = structure + np.float32(strength) * (full - structure)
    return TextureResult(np.where(hole[..., None], np.clip(out, 0.0, 1.0), structure).astype(np.float32))


def _along_the_line(image: np.ndarray, hole: np.ndarray, blocked: np.ndarray, unknown: np.ndarray,
                    structure: np.ndarray, edge_map: np.ndarray, copied: np.ndarray, band: np.ndarray,
                    step: StepFn | None) -> np.ndarray:
    """``copied`` with ``band`` (the hole within ``LINE_BAND`` px of the drawn line) re-filled by the own search
    that follows the line, in the context of ``copied`` (the rest of the hole is never a source)."""
    context = np.where(hole[..., None], np.clip(copied * 255 + 0.5, 0, 255), image).astype(np.uint8)
    along = guided_copy(context, band, blocked | (hole & ~band), structure, edge_map, LINE_WEIGHTS, PATCH_RADIUS,
                        SEED, step, unknown, coarse_hole_share=LINE_COARSE_HOLE_SHARE)
    return copied if along is None else np.where(band[..., None], along, copied).astype(np.float32)

