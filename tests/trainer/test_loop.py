"""The training loop end to end on tiny data: every stage, export, engine fill, resume, abort, data errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.api import FillRequest
from engine.edges import best_edge_threshold
from engine.model_files import load_model, read_card
from tests.trainer.conftest import tiny_config, write_photos
from trainer.checkpoints import flatten_state, latest_checkpoint, load_checkpoint
from trainer.config import ConfigError
from trainer.data import DataError
from trainer.export import export_run
from trainer.loop import train
from trainer.records import read_records


def _fill_request() -> FillRequest:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (44, 52, 3), dtype=np.uint8)
    mask = np.zeros((44, 52), bool)
    mask[12:26, 14:34] = True
    return FillRequest(image, mask)


def test_edge_then_image_on_predicted_exported_and_filled_by_the_engine(
        photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records: list[dict] = []
    edge = train(tiny_config(photos, tmp_path / "edge", "optim.steps=4", "schedule.validate_every=2"),
                 progress_fn=records.append)
    assert edge.status == "completed" and edge.step == 4
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("train") == 2 and kinds.count("val") == 2
    train_rec = next(r for r in records if r["kind"] == "train")
    assert {"edge/g_adv", "edge/g_fm", "edge/d"} <= set(train_rec["losses"]) and train_rec["images_per_s"] > 0
    assert "eta_s" in train_rec and train_rec["total_steps"] == 4
    assert set(edge.validation["all"]) >= {"edge_precision", "edge_recall"}
    assert any(r["kind"] == "sample" and Path(r["path"]).is_file() for r in records)
    assert (tmp_path / "edge" / "config.toml").is_file()
    assert read_records(tmp_path / "edge", "val")[-1]["step"] == 4

    exported = export_run(tmp_path / "edge", tmp_path / "models", name="tiny")
    edge_card = read_card(exported.models[0])
    assert (edge_card.name, edge_card.stage, edge_card.resolution, edge_card.steps) == ("tiny-edge", "edge", 32, 4)
    assert "edge_recall" in edge_card.validation["table"]["all"] and "CPU" in edge_card.hardware
    row = edge_card.validation["table"]["all"]
    assert {"edge_precision@0.1", "edge_recall@0.3"} <= set(row)  # the curve an operating point comes from
    assert edge_card.edge_threshold == best_edge_threshold(row)[0]  # Predict Edges' threshold: the best F

    iop = train(tiny_config(photos, tmp_path / "iop", "optim.steps=2", "stage.name=image-on-predicted",
                            f"init.edge='{exported.models[0].with_suffix('.json')}'"))
    assert iop.status == "completed" and "hole_psnr" in iop.validation["all"]
    pair = export_run(tmp_path / "iop", tmp_path / "pair", name="tiny")
    image_card = read_card(tmp_path / "pair" / "tiny-image.json")
    assert image_card.companion == "tiny-edge" and image_card.stage == "image"
    assert "non-commercial" in image_card.license
    for path in pair.models:
        module, _ = load_model(path)
        assert isinstance(module, torch.nn.Module)

    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", str(tmp_path / "pair"))
    from engine.pipeline import Engine

    request = _fill_request()
    request.model = "tiny-image"
    result = Engine(device="cpu").fill(request)
    assert result.image.shape == request.image.shape
    assert np.array_equal(result.image[~request.mask], request.image[~request.mask])
    assert not np.array_equal(result.image[request.mask], request.image[request.mask])


def _save_tiny_edge_model(folder: Path, name: str) -> None:
    from engine.model_files import ModelCard, save_model
    from engine.networks import EdgeGenerator

    args = {"base_channels": 8, "residual_blocks": 1}
    save_model(EdgeGenerator(**args).eval(), ModelCard(name, "edgeconnect-edge", args, "edge", resolution=32), folder)


def _engine_fills_with(folder: Path, model: str, uses_edges: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Engine.fill`` with an exported model: the hole changes, every known pixel comes back byte-identical."""
    from engine.pipeline import Engine

    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", str(folder))
    engine = Engine(device="cpu", cpu_threads=1)
    info = {m.name: m for m in engine.models()}[model]
    assert info.kind == ("neural" if uses_edges else "completion"), info
    request = _fill_request()
    request.model = model
    result = engine.fill(request)
    assert result.backend == model
    assert (result.edges is not None) == uses_edges
    assert result.image.shape == request.image.shape and result.image.dtype == np.uint8
    assert np.array_equal(result.image[~request.mask], request.image[~request.mask])
    assert not np.array_equal(result.image[request.mask], request.image[request.mask])


