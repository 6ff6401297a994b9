"""Test data for the editor tests: small photos with EXIF, tiny random models, waiting helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.model_files import ModelCard, save_model
from engine.networks import EdgeGenerator, ImageGenerator

CAMERA = "InpaintTestCam"


def photo_array(width: int = 96, height: int = 64) -> np.ndarray:
    """A smooth gradient with a dark bar: something a fill can continue."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                    np.full_like(x, 120)], axis=2).astype(np.uint8)
    rgb[height // 2 - 3 : height // 2 + 3, :] = (30, 30, 40)
    return rgb


def write_photo(path: Path, width: int = 96, height: int = 64) -> Path:
    """Write :func:`photo_array` with EXIF (Make) in the format of ``path``'s extension."""
    image = Image.fromarray(photo_array(width, height))
    exif = Image.Exif()
    exif[0x010F] = CAMERA  # Make
    exif[0x0112] = 1  # Orientation
    kwargs = {"exif": exif.tobytes()}
    if path.suffix.lower() in (".jpg", ".jpeg"):
        kwargs["quality"] = 95
    image.save(path, **kwargs)
    return path


def exif_make(path: Path) -> str | None:
    """The EXIF camera make of a file, or None."""
    with Image.open(path) as im:
        return im.getexif().get(0x010F)


def write_tiny_pair(folder: Path, seed: int = 0, *, prefix: str = "edgeconnect",
                    image_network: type[torch.nn.Module] = ImageGenerator,
                    image_architecture: str = "edgeconnect-image") -> Path:
    """A tiny random ``PREFIX-edge`` + ``PREFIX-image`` pair (working resolution 64); by default the EdgeConnect
    pair, ``write_tiny_structure_pair`` for the sketch-guided structure model."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    args = {"base_channels": 8, "residual_blocks": 2}
    common = {"resolution": 64, "data": "random init (tests)"}
    save_model(EdgeGenerator(**args).eval(), ModelCard(f"{prefix}-edge", "edgeconnect-edge", args, "edge",
                                                       **common), folder)
    save_model(image_network(**args).eval(), ModelCard(f"{prefix}-image", image_architecture, args, "image",
                                                       companion=f"{prefix}-edge", **common), folder)
    return folder


def write_tiny_structure_pair(folder: Path, seed: int = 0) -> Path:
    """A tiny random ``lama-ffc`` structure model (sketch-guided), ``structure-image``, with an edge companion."""
    from engine.networks.ffc import FFCStructureGenerator

    return write_tiny_pair(folder, seed, prefix="structure", image_network=FFCStructureGenerator,
                           image_architecture="lama-ffc")


def write_broken_model(folder: Path, name: str = "broken-image") -> Path:
    """An image model whose weights file is truncated (its companion is the good tiny edge model)."""
    args = {"base_channels": 8, "residual_blocks": 2}
    path = save_model(ImageGenerator(**args).eval(), ModelCard(name, "edgeconnect-image", args, "image",
                                                               resolution=64, companion="edgeconnect-edge"), folder)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def paint_box(window, box: tuple[int, int, int, int]) -> None:
    """Add a rectangle to the mask as one undo step."""
    window.document.add_rectangle(box)
