"""Composite: known pixels byte-identical, seam blend inside the hole only, Poisson blending."""

from __future__ import annotations

import numpy as np
import pytest

from engine.composite import FADE, composite, poisson_blend, seam_blend


def _scene(h: int = 80, w: int = 100) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 2, y * 3, (x + y) % 200], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("poisson", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_outside_the_mask_is_byte_identical(poisson, dtype):
    original = _scene()
    mask = np.zeros(original.shape[:2], bool)
    mask[20:50, 30:70] = True
    mask[70:80, 0:10] = True  # touches the border
    rng = np.random.default_rng(0)
    fill = rng.random(original.shape).astype(np.float32)
    if dtype == np.uint8:
        fill = (fill * 255).astype(np.uint8)
    out = composite(original, fill, mask, poisson=poisson)
    assert out.dtype == np.uint8
    assert np.array_equal(out[~mask], original[~mask])


def test_seam_blend_removes_a_colour_step_only_near_the_edge():
    original = np.full((120, 120, 3), 100, np.uint8)
    mask = np.zeros((120, 120), bool)
    mask[30:90, 30:90] = True
    fill = np.full((120, 120, 3), 160 / 255, np.float32)  # 60 levels brighter than the surroundings
    blended = seam_blend(original, fill, mask)
    assert abs(blended[30, 60, 0] * 255 - 100) < 15  # at the edge: close to the photo
    assert abs(blended[60, 60, 0] * 255 - 160) < 1  # deep inside: the fill, untouched
    assert np.array_equal(blended[~mask], fill[~mask])
    assert np.allclose(blended[30 + FADE + 2, 60], fill[30 + FADE + 2, 60])


def test_seam_blend_leaves_a_continuous_fill_alone():
    original = _scene()
    mask = np.zeros(original.shape[:2], bool)
    mask[20:40, 20:40] = True
    fill = original.copy()  # agrees on the ring: nothing to correct
    fill[mask] = 7
    assert np.allclose(seam_blend(original, fill, mask), fill.astype(np.float32) / 255, atol=1e-6)


def test_hole_content_never_matters():
    original = _scene()
    mask = np.zeros(original.shape[:2], bool)
    mask[10:60, 10:60] = True
    noisy = original.copy()
    noisy[mask] = np.random.default_rng(1).integers(0, 256, (int(mask.sum()), 3), dtype=np.uint8)
    fill = np.random.default_rng(2).random(original.shape).astype(np.float32)
    for poisson in (False, True):
        assert np.array_equal(composite(original, fill, mask, poisson), composite(noisy, fill, mask, poisson))


def test_poisson_takes_gradients_from_the_fill_and_values_from_the_photo():
    original = _scene(90, 90)
    mask = np.zeros((90, 90), bool)
    mask[25:65, 25:65] = True
    shifted = np.clip(original.astype(np.float32) / 255 + 0.25, 0, 1)  # right gradients, wrong level
    plain = composite(original, shifted, mask, blend=False)
    poisson = composite(original, shifted, mask, poisson=True, blend=False)
    err_plain = np.abs(plain.astype(int) - original)[mask].mean()
    err_poisson = np.abs(poisson.astype(int) - original)[mask].mean()
    assert err_poisson < 0.2 * err_plain


def test_poisson_on_a_large_hole_runs_on_a_shrunk_grid(monkeypatch):
    import engine.composite as composite_module

    grids: list[tuple[int, int]] = []
    real_solver = composite_module._solve_membrane

    def spy(boundary, hole, iterations):
        grids.append(hole.shape)
        return real_solver(boundary, hole, iterations)

    monkeypatch.setattr(composite_module, "_solve_membrane", spy)
    test_poisson_takes_gradients_from_the_fill_and_values_from_the_photo()  # 90 x 90 box, full grid
    assert grids == [(90, 90)]
    grids.clear()
    monkeypatch.setattr(composite_module, "MAX_POISSON_PIXELS", 32 * 32)
    test_poisson_takes_gradients_from_the_fill_and_values_from_the_photo()  # still close to the photo
    assert grids == [(32, 32)]  # solved once, on the shrunk grid (90 / sqrt(8100 / 1024) = 32)


def test_poisson_blend_carries_the_boundary_across_a_wide_hole():
    """A fill that is the photo plus a smooth ramp: the exact solution inside the hole is the photo itself."""
    import cv2

    rng = np.random.default_rng(0)
    size, hole = 420, 340
    photo = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 3)
    yy, xx = np.mgrid[0:size, 0:size]
    ramp = ((xx + yy) / (2 * size) * 40).astype(np.float32)[..., None]
    fill = np.clip(photo.astype(np.float32) + ramp, 0, 255).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    mask[40:40 + hole, 40:40 + hole] = True
    out = poisson_blend(photo, fill, mask)
    assert np.abs(out * 255 - photo.astype(np.float32))[mask].max() < 1.5  # 100 iterations left 4 levels
