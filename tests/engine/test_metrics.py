"""Metrics on inputs whose answers are known by hand."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from engine import metrics


def _photo(h: int = 64, w: int = 80, seed: int = 0) -> np.ndarray:
    """A smooth gradient with some texture: not flat, not pure noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w) + 64], axis=-1)
    texture = rng.normal(0, 20, (h, w, 1))
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def test_psnr_identical_is_capped():
    img = _photo()
    assert metrics.psnr(img, img) == metrics.PSNR_CAP
    assert math.isfinite(metrics.psnr(img, img, np.ones(img.shape[:2], bool)))


def test_psnr_of_a_constant_error():
    target = np.full((10, 10, 3), 100, np.uint8)
    pred = target + np.uint8(5)
    expected = 10 * math.log10(255**2 / 25)
    assert metrics.psnr(pred, target) == pytest.approx(expected)


def test_psnr_inside_the_mask_only_sees_the_mask():
    target = np.full((10, 10, 3), 100, np.uint8)
    pred = target.copy()
    pred[:5] = 110  # error of 10 in the top half only
    top = np.zeros((10, 10), bool)
    top[:5] = True
    assert metrics.psnr(pred, target, top) == pytest.approx(10 * math.log10(255**2 / 100))
    assert metrics.psnr(pred, target, ~top) == metrics.PSNR_CAP
    assert metrics.psnr(pred, target) == pytest.approx(10 * math.log10(255**2 / 50))
    assert math.isnan(metrics.psnr(pred, target, np.zeros((10, 10), bool)))


def test_l1_percent():
    target = np.zeros((4, 4, 3), np.uint8)
    pred = np.full((4, 4, 3), 51, np.uint8)
    assert metrics.l1_percent(pred, target) == pytest.approx(20.0)
    assert metrics.l1_percent(target, target) == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))


def _reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM written out window by window (Wang et al. 2004), for the cross-check."""
    g = cv2.getGaussianKernel(11, 1.5)
    w = g @ g.T
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for c in range(x.shape[2]):
        a, b = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        for i in range(a.shape[0] - 10):
            for j in range(a.shape[1] - 10):
                pa, pb = a[i:i + 11, j:j + 11], b[i:i + 11, j:j + 11]
                ma, mb = (w * pa).sum(), (w * pb).sum()
                va = (w * (pa - ma) ** 2).sum()
                vb = (w * (pb - mb) ** 2).sum()
                cov = (w * (pa - ma) * (pb - mb)).sum()
                values.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_matches_a_window_by_window_reference():
    x = _photo(24, 27, seed=1)
    rng = np.random.default_rng(2)
    y = np.clip(x.astype(int) + rng.integers(-30, 31, x.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(x, y) == pytest.approx(_reference_ssim(x, y), abs=1e-5)


def test_ssim_is_one_for_identical_and_falls_with_noise():
    x = _photo()
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    scores = []
    for sigma in (5, 20, 60):
        noisy = np.clip(x + rng.normal(0, sigma, x.shape), 0, 255).astype(np.uint8)
        scores.append(metrics.ssim(noisy, x))
    assert 1.0 > scores[0] > scores[1] > scores[2]
    assert metrics.ssim(x, 255 - x) < 0.2


def test_texture_ratio_of_truth_is_one_and_of_a_blur_below_one():
    truth = _photo(64, 64, seed=4)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    assert metrics.texture_ratio(truth, truth, mask) == pytest.approx(1.0)
    blurred = truth.copy()
    blurred[mask] = cv2.GaussianBlur(truth, (0, 0), 3)[mask]
    assert metrics.texture_ratio(blurred, truth, mask) < 0.5
    flat = truth.copy()
    flat[mask] = 128
    assert metrics.texture_ratio(flat, truth, mask) < 0.2


def test_texture_ratio_ignores_the_rim_of_the_hole():
    """A fill that differs only at the hole's rim (within the 3 x 3 Sobel reach of the eroded border) scores 1."""
    truth = _photo(64, 64, seed=5)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    pred = truth.copy()
    pred[16:48, 16] = 0  # the outermost hole column only
    assert metrics.texture_ratio(pred, truth, mask, erode=2) == pytest.approx(1.0, abs=0.02)
    assert metrics.texture_ratio(pred, truth, mask, erode=0) > 1.1
    assert math.isnan(metrics.texture_ratio(truth, truth, np.zeros((64, 64), bool)))


