"""Fill-quality metrics: PSNR, SSIM, L1 %, texture ratio and edge precision/recall (numpy in, float out).

Images are H x W x 3 uint8 (any H x W x C or H x W also works); masks are H x W bool with True = hole.

Conventions, chosen so means over many images stay finite:
- ``psnr`` is capped at ``PSNR_CAP`` (100 dB): identical images score 100, not infinity.
- ``ssim`` is the standard Wang et al. (2004) SSIM with an 11 x 11 Gaussian window (sigma 1.5), K1 = 0.01,
  K2 = 0.03, L = 255, population statistics, computed **per RGB channel and averaged** (as skimage's
  ``structural_similarity(..., channel_axis=-1, gaussian_weights=True, use_sample_covariance=False)``);
  the 5-pixel border where the window does not fit is left out of the mean.
- Ratios with an empty denominator (empty hole, flat ground truth) give ``nan``; callers use ``nanmean``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

PSNR_CAP = 100.0
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
_K1, _K2, _L = 0.01, 0.03, 255.0


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    return pred.astype(np.float64, copy=False), target.astype(np.float64, copy=False)


def _as_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask).astype(bool, copy=False)
    if mask.shape != shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {shape[:2]}")
    return mask


def _abs_diff(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """|pred - target| as float32 (exact for 8- and 16-bit inputs)."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    if pred.dtype == target.dtype == np.uint8:
        return cv2.absdiff(np.ascontiguousarray(pred), np.ascontiguousarray(target)).astype(np.float32)
    return np.abs(pred.astype(np.float64) - target.astype(np.float64)).astype(np.float32)


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB (peak 255) over the whole image, or over the pixels where ``mask``.

    Capped at ``PSNR_CAP``; ``nan`` for an empty mask.
    """
    diff = _abs_diff(pred, target)
    if mask is not None:
        diff = diff[_as_mask(mask, diff.shape)]
        if diff.size == 0:
            return float("nan")
    mse = float(np.square(diff).mean(dtype=np.float64))
    if mse <= 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(_L * _L / mse))


BLOTCH_LEVELS = 60  # a blotch: hole pixels this much darker or brighter than every reference fill ...
BLOTCH_PIXELS = 50  # ... in one connected blob of at least this many pixels
LOWBAND_SIGMA = 3.0  # px: structure is scored apart from texture on both images blurred by this


def lowband_psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, sigma: float = LOWBAND_SIGMA) -> float:
    """PSNR inside ``mask`` of the Gaussian low band (both images blurred by ``sigma`` px): the structure and
    colour of a fill, apart from its texture."""
    pred, target = _pair(pred, target)
    blur = [cv2.GaussianBlur(x.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            for x in (pred, target)]
    return psnr(blur[0], blur[1], mask)


def line_coverage(fill_edges: np.ndarray, line: np.ndarray, tolerance: int = 2) -> float:
    """Share of the pixels of a drawn ``line`` (bool) within ``tolerance`` px of an edge of the fill
    (``fill_edges``, bool, e.g. its Canny map): whether a sketched edge visibly continues. ``nan`` if no line."""
    line = np.asarray(line, bool)
    if not line.any():
        return float("nan")
    near = cv2.dilate(np.asarray(fill_edges, np.uint8), np.ones((2 * tolerance + 1,) * 2, np.uint8)) > 0
    return float(near[line].mean())


def l1_percent(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error as a percentage of 255."""
    return float(_abs_diff(pred, target).mean(dtype=np.float64)) / _L * 100.0


