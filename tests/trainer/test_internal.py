"""Internal fine-tuning on one photo: trains on its known area and improves fills there."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.trainer.conftest import save_tiny_pair, write_photos
from trainer.export import export_run
from trainer.internal import finetune_on_photo, photo_fill_psnr
from trainer.records import read_records


def test_finetune_on_photo_improves_its_fills(tmp_path: Path) -> None:
    photo = write_photos(tmp_path / "photo", count=1, h=64, w=72) / "photo0.png"
    user = np.zeros((64, 72), np.uint8)
    user[40:60, 50:70] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), user)
    edge, image = save_tiny_pair(tmp_path / "base")
    rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    before = photo_fill_psnr(image, edge, rgb, user > 0, count=4, size=32)

    seen: list[dict] = []
    summary = finetune_on_photo(photo, tmp_path / "mask.png", image, tmp_path / "run", progress_fn=seen.append,
                                steps=20, size=32, batch_size=2, lr=2e-3)
    assert summary.status == "completed" and seen[-1]["kind"] == "end"
    losses = [r["losses"] for r in read_records(tmp_path / "run", "train")]
    assert set(losses[0]) == {"image/g_l1"}  # L1 only: no discriminator by default
    vals = read_records(tmp_path / "run", "val")
    assert [v["step"] for v in vals] == [0, 20]  # the base is validated before the first step
    result = export_run(tmp_path / "run", tmp_path / "models", companion="t-edge")
    tuned = result.models[0]
    assert tuned.stem == "t-photo-image"
    after = photo_fill_psnr(tuned, edge, rgb, user > 0, count=4, size=32)
    assert after["hole_psnr"] > before["hole_psnr"] + 1.0, (before, after)
