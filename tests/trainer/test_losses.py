"""Losses on known inputs with hand-computed values; VGG-19 layout and weight loading."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from engine.errors import ModelFileError
from trainer.losses import (
    NO_VGG_MESSAGE,
    AdversarialLoss,
    PerceptualStyleLoss,
    edge_bce_loss,
    edge_dice_loss,
    feature_matching_loss,
    gram_matrix,
    load_perceptual_or_none,
    masked_l1,
    total_variation_loss,
)
from trainer.vgg import LAYER_INDEX, VGG19Features, build_features, read_state_dict


def t(rows) -> torch.Tensor:
    """A 1 x 1 x H x W tensor from nested lists."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


# --- masked L1 -----------------------------------------------------------------------------------------------

def test_masked_l1_hole_and_valid_weights_2x2():
    pred = t([[0.4, 0.0], [0.1, 0.5]])
    target = torch.zeros_like(pred)
    mask = t([[1, 0], [0, 0]])
    # hole: |0.4| over 1 pixel = 0.4; valid: (0 + 0.1 + 0.5) / 3 = 0.2
    assert masked_l1(pred, target, mask, 1.0, 0.0).item() == pytest.approx(0.4)
    assert masked_l1(pred, target, mask, 0.0, 1.0).item() == pytest.approx(0.2)
    assert masked_l1(pred, target, mask, 6.0, 1.0).item() == pytest.approx(6 * 0.4 + 0.2)


def test_masked_l1_known_excludes_pixels():
    pred = t([[0.4, 0.0], [0.1, 0.5]])
    mask = t([[1, 0], [0, 0]])
    known = t([[1, 1], [1, 0]])  # bottom-right has no ground truth
    out = masked_l1(pred, torch.zeros_like(pred), mask, 1.0, 1.0, known=known)
    assert out.item() == pytest.approx(0.4 + (0.0 + 0.1) / 2)


def test_masked_l1_broadcasts_mask_over_channels_and_batch():
    pred = torch.zeros(2, 3, 2, 2)
    pred[0, :, 0, 0] = 0.3  # in the hole of sample 0
    pred[1, 1, 1, 1] = 0.9  # in the valid area of sample 1
    mask = torch.zeros(2, 1, 2, 2)
    mask[0, 0, 0, 0] = 1
    mask[1, 0, 0, 1] = 1
    target = torch.zeros_like(pred)
    # Hole: 2 pixels x 3 channels, total error 0.9 -> 0.15. Valid: 6 pixels x 3 channels, error 0.9 -> 0.05.
    assert masked_l1(pred, target, mask, 1.0, 0.0).item() == pytest.approx(0.15)
    assert masked_l1(pred, target, mask, 0.0, 1.0).item() == pytest.approx(0.05)


def test_masked_l1_empty_regions_are_zero_and_gradient_flows():
    pred = torch.full((1, 3, 4, 4), 0.5, requires_grad=True)
    target = torch.zeros(1, 3, 4, 4)
    out = masked_l1(pred, target, torch.zeros(1, 1, 4, 4), 5.0, 1.0)
    assert out.item() == pytest.approx(0.5)  # no hole: only the valid term
    out.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    full = masked_l1(pred.detach(), target, torch.ones(1, 1, 4, 4), 2.0, 7.0)
    assert full.item() == pytest.approx(1.0)  # all hole: 2 * 0.5


# --- adversarial ---------------------------------------------------------------------------------------------

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -0.5])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_nsgan_values():
    loss = AdversarialLoss("nsgan")
    real_term = (softplus(-2.0) + softplus(1.0)) / 2  # -log(sigmoid(x)) for real
    fake_term = (softplus(0.5) + softplus(-0.5)) / 2  # -log(1 - sigmoid(x)) for fake
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx((real_term + fake_term) / 2, rel=1e-6)
    assert loss.generator_loss(FAKE).item() == pytest.approx((softplus(-0.5) + softplus(0.5)) / 2, rel=1e-6)


