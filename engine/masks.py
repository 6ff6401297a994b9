"""Synthetic hole masks for training and evaluation (bool H x W, True = hole).

Pure numpy/OpenCV. Every function draws all its randomness from the ``np.random.Generator`` it is given,
so the same generator state always gives the same mask.

Kinds:
- ``rectangle_mask``: one axis-aligned rectangle, each side a uniform fraction of the image side (DeepGIN).
- ``free_form_mask``: DeepFill v2 brush strokes (Yu et al. 2019, ``random_ff_mask``).
- ``augment_irregular``: flip / rotate / dilate / crop-resize of a mask read from a file (NVIDIA set).
- ``cellular_automata_mask``: blob-like holes grown by a birth/survival rule (AIM 2020 challenge style).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: Side length the DeepFill v2 stroke widths (12-40 px) were chosen for.
FREE_FORM_REFERENCE_SIDE = 256


def hole_ratio(mask: np.ndarray) -> float:
    """Share of hole pixels in ``mask`` (0.0 for an empty array)."""
    mask = np.asarray(mask)
    return float(mask.astype(bool).mean()) if mask.size else 0.0


def _check_size(h: int, w: int) -> None:
    if int(h) < 1 or int(w) < 1:
        raise ValueError(f"mask size must be at least 1 x 1, got {h} x {w}")


def _check_range(name: str, value: tuple[float, float], low: float = 0.0, high: float = 1.0) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (low <= lo <= hi <= high):
        raise ValueError(f"{name} must satisfy {low} <= low <= high <= {high}, got {value}")
    return lo, hi


def rectangle_mask(h: int, w: int, rng: np.random.Generator,
                   side_range: tuple[float, float] = (0.3, 0.7)) -> np.ndarray:
    """One rectangle whose height and width are each a uniform fraction of the image side, at a random place.

    Each side is ``round(fraction * side)`` clamped to ``[1, side]``, so it lies within ``side_range``
    up to rounding (half a pixel).
    """
    _check_size(h, w)
    lo, hi = _check_range("side_range", side_range)
    rh = min(h, max(1, round(rng.uniform(lo, hi) * h)))
    rw = min(w, max(1, round(rng.uniform(lo, hi) * w)))
    top = int(rng.integers(0, h - rh + 1))
    left = int(rng.integers(0, w - rw + 1))
    mask = np.zeros((h, w), dtype=bool)
    mask[top:top + rh, left:left + rw] = True
    return mask


def free_form_mask(h: int, w: int, rng: np.random.Generator, strokes: tuple[int, int] = (1, 4),
                   vertices: tuple[int, int] = (4, 11), width_range: tuple[float, float] = (12.0, 40.0),
                   reference_side: int = FREE_FORM_REFERENCE_SIDE) -> np.ndarray:
    """DeepFill v2 free-form strokes: ``strokes`` polylines, each a start point plus ``vertices`` more vertices
    (DeepFill's ``num_vertex``; both ranges inclusive).

    Follows ``random_ff_mask`` of the DeepFill v2 code: each stroke starts at a random point and turns by
    angles alternating around 2*pi/5 (+- up to 2*pi/15); segment lengths are normal around a radius of
    one eighth of the image diagonal; lines have round joints; the whole mask is then randomly flipped.

    Scaling: ``width_range`` is in pixels for a ``reference_side`` (256) image and is multiplied by
    ``sqrt(h * w) / reference_side`` (the geometric-mean side), so a stroke covers the same share of the
    image at any resolution and aspect ratio. Segment lengths already scale with the diagonal. Widths are
    at least 1 px.
    """
    _check_size(h, w)
    s_lo, s_hi = (int(v) for v in strokes)
    v_lo, v_hi = (int(v) for v in vertices)
    if not (1 <= s_lo <= s_hi) or not (1 <= v_lo <= v_hi):
        raise ValueError(f"strokes and vertices must be ranges of positive integers, got {strokes}, {vertices}")
    w_lo, w_hi = _check_range("width_range", width_range, 0.0, math.inf)
    scale = math.sqrt(h * w) / float(reference_side)
    mean_angle = 2 * math.pi / 5
    angle_range = 2 * math.pi / 15
    radius = math.sqrt(h * h + w * w) / 8
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(s_lo, s_hi + 1))):
        n = int(rng.integers(v_lo, v_hi + 1))
        angle_min = mean_angle - rng.uniform(0, angle_range)
        angle_max = mean_angle + rng.uniform(0, angle_range)
        angles = rng.uniform(angle_min, angle_max, size=n)
        angles[::2] = 2 * math.pi - angles[::2]
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        points = [(x, y)]
        for angle in angles:
            r = float(np.clip(rng.normal(radius, radius / 2), 0, 2 * radius))
            x = float(np.clip(x + r * math.cos(angle), 0, w - 1))
            y = float(np.clip(y + r * math.sin(angle), 0, h - 1))
            points.append((x, y))
        width = max(1, round(rng.uniform(w_lo, w_hi) * scale))
        pts = np.round(np.array(points)).astype(np.int32)
        cv2.polylines(mask, [pts.reshape(-1, 1, 2)], False, 1, thickness=width, lineType=cv2.LINE_8)
        for px, py in pts:
            cv2.circle(mask, (int(px), int(py)), width // 2, 1, thickness=-1)
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    if rng.random() < 0.5:
        mask = mask[::-1, :]
    return np.ascontiguousarray(mask.astype(bool))


def augment_irregular(mask: np.ndarray, h: int, w: int, rng: np.random.Generator, max_rotation: float = 45.0,
                      max_dilation: int = 2, crop_range: tuple[float, float] = (0.75, 1.0)) -> np.ndarray:
    """Augment a mask read from a file (NVIDIA irregular set) and bring it to ``h x w``.

    Steps, in order: horizontal flip (p=0.5), vertical flip (p=0.5), rotation by a uniform angle in
    ``[-max_rotation, max_rotation]`` degrees about the centre (nearest, outside = no hole), dilation with
    a 3x3 cross for 0..``max_dilation`` iterations (scaled by the source size relative to 512), then a
    random crop with the aspect ratio of ``h x w`` whose size is a uniform fraction (``crop_range``) of the
    largest such crop, resized to ``h x w`` with nearest-neighbour interpolation.
    """
    _check_size(h, w)
    c_lo, c_hi = _check_range("crop_range", crop_range)
    if c_lo <= 0:
        raise ValueError(f"crop_range must be above 0, got {crop_range}")
    src = np.asarray(mask).astype(np.uint8)
    if src.ndim != 2 or src.size == 0:
        raise ValueError(f"augment_irregular wants a non-empty 2-D mask, got shape {src.shape}")
    if rng.random() < 0.5:
        src = src[:, ::-1]
    if rng.random() < 0.5:
        src = src[::-1, :]
    src = np.ascontiguousarray(src)
    sh, sw = src.shape
    angle = float(rng.uniform(-max_rotation, max_rotation))
    if angle:
        matrix = cv2.getRotationMatrix2D(((sw - 1) / 2, (sh - 1) / 2), angle, 1.0)
        src = cv2.warpAffine(src, matrix, (sw, sh), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=0)
    iterations = int(rng.integers(0, max_dilation + 1)) if max_dilation > 0 else 0
    if iterations:
        iterations = max(1, round(iterations * max(sh, sw) / 512))
        kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        src = cv2.dilate(src, kernel, iterations=iterations)
    # Largest crop with the target aspect ratio, then a random fraction of it.
    aspect = w / h
    full_w = min(sw, sh * aspect)
    frac = float(rng.uniform(c_lo, c_hi))
    cw = min(sw, max(1, round(full_w * frac)))
    ch = min(sh, max(1, round(full_w * frac / aspect)))
    top = int(rng.integers(0, sh - ch + 1))
    left = int(rng.integers(0, sw - cw + 1))
    crop = np.ascontiguousarray(src[top:top + ch, left:left + cw])
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_NEAREST)
    return out.astype(bool)


def _ca_step(alive: np.ndarray, birth: int, survive: int) -> np.ndarray:
    """One step of a Moore-neighbourhood rule: a dead cell is born with >= ``birth`` live neighbours,
    a live one survives with >= ``survive``. Outside the grid counts as dead."""
    kernel = np.ones((3, 3), np.float32)
    kernel[1, 1] = 0
    neighbours = cv2.filter2D(alive.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)
    neighbours = np.rint(neighbours)
    return np.where(alive, neighbours >= survive, neighbours >= birth)


def cellular_automata_mask(h: int, w: int, rng: np.random.Generator, ratio_range: tuple[float, float] = (0.1, 0.5),
                           cell_range: tuple[float, float] = (4.0, 12.0), steps: tuple[int, int] = (3, 6),
                           birth: int = 5, survive: int = 4, attempts: int = 12) -> np.ndarray:
    """Blob-like holes grown by a cellular automaton (AIM 2020 extreme inpainting challenge style).

    A coarse grid (cell side uniform in ``cell_range`` px, scaled by ``sqrt(h * w) / 256``) is seeded with
    live cells at a random density, evolved for a random number of ``steps`` of the B5678/S45678 rule
    (``birth``/``survive`` thresholds), which turns noise into smooth caves, and upsampled with bilinear
    interpolation and a 0.5 threshold (round blob outlines).

    The hole ratio lands in ``ratio_range``: the seed density is adjusted (bisection) over up to
    ``attempts`` tries; if none lands, the closest try is grown or shrunk along its outline until it does.
    """
    _check_size(h, w)
    lo, hi = _check_range("ratio_range", ratio_range)
    scale = math.sqrt(h * w) / 256.0
    cell = max(1.0, rng.uniform(*cell_range) * scale)
    gh, gw = max(3, round(h / cell)), max(3, round(w / cell))
    n_steps = int(rng.integers(steps[0], steps[1] + 1))
    target = float(rng.uniform(lo, hi))
    # The rule is biased: densities around 0.45-0.55 map to hole ratios spanning most of [0, 1].
    p_lo, p_hi = 0.2, 0.8
    p = 0.35 + 0.3 * target
    best: np.ndarray | None = None
    best_err = math.inf
    for _ in range(max(1, attempts)):
        grid = rng.random((gh, gw)) < p
        for _ in range(n_steps):
            grid = _ca_step(grid, birth, survive)
        mask = cv2.resize(grid.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
        ratio = hole_ratio(mask)
        if lo <= ratio <= hi:
            return mask
        err = lo - ratio if ratio < lo else ratio - hi
        if err < best_err:
            best, best_err = mask, err
        if ratio < lo:
            p_lo = p
        else:
            p_hi = p
        p = (p_lo + p_hi) / 2
    assert best is not None
    return _nudge_ratio(best, lo, hi)


def stroke_mask_in_range(h: int, w: int, rng: np.random.Generator, ratio_range: tuple[float, float],
                         max_strokes: int = 64) -> np.ndarray:
    """Irregular holes of a given hole ratio made procedurally: free-form brush strokes (``free_form_mask``)
    are added until the ratio reaches ``ratio_range``'s low end, then grown or shrunk along the outline into
    the range. Stands in for the NVIDIA irregular masks where that folder is not present."""
    _check_size(h, w)
    lo, hi = _check_range("ratio_range", ratio_range)
    mask = np.zeros((h, w), bool)
    for _ in range(max_strokes):
        if hole_ratio(mask) >= lo:
            break
        mask |= np.asarray(free_form_mask(h, w, rng), bool)
    return _nudge_ratio(mask, lo, hi)


def _nudge_ratio(mask: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Grow or shrink ``mask`` along its outline until its hole ratio is in ``[lo, hi]``.

    Pixels are ranked by signed distance to the outline (inside negative), and the nearest in-range
    number of them is kept as hole, so the result follows the original blobs' shapes.
    """
    m = mask.astype(np.uint8)
    n = m.size
    ratio = float(m.mean())
    k = round(min(max(ratio, lo), hi) * n)
    if k / n < lo:
        k = math.ceil(lo * n)
    elif k / n > hi:
        k = math.floor(hi * n)
    k = min(max(k, 0), n)
    if not m.any() or m.all():
        # No outline to follow: start from a centred square instead.
        side_h = max(1, round(m.shape[0] * math.sqrt((lo + hi) / 2)))
        side_w = max(1, round(m.shape[1] * math.sqrt((lo + hi) / 2)))
        m = np.zeros_like(m)
        top, left = (m.shape[0] - side_h) // 2, (m.shape[1] - side_w) // 2
        m[top:top + side_h, left:left + side_w] = 1
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    signed = np.where(m > 0, -inside, outside).ravel()
    order = np.argsort(signed, kind="stable")
    out = np.zeros(n, dtype=bool)
    out[order[:k]] = True
    return out.reshape(m.shape)

