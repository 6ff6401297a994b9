"""Texture from the photo itself: guided PatchMatch synthesis on top of a structure fill (no Qt, no torch)."""

from engine.texture.synthesis import (
    DEFAULT_STRENGTH,
    TextureInput,
    TextureResult,
    check_strength,
    copy_ahead,
    load_patchmatch,
    synthesize,
)

__all__ = ["DEFAULT_STRENGTH", "TextureInput", "TextureResult", "check_strength", "copy_ahead", "load_patchmatch",
           "synthesize"]
