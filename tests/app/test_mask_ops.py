"""Bitmap operations: brush capsules without gaps, rectangles, grow/shrink on the bounding box.

Bounding boxes and diffs: tests/engine/test_box.py."""

from __future__ import annotations

import cv2
import numpy as np

from app import mask_ops


def test_capsule_covers_segment_without_gaps_and_nothing_far_away():
    box, fp = mask_ops.capsule((10.5, 20.5), (90.5, 20.5), radius=3, height=50, width=120)
    layer = np.zeros((50, 120), bool)
    x0, y0, x1, y1 = box
    layer[y0:y1, x0:x1] = fp
    assert layer[20, 10:91].all()  # continuous along the whole segment
    assert layer[17:24, 50].all() and not layer[16, 50] and not layer[24, 50]  # 3 px radius, 7 px wide
    assert not layer[:, :7].any() and not layer[:, 94:].any()


def test_capsule_single_pixel_brush_and_clipping():
    box, fp = mask_ops.capsule((5.9, 5.1), (5.9, 5.1), radius=0.1, height=10, width=10)
    layer = np.zeros((10, 10), bool)
    layer[box[1] : box[3], box[0] : box[2]] = fp
    assert layer[5, 5] and layer.sum() == 1
    assert mask_ops.capsule((-50, -50), (-40, -40), 3, 10, 10) is None
    box, _ = mask_ops.capsule((-2, -2), (2, 2), 3, 10, 10)
    assert box[0] == 0 and box[1] == 0


def test_rectangle_box_square_and_order():
    assert mask_ops.rectangle_box((10, 20), (4, 5), 100, 100) == (4, 5, 10, 20)
    assert mask_ops.rectangle_box((10, 10), (20, 14), 100, 100, square=True) == (10, 10, 20, 20)
    assert mask_ops.rectangle_box((10, 10), (4, 12), 100, 100, square=True) == (4, 10, 10, 16)
    assert mask_ops.rectangle_box((3.2, 3.2), (3.2, 3.2), 10, 10) == (3, 3, 4, 4)
    assert mask_ops.rectangle_box((-5, -5), (200, 3), 10, 10) == (0, 0, 10, 3)


def test_grow_and_shrink_match_full_image_morphology():
    mask = np.zeros((80, 100), bool)
    mask[30:45, 40:70] = True
    mask[50, 10] = True
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    grown = mask_ops.grow(mask, 4)
    assert np.array_equal(grown, cv2.dilate(mask.astype(np.uint8), kernel) > 0)
    shrunk = mask_ops.shrink(mask, 4)
    assert np.array_equal(shrunk, cv2.erode(mask.astype(np.uint8), kernel, borderValue=0) > 0)
    assert shrunk.sum() < mask.sum() < grown.sum()
    box, values = mask_ops.grow_region(mask, 4)
    assert box == (6, 26, 74, 55) and values.shape == (29, 68)  # bbox plus 4 px, not the whole image


def test_shrink_keeps_holes_touching_the_border():
    mask = np.zeros((40, 40), bool)
    mask[:, :12] = True
    shrunk = mask_ops.shrink(mask, 3)
    assert shrunk[:, :9].all() and not shrunk[:, 9:].any()


def test_grow_shrink_empty_and_zero():
    empty = np.zeros((10, 10), bool)
    assert mask_ops.grow_region(empty, 3) is None
    assert mask_ops.shrink_region(np.ones((10, 10), bool), 0) is None


def test_invert_and_clear():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert mask_ops.invert(mask).sum() == 120 - 18
    assert not mask_ops.clear(mask).any()