def test_lsgan_values():
    loss = AdversarialLoss("lsgan")
    # real: ((2-1)^2 + (-1-1)^2) / 2 = 2.5; fake: (0.25 + 0.25) / 2 = 0.25; average 1.375
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx(1.375)
    # generator: ((0.5-1)^2 + (-0.5-1)^2) / 2 = 1.25
    assert loss.generator_loss(FAKE).item() == pytest.approx(1.25)


def test_hinge_values():
    loss = AdversarialLoss("hinge")
    # real: (relu(1-2) + relu(1+1)) / 2 = 1; fake: (relu(1.5) + relu(0.5)) / 2 = 1
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx(1.0)
    assert loss.generator_loss(FAKE).item() == pytest.approx(0.0)
    assert loss.generator_loss(torch.tensor([3.0, 1.0])).item() == pytest.approx(-2.0)


def test_adversarial_unknown_kind():
    with pytest.raises(ValueError, match="nsgan, lsgan, hinge"):
        AdversarialLoss("wgan")


@pytest.mark.parametrize("kind", ["nsgan", "lsgan", "hinge"])
def test_discriminator_loss_prefers_correct_answers(kind):
    loss = AdversarialLoss(kind)
    good = loss.discriminator_loss(torch.full((4,), 3.0), torch.full((4,), -3.0))
    bad = loss.discriminator_loss(torch.full((4,), -3.0), torch.full((4,), 3.0))
    assert good < bad
    assert loss.generator_loss(torch.full((4,), 3.0)) < loss.generator_loss(torch.full((4,), -3.0))


# --- feature matching, TV, Gram ------------------------------------------------------------------------------

def test_feature_matching():
    feats = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)]
    assert feature_matching_loss(feats, [f.clone() for f in feats]).item() == 0.0
    real = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 3, 3)]
    fake = [torch.full((1, 2, 2, 2), 0.5, requires_grad=True), torch.full((1, 1, 3, 3), -2.0, requires_grad=True)]
    out = feature_matching_loss(real, fake)
    assert out.item() == pytest.approx(0.5 + 2.0)  # sum over layers of per-layer mean L1
    out.backward()
    assert fake[0].grad is not None


def test_feature_matching_detaches_real():
    real = [torch.ones(1, 2, 2, 2, requires_grad=True)]
    fake = [torch.zeros(1, 2, 2, 2, requires_grad=True)]
    feature_matching_loss(real, fake).backward()
    assert real[0].grad is None and fake[0].grad is not None
    with pytest.raises(ValueError, match="differ in length"):
        feature_matching_loss(real, fake + fake)


def test_total_variation_constant_and_checkerboard():
    assert total_variation_loss(torch.full((2, 3, 6, 5), 0.7)).item() == 0.0
    board = (torch.arange(6)[:, None] + torch.arange(6)[None, :]) % 2
    img = board.float()[None, None].repeat(1, 3, 1, 1)
    assert total_variation_loss(img).item() == pytest.approx(2.0)
    stripes = (torch.arange(6)[None, :] % 2).float().expand(6, 6)[None, None]  # vertical stripes
    assert total_variation_loss(stripes).item() == pytest.approx(1.0)  # only horizontal differences


def test_total_variation_restricted_to_dilated_hole():
    img = torch.zeros(1, 1, 9, 9)
    img[0, 0, :, 0] = 1.0  # a sharp line at the left border, far from the hole
    mask = torch.zeros(1, 1, 9, 9)
    mask[0, 0, 4, 4] = 1
    assert total_variation_loss(img).item() > 0
    assert total_variation_loss(img, mask).item() == 0.0
    board = ((torch.arange(9)[:, None] + torch.arange(9)[None, :]) % 2).float()[None, None]
    # Hole pixel plus one-pixel border = a 3x3 region; all its neighbour pairs differ by 1.
    assert total_variation_loss(board, mask).item() == pytest.approx(2.0)
    # A jump just outside the dilated region does not count; one inside it does.
    step = torch.zeros(1, 1, 9, 9)
    step[0, 0, :, 6:] = 1.0  # jump between columns 5 and 6 (region is columns 3..5)
    assert total_variation_loss(step, mask).item() == 0.0
    assert total_variation_loss(step, mask, dilation=2).item() > 0


