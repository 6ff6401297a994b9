"""What is wrong with a path before it is opened or written: a name too long, a symbolic-link loop.

The system's own errors for these ("File name too long", Python's ``RuntimeError: Symlink loop``) do not
say which part of the path is at fault; :func:`path_problem` does, in words for a one-line message.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

NAME_MAX = 255  # bytes per file or folder name on Linux, macOS and Windows file systems
_SHOWN = 40


def _shown(name: str) -> str:
    return name if len(name) <= _SHOWN else f"{name[:_SHOWN]}..."


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be used, in words, or None when nothing is wrong with the name itself.

    Checks each part's length in bytes (at most 255) and whether following the path loops through
    symbolic links; a path that simply does not exist is not a problem here.
    """
    p = Path(path)
    for part in p.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            return (f"the name '{_shown(part)}' is {size} bytes long; a file or folder name can have at most "
                    f"{NAME_MAX} bytes")
    try:
        os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "it is a symbolic link that leads in a loop (it points, in the end, back to itself)"
        if exc.errno == errno.ENAMETOOLONG:
            return "the path is too long for this system"
    return None


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` for a message: parts longer than the limit are cut to their first characters."""
    parts = [part if len(os.fsencode(part)) <= NAME_MAX else _shown(part) for part in Path(path).parts]
    return str(Path(*parts)) if parts else str(path)
