"""Split a hole mask into regions to fill, each with a crop box that holds enough known context.

Cost grows with the mask, not the photo: the only whole-image work is one pass over the bool mask to find
its bounding box (``engine.box.bbox_of``); connected components run on that bounding box only, and on a
downsampled copy of it when it is large. Everything after works on boxes.

Context margin: ``max(MIN_MARGIN, MARGIN_RATIO * long side of the hole box)``, i.e. half the hole's long
side with a 48 px floor. Why:

* The networks were trained on whole images at their working resolution with holes covering about
  10-60% of the area. A margin of half the hole's side gives a crop of about twice the hole's side, so
  the hole covers about a quarter of the crop: the same proportions the network saw in training,
  whatever the hole's size. A fixed margin (IOPaint's 128 px) gives a 2000 px hole almost no context
  once the crop is shrunk to the working resolution, and gives a 10 px blemish a needlessly large crop.
* The floor covers small holes: the EdgeConnect generator's receptive field is about 100 px at its
  working resolution (two stride-2 convs, then dilated residual blocks at quarter resolution); 48 px on
  each side of a small hole gives it known texture in most of that field while keeping a blemish fill
  at about 100 x 100 px, far below the working resolution, so it is cheap.
* The crop is clipped to the photo; a hole touching the border gets its context from the other sides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from engine.box import Box, bbox_of, merge_overlapping

MIN_MARGIN = 48
MIN_OVERRIDE = 4  # an explicit margin is never smaller: a crop must hold known pixels around its hole
MARGIN_RATIO = 0.5
GROUP_DILATION = 2  # px: strokes closer than about twice this are one component
MAX_COMPONENT_PIXELS = 2_000_000  # connected components above this run on a downsampled mask



@dataclass(frozen=True)
class Region:
    """One crop to process: ``box`` includes the context margin; ``hole_box`` bounds its holes."""

    box: Box
    hole_box: Box

    @property
    def width(self) -> int:
        """Width of the crop box."""
        return self.box.width

    @property
    def height(self) -> int:
        """Height of the crop box."""
        return self.box.height

    def slices(self) -> tuple[slice, slice]:
        """Row and column slices of the crop box, for numpy indexing."""
        return self.box.slices()


def context_margin(hole_box: Box, override: int | None = None) -> int:
    """Pixels of known context around a hole box (see the module docstring for the choice)."""
    if override is not None:
        return max(MIN_OVERRIDE, int(override))
    hole = Box(*hole_box)
    long_side = max(hole.width, hole.height)
    return max(MIN_MARGIN, math.ceil(MARGIN_RATIO * long_side))


def component_boxes(mask: np.ndarray, dilation: int = GROUP_DILATION,
                    max_pixels: int = MAX_COMPONENT_PIXELS) -> list[Box]:
    """Boxes (in ``mask`` coordinates) of the connected hole components, after a small dilation.

    Runs on the mask's bounding box only; if that is larger than ``max_pixels`` it runs on a copy
    downsampled by an integer factor (a block is a hole if any pixel of it is), so boxes are at most one
    block too large: conservative, never too small.
    """
    if mask.dtype != np.bool_:
        mask = mask.astype(bool)
    bbox = bbox_of(mask)
    if bbox is None:
        return []
    bx0, by0, bx1, by1 = bbox
    sub = mask[by0:by1, bx0:bx1]
    factor = max(1, math.ceil(math.sqrt(sub.size / max_pixels)))
    small = np.ascontiguousarray(sub).view(np.uint8)
    if factor > 1:  # block maximum: dilate with an f x f kernel anchored at its corner, keep every f-th pixel
        small = cv2.dilate(small, np.ones((factor, factor), np.uint8), anchor=(0, 0),
                           borderType=cv2.BORDER_CONSTANT, borderValue=0)[::factor, ::factor]
    grow = max(0, math.ceil(dilation / factor))
    if grow:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        small = cv2.dilate(np.ascontiguousarray(small), kernel)
    count, _, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(small), connectivity=8)
    boxes: list[Box] = []
    for label in range(1, count):
        x, y, w, h = (int(v) for v in stats[label, :4])
        # Undo the dilation where it was not clipped by the edge, then scale back and clip to the bounding box.
        sh, sw = small.shape
        xs, ys = (x + grow if x > 0 else 0), (y + grow if y > 0 else 0)
        xe, ye = (x + w - grow if x + w < sw else sw), (y + h - grow if y + h < sh else sh)
        x0, y0 = max(0, xs * factor), max(0, ys * factor)
        x1, y1 = min(bx1 - bx0, xe * factor), min(by1 - by0, ye * factor)
        box = Box(bx0 + x0, by0 + y0, bx0 + x1, by0 + y1)
        if factor > 1:  # tighten the block-sized slack on the full-resolution mask, inside the small box only
            tight = bbox_of(mask[box.slices()])
            if tight is not None:
                box = tight.offset(box.x0, box.y0)
        boxes.append(box)
    return boxes


def merge_regions(hole_boxes: list[Box], width: int, height: int, margin: int | None = None) -> list[Region]:
    """Give each hole box its context margin and merge regions whose crop boxes overlap, until stable."""
    def region(hole_box: Box) -> Region:
        hole = Box(*hole_box)
        return Region(hole.grow(context_margin(hole, margin), (height, width)), hole)

    regions = merge_overlapping([region(b) for b in hole_boxes], lambda r: r.box,
                                lambda a, b: region(a.hole_box.union(b.hole_box)))
    return sorted(regions, key=lambda r: (r.box.y0, r.box.x0))


def find_regions(mask: np.ndarray, margin: int | None = None) -> list[Region]:
    """Regions of a bool H x W mask (True = hole), each with its crop box; empty list for an empty mask."""
    height, width = mask.shape[:2]
    return merge_regions(component_boxes(mask), width, height, margin)
