"""Put a fill back into the photo: known pixels byte-identical, a seam blend inside the hole, optional Poisson.

The seam blend never writes a known pixel. It measures the colour mismatch between the fill and the photo
on a thin ring of known pixels around the hole (``RING`` px wide), spreads that offset into the hole by
normalised Gaussian interpolation along the seam, and fades it out over ``FADE`` px from the hole edge. A
fill that already agrees with its surroundings (Telea, Navier-Stokes) is left as it is. The work runs on
tiles that meet the seam only, so a huge hole costs its perimeter, not its area.

Poisson blending (GLCIC's post-process) solves for the hole so that its gradients are the fill's and its
boundary values are the photo's, with our own conjugate-gradient solver on the hole's box only (OpenCV 5's
``seamlessClone`` reads the destination's pixels inside the mask, so hole content would leak through it).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.pixels import to_uint8

RING = 3  # px of known pixels around the hole whose mismatch is measured
FADE = 8  # px into the hole over which the seam correction fades out
SIGMA = 2.0  # px: smoothing of the measured mismatch along the seam
TILE = 128  # px: seam work runs on tiles of this size that meet the seam
HALO = RING + FADE + math.ceil(3 * SIGMA) + 2  # px of context around each tile
BOX_MARGIN = HALO  # px around the hole's bounding box that the composite needs
MAX_POISSON_PIXELS = 512 * 512  # larger boxes solve the Poisson correction on a shrunk grid


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _seam_tile(original: np.ndarray, fill: np.ndarray, hole: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Offset (float32 h x w x 3) to add inside the hole of one tile (with its halo)."""
    weight = ring.astype(np.float32)
    diff = (original.astype(np.float32) * np.float32(1 / 255) - fill) * weight[..., None]
    num = cv2.GaussianBlur(diff, (0, 0), SIGMA)
    den = cv2.GaussianBlur(weight, (0, 0), SIGMA)
    depth = cv2.distanceTransform(hole.view(np.uint8), cv2.DIST_L2, 3)
    fade = np.clip(1.0 - (depth - 0.5) / FADE, 0.0, 1.0) * hole
    scale = np.where(den > 1e-3, fade / np.maximum(den, 1e-3), 0.0).astype(np.float32)
    return num * scale[..., None]


