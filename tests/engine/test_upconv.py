"""The decoder's upsample + convolution folded into one low-resolution convolution (engine.networks.upconv)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.networks import ffc
from engine.networks.ffc import FFCStructureGenerator, ReflectConv2d
from engine.networks.ffc_edge import FFCEdgeGenerator
from engine.networks.upconv import can_fold, upsample_conv


def _reference(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    return conv(nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))


def _conv(padding_mode: str, bias: bool = True) -> nn.Conv2d:
    torch.manual_seed(3)
    return ReflectConv2d(6, 5, 3, padding=1, padding_mode=padding_mode, bias=bias).eval()


@pytest.mark.parametrize("padding_mode", ["reflect", "zeros"])
@pytest.mark.parametrize("size", [(3, 3), (4, 7), (17, 9), (32, 40)])
@pytest.mark.parametrize("nhwc", [False, True])
def test_the_folded_path_gives_the_upsample_then_convolution_values(padding_mode: str, size: tuple[int, int],
                                                                    nhwc: bool) -> None:
    """Every output pixel, the two outer rows and columns (redone on strips) included."""
    conv = _conv(padding_mode)
    x = torch.randn(2, 6, *size)
    if nhwc:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert can_fold(conv, x)
        ours, theirs = upsample_conv(x, conv), _reference(x, conv)
    assert ours.shape == theirs.shape == (2, 5, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-6)
    assert ours.is_contiguous(memory_format=torch.channels_last) == nhwc


def test_a_convolution_without_bias_folds_too() -> None:
    conv = _conv("reflect", bias=False)
    x = torch.randn(1, 6, 8, 8)
    with torch.inference_mode():
        torch.testing.assert_close(upsample_conv(x, conv), _reference(x, conv), rtol=0, atol=2e-6)


def test_the_folded_weights_follow_a_change_of_the_weights() -> None:
    conv = _conv("reflect")
    x = torch.randn(1, 6, 8, 8)
    with torch.inference_mode():
        upsample_conv(x, conv)
    with torch.no_grad():
        conv.weight.mul_(-2.0)
    with torch.inference_mode():
        torch.testing.assert_close(upsample_conv(x, conv), _reference(x, conv), rtol=0, atol=4e-6)


def test_training_and_other_convolutions_keep_the_plain_path() -> None:
    x = torch.randn(1, 6, 8, 8)
    assert not can_fold(_conv("reflect"), x)  # gradients enabled: training
    with torch.no_grad():
        assert not can_fold(ReflectConv2d(6, 5, 4, stride=2, padding=1), x)
        assert not can_fold(nn.Conv2d(6, 5, 3, padding=2, dilation=2), x)
        assert not can_fold(_conv("reflect"), torch.randn(1, 6, 2, 8))  # too small for the border strips


def _trained_looking(net: nn.Module) -> nn.Module:
    torch.manual_seed(2)
    for p in net.parameters():
        nn.init.normal_(p, std=0.05)
    return net.eval()


@pytest.mark.parametrize(("network", "arguments"), [(FFCStructureGenerator, {}),
                                                     (FFCStructureGenerator, {"half_resolution": True}),
                                                     (FFCEdgeGenerator, {})])
def test_the_networks_give_the_same_fill_with_and_without_the_fold(network, arguments: dict, monkeypatch) -> None:
    """In fp32 to rounding; under the engine's bf16 autocast within bf16's rounding of the correction."""
    net = _trained_looking(network(base_channels=8, residual_blocks=2, **arguments))
    torch.manual_seed(0)
    channels = 3 if network is FFCStructureGenerator else 1
    inputs = [torch.rand(1, channels, 48, 64), (torch.rand(1, 1, 48, 64) > 0.9).float(), torch.zeros(1, 1, 48, 64)]
    inputs[2][..., 10:30, 12:40] = 1
    inputs = [t.contiguous(memory_format=torch.channels_last) for t in inputs]
    outputs, folded = {}, []
    monkeypatch.setattr(ffc, "upsample_conv", lambda x, conv: folded.append(conv) or upsample_conv(x, conv))
    for fold in (True, False):
        if not fold:
            monkeypatch.setattr(ffc, "can_fold", lambda conv, x: False)
        for autocast in (False, True):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                outputs[fold, autocast] = net(*inputs).float()
    assert len(folded) == 2 * len(net.up)  # every decoder level, in both precisions
    torch.testing.assert_close(outputs[True, False], outputs[False, False], rtol=0, atol=1e-5)
    assert (outputs[True, True] - outputs[False, True]).abs().max() < 2 / 255


def test_weights_loaded_under_inference_mode_fold_and_follow_a_reload() -> None:
    """The model store loads weights as inference tensors (no version counter)."""
    with torch.inference_mode():
        conv = _conv("reflect")
        conv.weight = nn.Parameter(conv.weight.clone(), requires_grad=False)
        x = torch.randn(1, 6, 8, 8)
        torch.testing.assert_close(upsample_conv(x, conv), _reference(x, conv), rtol=0, atol=2e-6)
        conv.weight.copy_(torch.randn_like(conv.weight))  # load_state_dict copies into the same storage
        torch.testing.assert_close(upsample_conv(x, conv), _reference(x, conv), rtol=0, atol=2e-5)
