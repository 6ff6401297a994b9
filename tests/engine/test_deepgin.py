"""The DeepGIN-style generator: SPD blocks reach 8 px, back projection corrects by its residual, attention is
global at two scales, the hole content is ignored."""

from __future__ import annotations

import torch

from engine.networks import build_network
from engine.networks.deepgin import BackProjection, DeepGINGenerator, MultiScaleSelfAttention, SPDResBlock
from tests.engine.network_checks import fill_twice_with_other_hole_content, untrained_prefill_output


def _randomised(module: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return module.eval()


def _moved(block: torch.nn.Module, x: torch.Tensor, at: tuple[int, int], probe: tuple[int, int]) -> float:
    other = x.clone()
    other[..., at[0], at[1]] += 1.0
    with torch.no_grad():
        return (block(other) - block(x))[..., probe[0], probe[1]].abs().max().item()


def test_an_spd_block_sees_exactly_eight_pixels_away_through_its_dilation_8_branch() -> None:
    block = _randomised(SPDResBlock(8))
    x = torch.rand(1, 8, 33, 33)
    assert _moved(block, x, (16, 24), (16, 16)) > 0  # distance 8: the dilation-8 tap
    assert _moved(block, x, (24, 24), (16, 16)) > 0  # the diagonal corner of the 17 x 17 window
    assert _moved(block, x, (16, 25), (16, 16)) == 0  # distance 9: outside the block's window
    assert _moved(block, x, (16, 21), (16, 16)) == 0  # distance 5: no dilation's tap lands there
    with torch.no_grad():
        block.branches[3].weight.zero_()  # without the dilation-8 branch, 8 px away is out of reach
    assert _moved(block, x, (16, 24), (16, 16)) == 0


def test_back_projection_doubles_the_size_and_adds_the_upsampled_residual() -> None:
    bp = _randomised(BackProjection(6, 4))
    x = torch.rand(2, 6, 10, 12)
    with torch.no_grad():
        out = bp(x)
        h0 = bp.upsample(x, bp.up)
        residual = bp.act(bp.down(h0)) - x
        assert out.shape == (2, 4, 20, 24) and residual.shape == x.shape
        assert torch.allclose(out, h0 + bp.upsample(residual, bp.up_residual), atol=1e-6)
        assert not torch.allclose(out, h0)  # the correction acts
        bp.up_residual.weight.zero_()
        bp.up_residual.bias.zero_()
        assert torch.allclose(bp(x), h0, atol=1e-6)  # elu(0) = 0: no residual path, no correction


def test_multi_scale_attention_starts_as_identity_and_then_is_global() -> None:
    attention = MultiScaleSelfAttention(8)
    x = torch.rand(1, 8, 16, 20)
    with torch.no_grad():
        assert torch.equal(attention.eval()(x), x)
    _randomised(attention)
    assert len(attention.attention) == 2 and attention.scales == (2, 4)
    assert _moved(attention, x, (15, 19), (0, 0)) > 0  # the far corner reaches the origin in one block


def test_the_generator_keeps_any_multiple_of_four_and_ignores_the_hole_content() -> None:
    net = build_network("deepgin", {"base_channels": 8, "spd_blocks": 2})
    assert isinstance(net, DeepGINGenerator)
    _randomised(net)
    a, b = fill_twice_with_other_hole_content(net, 36, 44)
    assert a.shape == (2, 3, 36, 44) and torch.equal(a, b) and torch.isfinite(a).all()


def test_with_prefill_an_untrained_generator_returns_the_harmonic_fill() -> None:
    out, harmonic = untrained_prefill_output("deepgin", {"base_channels": 8, "spd_blocks": 2})
    assert torch.equal(out, harmonic)
