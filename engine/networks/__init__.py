"""Explicit registry of the network classes that model files may name (no import scanning).

The registry maps names to ``module:Class`` paths and imports a class (and torch) only when it is asked
for, so reading cards and listing models stays free of torch; the classes themselves are importable from
here as before (``from engine.networks import EdgeGenerator``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from engine.networks.context_encoder import ContextEncoder
    from engine.networks.deepgin import DeepGINGenerator
    from engine.networks.edgeconnect import EdgeGenerator, ImageGenerator
    from engine.networks.ffc import FFCStructureGenerator
    from engine.networks.ffc_edge import FFCEdgeGenerator
    from engine.networks.glcic import CompletionNetwork
    from engine.networks.pconv import PConvUNet

_CLASSES = {
    "EdgeGenerator": "engine.networks.edgeconnect",
    "ImageGenerator": "engine.networks.edgeconnect",
    "FFCStructureGenerator": "engine.networks.ffc",
    "FFCEdgeGenerator": "engine.networks.ffc_edge",
    "CompletionNetwork": "engine.networks.glcic",
    "PConvUNet": "engine.networks.pconv",
    "DeepGINGenerator": "engine.networks.deepgin",
    "ContextEncoder": "engine.networks.context_encoder",
}
_ARCHITECTURE_CLASSES = {
    "edgeconnect-edge": "EdgeGenerator",
    "edgeconnect-image": "ImageGenerator",
    "glcic": "CompletionNetwork",
    "lama-ffc": "FFCStructureGenerator",
    "lama-ffc-edge": "FFCEdgeGenerator",
    "pconv-unet": "PConvUNet",
    "deepgin": "DeepGINGenerator",
    "context-encoder-ms": "ContextEncoder",
}


def _class(name: str) -> type[nn.Module]:
    return getattr(importlib.import_module(_CLASSES[name]), name)


class _Registry(Mapping[str, "type[nn.Module]"]):
    """Architecture name -> network class; names and membership need no import, values import their module."""

    def __getitem__(self, architecture: str) -> type[nn.Module]:
        return _class(_ARCHITECTURE_CLASSES[architecture])

    def __iter__(self) -> Iterator[str]:
        return iter(_ARCHITECTURE_CLASSES)

    def __len__(self) -> int:
        return len(_ARCHITECTURE_CLASSES)

    def __contains__(self, architecture: object) -> bool:
        return architecture in _ARCHITECTURE_CLASSES


ARCHITECTURES: Mapping[str, type[nn.Module]] = _Registry()


def build_network(architecture: str, arguments: dict) -> nn.Module:
    """Construct ``architecture`` with ``arguments``; ``KeyError``/``TypeError`` become ``ValueError``."""
    if architecture not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {architecture!r} (known: {known})")
    cls = ARCHITECTURES[architecture]
    try:
        return cls(**arguments)
    except TypeError as exc:
        raise ValueError(f"bad arguments for {architecture}: {exc}") from None


def in_preferred_layout(module: nn.Module) -> nn.Module:
    """``module`` with channels-last weights where its class says ``prefers_channels_last`` (the FFC networks:
    faster on the CPU, at inference and in training), else as it is."""
    if getattr(module, "prefers_channels_last", False):
        import torch

        return module.to(memory_format=torch.channels_last)
    return module


def __getattr__(name: str) -> Any:
    """``engine.networks.EdgeGenerator`` and friends, imported on first use."""
    if name in _CLASSES:
        return _class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ARCHITECTURES", "CompletionNetwork", "ContextEncoder", "DeepGINGenerator", "EdgeGenerator",
           "FFCEdgeGenerator", "FFCStructureGenerator", "ImageGenerator", "PConvUNet", "build_network"]