def test_edge_precision_recall_on_hand_made_maps():
    target = np.zeros((20, 20), bool)
    target[10, 2:18] = True  # a horizontal line, 16 px
    pred = np.zeros((20, 20), bool)
    pred[11, 2:10] = True  # 8 px, one row off, covering half the line
    pred[3, 3:7] = True  # 4 px of spurious edge
    p, r = metrics.edge_precision_recall(pred, target, None, tolerance=0)
    assert (p, r) == (0.0, 0.0)
    p, r = metrics.edge_precision_recall(pred, target, None, tolerance=1)
    assert p == pytest.approx(8 / 12)
    assert r == pytest.approx(8 / 16)  # the radius-1 disk is a cross: no diagonal neighbours
    # Restricted to the left half, the spurious edge and the half line are all that count.
    left = np.zeros((20, 20), bool)
    left[:, :10] = True
    p, r = metrics.edge_precision_recall(pred, target, left, tolerance=1)
    assert p == pytest.approx(8 / 12)
    assert r == pytest.approx(1.0)
    assert metrics.edge_precision_recall(target, target, None) == (1.0, 1.0)
    empty = np.zeros((20, 20), bool)
    assert metrics.edge_precision_recall(empty, empty, None) == (1.0, 1.0)
    assert metrics.edge_precision_recall(empty, target, None) == (0.0, 0.0)


def test_lowband_psnr_scores_structure_apart_from_texture() -> None:
    from engine.metrics import lowband_psnr

    rng = np.random.default_rng(0)
    truth = np.full((64, 64, 3), 120, np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    noisy = np.clip(truth.astype(int) + rng.integers(-40, 41, truth.shape), 0, 255).astype(np.uint8)
    shifted = np.where(mask[..., None], 160, truth).astype(np.uint8)  # flat, but the wrong colour
    # Zero-mean texture barely moves the low band; a wrong colour does.
    assert lowband_psnr(noisy, truth, mask) > metrics.psnr(noisy, truth, mask) + 10
    assert lowband_psnr(shifted, truth, mask) < lowband_psnr(noisy, truth, mask) - 10


def test_line_coverage_counts_the_drawn_pixels_near_an_edge_of_the_fill() -> None:
    line = np.zeros((20, 20), bool)
    line[10, 2:18] = True
    edges = np.zeros_like(line)
    edges[11, 2:10] = True  # half the line, one pixel off
    assert metrics.line_coverage(edges, line) == pytest.approx(0.5 + 2 / 16)  # the dilation reaches 2 px on
    assert metrics.line_coverage(np.zeros_like(line), line) == 0.0
    assert math.isnan(metrics.line_coverage(edges, np.zeros_like(line)))


def test_has_blotch_needs_a_big_enough_blob_far_from_every_reference():
    from engine.metrics import has_blotch

    ref = np.full((40, 40, 3), 120, np.uint8)
    other = ref.copy()
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:35] = True
    pred = ref.copy()
    pred[10:17, 10:17] = 40  # 49 px, 80 levels darker: one short of a blotch
    assert not has_blotch(pred, [ref, other], mask)
    pred[10:17, 17] = 40  # 56 px
    assert has_blotch(pred, [ref, other], mask)
    other[10:20, 10:20] = 50  # one reference paints it dark too: not a blotch of this fill's own
    assert not has_blotch(pred, [ref, other], mask)
    scattered = ref.copy()
    scattered[5:35:2, 5:35:2] = 0  # many dark pixels, none connected
    assert not has_blotch(scattered, [ref], mask)
