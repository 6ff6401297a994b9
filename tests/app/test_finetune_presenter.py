"""The fine-tune dialog's checks and spec, without Qt (no QApplication, no widget)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app import finetune_presenter as presenter
from engine.model_store import ModelStore
from tests.trainer.conftest import save_tiny_pair, write_photos
from trainer import finetune_protocol as protocol

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> presenter.FinetuneForm:
    """A valid folder form on a tiny edge-guided pair (the bundled models)."""
    folder = tmp_path / "bundled"
    save_tiny_pair(folder)
    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", str(folder))
    base = next(m for m in ModelStore().fill_models() if m.name == "t-image")
    return presenter.FinetuneForm(base=base, folder=str(write_photos(tmp_path / "photos", count=2)), name="mine",
                                  steps=10, batch_size=2, size=32, lr_text="2e-4")


def test_the_presenter_imports_no_qt() -> None:
    code = ("import json, sys; import app.finetune_presenter; "
            "print(json.dumps([m for m in ('PySide6', 'shiboken6') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_a_valid_form_has_no_problem_and_makes_its_spec(form: presenter.FinetuneForm) -> None:
    assert presenter.problems(form) is None and presenter.problems_for_estimate(form) is None
    spec = presenter.job_spec(form)
    assert (spec.name, spec.base, spec.companion, spec.kind, spec.mode) == ("mine", "t-image", "t-edge", "neural",
                                                                            "folder")
    assert spec.edge_card.endswith("t-edge.json") and (spec.lr, spec.size, spec.batch_size) == (2e-4, 32, 2)
    assert presenter.job_spec(form, name="other").name == "other"


@pytest.mark.parametrize(("change", "expected"), [
    ({"lr_text": "fast"}, "learning rate must be a number"),
    ({"lr_text": "1.5"}, "learning rate must be a number"),
    ({"size": 30}, "multiple of 4"),
    ({"name": "harmonic"}, "reserved name"),
    ({"folder": "/no/such/folder"}, "does not exist"),
    ({"mode": "photo"}, "Open a photo first"),
    ({"base": None}, "No model to fine-tune"),
])
def test_each_problem_is_said_in_words(form: presenter.FinetuneForm, change: dict, expected: str) -> None:
    for key, value in change.items():
        setattr(form, key, value)
    assert expected in (presenter.problems(form) or "")


def test_a_masked_or_filled_photo_leaves_nothing_to_learn(form: presenter.FinetuneForm) -> None:
    form.mode, form.image = "photo", np.zeros((8, 8, 3), np.uint8)
    form.mask, form.filled = np.ones((8, 8), bool), np.zeros((8, 8), bool)
    assert "whole photo is masked" in presenter.problems(form)
    form.filled = np.ones((8, 8), bool)
    assert "fills are never training targets" in presenter.problems(form)


def test_memory_and_disk_budgets(form: presenter.FinetuneForm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "device_memory", lambda device: 2**20)  # a 1 MB machine
    assert "needs about" in presenter.memory_problem(form)
    assert presenter.problems_for_estimate(form) == "memory"
    monkeypatch.setattr(protocol, "device_memory", lambda device: None)
    usage = presenter.shutil.disk_usage(protocol.runs_root())
    monkeypatch.setattr(presenter.shutil, "disk_usage", lambda _p: usage._replace(free=1000))
    assert "Not enough free disk space" in presenter.problems(form)


def test_texts_the_dialog_shows() -> None:
    assert presenter.parse_learning_rate("1,5e-4") == 1.5e-4 and presenter.parse_learning_rate("nan") is None
    assert presenter.format_duration(130) == "2 min 10 s" and presenter.format_duration(float("inf")) == "unknown"
    assert presenter.suggest_name("my photos!") == "my-photos" and presenter.suggest_name("  ") == "my-model"
    ok, text = presenter.name_status("fresh-name", "image")
    assert ok and "Will be saved in" in text
    assert presenter.name_status("", "image") == (False, "Give the new model a name.")


def test_live_texts_of_a_run() -> None:
    assert presenter.progress_format(3, 10, 125.0) == "step 3 / 10 — about 2 min 05 s left"
    assert presenter.progress_format(3, 10, None) == "step 3 / 10"
    total, text = presenter.estimate_text({"startup_s": 10.0, "seconds_per_step": 2.0, "steps": 3}, 100, "CPU")
    assert total == pytest.approx(220.0) and text.startswith("About 3 min 40 s on CPU — an estimate: 2.00 s per")
    assert "out of memory" in presenter.estimate_failure("oom", "") and presenter.estimate_failure(
        "error", "bad") == "No time estimate: bad"
    one = {"all": {"hole_psnr": 20.0, "ssim": 0.5}, "held-out holes": {"hole_psnr": 20.0, "ssim": 0.5}}
    assert presenter.validation_rows(one) == (["held-out holes"], [["20.00", "–", "0.500", "–"]])  # "all" once
    two = {"a": {"psnr": 1.0}, "b": {}, "all": {"psnr": 2.0}}
    assert presenter.validation_rows(two)[0] == ["a", "b", "all"]
    base = {"step": 0, "table": {"all": {"hole_psnr": 25.0}}}
    later = {"step": 9, "table": {"all": {"hole_psnr": 23.5}}}
    assert presenter.validation_headline(base, base) == "Validation at step 0"
    assert presenter.validation_headline(later, base) == \
        "Validation at step 9 — hole PSNR 23.50 dB, -1.50 dB against the base model"
    assert "1.5 dB worse than the base model's" in presenter.worse_than_base(base, later)
    assert presenter.worse_than_base(base, base) == "" and presenter.worse_than_base(later, base) == ""


def test_write_photo_writes_rgb_and_mask_downscaled_on_request(tmp_path: Path) -> None:
    import cv2

    image = np.zeros((40, 80, 3), np.uint8)
    image[..., 0] = 200  # red
    mask = np.zeros((40, 80), bool)
    mask[:, :40] = True
    presenter.write_photo(tmp_path, image, mask, max_side=20)
    photo = cv2.imread(str(tmp_path / protocol.PHOTO_FILE))
    written = cv2.imread(str(tmp_path / protocol.MASK_FILE), cv2.IMREAD_GRAYSCALE)
    assert photo.shape == (10, 20, 3) and photo[0, 0, 2] == 200 and photo[0, 0, 0] == 0  # BGR on disk
    assert written.shape == (10, 20) and written[:, :10].min() == 255 and written[:, 10:].max() == 0
