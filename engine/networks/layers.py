"""Small building blocks shared by the generators."""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn.utils import spectral_norm


def maybe_spectral(module: nn.Module, use: bool) -> nn.Module:
    """Wrap ``module`` in spectral normalisation when ``use`` is true."""
    return spectral_norm(module) if use else module


def strip_spectral_norm(module: nn.Module) -> nn.Module:
    """Bake spectral normalisation into plain weights, in place (identical output in eval mode, less work per
    call: the engine's loaded models and the ONNX export); returns ``module``."""
    for sub in module.modules():
        for key in list(getattr(sub, "_forward_pre_hooks", {})):
            hook = sub._forward_pre_hooks[key]
            if type(hook).__name__ == "SpectralNorm":
                with contextlib.suppress(ValueError):
                    torch.nn.utils.remove_spectral_norm(sub, hook.name)
    return module


class ResnetBlock(nn.Module):
    """EdgeConnect residual block: dilated 3x3 conv, norm, ReLU, 3x3 conv, norm, plus the input."""

    def __init__(self, channels: int, dilation: int, use_spectral_norm: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            maybe_spectral(nn.Conv2d(channels, channels, 3, dilation=dilation, bias=not use_spectral_norm),
                           use_spectral_norm),
            nn.InstanceNorm2d(channels, track_running_stats=False),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            maybe_spectral(nn.Conv2d(channels, channels, 3, bias=not use_spectral_norm), use_spectral_norm),
            nn.InstanceNorm2d(channels, track_running_stats=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
