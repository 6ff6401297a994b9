"""Checks every completion network of engine/networks must pass, shared by their test files."""

from __future__ import annotations

import torch
from torch import nn

from engine.networks import build_network
from engine.networks.prefill import harmonic_fill


def fill_twice_with_other_hole_content(net: nn.Module, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The net's output for a random 2-photo batch with a hole, and for the same batch with other pixels under
    the hole; ``image`` shape is 2 x 3 x h x w."""
    image = torch.rand(2, 3, h, w)
    mask = torch.zeros(2, 1, h, w)
    mask[..., h // 4:3 * h // 4, w // 4:3 * w // 4] = 1
    other = image * (1 - mask) + torch.rand_like(image) * mask
    with torch.no_grad():
        return net(image, mask), net(other, mask)


def untrained_prefill_output(name: str, arguments: dict, h: int = 32, w: int = 40
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(an untrained ``prefill=True`` network's output, the harmonic fill) on one random photo with a hole."""
    torch.manual_seed(0)
    image = torch.rand(1, 3, h, w)
    mask = torch.zeros(1, 1, h, w)
    mask[..., 8:24, 10:30] = 1
    net = build_network(name, {**arguments, "prefill": True}).eval()
    with torch.no_grad():
        return net(image, mask), harmonic_fill(image, mask).clamp(0, 1)
