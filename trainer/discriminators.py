"""Discriminators: EdgeConnect's 70x70 PatchGAN, the same PatchGAN at several scales, and GLCIC's global +
local context discriminator.

Both return ``(logits, features)``: raw scores (no sigmoid; the adversarial loss applies it) and the list of
intermediate activations used for feature matching.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.networks.layers import maybe_spectral


class PatchDiscriminator(nn.Module):
    """EdgeConnect / pix2pix 70x70 PatchGAN: five 4x4 convs, strides 2, 2, 2, 1, 1, LeakyReLU 0.2.

    Channels ``c, 2c, 4c, 8c, 1`` with ``c = base_channels``; spectral norm on every conv (biases off then,
    as EdgeConnect). An S x S input gives an (S/8 - 2) x (S/8 - 2) map of logits, so inputs must be at least
    24 px. ``forward`` returns ``(logits, [conv1, ..., conv5])`` (the last feature is the logits map).
    """

    def __init__(self, in_channels: int, base_channels: int = 64, use_spectral_norm: bool = True) -> None:
        super().__init__()
        c = base_channels
        sn = use_spectral_norm
        widths = [in_channels, c, 2 * c, 4 * c, 8 * c]
        strides = [2, 2, 2, 1]
        blocks = []
        for cin, cout, stride in zip(widths[:-1], widths[1:], strides):
            conv = nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=not sn)
            blocks.append(nn.Sequential(maybe_spectral(conv, sn), nn.LeakyReLU(0.2, inplace=False)))
        blocks.append(nn.Sequential(maybe_spectral(nn.Conv2d(8 * c, 1, 4, stride=1, padding=1, bias=not sn), sn)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if min(x.shape[-2:]) < 24:
            raise ValueError(f"PatchDiscriminator needs inputs of at least 24 x 24 px, got {tuple(x.shape[-2:])}")
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return x, features


class MultiScalePatchDiscriminator(nn.Module):
    """The same PatchGAN architecture at ``scales`` resolutions (full, half, ...; one network each, pix2pixHD and
    the multi-scale-discriminator inpainting papers): the coarse one judges the layout, the fine one texture.

    ``forward`` returns ``(logits per scale, features of every scale concatenated)``; the inputs must be at
    least ``24 * 2 ** (scales - 1)`` px.
    """

    def __init__(self, in_channels: int, base_channels: int = 64, use_spectral_norm: bool = True,
                 scales: int = 2) -> None:
        super().__init__()
        self.nets = nn.ModuleList([PatchDiscriminator(in_channels, base_channels, use_spectral_norm)
                                   for _ in range(scales)])

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logits, features = [], []
        for i, net in enumerate(self.nets):
            scaled = F.avg_pool2d(x, 2 ** i) if i else x
            out, feats = net(scaled)
            logits.append(out)
            features.extend(feats)
        return logits, features


def _context_net(in_channels: int, size: int, base_channels: int, max_channels: int,
                 use_spectral_norm: bool) -> tuple[nn.Sequential, int]:
    """GLCIC context network: 5x5 stride-2 convs (BatchNorm + ReLU) down to about 4 x 4, then an FC to 1024.

    The number of convs is ``round(log2(size / 4))`` (GLCIC: 6 for the 256 px global, 5 for the 128 px local).
    """
    layers: list[nn.Module] = []
    n = max(1, round(math.log2(max(size, 8) / 4)))
    cin, side = in_channels, size
    for i in range(n):
        cout = min(base_channels * 2 ** i, max_channels)
        conv = nn.Conv2d(cin, cout, 5, stride=2, padding=2, bias=use_spectral_norm)
        layers.append(maybe_spectral(conv, use_spectral_norm))
        layers.append(nn.Identity() if use_spectral_norm else nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=False))
        cin, side = cout, (side + 1) // 2
    layers.append(nn.Flatten())
    layers.append(maybe_spectral(nn.Linear(cin * side * side, 1024), use_spectral_norm))
    layers.append(nn.ReLU(inplace=False))
    return nn.Sequential(*layers), side


class GlobalLocalDiscriminator(nn.Module):
    """GLCIC discriminator: a global net on the whole image and a local net on a patch around the hole.

    The global net sees the image resized to ``image_size`` (a no-op when it already has that size); the local
    net sees a ``local_size`` square centred on each sample's hole (clamped inside the image; resized when the
    image is smaller). Their 1024-d outputs are concatenated into one fully connected logit. GLCIC uses
    BatchNorm + ReLU; ``use_spectral_norm=True`` replaces BatchNorm with spectral norm.

    ``forward(image, mask=None, boxes=None)`` returns ``(logits N x 1, [global_features, local_features])``.
    Give the same ``boxes`` (from :meth:`hole_boxes`) for the real and the fake batch so both are judged on
    the same region; without boxes they are derived from ``mask``; without either, the centre is used.
    """

    def __init__(self, image_size: int, local_size: int, in_channels: int = 3, base_channels: int = 64,
                 use_spectral_norm: bool = False) -> None:
        super().__init__()
        if image_size < 8 or local_size < 8:
            raise ValueError(f"GlobalLocalDiscriminator sizes must be at least 8, got {image_size}, {local_size}")
        if local_size > image_size:
            raise ValueError(f"local_size ({local_size}) must not exceed image_size ({image_size})")
        self.image_size = int(image_size)
        self.local_size = int(local_size)
        max_c = 8 * base_channels
        self.global_net, _ = _context_net(in_channels, self.image_size, base_channels, max_c, use_spectral_norm)
        self.local_net, _ = _context_net(in_channels, self.local_size, base_channels, max_c, use_spectral_norm)
        self.head = maybe_spectral(nn.Linear(2048, 1), use_spectral_norm)

    def hole_boxes(self, mask: torch.Tensor) -> torch.Tensor:
        """N x 2 integer (top, left) of a ``local_size`` square centred on each sample's hole bounding box.

        A sample without a hole gets the centre of the image. Boxes stay inside the image.
        """
        n, _, h, w = mask.shape
        side_h, side_w = min(self.local_size, h), min(self.local_size, w)
        boxes = torch.empty(n, 2, dtype=torch.long)
        hole = mask.detach().amax(dim=1) > 0.5
        for i in range(n):
            rows = torch.nonzero(hole[i].any(dim=1)).flatten()
            cols = torch.nonzero(hole[i].any(dim=0)).flatten()
            cy = (rows[0] + rows[-1]).item() / 2 if rows.numel() else (h - 1) / 2
            cx = (cols[0] + cols[-1]).item() / 2 if cols.numel() else (w - 1) / 2
            top = min(max(round(cy - (side_h - 1) / 2), 0), h - side_h)
            left = min(max(round(cx - (side_w - 1) / 2), 0), w - side_w)
            boxes[i, 0], boxes[i, 1] = top, left
        return boxes

    def crop(self, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """The local patches (N x C x local_size x local_size) at ``boxes``."""
        h, w = image.shape[-2:]
        side_h, side_w = min(self.local_size, h), min(self.local_size, w)
        patches = torch.stack([image[i, :, top:top + side_h, left:left + side_w]
                               for i, (top, left) in enumerate(boxes.tolist())])
        if (side_h, side_w) != (self.local_size, self.local_size):
            patches = F.interpolate(patches, size=(self.local_size, self.local_size), mode="bilinear",
                                    align_corners=False)
        return patches

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None,
                boxes: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if boxes is None:
            if mask is None:
                mask = torch.zeros_like(image[:, :1])
            boxes = self.hole_boxes(mask)
        whole = image
        if tuple(image.shape[-2:]) != (self.image_size, self.image_size):
            whole = F.interpolate(image, size=(self.image_size, self.image_size), mode="bilinear",
                                  align_corners=False, antialias=True)
        g = self.global_net(whole)
        loc = self.local_net(self.crop(image, boxes))
        return self.head(torch.cat([g, loc], dim=1)), [g, loc]
