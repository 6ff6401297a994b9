"""Working resolution: sizes, conservative masks, padding, and contextual residual aggregation (CRA)."""

from __future__ import annotations

import cv2
import numpy as np

from engine.pixels import to_uint8
from engine.resolution import (
    pad_amounts,
    pad_reflect,
    restore_full_resolution,
    shrink_image,
    shrink_mask,
    to_working,
    upsample_box,
    working_size,
)


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tile = cv2.resize((rng.random((6, 6, 3)) * 255).astype(np.uint8), (12, 12), interpolation=cv2.INTER_NEAREST)
    reps = (h // 12 + 1, w // 12 + 1, 1)
    ramp = np.linspace(0, 80, w, dtype=np.float32)[None, :, None]
    return np.clip(np.tile(tile, reps)[:h, :w] * 0.6 + ramp, 0, 255).astype(np.uint8)


def _high_freq(image: np.ndarray, mask: np.ndarray) -> float:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(gray, cv2.CV_32F))[mask].mean())


def test_working_size_never_upscales():
    assert working_size(100, 80, 256) == (100, 80)
    assert working_size(1000, 500, 256) == (256, 128)
    assert working_size(3, 5000, 256) == (1, 256)


def test_shrunk_mask_is_conservative_and_hole_does_not_leak():
    mask = np.zeros((1000, 1000), bool)
    mask[500, 500] = True  # a single pixel survives a 40x shrink
    assert shrink_mask(mask, (25, 25)).sum() == 1
    image = np.full((1000, 1000, 3), 100, np.uint8)
    noisy = image.copy()
    noisy[500, 500] = 255
    a, b = to_working(image, mask, 25), to_working(noisy, mask, 25)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.scaled
    assert (a.image[a.mask] == 0).all()


def test_every_low_resolution_pixel_a_hole_pixel_touches_is_hole_at_any_scale():
    rng = np.random.default_rng(5)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(5, 90, 2))
        size = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
        mask = rng.random((h, w)) < rng.choice([0.002, 0.02, 0.2])
        expected = np.zeros(size, bool)
        for y in range(size[0]):  # low-res pixel (y, x) covers source rows [y*h/H', (y+1)*h/H') and columns
            r0, r1 = y * h // size[0], -(-(y + 1) * h // size[0])
            for x in range(size[1]):
                c0, c1 = x * w // size[1], -(-(x + 1) * w // size[1])
                expected[y, x] = mask[r0:r1, c0:c1].any()
        assert np.array_equal(shrink_mask(mask, size), expected), (h, w, size)
    # A hole pixel that only grazes a low-resolution pixel (3 px shrunk to 2: the middle one is shared).
    image = np.full((1, 3, 3), 100, np.uint8)
    mask = np.array([[False, True, False]])
    noisy = image.copy()
    noisy[0, 1] = 255
    a, b = to_working(image, mask, 2), to_working(noisy, mask, 2)
    assert np.array_equal(a.image, b.image) and a.mask.all()


def test_pad_amounts_reach_stride_and_minimum():
    assert pad_amounts(64, 64, 4) == (0, 0)
    assert pad_amounts(61, 7, 4) == (3, 25)
    padded = pad_reflect(np.arange(6, dtype=np.float32).reshape(2, 3), 5, 2)
    assert padded.shape == (7, 5) and padded[0, 3] == padded[0, 1]


def test_upsample_box_matches_full_resize():
    low = np.random.default_rng(1).random((30, 40, 3)).astype(np.float32)
    full = cv2.resize(low, (173, 131), interpolation=cv2.INTER_LINEAR)
    box = (17, 9, 120, 100)
    assert np.allclose(upsample_box(low, (131, 173), box), full[9:100, 17:120], atol=1e-4)


def test_cra_restores_detail_and_keeps_known_pixels():
    image = _texture(600, 720)
    mask = np.zeros((600, 720), bool)
    mask[200:400, 250:500] = True
    working = to_working(image, mask, 128)
    # A "generator" that gets the colours right but, at low resolution, cannot hold the fine texture.
    low = shrink_image(image, working.mask.shape).astype(np.float32) / 255
    plain = restore_full_resolution(image, mask, low, use_cra=False)
    cra = restore_full_resolution(image, mask, low, use_cra=True)
    truth = _high_freq(image, mask)
    assert _high_freq(to_uint8(cra), mask) > 2 * _high_freq(to_uint8(plain), mask)
    assert _high_freq(to_uint8(cra), mask) > 0.5 * truth
    err_plain = np.abs(to_uint8(plain).astype(int) - image)[mask].mean()
    err_cra = np.abs(to_uint8(cra).astype(int) - image)[mask].mean()
    assert err_cra < err_plain
    # Known pixels: CRA adds nothing to cells that the hole does not touch.
    far = np.zeros_like(mask)
    far[:100, :100] = True
    assert np.array_equal(cra[far], plain[far])


def test_cra_ignores_pixels_under_the_mask():
    image = _texture(500, 500)
    mask = np.zeros((500, 500), bool)
    mask[150:350, 150:350] = True
    noisy = image.copy()
    noisy[mask] = np.random.default_rng(3).integers(0, 256, (int(mask.sum()), 3), dtype=np.uint8)
    low = np.full((128, 128, 3), 0.5, np.float32)
    box = (100, 100, 400, 400)
    assert np.array_equal(restore_full_resolution(image, mask, low, box),
                          restore_full_resolution(noisy, mask, low, box))


def test_small_crops_are_not_resampled():
    low = np.random.default_rng(2).random((50, 60, 3)).astype(np.float32)
    mask = np.zeros((50, 60), bool)
    out = restore_full_resolution(np.zeros((50, 60, 3), np.uint8), mask, low, (5, 6, 20, 30))
    assert np.array_equal(out, low[6:30, 5:20])
