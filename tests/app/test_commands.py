"""Undo commands: packed storage, redo/undo, first-redo skip, dict round trip."""

from __future__ import annotations

import numpy as np
import pytest

from app.commands import (
    BitmapEditCommand,
    FillCommand,
    InvertMaskCommand,
    Patch,
    StrokeCommand,
    command_from_state,
)


class FakeDoc:
    def __init__(self):
        self.image = np.zeros((20, 30, 3), np.uint8)
        self.mask = np.zeros((20, 30), bool)
        self.writes = 0

    def write_patch(self, layer, x, y, values):
        self.writes += 1
        arr = getattr(self, layer)
        arr[y : y + values.shape[0], x : x + values.shape[1]] = values

    def invert_mask(self):
        np.logical_not(self.mask, out=self.mask)


def test_patch_packs_bools_and_round_trips():
    old = np.zeros((7, 13), bool)
    new = np.random.default_rng(0).random((7, 13)) > 0.5
    p = Patch.make("mask", 3, 4, old, new)
    assert p.packed and p.old_data.nbytes == (7 * 13 + 7) // 8
    assert np.array_equal(p.new, new) and not p.old.any()
    assert p.box == (3, 4, 16, 11)
    q = Patch.from_state(p.to_state("x."), "x.")
    assert np.array_equal(q.new, new) and q.box == p.box
    with pytest.raises(ValueError):
        Patch.make("nope", 0, 0, old, new)


def test_bitmap_command_redo_undo_and_applied_skip():
    doc = FakeDoc()
    new = np.full((2, 3, 3), 200, np.uint8)
    cmd = BitmapEditCommand(doc, "t", [Patch.make("image", 1, 1, doc.image[1:3, 1:4], new)])
    cmd.redo()
    assert (doc.image[1:3, 1:4] == 200).all()
    cmd.undo()
    assert not doc.image.any()
    doc.mask[0, 0] = True  # already painted live
    applied = StrokeCommand(doc, "s", [Patch.make("mask", 0, 0, np.zeros((1, 1), bool), np.ones((1, 1), bool))],
                            applied=True)
    writes = doc.writes
    applied.redo()
    assert doc.writes == writes  # first redo skipped
    applied.undo()
    assert not doc.mask[0, 0]
    applied.redo()
    assert doc.mask[0, 0]


def test_state_round_trip_keeps_kind_text_and_values():
    doc = FakeDoc()
    patches = [Patch.make("image", 2, 3, np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 7, np.uint8)),
               Patch.make("mask", 0, 0, np.ones((3, 3), bool), np.zeros((3, 3), bool))]
    for cmd in (FillCommand(doc, "Fill (telea)", patches), InvertMaskCommand(doc)):
        state = cmd.to_state("c0.")
        assert all(isinstance(v, (int, np.ndarray)) for v in state.values())
        back = command_from_state(doc, state, "c0.")
        assert type(back) is type(cmd) and back.text() == cmd.text()
    back = command_from_state(doc, FillCommand(doc, "F", patches).to_state(""), "")
    back.redo()
    assert (doc.image[3:5, 2:4] == 7).all()
    assert [p.box for p in back.image_patches] == [(2, 3, 4, 5)]


def test_fill_with_several_image_patches_round_trips_and_undoes_all():
    doc = FakeDoc()
    far = [Patch.make("image", 1, 1, doc.image[1:3, 1:3], np.full((2, 2, 3), 5, np.uint8)),
           Patch.make("mask", 0, 0, np.ones((2, 2), bool), np.zeros((2, 2), bool)),
           Patch.make("image", 25, 15, doc.image[15:19, 25:29], np.full((4, 4, 3), 9, np.uint8))]
    cmd = FillCommand(doc, "Fill", far)
    assert [p.box for p in cmd.image_patches] == [(1, 1, 3, 3), (25, 15, 29, 19)]
    assert cmd.nbytes == 2 * 3 * (4 + 16) + 2  # two small boxes, not the 28 x 18 box spanning them
    back = command_from_state(doc, cmd.to_state("c3."), "c3.")
    assert [p.box for p in back.image_patches] == [(1, 1, 3, 3), (25, 15, 29, 19)]
    back.redo()
    assert (doc.image[1:3, 1:3] == 5).all() and (doc.image[15:19, 25:29] == 9).all()
    assert int(doc.image.astype(bool).any(axis=2).sum()) == 20
    back.undo()
    assert not doc.image.any() and doc.mask[:2, :2].all()