def test_gram_matrix_known_tensor():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)  # C=2, H=1, W=2
    # f f^T = [[5, 11], [11, 25]], divided by C*H*W = 4
    expected = torch.tensor([[[1.25, 2.75], [2.75, 6.25]]])
    torch.testing.assert_close(gram_matrix(x), expected)


# --- VGG-19 --------------------------------------------------------------------------------------------------

def test_vgg_layer_indices_match_torchvision():
    assert LAYER_INDEX["relu1_1"] == 1
    assert LAYER_INDEX["relu2_1"] == 6
    assert LAYER_INDEX["relu2_2"] == 8
    assert LAYER_INDEX["relu3_1"] == 11
    assert LAYER_INDEX["relu3_4"] == 17
    assert LAYER_INDEX["relu4_1"] == 20
    assert LAYER_INDEX["relu4_4"] == 26
    assert LAYER_INDEX["relu5_1"] == 29
    assert LAYER_INDEX["relu5_2"] == 31
    assert LAYER_INDEX["pool5"] == 36
    conv_keys = [k for k in build_features().state_dict() if k.endswith(".weight")]
    assert conv_keys[0] == "0.weight" and conv_keys[-1] == "34.weight" and len(conv_keys) == 16


@pytest.fixture(scope="module")
def vgg_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    state = {f"features.{k}": v.clone() for k, v in build_features().state_dict().items()}
    # torchvision's classifier keys are accepted and ignored (tiny stand-ins: shapes are not checked).
    for i in (0, 3, 6):
        state[f"classifier.{i}.weight"] = torch.zeros(2, 2)
        state[f"classifier.{i}.bias"] = torch.zeros(2)
    return state


