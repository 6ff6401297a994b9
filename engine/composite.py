"""Put a fill back into the photo: known pixels byte-identical, a seam blend inside the hole, optional Poisson.

The seam blend never writes a known pixel. It measures the colour mismatch between the fill and the photo
on a thin ring of known pixels around the hole (``RING`` px wide), spreads that offset a few pixels into
the hole by normalised Gaussian interpolation, and fades it out over ``FADE`` px from the hole edge. A fill
that already agrees with its surroundings (Telea, Navier-Stokes) is left as it is.

Poisson blending (GLCIC's post-process) solves for the hole so that its gradients are the fill's and its
boundary values are the photo's, using OpenCV's ``seamlessClone`` on the crop only (never the full photo).
"""

from __future__ import annotations

import cv2
import numpy as np

RING = 3  # px of known pixels around the hole whose mismatch is measured
FADE = 8  # px into the hole over which the seam correction fades out
SIGMA = 2.0  # px: smoothing of the measured mismatch along the seam


def to_uint8(fill: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 from a float fill in [0, 1] (rounded) or a uint8 fill (as is)."""
    if fill.dtype == np.uint8:
        return fill
    return (np.clip(fill, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def seam_blend(original: np.ndarray, fill: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill (float32 [0, 1]) corrected near the hole edge so it meets the known ring without a step.

    ``original`` uint8 H x W x 3 (only pixels outside ``mask`` are read), ``fill`` float32 or uint8,
    ``mask`` bool (True = hole). Only hole pixels of the returned array matter.
    """
    hole = mask.astype(np.uint8)
    ring = cv2.dilate(hole, _disk(RING)).astype(bool) & ~mask
    fill_f = fill.astype(np.float32) * np.float32(1 / 255) if fill.dtype == np.uint8 else fill.astype(np.float32)
    if not ring.any():
        return fill_f
    diff = np.zeros_like(fill_f)
    diff[ring] = original[ring].astype(np.float32) * np.float32(1 / 255) - fill_f[ring]
    if float(np.abs(diff[ring]).max()) < 0.5 / 255:
        return fill_f  # already continuous (classical fills keep the known pixels exactly)
    weight = ring.astype(np.float32)
    num = cv2.GaussianBlur(diff, (0, 0), SIGMA)
    den = cv2.GaussianBlur(weight, (0, 0), SIGMA)
    # Inside the hole: the smoothed mismatch of the nearby ring, faded with the distance to the hole edge.
    depth = cv2.distanceTransform(hole, cv2.DIST_L2, 3)
    fade = np.clip(1.0 - (depth - 0.5) / FADE, 0.0, 1.0)
    reach = cv2.dilate(ring.astype(np.uint8), _disk(FADE)).astype(bool) & mask
    offset = np.zeros_like(fill_f)
    ok = reach & (den > 1e-3)
    offset[ok] = num[ok] / den[ok][:, None] * fade[ok][:, None]
    out = fill_f + offset
    np.clip(out, 0.0, 1.0, out=out)
    return out


def poisson_blend(original: np.ndarray, fill: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 whose hole solves the Poisson equation: fill's gradients, the photo's boundary values."""
    fill_u8 = to_uint8(fill)
    base = original.copy()
    base[mask] = fill_u8[mask]  # no photo pixel under the mask can reach the solver
    pad = 2
    # Pad so the solver's mask never touches the array edge (OpenCV needs a border around it); the padding
    # repeats the composited crop, so a hole touching the photo border takes the fill's own values there.
    dst = cv2.copyMakeBorder(base, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    src = cv2.copyMakeBorder(fill_u8, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    region = cv2.dilate(mask.astype(np.uint8), _disk(1))
    region = cv2.copyMakeBorder(region, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0) * 255
    x, y, w, h = cv2.boundingRect(region)
    center = (x + w // 2, y + h // 2)
    try:
        blended = cv2.seamlessClone(src, dst, region, center, cv2.NORMAL_CLONE)
    except cv2.error:
        return base
    return blended[pad:-pad, pad:-pad]


def composite(original: np.ndarray, fill: np.ndarray, mask: np.ndarray, poisson: bool = False,
              blend: bool = True) -> np.ndarray:
    """uint8 crop: ``original`` outside ``mask`` byte for byte, the (blended) fill inside."""
    if poisson:
        inside = poisson_blend(original, seam_blend(original, fill, mask) if blend else fill, mask)
    else:
        inside = to_uint8(seam_blend(original, fill, mask) if blend else fill)
    out = original.copy()
    out[mask] = inside[mask]
    return out
