"""A LaMa-style structure generator with fast Fourier convolutions (Suvorov et al. 2022), sized for a CPU.

The network predicts the low band of the hole (colour regions, gradients, continued lines) as a correction
to the harmonic prefill; texture is copied from the photo afterwards by the guided synthesis
(``engine.texture``). Layout:

- encoder: a 7 x 7 stem at full resolution and three stride-2 convolutions down to 1/8;
- ``residual_blocks`` FFC residual blocks at 1/8. Each FFC splits its channels into a local part (3 x 3
  convolutions) and a global part (a convolution in the 2-D Fourier domain, so every output pixel sees the
  whole image: the cheapest image-wide receptive field per CPU-second);
- decoder: bilinear upsampling (nearest left 8 px blocks at 3,000 steps) + 3 x 3 convolution per octave,
  with the encoder's feature map of that octave added (U-Net skips keep the known area's boundaries sharp);
- a zero-initialised head, so an untrained network returns the harmonic fill exactly.

With ``half_resolution`` the full-resolution octave is dropped: the input is pixel-unshuffled to half size (every
pixel still reaches the network, as channels), the stem and the last decoder level run at 1/2, and the
correction is predicted at 1/2 and upsampled bilinearly. The low band the network is trained for (blurred at
sigma 2-3 px) has nothing above half the sampling rate, so little is lost, and a 512 px fill takes less than half
the time (the 7 x 7 full-resolution stem and the full-resolution decoder level were 40 % of it). That layout also
pads with zeros, inside the convolution, instead of reflecting (a copy of every feature map: 30 ms at 512 px).

No normalisation layers (instance norm left "droplet" spots in this project's EdgeConnect models, and batch
norm breaks fine-tuning at batch 1); each residual block is scaled by a learned gain that starts at zero,
which keeps the deep stack stable without them.

Inputs follow the image generators' convention: ``forward(image, edges, mask)``, images in [0, 1], ``mask``
1 in the hole; whatever the caller left under the mask cannot influence the output.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.networks.prefill import harmonic_fill
from engine.networks.upconv import can_fold, upsample_conv


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is an N x C x H x W tensor laid out NHWC (one channel is ambiguous: not counted)."""
    return x.dim() == 4 and x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last)


