"""Partial-convolution U-Net (Liu et al. 2018, "Image Inpainting for Irregular Holes Using Partial Convolutions").

Every convolution sees only valid pixels: its window is multiplied by the validity mask, the sum is
renormalised by ``window size / valid pixels in the window`` and the bias added where at least one pixel was
valid; the mask passed on is 1 wherever the window held a valid pixel (a max-pool of the mask), so the hole
shrinks layer by layer until the bottleneck sees no hole. The decoder upsamples features and mask by nearest
neighbour, concatenates them with the encoder's features and mask of the same octave (the skip connections),
and the last layer sees the input image and mask again.

Scaled to a CPU: ``base_channels=16``, ``depth=5`` (kernels 7, 5, 3, 3, 3, channels capped at 8x base) has
about 0.7 M parameters; the paper's network has 8 levels and 64-512 channels (33 M). No batch norm (it breaks
fine-tuning at batch 1); decoder activations are LeakyReLU 0.2 as in the paper. The valid region grows by a
few pixels per layer: at ``depth=5`` a square hole wider than about 130 px keeps an unfilled (mid-grey) centre.
Inputs: ``forward(image, mask)``, images in [0, 1], ``mask`` 1 in the hole; the hole's content cannot influence
the output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PartialConv2d(nn.Module):
    """A convolution over the valid pixels only, returning ``(features, updated mask)``.

    ``mask`` is 1 where the input is valid, with one channel (shared by every input channel) or as many
    channels as the input. The updated mask has one channel: the max-pool of the mask over the window.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2)
        self.kernel, self.stride, self.padding = kernel, stride, kernel // 2

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, s, p = self.kernel, self.stride, self.padding
        cin = x.shape[1]
        per_pixel = mask.sum(dim=1, keepdim=True) if mask.shape[1] == cin else mask * cin
        valid = F.avg_pool2d(per_pixel, k, s, p, count_include_pad=True) * (k * k)  # valid entries per window
        updated = F.max_pool2d(mask.amax(dim=1, keepdim=True), k, s, p)
        ratio = (cin * k * k) / valid.clamp_min(1e-8) * updated
        raw = F.conv2d(x * mask, self.conv.weight, None, s, p)
        bias = self.conv.bias.view(1, -1, 1, 1)
        return (raw * ratio + bias) * updated, updated


class PConvUNet(nn.Module):
    """U-Net of partial convolutions with nearest-upsampling skip connections; see the module docstring."""

    stage = "completion"

    def __init__(self, base_channels: int = 16, depth: int = 5) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        c = base_channels
        widths = [min(c * 2 ** i, 8 * c) for i in range(depth)]
        kernels = [7, 5] + [3] * (depth - 2)
        self.stride = 2 ** depth
        self.encoder = nn.ModuleList()
        cin = 3
        for width, kernel in zip(widths, kernels):
            self.encoder.append(PartialConv2d(cin, width, kernel, stride=2))
            cin = width
        # decoder level l joins the upsampled deeper features with encoder output l - 1 (level 0: the input)
        # and returns that many channels (level 0: RGB)
        skips = [3, *widths[:-1]]
        self.decoder = nn.ModuleList()
        deeper = widths[-1]
        for level in reversed(range(depth)):
            self.decoder.append(PartialConv2d(deeper + skips[level], skips[level], 3))
            deeper = skips[level]
        self.act_enc = nn.ReLU(inplace=True)
        self.act_dec = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return the completed RGB image in [0, 1] (H and W multiples of ``stride``)."""
        valid = 1.0 - mask
        x, m = image * valid, valid
        features = [(x, m)]
        for conv in self.encoder:
            x, m = conv(x, m)
            x = self.act_enc(x)
            features.append((x, m))
        x, m = features.pop()
        for i, conv in enumerate(self.decoder):
            skip_x, skip_m = features.pop()
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            m = F.interpolate(m, scale_factor=2.0, mode="nearest")
            joined_m = torch.cat([m.expand(-1, x.shape[1], -1, -1), skip_m.expand(-1, skip_x.shape[1], -1, -1)], 1)
            x, m = conv(torch.cat([x, skip_x], dim=1), joined_m)
            if i < len(self.decoder) - 1:
                x = self.act_dec(x)
        return torch.sigmoid(x)
