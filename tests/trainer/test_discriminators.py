"""PatchGAN and GLCIC discriminators: shapes, features, spectral norm, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainer.discriminators import GlobalLocalDiscriminator, MultiScalePatchDiscriminator, PatchDiscriminator


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize(("h", "w", "oh", "ow"), [(64, 64, 6, 6), (256, 256, 30, 30), (48, 80, 4, 8), (24, 24, 1, 1)])
def test_patch_output_shapes(h, w, oh, ow):
    d = PatchDiscriminator(3, base_channels=8)
    logits, feats = d(torch.rand(2, 3, h, w))
    assert logits.shape == (2, 1, oh, ow)
    assert len(feats) == 5
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64, 1]
    assert feats[-1] is logits


def test_patch_layout_matches_edgeconnect():
    d = PatchDiscriminator(1, base_channels=64)
    convs = _convs(d)
    assert [c.kernel_size for c in convs] == [(4, 4)] * 5
    assert [c.stride for c in convs] == [(2, 2), (2, 2), (2, 2), (1, 1), (1, 1)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    acts = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 4 and all(a.negative_slope == 0.2 for a in acts)


def test_patch_spectral_norm_switch():
    with_sn = _convs(PatchDiscriminator(3, 8, use_spectral_norm=True))
    without = _convs(PatchDiscriminator(3, 8, use_spectral_norm=False))
    assert all(hasattr(c, "weight_orig") and c.bias is None for c in with_sn)
    assert not any(hasattr(c, "weight_orig") for c in without)
    assert all(c.bias is not None for c in without)


def test_patch_spectral_norm_bounds_weights():
    d = PatchDiscriminator(3, 8)
    d.train()
    for _ in range(5):  # power iterations converge
        d(torch.rand(1, 3, 32, 32))
    conv = _convs(d)[1]
    sigma = torch.linalg.matrix_norm(conv.weight.reshape(conv.weight.shape[0], -1), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=0.15)


def test_patch_gradients_flow():
    d = PatchDiscriminator(4, 8)
    x = torch.rand(2, 4, 32, 32, requires_grad=True)
    _, feats = d(x)
    # Random projections (a plain sum could cancel, e.g. mean + |mean| of all-negative logits).
    torch.manual_seed(1)
    sum((f * torch.randn_like(f)).sum() for f in feats).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())


def test_patch_rejects_tiny_input():
    with pytest.raises(ValueError, match="at least 24"):
        PatchDiscriminator(3, 8)(torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize(("image_size", "local_size"), [(64, 32), (32, 16), (48, 24)])
def test_global_local_shapes(image_size, local_size):
    d = GlobalLocalDiscriminator(image_size, local_size, base_channels=4)
    mask = torch.zeros(3, 1, image_size, image_size)
    mask[0, :, 2:10, 2:10] = 1
    logits, feats = d(torch.rand(3, 3, image_size, image_size), mask)
    assert logits.shape == (3, 1)
    assert len(feats) == 2 and all(f.shape == (3, 1024) for f in feats)


def test_global_local_glcic_depths():
    d = GlobalLocalDiscriminator(256, 128, base_channels=4)
    strided = [c for c in _convs(d.global_net) if c.stride == (2, 2)]
    assert len(strided) == 6  # GLCIC global: six 5x5 stride-2 convs
    assert len([c for c in _convs(d.local_net) if c.stride == (2, 2)]) == 5  # local: five
    assert all(c.kernel_size == (5, 5) for c in _convs(d))


def test_global_local_other_input_size_is_resized():
    d = GlobalLocalDiscriminator(32, 16, base_channels=4)
    logits, _ = d(torch.rand(2, 3, 40, 52))
    assert logits.shape == (2, 1)
    logits, _ = d(torch.rand(1, 3, 12, 12))  # smaller than the local patch: patch resized
    assert logits.shape == (1, 1)


def test_hole_boxes_centre_on_hole_and_stay_inside():
    d = GlobalLocalDiscriminator(64, 16, base_channels=4)
    mask = torch.zeros(3, 1, 64, 64)
    mask[0, :, 20:30, 30:40] = 1  # centre (24.5, 34.5)
    mask[1, :, 0:4, 60:64] = 1  # corner: box clamped
    boxes = d.hole_boxes(mask)  # sample 2: no hole -> centre
    assert boxes.tolist() == [[17, 27], [0, 48], [24, 24]]
    image = torch.rand(3, 3, 64, 64)
    patches = d.crop(image, boxes)
    assert patches.shape == (3, 3, 16, 16)
    torch.testing.assert_close(patches[0], image[0, :, 17:33, 27:43])


def test_global_local_same_boxes_for_real_and_fake_and_gradients():
    d = GlobalLocalDiscriminator(32, 16, base_channels=4)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 4:12, 8:20] = 1
    boxes = d.hole_boxes(mask)
    fake = torch.rand(2, 3, 32, 32, requires_grad=True)
    logits, _ = d(fake, boxes=boxes)
    logits.sum().backward()
    assert fake.grad is not None
    # Gradient reaches the hole region through both the global and the local branch.
    assert fake.grad[:, :, 4:12, 8:20].abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters() if p.requires_grad)


def test_global_local_bad_sizes():
    with pytest.raises(ValueError, match="must not exceed"):
        GlobalLocalDiscriminator(32, 64)
    with pytest.raises(ValueError, match="at least 8"):
        GlobalLocalDiscriminator(4, 4)


def test_global_local_spectral_norm_option():
    d = GlobalLocalDiscriminator(32, 16, base_channels=4, use_spectral_norm=True)
    assert all(hasattr(c, "weight_orig") for c in _convs(d))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def test_multi_scale_patch_judges_the_full_and_the_half_size_image():
    d = MultiScalePatchDiscriminator(3, 8, use_spectral_norm=False, scales=2).eval()
    x = torch.rand(2, 3, 64, 64)
    logits, feats = d(x)
    assert [tuple(t.shape) for t in logits] == [(2, 1, 6, 6), (2, 1, 2, 2)] and len(feats) == 10
    with torch.no_grad():  # the second net sees the image average-pooled by 2
        assert torch.equal(logits[1], d.nets[1](torch.nn.functional.avg_pool2d(x, 2))[0])
        assert torch.equal(logits[0], d.nets[0](x)[0])
    with pytest.raises(ValueError, match="24 x 24"):
        d(torch.rand(1, 3, 40, 40))  # 20 px at half size
