"""Model store: listing (user wins, broken cards reported), LRU cache, refresh."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine import paths
from engine.api import FillRequest
from engine.model_files import ModelCard, load_model, save_model
from engine.model_store import ModelStore
from engine.networks import CompletionNetwork
from engine.pipeline import Engine


def test_lists_pairs_and_completion_models(tiny_models_dir):
    infos = {m.name: m for m in ModelStore().fill_models()}
    assert set(infos) == {"edgeconnect-image", "glcic"}  # the edge model is a companion, not a backend
    assert infos["edgeconnect-image"].kind == "neural" and infos["edgeconnect-image"].uses_edges
    assert infos["glcic"].kind == "completion" and infos["glcic"].source == "bundled"
    names = [m.name for m in Engine().models()]
    assert names[-4:] == ["telea", "navier-stokes", "harmonic", "patchmatch"]


def test_cache_does_not_reload_when_switching(tiny_models_dir):
    engine = Engine(cpu_threads=1)
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    for model in ["edgeconnect-image", "glcic", "telea", "edgeconnect-image", "glcic", "edgeconnect-image"]:
        engine.fill(FillRequest(image, mask, model=model))
    assert engine.store.loads == 3  # edge + image + glcic, once each
    engine.refresh_models()
    engine.fill(FillRequest(image, mask, model="glcic"))
    assert engine.store.loads == 3  # unchanged files stay cached across a refresh


def test_lru_evicts_beyond_its_size(tiny_models_dir):
    store = ModelStore(cache_size=1)
    store.load("glcic")
    store.load("edgeconnect-edge")
    store.load("glcic")
    assert store.loads == 3


def test_user_model_wins_over_bundled(tiny_models_dir):
    torch.manual_seed(123)
    user_net = CompletionNetwork(base_channels=8).eval()
    save_model(user_net, ModelCard("glcic", "glcic", {"base_channels": 8}, "completion", 64,
                                   description="my fine-tune"), paths.user_models_dir())
    store = ModelStore()
    info = next(m for m in store.fill_models() if m.name == "glcic")
    assert info.source == "user" and info.description == "my fine-tune"
    loaded, _ = store.load("glcic")
    assert torch.equal(loaded.state_dict()["net.0.weight"], user_net.state_dict()["net.0.weight"])


def test_broken_cards_are_listed_as_unavailable_not_fatal(tiny_models_dir):
    (tiny_models_dir / "garbage.json").write_text("{not json")
    (tiny_models_dir / "noweights.json").write_text(
        ModelCard("noweights", "glcic", {"base_channels": 8}, "completion", 64).to_json())
    orphan = json.loads((tiny_models_dir / "edgeconnect-image.json").read_text())
    orphan.update(name="orphan", companion="missing-edge")
    (tiny_models_dir / "orphan.json").write_text(json.dumps(orphan))
    (tiny_models_dir / "orphan.safetensors").write_bytes((tiny_models_dir / "edgeconnect-image.safetensors")
                                                         .read_bytes())
    engine = Engine()
    infos = {m.name: m for m in engine.models()}
    assert infos["glcic"].kind == "completion"  # the good ones are still there
    assert infos["garbage"].kind == "unavailable" and "garbage.json" in infos["garbage"].description
    assert infos["noweights"].kind == "unavailable" and "weights file not found" in infos["noweights"].description
    assert infos["orphan"].kind == "unavailable" and "missing-edge" in infos["orphan"].description
    assert len(engine.store.problems()) == 2


def test_cards_with_wrong_types_leave_every_other_model_usable(tiny_models_dir):
    for name, field, value in (("listarch", "architecture", ["glcic"]), ("listcomp", "companion", ["x"])):
        card = json.loads((tiny_models_dir / "edgeconnect-image.json").read_text())
        card.update({"name": name, field: value})
        (tiny_models_dir / f"{name}.json").write_text(json.dumps(card))
        (tiny_models_dir / f"{name}.safetensors").write_bytes(
            (tiny_models_dir / "edgeconnect-image.safetensors").read_bytes())
    engine = Engine()
    infos = {m.name: m for m in engine.models()}
    assert infos["listarch"].kind == "unavailable"
    assert "'architecture' must be a string" in infos["listarch"].description
    assert infos["listcomp"].kind == "unavailable" and "'companion' must be" in infos["listcomp"].description
    assert infos["edgeconnect-image"].kind == "neural" and infos["glcic"].kind == "completion"
    image = np.full((40, 40, 3), 128, np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    assert engine.fill(FillRequest(image, mask, model="telea")).image.shape == image.shape


def test_refresh_finds_new_models(tiny_models_dir):
    store = ModelStore()
    assert store.get("extra") is None
    save_model(CompletionNetwork(8), ModelCard("extra", "glcic", {"base_channels": 8}, "completion", 64),
               paths.user_models_dir())
    store.refresh()
    assert store.get("extra") is not None and store.get("extra").source == "user"


def test_loaded_edge_model_matches_the_file(tiny_models_dir):
    # The store bakes spectral normalisation into plain weights; outputs must not change.
    cached, _ = ModelStore().load("edgeconnect-edge")
    raw, _ = load_model(tiny_models_dir / "edgeconnect-edge.json")
    x = torch.rand(1, 1, 32, 32)
    m = (torch.rand(1, 1, 32, 32) > 0.5).float()
    with torch.no_grad():
        assert torch.allclose(cached(x, x, m), raw(x, x, m), atol=1e-5)


def test_a_model_file_named_like_a_built_in_fill_is_listed_as_unusable(tiny_models_dir):
    card = json.loads((tiny_models_dir / "glcic.json").read_text())
    card["name"] = "harmonic"
    (tiny_models_dir / "harmonic.json").write_text(json.dumps(card))
    (tiny_models_dir / "harmonic.safetensors").write_bytes((tiny_models_dir / "glcic.safetensors").read_bytes())
    infos = [m for m in Engine().models() if m.name == "harmonic"]
    assert [m.kind for m in infos] == ["unavailable", "classical"]
    assert "name of a built-in fill" in infos[0].description


@pytest.mark.parametrize("kind", ["file", "dangling link", "link loop"])
def test_a_user_model_folder_that_is_not_a_folder_leaves_built_in_fills_working(tmp_path, monkeypatch, caplog, kind):
    import logging

    from engine import paths
    from engine.api import FillRequest

    home = tmp_path / "home"
    home.mkdir()
    models = home / "models"
    if kind == "file":
        models.write_text("not a folder")
    elif kind == "dangling link":
        models.symlink_to(home / "gone")
    else:
        models.symlink_to(home / "other")
        (home / "other").symlink_to(models)
    monkeypatch.setenv("INPAINT_STUDIO_HOME", str(home))
    monkeypatch.setattr(paths, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="engine.paths"):
        engine = Engine(device="cpu")
        names = {m.name for m in engine.models()}
    assert {"telea", "harmonic"} <= names
    assert str(models) in caplog.text and ("file" in caplog.text or "link" in caplog.text)
    image = np.full((20, 20, 3), 100, np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[5:10, 5:10] = True
    assert engine.fill(FillRequest(image, mask, model="telea")).image.shape == image.shape


def test_scan_lists_every_card_also_the_hidden_ones_and_the_stems_of_every_file(tmp_path):
    from engine.model_store import ModelStore, model_file_stems

    bundled, user = tmp_path / "bundled", tmp_path / "user"
    for folder in (bundled, user):
        folder.mkdir()
        (folder / "Same.json").write_text("{not json", encoding="utf-8")
    (user / "orphan.safetensors").write_bytes(b"")
    store = ModelStore(bundled, user)
    scanned = [(entry.source, entry.name) for entry in store.scan()]
    assert scanned == [("bundled", "Same"), ("user", "Same")]
    assert all(entry.error for entry in store.scan())  # an unreadable card is listed with why
    assert store.card_path("Same") == user / "Same.json"  # the user's folder wins
    assert store.card_path("missing") is None and store.card_path("") is None
    assert model_file_stems(user) == {"same", "orphan"}
    assert model_file_stems(tmp_path / "nowhere") == set()


def test_a_structure_model_is_kept_in_channels_last_and_fills_as_its_file_does(tmp_path):
    from engine.networks.ffc import FFCStructureGenerator

    torch.manual_seed(0)
    net = FFCStructureGenerator(base_channels=8, residual_blocks=1, half_resolution=True)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    card = ModelCard("s", "lama-ffc", {"base_channels": 8, "residual_blocks": 1, "half_resolution": True}, "image", 64)
    save_model(net, card, tmp_path)
    loaded, _ = ModelStore(bundled_dir=tmp_path, user_dir=tmp_path / "user").load("s")
    assert loaded.stem[1].weight.is_contiguous(memory_format=torch.channels_last)
    image, edges, mask = torch.rand(1, 3, 32, 40), torch.zeros(1, 1, 32, 40), torch.zeros(1, 1, 32, 40)
    mask[..., 8:20, 10:30] = 1
    with torch.no_grad():
        assert torch.allclose(loaded(image, edges, mask), net.eval()(image, edges, mask), atol=1e-5)
