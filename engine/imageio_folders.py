"""Photos in a folder tree, listed in the same order everywhere."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from engine.errors import ImageFileError
from engine.imageio_read import SUPPORTED_EXTENSIONS


def find_images(root: str | os.PathLike[str], limit: int | None = None) -> list[Path]:
    """Photos under ``root`` (recursive), sorted by relative path so the order is the same everywhere.

    Hidden files and folders are skipped, and so are folders whose name contains ``boundaries`` (BSDS500
    human boundary maps live beside the photos and are not photos). ``ImageFileError`` if ``root`` is not
    a folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ImageFileError(f"photo folder not found: {root}")
    found = sorted(iter_images(root), key=lambda p: p.relative_to(root).as_posix())
    return found[:limit] if limit is not None else found


def iter_images(root: str | os.PathLike[str], deadline: float | None = None) -> Iterator[Path]:
    """The photos :func:`find_images` finds, lazily, folder by folder (for a quick look into a big tree);
    past ``deadline`` (a ``time.monotonic()`` value) it raises ``TimeoutError``."""
    for folder, dirs, files in os.walk(Path(root).expanduser()):
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"searching {root} for photos took too long")
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and "boundaries" not in d.lower())
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_EXTENSIONS:
                yield Path(folder) / name
