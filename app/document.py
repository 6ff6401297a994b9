"""The document model: the photo, its mask and edge sketch, and their undo history.

One ``Document`` owns the canvas state (DESIGN habit 1); views draw it and tools turn input into its
edits. Every edit goes through the ``QUndoStack`` as a small command storing only the changed box
(habit 2); "modified" is ``not undo_stack.isClean()``.

Layers are numpy arrays edited in place: ``image`` H x W x 3 uint8, ``mask``/``sketch_drawn``/
``sketch_erased`` H x W bool (C-contiguous, so views may wrap them in QImages without copies). Anything
handed to another thread (``fill_request``) is a copy. Layers are written only through the document
(strokes, ``write_patch``, ``set_layers``...): it tracks for each bool layer an *extent*, a few boxes
holding all its set pixels, so clearing the mask after a fill scans those boxes, not the whole photo.

Parts kept in their own modules: :mod:`app.stroke` (a stroke being painted), :mod:`app.extent` (the boxes
tracked per bool layer), :mod:`app.history` (the undo history as plain arrays, for the autosave) and
:mod:`app.commands` (the undo commands).

Signals: ``changed(QRect)`` the document rect whose pixels changed (views repaint only that);
``layer_changed(str, QRect)`` the same per layer (``"image"``, ``"mask"``, ``"sketch"``, ``"edges"``);
``image_replaced()`` a new photo (size may differ: views reset); ``modified_changed(bool)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRect, QSize, Signal
from PySide6.QtGui import QUndoStack

from app import history, mask_ops
from app.commands import LAYERS, BitmapEditCommand, FillCommand, InvertMaskCommand, Patch, StrokeCommand
from app.extent import Extent
from app.rects import box_to_rect
from app.stroke import Stroke
from engine.api import FillOptions, FillRequest, FillResult
from engine.box import Box, bbox_of, diff_box, merge_boxes
from engine.errors import MaskError

BOOL_LAYERS = ("mask", "sketch_drawn", "sketch_erased")


class Document(QObject):
    """Canvas state of one photo: layers, predicted edges, undo stack. See the module docstring."""

    changed = Signal(QRect)
    layer_changed = Signal(str, QRect)
    image_replaced = Signal()
    modified_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.source: Any = None  # engine.imageio.LoadedImage of the opened file, or None
        self.image = np.zeros((0, 0, 3), dtype=np.uint8)
        self.mask = np.zeros((0, 0), dtype=bool)
        self.sketch_drawn = np.zeros((0, 0), dtype=bool)
        self.sketch_erased = np.zeros((0, 0), dtype=bool)
        self.predicted_edges: np.ndarray | None = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.undo_stack.indexChanged.connect(self._on_index_changed)
        self._stroke: Stroke | None = None
        self._last_index = 0
        self._extent: dict[str, Extent] = {name: Extent() for name in BOOL_LAYERS}

    def _on_clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)

    def _on_index_changed(self, index: int) -> None:
        previous, self._last_index = self._last_index, index
        stroke = self._stroke
        if stroke is None or stroke.finished:
            return
        if index < previous:
            for i in range(previous - 1, index - 1, -1):
                stroke.rebase(self.undo_stack.command(i), undone=True)
        else:
            for i in range(previous, index):
                stroke.rebase(self.undo_stack.command(i), undone=False)

    def _stroke_ended(self, stroke: Stroke) -> None:
        if self._stroke is stroke:
            self._stroke = None

    def _push(self, command) -> None:
        """Push an edit; a stroke still being dragged is first ended as its own undo step (a fill landing or a
        shortcut mid-drag). Its dabs are already in the layers, so ending it changes no pixel and patches
        computed before stay right; but pushed after this edit, the stroke would record the edit as its own
        baseline and undoing everything would leave its dabs behind. The rest of that drag paints nothing."""
        if self._stroke is not None and not self._stroke.finished:
            self._stroke.finish()
        self.undo_stack.push(command)

    def _drop_stroke(self) -> None:
        if self._stroke is not None:
            self._stroke.finished = True
            self._stroke = None

    # ----------------------------------------------------------------- basics
    @property
    def width(self) -> int:
        """Photo width in pixels (0 when empty)."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Photo height in pixels (0 when empty)."""
        return int(self.image.shape[0])

    def size(self) -> QSize:
        """Photo size."""
        return QSize(self.width, self.height)

    def rect(self) -> QRect:
        """The whole photo in document coordinates."""
        return QRect(0, 0, self.width, self.height)

    def is_empty(self) -> bool:
        """True before a photo is loaded."""
        return self.image.size == 0

    def is_modified(self) -> bool:
        """Unsaved edits exist (derived from the undo stack's clean state)."""
        return not self.undo_stack.isClean()

    def pixels_changed_since_saved(self) -> bool:
        """True when the photo's pixels differ from the file last opened or saved: a fill was applied or undone
        since (mask and sketch edits do not change pixels). True for a photo that has no file."""
        if self.source is None or getattr(self.source, "path", None) is None:
            return True
        stack = self.undo_stack
        clean = stack.cleanIndex()
        if clean < 0:  # the saved state is no longer reachable through the history
            return True
        low, high = sorted((clean, stack.index()))
        return any(isinstance(stack.command(i), FillCommand) for i in range(low, high))

    def mark_saved(self) -> None:
        """The current state is what is on disk."""
        self.undo_stack.setClean()

    def layer(self, name: str) -> np.ndarray:
        """The live array of an undoable layer (``image``, ``mask``, ``sketch_drawn``, ``sketch_erased``)."""
        if name not in LAYERS:
            raise KeyError(f"unknown layer {name!r}")
        return getattr(self, name)

    # ----------------------------------------------------------------- loading
    def load(self, loaded: Any) -> None:
        """Start editing a ``LoadedImage`` (anything with an ``rgb`` H x W x 3 uint8): empty mask, new history."""
        self.load_array(loaded.rgb, source=loaded)

    def load_array(self, rgb: np.ndarray, source: Any = None) -> None:
        """Start editing an RGB array (copied); ``source`` is kept as :attr:`source`."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H x W x 3 uint8 image, got {rgb.shape} {rgb.dtype}")
        self._drop_stroke()
        self.source = source
        self.image = np.array(rgb, dtype=np.uint8, order="C", copy=True)
        h, w = self.image.shape[:2]
        self.mask = np.zeros((h, w), dtype=bool)
        self.sketch_drawn = np.zeros((h, w), dtype=bool)
        self.sketch_erased = np.zeros((h, w), dtype=bool)
        self._extent = {name: Extent() for name in BOOL_LAYERS}
        self.predicted_edges = None
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.image_replaced.emit()
        self.changed.emit(self.rect())

    def set_layers(self, mask: np.ndarray | None = None, sketch_drawn: np.ndarray | None = None,
                   sketch_erased: np.ndarray | None = None, image: np.ndarray | None = None) -> None:
        """Replace layers without history (session recovery restores them before ``restore_history``)."""
        for name, value in (("image", image), ("mask", mask), ("sketch_drawn", sketch_drawn),
                            ("sketch_erased", sketch_erased)):
            if value is None:
                continue
            current = self.layer(name)
            if value.shape != current.shape:
                raise MaskError(f"the {name.replace('_', ' ')} is {value.shape[1]} x {value.shape[0]} but the "
                                f"photo is {self.width} x {self.height}")
            current[...] = value
            if name in self._extent:
                self._extent[name] = Extent([bbox_of(current)])
        self._notify("all", Box.of_shape(self.image.shape))

    # ------------------------------------------------------------ command target
    def write_patch(self, layer: str, x: int, y: int, values: np.ndarray) -> None:
        """Write ``values`` into ``layer`` at ``(x, y)`` (used by undo commands)."""
        h, w = values.shape[:2]
        self.layer(layer)[y : y + h, x : x + w] = values
        self._track_write(layer, x, y, values)
        group = "image" if layer == "image" else "mask" if layer == "mask" else "sketch"
        self._notify(group, Box.from_xywh(x, y, w, h))

    def invert_mask(self) -> None:
        """Invert the mask in place (used by :class:`InvertMaskCommand`)."""
        np.logical_not(self.mask, out=self.mask)
        whole = Box.of_shape(self.mask.shape)
        self._extent["mask"] = Extent([whole] if self.mask.size else [])
        self._notify("mask", whole)

    def _notify(self, group: str, box: Box) -> None:
        rect = box_to_rect(box)
        self.layer_changed.emit(group, rect)
        self.changed.emit(rect)

    # ----------------------------------------------------------- layer extents
    def _extend(self, layer: str, box: Box) -> None:
        """Pixels of a bool layer may have been set inside ``box``: widen its extent."""
        if layer in self._extent:
            self._extent[layer].add(box)

    def _track_write(self, layer: str, x: int, y: int, values: np.ndarray) -> None:
        """``values`` were written at ``(x, y)``: keep the layer's extent a superset of its set pixels.

        Costs the written box only; extent boxes inside it are replaced by the exact bounding box of
        ``values``, so undoing an edit usually shrinks the extent back.
        """
        if layer in self._extent:
            content = bbox_of(values)
            self._extent[layer].written(Box.from_xywh(x, y, values.shape[1], values.shape[0]),
                                        None if content is None else content.offset(x, y))

    def extent(self, layer: str) -> list[Box]:
        """Boxes that together hold every set pixel of a bool layer ([] when it is empty)."""
        return list(self._extent[layer].boxes)

    def content_boxes(self, layer: str, known: list[Box] | tuple[Box, ...] = ()) -> list[Box]:
        """Exact bounding boxes of the set pixels of a bool layer, together holding all of them ([]: empty).

        Scans the ``known`` boxes (a fill's regions) and the layer's tracked extent only (see
        :meth:`app.extent.Extent.content_boxes`), so the cost follows what was painted, not the photo size.
        """
        return self._extent[layer].content_boxes(self.layer(layer), known)

    # ------------------------------------------------------------------ editing
    def begin_stroke(self, tool: str) -> Stroke:
        """A live stroke for ``tool``: ``brush``, ``eraser``, ``edge_pen``, ``edge_eraser``, ``rectangle``."""
        writes = {
            "brush": ("Brush stroke", {"mask": True}),
            "rectangle": ("Rectangle", {"mask": True}),
            "eraser": ("Erase mask", {"mask": False}),
            "edge_pen": ("Draw edges", {"sketch_drawn": True, "sketch_erased": False}),
            "edge_eraser": ("Erase edges", {"sketch_drawn": False, "sketch_erased": True}),
        }
        if tool not in writes:
            raise ValueError(f"no stroke for tool {tool!r}")
        text, values = writes[tool]
        if self._stroke is not None:
            self._stroke.finish()
        self._stroke = Stroke(self, text, values)
        return self._stroke

    def add_rectangle(self, box: Box, value: bool = True) -> StrokeCommand | None:
        """Add (or with ``value=False`` remove) a box of the mask as one undo step."""
        stroke = self.begin_stroke("rectangle" if value else "eraser")
        stroke.fill_box(box)
        return stroke.finish()

    def _push_layer_change(self, layer: str, text: str, box, new_values: np.ndarray,
                           cls: type[BitmapEditCommand] = BitmapEditCommand) -> BitmapEditCommand | None:
        """Push a command replacing ``box`` of ``layer`` by ``new_values``, trimmed to what differs."""
        x0, y0, x1, y1 = box
        old = self.layer(layer)[y0:y1, x0:x1]
        tight = diff_box(old, new_values)
        if tight is None:
            return None
        tx0, ty0, tx1, ty1 = tight
        patch = Patch.make(layer, x0 + tx0, y0 + ty0, old[ty0:ty1, tx0:tx1], new_values[ty0:ty1, tx0:tx1])
        command = cls(self, text, [patch])
        self._push(command)
        return command

    def grow_mask(self, n: int) -> bool:
        """Dilate the mask by ``n`` px (halos, shadows) as one undo step; False if nothing changed."""
        region = mask_ops.grow_region(self.mask, int(n))
        return region is not None and self._push_layer_change("mask", f"Grow mask {n} px", *region) is not None

    def shrink_mask(self, n: int) -> bool:
        """Erode the mask by ``n`` px as one undo step; False if nothing changed."""
        region = mask_ops.shrink_region(self.mask, int(n))
        return region is not None and self._push_layer_change("mask", f"Shrink mask {n} px", *region) is not None

    def clear_mask(self) -> bool:
        """Empty the mask as one undo step; False if it was empty."""
        patches = self._clear_patches(("mask",))
        if not patches:
            return False
        self._push(BitmapEditCommand(self, "Clear mask", patches))
        return True

    def invert_mask_command(self) -> bool:
        """Invert the mask as one undo step (stores nothing: inversion is its own inverse)."""
        if self.is_empty():
            return False
        self._push(InvertMaskCommand(self))
        return True

    def clear_sketch(self) -> bool:
        """Remove all drawn and erased edges as one undo step; False if there were none."""
        patches = self._clear_patches(("sketch_drawn", "sketch_erased"))
        if not patches:
            return False
        self._push(BitmapEditCommand(self, "Clear edge sketch", patches))
        return True

    def import_mask(self, mask: np.ndarray) -> bool:
        """Replace the mask by ``mask`` (bool H x W of the photo's size) as one undo step."""
        mask = np.asarray(mask)
        if mask.shape != self.mask.shape:
            raise MaskError(f"The mask is {mask.shape[1] if mask.ndim > 1 else '?'} x {mask.shape[0]} pixels "
                            f"but the photo is {self.width} x {self.height}.")
        return self._push_layer_change("mask", "Import mask", Box.of_shape(self.mask.shape),
                                       mask.astype(bool)) is not None

    def _clear_patches(self, layers, known: list[Box] | tuple[Box, ...] = ()) -> list[Patch]:
        """Patches setting ``layers`` to False: one per box of set pixels (see :meth:`content_boxes`)."""
        patches = []
        for layer in layers:
            for x0, y0, x1, y1 in self.content_boxes(layer, known):
                old = self.layer(layer)[y0:y1, x0:x1]
                patches.append(Patch.make(layer, x0, y0, old, np.zeros_like(old)))
        return patches

    # --------------------------------------------------------------------- fill
    def fill_request(self, model: str = "default", options: FillOptions | None = None) -> FillRequest:
        """A request for the engine with copies of the layers (safe to hand to the worker thread)."""
        return FillRequest(
            image=self.image.copy(),
            mask=self.mask.copy(),
            sketch_drawn=self.sketch_drawn.copy() if self.sketch_drawn.any() else None,
            sketch_erased=self.sketch_erased.copy() if self.sketch_erased.any() else None,
            model=model,
            options=options if options is not None else FillOptions(),
        )

    def apply_fill(self, result: FillResult, clear_mask: bool = True,
                   sent: FillRequest | None = None) -> FillCommand | None:
        """Put a fill's result in place as one undo step storing, per filled region, only its changed box.

        ``result.regions`` are the engine's crop boxes; within each (overlapping ones merged) only the
        bounding box of the changed pixels is kept, old and new, so two far-apart objects cost two small
        patches, not the box spanning both. A result without regions (not from the engine, which always
        reports them when it changed something) is compared over the whole photo. With ``clear_mask``
        the mask and the edge sketch are cleared in the same step, scanning their tracked extents only.

        ``sent`` is the request the fill was computed for, when the person may have kept editing while it ran:
        then only pixels that were sent *and* are still masked take the fill (a part erased from the mask
        meanwhile stays as it is), and only what was sent is cleared (a stroke painted meanwhile, for the next
        fill, stays). Returns the command, or None when nothing changed.
        """
        new_image = np.asarray(result.image)
        if new_image.shape != self.image.shape:
            raise MaskError(f"The fill result is {new_image.shape[1]} x {new_image.shape[0]} pixels but the photo "
                            f"is {self.width} x {self.height}.")
        patches: list[Patch] = []
        boxes = self._fill_boxes(result.regions)
        for x0, y0, x1, y1 in boxes:
            old, new = self.image[y0:y1, x0:x1], new_image[y0:y1, x0:x1]
            if sent is not None:
                still = sent.mask[y0:y1, x0:x1] & self.mask[y0:y1, x0:x1]
                new = np.where(still[..., None], new, old)
            tight = diff_box(old, new)
            if tight is not None:
                tx0, ty0, tx1, ty1 = tight
                patches.append(Patch.make("image", x0 + tx0, y0 + ty0, old[ty0:ty1, tx0:tx1], new[ty0:ty1, tx0:tx1]))
        if clear_mask:
            known = boxes if result.regions else ()
            patches += self._clear_patches(BOOL_LAYERS, known) if sent is None else self._clear_sent(sent, known)
        if not patches:
            return None
        self.set_predicted_edges(None)
        command = FillCommand(self, f"Fill ({result.backend})" if result.backend else "Fill", patches)
        self._push(command)
        if clear_mask and sent is None:  # the patches covered every set pixel: the layers are empty now
            self._extent = {name: Extent() for name in BOOL_LAYERS}
        return command

    def _clear_sent(self, sent: FillRequest, known: list[Box] | tuple[Box, ...]) -> list[Patch]:
        """Patches clearing the pixels of each layer that were set in ``sent`` (what was painted since stays)."""
        sent_layers = {"mask": sent.mask, "sketch_drawn": sent.sketch_drawn, "sketch_erased": sent.sketch_erased}
        patches = []
        for layer in BOOL_LAYERS:
            was = sent_layers[layer]
            if was is None:
                continue
            for x0, y0, x1, y1 in self.content_boxes(layer, known):
                old = self.layer(layer)[y0:y1, x0:x1]
                new = old & ~was[y0:y1, x0:x1]
                if not np.array_equal(old, new):
                    patches.append(Patch.make(layer, x0, y0, old, new))
        return patches

    def _fill_boxes(self, regions) -> list[Box]:
        """The boxes a fill may have changed: its regions clipped to the photo and merged where they overlap."""
        if not regions:
            return [Box.of_shape(self.image.shape)] if not self.is_empty() else []
        clipped = [Box(*(int(v) for v in region)).clip(self.image.shape) for region in regions]
        return merge_boxes(box for box in clipped if box is not None)

    def set_predicted_edges(self, edges: np.ndarray | None) -> None:
        """Show the edge generator's proposal (H x W, nonzero = edge); None hides it. Not part of the history.

        Predicted edges matter inside the hole only (the engine and the edge layer use them there), so
        views are told about the mask's extent, not the whole photo.
        """
        if edges is not None:
            edges = np.asarray(edges)
            if edges.shape != self.mask.shape:
                raise MaskError(f"predicted edges are {edges.shape[1]} x {edges.shape[0]} but the photo is "
                                f"{self.width} x {self.height}")
            edges = np.ascontiguousarray(edges > 0, dtype=np.uint8) * np.uint8(255)
        if edges is None and self.predicted_edges is None:
            return
        self.predicted_edges = edges
        for box in self._extent["mask"].boxes:
            self._notify("edges", box)

    def last_fill(self) -> FillCommand | None:
        """The most recent fill still applied (not undone), or None."""
        for i in range(self.undo_stack.index() - 1, -1, -1):
            command = self.undo_stack.command(i)
            if isinstance(command, FillCommand) and command.image_patches:
                return command
        return None

    def filled_in_session(self) -> np.ndarray:
        """H x W bool: every pixel that a fill still applied in this history put into the photo, i.e. what did
        not come from the file (an undone fill's pixels are the file's again; a recovered session counts)."""
        region = np.zeros(self.mask.shape, dtype=bool)
        for i in range(self.undo_stack.index()):
            command = self.undo_stack.command(i)
            if isinstance(command, FillCommand):
                command.mark_filled(region)
        return region

    def last_fill_patches(self) -> list[tuple[QRect, np.ndarray]]:
        """Rect and old pixels of each box the most recent applied fill changed (what compare shows); [] if none.

        The arrays are the history's own (no copy): read them, never write them.
        """
        command = self.last_fill()
        if command is None:
            return []
        return [(box_to_rect(patch.box), patch.old) for patch in command.image_patches]

    def image_before_last_fill(self) -> np.ndarray | None:
        """A copy of the photo as it was before the most recent applied fill; None if no fill is applied.

        Only fills change the photo, so the current photo with that fill's boxes restored is exactly it.
        (A whole-photo copy: for tests and exports, not for the GUI thread's hot paths.)
        """
        patches = self.last_fill_patches()
        if not patches:
            return None
        image = self.image.copy()
        for rect, old in reversed(patches):
            image[rect.y() : rect.y() + rect.height(), rect.x() : rect.x() + rect.width()] = old
        return image

    # ------------------------------------------------------------------ history
    def history_bytes(self) -> int:
        """Memory held by the undo history's stored values."""
        return sum(int(getattr(self.undo_stack.command(i), "nbytes", 0)) for i in range(self.undo_stack.count()))

    def history_state(self) -> dict[str, np.ndarray | int]:
        """The undo history as a flat dict of numpy arrays and ints (``np.savez``-able, no pickle).

        It describes the commands relative to the current layers: save the layers with it and, on
        recovery, load them first, then call :meth:`restore_history`.
        """
        return history.history_state(self)

    def restore_history(self, state: dict) -> None:
        """Rebuild the undo stack from :meth:`history_state`, the layers being those saved with it.

        The layers end up exactly as they were; undo/redo and the clean (saved) index work as before.
        Raises ValueError for a state that does not fit this photo (the layers are then left unchanged).
        """
        commands = history.commands_from_state(self, state)
        self._drop_stroke()
        history.replay(self, commands, int(state["index"]), int(state["clean_index"]))
        self.modified_changed.emit(self.is_modified())
        self._notify("all", Box.of_shape(self.image.shape))
