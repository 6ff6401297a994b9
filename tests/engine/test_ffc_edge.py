"""The FFC edge generator behind Predict Edges: ignores the hole's content, sees the whole image, starts sparse."""

from __future__ import annotations

import pytest
import torch

from engine.networks import build_network
from engine.networks.ffc_edge import INITIAL_EDGE_PROBABILITY, FFCEdgeGenerator


def _inputs(h: int = 40, w: int = 48) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    gray = torch.rand(2, 1, h, w)
    edges = (torch.rand(2, 1, h, w) > 0.9).float()
    mask = torch.zeros(2, 1, h, w)
    mask[..., 8:24, 10:30] = 1
    return gray, edges, mask


def _trained_looking(net: FFCEdgeGenerator) -> FFCEdgeGenerator:
    for p in net.parameters():  # every weight non-zero, the residual gains included
        torch.nn.init.normal_(p, std=0.05)
    return net.eval()


def test_an_untrained_network_proposes_few_edges() -> None:
    gray, edges, mask = _inputs()
    with torch.no_grad():
        probabilities = torch.sigmoid(FFCEdgeGenerator(base_channels=8, residual_blocks=1).eval()(gray, edges, mask))
    assert probabilities.shape == (2, 1, 40, 48)
    assert probabilities.mean().item() == pytest.approx(INITIAL_EDGE_PROBABILITY, abs=0.03)


def test_the_hole_content_cannot_influence_the_edges() -> None:
    gray, edges, mask = _inputs()
    net = _trained_looking(FFCEdgeGenerator(base_channels=8, residual_blocks=1))
    other_gray = gray * (1 - mask) + torch.rand_like(gray) * mask
    other_edges = edges * (1 - mask) + (torch.rand_like(edges) > 0.5).float() * mask
    with torch.no_grad():
        assert torch.equal(net(gray, edges, mask), net(other_gray, other_edges, mask))
        assert not torch.equal(net(gray, edges, mask), net(1 - gray, edges, mask))  # the known pixels do count


@pytest.mark.parametrize("size", [(32, 32), (40, 72)])
def test_a_known_edge_far_away_reaches_the_hole_s_centre(size: tuple[int, int]) -> None:
    h, w = size
    gray, edges, mask = _inputs(h, w)
    net = _trained_looking(FFCEdgeGenerator(base_channels=8, residual_blocks=1))
    far = edges.clone()
    far[..., -3:, -3:] = 1 - far[..., -3:, -3:]
    with torch.no_grad():
        moved = (net(gray, far, mask) - net(gray, edges, mask))[..., 14:18, 18:22].abs().max()
    assert moved > 0


def test_channels_last_weights_give_the_same_edges() -> None:
    gray, edges, mask = _inputs()
    net = _trained_looking(FFCEdgeGenerator(base_channels=8, residual_blocks=1))
    with torch.no_grad():
        reference = net(gray, edges, mask)
        nhwc = net.to(memory_format=torch.channels_last)(gray, edges, mask)
    assert torch.allclose(reference, nhwc, atol=1e-5)


def test_the_registry_builds_it_and_refuses_a_bad_split() -> None:
    assert isinstance(build_network("lama-ffc-edge", {"base_channels": 8}), FFCEdgeGenerator)
    with pytest.raises(ValueError, match="global_percent"):
        build_network("lama-ffc-edge", {"global_percent": 0})
