"""Working resolution: shrink a crop for the network, pad it to the stride, and restore full-resolution detail.

A crop whose long side exceeds the model's working resolution is downscaled with ``INTER_AREA``. The hole
is zeroed before downscaling and a low-resolution pixel counts as hole if *any* full-resolution pixel
under it is hole, so no pixel under the mask leaks into a "known" low-resolution pixel. Crops at or
below the working resolution run as they are (padded, never upscaled).

Detail lost by downscaling is restored inside the hole with contextual residual aggregation (CRA,
HiFill: Yi et al., CVPR 2020). The high-frequency residual of the known area is
``full-res known - upsampled(low-res filled)``; attention between hole cells and known cells is computed at
low resolution on the generator's output (cosine similarity of 3x3 neighbourhoods on a coarse grid of at
most ``GRID`` x ``GRID`` cells, softmax over the ``TOP_K`` best matches); each hole cell then receives the
attention-weighted sum of the known cells' full-resolution residual patches, added to the upsampled fill.
Patches overlap by half and are blended with a separable tent window, so no cell seams appear.
Memory is bounded by a few copies of the crop (the patch matrix holds about 4 x crop pixels), whatever
the hole size, and the attention by ``GRID**2 x TOP_K``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

MIN_NETWORK_SIDE = 32  # padded network inputs are at least this large (the generators' reflection pads need it)
GRID = 64  # attention grid: at most GRID x GRID cells over the crop
TOP_K = 8  # known cells each hole cell draws its residual from
SOFTMAX_SCALE = 10.0  # HiFill's scale on cosine similarities


def working_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """(h, w) of the network input before padding: the long side fits ``resolution``; never upscaled."""
    long_side = max(height, width)
    if long_side <= resolution:
        return height, width
    scale = resolution / long_side
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``INTER_AREA`` resize of an image to ``size`` = (h, w); a no-op at the same size."""
    if image.shape[:2] == tuple(size):
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def shrink_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bool mask at ``size``: True where *any* pixel of the source area is True (conservative)."""
    if mask.shape[:2] == tuple(size):
        return mask.astype(bool, copy=False)
    # uint16 keeps a single True pixel visible in the area average for shrink factors up to about 360.
    wide = mask.astype(np.uint16) * np.uint16(65535)
    return cv2.resize(wide, (size[1], size[0]), interpolation=cv2.INTER_AREA) > 0


def pad_amounts(height: int, width: int, stride: int, min_side: int = MIN_NETWORK_SIDE) -> tuple[int, int]:
    """Bottom and right padding that makes (height, width) multiples of ``stride`` and at least ``min_side``."""
    def target(n: int) -> int:
        n = max(n, min_side)
        return math.ceil(n / stride) * stride
    return target(height) - height, target(width) - width


def pad_reflect(array: np.ndarray, pad_bottom: int, pad_right: int) -> np.ndarray:
    """Reflect-pad an H x W (x C) array at the bottom and right (repeated reflection for tiny arrays)."""
    if not pad_bottom and not pad_right:
        return array
    widths = [(0, pad_bottom), (0, pad_right)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="reflect")


@dataclass
class WorkingCrop:
    """A crop prepared for a network: the low-resolution known image, its hole mask and the shrink factor."""

    image: np.ndarray  # h x w x 3 uint8, hole zeroed
    mask: np.ndarray  # h x w bool (True = hole, conservative)
    full_size: tuple[int, int]  # (H, W) of the crop at full resolution

    @property
    def scaled(self) -> bool:
        return self.image.shape[:2] != tuple(self.full_size)


def to_working(image: np.ndarray, mask: np.ndarray, resolution: int) -> WorkingCrop:
    """Zero the hole, then shrink the crop so its long side fits ``resolution`` (``INTER_AREA``)."""
    known = image.copy()
    known[mask] = 0
    size = working_size(image.shape[0], image.shape[1], resolution)
    small_mask = shrink_mask(mask, size)
    small = shrink_image(known, size)
    if small is not known:
        small[small_mask] = 0
    return WorkingCrop(small, small_mask, (image.shape[0], image.shape[1]))


def _tent(length: int) -> torch.Tensor:
    """Weights of a 2P tent window sampled at pixel centres; shifted copies at stride P sum to 1."""
    half = length // 2
    x = (torch.arange(length, dtype=torch.float32) + 0.5) / half - 1.0
    return 1.0 - x.abs()


def _cell_features(low_filled: np.ndarray, grid_h: int, grid_w: int) -> torch.Tensor:
    """Unit-norm 3x3-neighbourhood colour features of every grid cell: (grid_h * grid_w, 27)."""
    small = cv2.resize(np.ascontiguousarray(low_filled), (grid_w, grid_h), interpolation=cv2.INTER_AREA)
    grid = torch.from_numpy(small.reshape(grid_h, grid_w, 3)).permute(2, 0, 1)[None].float()
    grid = grid - grid.mean(dim=(2, 3), keepdim=True)
    feats = F.unfold(F.pad(grid, (1, 1, 1, 1), mode="replicate"), 3)[0].T  # (cells, 27)
    return F.normalize(feats, dim=1, eps=1e-6)


def add_aggregated_residual(full_image: np.ndarray, full_mask: np.ndarray, low_filled: np.ndarray,
                            upsampled: np.ndarray, grid: int = GRID, top_k: int = TOP_K) -> None:
    """Add the CRA residual to ``upsampled`` (float32 H x W x 3, [0, 1] scale) around the hole, in place.

    ``full_image`` uint8 H x W x 3 (hole content is never read), ``full_mask`` bool H x W (True = hole),
    ``low_filled`` the network's fill at low resolution (float32 h x w x 3 in [0, 1], known pixels kept),
    ``upsampled`` that fill resized to H x W. Only cells touched by the hole change.
    """
    height, width = full_mask.shape
    cell = max(2, math.ceil(max(height, width) / grid))
    cell += cell % 2  # even, so the 2P tent window is centred on its cell
    half = cell // 2
    grid_h, grid_w = math.ceil(height / cell), math.ceil(width / cell)
    # Cells touched by the hole are targets; cells entirely known and inside the crop are sources.
    hole_pad = np.zeros((grid_h * cell, grid_w * cell), np.uint16)
    hole_pad[:height, :width] = full_mask
    cell_hole = cv2.resize(hole_pad * np.uint16(65535), (grid_w, grid_h), interpolation=cv2.INTER_AREA) > 0
    hole_pad[height:, :] = 1
    hole_pad[:, width:] = 1
    cell_known = ~(cv2.resize(hole_pad * np.uint16(65535), (grid_w, grid_h), interpolation=cv2.INTER_AREA) > 0)
    targets = np.flatnonzero(cell_hole.ravel())
    sources = np.flatnonzero(cell_known.ravel())
    if targets.size == 0 or sources.size == 0:
        return
    # Attention at low resolution: cosine similarity of 3x3 cell neighbourhoods, softmax over the top k.
    feats = _cell_features(low_filled, grid_h, grid_w)
    k = min(top_k, sources.size)
    src_feats = feats[torch.from_numpy(sources)]
    weights_list, index_list = [], []
    for start in range(0, targets.size, 1024):  # bounded memory: 1024 x sources scores at a time
        scores = feats[torch.from_numpy(targets[start:start + 1024])] @ src_feats.T
        top, idx = scores.topk(k, dim=1)
        weights_list.append(torch.softmax(SOFTMAX_SCALE * top, dim=1))
        index_list.append(idx)
    weights, index = torch.cat(weights_list), torch.cat(index_list)
    # Full-resolution residual of the known area, padded by half a cell so that 2P windows centre on cells.
    residual = np.zeros((grid_h * cell + cell, grid_w * cell + cell, 3), np.float32)
    inner = residual[half:half + height, half:half + width]
    for y in range(0, height, 256):  # row bands keep temporaries small
        band = slice(y, min(y + 256, height))
        inner[band] = full_image[band]
        inner[band] *= np.float32(1 / 255)
        inner[band] -= upsampled[band]
        inner[band][full_mask[band]] = 0.0  # hole pixels contribute nothing
    row_stride, item = residual.strides[0], residual.itemsize
    windows = np.lib.stride_tricks.as_strided(  # a view, no copy; numpy gathers from it far faster than torch
        residual, (grid_h, grid_w, 2 * cell, 2 * cell, 3),
        (cell * row_stride, cell * 3 * item, row_stride, 3 * item, item), writeable=False)
    tent = _tent(2 * cell)
    tent2d = (tent[:, None] * tent[None, :])[:, :, None]
    # Mix each target's k source windows, then overlap-add: the window of cell (r, c) covers the
    # half-shifted blocks (r..r+1, c..c+1).
    rows, cols = targets // grid_w, targets % grid_w
    r0, c0 = int(rows.min()), int(cols.min())
    blocks_h, blocks_w = int(rows.max()) - r0 + 2, int(cols.max()) - c0 + 2
    acc = torch.zeros(blocks_h, blocks_w, cell, cell, 3)
    rows_t, cols_t = torch.from_numpy(rows - r0), torch.from_numpy(cols - c0)
    src = sources[index.numpy()]
    src_rows, src_cols = src // grid_w, src % grid_w
    chunk = max(1, 8_000_000 // (k * 12 * cell * cell))  # bounded: about 32 MB of gathered windows at a time
    for start in range(0, targets.size, chunk):
        sl = slice(start, min(start + chunk, targets.size))
        gathered = torch.from_numpy(windows[src_rows[sl], src_cols[sl]])  # (t, k, 2P, 2P, 3)
        mixed = torch.bmm(weights[sl, None, :], gathered.flatten(2)).reshape(-1, 2 * cell, 2 * cell, 3) * tent2d
        for dy in (0, 1):
            for dx in (0, 1):
                block_rows, block_cols = rows_t[sl] + dy, cols_t[sl] + dx
                acc[block_rows, block_cols] += mixed[:, dy * cell:(dy + 1) * cell, dx * cell:(dx + 1) * cell]
    acc = acc.permute(0, 2, 1, 3, 4).reshape(blocks_h * cell, blocks_w * cell, 3)
    # Block (i, j) starts at crop pixel ((r0 + i) * P - P/2, (c0 + j) * P - P/2).
    y0, x0 = r0 * cell - half, c0 * cell - half
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(height, y0 + blocks_h * cell), min(width, x0 + blocks_w * cell)
    upsampled[ys:ye, xs:xe] += acc[ys - y0:ye - y0, xs - x0:xe - x0].numpy()


def restore_full_resolution(full_image: np.ndarray, full_mask: np.ndarray, low_filled: np.ndarray,
                            use_cra: bool = True) -> np.ndarray:
    """Full-resolution fill (float32 H x W x 3 in [0, 1]) from a low-resolution fill, for the hole.

    ``low_filled`` is the network output with the known low-resolution pixels put back. Without CRA this
    is plain bilinear upsampling; with it, the known area's high-frequency residual is aggregated in.
    """
    height, width = full_mask.shape
    low = np.ascontiguousarray(low_filled, dtype=np.float32)
    if low.shape[:2] == (height, width):
        return low
    upsampled = cv2.resize(low, (width, height), interpolation=cv2.INTER_LINEAR)
    if use_cra:
        add_aggregated_residual(full_image, full_mask, low, upsampled)
        np.clip(upsampled, 0.0, 1.0, out=upsampled)
    return upsampled
