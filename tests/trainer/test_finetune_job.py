"""The fine-tune job in process: configs per mode, stop and resume, registration order and rollback, errors."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from engine.model_files import ModelCard, read_card, save_model
from engine.model_store import ModelStore
from engine.networks import CompletionNetwork
from tests.trainer import job_faults
from tests.trainer.conftest import save_tiny_pair, write_photos
from trainer import finetune_job as job
from trainer import finetune_protocol as protocol
from trainer.config import validate


@pytest.fixture
def base(tmp_path: Path) -> Path:
    folder = tmp_path / "bundled"
    save_tiny_pair(folder)
    save_model(CompletionNetwork(8), ModelCard("t-glcic", "glcic", {"base_channels": 8}, "completion", 32), folder)
    return folder


def _job(tmp_path: Path, base: Path, name: str = "mine", **fields) -> Path:
    run = tmp_path / "runs" / name
    run.mkdir(parents=True)
    photos = fields.pop("folder", None) or write_photos(tmp_path / "photos", count=3)
    spec = protocol.JobSpec(name=name, base="t-image", base_card=str(base / "t-image.json"),
                       edge_card=str(base / "t-edge.json"), companion="t-edge", folder=str(photos), steps=4,
                       batch_size=2, size=32, lr=1e-3, models_dir=str(tmp_path / "models"))
    for key, value in fields.items():
        setattr(spec, key, value)
    protocol.write_spec(run, spec)
    return run


def test_configs_of_each_kind_of_job(tmp_path: Path, base: Path) -> None:
    run = _job(tmp_path, base)
    spec = protocol.read_spec(run)
    image = validate(job.build_config(spec, run))
    assert image.stage.name == "image" and image.init.image.endswith("t-image.json")
    assert image.losses.adversarial == 0 and image.losses.feature_matching == 0
    assert (image.data.size, image.optim.batch_size, image.optim.steps, image.optim.lr) == (32, 2, 4, 1e-3)
    assert image.schedule.validate_every == 4  # a short run validates once, at its end
    assert image.optim.amp == "auto"  # passed through: engine.devices.bf16_autocast is its one meaning
    long = job.build_config(protocol.JobSpec(**{**spec.__dict__, "steps": 2000}), run)
    assert (long.schedule.validate_every, long.schedule.checkpoint_every, long.schedule.log_every) == (500, 400, 10)
    joint = validate(job.build_config(protocol.JobSpec(**{**spec.__dict__, "parts": "joint"}), run))
    assert joint.stage.name == "joint" and joint.init.edge.endswith("t-edge.json") and joint.losses.adversarial > 0
    glcic = validate(job.build_config(protocol.JobSpec(**{**spec.__dict__, "parts": "completion", "kind": "completion",
                                                     "base_card": str(base / "t-glcic.json")}), run))
    assert glcic.stage.name == "glcic" and glcic.stage.glcic_phases(4) == (4, 4)  # reconstruction only
    import cv2

    cv2.imwrite(str(run / protocol.PHOTO_FILE), np.full((40, 48, 3), 128, np.uint8))
    hole = np.zeros((40, 48), np.uint8)
    hole[10:20, 10:20] = 255
    cv2.imwrite(str(run / protocol.MASK_FILE), hole)
    photo_spec = protocol.JobSpec(**{**spec.__dict__, "mode": "photo", "photo": protocol.PHOTO_FILE,
                                     "mask": protocol.MASK_FILE})
    photo = validate(job.build_config(photo_spec, run))
    assert photo.internal.photo == str(run / protocol.PHOTO_FILE) and photo.run.name == "mine"
    # "this photo" trains on the edges the pair's own edge model completes, as the editor fills
    assert photo.stage.name == "image-on-predicted" and photo.init.edge.endswith("t-edge.json")
    assert photo.init.image.endswith("t-image.json")
    # crops at the scale the engine fills this hole at: its crop is the whole 48 x 40 photo, shrunk to 32 px
    assert photo.internal.scale == pytest.approx([32 / 48 / 1.25, 32 / 48 * 1.25])


def test_stop_then_resume_registers_the_model_weights_before_cards(tmp_path: Path, base: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run = _job(tmp_path, base, parts="joint", adversarial=True)
    polls = {"n": 0}

    def stop_after_two() -> bool:
        polls["n"] += 1
        return polls["n"] > 2

    stopped = job.run_job(run, abort_fn=stop_after_two)
    assert (stopped.state, stopped.step) == ("stopped", 2)
    assert protocol.run_info(run).state == "stopped" and protocol.run_info(run).step == 2
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())

    (run / protocol.STOP_FILE).write_text("old request")  # a stale stop request does not stop the resumed run
    moves: list[str] = []
    real_replace = os.replace

    def recording(a, b):
        if Path(b).parent == tmp_path / "models":
            moves.append(Path(b).name)
        return real_replace(a, b)

    monkeypatch.setattr(job.os, "replace", recording)
    done = job.run_job(run)
    assert done.state == "registered" and [p.name for p in done.models] == ["mine-edge.json", "mine.json"]
    assert moves == ["mine-edge.safetensors", "mine-edge.json", "mine.safetensors", "mine.json"]
    card = read_card(tmp_path / "models" / "mine.json")
    assert card.companion == "mine-edge" and card.steps == 4 and "L1 + adversarial" in card.description
    assert not (run / "checkpoints").exists() and protocol.read_status(run)["models"] == ["mine-edge", "mine"]
    assert protocol.list_runs(run.parent) == [] and len(protocol.list_runs(run.parent, unfinished_only=False)) == 1
    names = [m.name for m in ModelStore(bundled_dir=base, user_dir=tmp_path / "models").fill_models()]
    assert "mine" in names and "mine-edge" not in names  # edge models pair, they are not fill backends


def test_a_failed_move_takes_everything_back(tmp_path: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _job(tmp_path, base)
    real_replace = os.replace

    def failing(a, b):
        if Path(b).parent == tmp_path / "models" and str(b).endswith(".json"):  # the card's move into place
            raise OSError(errno.ENOSPC, "No space left on device", str(b))
        return real_replace(a, b)

    monkeypatch.setattr(job.os, "replace", failing)
    with pytest.raises(OSError, match="No space"):
        job.run_job(run)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == []  # no weights alone, no staging folder
    monkeypatch.setattr(job.os, "replace", real_replace)
    assert job.run_job(run).state == "registered"  # training was done: the retry only registers


@pytest.mark.parametrize(("fault", "code", "kind", "words"), [
    ("enospc:1", protocol.EXIT_DISK_FULL, "disk-full", "The disk is full"),
    ("cuda-oom:0", protocol.EXIT_OOM, "oom", "ran out of memory (batch 2, 32 px, cpu): try a smaller batch size"),
    ("oom:1", protocol.EXIT_OOM, "oom", "ran out of memory"),
])
def test_main_reports_faults_with_exit_codes(tmp_path: Path, base: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture, fault: str, code: int, kind: str,
                                             words: str) -> None:
    run = _job(tmp_path, base)
    job_faults.install(fault, monkeypatch.setattr)
    monkeypatch.setattr(job.os, "nice", lambda _n: 0, raising=False)
    monkeypatch.setattr(job, "_set_threads", lambda _spec: None)
    assert job.main([str(run)]) == code
    status = protocol.read_status(run)
    assert status["state"] == "failed" and status["error"] == kind and words in status["message"]
    assert words in capsys.readouterr().err
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
    assert protocol.run_info(run).state == "failed"


def test_main_reports_data_errors_and_a_taken_name(tmp_path: Path, base: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job.os, "nice", lambda _n: 0, raising=False)
    monkeypatch.setattr(job, "_set_threads", lambda _spec: None)
    empty = tmp_path / "empty"
    empty.mkdir()
    run = _job(tmp_path, base, name="a", folder=empty)
    assert job.main([str(run)]) == protocol.EXIT_ERROR
    assert "no photos" in protocol.read_status(run)["message"]

    run = _job(tmp_path, base, name="b")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "B.json").write_text("{}")  # taken meanwhile (case-insensitively)
    assert job.main([str(run)]) == protocol.EXIT_NAME_TAKEN
    assert "already exists" in protocol.read_status(run)["message"]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["B.json"]
    assert protocol.run_info(run).checkpoint  # the training is kept


@pytest.mark.parametrize("mode", ["folder", "photo"])
def test_estimate_times_steps_and_cleans_up(tmp_path: Path, base: Path, mode: str) -> None:
    import cv2

    run = _job(tmp_path, base, mode=mode, photo=protocol.PHOTO_FILE, mask=protocol.MASK_FILE)
    cv2.imwrite(str(run / protocol.PHOTO_FILE), np.random.default_rng(0).integers(0, 255, (40, 48, 3), np.uint8))
    cv2.imwrite(str(run / protocol.MASK_FILE), np.zeros((40, 48), np.uint8))
    result = job.estimate(run, steps=2)
    assert result["seconds_per_step"] > 0 and result["steps"] == 2 and "CPU" in result["hardware"]
    assert result["startup_s"] >= 0
    expected = [protocol.SPEC_FILE, protocol.PHOTO_FILE, protocol.MASK_FILE]
    assert sorted(p.name for p in run.iterdir()) == sorted(expected)


def test_checks_and_listing(tmp_path: Path, base: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    assert protocol.check_name("ok-name_1.v2", models_dir=models, bundled_dir=base, runs_dir=tmp_path) is None
    assert "bundled" in protocol.check_name("t-glcic", models_dir=models, bundled_dir=base, runs_dir=tmp_path)
    assert "cannot be a model name" in protocol.check_name("a/b", models_dir=models, bundled_dir=base)
    assert "cannot be a model name" in protocol.check_name("x" * 65, models_dir=models, bundled_dir=base)
    for reserved in ("NUL", "con.v2", "harmonic", "Telea", "default"):  # devices, and the engine's own fills
        assert "reserved" in protocol.check_name(reserved, models_dir=models, bundled_dir=base), reserved
    run = _job(tmp_path, base, name="busy")
    protocol.write_status(run, "running", pid=2**22 + 12345)  # no such process
    for name in ("busy", "BUSY"):  # model names are compared case-insensitively, so run names are too
        assert "unfinished fine-tune" in protocol.check_name(name, models_dir=models, bundled_dir=base,
                                                        runs_dir=run.parent)
    info = protocol.run_info(run)
    assert info.state == "interrupted" and "ended without saying why" in info.message
    protocol.write_status(run, "running", pid=os.getpid())
    assert protocol.run_info(run).state == "running"
    (run.parent / "junk").mkdir()
    (run.parent / "junk" / protocol.SPEC_FILE).write_text("[1, 2]")
    states = {i.name: i.state for i in protocol.list_runs(run.parent)}
    assert states == {"busy": "running", "junk": "unknown"}
    assert protocol.check_folder(tmp_path / "photos") is None
    assert "does not exist" in protocol.check_folder(tmp_path / "nowhere")


def test_spec_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(protocol.JobError, match="not a fine-tune run folder"):
        protocol.read_spec(tmp_path)
    (tmp_path / protocol.SPEC_FILE).write_text(json.dumps({"name": "x"}))
    with pytest.raises(protocol.JobError, match="lacks base, base_card"):
        protocol.read_spec(tmp_path)


def _val_records(run: Path, scores: dict[int, float]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"kind": "val", "step": step, "table": {"all": {"hole_psnr": value}}})
             for step, value in scores.items()]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_held_out_gain_names_the_kept_step_or_says_the_base_was_kept(tmp_path: Path) -> None:
    _val_records(tmp_path / "gain", {0: 18.0, 30: 19.5, 60: 20.25, 90: 19.0})
    text = protocol.held_out_gain(tmp_path / "gain")
    assert "18.00 dB with the base model, 20.25 dB (+2.25 dB)" in text and "step 60" in text
    _val_records(tmp_path / "none", {0: 18.0, 30: 17.5, 60: 17.9})
    assert "did not improve" in protocol.held_out_gain(tmp_path / "none")
    assert "keeps the base model's weights" in protocol.held_out_gain(tmp_path / "none")
    _val_records(tmp_path / "folder", {100: 18.0})
    assert protocol.held_out_gain(tmp_path / "folder") == ""


def test_an_unfinished_run_can_take_another_name(tmp_path: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "runs_root", lambda: tmp_path / "runs")
    run = _job(tmp_path, base, name="beach")
    (tmp_path / "models").mkdir()
    save_model(CompletionNetwork(8), ModelCard("beach", "glcic", {"base_channels": 8}, "completion", 32),
               tmp_path / "models")  # the name was taken while the run trained
    assert protocol.free_name("beach", models_dir=tmp_path / "models") == "beach-2"
    with pytest.raises(protocol.JobError, match="already exists"):
        protocol.rename_run(run, "beach")
    moved = protocol.rename_run(run, "beach-2")
    assert moved == tmp_path / "runs" / "beach-2" and not run.exists()
    assert protocol.read_spec(moved).name == "beach-2"


def test_settings_that_cannot_fit_in_memory_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "device_memory", lambda device: 8 * 2**30)  # an 8 GB machine
    assert protocol.memory_problem(4, 128, 32, "cpu") is None  # the "this photo" defaults: about 0.6 GB
    problem = protocol.memory_problem(512, 2048, 32, "cpu")
    assert problem and "needs about" in problem and "8.0 GB" in problem and "smaller batch size" in problem
    assert protocol.training_memory(8, 256, 32) > protocol.training_memory(4, 256, 32)  # grows with batch, size, width
    assert protocol.training_memory(4, 256, 64) > protocol.training_memory(4, 256, 32)
    monkeypatch.setattr(protocol, "device_memory", lambda device: None)  # unknown: no guess is imposed
    assert protocol.memory_problem(512, 2048, 32, "cpu") is None


def test_the_folder_check_stops_at_the_first_photo_and_gives_up_on_a_huge_tree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = write_photos(tmp_path / "tree" / "b", count=2)
    (tmp_path / "tree" / "a").mkdir()
    (tmp_path / "tree" / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    from PIL import Image

    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: opened.append(Path(path).name) or real_open(path))
    assert protocol.check_folder(tmp_path / "tree") is None
    assert opened == ["broken.jpg", photos.joinpath("photo0.png").name]  # the broken one, the first good one
    monkeypatch.setattr(protocol, "FOLDER_CHECK_S", -1.0)  # as if the walk through a whole disk ran out of time
    assert "takes too long" in protocol.check_folder(tmp_path / "tree")
