"""The partial-convolution U-Net: renormalised partial convolutions, the max-pooled mask, hole independence."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.networks import build_network
from engine.networks.pconv import PartialConv2d, PConvUNet
from tests.engine.network_checks import fill_twice_with_other_hole_content


def _hole_mask(h: int = 16, w: int = 16) -> torch.Tensor:
    valid = torch.ones(1, 1, h, w)
    valid[..., 4:11, 3:12] = 0  # a 7 x 9 hole
    return valid


def test_a_fully_masked_window_gives_zero_and_the_mask_is_max_pooled() -> None:
    torch.manual_seed(0)
    conv = PartialConv2d(2, 4, 3)
    torch.nn.init.normal_(conv.conv.bias)  # a non-zero bias must not leak into the hole
    valid = _hole_mask()
    out, updated = conv(torch.rand(1, 2, 16, 16), valid)
    assert torch.equal(updated, F.max_pool2d(valid, 3, 1, 1))
    assert updated[..., 5:10, 4:11].sum() == 0 and updated[..., 4, 3] == 1  # the hole shrank by one pixel
    assert torch.equal(out * (1 - updated), torch.zeros_like(out))
    assert (out[..., 4, 3] != 0).all()


def test_the_sum_is_renormalised_by_the_valid_ratio() -> None:
    conv = PartialConv2d(3, 1, 3)
    with torch.no_grad():
        conv.conv.weight.fill_(1.0 / 27)  # the mean of the window
        conv.conv.bias.zero_()
    valid = _hole_mask()
    out, updated = conv(torch.ones(1, 3, 16, 16), valid)
    # The mean over the valid pixels of a constant image is that constant, however few of them the window holds
    # (zero padding at the border counts as invalid, as in the paper's implementation).
    assert torch.allclose(out[updated.bool()], torch.ones(int(updated.sum())), atol=1e-6)
    stride2, down = PartialConv2d(3, 1, 3, stride=2)(torch.ones(1, 3, 16, 16), valid)
    assert stride2.shape[-2:] == (8, 8) and torch.equal(down, F.max_pool2d(valid, 3, 2, 1))


def test_a_per_channel_mask_counts_each_channel() -> None:
    conv = PartialConv2d(2, 1, 1)
    with torch.no_grad():
        conv.conv.weight.fill_(0.5)
        conv.conv.bias.zero_()
    x = torch.tensor([2.0, 6.0]).view(1, 2, 1, 1)
    half = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)  # only the first channel is valid
    out, updated = conv(x, half)
    assert out.item() == 2.0 and updated.item() == 1.0  # 0.5 * 2 renormalised by 2 / 1


def test_the_unet_keeps_its_size_and_ignores_the_hole_content() -> None:
    torch.manual_seed(0)
    net = build_network("pconv-unet", {"base_channels": 8, "depth": 3}).eval()
    assert isinstance(net, PConvUNet) and net.stride == 8
    a, b = fill_twice_with_other_hole_content(net, 40, 48)
    assert a.shape == (2, 3, 40, 48) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
