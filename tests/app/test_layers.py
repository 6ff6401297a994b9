"""Display pyramids: each level is the exact rounded 2x2 mean (or max) of the one below, also box by box."""

from __future__ import annotations

import numpy as np

from app.layers import REDUCE_ROWS, Pyramid


def _expected_mean(src: np.ndarray) -> np.ndarray:
    h, w = src.shape[0] // 2, src.shape[1] // 2
    blocks = src[: 2 * h, : 2 * w].astype(np.float64).reshape(h, 2, w, 2, *src.shape[2:])
    return np.floor(blocks.mean(axis=(1, 3)) + 0.5).astype(np.uint8)


def test_levels_are_exact_means_across_chunk_boundaries():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (4 * REDUCE_ROWS + 7, 301, 3), dtype=np.uint8)  # odd sizes, several chunks
    pyramid = Pyramid(base, "mean", min_side=8)
    below = base
    for k in range(1, pyramid.count + 1):
        assert np.array_equal(pyramid.array(k), _expected_mean(below)), k
        below = pyramid.array(k)


def test_a_box_update_gives_what_a_full_rebuild_gives():
    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, (3 * REDUCE_ROWS, 200, 3), dtype=np.uint8)
    pyramid = Pyramid(base, "mean", min_side=8)
    base[50:90, 30:77] = rng.integers(0, 256, (40, 47, 3), dtype=np.uint8)
    pyramid.update((30, 50, 77, 90))
    fresh = Pyramid(base.copy(), "mean", min_side=8)
    assert all(np.array_equal(pyramid.array(k), fresh.array(k)) for k in range(1, pyramid.count + 1))