@pytest.fixture(scope="module")
def vgg_file(vgg_state, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("vgg") / "vgg19.safetensors"
    save_file(vgg_state, str(path))
    return str(path)


def test_perceptual_style_loss_from_safetensors(vgg_file, vgg_state):
    loss = PerceptualStyleLoss(vgg_file)
    # Layout and normalisation: the first activation is conv1_1 + ReLU on ImageNet-normalised input.
    x = torch.rand(1, 3, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = F.relu(F.conv2d((x - mean) / std, vgg_state["features.0.weight"], vgg_state["features.0.bias"],
                               padding=1))
    torch.testing.assert_close(loss.vgg(x)["relu1_1"], expected)
    assert all(not p.requires_grad for p in loss.parameters())

    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    target = torch.rand(2, 3, 32, 32)
    same_p, same_s = loss(target, target)
    assert same_p.item() == 0.0 and same_s.item() == 0.0
    perceptual, style = loss(pred, target)
    assert perceptual.item() > 0 and style.item() > 0
    (perceptual + style).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_vgg_features_only_subset_and_torch_pickle(vgg_state, tmp_path):
    features_only = {k: v for k, v in vgg_state.items() if k.startswith("features.")}
    path = tmp_path / "vgg19_features.pth"
    torch.save(features_only, path)
    assert set(read_state_dict(path)) == set(features_only)
    module, message = load_perceptual_or_none(path)
    assert isinstance(module, PerceptualStyleLoss) and "VGG-19 weights from" in message


@pytest.mark.parametrize("change", ["missing", "unexpected", "shape"])
def test_vgg_rejects_mismatching_state(vgg_state, tmp_path, change):
    state = {k: v for k, v in vgg_state.items() if k.startswith("features.")}
    if change == "missing":
        del state["features.34.weight"]
        text = r"missing features\.34\.weight"
    elif change == "unexpected":
        state["features.37.weight"] = torch.zeros(1)
        text = r"unexpected features\.37\.weight"
    else:
        state["features.0.weight"] = torch.zeros(64, 3, 5, 5)
        text = r"features\.0\.weight has shape \(64, 3, 5, 5\)"
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelFileError, match=text):
        PerceptualStyleLoss(path)


def test_vgg_bad_files(tmp_path):
    with pytest.raises(ModelFileError, match="VGG-19 weights file not found"):
        PerceptualStyleLoss(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello, not weights")
    with pytest.raises(ModelFileError, match="not a VGG-19 weights file"):
        PerceptualStyleLoss(junk)
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes((1000).to_bytes(8, "little") + b'{"a": 1')
    with pytest.raises(ModelFileError, match="cannot read the VGG-19 weights"):
        PerceptualStyleLoss(truncated)


def test_vgg_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": torch.zeros(1), "extra": object()}, path)
    with pytest.raises(ModelFileError, match="cannot read the VGG-19 weights"):
        read_state_dict(path)


def test_load_perceptual_or_none_without_path():
    for empty in (None, "", "  "):
        module, message = load_perceptual_or_none(empty)
        assert module is None
        assert message == NO_VGG_MESSAGE == "running without perceptual and style losses: no VGG-19 weights given"


def test_vgg_features_unknown_layer():
    with pytest.raises(ValueError, match="unknown VGG-19 layer"):
        VGG19Features(None, ("relu9_9",))


def test_perceptual_and_style_match_hand_computed_values(tmp_path):
    """EdgeConnect's definitions, computed here from the VGG-19 activations at hard-coded torchvision indices."""
    g = torch.Generator().manual_seed(7)
    state = {}
    for key, value in build_features().state_dict().items():
        if key.endswith(".weight"):  # He-scaled so that every layer, relu5_2 included, carries signal
            fan_in = value[0].numel()
            state[f"features.{key}"] = torch.randn(value.shape, generator=g) * math.sqrt(2.0 / fan_in)
        else:
            state[f"features.{key}"] = torch.randn(value.shape, generator=g) * 0.01
    path = tmp_path / "vgg19.safetensors"
    save_file(state, str(path))
    loss = PerceptualStyleLoss(path)

    features = build_features()
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def activations(x: torch.Tensor) -> dict[int, torch.Tensor]:
        out, x = {}, (x - mean) / std
        for i, layer in enumerate(features[:32]):  # up to relu5_2
            x = layer(x)
            out[i] = x
        return out

    def gram(f: torch.Tensor) -> torch.Tensor:
        _, c, h, w = f.shape
        return torch.einsum("nchw,ndhw->ncd", f, f) / (c * h * w)

    pred = torch.rand(2, 3, 24, 24, generator=g)  # 3 x 3 at relu5_x
    target = torch.rand(2, 3, 24, 24, generator=g)
    with torch.no_grad():
        fp, ft = activations(pred), activations(target)
        perceptual_terms = [(fp[i] - ft[i]).abs().mean() for i in (1, 6, 11, 20, 29)]  # relu1_1 ... relu5_1
        style_terms = [(gram(fp[i]) - gram(ft[i])).abs().mean() for i in (8, 17, 26, 31)]  # relu2_2 3_4 4_4 5_2
        perceptual, style = loss(pred, target)
    for terms in (perceptual_terms, style_terms):
        assert min(terms) > 10 * 1e-4 * sum(terms)  # each layer is 10x the tolerance: leaving one out would show
    torch.testing.assert_close(perceptual, sum(perceptual_terms), rtol=1e-4, atol=0)
    torch.testing.assert_close(style, sum(style_terms), rtol=1e-4, atol=0)


def _line_target() -> tuple[torch.Tensor, torch.Tensor]:
    """A 1 px vertical line across a 16 x 16 map and a hole over its middle rows."""
    target = torch.zeros(1, 1, 16, 16)
    target[..., 7] = 1.0
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, :] = 1.0
    return target, mask


def test_edge_dice_rewards_the_thin_line_on_the_truth_over_a_thick_or_missing_one() -> None:
    target, mask = _line_target()
    thick = F.max_pool2d(target, (1, 5), stride=1, padding=(0, 2))  # the line 5 px wide
    exact, wide, empty = (edge_dice_loss(p, target, mask).item() for p in (target, thick, torch.zeros_like(target)))
    assert exact == pytest.approx(1.0 - 17.0 / 17.0, abs=1e-6)  # (2 * 8 + 1) / (8 + 8 + 1)
    assert wide == pytest.approx(1.0 - 17.0 / 49.0)  # 40 predicted pixels in the hole, 8 of them right
    assert empty == pytest.approx(1.0 - 1.0 / 9.0)
    assert exact < wide < empty
    outside = target.clone()
    outside[..., :4, :] = 0.0  # what the prediction does outside the hole does not count
    outside[..., :4, 2] = 1.0
    assert edge_dice_loss(outside, target, mask).item() == pytest.approx(exact, abs=1e-6)
    assert edge_dice_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)).item() == 0.0


