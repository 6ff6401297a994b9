"""The sketch demonstration runs end to end on tiny models and reports a score per fill."""

from __future__ import annotations

import numpy as np

from engine.imageio import load_image, save_image
from tools.sketch_demo import COLUMNS, THUMB, main


def test_sketch_demo_writes_grid(tmp_path, tiny_models_dir, capsys):
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    for i in range(2):
        save_image(photos / f"p{i}.png", rng.integers(0, 255, (60, 84, 3), dtype=np.uint8))
    out = tmp_path / "grid.png"
    assert main(["--images", str(photos), "--out", str(out), "--model", "edgeconnect-image"]) == 0
    grid = load_image(out).rgb
    assert grid.shape == (24 + 2 * THUMB, THUMB * len(COLUMNS), 3)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("p0.png", "p1.png"))]
    assert len(lines) == 2 and all(len(line.split("|")) == 6 for line in lines)
    for line in lines:
        for field, name in zip(line.split("|")[4:], ("traced", "diagonal"), strict=True):
            label, pairs = field.split(":")
            assert label.strip() == name
            coverage = [pair.split("/") for pair in pairs.split()]  # without / with, at 0, 1 and 2 px
            assert len(coverage) == 3 and all(0.0 <= float(x) <= 1.0 for pair in coverage for x in pair)
            without = [float(pair[0]) for pair in coverage]
            assert without == sorted(without)  # a wider tolerance never covers less
