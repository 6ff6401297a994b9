"""Training losses: masked L1, adversarial (nsgan / lsgan / hinge), feature matching, total variation, local
texture (gradients in the hole), low band (L1 of the blurred fill), MS-SSIM, and VGG-19 perceptual + style
losses (only with a local weights file).

Conventions: images N x C x H x W in [0, 1]; masks N x 1 x H x W with 1 = hole (broadcast over channels).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainer.vgg import load_vgg19

ADVERSARIAL_KINDS = ("nsgan", "lsgan", "hinge")
PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PERCEPTUAL_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0)  # EdgeConnect
STYLE_LAYERS = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")
NO_VGG_MESSAGE = "running without perceptual and style losses: no VGG-19 weights given"

_EPS = 1e-8


def _region_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the pixels where ``weight`` is 1: ``mean(values * w) / mean(w)`` (w broadcast)."""
    w = weight.expand_as(values)
    return (values * w).sum() / w.sum().clamp_min(_EPS)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, hole_weight: float = 1.0,
              valid_weight: float = 1.0, known: torch.Tensor | None = None) -> torch.Tensor:
    """L1 with separate weights for the hole and the valid (known) area.

    Normalisation: each term is normalised by the mean of its own mask, over the whole batch, i.e.
    ``hole = mean(|pred - target| * m) / mean(m)`` and ``valid = mean(|pred - target| * (1 - m)) / mean(1 - m)``:
    the mean absolute error per hole pixel and per valid pixel (EdgeConnect divides its L1 by ``mean(m)``;
    PConv weighs hole 6 / valid 1). The result is ``hole_weight * hole + valid_weight * valid``; a term whose
    region is empty is 0. Equal weights of 1 on a half-hole batch give EdgeConnect's ``L1 / mean(m)``.

    ``known`` (N x 1 x H x W, optional, 1 = ground truth exists) excludes pixels from both terms and from the
    normalisation; internal fine-tuning passes the complement of the user's own hole here.
    """
    diff = (pred - target).abs()
    hole = mask.to(diff.dtype)
    valid = 1.0 - hole
    if known is not None:
        known = known.to(diff.dtype)
        hole = hole * known
        valid = valid * known
    return hole_weight * _region_mean(diff, hole) + valid_weight * _region_mean(diff, valid)


