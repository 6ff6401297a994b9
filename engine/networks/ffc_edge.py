"""An edge generator on the FFC U-Net body (``engine.networks.ffc``): Predict Edges with an image-wide view.

EdgeConnect's edge generator (``engine.networks.edgeconnect``) sees the hole through eight dilated 3 x 3 blocks
at 1/4 resolution: about 70 px of the input at 128 px, so a line that crosses a large hole has to be continued
from evidence the network cannot see at once. Here the same inputs (masked grayscale, masked known edges, the
mask) go through the FFC body: every pixel at 1/8 sees the whole image through the Fourier branch, and the
U-Net skips keep the known edges' positions exact at full resolution. The head predicts edge logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.networks.ffc import FFCUNet, _conv, is_channels_last

# The head's bias starts at the logit of this probability: edges cover a few per cent of a hole, so a start at
# 0.5 everywhere spends the first steps unlearning a dense map (Lin et al. 2017's prior for rare classes).
INITIAL_EDGE_PROBABILITY = 0.05


class FFCEdgeGenerator(FFCUNet):
    """Completes the edge map inside the hole from masked grayscale, masked edges and the mask."""

    stage = "edge"
    stride = 8
    prefers_channels_last = True
    onnx_exportable = False  # torch.fft.rfft2 has no ONNX operator in the TorchScript exporter (opset 17)

    def __init__(self, base_channels: int = 24, residual_blocks: int = 4, global_percent: int = 75) -> None:
        super().__init__(3, base_channels, residual_blocks, global_percent)
        self.head = _conv(self.head_channels, 1, 3)
        nn.init.constant_(self.head.bias, math.log(INITIAL_EDGE_PROBABILITY / (1 - INITIAL_EDGE_PROBABILITY)))

    def forward(self, gray: torch.Tensor, edges: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return edge logits, N x 1 x H x W (H and W multiples of 8; ``sigmoid`` for probabilities)."""
        known = 1.0 - mask
        stem_input = torch.cat([gray * known, edges * known, mask], dim=1)
        if is_channels_last(self.stem[0].weight):  # the engine keeps the weights NHWC (prefers_channels_last)
            stem_input = stem_input.contiguous(memory_format=torch.channels_last)
        return self.head(self.decode(stem_input))
