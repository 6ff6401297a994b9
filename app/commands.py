"""Undo commands of the document: each stores only changed boxes of the layers, old and new.

Commands talk to their document through two methods only, ``write_patch(layer, x, y, values)`` and
``invert_mask()``, so they can be tested and rebuilt (session recovery) without a window. Every command
turns into a flat dict of numpy arrays and ints (``to_state``) and back (``command_from_state``), so a
session autosave writes them with ``np.savez`` and reads them with ``allow_pickle=False``.

Commands hold their document through a weak reference. The undo stack (a child of the document) owns
the commands; a strong reference back would make a cycle through PySide's ownership links, and when the
garbage collector broke it the command wrappers could be freed before the stack deleted them (a double
delete and a segfault at exit or at a ``gc.collect()``).

Bool patches are stored bit-packed (``np.packbits``): 8x smaller, so even an inverted 24 MP mask costs
6 MB of history rather than 48 MB.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PySide6.QtGui import QUndoCommand

from engine.box import Box

LAYERS = ("image", "mask", "sketch_drawn", "sketch_erased")
"""Undoable layers; their index is what the serialised form stores."""

KIND_BITMAP, KIND_STROKE, KIND_FILL, KIND_INVERT = 0, 1, 2, 3


class PatchTarget(Protocol):
    """What a command needs from the document."""

    def write_patch(self, layer: str, x: int, y: int, values: np.ndarray) -> None: ...

    def invert_mask(self) -> None: ...


@dataclass(eq=False)
class Patch:
    """Old and new values of one layer's box at ``(x, y)``; bool values are kept bit-packed."""

    layer: str
    x: int
    y: int
    shape: tuple[int, ...]
    old_data: np.ndarray
    new_data: np.ndarray
    packed: bool

    @classmethod
    def make(cls, layer: str, x: int, y: int, old: np.ndarray, new: np.ndarray) -> Patch:
        """A patch from plain old/new arrays (copied; bools packed)."""
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}")
        if old.shape != new.shape:
            raise ValueError(f"old and new values differ in shape: {old.shape} vs {new.shape}")
        packed = old.dtype == np.bool_
        if packed:
            return cls(layer, int(x), int(y), tuple(old.shape), np.packbits(old, axis=None),
                       np.packbits(new.astype(bool), axis=None), True)
        return cls(layer, int(x), int(y), tuple(old.shape), np.array(old, copy=True),
                   np.array(new, dtype=old.dtype, copy=True), False)

    def _unpack(self, data: np.ndarray) -> np.ndarray:
        if not self.packed:
            return data
        count = int(np.prod(self.shape))
        return np.unpackbits(data, count=count).view(np.bool_).reshape(self.shape)

    @property
    def old(self) -> np.ndarray:
        """Values before the edit."""
        return self._unpack(self.old_data)

    @property
    def new(self) -> np.ndarray:
        """Values after the edit."""
        return self._unpack(self.new_data)

    @property
    def box(self) -> Box:
        """The patch's box in document pixels."""
        return Box.from_xywh(self.x, self.y, self.shape[1], self.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the stored values."""
        return int(self.old_data.nbytes + self.new_data.nbytes)

    def to_state(self, prefix: str) -> dict[str, np.ndarray | int]:
        """Flat dict of arrays and ints under ``prefix``."""
        return {
            f"{prefix}layer": LAYERS.index(self.layer),
            f"{prefix}x": self.x,
            f"{prefix}y": self.y,
            f"{prefix}shape": np.asarray(self.shape, dtype=np.int64),
            f"{prefix}old": self.old_data,
            f"{prefix}new": self.new_data,
            f"{prefix}packed": int(self.packed),
        }

    @classmethod
    def from_state(cls, state: dict, prefix: str) -> Patch:
        """Inverse of :meth:`to_state`; raises ValueError on inconsistent data."""
        layer_index = int(state[f"{prefix}layer"])
        if not 0 <= layer_index < len(LAYERS):
            raise ValueError(f"bad layer index {layer_index}")
        shape = tuple(int(v) for v in np.asarray(state[f"{prefix}shape"]).ravel())
        packed = bool(int(state[f"{prefix}packed"]))
        old, new = np.asarray(state[f"{prefix}old"]), np.asarray(state[f"{prefix}new"])
        expected = (int(np.prod(shape)) + 7) // 8 if packed else None
        if packed and (old.size != expected or new.size != expected):
            raise ValueError("packed patch data has the wrong size")
        if not packed and (old.shape != shape or new.shape != shape):
            raise ValueError("patch data does not match its shape")
        return cls(LAYERS[layer_index], int(state[f"{prefix}x"]), int(state[f"{prefix}y"]), shape,
                   old.astype(np.uint8, copy=False) if packed else old, new.astype(np.uint8, copy=False)
                   if packed else new, packed)


class _TargetRef:
    """A weak reference to the command's document; raises a clear error once the document is gone."""

    def __init__(self, target: PatchTarget) -> None:
        self._ref = weakref.ref(target)

    def get(self) -> PatchTarget:
        target = self._ref()
        if target is None:
            raise RuntimeError("the document of this edit no longer exists")
        return target


class BitmapEditCommand(QUndoCommand):
    """Replaces boxes of one or more layers: redo writes the new values, undo the old ones.

    With ``applied=True`` the edit is already in the layers (a stroke painted live): the first ``redo()``,
    which ``QUndoStack.push`` calls, does nothing, so the edit is not applied twice.
    """

    kind = KIND_BITMAP

    def __init__(self, target: PatchTarget, text: str, patches: list[Patch], applied: bool = False) -> None:
        super().__init__(text)
        self._target = _TargetRef(target)
        self.patches = list(patches)
        self._skip_redo = applied

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        target = self._target.get()
        for p in self.patches:
            target.write_patch(p.layer, p.x, p.y, p.new)

    def undo(self) -> None:
        target = self._target.get()
        for p in reversed(self.patches):
            target.write_patch(p.layer, p.x, p.y, p.old)

    @property
    def nbytes(self) -> int:
        """Memory held by this command's stored values."""
        return sum(p.nbytes for p in self.patches)

    def to_state(self, prefix: str) -> dict[str, np.ndarray | int]:
        """Flat dict of arrays and ints under ``prefix``."""
        state: dict[str, np.ndarray | int] = {
            f"{prefix}kind": self.kind,
            f"{prefix}text": np.frombuffer(self.text().encode("utf-8"), dtype=np.uint8).copy(),
            f"{prefix}patches": len(self.patches),
        }
        for i, p in enumerate(self.patches):
            state.update(p.to_state(f"{prefix}p{i}."))
        return state


class StrokeCommand(BitmapEditCommand):
    """One brush, eraser or edge-pen stroke (all its dabs), pushed when the mouse is released."""

    kind = KIND_STROKE


class FillCommand(BitmapEditCommand):
    """A fill as one step: one photo patch per filled region, plus the mask and sketch it cleared, if any.

    Far-apart objects are separate regions of the engine, so each gets its own changed box: the command
    stores (and a compare or an undo touches) those boxes only, never the box spanning all of them.
    """

    kind = KIND_FILL

    @property
    def image_patches(self) -> list[Patch]:
        """The changed boxes of the photo (one per filled region that changed)."""
        return [p for p in self.patches if p.layer == "image"]

    def mark_filled(self, region: np.ndarray) -> None:
        """Set in ``region`` (H x W bool) the pixels this fill put into the photo: those it changed, and the hole
        it cleared from the mask (which includes hole pixels the fill happened to leave at their old value)."""
        for p in self.patches:
            x0, y0, x1, y1 = p.box
            if p.layer == "image":
                changed = p.old != p.new
                region[y0:y1, x0:x1] |= changed.any(axis=-1) if changed.ndim == 3 else changed
            elif p.layer == "mask":
                region[y0:y1, x0:x1] |= p.old & ~p.new


class InvertMaskCommand(QUndoCommand):
    """Inverts the mask; its own inverse, so it stores nothing."""

    kind = KIND_INVERT
    nbytes = 0

    def __init__(self, target: PatchTarget, text: str = "Invert mask") -> None:
        super().__init__(text)
        self._target = _TargetRef(target)

    def redo(self) -> None:
        self._target.get().invert_mask()

    def undo(self) -> None:
        self._target.get().invert_mask()

    def to_state(self, prefix: str) -> dict[str, np.ndarray | int]:
        """Flat dict of arrays and ints under ``prefix``."""
        return {f"{prefix}kind": self.kind,
                f"{prefix}text": np.frombuffer(self.text().encode("utf-8"), dtype=np.uint8).copy()}


_BITMAP_CLASSES = {KIND_BITMAP: BitmapEditCommand, KIND_STROKE: StrokeCommand, KIND_FILL: FillCommand}


def command_from_state(target: PatchTarget, state: dict, prefix: str) -> QUndoCommand:
    """Rebuild a command saved with ``to_state(prefix)``; it is not applied (first redo writes its values)."""
    kind = int(state[f"{prefix}kind"])
    text = bytes(np.asarray(state[f"{prefix}text"], dtype=np.uint8)).decode("utf-8", errors="replace")
    if kind == KIND_INVERT:
        return InvertMaskCommand(target, text)
    if kind not in _BITMAP_CLASSES:
        raise ValueError(f"unknown command kind {kind}")
    count = int(state[f"{prefix}patches"])
    patches = [Patch.from_state(state, f"{prefix}p{i}.") for i in range(count)]
    return _BITMAP_CLASSES[kind](target, text, patches)