class AdversarialLoss(nn.Module):
    """GAN losses on raw discriminator logits.

    - ``nsgan``: non-saturating, binary cross-entropy with logits (real -> 1, fake -> 0; generator: fake -> 1).
    - ``lsgan``: least squares on the logits (real -> 1, fake -> 0; generator: fake -> 1).
    - ``hinge``: discriminator ``relu(1 - real) + relu(1 + fake)``, generator ``-fake``.

    As in EdgeConnect, ``discriminator_loss`` is the *average* of the real and fake terms, each a mean
    over all logits.
    """

    def __init__(self, kind: str = "nsgan") -> None:
        super().__init__()
        if kind not in ADVERSARIAL_KINDS:
            raise ValueError(f"unknown adversarial loss {kind!r}; choose one of {', '.join(ADVERSARIAL_KINDS)}")
        self.kind = kind

    def _term(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        logits = logits.float()
        if self.kind == "nsgan":
            target = torch.ones_like(logits) if real else torch.zeros_like(logits)
            return F.binary_cross_entropy_with_logits(logits, target)
        return ((logits - 1.0) ** 2).mean() if real else (logits ** 2).mean()

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Loss for the discriminator (pass ``fake`` detached from the generator)."""
        if self.kind == "hinge":
            real = F.relu(1.0 - real_logits.float()).mean()
            fake = F.relu(1.0 + fake_logits.float()).mean()
        else:
            real, fake = self._term(real_logits, True), self._term(fake_logits, False)
        return (real + fake) / 2

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """Loss for the generator: make the discriminator call ``fake`` real."""
        if self.kind == "hinge":
            return -fake_logits.float().mean()
        return self._term(fake_logits, True)


def feature_matching_loss(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the mean L1 between fake and (detached) real discriminator features (EdgeConnect)."""
    if len(real_feats) != len(fake_feats):
        raise ValueError(f"feature lists differ in length: {len(real_feats)} real vs {len(fake_feats)} fake")
    if not fake_feats:
        raise ValueError("feature_matching_loss needs at least one feature map")
    return sum(F.l1_loss(fake.float(), real.detach().float()) for real, fake in zip(real_feats, fake_feats))


def total_variation_loss(img: torch.Tensor, mask: torch.Tensor | None = None, dilation: int = 1) -> torch.Tensor:
    """Anisotropic total variation: mean |vertical difference| + mean |horizontal difference|.

    With ``mask`` (1 = hole), only neighbour pairs with both pixels in the hole dilated by ``dilation`` px
    count (PConv's region P: the hole plus its one-pixel border), and each mean is over those pairs only
    (0 if there are none). A constant image gives 0; a one-pixel 0/1 checkerboard gives 2.
    """
    dv = (img[:, :, 1:, :] - img[:, :, :-1, :]).abs()
    dh = (img[:, :, :, 1:] - img[:, :, :, :-1]).abs()
    if mask is None:
        return dv.mean() + dh.mean()
    region = mask.to(img.dtype)
    if dilation > 0:
        region = F.max_pool2d(region, 2 * dilation + 1, stride=1, padding=dilation)
    wv = region[:, :, 1:, :] * region[:, :, :-1, :]
    wh = region[:, :, :, 1:] * region[:, :, :, :-1]
    return _region_mean(dv, wv) + _region_mean(dh, wh)


def local_texture_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The hole's local texture: mean L1 between the horizontal and vertical differences of ``pred`` and
    ``target`` over the neighbour pairs inside the hole dilated by one pixel (0 without a hole). A fill with the
    right colours but no detail (a blur) pays it; one with the truth's gradients does not."""
    region = F.max_pool2d(mask.to(pred.dtype), 3, stride=1, padding=1)
    dv = ((pred[:, :, 1:, :] - pred[:, :, :-1, :]) - (target[:, :, 1:, :] - target[:, :, :-1, :])).abs()
    dh = ((pred[:, :, :, 1:] - pred[:, :, :, :-1]) - (target[:, :, :, 1:] - target[:, :, :, :-1])).abs()
    wv = region[:, :, 1:, :] * region[:, :, :-1, :]
    wh = region[:, :, :, 1:] * region[:, :, :, :-1]
    return _region_mean(dv, wv) + _region_mean(dh, wh)


def edge_bce_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of edge ``logits`` against the truth's edge map, averaged over the hole."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return _region_mean(bce, mask.to(bce.dtype))


def edge_dice_loss(probs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``1 - Dice`` of edge probabilities against the truth's edges in the hole, pooled over the batch (Deng et
    al. 2018, crisp boundaries): the soft form of the F-measure that edge precision and recall score, so thin
    lines on the truth's pixels pay least; thick or missing ones pay. 0 when both are empty."""
    m = mask.to(probs.dtype)
    p, t = probs * m, target * m
    return 1.0 - (2.0 * (p * t).sum() + 1.0) / (p.sum() + t.sum() + 1.0)


LOW_BAND_SIGMA = 2.0  # px at the training crop (128 px); the eval's 3 px at 256 px is about the same scale


@functools.lru_cache(maxsize=64)
def _blur_matrix(n: int, sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The n x n matrix of a 1-D Gaussian blur (radius 3 sigma) with reflected borders (the edge pixel not
    repeated, as ``F.pad(mode="reflect")``, folded as often as the radius needs)."""
    radius = max(1, round(3 * sigma))
    taps = np.arange(-radius, radius + 1)
    g = np.exp(-(taps ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    rows = np.repeat(np.arange(n), taps.size)
    cols = rows + np.tile(taps, n)
    if n == 1:
        cols[:] = 0
    else:
        period = 2 * (n - 1)
        cols %= period
        cols = np.where(cols < n, cols, period - cols)
    matrix = np.zeros((n, n))
    np.add.at(matrix, (rows, cols), np.tile(g, n))
    return torch.tensor(matrix, device=device, dtype=dtype)


@functools.lru_cache(maxsize=64)
def _box_matrix(n: int, radius: int, device: torch.device) -> torch.Tensor:
    """The n x n 0/1 matrix of a 1-D box sum of half-width ``radius`` (clipped at the borders)."""
    index = torch.arange(n, device=device)
    return ((index[:, None] - index[None, :]).abs() <= radius).float()


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (radius 3 sigma, reflected borders) of an N x C x H x W tensor, as two matrix
    products (3x faster on the CPU than two depthwise convolutions, forward and backward)."""
    h, w = x.shape[-2:]
    return _blur_matrix(h, sigma, x.device, x.dtype) @ x @ _blur_matrix(w, sigma, x.device, x.dtype).T


def low_band_l1(composite: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                sigma: float = LOW_BAND_SIGMA) -> torch.Tensor:
    """Structure apart from texture: mean L1 between the Gaussian-blurred composite and truth, over the hole
    dilated by the blur's radius (0 without a hole). A fill with the right colours and shapes but no fine
    detail pays little; a wrong colour or a misplaced edge pays fully."""
    radius = max(1, round(3 * sigma))
    h, w = mask.shape[-2:]
    m = mask.float()  # the hole dilated by a (2 radius + 1) square: where a box sum of the mask is above 0
    region = (_box_matrix(h, radius, m.device) @ m @ _box_matrix(w, radius, m.device).T > 0.5).float()
    diff = _gaussian_blur(composite.float() - target.float(), sigma).abs()  # the blur is linear
    return _region_mean(diff, region)


# Wang et al. 2003's scale weights; scales a crop is too small for are dropped and the rest renormalised.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_WINDOW = 7  # Gaussian window (sigma 1.5); 7 rather than 11 so four scales fit a 128 px crop
_C1, _C2 = 0.01 ** 2, 0.03 ** 2


def _gaussian_window(channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(SSIM_WINDOW, device=device, dtype=dtype) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * 1.5 ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW).contiguous()


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean luminance x contrast-structure term and contrast-structure term (valid windows only)."""
    c = x.shape[1]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    cs = (2 * cov + _C2) / (var_x + var_y + _C2)
    luminance = (2 * mu_x * mu_y + _C1) / (mu_x ** 2 + mu_y ** 2 + _C1)
    return (luminance * cs).mean(dim=(1, 2, 3)), cs.mean(dim=(1, 2, 3))


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM (Wang et al. 2003) of images in [0, 1], averaged over the batch; 1 = identical.

    As many of the five scales as fit (each needs at least the 7 px window; at least one is always used).
    Negative contrast terms are clamped to zero before the fractional powers, as is usual for training."""
    x, y = x.float(), y.float()
    window = _gaussian_window(x.shape[1], x.device, x.dtype)
    side = min(x.shape[-2:])
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and side // (2 ** scales) >= SSIM_WINDOW:
        scales += 1
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], device=x.device)
    weights = weights / weights.sum()
    result = torch.ones(x.shape[0], device=x.device)
    for i in range(scales):
        full, cs = _ssim_terms(x, y, window)
        term = full if i == scales - 1 else cs
        result = result * term.clamp_min(1e-6) ** weights[i]
        if i < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return result.mean()


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """N x C x C Gram matrix of N x C x H x W features, divided by ``C * H * W`` (EdgeConnect)."""
    n, c, h, w = x.shape
    f = x.float().reshape(n, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


class PerceptualStyleLoss(nn.Module):
    """EdgeConnect's perceptual and style losses on a frozen VGG-19 read from a local weights file.

    ``forward(pred, target) -> (perceptual, style)``: perceptual is ``sum_i w_i * L1(phi_i(pred), phi_i(target))``
    over relu1_1 ... relu5_1 (weights 1.0); style is the sum of L1 between Gram matrices of relu2_2, relu3_4,
    relu4_4 and relu5_2. Inputs are RGB in [0, 1]; the target's features are computed without gradients.
    """

    def __init__(self, vgg_weights_path: str | Path) -> None:
        super().__init__()
        self.path = str(vgg_weights_path)
        self.vgg = load_vgg19(vgg_weights_path, PERCEPTUAL_LAYERS + STYLE_LAYERS)
        self.weights = dict(zip(PERCEPTUAL_LAYERS, PERCEPTUAL_WEIGHTS))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fake = self.vgg(pred)
        with torch.no_grad():
            real = self.vgg(target)
        perceptual = sum(w * F.l1_loss(fake[name].float(), real[name].float()) for name, w in self.weights.items())
        style = sum(F.l1_loss(gram_matrix(fake[name]), gram_matrix(real[name])) for name in STYLE_LAYERS)
        return perceptual, style


def load_perceptual_or_none(path: str | Path | None) -> tuple[PerceptualStyleLoss | None, str]:
    """``(loss module, message)`` for a weights path, or ``(None, NO_VGG_MESSAGE)`` when no path is given.

    A path that is given but missing or unusable raises ``engine.errors.ModelFileError`` with a clear message
    (the user asked for these losses, so silently dropping them would mislead).
    """
    if path is None or not str(path).strip():
        return None, NO_VGG_MESSAGE
    module = PerceptualStyleLoss(path)
    return module, f"perceptual and style losses on: VGG-19 weights from {path}"
