"""One autosave folder per running editor, so that two editors never touch each other's session.

Each editor claims ``user_home()/sessions/<id>/`` and holds ``sessions/<id>.lock`` (a ``QLockFile``) for as
long as it runs; ids start with the time, so they sort by age. At start, a folder whose lock nobody holds
and that holds a saved session is an *orphan*: its editor crashed or was killed. ``QLockFile`` takes over a
lock whose process is gone, or whose process id now belongs to another program, so an orphan is found
whatever runs now, and a session of an editor that is still running is never offered or removed.
Claiming an orphan locks it, so two editors started together cannot both recover it.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from pathlib import Path

from PySide6.QtCore import QLockFile

from app.session import has_session
from engine.paths import user_home

DAMAGED_PREFIX = "damaged-"
CLAIM_TRIES = 8  # fresh names tried before giving up on a lock (a full or read-only disk refuses them all)

log = logging.getLogger(__name__)


def sessions_root() -> Path:
    """``user_home()/sessions``: one folder per editor session (not created here)."""
    return user_home() / "sessions"


class SessionSlot:
    """A session folder and the lock that says an editor (this one) owns it."""

    def __init__(self, folder: Path, lock: QLockFile | None) -> None:
        self.folder = folder
        self._lock = lock  # None: no lock could be taken; autosaves there report their own failures

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.unlock()  # also removes the lock file

    def release(self, clear: bool) -> None:
        """Give the folder up: ``clear`` deletes it (clean close, declined or recovered elsewhere)."""
        if clear:
            shutil.rmtree(self.folder, ignore_errors=True)
        self._unlock()

    def set_aside(self) -> Path:
        """Keep a session that cannot be read out of the way (renamed ``damaged-<id>``, never offered again)."""
        target = self.folder.with_name(DAMAGED_PREFIX + self.folder.name)
        try:
            self.folder.rename(target)
        except OSError:
            target = self.folder
        self._unlock()
        return target


def _lock_for(name: str) -> QLockFile:
    lock = QLockFile(str(sessions_root() / f"{name}.lock"))
    lock.setStaleLockTime(0)  # a lock is taken over only when its process is gone, never because it is old
    return lock


def claim_new() -> SessionSlot:
    """A fresh, locked session folder for this editor (the folder itself is created by the first save).

    On a full or read-only disk no lock can be written: after ``CLAIM_TRIES`` names the slot comes back
    unlocked (the editor still starts, and its first failing autosave tells the user sessions are not saved)."""
    root = sessions_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("cannot create the session folder %s: %s", root, exc)
    name = ""
    for _ in range(CLAIM_TRIES):
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"
        lock = _lock_for(name)
        if lock.tryLock(0):
            return SessionSlot(root / name, lock)
    log.warning("cannot lock a session folder in %s (a full or read-only disk?): sessions are not locked", root)
    return SessionSlot(root / name, None)


def claim_orphans() -> list[SessionSlot]:
    """Saved sessions whose editor is gone, newest first, each now locked by this process.

    Leftovers of editors that crashed before their first save (an empty folder, a lock file alone) are
    removed on the way.
    """
    root = sessions_root()
    if not root.is_dir():
        return []
    orphans = []
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
        if folder.name.startswith(DAMAGED_PREFIX):
            continue
        lock = _lock_for(folder.name)
        if not lock.tryLock(0):
            continue  # its editor is running
        slot = SessionSlot(folder, lock)
        if has_session(folder):
            orphans.append(slot)
        else:
            slot.release(clear=True)
    for lock_file in root.glob("*.lock"):
        if not (root / lock_file.stem).exists():
            lock = _lock_for(lock_file.stem)
            if lock.tryLock(0):
                lock.unlock()
    return orphans
