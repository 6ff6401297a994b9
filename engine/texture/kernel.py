"""The numba kernels of the guided PatchMatch completion: nearest-neighbour search and the vote.

One feature image ``F`` (h x w x C float32) serves as both target and source: outside the hole it holds the
photo's features, inside the hole the current estimate's. The distance of the patch at target ``p`` to the patch
at source ``q`` is ``sum over offsets o of colour_weight[p + o] * |F[p + o, :3] - F[q + o, :3]|^2 + sum over
c >= 3 of channel_weight[c] * (F[p + o, c] - F[q + o, c])^2``; offsets that leave the image at ``p`` are skipped.
``source_ok[q]`` says whether the whole patch at ``q`` may be copied (it is inside the image and holds no hole
or excluded pixel).

Why numba: PatchMatch's propagation is sequential per scan, which neither numpy nor torch vectorise, and the
native pypatchmatch search cannot weigh a guide over the whole patch (its regularity term compares centres).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_INF = np.float32(3.0e38)


@nb.njit(cache=True, fastmath=True)
def _distance(f: np.ndarray, colour_weight: np.ndarray, channel_weight: np.ndarray, py: int, px: int, qy: int,
              qx: int, r: int, limit: float) -> float:
    h, w, c = f.shape
    total = 0.0
    for dy in range(-r, r + 1):
        ty = py + dy
        if ty < 0 or ty >= h:
            continue
        sy = qy + dy
        for dx in range(-r, r + 1):
            tx = px + dx
            if tx < 0 or tx >= w:
                continue
            sx = qx + dx
            cw = colour_weight[ty, tx]
            d = 0.0
            for k in range(3):
                e = f[ty, tx, k] - f[sy, sx, k]
                d += e * e
            total += cw * d
            for k in range(3, c):
                e = f[ty, tx, k] - f[sy, sx, k]
                total += channel_weight[k] * e * e
        if total >= limit:
            return total
    return total


@nb.njit(cache=True)
def _random_source(sources_y: np.ndarray, sources_x: np.ndarray, state: np.ndarray) -> tuple[int, int]:
    i = _next(state) % sources_y.shape[0]
    return sources_y[i], sources_x[i]


@nb.njit(cache=True)
def _next(state: np.ndarray) -> int:
    """xorshift64*: the kernels' own generator, so a seed gives the same bytes on every platform."""
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return int((x * np.uint64(2685821657736338717)) >> np.uint64(33))


@nb.njit(cache=True)
def search(f: np.ndarray, colour_weight: np.ndarray, channel_weight: np.ndarray, targets_y: np.ndarray,
           targets_x: np.ndarray, nnf: np.ndarray, cost: np.ndarray, source_ok: np.ndarray,
           sources_y: np.ndarray, sources_x: np.ndarray, r: int, iterations: int, seed: int,
           coherence: float = 0.0) -> None:
    """PatchMatch (Barnes et al. 2009) in place on ``nnf`` (h x w x 2 int32 source of each target) and ``cost``.

    ``nnf`` entries of targets must already hold valid sources; ``cost`` is recomputed first. Targets are visited
    in raster order, reversed on odd iterations; each tries its two scan-order neighbours' shifted matches and a
    random search in a window halving from the image size; a random candidate must beat the current match by the
    factor ``1 + coherence`` (Ashikhmin's coherence bias: neighbouring pixels keep copying from one place)."""
    h, w = source_ok.shape
    state = np.array([np.uint64(seed) * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)],
                     dtype=np.uint64)
    n = targets_y.shape[0]
    for i in range(n):
        y, x = targets_y[i], targets_x[i]
        cost[y, x] = _distance(f, colour_weight, channel_weight, y, x, nnf[y, x, 0], nnf[y, x, 1], r, _INF)
    for it in range(iterations):
        step = 1 if it % 2 == 0 else -1
        for j in range(n):
            i = j if step == 1 else n - 1 - j
            y, x = targets_y[i], targets_x[i]
            best_y, best_x, best = nnf[y, x, 0], nnf[y, x, 1], cost[y, x]
            for side in range(2):
                ny = y - step if side == 0 else y
                nx = x if side == 0 else x - step
                if ny < 0 or ny >= h or nx < 0 or nx >= w or cost[ny, nx] >= _INF:
                    continue
                cy, cx = nnf[ny, nx, 0] + (y - ny), nnf[ny, nx, 1] + (x - nx)
                if cy < 0 or cy >= h or cx < 0 or cx >= w or not source_ok[cy, cx]:
                    continue
                if cy == best_y and cx == best_x:
                    continue
                d = _distance(f, colour_weight, channel_weight, y, x, cy, cx, r, best)
                if d < best:
                    best_y, best_x, best = cy, cx, d
            radius = max(h, w)
            while radius >= 1:
                cy = best_y + _next(state) % (2 * radius + 1) - radius
                cx = best_x + _next(state) % (2 * radius + 1) - radius
                if 0 <= cy < h and 0 <= cx < w and source_ok[cy, cx]:
                    bar = best / (1.0 + coherence)
                    d = _distance(f, colour_weight, channel_weight, y, x, cy, cx, r, bar)
                    if d < bar:
                        best_y, best_x, best = cy, cx, d
                radius //= 2
            nnf[y, x, 0], nnf[y, x, 1], cost[y, x] = best_y, best_x, best


