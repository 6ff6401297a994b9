"""Held-out holes for internal fine-tuning: parts of the photo's known area that training never sees.

Validating an internal fine-tune on crops it also trains on says little: the model may have memorised
those very pixels. So a few blob-shaped holes are carved out of the known area before training starts,
added to the pixels the training data treats as unknown (like the user's own hole), and validation fills
exactly those holes. Their before/after PSNR is then a fair preview of what the fine-tune does to the
user's real hole.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from engine.edges import known_edges
from trainer.data import _item, _resize

HOLDOUT_GAP_PX = 12  # held-out holes keep this far from the user's hole and from each other


def blob(h: int, w: int, rng: np.random.Generator, area: float) -> np.ndarray:
    """A filled random ellipse covering about ``area`` of an ``h`` x ``w`` image, anywhere in it."""
    mask = np.zeros((h, w), np.uint8)
    ratio = rng.uniform(0.6, 1.6)
    ry = np.sqrt(area * h * w / np.pi / ratio)
    rx = ry * ratio
    cy = rng.uniform(ry, h - ry) if h > 2 * ry else h / 2
    cx = rng.uniform(rx, w - rx) if w > 2 * rx else w / 2
    cv2.ellipse(mask, (round(cx), round(cy)), (round(rx), round(ry)), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask > 0


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


def place_holes(user_mask: np.ndarray, count: int, rng: np.random.Generator,
                area: tuple[float, float] = (0.01, 0.02), tries: int = 200) -> np.ndarray:
    """Up to ``count`` blobs of ``area`` (fraction of the photo) in the known area, ``HOLDOUT_GAP_PX`` or more
    from ``user_mask`` and from each other. Fewer come back when the known area has no room for them."""
    h, w = user_mask.shape
    taken = _grow(user_mask, HOLDOUT_GAP_PX)
    holes = np.zeros((h, w), bool)
    for _ in range(count):
        for _attempt in range(tries):
            hole = blob(h, w, rng, float(rng.uniform(*area)))
            if hole.any() and not (hole & taken).any():
                holes |= hole
                taken |= _grow(hole, HOLDOUT_GAP_PX)
                break
    return holes


def holdout_items(image_rgb: np.ndarray, user_mask: np.ndarray, holes: np.ndarray, size: int,
                  edge_sigma: float, margin: float = 0.5, scale: float = 1.0) -> list[dict[str, torch.Tensor]]:
    """One validation item per held-out hole, in the format of ``InternalPhotoDataset`` items.

    The crop is a square around the hole of ``size / scale`` px (the scale training crops are cut at, which is
    the scale the engine fills the user's hole at: a fine-tune specialises to it quickly, so validating at
    another scale misjudges it), enlarged when needed to give the hole ``margin`` x its extent of context on
    each side, at most the photo's short side; resized to ``size``. ``mask`` is the held-out hole plus
    any of the user's hole in the crop; ``valid`` is 0 on the user's hole, so only the held-out pixels are
    scored. ``edges`` are the crop's Canny edges outside the user's hole, as in training.
    """
    h, w = user_mask.shape
    count, labels = cv2.connectedComponents(holes.astype(np.uint8))
    items = []
    for label in range(1, count):
        ys, xs = np.nonzero(labels == label)
        extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        window = int(min(min(h, w), max(round(size / scale), round(extent * (1 + 2 * margin)))))
        cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
        top = int(np.clip(cy - window // 2, 0, h - window))
        left = int(np.clip(cx - window // 2, 0, w - window))
        crop = _resize(image_rgb[top:top + window, left:left + window], size, cv2.INTER_LINEAR)
        user = _covered(user_mask[top:top + window, left:left + window], size)
        hole = _covered(labels[top:top + window, left:left + window] == label, size) & ~user
        if not hole.any():
            continue
        crop = np.ascontiguousarray(crop)
        if user.any():
            crop = crop.copy()
            crop[user] = np.round(crop[~user].reshape(-1, 3).mean(axis=0)).astype(np.uint8)
        item = _item(crop, known_edges(crop, user, edge_sigma), hole | user, edge_sigma)
        item["valid"] = torch.from_numpy(~user)[None].float()
        items.append(item)
    return items


def _covered(mask: np.ndarray, size: int) -> np.ndarray:
    """``mask`` resized to ``size`` x ``size``; an output pixel is set when any source pixel under it is."""
    if mask.shape == (size, size):
        return mask.copy()
    down = mask.shape[0] > size
    coverage = cv2.resize(mask.astype(np.float32), (size, size),
                          interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)
    return coverage > 0
