"""Texture from the photo itself: guided PatchMatch synthesis on top of a structure fill (no Qt, no torch).

Names are loaded on first use, so that the copier's child process (engine.texture.copier) starts without the
guided search's numba kernels.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "copy_ahead": "native",
    "load_patchmatch": "native",
    "DEFAULT_STRENGTH": "synthesis",
    "TextureInput": "synthesis",
    "TextureResult": "synthesis",
    "check_strength": "synthesis",
    "synthesize": "synthesis",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine.texture' has no attribute {name!r}")
    return getattr(importlib.import_module(f"engine.texture.{home}"), name)
