"""``conv(upsample_2x_bilinear(x))`` computed at the low resolution, for inference.

A decoder level of the FFC networks upsamples its input 2x (bilinear, ``align_corners=False``) and runs a
3 x 3 convolution on the result. Both are linear, so each of the four output phases (even / odd row and column)
is a 3 x 3 convolution of the *low*-resolution input with a kernel that folds the bilinear weights into the
convolution's. One convolution with 4x the output channels, then interleaving its phases, gives the same values without
the full-resolution upsampled map, its padded copy or the full-resolution convolution over it: at 512 px on
one CPU thread 71 ms (upsample 16 + padded copy 13 + convolution 42) became about 31.

Along the border the two differ: bilinear upsampling clamps to the edge pixel, and the convolution pads the
upsampled map (reflect or zeros), which the folded kernel cannot see. The outer two output rows and columns are
therefore recomputed on thin strips by the original path, so the result matches it everywhere (to rounding).
Training keeps the original path (``FFCUNet.decode``).
"""

from __future__ import annotations

import torch
from torch import nn

# _PHASES[p][d, k]: the weight of low-resolution offset d - 1 in the upsampled pixel that the convolution's tap
# k - 1 reads, for an output pixel of phase p (0 = even, 1 = odd). Upsampled pixel 2i is 0.25 x[i-1] + 0.75 x[i],
# 2i + 1 is 0.75 x[i] + 0.25 x[i+1].
# (Kept as lists: a tensor made at import could land on the meta device of the model loader's context.)
_PHASES = (
    ((0.75, 0.25, 0.00), (0.25, 0.75, 0.75), (0.00, 0.00, 0.25)),
    ((0.25, 0.00, 0.00), (0.75, 0.75, 0.25), (0.00, 0.25, 0.75)),
)
_BORDER = 2  # output rows / columns at each side that the folded kernels get wrong (recomputed)


def can_fold(conv: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``upsample_conv`` applies: a plain 3 x 3, stride-1, padding-1 convolution at inference, on an
    N x C x H x W map at least 3 x 3."""
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and x.dim() == 4 and min(x.shape[-2:]) >= 3 and not torch.is_grad_enabled())


def folded_weights(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The four phase kernels stacked as ``_interleave`` reads them (output channel o of row phase a, column
    phase b at (a * 2 + b) * O + o), and the bias repeated to match; cached on the module until its weights
    change."""
    weight = conv.weight
    # Weights loaded under inference mode carry no version counter, so a change is seen by their checksum.
    key = (weight.data_ptr(), weight.dtype, weight.device, float(weight.detach().double().sum()),
           float(conv.bias.detach().double().sum()) if conv.bias is not None else 0.0)
    cached = getattr(conv, "_folded", None)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    phases = torch.tensor(_PHASES, dtype=torch.float64, device=weight.device)
    w64 = weight.detach().to(torch.float64)
    folded = torch.einsum("ocyx,ady,bex->abocde", w64, phases, phases)  # (2, 2, O, C, 3, 3)
    folded = folded.reshape(-1, *weight.shape[1:]).to(weight.dtype)
    bias = conv.bias.detach().repeat(4) if conv.bias is not None else None
    if folded.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last):
        folded = folded.contiguous(memory_format=torch.channels_last)
    object.__setattr__(conv, "_folded", (key, folded, bias))  # not a registered buffer: never saved
    return folded, bias


def _reference(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """The original path: bilinear 2x upsampling, then the convolution."""
    return conv(nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))


def _interleave(phases: torch.Tensor) -> torch.Tensor:
    """The full-resolution map from the phase maps (channel (a * 2 + b) * O + o holds output channel o at row
    phase a, column phase b). With the phase outermost, an NHWC input interleaves in one copy of runs of 2 x O
    values, 6x faster than ``pixel_shuffle``'s order (O outermost) at 512 px; the output is NHWC too."""
    n, c4, h, w = phases.shape
    o = c4 // 4
    if phases.is_contiguous(memory_format=torch.channels_last):
        nhwc = phases.permute(0, 2, 3, 1).reshape(n, h, w, 2, 2, o).permute(0, 1, 3, 2, 4, 5)
        return nhwc.reshape(n, 2 * h, 2 * w, o).permute(0, 3, 1, 2)
    return phases.reshape(n, 2, 2, o, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, o, 2 * h, 2 * w)


def upsample_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(interpolate(x, scale_factor=2, mode="bilinear"))`` for a ``conv`` where ``can_fold`` holds."""
    weight, bias = folded_weights(conv)
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = bias.to(dtype) if bias is not None else None
    with torch.autocast(device_type=device, enabled=False):
        phases = nn.functional.conv2d(x, weight, bias, padding=1)  # zero padding: the border is redone below
    out = _interleave(phases)
    b = _BORDER
    h, w = out.shape[-2:]
    low = b // 2  # low-resolution rows behind `_BORDER` output rows
    top, bottom = _reference(x[:, :, :low + 1], conv), _reference(x[:, :, -low - 1:], conv)
    left, right = _reference(x[:, :, :, :low + 1], conv), _reference(x[:, :, :, -low - 1:], conv)
    out[:, :, :b] = top[:, :, :b].to(out.dtype)
    out[:, :, h - b:] = bottom[:, :, -b:].to(out.dtype)
    out[:, :, :, :b] = left[:, :, :, :b].to(out.dtype)
    out[:, :, :, w - b:] = right[:, :, :, -b:].to(out.dtype)
    return out
