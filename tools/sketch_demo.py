"""Show what a user's edge sketch does: the same hole filled with the model's own edges and with a sketch.

The sketch stands in for a person tracing the structure that should continue through the hole: it is the
Canny edge map of the ground truth inside the hole (what a careful user would draw). A second variant
erases every edge in the hole ("no structure here"). For each photo the script prints hole PSNR of the three
fills, how much of the traced sketch the fill's own Canny edges cover with and without it, the same for a
diagonal line drawn across the hole (a line of the user's own, filled but not shown in the grid), and writes a
grid: masked input | model's edges | fill | user sketch | fill with sketch | erased-edges
fill | ground truth.

    python tools/sketch_demo.py --images ../shared/data/val --out docs/images/sketch.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from engine.api import FillRequest
from engine.edges import canny_edges, to_gray
from engine.evaluation import noise_hole
from engine.imageio import load_image, save_image
from engine.metrics import line_coverage, psnr
from engine.pipeline import Engine
from trainer.photos import find_photos

THUMB = 200
TOLERANCES = (0, 1, 2)  # px between a drawn line's pixel and an edge of the fill
COLUMNS = ("masked input", "model's edges", "fill", "user sketch", "fill + sketch", "edges erased", "truth")


def centre_hole(h: int, w: int, fraction: float = 0.34) -> np.ndarray:
    """A centred rectangular hole covering ``fraction`` of each side."""
    mask = np.zeros((h, w), bool)
    rh, rw = int(h * fraction), int(w * fraction)
    y0, x0 = (h - rh) // 2, (w - rw) // 2
    mask[y0:y0 + rh, x0:x0 + rw] = True
    return mask


def _edge_view(gray: np.ndarray, edges: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Dimmed photo with the hole outlined and edges inside it in ``colour``, known edges in white."""
    view = np.repeat((gray // 3)[..., None], 3, axis=2)
    view[edges & ~mask] = 255
    view[edges & mask] = colour
    outline = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    view[outline] = (90, 90, 90)
    return view


def _thumb(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = THUMB / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    tile = np.full((THUMB, THUMB, 3), 24, np.uint8)
    y0, x0 = (THUMB - small.shape[0]) // 2, (THUMB - small.shape[1]) // 2
    tile[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return tile


def demo_row(engine: Engine, truth: np.ndarray, model: str) -> tuple[list[np.ndarray], dict[str, float]]:
    """Fill one photo three ways; return the row's tiles and hole PSNR of each fill."""
    h, w = truth.shape[:2]
    mask = centre_hole(h, w)
    noisy = noise_hole(truth, mask, seed=h * 31 + w)
    truth_edges = canny_edges(to_gray(truth))
    sketch = truth_edges & mask
    own = engine.fill(FillRequest(noisy, mask, model=model))
    guided = engine.fill(FillRequest(noisy, mask, sketch_drawn=sketch, model=model))
    erased = engine.fill(FillRequest(noisy, mask, sketch_erased=mask.copy(), model=model))
    gray = to_gray(truth)
    masked = truth.copy()
    masked[mask] = 255
    own_edges = (own.edges > 127) if own.edges is not None else np.zeros_like(mask)
    tiles = [masked, _edge_view(gray, own_edges, mask, (255, 80, 80)), own.image,
             _edge_view(gray, sketch | (truth_edges & ~mask), mask, (80, 200, 255)), guided.image, erased.image,
             truth]
    scores = {name: psnr(result.image, truth, mask) for name, result in
              (("own edges", own), ("sketch", guided), ("edges erased", erased))}
    inner = ~np.asarray(cv2.dilate(np.uint8(~mask), np.ones((7, 7), np.uint8)), bool)  # 3 px off the border
    diagonal = diagonal_line(mask)
    drawn = engine.fill(FillRequest(noisy, mask, sketch_drawn=diagonal, model=model))
    for line_name, line, with_line in (("traced", sketch & inner, guided), ("diagonal", diagonal & inner, drawn)):
        for name, result in (("without", own), ("with", with_line)):
            fill_edges = canny_edges(to_gray(result.image))
            for tolerance in TOLERANCES:
                scores[f"{line_name} {name} {tolerance}"] = line_coverage(fill_edges, line, tolerance)
    return [_thumb(t) for t in tiles], scores


def diagonal_line(mask: np.ndarray) -> np.ndarray:
    """A 1 px straight line drawn across the hole's box from 30 % down its left side to 70 % down its right:
    a line of the user's own, which the photo need not hold."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    line = np.zeros(mask.shape, np.uint8)
    cv2.line(line, (x0, round(y0 + 0.3 * (y1 - y0))), (x1, round(y0 + 0.7 * (y1 - y0))), 1, 1)
    return line.astype(bool) & mask


def header_row() -> np.ndarray:
    """Column labels over the grid."""
    row = np.full((24, THUMB * len(COLUMNS), 3), 255, np.uint8)
    for i, label in enumerate(COLUMNS):
        cv2.putText(row, label, (i * THUMB + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/sketch_demo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True, help="folder of photos")
    parser.add_argument("--limit", type=int, default=4, help="number of photos (default 4)")
    parser.add_argument("--model", default="default", help="fill backend (default: the bundled pair)")
    parser.add_argument("--out", type=Path, required=True, help="grid PNG to write")
    args = parser.parse_args(argv)
    engine = Engine()
    rows, header = [], ("photo | own edges | sketch | edges erased (hole PSNR dB) | the traced sketch, then a "
                        "diagonal line of the user's own, continued without / with it: share of its pixels within "
                        f"{' / '.join(map(str, TOLERANCES))} px of a Canny edge of the fill")
    print(f"model: {engine.resolve_model(args.model)}\n{header}")
    for path in find_photos(args.images, args.limit):
        tiles, scores = demo_row(engine, load_image(path).rgb, args.model)
        rows.append(np.concatenate(tiles, axis=1))
        print(f"{path.name} | " + " | ".join(f"{scores[k]:.2f}" for k in ("own edges", "sketch", "edges erased"))
              + "".join(f" | {line}: " + "  ".join(f"{scores[f'{line} without {t}']:.2f}/"
                                                   f"{scores[f'{line} with {t}']:.2f}" for t in TOLERANCES)
                        for line in ("traced", "diagonal")))
    if not rows:
        print(f"no photos found in {args.images}", file=sys.stderr)
        return 1
    save_image(args.out, np.concatenate([header_row(), *rows], axis=0))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
