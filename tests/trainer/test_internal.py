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


def test_engine_scales_follow_the_hole_and_the_working_resolution() -> None:
    from trainer.internal import engine_scales

    small = np.zeros((300, 400), bool)
    small[100:140, 150:200] = True  # crop 50 + 2 x 48 = 146 px: filled at the photo's own resolution
    assert engine_scales(small, 256) == [0.8, 1.0]
    big = np.zeros((3000, 4000), bool)
    big[1000:2000, 1000:2200] = True  # crop 2 x 1200 = 2400 px shrunk to 256
    low, high = engine_scales(big, 256)
    assert abs(low - 256 / 2400 / 1.25) < 1e-3 and abs(high - 256 / 2400 * 1.25) < 1e-3
    both = big.copy()
    both[100:120, 100:120] = True  # a second, small hole far away: both scales are covered
    assert engine_scales(both, 256)[0] == low and engine_scales(both, 256)[1] == 1.0
    assert engine_scales(np.zeros((50, 50), bool), 256) == [0.8, 1.0]


def test_a_finetune_keeps_the_working_resolution_of_its_base(tmp_path: Path) -> None:
    """The crops of a fine-tune (24 px here) say nothing about the scale the base runs at (32 px): the card keeps
    the base's, or the engine would shrink every fill of the new model to the crop size."""
    from engine.model_files import read_card

    photo = write_photos(tmp_path / "photo", count=1, h=64, w=72) / "photo0.png"
    cv2.imwrite(str(tmp_path / "mask.png"), np.zeros((64, 72), np.uint8))
    edge, image = save_tiny_pair(tmp_path / "base")
    finetune_on_photo(photo, tmp_path / "mask.png", image, tmp_path / "run", steps=2, size=24, edge_model=edge)
    tuned = export_run(tmp_path / "run", tmp_path / "models", companion="t-edge").models[0]
    assert read_card(image).resolution == 32 and read_card(tuned).resolution == 32
    assert read_card(export_run(tmp_path / "run", tmp_path / "other", resolution=64).models[0]).resolution == 64


def test_the_crop_scales_come_from_the_mask_as_training_reads_it(tmp_path: Path) -> None:
    """A mask saved at half the photo's size is resized to the photo before the engine's scales are taken."""
    from trainer.internal import engine_scales, internal_config

    photo = write_photos(tmp_path / "photo", count=1, h=96, w=128) / "photo0.png"
    full = np.zeros((96, 128), np.uint8)
    full[40:60, 50:70] = 255
    cv2.imwrite(str(tmp_path / "full.png"), full)
    cv2.imwrite(str(tmp_path / "half.png"), cv2.resize(full, (64, 48), interpolation=cv2.INTER_NEAREST))
    _edge, image = save_tiny_pair(tmp_path / "base")
    scales = [internal_config(photo, tmp_path / f"{name}.png", image, tmp_path / name).internal.scale
              for name in ("full", "half")]
    assert scales[0] == scales[1] == engine_scales(full > 0, 32)
    assert internal_config(photo, tmp_path / "nope.png", image, tmp_path / "x").internal.scale == []
