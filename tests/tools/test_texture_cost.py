"""The texture-cost reference: more misaligned detail raises the texture ratio and lowers PSNR."""

from __future__ import annotations

import numpy as np

from engine import metrics
from tools.texture_cost import textured_fill


def _photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:128]
    base = np.stack([x * 1.5, y * 2.0, 128 + 0 * x], axis=-1)
    return np.clip(base + rng.normal(0, 18, (96, 128, 3)), 0, 255).astype(np.uint8)


def test_detail_trades_psnr_for_texture_and_keeps_the_known_area():
    rgb = _photo()
    mask = np.zeros((96, 128), bool)
    mask[30:70, 40:100] = True
    results = [textured_fill(rgb, mask, alpha) for alpha in (0.0, 0.5, 1.0)]
    textures = [metrics.texture_ratio(out, rgb, mask) for out in results]
    psnrs = [metrics.psnr(out, rgb) for out in results]
    assert textures[0] < 0.3 < textures[1] < textures[2]
    assert psnrs[0] > psnrs[1] > psnrs[2]
    for out in results:
        assert np.array_equal(out[~mask], rgb[~mask])
