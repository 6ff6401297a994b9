"""End-to-end fills through Engine: known pixels untouched, hole content ignored, sizes, errors, cancel."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import FillOptions, FillRequest
from engine.errors import EngineError, FillCancelled, MaskError
from engine.pipeline import EMPTY_MASK_MESSAGE, Engine

BACKENDS = ["edgeconnect-image", "glcic", "telea", "navier-stokes"]


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w, 1), y * 255 / max(h, 1), (x + y) % 64 * 4], axis=-1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def engine(tiny_models_dir) -> Engine:
    return Engine(cpu_threads=1)


@pytest.mark.parametrize("model", BACKENDS)
def test_outside_mask_identical_and_noise_under_mask_ignored(engine, model):
    image = _photo(97, 131)
    mask = np.zeros(image.shape[:2], bool)
    mask[30:60, 40:90] = True
    mask[80:97, 0:20] = True  # touches two borders
    noisy = image.copy()
    noisy[mask] = np.random.default_rng(5).integers(0, 256, (int(mask.sum()), 3), dtype=np.uint8)
    first = engine.fill(FillRequest(image, mask, model=model))
    second = engine.fill(FillRequest(noisy, mask, model=model))
    assert first.backend == model
    assert np.array_equal(first.image[~mask], image[~mask])
    assert np.array_equal(first.image, second.image)
    assert not np.array_equal(first.image[mask], image[mask])
    assert image.dtype == first.image.dtype and image.shape == first.image.shape


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (13, 7), (31, 97), (127, 101)])
@pytest.mark.parametrize("model", ["edgeconnect-image", "glcic", "telea"])
def test_odd_and_prime_sizes(engine, size, model):
    h, w = size
    image = _photo(h, w)
    mask = np.zeros((h, w), bool)
    mask[h // 2, w // 2] = True
    if h * w > 1:
        result = engine.fill(FillRequest(image, mask, model=model))
        assert result.image.shape == image.shape
        assert np.array_equal(result.image[~mask], image[~mask])
    else:
        with pytest.raises(MaskError, match="whole image"):
            engine.fill(FillRequest(image, mask, model=model))


def test_several_separate_holes_each_filled(engine):
    image = _photo(300, 400)
    mask = np.zeros((300, 400), bool)
    mask[10:20, 10:20] = True
    mask[250:280, 350:390] = True
    mask[140:150, 200:210] = True
    result = engine.fill(FillRequest(image, mask, model="edgeconnect-image"))
    assert len(result.regions) == 3
    assert np.array_equal(result.image[~mask], image[~mask])
    for x0, y0, x1, y1 in result.regions:
        assert mask[y0:y1, x0:x1].any()
    assert set(result.timings) >= {"crop", "edges", "image", "upsample", "composite"}


def test_empty_mask_returns_image_unchanged_with_message(engine):
    image = _photo(40, 50)
    result = engine.fill(FillRequest(image, np.zeros((40, 50), bool)))
    assert np.array_equal(result.image, image) and result.regions == []
    assert EMPTY_MASK_MESSAGE in result.messages


def test_size_mismatch_names_both_sizes(engine):
    with pytest.raises(MaskError, match=r"50 x 40.*60 x 40"):
        engine.fill(FillRequest(_photo(40, 60), np.zeros((40, 50), bool)))
    with pytest.raises(MaskError, match="sketch"):
        engine.fill(FillRequest(_photo(40, 60), np.ones((40, 60), bool), sketch_drawn=np.zeros((4, 6), bool)))


def test_dtypes_converted_or_refused(engine):
    image = _photo(30, 30)
    mask = np.zeros((30, 30), np.uint8)
    mask[10:20, 10:20] = 255
    as_float = engine.fill(FillRequest(image.astype(np.float32) / 255, mask, model="telea"))
    assert as_float.image.dtype == np.uint8 and np.array_equal(as_float.image[mask == 0], image[mask == 0])
    with pytest.raises(EngineError, match="H x W x 3"):
        engine.fill(FillRequest(image[..., 0], mask))
    with pytest.raises(EngineError, match=r"\[0, 1\]"):
        engine.fill(FillRequest(image.astype(np.float32), mask))


def test_cancel_raises(engine):
    image = _photo(100, 100)
    mask = np.zeros((100, 100), bool)
    mask[40:60, 40:60] = True
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(FillCancelled):
        engine.fill(FillRequest(image, mask), cancel=cancel)


def test_progress_reaches_one(engine):
    image = _photo(80, 80)
    mask = np.zeros((80, 80), bool)
    mask[10:30, 10:30] = True
    seen: list[float] = []
    engine.fill(FillRequest(image, mask), progress=lambda f, label: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_default_resolves_to_the_structure_pair_then_harmonic(tiny_models_dir, monkeypatch, tmp_path):
    from engine.api import PREFERRED_IMAGE_MODEL
    from engine.model_files import ModelCard, save_model
    from engine.networks import FFCStructureGenerator

    assert Engine().resolve_model("default") == "harmonic"  # a pair of another name is not the default
    save_model(FFCStructureGenerator(base_channels=8, residual_blocks=1).eval(),
               ModelCard(PREFERRED_IMAGE_MODEL, "lama-ffc", {"base_channels": 8, "residual_blocks": 1}, "image", 64,
                         companion="edgeconnect-edge"), tiny_models_dir)
    assert Engine().resolve_model("default") == PREFERRED_IMAGE_MODEL
    automatic = Engine().models()[0]  # the engine says what "Automatic" is now; the window does not re-derive it
    assert (automatic.name, automatic.resolves_to, automatic.structure_source) == ("default", PREFERRED_IMAGE_MODEL,
                                                                                    True)
    assert automatic.uses_edges is True  # the structure pair is edge-guided
    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", str(tmp_path / "none"))
    plain = Engine()
    assert plain.resolve_model("default") == "harmonic"
    assert plain.models()[0].name == "default"
    assert {m.name for m in plain.models()[1:]} == {"telea", "navier-stokes", "harmonic", "patchmatch"}
    assert (plain.models()[0].resolves_to, plain.models()[0].uses_edges) == ("harmonic", False)
    assert Engine(default_model="navier-stokes").resolve_model("default") == "navier-stokes"
    assert Engine(default_model="navier-stokes").models()[0].resolves_to == "navier-stokes"


def test_the_structure_pair_fills_on_known_edges_and_the_sketch_only(tiny_models_dir, monkeypatch):
    """lama-ffc was trained on the known edges plus a sketch: a fill never feeds it the edge model's guesses,
    while Predict Edges still runs the edge model."""
    from engine.api import PREFERRED_IMAGE_MODEL
    from engine.backends import EdgeConnectBackend
    from engine.model_files import ModelCard, save_model
    from engine.networks import FFCStructureGenerator

    save_model(FFCStructureGenerator(base_channels=8, residual_blocks=1).eval(),
               ModelCard(PREFERRED_IMAGE_MODEL, "lama-ffc", {"base_channels": 8, "residual_blocks": 1}, "image", 64,
                         companion="edgeconnect-edge"), tiny_models_dir)
    calls: list[int] = []
    original = EdgeConnectBackend.complete_edges
    monkeypatch.setattr(EdgeConnectBackend, "complete_edges",
                        lambda self, work, device: calls.append(1) or original(self, work, device))
    image = _photo(64, 64)
    mask = np.zeros((64, 64), bool)
    mask[20:44, 20:44] = True
    drawn = np.zeros((64, 64), bool)
    drawn[32, 10:54] = True
    engine = Engine(cpu_threads=1)
    result = engine.fill(FillRequest(image, mask, model=PREFERRED_IMAGE_MODEL, sketch_drawn=drawn))
    assert calls == [] and result.edges is not None and result.sketch_followed
    assert result.edges[32, 24:40].min() == 255  # the sketch guided it
    engine.predict_edges(FillRequest(image, mask, model=PREFERRED_IMAGE_MODEL))
    assert calls == [1]


def test_the_result_says_whether_the_sketch_guided_the_fill(engine):
    image = _photo(64, 64)
    mask = np.zeros((64, 64), bool)
    mask[20:44, 20:44] = True
    line = np.zeros((64, 64), bool)
    line[32, 10:54] = True

    def followed(model: str, texture: float | None = None, drawn=line, erased=None) -> bool:
        request = FillRequest(image, mask, model=model, sketch_drawn=drawn, sketch_erased=erased,
                              options=FillOptions(texture=texture))
        return engine.fill(request).sketch_followed

    assert followed("harmonic")  # the texture copy follows the drawn line
    assert not followed("telea")  # no edges, no texture stage
    assert not followed("harmonic", texture=0.0)  # the structure alone ignores lines
    assert not followed("harmonic", drawn=None, erased=line)  # the copy does not read erased edges
    assert not followed("harmonic", drawn=~mask & line)  # a line outside the hole guides nothing


def test_unknown_model_and_device_are_clear_errors(engine):
    with pytest.raises(EngineError, match=r"Unknown model 'nope'.*telea"):
        engine.fill(FillRequest(_photo(20, 20), np.ones((20, 20), bool), model="nope"))
    with pytest.raises(EngineError, match="edge model"):
        engine.fill(FillRequest(_photo(20, 20), np.ones((20, 20), bool), model="edgeconnect-edge"))
    with pytest.raises(EngineError, match="Unknown device"):
        Engine(device="tpu")


def test_predict_edges_leaves_image_and_marks_edges(engine):
    image = _photo(90, 90)
    mask = np.zeros((90, 90), bool)
    mask[30:60, 30:60] = True
    result = engine.predict_edges(FillRequest(image, mask))
    assert np.array_equal(result.image, image)
    assert result.edges is not None and result.edges.shape == (90, 90) and result.edges.dtype == np.uint8


def test_predict_edges_uses_the_edge_models_operating_threshold(tiny_models_dir):
    import json

    image = _photo(90, 90)
    mask = np.zeros((90, 90), bool)
    mask[30:60, 30:60] = True
    card_file = tiny_models_dir / "edgeconnect-edge.json"
    counts = {}
    for threshold in (0.01, 0.99):
        card_file.write_text(json.dumps({**json.loads(card_file.read_text()), "edge_threshold": threshold}))
        result = Engine(cpu_threads=1).predict_edges(FillRequest(image, mask, model="edgeconnect-image"))
        counts[threshold] = int((result.edges[mask] > 127).sum())
    assert counts[0.01] > counts[0.99]  # a lower operating point shows more of the model's edges


def test_context_margin_option(engine):
    image = _photo(200, 200)
    mask = np.zeros((200, 200), bool)
    mask[90:110, 90:110] = True
    result = engine.fill(FillRequest(image, mask, model="telea", options=FillOptions(context_margin=5)))
    assert result.regions == [(85, 85, 115, 115)]


def test_small_hole_in_a_huge_photo_processes_only_a_small_crop(engine):
    image = np.zeros((4000, 6000, 3), np.uint8)
    image[:, :, 1] = 90
    mask = np.zeros((4000, 6000), bool)
    mask[1000:1040, 5000:5030] = True
    result = engine.fill(FillRequest(image, mask, model="edgeconnect-image"))
    assert result.regions == [(5000 - 48, 1000 - 48, 5030 + 48, 1040 + 48)]
    assert result.edges is not None and not result.edges[:900].any()  # edges only inside the processed crop
    restored = result.image
    restored[1000:1040, 5000:5030] = image[1000:1040, 5000:5030]
    assert np.array_equal(restored, image)


def test_strided_views_are_accepted(engine):
    image = _photo(60, 80)[:, ::-1]
    mask = np.zeros((80, 60), bool).T
    mask[20:30, 20:30] = True
    result = engine.fill(FillRequest(image, mask, model="telea"))
    assert np.array_equal(result.image[~mask], image[~mask])