def _ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSIM map (all channels at once, float32 arithmetic), same size as the input, border not yet removed."""

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM (Gaussian window, sigma 1.5), averaged over channels; 1.0 for identical images."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    # float32 is exact enough here (differences of ~1e-7 against float64) and twice as fast.
    p = np.ascontiguousarray(pred, dtype=np.float32)
    t = np.ascontiguousarray(target, dtype=np.float32)
    if p.ndim == 3 and p.shape[2] > 4:  # OpenCV filters take at most 4 channels at once
        return float(np.mean([ssim(p[..., c], t[..., c]) for c in range(p.shape[2])]))
    pad = SSIM_WINDOW // 2
    h, w = p.shape[:2]
    smap = _ssim_map(p, t)
    if h > 2 * pad and w > 2 * pad:
        smap = smap[pad:h - pad, pad:w - pad]
    return float(smap.mean(dtype=np.float64))


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """3 x 3 Sobel gradient magnitude of the luminance (float32 H x W, uint8 scale)."""
    if image.ndim == 3:
        gray = cv2.cvtColor(np.ascontiguousarray(image[..., :3]).astype(np.float32), cv2.COLOR_RGB2GRAY)
    else:
        gray = image.astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    return cv2.magnitude(gx, gy)


def erode_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Shrink a bool mask by ``pixels`` (square structuring element; the image border does not erode)."""
    if pixels <= 0:
        return mask.astype(bool)
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE) > 0


def texture_ratio(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, erode: int = 2) -> float:
    """Mean Sobel gradient magnitude inside the hole eroded by ``erode`` px: prediction over ground truth.

    1.0 means as much texture as the truth; blurry fills score far below 1. The erosion keeps the 3 x 3 Sobel
    footprint off the known pixels at the hole's rim. ``nan`` if the eroded hole is empty or the truth is flat.
    """
    p, t = _pair(pred, target)
    inner = erode_mask(_as_mask(mask, p.shape), erode)
    if not inner.any():
        return float("nan")
    truth = float(gradient_magnitude(t)[inner].mean())
    if truth <= 1e-9:
        return float("nan")
    return float(gradient_magnitude(p)[inner].mean()) / truth


def _dilate(edges: np.ndarray, tolerance: int) -> np.ndarray:
    if tolerance <= 0:
        return edges
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1, 2 * tolerance + 1))
    return cv2.dilate(edges.astype(np.uint8), kernel) > 0


def edge_precision_recall(pred_edges: np.ndarray, target_edges: np.ndarray, mask: np.ndarray | None = None,
                          tolerance: int = 0) -> tuple[float, float]:
    """Precision and recall of a binary edge map against the truth, counted inside ``mask`` (whole map if None).

    A predicted edge pixel is correct if a true edge lies within ``tolerance`` px (disk), and a true edge
    pixel is found if a predicted one lies within ``tolerance`` px. An empty denominator gives 1.0 when the
    other map is empty too (nothing to find, nothing claimed) and 0.0 otherwise.
    """
    pred = np.asarray(pred_edges).astype(bool)
    target = np.asarray(target_edges).astype(bool)
    if pred.shape != target.shape:
        raise ValueError(f"edge maps differ in shape: {pred.shape} vs {target.shape}")
    region = np.ones(pred.shape, bool) if mask is None else _as_mask(mask, pred.shape)
    pred_in, target_in = pred & region, target & region
    n_pred, n_target = int(pred_in.sum()), int(target_in.sum())
    if n_pred == 0 or n_target == 0:
        both_empty = n_pred == 0 and n_target == 0
        return (1.0, 1.0) if both_empty else (0.0, 0.0)
    precision = int((pred_in & _dilate(target, tolerance)).sum()) / n_pred
    recall = int((target_in & _dilate(pred, tolerance)).sum()) / n_target
    return float(precision), float(recall)


def has_blotch(pred: np.ndarray, references: list[np.ndarray], mask: np.ndarray, levels: int = BLOTCH_LEVELS,
               min_pixels: int = BLOTCH_PIXELS) -> bool:
    """Whether the fill holds a blob (8-connected) of ``min_pixels`` or more hole pixels whose luminance is more
    than ``levels`` away from that of *every* reference fill (the harmonic fill and PatchMatch's, say): a dark
    or bright patch that neither the smoothest fill nor the copied texture would put there."""
    if not references:
        raise ValueError("has_blotch needs at least one reference fill")

    def luma(x: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(np.ascontiguousarray(x[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.int16)

    hole = _as_mask(mask, pred.shape[:2])
    p = luma(pred)
    off = hole.copy()
    for ref in references:
        off &= np.abs(p - luma(ref)) > levels
    if int(off.sum()) < min_pixels:
        return False
    _, _, stats, _ = cv2.connectedComponentsWithStats(off.astype(np.uint8), connectivity=8)
    return bool((stats[1:, cv2.CC_STAT_AREA] >= min_pixels).any())
