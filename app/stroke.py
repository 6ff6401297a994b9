"""A stroke being painted: its dabs go into the layers live, and it ends as one undo command.

A :class:`Stroke` is made by :meth:`app.document.Document.begin_stroke` and works on its document's layers
through the document's stroke hooks (``_extend``, ``_notify``, ``_track_write``, ``_stroke_ended``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from app import mask_ops
from app.commands import InvertMaskCommand, Patch, StrokeCommand
from engine.box import Box, diff_box

if TYPE_CHECKING:
    from app.document import Document

TILE = 128  # stroke backup granularity (px)


class Stroke:
    """A stroke being painted: dabs go into the layers live; :meth:`finish` pushes one undo command.

    Before a tile of a layer is first touched its old values are copied (128 x 128 tiles), so the
    command can hold the stroke's old and new values for its bounding box only.
    """

    def __init__(self, doc: Document, text: str, writes: dict[str, bool]) -> None:
        self._doc = doc
        self.text = text
        self.writes = dict(writes)
        self._backup: dict[tuple[str, int, int], np.ndarray] = {}
        self.box: Box | None = None
        self.finished = False

    def _save_tiles(self, layer: str, box: Box) -> None:
        array = self._doc.layer(layer)
        x0, y0, x1, y1 = box
        for ty in range(y0 // TILE, (y1 - 1) // TILE + 1):
            for tx in range(x0 // TILE, (x1 - 1) // TILE + 1):
                key = (layer, ty, tx)
                if key not in self._backup:
                    self._backup[key] = array[ty * TILE : (ty + 1) * TILE, tx * TILE : (tx + 1) * TILE].copy()

    def stamp(self, box: Box, footprint: np.ndarray) -> None:
        """Set the stroke's layers to their values where ``footprint`` (a bool array of ``box``'s size) is set."""
        if self.finished:
            raise RuntimeError("stroke already finished")
        x0, y0, x1, y1 = box
        for layer, value in self.writes.items():
            self._save_tiles(layer, box)
            self._doc.layer(layer)[y0:y1, x0:x1][footprint] = value
            if value:
                self._doc._extend(layer, box)
        self.box = Box(*box).union(self.box)
        self._doc._notify(self._layer_group(), box)

    def segment(self, p0: tuple[float, float], p1: tuple[float, float], size: float) -> None:
        """Sweep a round brush of diameter ``size`` (document px) from ``p0`` to ``p1``."""
        hit = mask_ops.capsule(p0, p1, size / 2.0, self._doc.height, self._doc.width)
        if hit is not None:
            self.stamp(*hit)

    def fill_box(self, box: Box) -> None:
        """Set the stroke's layers in a whole box (rectangle tool)."""
        clipped = Box(*box).clip(self._doc.image.shape)
        if clipped is not None:
            self.stamp(clipped, np.ones((clipped.height, clipped.width), dtype=bool))

    def rebase(self, command, undone: bool) -> None:
        """Another edit ran mid-stroke (undo shortcut, a fill arriving): make it part of the stroke's baseline.

        The command already wrote its old (``undone``) or new values into the layers, over the stroke's
        dabs too; writing the same into the saved tiles keeps this stroke's undo step consistent.
        """
        if isinstance(command, InvertMaskCommand):
            for (layer, _ty, _tx), tile in self._backup.items():
                if layer == "mask":
                    np.logical_not(tile, out=tile)
            return
        for patch in getattr(command, "patches", []):
            values = patch.old if undone else patch.new
            for (layer, ty, tx), tile in self._backup.items():
                if layer != patch.layer:
                    continue
                tile_box = Box.from_xywh(tx * TILE, ty * TILE, tile.shape[1], tile.shape[0])
                common = patch.box.intersection(tile_box)
                if common is not None:
                    tile[common.offset(-tile_box.x0, -tile_box.y0).slices()] = \
                        values[common.offset(-patch.x, -patch.y).slices()]

    def _layer_group(self) -> str:
        return "mask" if "mask" in self.writes else "sketch"

    def finish(self) -> StrokeCommand | None:
        """End the stroke and push one command for it; None (and nothing pushed) if it changed nothing.

        The command keeps, per touched 128 px tile, the box of what changed there: a long diagonal stroke
        across a 24 MP photo stores a band of tiles, not its whole bounding box (about 13x less).
        """
        if self.finished:
            return None
        self.finished = True
        self._doc._stroke_ended(self)
        patches = []
        for (layer, ty, tx), old in sorted(self._backup.items()):
            x0, y0 = tx * TILE, ty * TILE
            new = self._doc.layer(layer)[y0 : y0 + old.shape[0], x0 : x0 + old.shape[1]]
            tight = diff_box(old, new)
            if tight is None:
                continue
            bx0, by0, bx1, by1 = tight
            patches.append(Patch.make(layer, x0 + bx0, y0 + by0, old[by0:by1, bx0:bx1], new[by0:by1, bx0:bx1]))
        self._backup.clear()
        if not patches:
            return None
        command = StrokeCommand(self._doc, self.text, patches, applied=True)
        self._doc.undo_stack.push(command)
        return command

    def cancel(self) -> None:
        """Undo the stroke's dabs without leaving a command (e.g. Escape while dragging)."""
        if self.finished:
            return
        self.finished = True
        self._doc._stroke_ended(self)
        for (layer, ty, tx), tile in self._backup.items():
            y0, x0 = ty * TILE, tx * TILE
            self._doc.layer(layer)[y0 : y0 + tile.shape[0], x0 : x0 + tile.shape[1]] = tile
            self._doc._track_write(layer, x0, y0, tile)
        if self.box is not None:
            self._doc._notify(self._layer_group(), self.box)
        self._backup.clear()