@pytest.mark.parametrize("stage", ["image", "joint", "glcic"])
def test_stage_runs_and_exports(photos: Path, tmp_path: Path, stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = ["stage.glcic_completion_steps=1", "stage.glcic_discriminator_steps=1"] if stage == "glcic" else []
    summary = train(tiny_config(photos, tmp_path / "run", "optim.steps=3", f"stage.name={stage}",
                                "schedule.log_every=1", *extra))
    assert summary.status == "completed"
    losses = [r["losses"] for r in read_records(tmp_path / "run", "train")]
    assert len(losses) == 3 and all(np.isfinite(v) for row in losses for v in row.values())
    if stage == "glcic":  # the three phases: reconstruction only, discriminator only, both
        assert [r["phase"] for r in read_records(tmp_path / "run", "train")] == [1, 2, 3]
        assert set(losses[0]) == {"glcic/g_mse"} and "glcic/d" in losses[1] and "glcic/g_adv" in losses[2]
    if stage == "image":  # trained on ground-truth edges: the export names an edge companion given to it
        result = export_run(tmp_path / "run", tmp_path / "out", name="m", companion="m-edge")
        _save_tiny_edge_model(tmp_path / "out", "m-edge")
    else:
        result = export_run(tmp_path / "run", tmp_path / "out", name="m")
    names = sorted(p.stem for p in result.models)
    assert names == {"image": ["m-image"], "joint": ["m-edge", "m-image"], "glcic": ["m"]}[stage]
    _engine_fills_with(tmp_path / "out", "m" if stage == "glcic" else "m-image", uses_edges=stage != "glcic",
                       monkeypatch=monkeypatch)
    for path in result.models:
        module, card = load_model(path)
        x = torch.rand(1, 3, 36, 44)
        mask = torch.zeros(1, 1, 36, 44)
        mask[..., 8:20, 10:30] = 1
        with torch.no_grad():
            out = module(x, mask) if card.stage == "completion" else module(
                x if card.stage == "image" else x[:, :1], torch.zeros_like(mask), mask)
        assert out.shape[-2:] == (36, 44) and torch.isfinite(out).all()


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return flatten_state(load_checkpoint(path)["model"])[0]


def test_resume_continues_exactly_and_abort_saves_a_checkpoint(photos: Path, tmp_path: Path) -> None:
    common = ("optim.steps=6", "stage.name=joint", "schedule.validate_every=2", "schedule.checkpoint_every=2")
    straight = train(tiny_config(photos, tmp_path / "a", *common))

    calls = {"n": 0}

    def abort_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    aborted = train(tiny_config(photos, tmp_path / "b", *common), abort_fn=abort_after_three)
    assert aborted.status == "aborted" and aborted.step == 3
    assert aborted.checkpoint is not None and aborted.checkpoint.name == "ckpt-00000003.safetensors"
    assert read_records(tmp_path / "b", "end")[-1]["status"] == "aborted"
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny_config(photos, tmp_path / "b", *common))

    resumed = train(tiny_config(photos, tmp_path / "b", *common, "run.resume=true"))
    assert resumed.status == "completed" and resumed.step == 6
    a, b = _weights(straight.checkpoint), _weights(resumed.checkpoint)
    assert a.keys() == b.keys() and len(a) > 20
    mismatched = [k for k in a if not torch.equal(a[k], b[k])]
    assert not mismatched, mismatched[:5]
    steps = [r["step"] for r in read_records(tmp_path / "b", "train")]
    assert steps == sorted(steps) and steps[-1] == 6


def test_cpu_budget_stops_with_a_checkpoint_and_counts_across_resumes(photos: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"calls": 0}

    def cpu_seconds() -> float:  # each call 5 CPU-s later: a training step costs 5 CPU-s
        clock["calls"] += 1
        return 5.0 * clock["calls"]

    monkeypatch.setattr("trainer.loop.cpu_seconds", cpu_seconds)
    common = ("optim.steps=50", "schedule.validate_every=100", "schedule.checkpoint_every=100")
    first = train(tiny_config(photos, tmp_path / "r", *common, "schedule.cpu_budget_s=12"))
    assert first.status == "completed" and first.step == 3  # 5, 10, 15 CPU-s: the third step passes 12
    assert first.checkpoint is not None and first.checkpoint.name == "ckpt-00000003.safetensors"
    assert read_records(tmp_path / "r", "val")[-1]["step"] == 3
    assert any("CPU budget of 12 s is spent" in m for m in first.messages)
    assert read_records(tmp_path / "r", "train")[-1]["cpu_s"] == pytest.approx(15.0)

    resumed = train(tiny_config(photos, tmp_path / "r", *common, "schedule.cpu_budget_s=22", "run.resume=true"))
    assert resumed.step == 5  # 15 CPU-s carried over, then 20, 25
    with pytest.raises(ConfigError, match="cpu_budget_s"):
        train(tiny_config(photos, tmp_path / "bad", *common, "schedule.cpu_budget_s=-1"))


