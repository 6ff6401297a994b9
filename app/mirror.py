"""A copy of the document's photo kept current by copying only the rects that changed.

Fills and autosaves hand a copy of the photo to another thread. Copying a whole 24 MP photo in the GUI
thread costs 10-50 ms (and up to a few hundred ms when the 72 MB are freshly allocated and page-fault);
between two fills only the last fill's box changed. A mirror allocates once per photo (at open, where a
pause is expected), then follows the document's ``layer_changed`` notifications and copies just the dirty
box when asked for the array.

The owner must not call :meth:`sync` while another thread still reads the array from the previous sync.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect

from app.rects import rect_to_box
from engine.box import Box


class ImageMirror:
    """Mirror of ``document.image``; :meth:`sync` returns the up-to-date copy."""

    def __init__(self, document) -> None:
        self.document = document
        self.array: np.ndarray | None = None
        self._source: np.ndarray | None = None  # the document array mirrored (identity check)
        self._dirty: Box | None = None
        self.copied_pixels = 0  # statistics: pixels copied by the last sync

    def reset(self, prefault: bool = True) -> None:
        """A new photo: reallocate; with ``prefault`` copy it all now (while opening) rather than at first use."""
        self.array = None
        self._source = None
        self._dirty = None
        if prefault and not self.document.is_empty():
            self.sync()

    def mark(self, group: str, rect: QRect) -> None:
        """Slot for ``Document.layer_changed``: remember photo rects that changed."""
        if group not in ("image", "all") or self.array is None:
            return
        self._dirty = rect_to_box(rect).union(self._dirty)

    def sync(self) -> np.ndarray:
        """The mirror, brought up to date (a full copy the first time or when the photo array changed)."""
        image = self.document.image
        if self.array is None or self._source is not image or self.array.shape != image.shape:
            if self.array is None or self.array.shape != image.shape:
                self.array = np.empty_like(image)
            np.copyto(self.array, image)
            self._source = image
            self._dirty = None
            self.copied_pixels = image.shape[0] * image.shape[1]
            return self.array
        self.copied_pixels = 0
        if self._dirty is not None:
            box = self._dirty.clip(image.shape)
            if box is not None:
                self.array[box.slices()] = image[box.slices()]
                self.copied_pixels = box.area
            self._dirty = None
        return self.array
