"""Predict Edges scored on photos: the three ways (model, joined lines, both) per bucket and tolerance."""

from __future__ import annotations

import numpy as np

from engine.imageio import save_image
from tools.edge_recall import WAYS, main


def test_edge_recall_scores_every_bucket_three_ways(tmp_path, tiny_models_dir, capsys):
    photos = tmp_path / "photos"
    image = np.full((64, 96, 3), 150, np.uint8)
    image[:30] = 40  # a horizon across the photo: truth edges inside most holes
    image[40:44, :] = 90
    save_image(photos / "p0.png", image)
    assert main(["--images", str(photos), "--model", "edgeconnect-image", "--tolerance", "0,2"]) == 0
    out = capsys.readouterr().out
    tables = out.split("| bucket (tolerance ")[1:]
    assert [t.split(" px)")[0] for t in tables] == ["0", "2"]
    for table in tables:
        header, _, *rows = table.strip().splitlines()
        assert all(way in header for way in WAYS)
        assert rows[-1].startswith("| all |") and len(rows) == 6  # the five buckets and all
        for row in rows:
            cells = row.strip("| ").split(" | ")[1:]
            assert len(cells) == len(WAYS)
            for cell in cells:
                p, r = cell.split(" (")[0].split(" / ")
                assert p == "nan" or 0.0 <= float(p) <= 1.0
                assert r == "nan" or 0.0 <= float(r) <= 1.0
    # A wider tolerance never finds less (the "all" row, recall of the model and the union).
    def all_row_recalls(table: str) -> list[float]:
        cells = table.strip().splitlines()[-1].strip("| ").split(" | ")[1:]
        return [float(c.split(" (")[0].split(" / ")[1]) for c in cells]

    recalls = [all_row_recalls(t) for t in tables]
    assert recalls[1][0] >= recalls[0][0] and recalls[1][2] >= recalls[0][2]
