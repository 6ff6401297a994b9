"""inpaint-train: quick form, --set/--config, resume, export with ONNX, one-line errors with non-zero exit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from engine.model_files import read_card
from tests.trainer.conftest import TINY
from trainer.cli import EXIT_ERROR, main
from trainer.config import load_config
from trainer.records import read_records

SETS = [arg for item in TINY for arg in ("--set", item)]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("inpaint-train: error: ")
    return err[0]


def test_quick_form_resume_and_export_with_onnx(photos: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    args = ["--data", str(photos), "--out", str(run), "--steps", "2", "--batch-size", "2", "--size", "32",
            "--stage", "image", *SETS]
    assert main(args) == 0
    saved = load_config(run / "config.toml")
    assert (saved.optim.steps, saved.data.size, saved.stage.name, saved.data.train_dir) == (2, 32, "image",
                                                                                          str(photos))
    assert saved.run.command.startswith("inpaint-train --data")
    assert main(["--out", str(run), "--resume", "--steps", "4"]) == 0
    assert [r["step"] for r in read_records(run, "train")] == [2, 4]
    command = load_config(run / "config.toml").run.command  # how the run was made: the start, then the resume
    assert command.startswith("inpaint-train --data") and command.endswith("--resume --steps 4")
    assert load_config(run / "config.toml").model.image.arguments["base_channels"] == 8
    capsys.readouterr()

    models = tmp_path / "models"
    assert main(["export", str(run), "--out", str(models), "--onnx", "--name", "cli",
                 "--companion", "some-edge"]) == 0
    out = capsys.readouterr()
    assert "max abs difference" in out.err
    graph = onnx.load(str(models / "cli-image.onnx"))
    onnx.checker.check_model(graph)
    dims = [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims[2:] == ["height", "width"]
    assert (models / "cli-image.safetensors").is_file() and (models / "cli-image.json").is_file()
    assert read_card(models / "cli-image.json").resolution == 32  # the training crop size by default

    assert main(["export", str(run), "--out", str(tmp_path / "wide"), "--resolution", "64"]) == 0
    card = read_card(tmp_path / "wide" / "run-image.json")
    assert card.resolution == 64 and "32 px crops" in card.description and "64 px working" in card.description
    assert main(["export", str(run), "--out", str(tmp_path / "bad"), "--resolution", "30"]) != 0
    assert "multiple of 4" in capsys.readouterr().err


def test_onnx_matches_torch_for_edge_and_glcic(photos: Path, tmp_path: Path) -> None:
    from tests.trainer.conftest import tiny_config
    from trainer.export import ONNX_TOLERANCE, export_run
    from trainer.loop import train

    for stage in ("edge", "glcic"):
        extra = ["stage.glcic_completion_steps=0", "stage.glcic_discriminator_steps=0"] if stage == "glcic" else []
        train(tiny_config(photos, tmp_path / stage, "optim.steps=1", f"stage.name={stage}", *extra))
        result = export_run(tmp_path / stage, tmp_path / "m", onnx=True, name=stage)
        assert len(result.onnx) == 1
        diff = next(iter(result.onnx_max_diff.values()))
        assert np.isfinite(diff) and diff < ONNX_TOLERANCE


@pytest.mark.parametrize(("argv", "expected"), [
    (["--set", "optim.bach_size=2"], "did you mean 'optim.batch_size'?"),
    (["--set", "optim.lr=abc"], "optim.lr: expected a number, got 'abc'"),
    (["--set", "nonsense"], "expected key=value"),
    (["--stage", "edges"], "did you mean 'edge'?"),
    (["--config", "/nonexistent/x.toml"], "config file not found"),
    (["--set", "data.max_scale=0.5"], "data.max_scale: must be at least 1, got 0.5"),
    (["--set", "data.max_scale=nan"], "data.max_scale: expected a finite number, got nan"),
])
def test_bad_settings_give_one_line(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    argv: list[str], expected: str) -> None:
    code = main(["--data", str(photos), "--out", str(tmp_path / "r"), *argv])
    assert code == EXIT_ERROR
    assert expected in _one_line_error(capsys)


def test_data_problems_give_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--data", str(empty), "--out", str(tmp_path / "r"), *SETS]) == EXIT_ERROR
    assert "no photos" in _one_line_error(capsys)
    assert main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == EXIT_ERROR
    assert "folder not found" in _one_line_error(capsys)
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "m")]) == EXIT_ERROR
    assert "not a training run folder" in _one_line_error(capsys)


def test_relative_paths_are_stored_absolute_so_resume_works_from_elsewhere(photos: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    local = tmp_path / "work"
    shutil.copytree(photos, local / "photos")
    monkeypatch.chdir(local)
    assert main(["--data", "photos", "--out", "run", "--steps", "2", "--stage", "image", *SETS]) == 0
    saved = load_config(local / "run" / "config.toml")
    assert saved.data.train_dir == str(local / "photos") and saved.run.out == str(local / "run")
    monkeypatch.chdir(tmp_path)
    assert main(["--out", str(local / "run"), "--resume", "--steps", "4"]) == 0


def test_wrong_runs_and_folders_give_one_line(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path / "nothing"), "--resume"]) == EXIT_ERROR
    assert "there is no run in" in _one_line_error(capsys)
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert main(["--data", str(photos), "--out", str(a_file), *SETS]) == EXIT_ERROR
    assert "is a file, not a run folder" in _one_line_error(capsys)
    for val in (photos, photos.parent):  # the same folder, or one holding the training photos
        assert main(["--data", str(photos), "--val", str(val), "--out", str(tmp_path / "r"), *SETS]) == EXIT_ERROR
        assert "overlap" in _one_line_error(capsys)
    empty = tmp_path / "emptyval"
    empty.mkdir()
    assert main(["--data", str(photos), "--val", str(empty), "--out", str(tmp_path / "r"), *SETS]) == EXIT_ERROR
    assert "validation folder" in _one_line_error(capsys)


def test_a_model_of_a_part_the_stage_does_not_train_is_refused(photos: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from tests.trainer.conftest import save_tiny_pair

    _, image = save_tiny_pair(tmp_path / "models")
    code = main(["--data", str(photos), "--out", str(tmp_path / "r"), "--stage", "edge", "--init",
                 str(image.with_suffix(".json")), *SETS])
    assert code == EXIT_ERROR
    assert "the edge stage does not use a image model" in _one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_export_best_without_best_weights_says_so(photos: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["--data", str(photos), "--out", str(run), "--steps", "2", "--stage", "image", *SETS]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "m"), "--best", "--companion", "e"]) == 0
    err = capsys.readouterr().err
    assert "kept no best weights" in err and "latest checkpoint, step 2" in err


def test_export_never_replaces_a_model_without_overwrite(photos: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 17 #4: a second export over a model of the same name replaced it silently (exit 0)."""
    run = tmp_path / "run"
    assert main(["--data", str(photos), "--out", str(run), "--steps", "2", "--stage", "image", *SETS]) == 0
    out = tmp_path / "m"
    assert main(["export", str(run), "--out", str(out), "--companion", "e"]) == 0
    card = next(out.glob("*.json"))
    card.write_text(card.read_text().replace('"steps": 2', '"steps": 2, "mine": 1'))
    kept = card.read_text()
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(out), "--companion", "e"]) != 0
    assert "already exists; use --overwrite" in capsys.readouterr().err
    assert card.read_text() == kept
    assert main(["export", str(run), "--out", str(out), "--companion", "e", "--overwrite"]) == 0
    assert card.read_text() != kept


def test_a_batch_that_cannot_fit_is_refused_before_training(photos: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 17 #10: --batch-size 1000000 grew memory with no step done."""
    assert main(["--data", str(photos), "--out", str(tmp_path / "run"), "--steps", "1",
                 *SETS, "--set", "optim.batch_size=1000000"]) != 0
    err = capsys.readouterr().err
    assert "Batch 1000000" in err and "use a smaller batch size" in err and "Traceback" not in err
