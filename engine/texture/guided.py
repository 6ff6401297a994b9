"""Guided multi-scale PatchMatch / EM completion (Wexler et al. 2007) of this project's own.

Texture is copied from the photo at full resolution, but *which* patches are copied is steered by a guide:
every patch distance adds, over the whole patch, the low pass of the candidate against the structure fill
(grass where the structure says grass, sky where it says sky) and, when a line is drawn, the edge map.

- Pyramid: the crop is halved until the hole spans about two patches; the coarsest estimate starts as the
  structure fill, and each finer level starts from the coarser level's matches (scaled up), not from its blurred
  vote, so the copied detail comes from full-resolution sources.
- Each level alternates PatchMatch searches (kernel.search) with Wexler's similarity-weighted vote
  (kernel.vote). The guide keeps the vote from drifting to one uniform texture: neighbouring hole pixels with a
  different structure keep different sources.
- Sources: known pixels whose whole patch avoids the hole and ``blocked`` (the user's mask and its ring).
- Deterministic for a seed; ``step(fraction, label)`` is called between levels and may raise to cancel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from engine.texture import kernel

StepFn = Callable[[float, str], None]


@dataclass(frozen=True)
class GuideWeights:
    """Weights of the patch distance's terms (colours are in [0, 1])."""

    guide: float = 16.0  # low pass of the candidate against the structure's, per channel
    hole_colour: float = 1.0  # the current estimate's colours in the hole (known pixels weigh 1)
    edge: float = 0.0  # the edge map (the user's line in the hole, the photo's edges elsewhere)


GUIDE_SIGMA = 2.0  # px at every level: the low pass the guide compares
EDGE_SIGMA = 1.0  # px: lets an edge match a neighbouring one
COARSEST_HOLE = 2  # px: the pyramid stops once the hole's longer side is at most this
# A coarse pixel is a hole only where (nearly) all the pixels under it are: thin strokes fade out of the coarse
# levels, which keep their sources and their colours (as in the wheel's pyramid). Counting a coarse pixel as a
# hole wherever any pixel under it was one grew the 10-20 % strokes into a hole over most of the crop at the
# coarse levels, whose few sources then set wrong colours (own search on 16 x 5: 26.37 -> 27.79 dB there).
COARSE_HOLE_SHARE = 0.999
MIN_SIDE = 8  # px: nor does a level get smaller than this
MIN_LEVEL_SOURCES = 64  # nor does a level keep fewer source patches than this
EM_FINE, EM_PER_LEVEL = 1, 2  # EM iterations: EM_FINE at full resolution, 1 + EM_PER_LEVEL x level above it
PM_MAX = 7  # PatchMatch iterations per EM iteration: 1 + level, at most this
COHERENCE = 1.0  # a random candidate must be (1 + this) x better than the propagated match: no pixel mesh
VOTE_PERCENTILE = 75  # Wexler: the vote weighs patches by exp(-d / 2 sigma^2), sigma^2 this percentile of d


