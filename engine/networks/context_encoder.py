"""The improved context encoder of the multi-scale-discriminator inpainting papers, sized for a CPU.

A context encoder (Pathak et al. 2016) whose channel-wise fully connected bottleneck, which ties the network to
one input size, is replaced by 1 x 1 convolutions, so the network is fully convolutional:

- encoder: a 5 x 5 stem and ``depth`` stride-2 4 x 4 convolutions (LeakyReLU 0.2), channels doubling to
  8x base at most;
- bottleneck: ``bottleneck_layers`` 1 x 1 convolutions (ReLU) mixing the channels at every position;
- decoder: nearest upsampling + 3 x 3 convolution per octave (no checkerboard), ReLU, a 3 x 3 RGB head.

Its training recipe (in the trainer) adds what the paper is named for: the same PatchGAN discriminator at two
scales (full and half resolution) and a local texture loss on the hole. ``base_channels=24, depth=4`` has about
1.6 M parameters. ``prefill=True`` (not the paper's) starts from the harmonic fill of the hole and predicts a
correction to it from a zero-initialised head, as ``lama-ffc`` does. ``forward(image, mask)``: images in [0, 1],
``mask`` 1 in the hole, whose content cannot influence the output.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from engine.networks.prefill import harmonic_fill


class ContextEncoder(nn.Module):
    """Encoder, 1 x 1 bottleneck, upsampling decoder; see the module docstring."""

    stage = "completion"

    def __init__(self, base_channels: int = 24, depth: int = 4, bottleneck_layers: int = 2,
                 prefill: bool = False) -> None:
        super().__init__()
        c = base_channels
        self.prefill = prefill
        widths = [min(c * 2 ** i, 8 * c) for i in range(depth + 1)]
        self.stride = 2 ** depth
        self.stem = nn.Sequential(nn.Conv2d(4, c, 5, padding=2), nn.LeakyReLU(0.2, inplace=True))
        self.down = nn.Sequential(*[nn.Sequential(nn.Conv2d(a, b, 4, stride=2, padding=1),
                                                  nn.LeakyReLU(0.2, inplace=True))
                                    for a, b in itertools.pairwise(widths)])
        deep = widths[-1]
        self.bottleneck = nn.Sequential(*[nn.Sequential(nn.Conv2d(deep, deep, 1), nn.ReLU(inplace=True))
                                          for _ in range(bottleneck_layers)])
        self.up = nn.ModuleList([nn.Conv2d(b, a, 3, padding=1) for a, b in itertools.pairwise(widths)][::-1])
        self.act = nn.ReLU(inplace=True)
        self.head = nn.Conv2d(c, 3, 3, padding=1)
        if prefill:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return the completed RGB image in [0, 1] (H and W multiples of ``stride``)."""
        start = harmonic_fill(image, mask) if self.prefill else image * (1.0 - mask)
        x = self.bottleneck(self.down(self.stem(torch.cat([start, mask], dim=1))))
        for conv in self.up:
            x = self.act(conv(F.interpolate(x, scale_factor=2.0, mode="nearest")))
        x = self.head(x)
        return (start + x).clamp(0.0, 1.0) if self.prefill else torch.sigmoid(x)