def seam_blend(original: np.ndarray, fill: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill (float32 [0, 1]) corrected near the hole edge so it meets the known ring without a step.

    ``original`` uint8 H x W x 3 (only pixels outside ``mask`` are read), ``fill`` float32 or uint8,
    ``mask`` bool (True = hole). Only hole pixels of the returned array differ from ``fill``.
    """
    fill_f = fill.astype(np.float32) * np.float32(1 / 255) if fill.dtype == np.uint8 else fill.astype(np.float32)
    hole = np.ascontiguousarray(mask, dtype=bool)
    hole_u8 = hole.view(np.uint8)
    ring = cv2.dilate(hole_u8, _disk(RING)).astype(bool) & ~hole
    if not ring.any():
        return fill_f
    if np.abs(original[ring].astype(np.float32) * np.float32(1 / 255) - fill_f[ring]).max() < 0.5 / 255:
        return fill_f  # already continuous (classical fills keep the known pixels exactly)
    # Tiles whose core holds hole pixels within FADE of the edge.
    band = hole & ~cv2.erode(hole_u8, _disk(FADE + 1), borderType=cv2.BORDER_REPLICATE).astype(bool)
    height, width = hole.shape
    for ty in range(0, height, TILE):
        for tx in range(0, width, TILE):
            if not band[ty:ty + TILE, tx:tx + TILE].any():
                continue
            y0, x0 = max(0, ty - HALO), max(0, tx - HALO)
            y1, x1 = min(height, ty + TILE + HALO), min(width, tx + TILE + HALO)
            offset = _seam_tile(original[y0:y1, x0:x1], fill_f[y0:y1, x0:x1], hole[y0:y1, x0:x1],
                                ring[y0:y1, x0:x1])
            cy1, cx1 = min(height, ty + TILE), min(width, tx + TILE)
            fill_f[ty:cy1, tx:cx1] += offset[ty - y0:cy1 - y0, tx - x0:cx1 - x0]
    np.clip(fill_f, 0.0, 1.0, out=fill_f)
    return fill_f


def _pull_push(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Smooth scattered-data interpolation: ``values`` where ``weight`` is 1, a coarse-to-fine fill elsewhere."""
    height, width = weight.shape
    if max(height, width) <= 4 or weight.sum() == 0:
        total = float(weight.sum())
        mean = (values * weight[..., None]).sum(axis=(0, 1)) / max(total, 1e-6)
        return np.broadcast_to(mean.astype(np.float32), values.shape).copy()
    half = (max(1, (width + 1) // 2), max(1, (height + 1) // 2))
    small_w = cv2.resize(weight, half, interpolation=cv2.INTER_AREA)
    small_v = cv2.resize(values * weight[..., None], half, interpolation=cv2.INTER_AREA)
    small_v = small_v.reshape(half[1], half[0], -1) / np.maximum(small_w, 1e-6)[..., None]
    coarse = _pull_push(small_v, np.minimum(1.0, small_w * 4.0).astype(np.float32))
    up = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR).reshape(values.shape)
    return weight[..., None] * values + (1.0 - weight[..., None]) * up


def _solve_membrane(boundary: np.ndarray, hole: np.ndarray, iterations: int) -> np.ndarray:
    """Harmonic interpolation (Laplace equation) of ``boundary`` values into ``hole`` (float32 H x W x 3).

    Dirichlet values come from the known pixels next to the hole; the array edge is a free (Neumann)
    edge. Conjugate gradients on the 5-point Laplacian, started from a pull-push interpolation.
    """
    known = ~hole
    guess = _pull_push(boundary * known[..., None], known.astype(np.float32))
    x = torch.from_numpy(np.ascontiguousarray(guess.transpose(2, 0, 1)))[None]  # 1 x 3 x H x W
    h_mask = torch.from_numpy(hole)[None, None].float()
    k_vals = torch.from_numpy(np.ascontiguousarray((boundary * known[..., None]).transpose(2, 0, 1)))[None]
    inside = torch.ones_like(h_mask)

    def neighbours(t: torch.Tensor) -> torch.Tensor:
        """Sum of the 4 neighbours (zero outside the array)."""
        p = F.pad(t, (1, 1, 1, 1))
        return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]

    degree = neighbours(inside)
    b = neighbours(k_vals) * h_mask  # known neighbours' values

    def apply(v: torch.Tensor) -> torch.Tensor:
        return (degree * v - neighbours(v * h_mask)) * h_mask

    x = x * h_mask
    r = b - apply(x)
    p = r.clone()
    rs = (r * r).sum(dim=(2, 3), keepdim=True)
    for _ in range(iterations):
        ap = apply(p)
        alpha = rs / (p * ap).sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = (r * r).sum(dim=(2, 3), keepdim=True)
        if float(rs_new.max()) < 1e-10 * hole.sum():
            break
        p = r + (rs_new / rs.clamp_min(1e-20)) * p
        rs = rs_new
    out = x[0].permute(1, 2, 0).numpy()
    return np.where(hole[..., None], out, boundary).astype(np.float32)


def poisson_blend(original: np.ndarray, fill: np.ndarray, mask: np.ndarray, iterations: int | None = None
                  ) -> np.ndarray:
    """Float32 fill whose hole solves the Poisson equation: the fill's gradients, the photo's boundary values.

    Solved for the correction ``photo - fill``: harmonic inside the hole, equal to the mismatch on the
    known pixels around it (GLCIC's post-process, on the hole's box only). The photo's hole is never read.
    Conjugate gradients need about as many iterations as the grid is wide to carry the boundary values
    across it: by default twice the long side of the grid solved (at least 100); a fixed 100 left up to 7
    levels of the mismatch in holes wider than about 300 px. The solve stops early once converged.
    """
    fill_f = fill.astype(np.float32) * np.float32(1 / 255) if fill.dtype == np.uint8 else fill.astype(np.float32)
    hole = np.ascontiguousarray(mask, dtype=bool)
    difference = original.astype(np.float32) * np.float32(1 / 255) - fill_f
    difference[hole] = 0.0
    height, width = hole.shape
    if height * width <= MAX_POISSON_PIXELS:
        steps = iterations if iterations is not None else max(100, 2 * max(height, width))
        out = fill_f + _solve_membrane(difference, hole, steps)
        np.clip(out, 0.0, 1.0, out=out)
        return out
    # Large holes: the correction is harmonic, hence smooth; solve it on a shrunk grid, upsample it, and let
    # the seam blend settle the last pixels at the edge.
    factor = math.sqrt(height * width / MAX_POISSON_PIXELS)
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    known = (~hole).astype(np.float32)
    known_small = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    diff_small = cv2.resize(difference, size, interpolation=cv2.INTER_AREA) / np.maximum(known_small, 1e-6)[..., None]
    hole_small = known_small < 0.999
    steps = iterations if iterations is not None else max(100, 2 * max(size))
    correction = cv2.resize(_solve_membrane(diff_small, hole_small, steps), (width, height),
                            interpolation=cv2.INTER_LINEAR)
    out = fill_f + correction
    np.clip(out, 0.0, 1.0, out=out)
    return seam_blend(original, out, hole)


def composite_into(dest: np.ndarray, original: np.ndarray, fill: np.ndarray, mask: np.ndarray,
                   poisson: bool = False, blend: bool = True) -> None:
    """Write the (blended) fill into ``dest`` at the hole pixels only; every other pixel of ``dest`` is untouched.

    ``dest``, ``original``, ``fill`` and ``mask`` cover the same area (typically the hole's box plus
    ``BOX_MARGIN``): ``original`` uint8 (its hole is never read), ``fill`` float32 [0, 1] or uint8.
    """
    if poisson:  # the Poisson solution already meets the photo at the seam: no further blend needed
        inside = to_uint8(poisson_blend(original, fill, mask))
    else:
        inside = to_uint8(seam_blend(original, fill, mask) if blend else fill)
    np.copyto(dest, inside, where=mask[..., None])


def composite(original: np.ndarray, fill: np.ndarray, mask: np.ndarray, poisson: bool = False,
              blend: bool = True) -> np.ndarray:
    """uint8 copy of ``original`` with the (blended) fill in the hole; outside ``mask`` byte for byte."""
    out = original.copy()
    composite_into(out, original, fill, mask, poisson, blend)
    return out