def test_edge_generator_trains_on_the_supervised_losses_alone_without_a_discriminator(photos: Path,
                                                                                     tmp_path: Path) -> None:
    records: list[dict] = []
    common = ("optim.steps=2", "losses.edge_adversarial=0", "losses.feature_matching=0")
    summary = train(tiny_config(photos, tmp_path / "e", *common, "losses.edge_bce=1", "losses.edge_dice=1"),
                    progress_fn=records.append)
    losses = [r for r in records if r["kind"] == "train"][-1]["losses"]
    assert set(losses) == {"edge/bce", "edge/dice"} and 0 < losses["edge/dice"] <= 1
    state = load_checkpoint(summary.checkpoint)["model"]["parts"]["edge"]
    assert "d" not in state and "g" in state
    with pytest.raises(ConfigError, match="the edge generator has no loss"):
        train(tiny_config(photos, tmp_path / "none", *common))


def test_resume_takes_the_networks_from_the_checkpoint(photos: Path, tmp_path: Path) -> None:
    train(tiny_config(photos, tmp_path / "r", "optim.steps=1"))
    resumed = train(tiny_config(photos, tmp_path / "r", "optim.steps=2", "run.resume=true",
                                "model.edge.arguments.base_channels=16"))
    assert resumed.step == 2 and "resume: network settings taken from the checkpoint" in resumed.messages
    with pytest.raises(ConfigError, match="the run trains stage 'edge'"):
        train(tiny_config(photos, tmp_path / "r", "optim.steps=3", "run.resume=true", "stage.name=image"))


def test_resume_with_another_batch_size_says_it_is_not_exact(photos: Path, tmp_path: Path) -> None:
    train(tiny_config(photos, tmp_path / "r", "optim.steps=1"))
    resumed = train(tiny_config(photos, tmp_path / "r", "optim.steps=2", "run.resume=true", "optim.batch_size=3"))
    assert resumed.step == 2 and any("batch size 3 (the run used 2)" in m for m in resumed.messages)


def test_a_fresh_start_drops_the_records_of_a_run_killed_before_its_first_checkpoint(photos: Path,
                                                                                     tmp_path: Path) -> None:
    run = tmp_path / "r"
    train(tiny_config(photos, run, "optim.steps=2"))
    for old in (run / "checkpoints").iterdir():  # as if it had been killed before saving anything
        old.unlink()
    (run / "samples").mkdir(exist_ok=True)
    (run / "samples" / "stale.png").write_bytes(b"x")
    train(tiny_config(photos, run, "optim.steps=2"))
    assert len(read_records(run, "start")) == 1 and [r["step"] for r in read_records(run, "train")] == [2]
    assert not (run / "samples" / "stale.png").exists()


def test_a_photo_that_fails_to_decode_during_the_run_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trainer.data as data_module

    folder = write_photos(tmp_path / "photos", count=3)
    real_read = data_module.read_photo
    bad = folder / "photo1.png"

    def read(path, *args, **kwargs):  # its header reads fine (checked at the start); its pixels do not
        if Path(path) == bad:
            raise OSError("truncated file")
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(data_module, "read_photo", read)
    summary = train(tiny_config(folder, tmp_path / "run", "optim.steps=4", "data.val_images=0"))
    assert summary.status == "completed"
    late = [m for m in summary.messages if "during the run" in m]
    assert late and "photo1.png" in late[0]


