"""Validation on the fixed set: fill quality per mask bucket (engine.metrics), edge precision/recall, grids.

Validation items are the dataset's dicts of tensors (``image``, ``gray``, ``edges``, ``mask``) plus a
``bucket`` name; the same images with the same masks every time, so the figures of a run are comparable.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from engine import metrics
from engine.atomic import write_bytes_atomic
from engine.edges import EDGE_CURVE_THRESHOLDS, EDGE_THRESHOLD, curve_keys
from engine.networks.prefill import harmonic_fill
from engine.pixels import tensor_to_uint8


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _collate(items: Sequence[dict[str, Any]], device: torch.device) -> dict[str, torch.Tensor]:
    keys = [k for k, v in items[0].items() if isinstance(v, torch.Tensor)]
    return {k: torch.stack([item[k] for item in items]).to(device) for k in keys}


def round_floats(record: Any, digits: int = 4) -> Any:
    """Floats rounded for readable JSON; NaN becomes None."""
    if isinstance(record, float):
        return None if math.isnan(record) else round(record, digits)
    if isinstance(record, dict):
        return {k: round_floats(v, digits) for k, v in record.items()}
    if isinstance(record, list | tuple):
        return [round_floats(v, digits) for v in record]
    return record


@torch.no_grad()
def validate_stage(stage: Any, items: Sequence[dict[str, Any]], batch_size: int = 4,
                   grid_count: int = 0) -> tuple[dict[str, Any], np.ndarray | None]:
    """Run ``stage.infer`` on every item; return (per-bucket metrics, sample grid or None).

    Image metrics (filled images: the output inside the hole, the truth outside): ``psnr``, ``ssim``, ``l1``
    (% of 255), ``hole_psnr`` and ``lowband_psnr`` (the hole's structure, both images blurred by the item's
    ``lowband_sigma``, else ``metrics.LOWBAND_SIGMA``), with
    ``harmonic_lowband_psnr`` beside it: the harmonic prefill's score, the reference a structure model must beat;
    edge metrics: ``edge_precision`` and ``edge_recall`` inside the hole
    (edge probability above ``engine.edges.EDGE_THRESHOLD`` against the target edges), and the same at every
    ``EDGE_CURVE_THRESHOLDS`` (``edge_precision@0.3`` ...). ``all`` averages over every item.
    """
    per_bucket: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    # Grid rows spread over the set (consecutive items are often one photo with different masks).
    grid_rows = set(np.linspace(0, len(items) - 1, min(grid_count, len(items))).round().astype(int).tolist()
                    if grid_count > 0 and items else [])
    rows: list[np.ndarray] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        batch = _collate(chunk, stage.device)
        out = stage.infer(batch)
        harmonic = harmonic_fill(batch["image"], batch["mask"]) if "image" in out else None
        for i, item in enumerate(chunk):
            bucket = str(item.get("bucket", "all"))
            truth = tensor_to_uint8(batch["image"][i])
            hole = batch["mask"][i, 0].cpu().numpy() > 0.5
            # Internal fine-tuning items: pixels of the user's own hole have no ground truth and are not scored.
            unknown = batch["valid"][i, 0].cpu().numpy() < 0.5 if "valid" in batch else None
            if unknown is not None:
                hole &= ~unknown
            values: dict[str, float] = {}
            filled = None
            if "image" in out:
                m = batch["mask"][i]
                filled = tensor_to_uint8(out["image"][i] * m + batch["image"][i] * (1 - m))
                if unknown is not None:
                    filled[unknown] = truth[unknown]
                values["psnr"] = metrics.psnr(filled, truth)
                values["ssim"] = metrics.ssim(filled, truth)
                values["l1"] = metrics.l1_percent(filled, truth)
                values["hole_psnr"] = metrics.psnr(filled, truth, hole)
                sigma = float(item.get("lowband_sigma", metrics.LOWBAND_SIGMA))
                values["lowband_psnr"] = metrics.lowband_psnr(filled, truth, hole, sigma)
                reference = tensor_to_uint8(harmonic[i] * m + batch["image"][i] * (1 - m))
                values["harmonic_lowband_psnr"] = metrics.lowband_psnr(reference, truth, hole, sigma)
            edges = None
            if "edges" in out and stage.produces_edges:
                edges = out["edges"][i, 0].cpu().numpy()
                target = batch["edges"][i, 0].cpu().numpy() > 0.5
                precision, recall = metrics.edge_precision_recall(edges > EDGE_THRESHOLD, target, hole)
                values["edge_precision"], values["edge_recall"] = precision, recall
                for threshold in EDGE_CURVE_THRESHOLDS:  # the curve an operating point is chosen from
                    p_key, r_key = curve_keys(threshold)
                    values[p_key], values[r_key] = metrics.edge_precision_recall(edges > threshold, target, hole)
            elif "edges" in out:
                edges = out["edges"][i, 0].cpu().numpy()
            for key, value in values.items():
                per_bucket[bucket][key].append(value)
                if bucket != "all":
                    per_bucket["all"][key].append(value)
            if start + i in grid_rows:
                rows.append(_grid_row(truth, hole, edges, filled))
    table = {bucket: {k: _nanmean(v) for k, v in vals.items()} for bucket, vals in per_bucket.items()}
    table = {"all": table.pop("all", {}), **dict(sorted(table.items()))}
    for bucket in table:
        table[bucket]["count"] = len(next(iter(per_bucket[bucket].values()), []))
    grid = np.concatenate(rows, axis=0) if rows else None
    return table, grid


def _grid_row(truth: np.ndarray, hole: np.ndarray, edges: np.ndarray | None, filled: np.ndarray | None
              ) -> np.ndarray:
    """One grid row: masked input (hole white), edge map (if any), output (if any), ground truth."""
    masked = truth.copy()
    masked[hole] = 255
    tiles = [masked]
    if edges is not None:
        e = (np.clip(edges, 0, 1) * 255).astype(np.uint8)
        e = 255 - e  # dark edges on white, as EdgeConnect shows them
        tiles.append(np.repeat(e[..., None], 3, axis=2))
    if filled is not None:
        tiles.append(filled)
    tiles.append(truth)
    gap = np.full((truth.shape[0], 2, 3), 64, np.uint8)
    row: list[np.ndarray] = []
    for tile in tiles:
        row += [tile, gap]
    return np.concatenate([*row[:-1]], axis=1)


def write_grid(path: str | Path, grid: np.ndarray) -> None:
    """Save a grid (RGB uint8) as PNG atomically."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode the sample grid {path}")
    write_bytes_atomic(path, encoded.tobytes())


def table_markdown(table: dict[str, dict[str, float]]) -> str:
    """A validation table as Markdown (rows = buckets)."""
    columns = [c for c in ("psnr", "ssim", "l1", "hole_psnr", "lowband_psnr", "harmonic_lowband_psnr",
                             "edge_precision", "edge_recall", "count")
               if any(c in row for row in table.values())]
    lines = ["| bucket | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for bucket, row in table.items():
        cells = []
        for c in columns:
            v = row.get(c)
            cells.append("" if v is None or (isinstance(v, float) and math.isnan(v))
                         else (str(v) if isinstance(v, int) else f"{v:.3f}" if c in ("ssim", "edge_precision",
                                                                                       "edge_recall") else f"{v:.2f}"))
        lines.append(f"| {bucket} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
