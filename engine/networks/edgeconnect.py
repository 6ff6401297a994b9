"""EdgeConnect generators (Nazeri et al. 2019): an edge generator and an edge-guided image generator.

Both share one encoder / dilated-residual / decoder body. Width and depth are constructor arguments:
``base_channels=64, residual_blocks=8`` is the paper's network (about 10.8M parameters each);
smaller settings train and run on a CPU.

Conventions (shared with the trainer): images are float tensors in [0, 1], NCHW; ``mask`` is 1 in the
hole and 0 where the photo is known. Each generator zeroes the hole of its inputs itself, so whatever
the caller left under the mask cannot influence the output.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.networks.layers import ResnetBlock, maybe_spectral
from engine.networks.prefill import harmonic_fill


def _upsample(in_channels: int, out_channels: int, resize: bool, sn: bool) -> nn.Module:
    """Double the resolution: a transposed conv (the paper's), or nearest resize + 3 x 3 conv (no checkerboard)."""
    if not resize:
        return maybe_spectral(nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1), sn)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                         maybe_spectral(nn.Conv2d(in_channels, out_channels, 3), sn))


class _EncoderDecoder(nn.Module):
    """Encoder (two stride-2 convs), dilated residual blocks, decoder (two upsampling convs)."""

    def __init__(self, in_channels: int, out_channels: int, base_channels: int, residual_blocks: int,
                 use_spectral_norm: bool, resize_upsampling: bool = False) -> None:
        super().__init__()
        c = base_channels
        sn = use_spectral_norm
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            maybe_spectral(nn.Conv2d(in_channels, c, 7), sn),
            nn.InstanceNorm2d(c, track_running_stats=False),
            nn.ReLU(True),
            maybe_spectral(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), sn),
            nn.InstanceNorm2d(2 * c, track_running_stats=False),
            nn.ReLU(True),
            maybe_spectral(nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1), sn),
            nn.InstanceNorm2d(4 * c, track_running_stats=False),
            nn.ReLU(True),
        )
        self.middle = nn.Sequential(*[ResnetBlock(4 * c, 2, sn) for _ in range(residual_blocks)])
        self.decoder = nn.Sequential(
            _upsample(4 * c, 2 * c, resize_upsampling, sn),
            nn.InstanceNorm2d(2 * c, track_running_stats=False),
            nn.ReLU(True),
            _upsample(2 * c, c, resize_upsampling, sn),
            nn.InstanceNorm2d(c, track_running_stats=False),
            nn.ReLU(True),
            nn.ReflectionPad2d(3),
            nn.Conv2d(c, out_channels, 7),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.middle(self.encoder(x)))


class EdgeGenerator(nn.Module):
    """Completes the edge map inside the hole from masked grayscale, masked edges and the mask."""

    stage = "edge"
    stride = 4

    def __init__(self, base_channels: int = 64, residual_blocks: int = 8, use_spectral_norm: bool = True) -> None:
        super().__init__()
        self.net = _EncoderDecoder(3, 1, base_channels, residual_blocks, use_spectral_norm)

    def forward(self, gray: torch.Tensor, edges: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return edge logits, N x 1 x H x W (apply ``sigmoid`` for probabilities)."""
        known = 1.0 - mask
        return self.net(torch.cat([gray * known, edges * known, mask], dim=1))


class ImageGenerator(nn.Module):
    """Fills the hole of an RGB image guided by a full edge map (known edges plus completed ones).

    ``prefill=True`` hands the network the harmonic fill of the hole (``engine.networks.prefill``) instead of
    zeros and makes it predict a correction to that fill; the last layer starts at zero, so an untrained
    network already returns the smooth fill and training only has to add structure and texture.
    ``resize_upsampling=True`` decodes with resize + conv instead of transposed convs (no checkerboard).
    """

    stage = "image"
    stride = 4

    def __init__(self, base_channels: int = 64, residual_blocks: int = 8, use_spectral_norm: bool = False,
                 prefill: bool = False, resize_upsampling: bool = False) -> None:
        super().__init__()
        self.prefill = prefill
        self.net = _EncoderDecoder(5, 3, base_channels, residual_blocks, use_spectral_norm, resize_upsampling)
        if prefill:
            last = self.net.decoder[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, image: torch.Tensor, edges: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return the generated RGB image in [0, 1], N x 3 x H x W (hole and known area alike)."""
        if not self.prefill:
            out = self.net(torch.cat([image * (1.0 - mask), edges, mask], dim=1))
            return (torch.tanh(out) + 1.0) / 2.0
        smooth = harmonic_fill(image, mask)
        return (smooth + self.net(torch.cat([smooth, edges, mask], dim=1))).clamp(0.0, 1.0)


# --- the two stages in sequence (the engine's fill, the trainer's stages and its fine-tune scores) -------------

def merge_hole_edges(known: torch.Tensor, completed: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The image model's guide: ``completed`` edges inside the hole (``mask`` 1), the ``known`` edges outside."""
    return known * (1 - mask) + completed * mask


def complete_edges(edge_net: nn.Module, gray: torch.Tensor, edges: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Stage one: the edge model's probabilities (sigmoid of its logits, in float32) inside the hole, merged with
    the known ``edges`` outside it."""
    probs = torch.sigmoid(edge_net(gray, edges, mask).float())
    return merge_hole_edges(edges, probs, mask)


def edge_guided_fill(edge_net: nn.Module, image_net: nn.Module, image: torch.Tensor, gray: torch.Tensor,
                     edges: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge model then image model: (the completed edge map, the image model's output on it)."""
    guide = complete_edges(edge_net, gray, edges, mask)
    return guide, image_net(image, guide, mask)
