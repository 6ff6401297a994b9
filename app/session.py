"""Session autosave and crash recovery.

The session (which photo, the current photo if it was edited, mask, sketch and undo history) is written
to the editor's own session folder (``app.session_slots``: ``user_home()/sessions/<id>/``) as
``state.npz`` (``np.savez``, read back with ``allow_pickle=False``) plus a small human-readable
``manifest.json``; both writes are atomic. The npz is self-contained (it carries the manifest too), so a
crash between the two writes still leaves a usable session.

:class:`AutoSaver` saves after edits (debounced), after each fill and on demand; the arrays are copied
in the GUI thread and written in a short-lived background thread so the window does not stall. A clean
close clears the session; at the next start a session whose editor is gone means a crash or kill, and the
window offers :func:`recover`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from engine import imageio
from engine.atomic import write_text_atomic, write_with_atomic
from engine.errors import EngineError

log = logging.getLogger(__name__)

SESSION_VERSION = 1
STATE_FILE = "state.npz"
MANIFEST_FILE = "manifest.json"
_LAYERS = ("mask", "sketch_drawn", "sketch_erased")


class SessionError(Exception):
    """A saved session cannot be restored (its photo is gone, ...)."""


class SessionDamaged(SessionError):
    """The saved session's files cannot be read (damaged, or written by an incompatible version)."""


@dataclass
class Snapshot:
    """What the writer thread needs, owned by it (copies or packed bits; history arrays are immutable)."""

    photo_path: str | None
    size: tuple[int, int]  # (height, width)
    image: np.ndarray | None  # the current photo, only when it differs from the file (a fill is applied)
    packed_layers: dict[str, np.ndarray]  # mask and sketch, np.packbits
    history: dict[str, Any]
    save_target: str | None = None


def image_edited(document) -> bool:
    """True when the photo differs from the file it came from: only fills change pixels, so a fill is applied."""
    source = document.source
    if source is None or getattr(source, "path", None) is None:
        return True
    return document.last_fill() is not None


def take_snapshot(document, save_target: str | os.PathLike[str] | None = None, mirror=None) -> Snapshot | None:
    """Copy the document's session state (GUI thread, kept cheap); None when no photo is open.

    The photo is copied only when edited; with ``mirror`` (an :class:`app.mirror.ImageMirror` used only for
    autosaves) just the rects changed since the last snapshot are copied, and the caller must not take
    another snapshot before this one is written. Mask and sketch are bit-packed here (8x less to copy).
    """
    if document.is_empty():
        return None
    source = document.source
    path = getattr(source, "path", None)
    image = None
    if image_edited(document):
        image = mirror.sync() if mirror is not None else document.image.copy()
    return Snapshot(
        photo_path=str(Path(path).resolve()) if path else None,
        size=(document.height, document.width),
        image=image,
        packed_layers={name: _pack(getattr(document, name)) for name in _LAYERS},
        history=document.history_state(),  # command arrays are immutable once made
        save_target=str(save_target) if save_target else None,
    )


def _pack(layer: np.ndarray) -> np.ndarray:
    """Bit-packed bool layer; an empty layer (the usual sketch) is stored as zero bytes."""
    return np.packbits(layer, axis=None) if layer.any() else np.zeros(0, np.uint8)


