"""Backends: registry, sketch overrides, edges, classical fills, inference without gradients, OOM fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.api import FillRequest
from engine.backends import (
    EdgeConnectBackend,
    HarmonicBackend,
    NavierStokesBackend,
    TeleaBackend,
    WorkInput,
    apply_sketch,
    create_backend,
    list_backends,
)
from engine.errors import EngineError
from engine.model_store import ModelStore
from engine.pipeline import Engine


def _photo(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    stripes = ((x // 8) % 2 * 120 + 60).astype(np.uint8)
    return np.stack([stripes, (y * 2 % 256).astype(np.uint8), np.full_like(stripes, 90)], axis=-1)


def test_registry_names_every_backend(tiny_models_dir):
    store = ModelStore()
    kinds = {info.name: info.kind for info in list_backends(store)}
    assert kinds == {"edgeconnect-image": "neural", "glcic": "completion", "telea": "classical",
                     "navier-stokes": "classical", "harmonic": "classical", "patchmatch": "classical"}
    assert isinstance(create_backend("telea", store), TeleaBackend)
    assert isinstance(create_backend("Navier-Stokes", store), NavierStokesBackend)
    assert isinstance(create_backend("edgeconnect-image", store), EdgeConnectBackend)
    with pytest.raises(EngineError, match="Unknown model"):
        create_backend("lama", store)


def test_apply_sketch_erasing_wins():
    edges = np.zeros((4, 4), np.float32)
    edges[0, 0] = 0.9
    drawn = np.zeros((4, 4), bool)
    drawn[1, :] = True
    erased = np.zeros((4, 4), bool)
    erased[0, 0] = erased[1, 1] = True
    out = apply_sketch(edges, drawn, erased)
    assert out[1, 0] == 1.0 and out[1, 1] == 0.0 and out[0, 0] == 0.0


@pytest.mark.parametrize("size", [(60, 60), (150, 170)])  # at and above the tiny models' working resolution
def test_sketch_overrides_are_honoured(tiny_models_dir, size):
    h, w = size
    image = _photo(h, w)
    mask = np.zeros((h, w), bool)
    mask[h // 4:3 * h // 4, w // 4:3 * w // 4] = True
    drawn = np.zeros((h, w), bool)
    drawn[h // 2, w // 4 - 5:3 * w // 4 + 5] = True  # a horizontal line across the hole
    erased = np.zeros((h, w), bool)
    erased[h // 4:3 * h // 4, w // 2 - 2:w // 2 + 3] = True  # "no edge" along a vertical band
    engine = Engine(cpu_threads=1)
    plain = engine.fill(FillRequest(image, mask))
    sketched = engine.fill(FillRequest(image, mask, sketch_drawn=drawn, sketch_erased=erased))
    edges = sketched.edges
    assert edges is not None
    assert (edges[drawn & mask & ~erased] == 255).all()
    assert (edges[erased & mask] == 0).all()
    assert np.array_equal(sketched.image[~mask], image[~mask])
    assert not np.array_equal(sketched.image[mask], plain.image[mask])  # the fill follows the sketch
    # Only the sketch changes the guide: predict_edges shows the same map.
    predicted = engine.predict_edges(FillRequest(image, mask, sketch_drawn=drawn, sketch_erased=erased))
    assert np.array_equal(predicted.edges, edges)


def test_known_edges_outside_the_hole_come_from_the_photo(tiny_models_dir):
    image = _photo(64, 64)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:40] = True
    result = Engine().predict_edges(FillRequest(image, mask))
    ring = np.zeros_like(mask)
    ring[5:59, 5:59] = True
    ring &= ~mask
    assert result.edges[ring].any()  # the stripes' borders


def test_networks_run_without_autograd(tiny_models_dir):
    backend = create_backend("edgeconnect-image", ModelStore())
    work = WorkInput(_photo(40, 44), np.zeros((40, 44), bool))
    work.mask[10:20, 10:20] = True
    work.image[work.mask] = 0
    with torch.enable_grad():
        edges = backend.complete_edges(work, torch.device("cpu"))
        out = backend.fill(work, edges, torch.device("cpu"))
    assert edges.shape == (40, 44) and out.shape == (40, 44, 3)
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0


def test_classical_backends_fill_smoothly():
    image = np.full((50, 50, 3), 120, np.uint8)
    mask = np.zeros((50, 50), bool)
    mask[20:30, 20:30] = True
    for backend in (TeleaBackend(), NavierStokesBackend(), HarmonicBackend()):
        work = WorkInput(image.copy(), mask)
        work.image[mask] = 0
        out = backend.fill(work, None, torch.device("cpu"))
        assert np.abs(out[mask].astype(int) - 120).max() <= 3


def test_gpu_out_of_memory_falls_back_to_cpu(tiny_models_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    original_fill = EdgeConnectBackend.fill
    original_edges = EdgeConnectBackend.complete_edges

    def fail_on_gpu(original):
        def wrapper(self, work, *args):
            if args[-1].type == "cuda":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            return original(self, work, *args)
        return wrapper

    monkeypatch.setattr(EdgeConnectBackend, "fill", fail_on_gpu(original_fill))
    monkeypatch.setattr(EdgeConnectBackend, "complete_edges", fail_on_gpu(original_edges))
    engine = Engine()
    engine.device = torch.device("cuda", 0)  # pretend; every GPU call runs out of memory
    image = _photo(48, 48)
    mask = np.zeros((48, 48), bool)
    mask[10:30, 10:30] = True
    result = engine.fill(FillRequest(image, mask, model="edgeconnect-image"))
    assert result.device == "cpu"
    assert any("ran out of memory" in m for m in result.messages)
    assert np.array_equal(result.image[~mask], image[~mask])


@pytest.mark.parametrize("backend", [TeleaBackend, NavierStokesBackend])
def test_opencv_fills_of_a_one_row_photo_are_repeatable_and_ignore_the_hole(backend):
    image = np.random.default_rng(0).integers(0, 256, (1, 9, 3), dtype=np.uint8)
    mask = np.zeros((1, 9), bool)
    mask[0, 3:6] = True
    results = set()
    for hole_value in (0, 255):
        for _ in range(100):
            request = image.copy()
            request[mask] = hole_value
            results.add(backend().fill(WorkInput(request, mask), None, torch.device("cpu")).tobytes())
    assert len(results) == 1
