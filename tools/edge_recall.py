"""Predict Edges scored on the val photos: precision and recall inside the hole against the truth's Canny edges.

    python tools/edge_recall.py --images ../shared/data/val --exclude '*boundaries*' \
        --nvidia ../shared/data/masks/nvidia_irregular [--limit 16] [--tolerance 0,2]

The masks are ``inpaint eval``'s seeded cases (5 per photo). Each case is scored three ways: the edge model's
proposals alone, the lines joined across the hole by ``engine.edge_lines`` alone, and both together (what
Predict Edges shows). Precision and recall are pooled over the pixels of all cases of a bucket (a case with no edge
in the hole then weighs nothing), at each ``--tolerance`` in px. The truth is Canny of the original photo at
full resolution, as the proposals are shown.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from unittest import mock

import numpy as np

from engine import evaluation as ev
from engine.api import FillOptions, FillRequest
from engine.edge_lines import connect_lines
from engine.edges import canny_edges, known_edges, to_gray
from engine.imageio import find_images, load_image
from engine.metrics import _dilate
from engine.pipeline import Engine

WAYS = ("model", "lines", "model + lines")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="folders to leave out (as inpaint eval)")
    parser.add_argument("--nvidia", type=Path, default=None, help="the NVIDIA irregular mask folder")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--model", default="default", help="the edge-guided fill model whose edges are shown")
    parser.add_argument("--tolerance", default="0,2", help="comma-separated px tolerances")
    args = parser.parse_args(argv)
    tolerances = [int(t) for t in args.tolerance.split(",")]
    engine = Engine(device="cpu")
    masks = ev.DefaultMasks(args.nvidia)
    # counts[(bucket, way, tolerance)] = [true predicted, predicted, found truth, truth]
    counts: dict[tuple, np.ndarray] = defaultdict(lambda: np.zeros(4, np.int64))
    for path in find_images(args.images, args.limit, exclude=args.exclude):
        truth_rgb = load_image(path).rgb
        h, w = truth_rgb.shape[:2]
        truth_edges = canny_edges(to_gray(truth_rgb))
        for bucket, mask in masks(str(path.relative_to(args.images)), h, w).items():
            if not mask.any() or mask.all():
                continue
            request = FillRequest(image=truth_rgb, mask=mask, model=args.model, options=FillOptions(device="cpu"))
            with mock.patch("engine.backends.connect_lines", lambda known, hole, gray: np.zeros_like(hole)):
                model = engine.predict_edges(request).edges > 0
            shown = engine.predict_edges(request).edges > 0
            masked = np.where(mask[..., None], 0, truth_rgb).astype(np.uint8)  # the hole's content is never read
            lines = connect_lines(known_edges(masked, mask), mask, to_gray(masked))
            target = truth_edges & mask
            for way, pred in zip(WAYS, (model & mask, lines, shown & mask)):
                for tol in tolerances:
                    c = counts[(bucket, way, tol)]
                    c += [int((pred & _dilate(truth_edges, tol)).sum()), int(pred.sum()),
                          int((target & _dilate(pred, tol)).sum()), int(target.sum())]
        print(f"{path.name}", flush=True)
    buckets = [*masks.buckets, "all"]
    for tol in tolerances:
        print(f"\n| bucket (tolerance {tol} px) | " + " | ".join(f"{way} P / R" for way in WAYS) + " |")
        print("|---|" + "---|" * len(WAYS))
        for bucket in buckets:
            cells = []
            for way in WAYS:
                c = counts[(bucket, way, tol)] if bucket != "all" else sum(
                    (counts[(b, way, tol)] for b in masks.buckets), np.zeros(4, np.int64))
                p = c[0] / c[1] if c[1] else float("nan")
                r = c[2] / c[3] if c[3] else float("nan")
                cells.append(f"{p:.3f} / {r:.3f} ({c[1]} px)")
            print(f"| {bucket} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
