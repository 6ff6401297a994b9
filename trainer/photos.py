"""Which files of a photo folder the trainer trains on (and the fine-tune dialog checks before it starts one).

Every photo under the folder (:func:`engine.imageio.find_images`), except in folders named like
``*boundaries*``: BSDS500 keeps its human boundary maps beside its photos (``bsds500_boundaries/``); they are
edge targets (``data.boundaries_dir``), not photos. No torch, no Qt: the editor reaches this through
:mod:`trainer.finetune_protocol`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from engine import imageio

BOUNDARY_FOLDERS = ("*boundaries*",)  # folder-name patterns of boundary maps kept beside the photos


def shared_data_dir() -> Path:
    """The development photo and mask collection beside the checkout (``../shared/data``), if present."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_nvidia_dir() -> Path:
    """The NVIDIA irregular masks of the development collection (``../shared/data/masks/nvidia_irregular``)."""
    return shared_data_dir() / "masks" / "nvidia_irregular"


def find_photos(root: str | os.PathLike[str], limit: int | None = None) -> list[Path]:
    """The training photos under ``root``, sorted; ``ImageFileError`` if ``root`` is not a folder."""
    return imageio.find_images(root, limit, exclude=BOUNDARY_FOLDERS)


def iter_photos(root: str | os.PathLike[str], deadline: float | None = None) -> Iterator[Path]:
    """The photos :func:`find_photos` finds, lazily (a quick look into a big tree; ``TimeoutError`` past
    ``deadline``)."""
    return imageio.iter_images(root, deadline, exclude=BOUNDARY_FOLDERS)
