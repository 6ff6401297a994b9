"""The document's undo history as a flat dict of numpy arrays and ints, and back (session autosave/recovery).

The state describes the commands relative to the current layers: save the layers with it and, on recovery,
load them first (``Document.set_layers``), then restore the history. ``np.savez`` writes the dict and
``np.load(..., allow_pickle=False)`` reads it: no pickle anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from app.commands import command_from_state

if TYPE_CHECKING:
    from app.document import Document

HISTORY_VERSION = 1


def history_state(doc: Document) -> dict[str, np.ndarray | int]:
    """The undo history of ``doc`` as a flat dict of numpy arrays and ints (``np.savez``-able, no pickle)."""
    stack = doc.undo_stack
    state: dict[str, np.ndarray | int] = {
        "version": HISTORY_VERSION,
        "count": stack.count(),
        "index": stack.index(),
        "clean_index": stack.cleanIndex(),
        "height": doc.height,
        "width": doc.width,
    }
    for i in range(stack.count()):
        state.update(stack.command(i).to_state(f"c{i}."))
    return state


def commands_from_state(doc: Document, state: dict) -> list:
    """The commands of a saved history, rebuilt for ``doc``; ValueError for a state that does not fit its photo."""
    if int(state["version"]) != HISTORY_VERSION:
        raise ValueError(f"unsupported history version {int(state['version'])}")
    if (int(state["height"]), int(state["width"])) != (doc.height, doc.width):
        raise ValueError("the saved history belongs to a photo of another size")
    count, index, clean = int(state["count"]), int(state["index"]), int(state["clean_index"])
    if not (0 <= index <= count and -1 <= clean <= count):
        raise ValueError("inconsistent history indices")
    commands = [command_from_state(doc, state, f"c{i}.") for i in range(count)]
    for command in commands:
        for patch in getattr(command, "patches", []):
            x0, y0, x1, y1 = patch.box
            layer = doc.layer(patch.layer)
            if x0 < 0 or y0 < 0 or x1 > doc.width or y1 > doc.height or layer.shape[2:] != patch.shape[2:]:
                raise ValueError("a saved edit lies outside the photo")
    return commands


def replay(doc: Document, commands: list, index: int, clean: int) -> None:
    """Rewind ``doc``'s layers to the state before the first command, then replay through its stack, quietly.

    The layers end up as they are now (the state at ``index``); ``clean`` (-1: none) is the saved index.
    """
    stack = doc.undo_stack
    signals = doc.blockSignals(True)
    try:
        stack.clear()
        for command in reversed(commands[:index]):
            command.undo()
        for command in commands:
            stack.push(command)
        if clean >= 0:
            stack.setIndex(clean)
            stack.setClean()
        else:
            stack.resetClean()
        stack.setIndex(index)
    finally:
        doc.blockSignals(signals)
