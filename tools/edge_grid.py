"""Predict Edges on the object-removal cases: the edges each edge model proposes inside the hole, side by side.

    python tools/edge_grid.py --images ../shared/data/val --models lama-structure-image,other-image \
        --out docs/images/predict-edges.png [--only 42049,361010]

``--models`` names edge-guided fill models (their card's companion is the edge model that runs). Each row: the
masked input, one ``inpaint edges --visual`` picture per model (known edges white, proposed edges cyan, the hole
outlined in magenta). The object is gone from the photo in these cases, so there is no truth to draw: look for
lines of the background (a branch, a field's edge, a horizon) carried across the hole.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from removal_grid import CASES, _cell, _masked, _row

from engine.api import FillOptions, FillRequest
from engine.cli_fill import edge_visual
from engine.edges import known_edges
from engine.imageio import load_image, load_mask
from engine.pipeline import Engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True, help="the val photo folder the cases name")
    parser.add_argument("--models", required=True, help="comma-separated edge-guided models")
    parser.add_argument("--out", type=Path, required=True, help="grid PNG to write")
    parser.add_argument("--only", help="comma-separated photo stems to run (default all)")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    cases = json.loads((CASES / "cases.json").read_text())
    if args.only:
        cases = {k: v for k, v in cases.items() if k in args.only.split(",")}
    engine = Engine(device="cpu")
    rows = []
    for stem, case in cases.items():
        rgb = load_image(args.images / case["photo"]).rgb
        mask = load_mask(CASES / f"{stem}.png")
        cells = [_cell(_masked(rgb, mask), case["object"])]
        for model in models:
            result = engine.predict_edges(FillRequest(image=rgb, mask=mask, model=model,
                                                      options=FillOptions(device="cpu")))
            edges = known_edges(rgb, mask)
            for x0, y0, x1, y1 in result.regions or [(0, 0, rgb.shape[1], rgb.shape[0])]:
                edges[y0:y1, x0:x1] = result.edges[y0:y1, x0:x1] > 0
            inside = int((edges & mask).sum())
            print(f"{stem:10s} {model:28s} {inside:6d} edge px in the hole", flush=True)
            cells.append(_cell(edge_visual(rgb, mask, edges, None), model))
        rows.append(_row(cells))
    width = max(r.shape[1] for r in rows)
    grid = np.vstack([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
