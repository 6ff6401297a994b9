"""Float pixels in [0, 1] to uint8: clipped, then rounded to nearest. The one rule for every fill, grid and score.

No torch import: a tensor is converted through numpy (the same float32 arithmetic, the same bytes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def to_uint8(values: np.ndarray) -> np.ndarray:
    """uint8 of float ``values`` in [0, 1] (clipped, rounded to nearest); a uint8 array is returned as is."""
    if values.dtype == np.uint8:
        return values
    out = np.clip(values, 0.0, 1.0)
    out *= 255.0
    out += 0.5
    with np.errstate(invalid="ignore"):  # NaN (a diverged network's output) casts silently, as torch's cast does
        return out.astype(np.uint8)


def tensor_to_uint8(t: torch.Tensor) -> np.ndarray:
    """A C x H x W float tensor in [0, 1] as H x W x C uint8 (H x W for one channel), on the CPU."""
    arr = to_uint8(t.detach().float().permute(1, 2, 0).cpu().numpy())
    return arr[..., 0] if arr.shape[2] == 1 else arr
