"""GLCIC completion network (Iizuka et al. 2017): fully convolutional, dilations 2, 4, 8, 16."""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    pad = dilation * (kernel - 1) // 2
    return [nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation), nn.BatchNorm2d(cout), nn.ReLU(True)]


class CompletionNetwork(nn.Module):
    """Completes an RGB image from the masked image and the mask (1 = hole), any size divisible by 4."""

    stage = "completion"
    stride = 4

    def __init__(self, base_channels: int = 64) -> None:
        super().__init__()
        c = base_channels
        layers: list[nn.Module] = []
        layers += _conv(4, c, 5)
        layers += _conv(c, 2 * c, 3, 2)
        layers += _conv(2 * c, 2 * c, 3)
        layers += _conv(2 * c, 4 * c, 3, 2)
        layers += _conv(4 * c, 4 * c, 3)
        layers += _conv(4 * c, 4 * c, 3)
        for dilation in (2, 4, 8, 16):
            layers += _conv(4 * c, 4 * c, 3, dilation=dilation)
        layers += _conv(4 * c, 4 * c, 3)
        layers += _conv(4 * c, 4 * c, 3)
        layers += [nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1), nn.BatchNorm2d(2 * c), nn.ReLU(True)]
        layers += _conv(2 * c, 2 * c, 3)
        layers += [nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(True)]
        layers += _conv(c, c // 2, 3)
        layers += [nn.Conv2d(c // 2, 3, 3, 1, 1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return the completed RGB image in [0, 1]."""
        return self.net(torch.cat([image * (1.0 - mask), mask], dim=1))
