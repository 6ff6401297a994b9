"""Opening, saving and the mask files of a document, with the questions that protect the user's files.

No widgets here: every question goes through a :class:`app.prompts.Prompter`, so the whole flow runs
headless in tests. Saves are atomic (``engine.imageio.save_image``): a failed save leaves the old file.
Decoding and encoding go through ``runner(label, fn)``: the window passes :class:`app.background.
BackgroundRunner` (off the GUI thread, so a 100-megapixel photo does not freeze it); by default they run
in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.prompts import CANCEL, SAVE, Prompter
from app.settings import Settings
from engine import imageio
from engine.errors import EngineError

log = logging.getLogger(__name__)

SUFFIX = "-inpainted"


def image_filter() -> str:
    """File dialog filter for the photo formats the engine reads and writes."""
    patterns = " ".join(f"*{ext}" for ext in imageio.SUPPORTED_EXTENSIONS)
    return f"Images ({patterns});;All files (*)"


MASK_FILTER = "PNG mask (*.png);;All files (*)"


def suggest_save_as(source: Path | None, folder: Path | None = None) -> Path:
    """``NAME-inpainted.EXT`` beside the original (``-inpainted-2`` etc. when that exists)."""
    if source is None:
        return (folder or Path.home()) / f"untitled{SUFFIX}.png"
    stem = source.stem if not source.stem.endswith(SUFFIX) else source.stem[: -len(SUFFIX)]
    suffix = source.suffix if source.suffix.lower() in imageio.SUPPORTED_EXTENSIONS else ".png"
    candidate = source.with_name(f"{stem}{SUFFIX}{suffix}")
    counter = 2
    while candidate.exists():
        candidate = source.with_name(f"{stem}{SUFFIX}-{counter}{suffix}")
        counter += 1
    return candidate


def _same_file(a: Path, b: Path | None) -> bool:
    if b is None:
        return False
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def changed_pixels(image: np.ndarray, original: np.ndarray | None) -> np.ndarray | None:
    """H x W bool of pixels that differ from the loaded original (None when it cannot be compared)."""
    if original is None or original.shape != image.shape:
        return None
    return np.any(image != original, axis=2)


class FileOps(QObject):
    """Open / Save / Save As / mask import-export of one document.

    ``save_target`` is where Save writes: None until the first save, after which Save writes there again.
    The first write over the opened original asks first (once per opened photo).
    """

    opened = Signal(object)  # Path
    saved = Signal(object)  # Path
    recent_changed = Signal()

    def __init__(self, document, prompter: Prompter, settings: Settings, parent: QObject | None = None,
                 runner: Callable[[str, Callable[[], Any]], Any] | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.prompter = prompter
        self.settings = settings
        self.run = runner or (lambda label, fn: fn())
        self.save_target: Path | None = None
        self._original_confirmed = False

    # ------------------------------------------------------------------ helpers
    @property
    def original_path(self) -> Path | None:
        source = self.document.source
        return None if source is None or source.path is None else Path(source.path)

    def _remember(self, path: Path) -> None:
        self.settings.add_recent(path)
        try:
            self.settings.save()
        except OSError as exc:
            log.warning("could not save preferences: %s", exc)
        self.recent_changed.emit()

    def has_image(self) -> bool:
        return self.document.source is not None

    # ------------------------------------------------------------------ open
    def ask_open(self) -> bool:
        """Ask for a photo and open it."""
        if not self.maybe_keep_changes():
            return False
        start = self.original_path.parent if self.original_path else None
        path = self.prompter.open_path("Open photo", start, image_filter())
        return self.open(path, ask_unsaved=False) if path else False

    def open(self, path: str | Path, ask_unsaved: bool = True) -> bool:
        """Open ``path`` into the document; a bad file shows a clear error and changes nothing."""
        path = Path(path)
        if ask_unsaved and not self.maybe_keep_changes():
            return False
        try:
            loaded = self.run(f"Opening {path.name}…", lambda: imageio.load_image(path))
        except EngineError as exc:
            self.prompter.error("Cannot open photo", str(exc))
            return False
        except (OSError, ValueError, MemoryError) as exc:
            self.prompter.error("Cannot open photo", f"{path} could not be opened: {exc}")
            return False
        self.document.load(loaded)
        self.save_target = None
        self._original_confirmed = False
        self._remember(path)
        self.opened.emit(path)
        return True

    # ------------------------------------------------------------------ save
    def save(self) -> bool:
        """Write to the save target, or to the opened original (asking first); False if not saved."""
        if not self.has_image():
            return False
        target = self.save_target or self.original_path
        if target is None:
            return self.save_as()
        if not self.document.pixels_changed_since_saved():  # only the mask or sketch changed: the file is as is
            self.document.mark_saved()
            self.saved.emit(target)
            return True
        return self.write(target)

    def save_as(self, path: str | Path | None = None) -> bool:
        """Ask where to save (proposing ``NAME-inpainted.EXT``) and write there."""
        if not self.has_image():
            return False
        if path is None:
            suggested = suggest_save_as(self.original_path)
            path = self.prompter.save_path("Save photo as", suggested, image_filter())
            if path is None:
                return False
        return self.write(Path(path))

    def write(self, path: Path) -> bool:
        """Save the current photo to ``path`` keeping format, EXIF and ICC; asks before overwriting the original.

        The original is never replaced when it has pages or frames the editor does not keep (a multi-page
        TIFF, an animated PNG or WebP): the message names what would be lost and offers Save As instead.
        """
        lost = None if self.document.source is None else imageio.frames_lost(self.document.source)
        if lost and _same_file(path, self.original_path):
            question = (f"{path.name} has {self.document.source.frames} "
                        f"{'pages' if self.document.source.format == 'TIFF' else 'frames'}, and the editor "
                        f"edits and saves only the first: saving over it would delete {lost}.\n\n"
                        f"{path}\n\nThe original is kept as it is. Save the edited one as a new file instead?")
            if self.prompter.confirm("Save as a new file", question, default=True):
                return self.save_as()
            return False
        if _same_file(path, self.original_path) and not self._original_confirmed:
            question = (f"Overwrite the original photo?\n\n{path}\n\nThe original pixels will be lost. "
                        f"Choose No and use Save As to keep it.")
            if not self.prompter.confirm("Overwrite original", question):
                return False
            self._original_confirmed = True
        doc = self.document
        source = doc.source
        image = doc.image.copy()  # a fill that lands while the file is written must not tear it
        try:
            self.run(f"Saving {path.name}…", lambda: imageio.save_image(
                path, image, like=source, changed=changed_pixels(image, getattr(source, "rgb", None))))
        except EngineError as exc:
            self.prompter.error("Save failed", f"{exc}\n\nThe file on disk was not changed.")
            return False
        except (OSError, ValueError, MemoryError) as exc:
            self.prompter.error("Save failed", f"Could not save {path}: {exc}\n\nThe file on disk was not changed.")
            return False
        self.save_target = path
        doc.undo_stack.setClean()
        self._remember(path)
        self.saved.emit(path)
        return True

    def maybe_keep_changes(self) -> bool:
        """Before discarding the document: ask about unsaved changes. True = go ahead."""
        if not self.has_image() or not self.document.is_modified():
            return True
        doc = self.document
        if not doc.pixels_changed_since_saved():  # saving the photo would keep nothing of what was painted
            if not (doc.mask.any() or doc.sketch_drawn.any() or doc.sketch_erased.any()):
                return True
            return self.prompter.confirm("Discard the mask?", "The photo has no unsaved changes, but the mask and "
                                         "edge sketch you painted will be lost (Mask > Export Mask keeps a mask). "
                                         "Continue?")
        target = self.save_target or self.original_path
        name = target.name if target else "the photo"
        answer = self.prompter.unsaved_changes(f"Save the changes to {name}?")
        if answer == CANCEL:
            return False
        if answer == SAVE:
            return self.save()
        return True

    # ------------------------------------------------------------------ mask files
    def export_mask(self, path: str | Path | None = None) -> bool:
        """Write the mask as a PNG (white = hole)."""
        if not self.has_image():
            return False
        if path is None:
            base = self.original_path
            suggested = base.with_name(f"{base.stem}-mask.png") if base else None
            path = self.prompter.save_path("Export mask", suggested, MASK_FILTER)
            if path is None:
                return False
        try:
            imageio.save_mask(Path(path), self.document.mask)
        except (EngineError, OSError, ValueError) as exc:
            self.prompter.error("Export failed", f"Could not write the mask: {exc}")
            return False
        return True

    def import_mask(self, path: str | Path | None = None) -> bool:
        """Read a PNG mask (white = hole), scaled to the photo, as one undoable edit."""
        if not self.has_image():
            return False
        if path is None:
            start = self.original_path.parent if self.original_path else None
            path = self.prompter.open_path("Import mask", start, MASK_FILTER)
            if path is None:
                return False
        height, width = self.document.mask.shape
        try:
            mask = imageio.load_mask(Path(path), size=(width, height))
        except (EngineError, OSError, ValueError) as exc:
            self.prompter.error("Cannot import mask", str(exc))
            return False
        self.document.import_mask(mask)
        return True
