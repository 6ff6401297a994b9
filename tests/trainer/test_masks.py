"""Mask mixture for training: config validation, folder errors, proportions, determinism."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import EngineError
from engine.masks import hole_ratio
from trainer.masks import MaskConfig, MaskConfigError, MaskGenerator, read_mask_file

SHARED_MASKS = Path(__file__).resolve().parents[3] / "shared" / "data" / "masks" / "nvidia_irregular"


def _write_masks(folder: Path, count: int = 4, size: int = 48) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        m = np.zeros((size, size), np.uint8)
        m[4 + i: 20 + 2 * i, 6: 30 + i] = 255  # white = hole
        cv2.imwrite(str(folder / f"{i:05d}.png"), m)
    return folder


def test_defaults_valid_and_normalised():
    cfg = MaskConfig()
    probs = cfg.probabilities
    assert sum(probs.values()) == pytest.approx(1.0)
    assert probs["irregular"] == 0
    MaskGenerator(cfg)  # no folder needed when irregular = 0


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"rectangle": -0.1}, "data.masks.rectangle: a probability must not be negative"),
    ({"rectangle": 0, "free_form": 0, "irregular": 0, "cellular": 0}, "at least one mask probability"),
    ({"cellular": float("nan")}, "data.masks.cellular: expected a number"),
    ({"free_form": "a lot"}, "data.masks.free_form: expected a number"),
    ({"rectangle_side_range": [0.8, 0.2]}, "data.masks.rectangle_side_range"),
    ({"cellular_ratio_range": [0.1]}, "data.masks.cellular_ratio_range: expected a pair"),
    ({"ratio_range": [0.2, 1.5]}, "data.masks.ratio_range"),
    ({"max_redraws": -1}, "data.masks.max_redraws"),
])
def test_config_validation_messages(kwargs, text):
    with pytest.raises(MaskConfigError, match=text.replace(".", r"\.")):
        MaskConfig(**kwargs)


def test_config_error_is_engine_and_value_error():
    assert issubclass(MaskConfigError, EngineError)
    assert issubclass(MaskConfigError, ValueError)


def test_validate_catches_values_set_after_construction():
    cfg = MaskConfig()
    cfg.free_form = -1.0
    with pytest.raises(MaskConfigError, match="free_form"):
        MaskGenerator(cfg)


def test_from_dict_round_trips_and_names_unknown_settings():
    cfg = MaskConfig.from_dict({"rectangle": 1, "cellular": 0, "ratio_range": [0.1, 0.6]})
    assert cfg.rectangle == 1 and cfg.cellular == 0 and cfg.ratio_range == [0.1, 0.6]
    assert MaskConfig.from_dict(dataclasses.asdict(cfg)) == cfg
    with pytest.raises(MaskConfigError, match=r"unknown mask setting\(s\): data\.masks\.rectangel"):
        MaskConfig.from_dict({"rectangel": 1})


def test_irregular_without_folder_is_clear_error(tmp_path):
    with pytest.raises(MaskConfigError, match="irregular_dir is not set"):
        MaskGenerator(MaskConfig(irregular=0.5))
    with pytest.raises(MaskConfigError, match="irregular mask folder not found"):
        MaskGenerator(MaskConfig(irregular=0.5, irregular_dir=str(tmp_path / "nope")))
    (tmp_path / "notes.txt").write_text("not a mask")
    with pytest.raises(MaskConfigError, match="no mask images"):
        MaskGenerator(MaskConfig(irregular=0.5, irregular_dir=str(tmp_path)))


def test_irregular_folder_ignored_when_probability_zero(tmp_path):
    gen = MaskGenerator(MaskConfig(irregular=0.0, irregular_dir=str(tmp_path / "nope")))
    assert gen.irregular_files == []


def test_read_mask_file_white_is_hole(tmp_path):
    m = np.zeros((10, 12), np.uint8)
    m[2:5, 3:9] = 255
    m[7, 7] = 100  # dark grey: not a hole
    cv2.imwrite(str(tmp_path / "m.png"), m)
    out = read_mask_file(tmp_path / "m.png")
    assert out.dtype == bool and out.sum() == 18 and not out[7, 7]
    (tmp_path / "bad.png").write_bytes(b"not a png")
    assert read_mask_file(tmp_path / "bad.png") is None


def test_irregular_masks_come_from_the_folder(tmp_path):
    folder = _write_masks(tmp_path / "masks")
    gen = MaskGenerator(MaskConfig(rectangle=0, free_form=0, cellular=0, irregular=1, irregular_dir=str(folder)))
    assert len(gen.irregular_files) == 4
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = gen(32, 40, rng)
        assert m.shape == (32, 40) and m.dtype == bool
        assert 0.02 < hole_ratio(m) < 0.7


def test_unreadable_mask_file_is_skipped(tmp_path):
    folder = _write_masks(tmp_path / "masks", count=2)
    (folder / "00009.png").write_bytes(b"\x89PNG broken")
    gen = MaskGenerator(MaskConfig(rectangle=0, free_form=0, cellular=0, irregular=1, irregular_dir=str(folder)))
    rng = np.random.default_rng(1)
    for _ in range(30):
        assert gen(24, 24, rng).any()
    assert {p.name for p in gen.unreadable} == {"00009.png"}


def test_all_mask_files_unreadable_is_clear_error(tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"junk")
    gen = MaskGenerator(MaskConfig(rectangle=0, free_form=0, cellular=0, irregular=1, irregular_dir=str(folder)))
    with pytest.raises(MaskConfigError, match="could be decoded"):
        gen(16, 16, np.random.default_rng(0))


def test_mixture_proportions(tmp_path):
    folder = _write_masks(tmp_path / "masks")
    cfg = MaskConfig(rectangle=1, free_form=2, irregular=1, cellular=0, irregular_dir=str(folder))
    gen = MaskGenerator(cfg)
    rng = np.random.default_rng(2)
    n = 4000
    kinds = [gen.draw_kind(rng) for _ in range(n)]
    counts = {k: kinds.count(k) / n for k in ("rectangle", "free_form", "irregular", "cellular")}
    assert counts["cellular"] == 0
    assert counts["rectangle"] == pytest.approx(0.25, abs=0.03)
    assert counts["free_form"] == pytest.approx(0.5, abs=0.03)
    assert counts["irregular"] == pytest.approx(0.25, abs=0.03)


def test_rectangle_only_gives_rectangles():
    gen = MaskGenerator(MaskConfig(rectangle=1, free_form=0, cellular=0))
    rng = np.random.default_rng(3)
    for _ in range(20):
        m = gen(40, 40, rng)
        rows, cols = np.nonzero(m)
        assert (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1) == m.sum()


def test_deterministic_given_generator(tmp_path):
    folder = _write_masks(tmp_path / "masks")
    cfg = MaskConfig(rectangle=1, free_form=1, irregular=1, cellular=1, irregular_dir=str(folder))
    a = MaskGenerator(cfg)
    b = pickle.loads(pickle.dumps(MaskGenerator(cfg)))  # as in a DataLoader worker
    for seed in range(12):
        np.testing.assert_array_equal(a(33, 47, np.random.default_rng(seed)), b(33, 47, np.random.default_rng(seed)))


def test_ratio_range_filter():
    cfg = MaskConfig(rectangle=1, free_form=1, cellular=0, ratio_range=[0.2, 0.3], max_redraws=50)
    gen = MaskGenerator(cfg)
    rng = np.random.default_rng(4)
    ratios = [hole_ratio(gen(64, 64, rng)) for _ in range(40)]
    assert sum(0.2 <= r <= 0.3 for r in ratios) >= 38


@pytest.mark.skipif(not SHARED_MASKS.is_dir(), reason="shared NVIDIA irregular masks not present")
def test_shared_nvidia_folder_works():
    gen = MaskGenerator(MaskConfig(rectangle=0, free_form=0, cellular=0, irregular=1,
                                   irregular_dir=str(SHARED_MASKS)))
    assert len(gen.irregular_files) > 100
    m = gen(64, 64, np.random.default_rng(0))
    assert m.shape == (64, 64) and m.any()


def test_broken_file_does_not_break_determinism(tmp_path):
    folder = _write_masks(tmp_path / "masks", count=3)
    (folder / "00001.png").write_bytes(b"junk")  # replaces a good one
    cfg = MaskConfig(rectangle=0, free_form=0, cellular=0, irregular=1, irregular_dir=str(folder))
    used, fresh = MaskGenerator(cfg), MaskGenerator(cfg)
    for seed in range(10):
        used(20, 20, np.random.default_rng(seed + 100))  # learns which files are bad
    for seed in range(10):
        np.testing.assert_array_equal(used(20, 20, np.random.default_rng(seed)),
                                      MaskGenerator(cfg)(20, 20, np.random.default_rng(seed)))
    assert fresh.unreadable == set()
