"""The improved context encoder: a 1 x 1 convolution bottleneck, any multiple of its stride, hole ignored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.networks import build_network
from engine.networks.context_encoder import ContextEncoder
from tests.engine.network_checks import fill_twice_with_other_hole_content, untrained_prefill_output


def test_the_bottleneck_is_made_of_one_by_one_convolutions() -> None:
    net = ContextEncoder(base_channels=8, depth=3, bottleneck_layers=2)
    convs = [m for m in net.bottleneck.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(c.kernel_size == (1, 1) and c.in_channels == 64 for c in convs)
    assert net.stride == 8


@pytest.mark.parametrize("size", [(32, 32), (48, 64)])
def test_any_multiple_of_the_stride_keeps_its_size_and_the_hole_content_is_ignored(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = build_network("context-encoder-ms", {"base_channels": 8, "depth": 3}).eval()
    a, b = fill_twice_with_other_hole_content(net, *size)
    assert a.shape == (2, 3, *size) and torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


def test_with_prefill_an_untrained_network_returns_the_harmonic_fill() -> None:
    out, harmonic = untrained_prefill_output("context-encoder-ms", {"base_channels": 8, "depth": 3}, 32, 48)
    assert torch.equal(out, harmonic)
