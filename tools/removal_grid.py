"""The object-removal grid of docs/quality.md: hand-drawn object masks on val photos, filled by each method.

    python tools/removal_grid.py --images ../shared/data/val --out docs/images/removal-grid.png \
        [--full /tmp/removals] [--methods telea,patchmatch,edgeconnect-preview-image@0,default]

The masks and the photo each belongs to are in ``docs/removals/`` (``cases.json`` + one PNG per photo; white =
remove). Each row of the grid: the masked input, one column per method, the original. ``--full`` also writes
every fill at full size (``<photo>-<method>.png``) for a look at 100 %.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from engine.api import FillOptions, FillRequest
from engine.cli_common import backend_spec
from engine.imageio import load_image, load_mask
from engine.pipeline import Engine

CASES = Path(__file__).resolve().parent.parent / "docs" / "removals"
DEFAULT_METHODS = "telea,patchmatch,edgeconnect-preview-image@0,default"
CELL = 240  # px width of one grid cell
LABEL_H = 18


def _cell(rgb: np.ndarray, label: str | None = None) -> np.ndarray:
    h, w = rgb.shape[:2]
    height = round(h * CELL / w)
    out = cv2.resize(rgb, (CELL, height), interpolation=cv2.INTER_AREA)
    if label:
        cv2.rectangle(out, (0, 0), (CELL, LABEL_H), (0, 0, 0), -1)
        cv2.putText(out, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _masked(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = rgb.copy()
    out[mask] = (0.45 * out[mask] + 0.55 * np.array([255, 40, 40])).astype(np.uint8)
    return out


def _row(cells: list[np.ndarray]) -> np.ndarray:
    height = max(c.shape[0] for c in cells)
    padded = [np.pad(c, ((0, height - c.shape[0]), (0, 2), (0, 0)), constant_values=255) for c in cells]
    return np.hstack(padded)


def write_grid(rows: list[np.ndarray], out: Path) -> None:
    """Stack the rows (padded white to the widest) and write them as one PNG."""
    width = max(r.shape[1] for r in rows)
    grid = np.vstack([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out} ({len(rows)} rows)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True, help="the val photo folder the cases name")
    parser.add_argument("--out", type=Path, required=True, help="grid PNG to write")
    parser.add_argument("--full", type=Path, help="folder for the full-size fills")
    parser.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default {DEFAULT_METHODS})")
    parser.add_argument("--only", help="comma-separated photo stems to run (default all)")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    cases = json.loads((CASES / "cases.json").read_text())
    if args.only:
        cases = {k: v for k, v in cases.items() if k in args.only.split(",")}
    engine = Engine(device="cpu")
    if args.full:
        args.full.mkdir(parents=True, exist_ok=True)
    rows = []
    for stem, case in cases.items():
        rgb = load_image(args.images / case["photo"]).rgb
        mask = load_mask(CASES / f"{stem}.png")
        cells = [_cell(_masked(rgb, mask), f"{case['object']} ({100 * mask.mean():.0f} %)")]
        for method in methods:
            started = time.perf_counter()
            name, texture = backend_spec(method)  # NAME@S: that texture strength (edgeconnect-preview-image@0 is
            # the neural fill before copied texture existed)
            out = engine.fill(FillRequest(image=rgb, mask=mask, model=name,
                                          options=FillOptions(device="cpu", texture=texture))).image
            seconds = time.perf_counter() - started
            print(f"{stem:40s} {method:28s} {seconds:6.2f} s", flush=True)
            cells.append(_cell(out, method))
            if args.full:
                cv2.imwrite(str(args.full / f"{stem}-{method}.png"), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
        cells.append(_cell(rgb, "original"))
        rows.append(_row(cells))
    write_grid(rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
