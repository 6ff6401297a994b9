"""Extents of the document's bool layers: a few boxes that together hold every set pixel of a layer.

The document tracks one :class:`Extent` per bool layer (mask, drawn and erased edges), so clearing the mask
after a fill, or finding what a layer holds, scans those boxes rather than the whole photo.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from engine.box import Box, bbox_of


class Extent:
    """A few boxes that together hold every set pixel of a bool layer (a superset, kept small).

    Painting adds the dab boxes (near ones merge, so a stroke is one box and two far-apart objects are
    two); writing a box replaces the boxes it covers by the exact bounding box of what was written.
    Every operation costs the boxes involved, never the photo.
    """

    GAP = 32  # px: boxes closer than this merge
    MAX_BOXES = 32

    def __init__(self, boxes: Iterable[Box | None] = ()) -> None:
        self.boxes: list[Box] = []
        for box in boxes:
            self.add(box)

    def add(self, box: Box | None) -> None:
        """Pixels inside ``box`` may now be set."""
        if box is None:
            return
        box = Box(*box)
        while True:
            near = next((i for i, other in enumerate(self.boxes) if box.overlaps(other, self.GAP)), None)
            if near is None:
                break
            box = box.union(self.boxes.pop(near))
        if len(self.boxes) >= self.MAX_BOXES:  # full: merge into the box that grows least
            best = min(range(len(self.boxes)), key=lambda i: box.union(self.boxes[i]).area - self.boxes[i].area)
            self.add(box.union(self.boxes.pop(best)))
            return
        self.boxes.append(box)

    def written(self, box: Box, content: Box | None) -> None:
        """``box`` was overwritten and now holds set pixels within ``content`` only (None: none)."""
        box = Box(*box)
        self.boxes = [b for b in self.boxes if not box.contains(b)]
        self.add(content)

    def content_boxes(self, array: np.ndarray, known: Sequence[Box] = ()) -> list[Box]:
        """Exact bounding boxes of the set pixels of ``array`` (the tracked layer), together holding all of them.

        One box per ``known`` box (those of a fill's regions) that holds set pixels, then one per extent
        box for the set pixels outside the ``known`` boxes. Scans the ``known`` boxes and the tracked extent
        only, so the cost follows what was painted, not the photo size. Without ``known`` boxes the extent
        becomes exact ([] when the layer is empty).
        """
        if not self.boxes:
            return []
        known = [Box(*box) for box in known]

        def content(box: Box) -> Box | None:
            found = bbox_of(array[box.slices()])
            return None if found is None else found.offset(box.x0, box.y0)

        found = [content(box) for box in known]
        for extent_box in self.boxes:
            parts = [extent_box]
            for cut in known:
                parts = [piece for part in parts for piece in part.subtract(cut)]
            found.append(Box.bounding(content(part) for part in parts))
        boxes = [box for box in found if box is not None]
        if not known:
            self.boxes = Extent(boxes).boxes  # now exact
        return boxes
