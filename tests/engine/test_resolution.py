"""Working resolution: sizes, conservative masks, padding, and the harmonic upsampling back to full size."""

from __future__ import annotations

import cv2
import numpy as np

from engine.networks.prefill import harmonic_fill_array
from engine.pixels import to_uint8
from engine.resolution import (
    harmonic_upsample,
    pad_amounts,
    pad_reflect,
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


def test_harmonic_upsample_ignores_pixels_under_the_mask():
    image = _texture(500, 500)
    mask = np.zeros((500, 500), bool)
    mask[150:350, 150:350] = True
    noisy = image.copy()
    noisy[mask] = np.random.default_rng(3).integers(0, 256, (int(mask.sum()), 3), dtype=np.uint8)
    working = to_working(image, mask, 128)
    low = np.where(working.mask[..., None], np.float32(0.5), working.image.astype(np.float32) / 255)
    box = (100, 100, 400, 400)
    assert np.array_equal(harmonic_upsample(image, mask, low, working.mask, box),
                          harmonic_upsample(noisy, mask, low, working.mask, box))


def _border_jump(fill: np.ndarray, image: np.ndarray, mask: np.ndarray) -> float:
    """Mean colour step between each hole pixel on the border and the known pixel beside it (0-255 scale)."""
    full = image.astype(np.float32)
    full[mask] = to_uint8(fill)[mask]
    steps = []
    for axis, shift in ((0, 1), (0, -1), (1, 1), (1, -1)):
        beside = np.roll(mask, shift, axis=axis)
        border = mask & ~beside  # hole pixels whose neighbour (in that direction) is known
        steps.append(np.abs(full - np.roll(full, shift, axis=axis))[border].mean())
    return float(np.mean(steps))


def test_harmonic_upsample_meets_the_full_resolution_border_and_keeps_the_network_correction():
    image = _texture(480, 600)
    mask = np.zeros((480, 600), bool)
    cv2.circle(mask.view(np.uint8), (300, 240), 110, 1, -1)
    working = to_working(image, mask, 128)
    smooth = harmonic_fill_array(working.image.astype(np.float32) / 255, working.mask)
    plain = upsample_box(smooth, mask.shape, (0, 0, 600, 480))
    lifted = harmonic_upsample(image, mask, smooth, working.mask, (0, 0, 600, 480))
    # The shrunk border is an average of the texture; the full-resolution membrane meets the actual pixels.
    assert _border_jump(lifted, image, mask) < 0.6 * _border_jump(plain, image, mask)
    # A network that brightens the middle of the hole: the correction arrives at full resolution.
    brighter = smooth.copy()
    brighter[working.mask] += 0.2
    shifted = harmonic_upsample(image, mask, brighter, working.mask, (0, 0, 600, 480))
    centre = (slice(200, 280), slice(260, 340))
    assert np.allclose((shifted - lifted)[centre], 0.2, atol=1e-3)
    far = cv2.dilate(mask.view(np.uint8), np.ones((15, 15), np.uint8)) == 0  # beyond the bilinear spill
    assert np.array_equal(shifted[far], lifted[far])
    assert np.allclose(lifted[~mask], image[~mask] / 255, atol=1e-6)
