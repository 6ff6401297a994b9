"""Document model: strokes, mask ops, fills, undo/redo, bounded memory and history round trips."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest
from PySide6.QtCore import QRect

import app.document as document_module
import app.extent as extent_module
import engine.box as box_module
from app.commands import FillCommand, StrokeCommand
from app.document import Document
from engine.api import FillResult
from engine.errors import MaskError


def npz_round_trip(state: dict, folder) -> dict:
    """Write a history state as the session autosave does (.npz) and read it back without pickle."""
    np.savez(folder / "h.npz", **state)
    with np.load(folder / "h.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture
def doc(qapp):
    d = Document()
    rng = np.random.default_rng(1)
    d.load_array(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    return d


def fake_fill(doc: Document, value: int = 0, regions=None) -> FillResult:
    """Fills the masked pixels with a constant, as an engine would (only the hole changes)."""
    out = doc.image.copy()
    out[doc.mask] = value
    return FillResult(image=out, edges=None, timings={}, regions=regions or [], backend="fake")


def stroke(doc, tool, points, size=6):
    s = doc.begin_stroke(tool)
    for a, b in itertools.pairwise(points):
        s.segment(a, b, size)
    return s.finish()


def test_load_resets_state_and_copies(doc, qtbot):
    rgb = np.zeros((10, 20, 3), np.uint8)
    with qtbot.waitSignal(doc.image_replaced):
        doc.load_array(rgb)
    assert (doc.width, doc.height) == (20, 10) and doc.mask.shape == (10, 20) and not doc.mask.any()
    doc.image[0, 0] = 5
    assert rgb[0, 0, 0] == 0
    assert not doc.is_modified() and doc.undo_stack.count() == 0
    with pytest.raises(ValueError):
        doc.load_array(np.zeros((5, 5), np.uint8))

    class Loaded:
        rgb = np.ones((4, 6, 3), np.uint8)

    loaded = Loaded()
    doc.load(loaded)
    assert doc.source is loaded and doc.size().width() == 6


def test_stroke_is_one_command_with_live_dabs_and_undo(doc, qtbot):
    s = doc.begin_stroke("brush")
    with qtbot.waitSignal(doc.changed) as blocker:
        s.segment((20, 20), (60, 20), 8)
    rect = blocker.args[0]
    assert rect.contains(20, 20) and rect.width() < 60
    assert doc.mask[20, 20:60].all()  # visible while dragging
    assert doc.undo_stack.count() == 0
    s.segment((60, 20), (60, 70), 8)
    cmd = s.finish()
    assert isinstance(cmd, StrokeCommand) and doc.undo_stack.count() == 1
    painted = doc.mask.copy()
    assert doc.is_modified()
    doc.undo_stack.undo()
    assert not doc.mask.any() and not doc.is_modified()
    doc.undo_stack.redo()
    assert np.array_equal(doc.mask, painted)


def test_eraser_and_noop_stroke(doc):
    stroke(doc, "brush", [(10, 10), (100, 10)], size=10)
    before = doc.mask.copy()
    stroke(doc, "eraser", [(50, 10), (50, 10)], size=10)
    assert not doc.mask[10, 48:53].any() and doc.mask[10, 20] and doc.mask[10, 90]
    assert doc.undo_stack.count() == 2
    assert stroke(doc, "eraser", [(150, 100), (155, 110)]) is None  # erasing nothing adds no step
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    assert np.array_equal(doc.mask, before)


def test_edge_pen_and_edge_eraser(doc):
    stroke(doc, "edge_pen", [(10, 50), (100, 50)], size=2)
    assert doc.sketch_drawn[50, 10:100].all() and not doc.sketch_erased.any()
    stroke(doc, "edge_eraser", [(40, 40), (40, 60)], size=6)
    assert not doc.sketch_drawn[50, 38:43].any() and doc.sketch_erased[45:55, 40].all()
    assert doc.sketch_drawn[50, 20]
    stroke(doc, "edge_pen", [(40, 50), (40, 50)], size=2)
    assert doc.sketch_drawn[50, 40] and not doc.sketch_erased[50, 40]
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.sketch_drawn[50, 40] and not doc.sketch_erased.any()
    assert doc.undo_stack.command(0).text() == "Draw edges"


def _layers(doc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return doc.mask.copy(), doc.sketch_drawn.copy(), doc.sketch_erased.copy()


def _assert_layers(doc, expected) -> None:
    for got, want, name in zip(_layers(doc), expected, ("mask", "sketch_drawn", "sketch_erased")):
        assert np.array_equal(got, want), name


def test_sketch_strokes_redo_to_the_drawn_layers(doc):
    stroke(doc, "brush", [(5, 5), (30, 5)], size=6)  # a mask the sketch strokes must leave alone
    states = [_layers(doc)]
    stroke(doc, "edge_pen", [(10, 50), (100, 50)], size=2)
    states.append(_layers(doc))
    stroke(doc, "edge_eraser", [(40, 40), (40, 60)], size=6)  # clears drawn pixels and marks them erased
    states.append(_layers(doc))
    stroke(doc, "edge_pen", [(30, 45), (50, 55)], size=2)  # drawn over erased pixels: no longer erased
    states.append(_layers(doc))
    assert states[2][2].any() and (states[2][1] != states[1][1]).any() and (states[3][2] != states[2][2]).any()
    for i in (3, 2, 1):  # each step on its own: undo, then redo to exactly the layers after drawing
        doc.undo_stack.undo()
        _assert_layers(doc, states[i - 1])
        doc.undo_stack.redo()
        _assert_layers(doc, states[i])
        doc.undo_stack.undo()
    _assert_layers(doc, states[0])
    for state in states[1:]:  # then the whole sequence forward again
        doc.undo_stack.redo()
        _assert_layers(doc, state)
    assert not doc.undo_stack.canRedo()


def test_cancel_restores(doc):
    s = doc.begin_stroke("brush")
    s.segment((0, 0), (150, 110), 20)
    assert doc.mask.any()
    s.cancel()
    assert not doc.mask.any() and doc.undo_stack.count() == 0


def test_rectangle(doc):
    doc.add_rectangle((10, 20, 30, 25))
    assert doc.mask.sum() == 100 and doc.mask[20:25, 10:30].all()
    doc.add_rectangle((15, 20, 20, 25), value=False)
    assert doc.mask.sum() == 75
    doc.undo_stack.undo()
    assert doc.mask.sum() == 100


def test_mask_ops_and_undo(doc):
    doc.add_rectangle((50, 50, 70, 70))
    base = doc.mask.copy()
    assert doc.grow_mask(3)
    assert doc.mask.sum() > base.sum() and doc.mask[48, 60]
    doc.undo_stack.undo()
    assert np.array_equal(doc.mask, base)
    assert doc.shrink_mask(2)
    assert doc.mask.sum() == 16 * 16
    assert doc.invert_mask_command()
    assert doc.mask.sum() == 160 * 120 - 256
    assert doc.clear_mask() and not doc.mask.any() and doc.extent("mask") == []
    assert not doc.clear_mask()
    for _ in range(3):
        doc.undo_stack.undo()
    assert np.array_equal(doc.mask, base)
    assert doc.import_mask(np.ones((120, 160), np.uint8)) and doc.mask.all()
    with pytest.raises(MaskError):
        doc.import_mask(np.ones((10, 10), bool))
    doc.undo_stack.undo()
    assert np.array_equal(doc.mask, base)


def test_apply_fill_changes_only_masked_pixels_and_undoes(doc):
    original = doc.image.copy()
    doc.add_rectangle((30, 40, 50, 60))
    stroke(doc, "edge_pen", [(35, 45), (45, 55)], size=2)
    request = doc.fill_request("telea")
    assert request.mask is not doc.mask and request.sketch_drawn is not None and request.sketch_erased is None
    cmd = doc.apply_fill(fake_fill(doc, 7))
    assert isinstance(cmd, FillCommand) and doc.undo_stack.count() == 3
    assert (doc.image[40:60, 30:50] == 7).all()
    assert np.array_equal(doc.image[:40], original[:40])
    assert not doc.mask.any() and not doc.sketch_drawn.any()  # cleared in the same step
    assert [p.box for p in cmd.image_patches] == [(30, 40, 50, 60)]  # only the changed box is stored
    assert np.array_equal(doc.image_before_last_fill(), original)
    doc.undo_stack.undo()
    assert np.array_equal(doc.image, original) and doc.mask[40:60, 30:50].all() and doc.sketch_drawn.any()
    assert doc.image_before_last_fill() is None
    doc.undo_stack.redo()
    assert (doc.image[40:60, 30:50] == 7).all()


def test_apply_fill_of_a_sent_request_keeps_what_was_drawn_since(doc):
    doc.add_rectangle((30, 40, 50, 60))
    stroke(doc, "edge_pen", [(35, 45), (45, 55)], size=2)
    sent = doc.fill_request("telea")
    result = fake_fill(doc, 7)  # computed for the sent mask
    stroke(doc, "edge_pen", [(100, 20), (120, 20)], size=2)  # drawn while the fill ran
    doc.add_rectangle((90, 10, 130, 30))
    doc.add_rectangle((30, 40, 35, 60), value=False)  # part of the sent hole taken back
    doc.apply_fill(result, sent=sent)
    assert (doc.image[40:60, 35:50] == 7).all() and not (doc.image[40:60, 30:35] == 7).all(axis=2).any()
    assert doc.mask.sum() == 40 * 20 and doc.mask[10:30, 90:130].all()  # only the new rectangle is left
    assert doc.sketch_drawn[15:25, 95:125].any() and not doc.sketch_drawn[:, :80].any()


@pytest.mark.parametrize("edit", ["fill", "clear_sketch", "grow"])
def test_an_edit_arriving_mid_stroke_ends_the_stroke_first_so_undo_all_restores_everything(doc, edit):
    original_image, original_mask = doc.image.copy(), doc.mask.copy()
    doc.add_rectangle((30, 40, 50, 60))
    stroke(doc, "edge_pen", [(35, 45), (45, 55)], size=2)
    sent = doc.fill_request("telea")
    result = fake_fill(doc, 7)
    live = doc.begin_stroke("brush")  # the person is still dragging when the edit arrives
    live.segment((100.0, 20.0), (120.0, 20.0), 6)
    if edit == "fill":
        doc.apply_fill(result, sent=sent)
    elif edit == "clear_sketch":
        doc.clear_sketch()
    else:
        doc.grow_mask(2)
    assert live.finished and doc.mask[20, 110]  # the stroke became its own undo step, its dabs kept
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    assert np.array_equal(doc.mask, original_mask) and np.array_equal(doc.image, original_image)
    assert not doc.sketch_drawn.any()


def test_apply_fill_keeps_mask_when_asked_and_uses_regions(doc):
    doc.add_rectangle((10, 10, 20, 20))
    cmd = doc.apply_fill(fake_fill(doc, 1, regions=[(0, 0, 40, 40)]), clear_mask=False)
    assert [p.box for p in cmd.image_patches] == [(10, 10, 20, 20)] and doc.mask.sum() == 100
    assert doc.apply_fill(FillResult(image=doc.image.copy(), edges=None, timings={}), clear_mask=False) is None
    with pytest.raises(MaskError):
        doc.apply_fill(FillResult(image=np.zeros((5, 5, 3), np.uint8), edges=None, timings={}))


def test_two_fills_compare_shows_before_the_latest(doc):
    doc.add_rectangle((0, 0, 10, 10))
    doc.apply_fill(fake_fill(doc, 1))
    after_first = doc.image.copy()
    doc.add_rectangle((5, 5, 30, 30))
    doc.apply_fill(fake_fill(doc, 2))
    assert np.array_equal(doc.image_before_last_fill(), after_first)
    [(rect, old)] = doc.last_fill_patches()
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == (5, 5, 25, 25) and old.shape == (25, 25, 3)


def test_predicted_edges_notify_the_hole_only(doc, qtbot):
    edges = np.zeros((120, 160), np.uint8)
    edges[5, :] = 1
    doc.add_rectangle((20, 0, 50, 30))
    with qtbot.waitSignal(doc.layer_changed) as blocker:
        doc.set_predicted_edges(edges)
    assert blocker.args == ["edges", QRect(20, 0, 30, 30)]  # shown inside the hole only: no whole-photo repaint
    assert doc.predicted_edges[5, 3] == 255
    assert doc.undo_stack.count() == 1  # the rectangle only: predicted edges are not history
    with pytest.raises(MaskError):
        doc.set_predicted_edges(np.zeros((3, 3), np.uint8))
    doc.set_predicted_edges(None)
    assert doc.predicted_edges is None


def test_modified_signal_and_mark_saved(doc, qtbot):
    with qtbot.waitSignal(doc.modified_changed) as blocker:
        doc.add_rectangle((0, 0, 5, 5))
    assert blocker.args == [True]
    doc.mark_saved()
    assert not doc.is_modified()
    doc.undo_stack.undo()
    assert doc.is_modified()


def test_commands_store_only_their_box_on_a_big_photo(qapp):
    doc = Document()
    doc.load_array(np.zeros((4000, 6000, 3), np.uint8))
    s = doc.begin_stroke("brush")
    s.segment((3000, 2000), (3040, 2010), 20)
    cmd = s.finish()
    assert cmd.nbytes < 1000  # 62 x 32 box, bit-packed old and new: not a 24 MP layer
    doc.clear_mask()
    doc.add_rectangle((100, 100, 300, 200))
    fill = doc.apply_fill(fake_fill(doc, 9))
    assert fill.image_patches[0].old.nbytes == 200 * 100 * 3
    assert doc.history_bytes() < 200 * 100 * 3 * 2 + 20_000


def test_history_round_trip_restores_layers_index_and_clean(doc, tmp_path):
    stroke(doc, "brush", [(10, 10), (80, 60)], size=12)
    doc.mark_saved()
    stroke(doc, "edge_pen", [(20, 70), (90, 70)], size=2)
    doc.grow_mask(2)
    doc.apply_fill(fake_fill(doc, 3))
    doc.invert_mask_command()
    stroke(doc, "edge_eraser", [(5, 5), (30, 5)], size=4)
    doc.undo_stack.undo()
    doc.undo_stack.undo()  # index 4 of 6: redo must still work after recovery
    layers = {n: doc.layer(n).copy() for n in ("image", "mask", "sketch_drawn", "sketch_erased")}
    loaded = npz_round_trip(doc.history_state(), tmp_path)

    other = Document()
    other.load_array(layers["image"])
    other.set_layers(mask=layers["mask"], sketch_drawn=layers["sketch_drawn"], sketch_erased=layers["sketch_erased"])
    other.restore_history(loaded)
    for name, values in layers.items():
        assert np.array_equal(other.layer(name), values), name
    assert (other.undo_stack.count(), other.undo_stack.index(), other.undo_stack.cleanIndex()) == (6, 4, 1)
    assert other.is_modified()
    assert [other.undo_stack.command(i).text() for i in range(6)] == \
        [doc.undo_stack.command(i).text() for i in range(6)]
    for target in (0, 6, 3, 1):
        doc.undo_stack.setIndex(target)
        other.undo_stack.setIndex(target)
        for name in layers:
            assert np.array_equal(other.layer(name), doc.layer(name)), (target, name)
    assert not other.is_modified() and other.undo_stack.index() == 1
    with pytest.raises(ValueError):
        small = Document()
        small.load_array(np.zeros((5, 5, 3), np.uint8))
        small.restore_history(loaded)


def test_many_qt_calls_and_signal_emits_do_not_exhaust_none_or_true(doc):
    # PySide6 6.12 on Python 3.11 drops a reference to None per void call and to True per emit and aborts the
    # interpreter ("none_dealloc") after a few thousand calls; pyproject pins PySide6 below 6.12 for this.
    for _ in range(20_000):
        doc.changed.emit(doc.rect())
        doc.undo_stack.setUndoLimit(0)
    assert sys.getrefcount(None) > 1000 and sys.getrefcount(True) > 1000


# --------------------------------------------------------------- fills of several regions
HOLE_A, CROP_A = (100, 100, 140, 130), (52, 52, 188, 178)
HOLE_B, CROP_B = (1300, 800, 1350, 860), (1252, 752, 1398, 908)


@pytest.fixture
def big(qapp):
    d = Document()
    d.load_array(np.random.default_rng(2).integers(0, 256, (1000, 1500, 3), dtype=np.uint8))
    d.add_rectangle(HOLE_A)
    stroke(d, "brush", [(1310, 810), (1340, 850)], size=20)  # inside HOLE_B
    d.add_rectangle(HOLE_B)
    stroke(d, "edge_pen", [(110, 110), (130, 120)], size=2)
    return d


def test_fill_of_two_far_apart_regions_stores_two_small_patches(big, monkeypatch):
    original = big.image.copy()
    assert len(big.extent("mask")) == 2  # two far-apart objects: two boxes, not one spanning both
    result = fake_fill(big, 7, regions=[CROP_A, CROP_B])
    scanned = []
    real_bbox = box_module.bbox_of

    def spy(layer):
        scanned.append(layer.shape[0] * layer.shape[1])
        return real_bbox(layer)

    for module in (box_module, document_module, extent_module):  # diff_box's scans and the document's own
        monkeypatch.setattr(module, "bbox_of", spy)
    cmd = big.apply_fill(result)
    assert big.undo_stack.count() == 5 and big.undo_stack.command(4) is cmd  # one step for the user
    assert [p.box for p in cmd.image_patches] == [HOLE_A, HOLE_B]
    hole_pixels = 40 * 30 + 50 * 60
    assert sum(p.nbytes for p in cmd.image_patches) == 2 * 3 * hole_pixels  # old + new, changed boxes only
    assert cmd.nbytes < 2 * 3 * hole_pixels + 2_000  # + bit-packed mask and sketch, per region too
    spanning = (1350 - 100) * (860 - 100)
    assert cmd.nbytes * 50 < spanning * 3 * 2
    # nothing scanned the whole photo, nor the box spanning both objects
    assert scanned and max(scanned) <= (CROP_B[2] - CROP_B[0]) * (CROP_B[3] - CROP_B[1])
    assert not big.mask.any() and not big.sketch_drawn.any()
    assert big.extent("mask") == [] and big.extent("sketch_drawn") == []
    filled = big.image.copy()
    assert (filled[100:130, 100:140] == 7).all() and (filled[800:860, 1300:1350] == 7).all()
    changed = (filled != original).any(axis=2)
    assert changed.sum() == hole_pixels
    assert np.array_equal(big.image_before_last_fill(), original)
    [(ra, old_a), (rb, old_b)] = big.last_fill_patches()
    assert np.array_equal(old_a, original[100:130, 100:140]) and np.array_equal(old_b, original[800:860, 1300:1350])
    assert (ra.x(), ra.y(), rb.x(), rb.y()) == (100, 100, 1300, 800)

    big.undo_stack.undo()
    assert np.array_equal(big.image, original)
    assert big.mask[100:130, 100:140].all() and big.mask[800:860, 1300:1350].all() and big.sketch_drawn.any()
    assert big.last_fill_patches() == [] and big.image_before_last_fill() is None
    big.undo_stack.redo()
    assert np.array_equal(big.image, filled) and not big.mask.any() and not big.sketch_drawn.any()


def test_two_region_fill_history_round_trip(big, tmp_path):
    original = big.image.copy()
    big.apply_fill(fake_fill(big, 9, regions=[CROP_A, CROP_B]))
    layers = {n: big.layer(n).copy() for n in ("image", "mask", "sketch_drawn", "sketch_erased")}
    loaded = npz_round_trip(big.history_state(), tmp_path)
    other = Document()
    other.load_array(layers["image"])
    other.set_layers(mask=layers["mask"], sketch_drawn=layers["sketch_drawn"], sketch_erased=layers["sketch_erased"])
    other.restore_history(loaded)
    fill = other.last_fill()
    assert fill is not None and [p.box for p in fill.image_patches] == [HOLE_A, HOLE_B]
    assert np.array_equal(other.image_before_last_fill(), original)
    for target in (4, 0, 2, 5):
        big.undo_stack.setIndex(target)
        other.undo_stack.setIndex(target)
        for name in layers:
            assert np.array_equal(other.layer(name), big.layer(name)), (target, name)
    assert np.array_equal(other.image, layers["image"])


def test_overlapping_regions_are_merged_and_regionless_fill_searches_everything(doc):
    doc.add_rectangle((10, 10, 30, 30))
    cmd = doc.apply_fill(fake_fill(doc, 5, regions=[(0, 0, 25, 40), (20, 0, 60, 40), (500, 500, 600, 600)]))
    assert [p.box for p in cmd.image_patches] == [(10, 10, 30, 30)]
    assert [p.box for p in cmd.patches if p.layer == "mask"] == [(10, 10, 30, 30)]
    doc.add_rectangle((100, 90, 110, 100))
    cmd = doc.apply_fill(fake_fill(doc, 6))  # no regions (not from the engine): the whole photo is compared
    assert [p.box for p in cmd.image_patches] == [(100, 90, 110, 100)]


def test_mask_painted_outside_the_regions_is_cleared_too(doc):
    doc.add_rectangle((10, 10, 20, 20))
    result = fake_fill(doc, 1, regions=[(0, 0, 40, 40)])
    doc.add_rectangle((100, 100, 110, 105))  # painted while the fill ran
    cmd = doc.apply_fill(result)
    assert not doc.mask.any()
    assert sorted(p.box for p in cmd.patches if p.layer == "mask") == [(10, 10, 20, 20), (100, 100, 110, 105)]
    doc.undo_stack.undo()
    assert doc.mask.sum() == 150


def covered(doc, layer):
    cover = np.zeros(doc.mask.shape, bool)
    for x0, y0, x1, y1 in doc.extent(layer):
        cover[y0:y1, x0:x1] = True
    return cover


@pytest.mark.parametrize("seed", [5, 6])
def test_extent_always_holds_every_set_pixel(qapp, seed):
    doc = Document()
    doc.load_array(np.zeros((300, 500, 3), np.uint8))
    rng = np.random.default_rng(seed)
    h, w = doc.height, doc.width
    tight = 0

    def near(p, reach=30.0):
        return float(np.clip(p[0] + rng.uniform(-reach, reach), -5, w + 5)), \
            float(np.clip(p[1] + rng.uniform(-reach, reach), -5, h + 5))

    for step in range(150):
        op = int(rng.integers(0, 11))
        start = (float(rng.uniform(-5, w + 5)), float(rng.uniform(-5, h + 5)))
        if op <= 2:
            tool = ["brush", "eraser", "edge_pen", "edge_eraser"][rng.integers(0, 4)]
            stroke(doc, tool, [start, near(start), near(start)], size=float(rng.uniform(1, 15)))
        elif op == 3:
            s = doc.begin_stroke("brush")
            s.segment(start, near(start), 9)
            s.cancel()
        elif op == 4 and doc.undo_stack.canUndo():
            doc.undo_stack.undo()
        elif op == 5 and doc.undo_stack.canRedo():
            doc.undo_stack.redo()
        elif op == 6:
            x, y = int(start[0]), int(start[1])
            doc.add_rectangle((x, y, x + int(rng.integers(1, 40)), y + int(rng.integers(1, 40))),
                              value=bool(rng.integers(0, 2)))
        elif op == 7:
            (doc.grow_mask if rng.integers(0, 2) else doc.shrink_mask)(int(rng.integers(1, 4)))
        elif op == 8 and rng.random() < 0.05:
            doc.invert_mask_command()
        elif op == 9:
            x, y = int(start[0]), int(start[1])
            regions = [(x, y, x + 150, y + 150), (x - 200, y, x - 100, y + 80)] if rng.integers(0, 3) else None
            doc.apply_fill(fake_fill(doc, int(rng.integers(0, 256)), regions=regions),
                           clear_mask=bool(rng.integers(0, 4)))
        elif op == 10:
            doc.clear_mask() if rng.integers(0, 2) else doc.clear_sketch()
        for layer in ("mask", "sketch_drawn", "sketch_erased"):
            cover = covered(doc, layer)
            assert not (doc.layer(layer) & ~cover).any(), (step, op, layer)
            assert len(doc.extent(layer)) <= 32
            tight += cover.mean() < 0.5
    assert doc.undo_stack.count() > 20
    assert tight > 3 * 150 * 0.7  # the extent is not trivially the whole photo


def test_history_does_not_keep_the_document_alive(qapp):
    # Commands refer to their document weakly: a strong reference made a cycle through PySide's ownership
    # links, and the garbage collector could then free command wrappers before the undo stack deleted them
    # (a segfault in a later gc.collect()).
    import gc
    import weakref

    gc.disable()
    try:
        d = Document()
        d.load_array(np.zeros((30, 40, 3), np.uint8))
        d.add_rectangle((5, 5, 15, 15))
        d.apply_fill(fake_fill(d, 4, regions=[(0, 0, 20, 20)]))
        d.invert_mask_command()
        alive = weakref.ref(d)
        del d
        assert alive() is None  # freed by reference counting, without waiting for the cycle collector
    finally:
        gc.enable()


def test_a_long_diagonal_stroke_stores_a_band_of_tiles_not_its_bounding_box(qapp):
    doc = Document()
    doc.load_array(np.zeros((1500, 2000, 3), np.uint8))
    command = stroke(doc, "brush", [(5, 5), (1995, 1495)], size=30)
    stored = sum(p.old_data.nbytes + p.new_data.nbytes for p in command.patches)
    bounding_box = 2 * (1500 * 2000) // 8  # old and new of the whole box, bit-packed
    assert stored < bounding_box / 5
    painted = doc.mask.copy()
    doc.undo_stack.undo()
    assert not doc.mask.any()
    doc.undo_stack.redo()
    assert np.array_equal(doc.mask, painted)


def test_filled_in_session_is_every_applied_fill_hole_and_survives_recovery(doc, tmp_path):
    assert not doc.filled_in_session().any()
    original = doc.image.copy()
    doc.add_rectangle((10, 10, 30, 20))
    doc.apply_fill(fake_fill(doc, 5))
    doc.add_rectangle((100, 50, 120, 80))
    doc.image[50, 100] = 9  # as the file had it: the fill puts 9 there, so this hole pixel keeps its value
    result = fake_fill(doc, 9)
    doc.apply_fill(result)
    expected = np.zeros(doc.mask.shape, bool)
    expected[10:20, 10:30] = expected[50:80, 100:120] = True
    assert np.array_equal(doc.filled_in_session(), expected)  # the unchanged hole pixel counts: it was filled

    doc.undo_stack.undo()  # the second fill's pixels are the file's again
    first = np.zeros(doc.mask.shape, bool)
    first[10:20, 10:30] = True
    assert np.array_equal(doc.filled_in_session(), first)
    doc.undo_stack.redo()
    loaded = npz_round_trip(doc.history_state(), tmp_path)
    other = Document()
    other.load_array(doc.image)
    other.restore_history(loaded)
    assert np.array_equal(other.filled_in_session(), expected)
    other.undo_stack.setIndex(0)
    assert not other.filled_in_session().any() and np.array_equal(other.image[:40], original[:40])


def test_a_fill_that_keeps_the_mask_counts_the_pixels_it_changed(doc):
    doc.add_rectangle((40, 40, 60, 50))
    doc.apply_fill(fake_fill(doc, 1), clear_mask=False)
    doc.clear_mask()
    expected = np.zeros(doc.mask.shape, bool)
    expected[40:50, 40:60] = True
    assert np.array_equal(doc.filled_in_session(), expected)
