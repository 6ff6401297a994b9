"""The shipped models: small, loadable, and honest cards (data, steps, hardware, the validation reached)."""

from __future__ import annotations

from pathlib import Path

from engine import cli_models
from engine.model_files import check_weights_file, load_model, read_card
from engine.paths import REPO_ROOT

MODELS = REPO_ROOT / "resources" / "models"


def test_bundled_models_are_small_whole_and_carry_complete_cards():
    cards = sorted(MODELS.glob("*.json"))
    assert cards, "no bundled model"
    assert sum(p.stat().st_size for p in MODELS.iterdir()) < 50 * 2**20
    for path in cards:
        card = read_card(path)
        check_weights_file(path)
        assert card.data and card.steps > 0 and card.hardware and card.license, path.name
        table = card.validation.get("table") or {}
        assert "all" in table and any(isinstance(v, float) for v in table["all"].values()), path.name
        if card.companion:
            assert (MODELS / f"{card.companion}.json").is_file()
    network, card = load_model(MODELS / "edgeconnect-preview-image.json")
    assert card.stage == "image" and sum(p.numel() for p in network.parameters()) > 1_000_000


def test_the_validation_summary_names_the_step_and_the_all_row():
    summary = cli_models._validation_summary({"step": 12, "table": {"all": {"psnr": 24.2, "ssim": 0.83, "count": 400},
                                                             "free-form": {"psnr": 26.1}}})
    assert summary == "step 12, all: psnr 24.2, ssim 0.83 (400 cases)"
    assert cli_models._validation_summary({}) == "none recorded"


def test_bundled_cards_hold_no_absolute_path_of_a_machine() -> None:
    import re

    from engine import paths

    for card in (paths.REPO_ROOT / "resources" / "models").glob("*.json"):
        text = card.read_text()
        assert not re.search(r'["\s=](/work|/tmp|/root|/home)/', text), card.name


def test_bundled_models_are_found_as_package_data(monkeypatch) -> None:
    """Through ``importlib.resources`` (what an installed wheel uses), which in a checkout is its folder."""
    from importlib import resources

    from engine import paths

    monkeypatch.delenv("INPAINT_STUDIO_BUNDLED_MODELS", raising=False)
    found = paths.bundled_models_dir()
    assert found == MODELS and found == Path(str(resources.files("resources") / "models"))
    assert (found / "edgeconnect-preview-image.json").is_file()
    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", "/elsewhere")
    assert paths.bundled_models_dir() == Path("/elsewhere")


def test_the_bundled_structure_model_is_the_default_fills_structure_and_fills_only_the_hole() -> None:
    import numpy as np

    from engine.api import PREFERRED_IMAGE_MODEL, FillRequest
    from engine.pipeline import Engine

    engine = Engine(device="cpu")
    assert engine.resolve_model("default") == PREFERRED_IMAGE_MODEL
    rng = np.random.default_rng(1)
    image = (rng.random((96, 128, 3)) * 60 + np.linspace(40, 200, 128)[None, :, None]).astype(np.uint8)
    hole = np.zeros((96, 128), bool)
    hole[30:60, 50:90] = True
    result = engine.fill(FillRequest(image, hole))
    assert result.backend == PREFERRED_IMAGE_MODEL and result.timings["texture"] > 0
    assert np.array_equal(result.image[~hole], image[~hole])
    left, right = result.image[35:55, 52:60].mean(), result.image[35:55, 80:88].mean()
    assert right > left + 20  # the fill follows the photo's left-to-right ramp


def test_the_model_list_says_which_fills_follow_the_sketch_only(monkeypatch) -> None:
    """The structure model (trained on known edges plus a sketch) ignores Predict Edges' proposals; the
    EdgeConnect pair fills from them. "Automatic" says what the model it resolves to does."""
    from engine.model_store import ModelStore
    from engine.pipeline import Engine

    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", str(MODELS))
    infos = {m.name: m for m in Engine(store=ModelStore()).models()}
    assert infos["lama-structure-image"].sketch_guided and infos["lama-structure-image"].uses_edges
    assert infos["edgeconnect-preview-image"].uses_edges and not infos["edgeconnect-preview-image"].sketch_guided
    assert infos["default"].resolves_to == "lama-structure-image" and infos["default"].sketch_guided
    assert not infos["telea"].sketch_guided

