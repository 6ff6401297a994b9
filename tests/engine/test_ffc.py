"""The LaMa-style FFC structure generator: starts as the harmonic fill, ignores the hole's content, any size."""

from __future__ import annotations

import pytest
import torch

from engine.networks import build_network, ffc
from engine.networks.ffc import FFCStructureGenerator, ReflectConv2d, reflect_pad_channels_last
from engine.networks.prefill import harmonic_fill


def _inputs(h: int = 40, w: int = 48) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    image = torch.rand(2, 3, h, w)
    edges = (torch.rand(2, 1, h, w) > 0.9).float()
    mask = torch.zeros(2, 1, h, w)
    mask[..., 8:24, 10:30] = 1
    return image, edges, mask


@pytest.mark.parametrize("half", [False, True])
def test_an_untrained_network_returns_the_harmonic_fill(half: bool) -> None:
    image, edges, mask = _inputs()
    net = FFCStructureGenerator(base_channels=8, residual_blocks=2, half_resolution=half).eval()
    with torch.no_grad():
        assert torch.allclose(net(image, edges, mask), harmonic_fill(image, mask).clamp(0, 1))


@pytest.mark.parametrize("half", [False, True])
def test_the_hole_content_cannot_influence_the_output(half: bool) -> None:
    image, edges, mask = _inputs()
    net = FFCStructureGenerator(base_channels=8, residual_blocks=2, half_resolution=half).eval()
    for p in net.parameters():  # a trained-looking network: every weight non-zero
        torch.nn.init.normal_(p, std=0.05)
    other = image * (1 - mask) + torch.rand_like(image) * mask
    with torch.no_grad():
        a, b = net(image, edges, mask), net(other, edges, mask)
    assert torch.equal(a, b)
    assert not torch.allclose(a, harmonic_fill(image, mask).clamp(0, 1))  # the weights do act on the output


@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize("size", [(32, 32), (40, 72), (96, 64)])
def test_any_multiple_of_eight_keeps_its_size_and_the_global_branch_sees_the_whole_image(
        size: tuple[int, int], half: bool) -> None:
    h, w = size
    image, edges, mask = _inputs(h, w)
    net = FFCStructureGenerator(base_channels=8, residual_blocks=1, half_resolution=half)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    net.eval()
    with torch.no_grad():
        out = net(image, edges, mask)
        assert out.shape == (2, 3, h, w) and torch.isfinite(out).all()
        # A change in the far corner reaches the hole's centre: an image-wide receptive field.
        far = image.clone()
        far[..., -4:, -4:] = 1 - far[..., -4:, -4:]
        moved = (net(far, edges, mask) - out)[..., h // 2 - 2:h // 2 + 2, w // 3:w // 3 + 2].abs().max()
    assert moved > 0


def test_the_registry_builds_it_and_refuses_a_bad_split() -> None:
    assert isinstance(build_network("lama-ffc", {"base_channels": 8}), FFCStructureGenerator)
    with pytest.raises(ValueError, match="global_percent"):
        build_network("lama-ffc", {"base_channels": 8, "global_percent": 100})


def test_the_half_resolution_network_sees_every_pixel_and_predicts_a_half_resolution_correction() -> None:
    image, edges, mask = _inputs(32, 32)
    net = FFCStructureGenerator(base_channels=8, residual_blocks=1, half_resolution=True)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    net.eval()
    with torch.no_grad():
        correction = net(image, edges, mask) - harmonic_fill(image, mask)
        # One edge pixel of odd coordinates (dropped by a plain 2x subsampling) still changes the fill.
        shifted = edges.clone()
        shifted[..., 13, 15] = 1 - shifted[..., 13, 15]
        assert (net(image, shifted, mask) - harmonic_fill(image, mask) - correction).abs().max() > 0
    # No full-resolution layer: the stem unshuffles, and only the 1/4 and 1/8 levels remain below it.
    assert isinstance(net.stem[0], torch.nn.PixelUnshuffle) and len(net.down) == len(net.up) == 2
    assert net.head.in_channels == 16
    # The correction of a half-size map upsampled: it varies smoothly between neighbouring pixels.
    inside = correction[..., 10:22, 12:28]
    assert inside.diff(dim=-1).abs().mean() < inside.abs().mean()


@pytest.mark.parametrize("pad", [1, 3])
def test_the_channels_last_reflect_pad_gives_torchs_values(pad: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 6, 11, 9).contiguous(memory_format=torch.channels_last)
    ours = reflect_pad_channels_last(x, pad)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(ours, torch.nn.functional.pad(x, (pad,) * 4, mode="reflect"))  # corners included


def _trained_looking(net: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(2)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return net.eval()


def _context(autocast: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if autocast else torch.autocast("cpu", enabled=False)


@pytest.mark.parametrize("autocast", [False, True])
def test_the_fast_convolution_gives_the_same_bits_as_nn_conv2d(autocast: bool) -> None:
    conv = _trained_looking(ReflectConv2d(6, 5, 3, padding=1, padding_mode="reflect"))
    plain = _trained_looking(torch.nn.Conv2d(6, 5, 3, padding=1, padding_mode="reflect"))
    x = torch.randn(1, 6, 20, 24).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), _context(autocast):
        assert torch.equal(conv(x), plain(x))
        assert torch.equal(conv(x.contiguous()), plain(x.contiguous()))
        assert conv(x.float()).dtype == plain(x.float()).dtype


@pytest.mark.parametrize("autocast", [False, True])
def test_the_network_gives_the_same_bits_with_and_without_the_fast_paths(autocast: bool, monkeypatch) -> None:
    """The engine runs NHWC under bf16 autocast; the reordered cast and the slice-copy padding must not change a
    bit of the output (the folded decoder levels round differently: tests/engine/test_upconv.py)."""
    monkeypatch.setattr(ffc, "can_fold", lambda conv, x: False)
    net = _trained_looking(FFCStructureGenerator(base_channels=8, residual_blocks=2))
    image, edges, mask = _inputs(48, 64)
    nhwc = [t.contiguous(memory_format=torch.channels_last) for t in (image, edges, mask)]
    with torch.no_grad(), _context(autocast):
        fast = net(*nhwc)
        monkeypatch.setattr(ReflectConv2d, "_conv_forward", torch.nn.Conv2d._conv_forward)
        plain = net(*nhwc)
    assert torch.equal(fast, plain)


def test_training_takes_the_plain_convolution_path() -> None:
    conv = _trained_looking(ReflectConv2d(4, 4, 3, padding=1, padding_mode="reflect")).train()
    x = torch.randn(1, 4, 12, 12, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv(x).float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
