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

from removal_grid import CASES, _cell, _masked, _row, write_grid

from engine.api import FillOptions, FillRequest
from engine.cli_fill import edge_visual, shown_edges
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
            edges = shown_edges(rgb, mask, result)
            inside = int((edges & mask).sum())
            print(f"{stem:10s} {model:28s} {inside:6d} edge px in the hole", flush=True)
            cells.append(_cell(edge_visual(rgb, mask, edges, None), model))
        rows.append(_row(cells))
    write_grid(rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
