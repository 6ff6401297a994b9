"""The one Box type: (x0, y0, x1, y1) with exclusive ends, x the column; its operations and bounding boxes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.box import Box, bbox_of, diff_box, merge_boxes, merge_overlapping


def test_convention_is_columns_then_rows_with_exclusive_ends():
    image = np.zeros((10, 20), bool)  # 10 rows, 20 columns
    box = Box(3, 2, 9, 5)
    image[box.slices()] = True
    assert box.slices() == (slice(2, 5), slice(3, 9))
    assert (box.width, box.height, box.area) == (6, 3, 18) == (6, 3, int(image.sum()))
    assert bbox_of(image) == box  # round trip through the pixels
    assert not image[5, 3] and not image[2, 9]  # x1 and y1 are past the box
    assert Box.of_shape(image.shape) == (0, 0, 20, 10) and Box.of_shape((10, 20, 3)) == (0, 0, 20, 10)
    assert Box.from_xywh(3, 2, 6, 3) == box


def test_a_box_is_the_plain_tuple_it_replaced():
    box = Box(1, 2, 3, 4)
    assert box == (1, 2, 3, 4) and {(1, 2, 3, 4): "found"}[box] == "found"  # same equality and hash
    x0, y0, x1, y1 = box
    assert (x0, y0, x1, y1) == (box.x0, box.y0, box.x1, box.y1) == (box[0], box[1], box[2], box[3])
    assert list(box) == [1, 2, 3, 4] and isinstance(box, tuple)


def test_empty_boxes():
    assert Box(5, 5, 5, 9).empty and Box(5, 5, 9, 5).empty and Box(5, 5, 4, 9).empty
    assert Box(5, 5, 4, 9).area == 0
    assert not Box(5, 5, 6, 6).empty and Box(5, 5, 6, 6).area == 1


def test_clip_takes_a_numpy_shape_height_first():
    shape = (10, 20)  # rows, columns: a box near x = 18 survives, one near y = 18 does not
    assert Box(15, 2, 25, 5).clip(shape) == (15, 2, 20, 5)
    assert Box(2, 15, 5, 25).clip(shape) is None
    assert Box(-3, -4, 5, 6).clip(shape) == (0, 0, 5, 6)
    assert Box(20, 0, 30, 5).clip(shape) is None  # touches the right edge only: nothing left
    assert Box(0, 0, 20, 10).clip(shape) == (0, 0, 20, 10)


def test_grow_clamped_to_the_image_and_unclamped():
    assert Box(10, 10, 20, 20).grow(5) == (5, 5, 25, 25)
    assert Box(10, 10, 20, 20).grow(-2) == (12, 12, 18, 18)
    assert Box(2, 3, 18, 8).grow(5, (10, 20)) == (0, 0, 20, 10)
    assert Box(2, 3, 8, 8).grow(5, (100, 10)) == (0, 0, 10, 13)  # width 10 clamps x, height 100 leaves y


def test_union_intersection_overlap_contains():
    a, b = Box(0, 0, 10, 10), Box(5, 8, 20, 30)
    assert a.union(b) == b.union(a) == (0, 0, 20, 30)
    assert a.union(None) == a
    assert a.intersection(b) == b.intersection(a) == (5, 8, 10, 10)
    assert a.overlaps(b) and b.overlaps(a)
    touching = Box(10, 0, 20, 10)  # shares the edge x = 10, no pixel
    assert not a.overlaps(touching) and a.intersection(touching) is None
    assert a.overlaps(touching, gap=1) and not a.overlaps(Box(12, 0, 20, 10), gap=2)
    assert a.overlaps(Box(12, 0, 20, 10), gap=3)
    assert a.contains(Box(0, 0, 10, 10)) and a.contains(Box(2, 3, 4, 5)) and not a.contains(b)
    assert Box.bounding([None, Box(5, 5, 6, 6), None, Box(0, 9, 1, 12)]) == (0, 5, 6, 12)
    assert Box.bounding([None]) is None and Box.bounding([]) is None


def test_offset_moves_columns_by_dx_and_rows_by_dy():
    assert Box(1, 2, 3, 4).offset(10, 100) == (11, 102, 13, 104)


@pytest.mark.parametrize("cut", [Box(3, 3, 6, 6), Box(-5, 3, 6, 6), Box(3, -5, 20, 6), Box(0, 0, 10, 10),
                                 Box(20, 20, 30, 30), Box(9, 0, 10, 10), Box(-1, -1, 11, 11)])
def test_subtract_leaves_exactly_the_pixels_outside_the_cut(cut):
    def paint(box: Box) -> np.ndarray:  # on a canvas with 10 px room around the box, for cuts that stick out
        canvas = np.zeros((40, 40), np.int32)
        inside = box.offset(10, 10).clip(canvas.shape)
        if inside is not None:
            canvas[inside.slices()] = 1
        return canvas

    box = Box(0, 0, 10, 10)
    pieces = box.subtract(cut)
    assert len(pieces) <= 4
    assert all(not piece.empty and box.contains(piece) for piece in pieces)
    covered = sum((paint(piece) for piece in pieces), np.zeros((40, 40), np.int32))
    assert np.array_equal(covered, paint(box) * (1 - paint(cut)))  # disjoint, all of the box but the cut


def test_bbox_and_diff():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert bbox_of(mask) == (3, 2, 9, 5) and isinstance(bbox_of(mask), Box)
    assert bbox_of(np.zeros((4, 4), bool)) is None
    other = mask.copy()
    other[7, 1] = True
    assert diff_box(mask, other) == (1, 7, 2, 8)
    assert diff_box(mask, mask) is None
    rgb = np.zeros((5, 5, 3), np.uint8)
    rgb[1, 2, 2] = 9  # the last channel of column 2: the box is that one column, not three
    assert bbox_of(rgb) == (2, 1, 3, 2)
    assert bbox_of(np.array([[0.0, 0.5], [0.0, 0.0]])) == (1, 0, 2, 1)
    with pytest.raises(ValueError):
        diff_box(mask, rgb)


def test_bbox_and_diff_agree_with_numpy_on_random_boxes():
    rng = np.random.default_rng(5)
    for _ in range(30):
        h, w = rng.integers(1, 40, 2)
        a = rng.integers(0, 3, (h, w, 3), dtype=np.uint8)
        b = a.copy()
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        y1, x1 = rng.integers(y0, h) + 1, rng.integers(x0, w) + 1
        b[y0:y1, x0:x1, rng.integers(0, 3)] += 1
        nz = (a != b).any(axis=2)
        ys, xs = np.nonzero(nz)
        assert diff_box(a, b) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert diff_box(nz, np.zeros_like(nz)) == bbox_of(nz)
        assert bbox_of(nz[:, ::2]) is None or bbox_of(nz[:, ::2])[2] <= (w + 1) // 2
    assert bbox_of(np.zeros((0, 5), bool)) is None


def test_merging_joins_overlaps_until_none_remain_and_keeps_order():
    assert merge_boxes([(0, 0, 10, 10), (20, 0, 30, 10), (5, 5, 25, 8)]) == [(0, 0, 30, 10)]
    assert merge_boxes([(0, 0, 10, 10), (10, 0, 20, 10)]) == [(0, 0, 10, 10), (10, 0, 20, 10)]  # touching
    assert merge_boxes([(50, 50, 60, 60), (0, 0, 5, 5)]) == [(50, 50, 60, 60), (0, 0, 5, 5)]
    assert all(isinstance(box, Box) for box in merge_boxes([(0, 0, 1, 1)]))
    rng = np.random.default_rng(3)
    boxes = [Box(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in rng.integers(1, 60, (25, 4))]
    merged = merge_boxes(boxes)
    for a, b in itertools.combinations(merged, 2):
        assert not a.overlaps(b)
    for box in boxes:
        assert any(m.contains(box) for m in merged)
    items = [("a", Box(0, 0, 4, 4)), ("b", Box(3, 3, 6, 6)), ("c", Box(9, 9, 10, 10))]
    joined = merge_overlapping(items, lambda item: item[1], lambda p, q: (p[0] + q[0], p[1].union(q[1])))
    assert joined == [("ba", (0, 0, 6, 6)), ("c", (9, 9, 10, 10))]
