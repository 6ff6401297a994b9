"""The cached copy: a second run reads the stored copy back, a different job gets its own entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.texture import copier, synthesis
from engine.texture.native import load_patchmatch
from tools import cached_copy

needs_wheel = pytest.mark.skipif(load_patchmatch()[0] is None, reason="the pypatchmatch wheel does not load here")


def _job(hole_left: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    hole = np.zeros((48, 64), bool)
    hole[16:32, hole_left:hole_left + 16] = True
    return image, hole, hole.copy()


def test_the_key_follows_every_array():
    image, hole, excluded = _job()
    key = cached_copy.copy_key(image, hole, excluded)
    assert key == cached_copy.copy_key(image.copy(), hole.copy(), excluded.copy())
    assert key != cached_copy.copy_key(*_job(hole_left=24))
    changed = image.copy()
    changed[0, 0, 0] ^= 1
    assert key != cached_copy.copy_key(changed, hole, excluded)


@needs_wheel
def test_a_second_run_reads_the_stored_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cached_copy.CachedCopier, "folder", tmp_path)
    job = _job()
    first = cached_copy.CachedCopier()
    first.submit(*job)
    copied = first.result()
    first.stop()
    assert copied is not None and len(list(tmp_path.glob("*.npy"))) == 1

    def no_child(*args: object) -> None:
        raise AssertionError("a cached job must not start the copy process")

    monkeypatch.setattr(copier.NativeCopier, "submit", no_child)
    second = cached_copy.CachedCopier()
    second.submit(*job)
    assert np.array_equal(second.result(), copied)


def test_install_routes_the_pipeline_and_replaces_compose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import engine.pipeline as pipeline

    monkeypatch.setattr(pipeline, "NativeCopier", pipeline.NativeCopier)
    monkeypatch.setattr(synthesis, "compose", synthesis.compose)
    monkeypatch.setattr(cached_copy.CachedCopier, "folder", cached_copy.CachedCopier.folder)
    variant = tmp_path / "variant.py"
    variant.write_text("def compose(structure, copied, image, hole, structure_scale=1.0):\n    return copied\n")
    cached_copy.install(tmp_path / "cache", variant)
    assert pipeline.NativeCopier is cached_copy.CachedCopier and (tmp_path / "cache").is_dir()
    marker = np.ones((2, 2, 3), np.float32)
    assert synthesis.compose(None, marker, None, None) is marker

    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(SystemExit, match="no compose"):
        cached_copy.install(tmp_path / "cache", empty)
