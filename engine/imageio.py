"""Reading and writing photos, masks and edge sketches, and finding the photos of a folder.

Everything the engine fills is H x W x 3 uint8 RGB with EXIF orientation already applied. Whatever
else the source file had (alpha, 16-bit samples, EXIF, ICC profile, dpi) is kept in ``LoadedImage`` so
``save_image(..., like=loaded)`` can write it back. Every failure a user can cause is an
``ImageFileError`` whose message names the file and the problem; every write is atomic.

This module is the one to import; the work is split by job: reading (:mod:`engine.imageio_read`), saving
(:mod:`engine.imageio_save`), masks and sketches (:mod:`engine.imageio_masks`) and folder listing
(:mod:`engine.imageio_folders`).
"""

from __future__ import annotations

from engine.imageio_folders import find_images, iter_images
from engine.imageio_masks import load_mask, load_sketch, save_mask, save_sketch
from engine.imageio_read import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_EXTENSIONS,
    SUPPORTED_FORMATS,
    LoadedImage,
    frames_lost,
    load_image,
    upright_size,
)
from engine.imageio_save import format_for_path, save_image, suggest_output_path

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_EXTENSIONS",
    "SUPPORTED_FORMATS",
    "LoadedImage",
    "find_images",
    "format_for_path",
    "frames_lost",
    "iter_images",
    "load_image",
    "load_mask",
    "load_sketch",
    "save_image",
    "save_mask",
    "save_sketch",
    "suggest_output_path",
    "upright_size",
]