@nb.njit(cache=True)
def random_init(targets_y: np.ndarray, targets_x: np.ndarray, nnf: np.ndarray, sources_y: np.ndarray,
                sources_x: np.ndarray, seed: int) -> None:
    """Every target's match drawn uniformly from the sources."""
    state = np.array([np.uint64(seed) * np.uint64(2862933555777941757) + np.uint64(3037000493)], dtype=np.uint64)
    for i in range(targets_y.shape[0]):
        sy, sx = _random_source(sources_y, sources_x, state)
        nnf[targets_y[i], targets_x[i], 0] = sy
        nnf[targets_y[i], targets_x[i], 1] = sx


@nb.njit(cache=True)
def vote(colour: np.ndarray, hole: np.ndarray, targets_y: np.ndarray, targets_x: np.ndarray, nnf: np.ndarray,
         cost: np.ndarray, r: int, sigma2: float, out: np.ndarray) -> None:
    """Wexler et al. (2007)'s vote: each hole pixel of ``out`` becomes the mean of the colours the patches over
    it copy, each patch weighted by ``exp(-cost / (2 sigma2))``. Other pixels of ``out`` are left as they are."""
    h, w = hole.shape
    acc = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w), np.float32)
    for i in range(targets_y.shape[0]):
        py, px = targets_y[i], targets_x[i]
        qy, qx = nnf[py, px, 0], nnf[py, px, 1]
        wp = np.exp(-cost[py, px] / (2.0 * sigma2))
        for dy in range(-r, r + 1):
            ty = py + dy
            if ty < 0 or ty >= h:
                continue
            for dx in range(-r, r + 1):
                tx = px + dx
                if tx < 0 or tx >= w or not hole[ty, tx]:
                    continue
                for k in range(3):
                    acc[ty, tx, k] += wp * colour[qy + dy, qx + dx, k]
                weight[ty, tx] += wp
    for y in range(h):
        for x in range(w):
            if hole[y, x] and weight[y, x] > 0:
                for k in range(3):
                    out[y, x, k] = acc[y, x, k] / weight[y, x]


@nb.njit(cache=True)
def vote_best(colour: np.ndarray, hole: np.ndarray, targets_y: np.ndarray, targets_x: np.ndarray, nnf: np.ndarray,
              cost: np.ndarray, r: int, out: np.ndarray) -> None:
    """Each hole pixel of ``out`` takes the colour that the cheapest patch over it copies (no averaging: sharp,
    with seams only where neighbouring patches copy from different places)."""
    h, w = hole.shape
    best = np.full((h, w), np.inf)
    for i in range(targets_y.shape[0]):
        py, px = targets_y[i], targets_x[i]
        qy, qx = nnf[py, px, 0], nnf[py, px, 1]
        c = cost[py, px]
        for dy in range(-r, r + 1):
            ty = py + dy
            if ty < 0 or ty >= h:
                continue
            for dx in range(-r, r + 1):
                tx = px + dx
                if tx < 0 or tx >= w or not hole[ty, tx] or c >= best[ty, tx]:
                    continue
                best[ty, tx] = c
                for k in range(3):
                    out[ty, tx, k] = colour[qy + dy, qx + dx, k]
