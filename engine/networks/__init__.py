"""Explicit registry of the network classes that model files may name (no import scanning)."""

from __future__ import annotations

from torch import nn

from engine.networks.edgeconnect import EdgeGenerator, ImageGenerator
from engine.networks.ffc import FFCStructureGenerator
from engine.networks.glcic import CompletionNetwork

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "edgeconnect-edge": EdgeGenerator,
    "edgeconnect-image": ImageGenerator,
    "glcic": CompletionNetwork,
    "lama-ffc": FFCStructureGenerator,
}


def build_network(architecture: str, arguments: dict) -> nn.Module:
    """Construct ``architecture`` with ``arguments``; ``KeyError``/``TypeError`` become ``ValueError``."""
    try:
        cls = ARCHITECTURES[architecture]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {architecture!r} (known: {known})") from None
    try:
        return cls(**arguments)
    except TypeError as exc:
        raise ValueError(f"bad arguments for {architecture}: {exc}") from None


__all__ = ["ARCHITECTURES", "CompletionNetwork", "EdgeGenerator", "FFCStructureGenerator", "ImageGenerator",
           "build_network"]