def reflect_pad_channels_last(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``F.pad(x, (pad,) * 4, mode="reflect")`` for an NHWC (channels-last) tensor, by slice copies: the same
    values, but 6-10x faster at 512 px, where PyTorch's reflection kernel walks NHWC memory a pixel at a time."""
    n, c, h, w = x.shape
    out = torch.empty((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype, device=x.device,
                      memory_format=torch.channels_last)
    out[:, :, pad:pad + h, pad:pad + w] = x
    for i in range(pad):
        out[:, :, pad - 1 - i, pad:pad + w] = x[:, :, i + 1]
        out[:, :, pad + h + i, pad:pad + w] = x[:, :, h - 2 - i]
    for i in range(pad):  # the columns after the rows, so that the corners reflect both ways
        out[:, :, :, pad - 1 - i] = out[:, :, :, pad + i + 1]
        out[:, :, :, pad + w + i] = out[:, :, :, pad + w - 2 - i]
    return out


class ReflectConv2d(nn.Conv2d):
    """A reflect-padded convolution that gives ``nn.Conv2d``'s bits faster at inference (same parameters).

    - Under autocast the input is cast to the autocast type *before* padding (the convolution casts it anyway,
      so the result is the same bits; padding in float32 first copied a full-resolution map at twice the size).
    - A channels-last input is padded by ``reflect_pad_channels_last``.
    With the NHWC stem input and the NCHW prefill (``FFCStructureGenerator.forward``), one 512 px pass under bf16
    went from 248 to 176 ms on the 2-core CPU (docs/benchmarks.md)."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if torch.is_grad_enabled():  # training: nn.Conv2d's own path, so gradients are summed as they always were
            return super()._conv_forward(input, weight, bias)
        device = input.device.type
        if input.dtype == torch.float32 and torch.is_autocast_enabled(device):
            input = input.to(torch.get_autocast_dtype(device))
        pad = self._reversed_padding_repeated_twice
        if (self.padding_mode == "reflect" and len(set(pad)) == 1 and is_channels_last(input)
                and min(input.shape[-2:]) > pad[0]):
            return nn.functional.conv2d(reflect_pad_channels_last(input, pad[0]), weight, bias, self.stride,
                                        0, self.dilation, self.groups)
        return super()._conv_forward(input, weight, bias)


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Module:
    """Reflect-padded convolution (``kernel`` odd, or 4 with stride 2)."""
    pad = (kernel - 1) // 2 if kernel % 2 else 1
    return ReflectConv2d(in_channels, out_channels, kernel, stride=stride, padding=pad, padding_mode="reflect")


class FourierUnit(nn.Module):
    """1 x 1 convolution applied to the real and imaginary parts of the 2-D real FFT, then back."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1:]
        spectrum = torch.fft.rfft2(x.float(), norm="ortho")
        stacked = torch.cat([spectrum.real, spectrum.imag], dim=1)
        stacked = self.act(self.conv(stacked.to(x.dtype))).float()
        real, imag = stacked[:, :c], stacked[:, c:]
        return torch.fft.irfft2(torch.complex(real, imag), s=(h, w), norm="ortho").to(x.dtype)


class SpectralTransform(nn.Module):
    """LaMa's global branch: 1 x 1 reduce, Fourier unit with a residual, 1 x 1 expand."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = max(1, channels // 2)
        self.reduce = nn.Sequential(nn.Conv2d(channels, half, 1), nn.ReLU(inplace=True))
        self.fourier = FourierUnit(half)
        self.expand = nn.Conv2d(half, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.expand(x + self.fourier(x))


class FFC(nn.Module):
    """Fast Fourier convolution on a (local, global) channel split: local <- 3 x 3 of both, global <- 3 x 3 of
    the local part plus the spectral transform of the global part."""

    def __init__(self, channels: int, global_channels: int) -> None:
        super().__init__()
        local = channels - global_channels
        self.split = local
        self.local_from_local = _conv(local, local, 3)
        self.local_from_global = _conv(global_channels, local, 3)
        self.global_from_local = _conv(local, global_channels, 3)
        self.global_from_global = SpectralTransform(global_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_local, x_global = x[:, :self.split], x[:, self.split:]
        out_local = self.local_from_local(x_local) + self.local_from_global(x_global)
        out_global = self.global_from_local(x_local) + self.global_from_global(x_global)
        return self.act(torch.cat([out_local, out_global], dim=1))


class FFCResidualBlock(nn.Module):
    """Two FFCs and a skip, the residual scaled by a gain that starts at zero."""

    def __init__(self, channels: int, global_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(FFC(channels, global_channels), FFC(channels, global_channels))
        self.gain = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gain * self.body(x)


class FFCUNet(nn.Module):
    """The shared body: a stem, stride-2 convolutions down to 1/8, FFC residual blocks there, and a decoder of
    bilinear upsampling + 3 x 3 convolution per octave with the encoder's map of that octave added (U-Net skips).
    ``decode(stem_input)`` returns the last decoder level; each generator puts its own head on it."""

    def __init__(self, in_channels: int, base_channels: int, residual_blocks: int, global_percent: int,
                 half_resolution: bool = False) -> None:
        super().__init__()
        if not 0 < global_percent < 100:
            raise ValueError(f"global_percent must be between 1 and 99, got {global_percent}")
        c = base_channels
        deep = 4 * c  # the 1/8 octave keeps the 1/4 width: it costs the most per channel and step
        global_channels = max(1, min(deep - 1, deep * global_percent // 100))
        self.half_resolution = half_resolution
        down = [
            nn.Sequential(_conv(2 * c, 4 * c, 4, stride=2), nn.ReLU(inplace=True)),
            nn.Sequential(_conv(4 * c, deep, 4, stride=2), nn.ReLU(inplace=True)),
        ]
        up = [_conv(deep, 4 * c, 3), _conv(4 * c, 2 * c, 3)]
        if half_resolution:
            self.stem = nn.Sequential(nn.PixelUnshuffle(2), _conv(4 * in_channels, 2 * c, 3), nn.ReLU(inplace=True))
            self.head_channels = 2 * c
        else:
            self.stem = nn.Sequential(_conv(in_channels, c, 7), nn.ReLU(inplace=True))
            down.insert(0, nn.Sequential(_conv(c, 2 * c, 4, stride=2), nn.ReLU(inplace=True)))
            up.append(_conv(2 * c, c, 3))
            self.head_channels = c
        self.down = nn.ModuleList(down)
        self.middle = nn.Sequential(*[FFCResidualBlock(deep, global_channels) for _ in range(residual_blocks)])
        self.up = nn.ModuleList(up)
        self.act = nn.ReLU(inplace=True)

    def use_zero_padding(self) -> None:
        """Pad every convolution with zeros (inside the convolution) instead of reflecting (a copy per map)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.padding_mode = "zeros"

    def decode(self, stem_input: torch.Tensor) -> torch.Tensor:
        """The last decoder level's feature map (full resolution, or 1/2 with ``half_resolution``)."""
        x = self.stem(stem_input)
        skips = [x]
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = self.middle(x)
        for up, skip in zip(self.up, reversed(skips[:-1])):
            if can_fold(up, x):  # inference: the same values, computed at the low resolution (engine.networks.upconv)
                x = self.act(upsample_conv(x, up) + skip)
            else:
                x = nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
                x = self.act(up(x) + skip)
        return x


class FFCStructureGenerator(FFCUNet):
    """Fills the low band of the hole guided by an edge map; see the module docstring."""

    stage = "image"
    stride = 8
    # Trained on the photo's known edges plus a (partial) sketch, never on predicted ones: a fill feeds it the
    # known edges and the user's sketch only (its name is in engine.api.SKETCH_GUIDED_ARCHITECTURES), and the
    # edge model serves Predict Edges.
    # The engine keeps it in NHWC: oneDNN's convolutions and the FFC blocks run faster so on CPU (ms, below).
    prefers_channels_last = True
    # torch.fft.rfft2 has no ONNX operator in the TorchScript exporter (opset 17): the trainer says so up front.
    onnx_exportable = False

    def __init__(self, base_channels: int = 32, residual_blocks: int = 4, global_percent: int = 75,
                 half_resolution: bool = False) -> None:
        super().__init__(5, base_channels, residual_blocks, global_percent, half_resolution)
        self.head = _conv(self.head_channels, 3, 3)
        if half_resolution:
            self.use_zero_padding()
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor, edges: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return the filled RGB image in [0, 1], N x 3 x H x W (H and W multiples of 8)."""
        smooth = harmonic_fill(image.contiguous(), mask.contiguous())  # 3-channel NHWC maps run at half speed
        stem_input = torch.cat([smooth, edges, mask], dim=1)
        if is_channels_last(image) or is_channels_last(self.head.weight):  # NHWC weights: the engine's and
            stem_input = stem_input.contiguous(memory_format=torch.channels_last)  # the trainer's layout
        correction = self.head(self.decode(stem_input))
        if self.half_resolution:
            correction = nn.functional.interpolate(correction, size=smooth.shape[-2:], mode="bilinear",
                                                   align_corners=False)
        return (smooth + correction).clamp(0.0, 1.0)
