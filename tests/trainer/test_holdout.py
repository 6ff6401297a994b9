"""Held-out holes of internal fine-tuning: placed in the known area, never trained on, validated on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.trainer.conftest import write_photos
from trainer.config import TrainConfig, apply_overrides
from trainer.holdout import HOLDOUT_GAP_PX, holdout_items, place_holes
from trainer.inputs import internal_holdout, read_internal, training_dataset, validation_items


def _user(h: int, w: int) -> np.ndarray:
    user = np.zeros((h, w), bool)
    user[20:60, 30:80] = True
    return user


def test_holes_lie_in_the_known_area_apart_from_the_user_hole_and_each_other():
    user = _user(200, 240)
    holes = place_holes(user, 3, np.random.default_rng(1))
    count, labels = cv2.connectedComponents(holes.astype(np.uint8))
    assert count - 1 == 3
    near_user = cv2.dilate(user.astype(np.uint8), np.ones((2 * HOLDOUT_GAP_PX - 1,) * 2, np.uint8)) > 0
    assert not (holes & near_user).any()
    for label in range(1, count):
        others = (labels > 0) & (labels != label)
        grown = cv2.dilate((labels == label).astype(np.uint8), np.ones((2 * HOLDOUT_GAP_PX - 1,) * 2, np.uint8)) > 0
        assert not (grown & others).any()
    assert 0.02 < holes.mean() < 0.07


def test_no_room_gives_fewer_holes_not_overlaps():
    user = np.ones((80, 80), bool)
    user[:10, :10] = False
    assert not place_holes(user, 3, np.random.default_rng(0)).any()


def test_items_score_only_the_held_out_pixels():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    user = _user(120, 160)
    holes = place_holes(user, 2, np.random.default_rng(3))
    items = holdout_items(rgb, user, holes, 48, 2.0)
    assert len(items) == cv2.connectedComponents(holes.astype(np.uint8))[0] - 1 >= 1
    for item in items:
        scored = (item["mask"] * item["valid"])[0]
        assert item["image"].shape == (3, 48, 48) and scored.sum() > 0
        assert float(scored.mean()) < 0.6  # context around the hole is part of the crop


def test_items_are_cut_at_the_training_scale():
    """At scale 0.5 a held-out hole is shown shrunk by half (a 96 px window for 48 px items), as training sees it;
    the hole then covers about a quarter of the pixels it covers at the photo's own resolution."""
    rgb = np.random.default_rng(1).integers(0, 256, (200, 240, 3), dtype=np.uint8)
    user = np.zeros((200, 240), bool)
    holes = np.zeros((200, 240), bool)
    holes[90:106, 110:126] = True
    native = holdout_items(rgb, user, holes, 48, 2.0)[0]["mask"].sum()
    half = holdout_items(rgb, user, holes, 48, 2.0, scale=0.5)[0]["mask"].sum()
    assert native == 16 * 16 and 0.2 < float(half / native) < 0.35


@pytest.fixture
def internal_config(tmp_path: Path) -> TrainConfig:
    photo = write_photos(tmp_path / "photo", count=1, h=96, w=128) / "photo0.png"
    mask = np.zeros((96, 128), np.uint8)
    mask[10:40, 10:50] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    return apply_overrides(TrainConfig(), [f"internal.photo='{photo}'", f"internal.mask='{tmp_path / 'mask.png'}'",
                                           "data.size=32", "data.val_images=3"])


def test_training_never_sees_held_out_pixels_and_validation_fills_them(internal_config: TrainConfig):
    _rgb, user = read_internal(internal_config)
    holes = internal_holdout(internal_config, user)
    assert holes.any() and not (holes & user).any()
    dataset = training_dataset(internal_config, None)
    assert (dataset.user_mask[holes]).all() and (dataset.user_mask[user]).all()
    items, notes = validation_items(internal_config, None)
    assert notes == [] and items and all(i["bucket"] == "held-out holes in the known area" for i in items)
    assert np.array_equal(holes, internal_holdout(internal_config, user))  # the same holes on every call
