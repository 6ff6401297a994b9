"""This program's temporary files beside a target: short, recognisable names, and removal of stale ones.

A temporary file is named ``.inpaint-<pid>-<random>-<start of the target's name>.tmp<suffix>``: hidden, at
most ~80 bytes whatever the target's length (a 255-byte target name is legal, a longer temporary one is
not), and marked with this program's prefix and the process id that writes it.

A write killed with SIGKILL leaves its temporary behind. When a process first writes into a folder,
:func:`remove_stale` deletes the temporaries found there that are this program's (the prefix and the pid
field must both match, so no other program's file is touched) and that are stale:

* its writer's process is gone (POSIX) and the file has not been modified for ``DEAD_GRACE_S`` (a minute):
  the grace covers a writer on another machine sharing the folder, whose pid means nothing here and which
  keeps modifying its file while it writes; or
* the file has not been modified for ``STALE_S`` (an hour), whatever its pid says (pids are reused, and
  no write of this program leaves its temporary untouched for that long).

Anything that cannot be checked or removed is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from pathlib import Path

PREFIX = ".inpaint-"
DEAD_GRACE_S = 60.0
STALE_S = 3600.0
_STEM_BYTES = 40
_SUFFIX_BYTES = 16
_NAME = re.compile(r"^\.inpaint-(\d{1,10})-[A-Za-z0-9_]{8}-.*\.tmp[^/]*$", re.DOTALL)
_SWEPT: set[str] = set()
_SWEPT_LOCK = threading.Lock()


def name_parts(target: Path) -> tuple[str, str]:
    """(prefix, suffix) for ``tempfile.mkstemp`` beside ``target`` (it puts 8 random characters between)."""
    stem = target.stem.encode("utf-8", "surrogateescape")[:_STEM_BYTES].decode("utf-8", "ignore")
    suffix = target.suffix if len(target.suffix.encode("utf-8", "surrogateescape")) <= _SUFFIX_BYTES else ""
    return f"{PREFIX}{os.getpid()}-", f"-{stem}.tmp{suffix}"


def is_ours(name: str) -> int | None:
    """The writer's pid if ``name`` is a temporary of this program, else None."""
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs here; where that cannot be told (not POSIX), assume it does."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def is_stale(path: Path, pid: int, now: float | None = None) -> bool:
    """Whether the temporary ``path`` written by ``pid`` is left over (see the module docstring)."""
    try:
        idle = (time.time() if now is None else now) - path.lstat().st_mtime
    except OSError:
        return False
    if idle >= STALE_S:
        return True
    return idle >= DEAD_GRACE_S and pid != os.getpid() and not _running(pid)


def remove_stale(folder: Path, once: bool = True) -> list[Path]:
    """Remove this program's stale temporaries in ``folder`` (by default only at the first write there in
    this process); returns what was removed."""
    key = os.path.abspath(folder)
    if once:
        with _SWEPT_LOCK:
            if key in _SWEPT:
                return []
            _SWEPT.add(key)
    removed: list[Path] = []
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            pid = is_ours(entry.name)
            if pid is None or not entry.is_file(follow_symlinks=False):
                continue
            path = Path(entry.path)
            if is_stale(path, pid):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed
