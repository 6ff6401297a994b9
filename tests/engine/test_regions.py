"""Regions: components, merging of overlapping crops, margins, and cost that follows the mask."""

from __future__ import annotations

import numpy as np

from engine.box import bbox_of
from engine.regions import MIN_MARGIN, component_boxes, context_margin, find_regions, merge_regions


def test_empty_mask_has_no_regions():
    assert find_regions(np.zeros((50, 60), bool)) == []
    assert bbox_of(np.zeros((5, 5), bool)) is None


def test_margin_is_proportional_with_a_floor():
    assert context_margin((0, 0, 10, 10)) == MIN_MARGIN
    assert context_margin((0, 0, 1000, 400)) == 500
    assert context_margin((0, 0, 1000, 400), override=7) == 7


def test_far_apart_holes_stay_separate_and_near_ones_merge():
    mask = np.zeros((1000, 1000), bool)
    mask[100:110, 100:110] = True
    mask[800:810, 800:810] = True
    assert len(find_regions(mask)) == 2
    mask[100:110, 160:170] = True  # 50 px from the first: crops (margin 48) overlap
    regions = find_regions(mask)
    assert len(regions) == 2
    first = min(regions, key=lambda r: r.box[0])
    assert first.hole_box == (100, 100, 170, 110)
    assert first.box == (100 - 48, 100 - 48, 170 + 48, 110 + 48)


def test_merging_repeats_until_stable():
    # A merge grows the hole box and so its margin, which then reaches a third region.
    boxes = [(100, 100, 140, 140), (200, 100, 240, 140), (330, 100, 340, 110)]
    regions = merge_regions(boxes, 1000, 1000)
    assert len(regions) == 1
    assert regions[0].hole_box == (100, 100, 340, 140)
    for a in regions:
        for b in regions:
            if a is not b:
                assert not (a.box[0] < b.box[2] and b.box[0] < a.box[2] and a.box[1] < b.box[3] and b.box[1] < a.box[3])


def test_crop_clipped_at_the_border():
    mask = np.zeros((100, 120), bool)
    mask[0:10, 110:120] = True
    (region,) = find_regions(mask)
    assert region.box == (110 - 48, 0, 120, 10 + 48)
    assert region.hole_box == (110, 0, 120, 10)


def test_small_hole_in_a_24_megapixel_photo_only_processes_a_small_crop():
    mask = np.zeros((4000, 6000), bool)
    mask[2000:2300, 3000:3300] = True
    (region,) = find_regions(mask)
    assert region.hole_box == (3000, 2000, 3300, 2300)
    assert region.box == (2850, 1850, 3450, 2450)
    assert region.width * region.height < 0.02 * mask.size


def test_downsampled_components_are_tightened_to_exact_boxes():
    mask = np.zeros((3000, 3000), bool)  # bounding box > max_pixels: components run downsampled
    mask[5:17, 7:9] = True
    mask[2900:2999, 2990:3000] = True
    assert sorted(component_boxes(mask, max_pixels=10_000)) == [(7, 5, 9, 17), (2990, 2900, 3000, 2999)]


def test_diagonal_strokes_are_one_component():
    mask = np.eye(200, dtype=bool)
    assert len(component_boxes(mask)) == 1
