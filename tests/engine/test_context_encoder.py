"""The improved context encoder: a 1 x 1 convolution bottleneck, any multiple of its stride, hole ignored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.networks import build_network
from engine.networks.context_encoder import ContextEncoder


def test_the_bottleneck_is_made_of_one_by_one_convolutions() -> None:
    net = ContextEncoder(base_channels=8, depth=3, bottleneck_layers=2)
    convs = [m for m in net.bottleneck.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(c.kernel_size == (1, 1) and c.in_channels == 64 for c in convs)
    assert net.stride == 8


@pytest.mark.parametrize("size", [(32, 32), (48, 64)])
def test_any_multiple_of_the_stride_keeps_its_size_and_the_hole_content_is_ignored(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = build_network("context-encoder-ms", {"base_channels": 8, "depth": 3}).eval()
    h, w = size
    image = torch.rand(2, 3, h, w)
    mask = torch.zeros(2, 1, h, w)
    mask[..., 8:24, 8:24] = 1
    other = image * (1 - mask) + torch.rand_like(image) * mask
    with torch.no_grad():
        a, b = net(image, mask), net(other, mask)
    assert a.shape == image.shape and torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


def test_with_prefill_an_untrained_network_returns_the_harmonic_fill() -> None:
    from engine.networks.prefill import harmonic_fill

    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 48)
    mask = torch.zeros(1, 1, 32, 48)
    mask[..., 8:24, 10:30] = 1
    net = build_network("context-encoder-ms", {"base_channels": 8, "depth": 3, "prefill": True}).eval()
    with torch.no_grad():
        assert torch.equal(net(image, mask), harmonic_fill(image, mask).clamp(0, 1))