def _half(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[:2]
    return cv2.resize(x, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)


def _masked_blur(x: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``x`` counting only pixels where ``weight`` is 1 (normalised convolution)."""
    wb = cv2.GaussianBlur(weight.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    xb = cv2.GaussianBlur(x * weight[..., None], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return (xb / np.maximum(wb, 1e-4)[..., None]).astype(np.float32)


@dataclass
class _Level:
    colour: np.ndarray  # h x w x 3 float32: the photo (meaningless in hole and blocked)
    structure: np.ndarray  # h x w x 3 float32: the structure fill (used in the hole)
    hole: np.ndarray  # h x w bool
    blocked: np.ndarray  # h x w bool: neither filled nor a source
    edges: np.ndarray | None  # h x w float32: the edge map (line in the hole, photo's edges elsewhere)
    unknown: np.ndarray  # h x w bool: pixels outside the hole whose colours carry no weight


def _pyramid(base: _Level, r: int, hole_share: float) -> list[_Level]:
    """Levels from the finest (index 0) to the coarsest; a coarse pixel is a hole where more than ``hole_share``
    of the pixels under it are."""
    levels = [base]
    ys, xs = np.nonzero(base.hole)
    extent = max(int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1))
    while extent > COARSEST_HOLE and min(levels[-1].hole.shape) // 2 >= max(MIN_SIDE, 2 * r + 1):
        top = levels[-1]
        known = (~(top.hole | top.unknown)).astype(np.float32)  # blocked pixels hold real colours: context
        kh = _half(known)
        colour = _half(top.colour * known[..., None]) / np.maximum(kh, 1e-4)[..., None]
        hole = _half(top.hole.astype(np.float32)) > hole_share
        blocked = (_half(top.blocked.astype(np.float32)) > 0) & ~hole
        edges = None if top.edges is None else _half(top.edges)
        unknown = (_half(top.unknown.astype(np.float32)) > 0) & ~hole
        level = _Level(colour.astype(np.float32), _half(top.structure), hole, blocked, edges, unknown)
        if not hole.any() or int(_sources(level, r).sum()) < MIN_LEVEL_SOURCES:  # nothing left to fill, or to copy
            break
        levels.append(level)
        extent = (extent + 1) // 2
    return levels


def _features(level: _Level, estimate: np.ndarray, weights: GuideWeights) -> tuple[np.ndarray, np.ndarray]:
    """(feature image, channel weights): colours (estimate in the hole), the guide, the edge map."""
    usable = ~level.blocked
    composite = np.where(level.hole[..., None], level.structure, level.colour)
    guide = _masked_blur(composite, usable.astype(np.float32), GUIDE_SIGMA)
    channels = [np.where(level.hole[..., None], estimate, level.colour), guide]
    channel_weight = [1.0, 1.0, 1.0, weights.guide, weights.guide, weights.guide]
    if level.edges is not None and weights.edge > 0:
        edges = cv2.GaussianBlur(level.edges, (0, 0), EDGE_SIGMA, borderType=cv2.BORDER_REFLECT)
        channels.append(edges[..., None] / max(float(edges.max()), 1e-6))
        channel_weight.append(weights.edge)
    return (np.ascontiguousarray(np.concatenate(channels, axis=-1), dtype=np.float32),
            np.asarray(channel_weight, np.float32))


def _sources(level: _Level, r: int) -> np.ndarray:
    side = 2 * r + 1
    free = (~(level.hole | level.blocked)).astype(np.uint8)
    return cv2.erode(free, np.ones((side, side), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def _upsample_nnf(coarse: np.ndarray, coarse_cost: np.ndarray, coarse_targets: np.ndarray, shape: tuple[int, int],
                  source_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The coarse matches scaled to ``shape``: (nnf, cost, ok) where ``ok`` marks entries that had a coarse match
    (a stroke that faded out of the coarse level has none) and landed on a source; ``cost`` is the coarse match's."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = np.minimum(yy // 2, coarse.shape[0] - 1), np.minimum(xx // 2, coarse.shape[1] - 1)
    ny = np.clip(2 * coarse[cy, cx, 0] + yy % 2, 0, h - 1)
    nx = np.clip(2 * coarse[cy, cx, 1] + xx % 2, 0, w - 1)
    matched = coarse_targets[cy, cx] & source_ok[ny, nx]
    return np.stack([ny, nx], axis=-1).astype(np.int32), coarse_cost[cy, cx], matched


def guided_copy(image: np.ndarray, hole: np.ndarray, blocked: np.ndarray, structure: np.ndarray,
                edges: np.ndarray | None = None, weights: GuideWeights = GuideWeights(), patch_radius: int = 3,
                seed: int = 0, step: StepFn | None = None, unknown: np.ndarray | None = None,
                coarse_hole_share: float = COARSE_HOLE_SHARE) -> np.ndarray | None:
    """The hole of ``image`` (h x w x 3 uint8) completed from its known pixels, as h x w x 3 float32 in [0, 1]
    (equal to the photo outside the hole), or None when too few sources remain at some level.

    ``structure`` (h x w x 3 float32 in [0, 1]) is the structure fill in the hole; ``edges`` (h x w float32, or
    None) the edge map the copy should follow where ``weights.edge`` is above zero; ``unknown`` (h x w bool, or
    None) known-looking pixels whose colours carry no weight in a patch (another hole of the user's mask);
    ``coarse_hole_share``: see ``COARSE_HOLE_SHARE``."""
    r = patch_radius
    hole = hole.astype(bool)
    colour = image[..., :3].astype(np.float32) * np.float32(1 / 255)
    base = _Level(colour, structure.astype(np.float32), hole, blocked.astype(bool) & ~hole,
                  None if edges is None else edges.astype(np.float32),
                  np.zeros_like(hole) if unknown is None else unknown.astype(bool) & ~hole)
    levels = _pyramid(base, r, coarse_hole_share)
    nnf: np.ndarray | None = None
    cost = up_cost = np.zeros((1, 1), np.float32)
    coarse_targets = np.zeros((1, 1), bool)
    sigma2 = 1.0
    estimate = levels[-1].structure.copy()
    count = len(levels)
    for index in range(count - 1, -1, -1):
        if step is not None:
            step((count - 1 - index) / count, "texture")
        level = levels[index]
        source_ok = _sources(level, r)
        sources_y, sources_x = (a.astype(np.int32) for a in np.nonzero(source_ok))
        if sources_y.size < 16:
            return None
        side = 2 * r + 1
        targets = cv2.dilate(level.hole.astype(np.uint8), np.ones((side, side), np.uint8)) > 0
        targets_y, targets_x = (a.astype(np.int32) for a in np.nonzero(targets))
        h, w = level.hole.shape
        if nnf is None:
            nnf = np.zeros((h, w, 2), np.int32)
            kernel.random_init(targets_y, targets_x, nnf, sources_y, sources_x, seed)
        else:
            nnf, up_cost, ok = _upsample_nnf(nnf, cost, coarse_targets, (h, w), source_ok)
            redo = targets & ~ok
            ry, rx = (a.astype(np.int32) for a in np.nonzero(redo))
            kernel.random_init(ry, rx, nnf, sources_y, sources_x, seed + index)
            up_cost = np.where(redo, np.float32(3.0e38), up_cost).astype(np.float32)
            estimate = cv2.resize(estimate, (w, h), interpolation=cv2.INTER_LINEAR)
            # Start this level from the coarse matches' full-resolution colours, not from the coarse blur
            # (Wexler et al.: the last vote of a level is cast at the next one).
            kernel.vote(level.colour, level.hole, targets_y, targets_x, nnf, up_cost, r, sigma2, estimate)
        coarse_targets = targets
        cost = np.full((h, w), np.float32(3.0e38), np.float32)
        em = EM_FINE if index == 0 else 1 + EM_PER_LEVEL * index
        pm_iterations = min(PM_MAX, 1 + index)
        for it in range(em):
            features, channel_weight = _features(level, estimate, weights)
            colour_weight = np.where(level.hole, np.float32(weights.hole_colour),
                                     np.where(level.unknown, np.float32(0.0), np.float32(1.0))).astype(np.float32)
            kernel.search(features, colour_weight, channel_weight, targets_y, targets_x, nnf, cost, source_ok,
                          sources_y, sources_x, r, pm_iterations, seed + 7919 * index + it, COHERENCE)
            sigma2 = max(float(np.percentile(cost[targets_y, targets_x], VOTE_PERCENTILE)), 1e-6)
            kernel.vote(level.colour, level.hole, targets_y, targets_x, nnf, cost, r, sigma2, estimate)
    # The last vote takes, for each pixel, the colour of the cheapest patch over it: the mean of overlapping
    # patches blurs wherever two of them copy from different places (texture 0.71 against 0.86 on val).
    kernel.vote_best(levels[0].colour, levels[0].hole, targets_y, targets_x, nnf, cost if EM_FINE else up_cost, r,
                     estimate)
    if step is not None:
        step(1.0, "texture")
    return np.where(hole[..., None], np.clip(estimate, 0.0, 1.0), colour).astype(np.float32)