def write_session(snapshot: Snapshot, folder: Path) -> Path:
    """Write ``snapshot`` atomically into ``folder``; returns the npz path."""
    folder.mkdir(parents=True, exist_ok=True)
    height, width = snapshot.size
    manifest = {
        "version": SESSION_VERSION,
        "photo_path": snapshot.photo_path,
        "image_stored": snapshot.image is not None,
        "width": int(width),
        "height": int(height),
        "save_target": snapshot.save_target,
        "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "pid": os.getpid(),
        "history_steps": int(snapshot.history.get("count", 0)),
    }
    arrays: dict[str, np.ndarray] = {"manifest": np.array(json.dumps(manifest))}
    if snapshot.image is not None:
        arrays["image"] = snapshot.image
    for name in _LAYERS:
        arrays[f"layer.{name}"] = snapshot.packed_layers[name]
    for key, value in snapshot.history.items():
        arrays[f"history.{key}"] = np.asarray(value)

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    target = folder / STATE_FILE
    write_with_atomic(target, writer)
    write_text_atomic(folder / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return target


@dataclass
class SavedSession:
    """A session read from disk."""

    manifest: dict[str, Any]
    image: np.ndarray | None
    layers: dict[str, np.ndarray]
    history: dict[str, Any]


def read_session(folder: Path) -> SavedSession:
    """Read the saved session; ``SessionError`` when there is none, ``SessionDamaged`` when it is unreadable."""
    path = folder / STATE_FILE
    if not path.is_file():
        raise SessionError("There is no saved session.")
    try:
        with np.load(path, allow_pickle=False) as data:
            manifest = json.loads(str(data["manifest"]))
            if int(manifest.get("version", -1)) != SESSION_VERSION:
                raise SessionDamaged(f"The saved session has version {manifest.get('version')}; "
                                   f"this editor reads version {SESSION_VERSION}.")
            height, width = int(manifest["height"]), int(manifest["width"])
            if not (height > 0 and width > 0 and height * width <= imageio.DEFAULT_MAX_PIXELS):
                raise SessionDamaged(f"The saved session in {folder} claims a {width} x {height} photo, "
                                     "over the editor's limit.")
            layers = {}
            for name in _LAYERS:
                packed = data[f"layer.{name}"]
                if packed.size == 0:
                    layers[name] = np.zeros((height, width), bool)
                else:
                    layers[name] = np.unpackbits(packed, count=height * width).view(bool).reshape(height, width)
            image = data["image"] if manifest.get("image_stored") else None
            history = {key[len("history."):]: data[key] for key in data.files if key.startswith("history.")}
    except SessionError:
        raise
    except (OSError, ValueError, KeyError, EOFError, MemoryError, zipfile.BadZipFile) as exc:
        raise SessionDamaged(f"The saved session in {folder} is damaged ({exc}).") from None
    if image is not None and image.shape != (height, width, 3):
        raise SessionDamaged("The saved session's photo does not match its size.")
    history = {k: (int(v) if v.ndim == 0 and v.dtype.kind in "iu" else v) for k, v in history.items()}
    return SavedSession(manifest, image, layers, history)


def has_session(folder: Path) -> bool:
    """True when ``folder`` holds a saved session."""
    return (folder / STATE_FILE).is_file()


def session_summary(folder: Path) -> dict[str, Any] | None:
    """The manifest of the saved session (cheap; for the recovery question), or None."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    return None


def clear_session(folder: Path) -> None:
    """Remove the saved session (after a clean close, or when another photo is opened)."""
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Recovered:
    """What :func:`recover` restored."""

    photo_path: Path | None
    save_target: Path | None
    messages: list[str]


def recover(document, folder: Path) -> Recovered:
    """Restore the saved session into ``document`` (headless). ``SessionError`` if it cannot be restored
    (``SessionDamaged`` if its files are unreadable).

    The photo is reloaded from its file (for format, EXIF and ICC); when it was edited, the saved pixels
    replace it. If the file is gone but the edited pixels were saved, they are recovered as an unsaved photo.
    """
    saved = read_session(folder)
    manifest = saved.manifest
    messages: list[str] = []
    photo = Path(manifest["photo_path"]) if manifest.get("photo_path") else None
    loaded = None
    if photo is not None:
        try:
            loaded = imageio.load_image(photo)
        except (EngineError, OSError, ValueError) as exc:
            messages.append(f"The original photo could not be reopened ({exc}).")
    size = (int(manifest["height"]), int(manifest["width"]))
    if loaded is not None and tuple(loaded.rgb.shape[:2]) != size:
        messages.append(f"{photo} changed on disk since the session was saved.")
        loaded = None
    if loaded is not None:
        document.load(loaded)
    elif saved.image is not None:
        document.load_array(saved.image, source=None)
        messages.append("The edited pixels were recovered; use Save As to keep them.")
        photo = None
    else:
        raise SessionError("The session's photo is gone and it was not edited, so there is nothing to recover"
                           + (f" ({photo})." if photo else "."))
    document.set_layers(image=saved.image, **saved.layers)
    try:
        document.restore_history(saved.history)
    except (ValueError, KeyError) as exc:
        messages.append(f"The undo history could not be restored ({exc}); the current state was recovered.")
        document.undo_stack.clear()
        document.undo_stack.resetClean()
    target = manifest.get("save_target")
    return Recovered(photo, Path(target) if target else None, messages)


MAX_WAIT_MS = 10_000


class AutoSaver(QObject):
    """Autosaves a document: debounced after edits, immediately on request (after a fill).

    Each edit restarts the ``delay_ms`` debounce, but an unsaved edit never waits more than ``max_wait_ms``
    (counted from the first edit since the last save), so someone who keeps painting without a pause is
    still autosaved. ``snapshot_fn`` returns a :class:`Snapshot` (or None); writes run in a background thread,
    one at a time; :meth:`flush` waits for the one in flight. :meth:`stop` ends autosaving; with
    ``clear=True`` (clean close) the session is removed.
    """

    saved = Signal(str)  # npz path
    failed = Signal(str)
    _write_done = Signal(str, str)  # path, error (emitted from the writer thread; queued to the GUI thread)

    def __init__(self, snapshot_fn, folder: Path, delay_ms: int = 3000, parent: QObject | None = None,
                 busy=None, max_wait_ms: int = MAX_WAIT_MS) -> None:
        super().__init__(parent)
        self._snapshot_fn = snapshot_fn
        self._busy = busy or (lambda: False)  # while True, a debounced save waits (a fill is running)
        self.folder = folder
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(max(0, int(delay_ms)))
        self._timer.timeout.connect(self._debounced)
        self._deadline = QTimer(self)  # started by the first unsaved edit, not restarted by later ones
        self._deadline.setSingleShot(True)
        self._deadline.setInterval(max(int(delay_ms), int(max_wait_ms)))
        self._deadline.timeout.connect(self._debounced)
        self._thread: threading.Thread | None = None
        self._again = False
        self._stopped = False
        self._lock = threading.Lock()
        self._write_done.connect(self._on_written)
        self.enabled = True

    def schedule(self) -> None:
        """An edit happened: save after the debounce delay (restarted by further edits), at the latest
        ``max_wait_ms`` after the first edit not yet saved."""
        if self.enabled and not self._stopped:
            self._timer.start()
            if not self._deadline.isActive():
                self._deadline.start()

    @Slot()
    def _debounced(self) -> None:
        if self._busy():
            self._timer.start()  # do not compete with a running fill; its end saves anyway
        else:
            self.save_now()

    @Slot()
    def save_now(self) -> bool:
        """Snapshot now and write in the background; True if a write was started or queued."""
        self._timer.stop()
        self._deadline.stop()
        if self._stopped or not self.enabled:
            return False
        if self._thread is not None and self._thread.is_alive():
            self._again = True
            return True
        snapshot = self._snapshot_fn()
        if snapshot is None:
            return False
        self._thread = threading.Thread(target=self._write, args=(snapshot,), name="inpaint-autosave")
        self._thread.start()
        return True

    def save_soon(self, delay_ms: int = 250) -> None:
        """Save shortly (after a fill: lets the window repaint first instead of adding to the same pause)."""
        if self.enabled and not self._stopped:
            self._timer.stop()
            self._deadline.stop()
            QTimer.singleShot(max(0, int(delay_ms)), self, self._debounced)

    def save_sync(self) -> Path | None:
        """Snapshot and write in the calling thread (tests, benchmarks)."""
        self.flush()
        snapshot = self._snapshot_fn()
        return None if snapshot is None else write_session(snapshot, self.folder)

    def _write(self, snapshot: Snapshot) -> None:
        with self._lock:
            try:
                path, error = str(write_session(snapshot, self.folder)), ""
            except Exception as exc:  # disk full, permissions: tell the window, keep editing
                path, error = "", f"Autosave failed: {exc}"
                log.warning(error)
            if not self._stopped:
                self._write_done.emit(path, error)

    @Slot(str, str)
    def _on_written(self, path: str, error: str) -> None:
        if error:
            self.failed.emit(error)
        else:
            self.saved.emit(path)
        if self._again and not self._stopped:
            self._again = False
            self.flush()
            self.save_now()

    def flush(self) -> None:
        """Wait for a write in flight."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def stop(self, clear: bool) -> None:
        """Stop autosaving, wait for a write in flight; ``clear`` removes the session (clean close)."""
        self._stopped = True
        self._timer.stop()
        self._deadline.stop()
        self.flush()
        if clear:
            clear_session(self.folder)
