"""Synthetic mask generators: ranges, determinism, shapes."""

from __future__ import annotations

import numpy as np
import pytest

from engine.masks import (
    augment_irregular,
    cellular_automata_mask,
    free_form_mask,
    hole_ratio,
    rectangle_mask,
)

SIZES = [(64, 64), (37, 81), (101, 33), (1, 1), (5, 3)]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _irregular_source() -> np.ndarray:
    rng = _rng(7)
    src = np.zeros((96, 96), bool)
    src[20:40, 10:80] = True
    src[rng.random((96, 96)) < 0.05] = True
    return src


GENERATORS = {
    "rectangle": lambda h, w, rng: rectangle_mask(h, w, rng),
    "free_form": lambda h, w, rng: free_form_mask(h, w, rng),
    "cellular": lambda h, w, rng: cellular_automata_mask(h, w, rng),
    "irregular": lambda h, w, rng: augment_irregular(_irregular_source(), h, w, rng),
}


def test_hole_ratio():
    m = np.zeros((4, 5), bool)
    m[0, :2] = True
    assert hole_ratio(m) == pytest.approx(0.1)
    assert hole_ratio(np.zeros((0, 0), bool)) == 0.0
    assert hole_ratio(np.ones((3, 3), np.uint8)) == 1.0


@pytest.mark.parametrize("kind", sorted(GENERATORS))
@pytest.mark.parametrize("size", SIZES)
def test_shape_dtype(kind, size):
    h, w = size
    mask = GENERATORS[kind](h, w, _rng(1))
    assert mask.shape == (h, w)
    assert mask.dtype == bool
    assert mask.flags.c_contiguous


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_deterministic_given_generator(kind):
    a = [GENERATORS[kind](48, 72, rng) for rng in [_rng(5)] for _ in range(5)]
    b = [GENERATORS[kind](48, 72, rng) for rng in [_rng(5)] for _ in range(5)]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    # Different draws from one generator differ (the generator really is consumed).
    assert any(not np.array_equal(a[0], m) for m in a[1:])


def test_rectangle_sides_within_range():
    rng = _rng(2)
    h, w = 200, 120
    heights, widths = [], []
    for _ in range(300):
        m = rectangle_mask(h, w, rng, side_range=(0.3, 0.7))
        rows, cols = np.nonzero(m)
        rh, rw = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert rh * rw == m.sum()  # one solid rectangle
        heights.append(rh / h)
        widths.append(rw / w)
    for sides, side in ((heights, h), (widths, w)):
        assert min(sides) >= 0.3 - 0.5 / side and max(sides) <= 0.7 + 0.5 / side
        # The whole range is used, not a corner of it.
        assert min(sides) < 0.35 and max(sides) > 0.65
    assert min(r * c for r, c in zip(heights, widths)) >= 0.09 * 0.99


def test_rectangle_positions_cover_image():
    rng = _rng(3)
    total = sum(rectangle_mask(50, 50, rng).astype(int) for _ in range(200))
    # Every border row and column is touched by some rectangle: positions span the whole image.
    assert total[0].any() and total[-1].any() and total[:, 0].any() and total[:, -1].any()


def test_rectangle_bad_range():
    with pytest.raises(ValueError, match="side_range"):
        rectangle_mask(10, 10, _rng(), side_range=(0.8, 0.2))


@pytest.mark.parametrize("size", [(256, 256), (128, 192), (512, 512)])
def test_free_form_ratio_band(size):
    rng = _rng(4)
    ratios = np.array([hole_ratio(free_form_mask(*size, rng)) for _ in range(150)])
    # DeepFill v2 strokes: typically a fifth of the image, rarely below 2% or above 60%.
    assert 0.12 < np.median(ratios) < 0.32
    assert np.percentile(ratios, 5) > 0.02
    assert np.percentile(ratios, 95) < 0.5
    assert ratios.max() < 0.7 and ratios.min() > 0


def test_free_form_width_scales_with_size():
    # One stroke of fixed width range: the hole share should not depend much on resolution.
    small = [hole_ratio(free_form_mask(64, 64, _rng(i), strokes=(1, 1))) for i in range(60)]
    large = [hole_ratio(free_form_mask(512, 512, _rng(i), strokes=(1, 1))) for i in range(60)]
    assert np.median(small) == pytest.approx(np.median(large), rel=0.35)


def test_free_form_vertex_and_stroke_ranges_validated():
    with pytest.raises(ValueError):
        free_form_mask(32, 32, _rng(), strokes=(0, 2))
    with pytest.raises(ValueError):
        free_form_mask(32, 32, _rng(), vertices=(5, 4))


@pytest.mark.parametrize("ratio_range", [(0.1, 0.5), (0.1, 0.2), (0.3, 0.4), (0.5, 0.6)])
@pytest.mark.parametrize("size", [(64, 64), (45, 90), (256, 256)])
def test_cellular_ratio_within_range(ratio_range, size):
    rng = _rng(8)
    ratios = [hole_ratio(cellular_automata_mask(*size, rng, ratio_range=ratio_range)) for _ in range(40)]
    lo, hi = ratio_range
    assert all(lo <= r <= hi for r in ratios), (min(ratios), max(ratios))


def test_cellular_makes_blobs_not_noise():
    import cv2

    mask = cellular_automata_mask(128, 128, _rng(9), ratio_range=(0.3, 0.4))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    # Few sizeable connected regions rather than thousands of specks.
    assert n - 1 < 60
    assert stats[1:, cv2.CC_STAT_AREA].max() > 0.02 * mask.size


def test_augment_irregular_keeps_size_and_roughly_ratio():
    src = np.zeros((100, 100), bool)
    src[30:70, 30:70] = True
    rng = _rng(10)
    ratios = []
    for _ in range(50):
        out = augment_irregular(src, 40, 60, rng, max_dilation=0, max_rotation=0, crop_range=(1.0, 1.0))
        assert out.shape == (40, 60)
        ratios.append(hole_ratio(out))
    # No rotation/dilation, full-height crop of a 100x100 square to 2:3 aspect: a 67x100 window.
    assert all(0.16 * 0.8 < r < 0.16 * 2.5 for r in ratios)


def test_augment_irregular_changes_mask():
    src = np.zeros((64, 64), bool)
    src[5:20, 5:40] = True
    outs = [augment_irregular(src, 64, 64, _rng(i)) for i in range(8)]
    assert len({o.tobytes() for o in outs}) > 4


def test_augment_irregular_rejects_bad_input():
    with pytest.raises(ValueError):
        augment_irregular(np.zeros((3, 3, 3), bool), 8, 8, _rng())