def test_edge_bce_is_the_mean_cross_entropy_over_the_hole_only() -> None:
    target, mask = _line_target()
    logits = torch.where(target > 0, 2.0, -2.0)  # right everywhere, at the same confidence
    expected = math.log1p(math.exp(-2.0))
    assert edge_bce_loss(logits, target, mask).item() == pytest.approx(expected, rel=1e-5)
    wrong_outside = logits.clone()
    wrong_outside[..., :4, :] = 5.0
    assert edge_bce_loss(wrong_outside, target, mask).item() == pytest.approx(expected, rel=1e-5)
    wrong_inside = logits.clone()
    wrong_inside[..., 6, 0] = 5.0
    assert edge_bce_loss(wrong_inside, target, mask).item() > expected


def _reference_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Reflect-padded separable Gaussian by numpy's pad (any pad width) and two depthwise convolutions."""
    radius = max(1, round(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    c = x.shape[1]
    if radius < min(x.shape[-2:]):  # torch's reflect pad (differentiable) where it allows the width
        padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    else:  # numpy folds the reflection as often as the width needs
        widths = ((0, 0), (0, 0), (radius, radius), (radius, radius))
        padded = torch.from_numpy(np.pad(x.numpy(), widths, mode="reflect"))
    y = F.conv2d(padded, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@pytest.mark.parametrize("shape", [(2, 3, 40, 56), (1, 3, 5, 9), (1, 1, 1, 7)])
def test_the_low_band_blur_is_the_reflect_padded_gaussian_at_any_size(shape) -> None:
    from trainer.losses import _gaussian_blur

    x = torch.rand(*shape, dtype=torch.float64)
    assert torch.allclose(_gaussian_blur(x, 2.0), _reference_blur(x, 2.0), atol=1e-12)


def test_the_low_band_loss_and_its_gradient_are_those_of_blurring_both_images() -> None:
    from trainer.losses import _region_mean, low_band_l1

    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 40, dtype=torch.float32)
    mask = torch.zeros(2, 1, 32, 40, dtype=torch.float32)
    mask[:, :, 0:20, 10:40] = 1  # touches the top and right borders
    mask[1, :, 25:, :4] = 1
    fill = torch.rand(2, 3, 32, 40, dtype=torch.float32, requires_grad=True)
    composite = fill * mask + target * (1 - mask)
    loss = low_band_l1(composite, target, mask)
    (grad,) = torch.autograd.grad(loss, fill)
    region = F.max_pool2d(mask, 13, stride=1, padding=6)  # sigma 2: radius 6
    ref_fill = fill.detach().clone().requires_grad_(True)
    ref_composite = ref_fill * mask + target * (1 - mask)
    ref = _region_mean((_reference_blur(ref_composite, 2.0) - _reference_blur(target, 2.0)).abs(), region)
    (ref_grad,) = torch.autograd.grad(ref, ref_fill)
    assert torch.allclose(loss, ref, atol=1e-6) and torch.allclose(grad, ref_grad, atol=1e-6)
    assert loss.item() > 0 and low_band_l1(target, target, mask).item() == 0.0