def test_resume_without_checkpoint_is_an_error(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(tiny_config(photos, tmp_path / "r", "optim.steps=2", "run.resume=true"))


def test_empty_folder_and_only_corrupt_images_are_clear(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no photos"):
        train(tiny_config(empty, tmp_path / "r1", "optim.steps=2"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (broken / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match="could be read"):
        train(tiny_config(broken, tmp_path / "r2", "optim.steps=2"))


def test_a_corrupt_image_among_good_ones_is_skipped_and_reported(tmp_path: Path) -> None:
    folder = write_photos(tmp_path / "mixed", count=3)
    (folder / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage")
    summary = train(tiny_config(folder, tmp_path / "run", "optim.steps=2"))
    assert summary.status == "completed" and summary.skipped_images == 1
    assert any("skipped" in m for m in summary.messages)
    start = read_records(tmp_path / "run", "start")[0]
    assert any("skipped" in m for m in start["messages"])


def test_internal_fine_tuning_on_one_photo(tmp_path: Path) -> None:
    photo = write_photos(tmp_path / "one", count=1, h=56, w=64) / "photo0.png"
    mask = np.zeros((56, 64), np.uint8)
    mask[20:36, 24:44] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    summary = train(tiny_config(tmp_path, tmp_path / "run", "optim.steps=2", "stage.name=image",
                                f"internal.photo='{photo}'", f"internal.mask='{tmp_path / 'mask.png'}'",
                                "data.val_images=2"))
    assert summary.status == "completed"
    assert list(summary.validation) == ["all", "held-out holes in the known area"]
    card = json.loads(export_run(tmp_path / "run", tmp_path / "m").models[0].with_suffix(".json").read_text())
    assert "internal fine-tuning" in card["data"]
    assert latest_checkpoint(tmp_path / "run" / "checkpoints") is not None


def test_keep_best_saves_the_best_validation_and_export_uses_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With schedule.keep_best the weights of the best hole-PSNR validation are kept and exported, and the
    card says which step they come from; plain export still takes the latest checkpoint."""
    import trainer.loop as loop

    scripted = iter([10.0, 12.0, 11.0, 13.0, 9.0, 8.0])  # hole PSNR of the validations at steps 1..6
    real = loop.validate_stage

    def scripted_validation(*args, **kwargs):
        table, grid = real(*args, **kwargs)
        table["all"]["hole_psnr"] = next(scripted)
        return table, grid

    monkeypatch.setattr(loop, "validate_stage", scripted_validation)
    photos = write_photos(tmp_path / "photos", count=4)
    run = tmp_path / "run"
    summary = train(tiny_config(photos, run, "optim.steps=6", "stage.name=image", "schedule.validate_every=1",
                                "schedule.keep_best=true", "data.val_images=2"))
    assert summary.status == "completed"
    assert [b["step"] for b in read_records(run, "best")] == [1, 2, 4]  # each beat every validation before it
    assert int(load_checkpoint(run / "checkpoints" / "best.safetensors")["step"]) == 4
    from trainer.cli import main

    assert main(["export", str(run), "--out", str(tmp_path / "best"), "--best"]) == 0
    kept = tmp_path / "best" / "run-image.safetensors"
    latest = export_run(run, tmp_path / "latest").models[0]
    kept_card, latest_card = (json.loads(p.with_suffix(".json").read_text()) for p in (kept, latest))
    assert (kept_card["steps"], latest_card["steps"]) == (4, 6)
    assert kept_card["validation"]["step"] == 4 and kept_card["validation"]["table"]["all"]["hole_psnr"] == 13.0
    assert "of the run's 6 steps (hole PSNR) was at step 4" in kept_card["description"]
    kept_weights, latest_weights = load_model(kept)[0].state_dict(), load_model(latest)[0].state_dict()
    assert any(not torch.equal(kept_weights[k], latest_weights[k]) for k in kept_weights)


def test_a_damaged_photo_among_the_last_ones_is_not_held_out_for_validation(tmp_path: Path) -> None:
    folder = write_photos(tmp_path / "photos", count=10)
    (folder / "zz_damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # sorts last: once the held-out one
    summary = train(tiny_config(folder, tmp_path / "run", "optim.steps=2", "data.val_images=1",
                                "schedule.validate_every=2"))
    assert summary.status == "completed" and read_records(tmp_path / "run", "val")


def test_a_loss_that_turns_nan_stops_the_run_and_nan_weights_are_never_exported(
        photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file, save_file

    from tests.trainer.conftest import save_tiny_pair
    from trainer.export import ExportError
    from trainer.loop import TrainingDiverged

    _, image = save_tiny_pair(tmp_path / "models")
    weights = load_file(str(image))
    save_file({k: torch.full_like(v, float("nan")) for k, v in weights.items()}, str(image))  # a damaged base
    with pytest.raises(TrainingDiverged, match=r"NaN or infinite at step 1.*damaged"):
        train(tiny_config(photos, tmp_path / "nan", "optim.steps=3", "stage.name=image",
                          f"init.image='{image.with_suffix('.json')}'"))

    run = tmp_path / "ok"
    train(tiny_config(photos, run, "optim.steps=1", "stage.name=image"))
    real_load = load_checkpoint

    def poisoned(path):  # as if the weights had diverged just before the checkpoint
        state = real_load(path)
        part = state["model"]["parts"]["image"]
        for key in ("ema", "g"):
            if key in part:
                first = next(iter(part[key]))
                part[key][first] = torch.full_like(part[key][first], float("nan"))
        return state

    monkeypatch.setattr("trainer.checkpoints.load_checkpoint", poisoned)
    with pytest.raises(ExportError, match="NaN or infinite"):
        export_run(run, tmp_path / "out", companion="t-edge")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_keep_best_ranks_edge_models_by_the_f_measure_of_their_edges() -> None:
    from trainer.loop import best_score

    assert best_score({"all": {"edge_precision": 0.2, "edge_recall": 0.4}}) == pytest.approx(0.8 / 3)
    assert best_score({"all": {"edge_precision": 0.0, "edge_recall": 0.0}}) == 0.0
    assert best_score({"all": {"hole_psnr": 21.5, "edge_precision": 0.9, "edge_recall": 0.9}}) == 21.5
    assert best_score({"all": {"count": 3}}) is None and best_score({}) is None


def test_keep_best_ranks_edge_models_at_their_best_threshold() -> None:
    from trainer.loop import best_score

    row = {"edge_precision": 0.5, "edge_recall": 0.02, "edge_precision@0.5": 0.5, "edge_recall@0.5": 0.02,
           "edge_precision@0.2": 0.3, "edge_recall@0.2": 0.3, "edge_precision@0.1": 0.1, "edge_recall@0.1": 0.6}
    assert best_edge_threshold(row) == (0.2, 0.3, 0.3)
    assert best_score({"all": row}) == pytest.approx(0.3)
    assert best_edge_threshold({"edge_precision": 0.2, "edge_recall": 0.4}) == (0.5, 0.2, 0.4)  # older tables
    assert best_edge_threshold({"hole_psnr": 20.0}) is None


def test_keep_best_ranks_the_structure_model_by_its_low_band() -> None:
    from trainer.loop import best_score
    from trainer.stages import ImageStage, StructureStage

    table = {"all": {"hole_psnr": 21.5, "lowband_psnr": 23.0}}
    assert best_score(table, StructureStage.best_metric) == 23.0
    assert best_score(table, ImageStage.best_metric) == 21.5
    assert best_score({"all": {"hole_psnr": 21.5}}, "lowband_psnr") is None


def test_the_ffc_edge_model_trains_exports_and_powers_predict_edges(
        photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arch = ("model.edge.architecture=lama-ffc-edge", "model.edge.arguments.base_channels=8",
            "model.edge.arguments.residual_blocks=1")
    summary = train(tiny_config(photos, tmp_path / "run", "optim.steps=3", "losses.edge_adversarial=0",
                                "losses.feature_matching=0", "losses.edge_bce=1", "losses.edge_dice=1", *arch))
    assert summary.status == "completed" and "edge_recall" in summary.validation["all"]
    exported = export_run(tmp_path / "run", tmp_path / "models", name="f")
    module, card = load_model(exported.models[0])
    assert (card.architecture, card.stage, card.arguments) == ("lama-ffc-edge", "edge",
                                                              {"base_channels": 8, "residual_blocks": 1})
    from engine.networks import build_network

    trainer_net = build_network("lama-ffc-edge", card.arguments).eval()
    trainer_net.load_state_dict(load_checkpoint(summary.checkpoint)["model"]["parts"]["edge"]["ema"])
    gray, mask = torch.rand(1, 1, 40, 48), torch.zeros(1, 1, 40, 48)
    mask[..., 8:24, 10:30] = 1
    edges = (torch.rand(1, 1, 40, 48) > 0.8).float()
    with torch.no_grad():
        assert torch.equal(module(gray, edges, mask), trainer_net(gray, edges, mask))

    from engine.model_files import ModelCard, save_model
    from engine.networks import FFCStructureGenerator
    from engine.pipeline import Engine

    args = {"base_channels": 8, "residual_blocks": 1}
    save_model(FFCStructureGenerator(**args).eval(),
               ModelCard("f-image", "lama-ffc", args, "image", 32, companion="f-edge"), tmp_path / "models")
    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", str(tmp_path / "models"))
    request = _fill_request()
    request.model = "f-image"
    result = Engine(device="cpu", cpu_threads=1).predict_edges(request)
    assert result.edges is not None and result.edges.shape == request.mask.shape
    assert np.array_equal(result.image, request.image)  # Predict Edges changes no pixel of the photo
