"""Photos in a folder tree, listed in the same order everywhere."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from pathlib import Path

from engine.errors import ImageFileError
from engine.imageio_read import SUPPORTED_EXTENSIONS


def find_images(root: str | os.PathLike[str], limit: int | None = None, exclude: Sequence[str] = ()) -> list[Path]:
    """Photos under ``root`` (recursive), sorted by relative path so the order is the same everywhere.

    Hidden files and folders are skipped, and so are folders whose name matches one of the ``exclude``
    patterns (shell-style, case-insensitive, e.g. ``*boundaries*``). ``ImageFileError`` if ``root`` is not
    a folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ImageFileError(f"photo folder not found: {root}")
    found = sorted(iter_images(root, exclude=exclude), key=lambda p: p.relative_to(root).as_posix())
    return found[:limit] if limit is not None else found


def iter_images(root: str | os.PathLike[str], deadline: float | None = None,
                exclude: Sequence[str] = ()) -> Iterator[Path]:
    """The photos :func:`find_images` finds, lazily, folder by folder (for a quick look into a big tree);
    past ``deadline`` (a ``time.monotonic()`` value) it raises ``TimeoutError``."""
    patterns = [p.lower() for p in exclude]
    for folder, dirs, files in os.walk(Path(root).expanduser()):
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"searching {root} for photos took too long")
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not any(fnmatch(d.lower(), p) for p in patterns))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_EXTENSIONS:
                yield Path(folder) / name
