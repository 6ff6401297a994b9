"""A DeepGIN-style generator (Li et al. 2020, "DeepGIN: Deep Generative Inpainting Network for Extreme Image
Inpainting"), sized for a CPU.

The three mechanisms of the paper, on one encoder-decoder:

- spatial-pyramid-dilation (SPD) ResNet blocks at 1/4 resolution: four parallel 3 x 3 convolutions with
  dilations 1, 2, 4 and 8, each giving a quarter of the channels, concatenated, fused by a 1 x 1 convolution
  and added to the input (a block sees 17 x 17 px of its input at the cost of one 3 x 3 layer);
- a multi-scale self-attention block at the bottleneck: self-attention over the features pooled by 2 and by
  4 (attention at two scales; cheap enough for 512 px inputs), upsampled, fused and added with a gain that
  starts at zero;
- back-projection upsampling in the decoder (as in DBPN): upsample, project back down, upsample the
  low-resolution residual and add it as a correction.

``base_channels=32, spd_blocks=4`` has about 1.25 M parameters (the paper's coarse-to-fine pair is ~30 M). No
normalisation layers. ``prefill=True`` (not the paper's) hands the network the harmonic fill of the hole instead
of zeros and makes it predict a correction to it from a zero-initialised head, as ``lama-ffc`` does, so an
untrained network already returns the smooth fill. ``forward(image, mask)``: images in [0, 1], ``mask`` 1 in the
hole, whose content cannot influence the output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.networks.prefill import harmonic_fill

DILATIONS = (1, 2, 4, 8)


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=dilation * (kernel - 1) // 2,
                     dilation=dilation)


class SPDResBlock(nn.Module):
    """Spatial-pyramid-dilation residual block: parallel dilations 1, 2, 4, 8, concatenated, 1 x 1 fused."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        branch = max(1, channels // len(DILATIONS))
        self.branches = nn.ModuleList([_conv(channels, branch, 3, dilation=d) for d in DILATIONS])
        self.fuse = _conv(branch * len(DILATIONS), channels, 1)
        self.act = nn.ELU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = torch.cat([branch(x) for branch in self.branches], dim=1)
        return x + self.fuse(self.act(pyramid))


class SelfAttention(nn.Module):
    """SAGAN-style self-attention over every position of a feature map (no residual; the caller adds it)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 8)
        self.query, self.key = _conv(channels, inner, 1), _conv(channels, inner, 1)
        self.value = _conv(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # N x HW x C'
        k = self.key(x).flatten(2)  # N x C' x HW
        attention = torch.softmax(q @ k / q.shape[-1] ** 0.5, dim=-1)  # N x HW x HW
        return (self.value(x).flatten(2) @ attention.transpose(1, 2)).view(n, c, h, w)


class MultiScaleSelfAttention(nn.Module):
    """Self-attention at two scales (features average-pooled by each of ``scales``), fused and added."""

    def __init__(self, channels: int, scales: tuple[int, ...] = (2, 4)) -> None:
        super().__init__()
        self.scales = scales
        self.attention = nn.ModuleList([SelfAttention(channels) for _ in scales])
        self.fuse = _conv(channels * len(scales), channels, 1)
        self.gain = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        outs = [F.interpolate(attend(F.avg_pool2d(x, s, ceil_mode=True)), size=size, mode="bilinear",
                              align_corners=False) for s, attend in zip(self.scales, self.attention)]
        return x + self.gain * self.fuse(torch.cat(outs, dim=1))


class BackProjection(nn.Module):
    """DBPN's up-projection: ``h0 = up(x)``, ``l0 = down(h0)``, ``h1 = up_residual(l0 - x)``, output ``h0 + h1``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = _conv(in_channels, out_channels, 3)
        self.down = _conv(out_channels, in_channels, 4, stride=2)
        self.up_residual = _conv(in_channels, out_channels, 3)
        self.act = nn.ELU(inplace=False)

    def upsample(self, x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
        return self.act(conv(F.interpolate(x, scale_factor=2.0, mode="nearest")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = self.upsample(x, self.up)
        l0 = self.act(self.down(h0))
        return h0 + self.upsample(l0 - x, self.up_residual)


class DeepGINGenerator(nn.Module):
    """Encoder to 1/4, SPD ResNet blocks, multi-scale self-attention, back-projection decoder."""

    stage = "completion"
    stride = 4  # attention pools with ceil_mode and resizes back, so any multiple of 4 works

    def __init__(self, base_channels: int = 32, spd_blocks: int = 4, prefill: bool = False) -> None:
        super().__init__()
        c = base_channels
        self.prefill = prefill
        deep = 4 * c
        self.encoder = nn.Sequential(
            _conv(4, c, 5), nn.ELU(inplace=True),
            _conv(c, 2 * c, 4, stride=2), nn.ELU(inplace=True),
            _conv(2 * c, deep, 4, stride=2), nn.ELU(inplace=True),
        )
        half = spd_blocks // 2
        self.spd_before = nn.Sequential(*[SPDResBlock(deep) for _ in range(half)])
        self.attention = MultiScaleSelfAttention(deep)
        self.spd_after = nn.Sequential(*[SPDResBlock(deep) for _ in range(spd_blocks - half)])
        self.decoder = nn.Sequential(BackProjection(deep, 2 * c), BackProjection(2 * c, c))
        self.head = _conv(c, 3, 3)
        if prefill:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return the completed RGB image in [0, 1] (H and W multiples of 4)."""
        start = harmonic_fill(image, mask) if self.prefill else image * (1.0 - mask)
        x = self.encoder(torch.cat([start, mask], dim=1))
        x = self.head(self.decoder(self.spd_after(self.attention(self.spd_before(x)))))
        return (start + x).clamp(0.0, 1.0) if self.prefill else torch.sigmoid(x)
