"""The fine-tune dialog end to end: real (tiny) fine-tunes in a separate process, cancel and resume, and every
error case with its message. Tiny networks (8 channels, 1 block) on 32 px crops of generated photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app import finetune_presenter as presenter_module
from app.finetune_dialog import FinetuneDialog
from app.finetune_presenter import format_duration
from app.finetune_runner import running_runners
from app.settings import Settings
from engine.model_files import ModelCard, read_card, save_model
from engine.model_store import ModelStore
from engine.networks import CompletionNetwork
from engine.paths import user_models_dir
from engine.pipeline import Engine
from tests.app.helpers import photo_array
from tests.trainer.conftest import save_tiny_pair, write_photos
from tests.trainer.job_faults import fault_env
from trainer import finetune_protocol as protocol
from trainer.records import read_records

RUN_TIMEOUT = 240_000  # ms; a tiny run takes seconds, but the CI machine may be busy


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny edge-guided pair (t-edge + t-image, resolution 32) as the bundled models."""
    folder = tmp_path / "bundled"
    save_tiny_pair(folder, data="random init", license="test terms")
    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", str(folder))
    return folder


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return write_photos(tmp_path / "photos", count=4)


@pytest.fixture
def make_dialog(qtbot, base: Path):
    """Dialogs on the tiny base; afterwards no fine-tune process may be left running."""
    dialogs: list[FinetuneDialog] = []

    def make(image: np.ndarray | None = None, mask: np.ndarray | None = None, **kwargs) -> FinetuneDialog:
        kwargs.setdefault("auto_estimate", False)
        kwargs.setdefault("confirm", lambda _title, _text: True)
        settings = kwargs.pop("settings", None) or Settings.load()
        dialog = FinetuneDialog(ModelStore().fill_models(), image, mask, settings, photo_name="beach.jpg", **kwargs)
        qtbot.addWidget(dialog)
        dialog.show()
        dialogs.append(dialog)
        return dialog

    yield make
    for dialog in dialogs:
        dialog.shutdown(20_000)
    leftovers = running_runners()
    for runner in leftovers:
        runner.kill()
        runner.wait(10_000)
    assert not leftovers, "a fine-tune process outlived its test"


def _tiny_settings(dialog: FinetuneDialog, name: str, steps: int) -> None:
    dialog.form_box.steps_spin.setValue(steps)
    dialog.form_box.batch_spin.setValue(2)
    dialog.form_box.size_spin.setValue(32)
    dialog.form_box.lr_edit.setText("1e-3")
    dialog.form_box.device_combo.setCurrentIndex(dialog.form_box.device_combo.findData("cpu"))
    dialog.form_box.name_edit.setText(name)


def _run(qtbot, dialog: FinetuneDialog, action) -> object:
    with qtbot.waitSignal(dialog.run_finished, timeout=RUN_TIMEOUT) as blocker:
        assert action(), dialog.last_error
    return blocker.args[0]


def _model_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_folder_fine_tune_registers_a_complete_model(qtbot, make_dialog, photos: Path) -> None:
    dialog = make_dialog()
    assert dialog.form_box.base_combo.currentData() == "t-image" and dialog.form_box.folder_radio.isChecked()
    assert not dialog.form_box.photo_radio.isEnabled()  # no photo open
    dialog.form_box.folder_edit.setText(str(photos))
    _tiny_settings(dialog, "my-photos", steps=4)
    dialog.form_box.default_check.setChecked(True)
    registered: list[tuple] = []
    dialog.model_registered.connect(lambda name, default: registered.append((name, default)))
    outcome = _run(qtbot, dialog, dialog.start)

    assert outcome.state == "registered", (outcome.message, outcome.stderr[-2000:])
    assert registered == [("my-photos", True)] and dialog.settings.default_model == "my-photos"
    assert Settings.load().default_model == "my-photos"  # saved
    models = user_models_dir()
    assert _model_files(models) == ["my-photos.json", "my-photos.safetensors"]  # nothing half-written beside it
    card = read_card(models / "my-photos.json")
    assert (card.name, card.stage, card.companion, card.steps, card.resolution) == \
        ("my-photos", "image", "t-edge", 4, 32)
    assert "t-image" in card.description and "t-image" in card.data and f"/{photos.name} (" in card.data
    assert str(photos) not in card.data  # no absolute path of this machine in a card
    assert "CPU" in card.hardware and "test terms" in card.license
    assert card.validation["step"] == 4 and "hole_psnr" in card.validation["table"]["all"]
    listed = {m.name: m for m in Engine(device="cpu").models()}
    assert listed["my-photos"].kind == "neural" and listed["my-photos"].source == "user"
    # Live display: the progress bar reached the end, the curves and the last sample grid are shown.
    assert dialog.live_box.progress_bar.value() == dialog.live_box.progress_bar.maximum() == 4
    assert [s for s, _ in dialog.live_box.loss_plot.series()["image/g_l1"]] == [1, 2, 3, 4]
    assert not dialog.live_box.sample_label.source().isNull() and not dialog.live_box.sample_label.pixmap().isNull()
    assert dialog.live_box.val_table.rowCount() >= 1 and "step 4" in dialog.live_box.val_label.text()
    assert dialog.runs_box.runs_list.count() == 0  # a registered run is not offered for resuming
    # The name is taken now: the field offers a free one for a next run instead of warning about it.
    offered = dialog.form_box.name_edit.text()
    assert offered not in ("", "my-photos") and protocol.check_name(offered) is None
    assert "already exists" not in dialog.form_box.name_status.text()
    dialog.form_box.name_edit.setText("my-photos")
    assert "already exists" in dialog.form_box.name_status.text()


def test_photo_fine_tune_cancel_then_resume_after_reopening(qtbot, make_dialog) -> None:
    image = photo_array(72, 64)
    mask = np.zeros((64, 72), bool)
    mask[40:58, 48:68] = True
    dialog = make_dialog(image, mask, env=fault_env("hold:2"))  # the job waits at step 2 for the stop
    assert dialog.form_box.photo_radio.isChecked() and dialog.form_box.photo_radio.isEnabled()
    _tiny_settings(dialog, "beach-tuned", steps=6)
    assert dialog.start(), dialog.last_error
    run_dir = dialog.run_dir
    assert (run_dir / protocol.PHOTO_FILE).is_file() and (run_dir / protocol.MASK_FILE).is_file()
    qtbot.waitUntil(lambda: dialog.live_box.progress_bar.value() >= 2, timeout=RUN_TIMEOUT)
    assert "step 2 / 6" in dialog.live_box.progress_bar.format()
    with qtbot.waitSignal(dialog.run_finished, timeout=RUN_TIMEOUT) as blocker:
        dialog.close()  # asks (answered yes), stops with a checkpoint, closes once the process ended
    assert blocker.args[0].state == "stopped", blocker.args[0].message
    assert dialog.isHidden()
    assert protocol.run_info(run_dir).step == 2 and protocol.run_info(run_dir).state == "stopped"
    assert _model_files(user_models_dir()) == []  # a stopped run registers nothing

    reopened = make_dialog(image, mask)  # e.g. after restarting the editor
    assert reopened.runs_box.isVisibleTo(reopened) and reopened.runs_box.runs_list.count() == 1
    listed = reopened.runs_box.runs_list.item(0).text()
    assert "beach-tuned" in listed and "2/6" in listed
    assert "unfinished fine-tune" in (protocol.check_name("beach-tuned") or "")
    with qtbot.waitSignal(reopened.run_finished, timeout=RUN_TIMEOUT) as blocker:
        reopened.runs_box.resume_button.click()
    outcome = blocker.args[0]
    assert outcome.state == "registered", (outcome.message, outcome.stderr[-2000:])
    steps = [s for s, _ in reopened.live_box.loss_plot.series()["image/g_l1"]]
    assert steps == [1, 2, 3, 4, 5, 6]  # the curve continues where it stopped
    # held-out holes were validated on the base before step 1 and again at the end
    assert "Validation at step 6" in reopened.live_box.val_label.text()
    assert "against the base model" in reopened.live_box.val_label.text()
    # one row: "all" would repeat the only bucket
    assert reopened.live_box.val_table.rowCount() == 1
    assert reopened.live_box.val_table.verticalHeaderItem(0).text() == "held-out holes in the known area"
    card = read_card(user_models_dir() / "beach-tuned.json")
    scores = {r["step"]: r["table"]["all"]["hole_psnr"] for r in read_records(run_dir, "val")}
    kept = max(scores, key=lambda step: (scores[step], -step))  # the best held-out validation is registered
    assert card.steps == kept and "beach.jpg" in card.data and "internal fine-tuning" in card.data
    assert ("keeps the base model's weights" if kept == 0 else f"kept from step {kept}") in outcome.message
    # the dialog says which weights it kept: the last validation line alone may show a loss the run did not keep
    assert ("keeps the base model's weights" if kept == 0 else f"kept from step {kept}") in \
        reopened.status_label.text()
    assert card.companion == "t-edge"
    assert reopened.runs_box.runs_list.count() == 0


def test_disk_full_during_export_leaves_no_model_and_resume_registers(qtbot, make_dialog, photos: Path) -> None:
    dialog = make_dialog(env=fault_env("enospc:export"))
    dialog.form_box.folder_edit.setText(str(photos))
    _tiny_settings(dialog, "full-disk", steps=2)
    outcome = _run(qtbot, dialog, dialog.start)
    assert outcome.state == "disk-full"
    assert "disk is full" in dialog.error_label.text() and "Resume" in dialog.error_label.text()
    assert _model_files(user_models_dir()) == []  # no card, no weights, no staging folder
    assert dialog.runs_box.runs_list.count() == 1 and "failed" in dialog.runs_box.runs_list.item(0).text()

    dialog.env = {}  # space was freed
    outcome = _run(qtbot, dialog, lambda: dialog.resume_run(dialog.run_dir))
    assert outcome.state == "registered", outcome.message
    assert _model_files(user_models_dir()) == ["full-disk.json", "full-disk.safetensors"]


@pytest.mark.parametrize(("fault", "state", "words"), [
    ("oom:0", "oom", "smaller batch size or training resolution"),
    ("kill:0", "crashed", "ran out of memory"),
])
def test_out_of_memory_and_a_killed_process_are_explained(qtbot, make_dialog, photos: Path, fault: str,
                                                          state: str, words: str) -> None:
    dialog = make_dialog(env=fault_env(fault))
    dialog.form_box.folder_edit.setText(str(photos))
    _tiny_settings(dialog, "too-big", steps=3)
    outcome = _run(qtbot, dialog, dialog.start)
    assert outcome.state == state
    assert words in dialog.error_label.text()
    assert _model_files(user_models_dir()) == []
    assert dialog.start_button.isEnabled()  # the editor and the dialog carry on


def test_after_running_out_of_memory_start_with_a_smaller_batch_replaces_the_run(qtbot, make_dialog,
                                                                                 photos: Path) -> None:
    asked = []
    dialog = make_dialog(env=fault_env("oom:0"), confirm=lambda title, text: asked.append(title) or True)
    dialog.form_box.folder_edit.setText(str(photos))
    _tiny_settings(dialog, "too-big", steps=2)
    assert _run(qtbot, dialog, dialog.start).state == "oom"
    assert "Start replaces it" in dialog.form_box.name_status.text() and dialog.runs_box.runs_list.count() == 1
    dialog.env = {}
    dialog.form_box.batch_spin.setValue(1)  # what the message advised
    outcome = _run(qtbot, dialog, dialog.start)
    assert asked == ["Replace unfinished run"] and outcome.state == "registered", outcome.message
    assert protocol.read_spec(dialog.run_dir).batch_size == 1 and dialog.runs_box.runs_list.count() == 0


def test_settings_too_big_for_the_memory_are_refused_before_anything_runs(make_dialog, photos: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "device_memory", lambda device: 2 * 2**30)
    dialog = make_dialog()
    dialog.form_box.folder_edit.setText(str(photos))
    _tiny_settings(dialog, "huge", steps=2)
    dialog.form_box.batch_spin.setValue(512)
    dialog.form_box.size_spin.setValue(2048)
    assert not dialog.start() and "needs about" in dialog.last_error
    assert not dialog.time_estimate.start()  # measuring would only run out of memory
    assert "needs about" in dialog.estimate_label.text()
    assert not dialog.is_running() and dialog.runs_box.runs_list.count() == 0


def test_time_estimate_measures_steps_in_a_process(qtbot, make_dialog, photos: Path) -> None:
    dialog = make_dialog(auto_estimate=True)
    dialog.form_box.device_combo.setCurrentIndex(dialog.form_box.device_combo.findData("cpu"))
    dialog.form_box.batch_spin.setValue(2)
    with qtbot.waitSignal(dialog.estimate_ready, timeout=RUN_TIMEOUT) as blocker:
        dialog.form_box.folder_edit.setText(str(photos))  # a usable folder: the debounced estimate starts
    result = blocker.args[0]
    assert result is not None and result["seconds_per_step"] > 0 and result["steps"] == 3
    text = dialog.estimate_label.text()
    assert text.startswith("About ") and "estimate" in text
    dialog.form_box.steps_spin.setValue(1000)  # more steps: the same measurement, a longer estimate, no new process
    assert dialog.estimate["total_s"] > result["seconds_per_step"] * 1000
    assert dialog.time_estimate.runner is None or not dialog.time_estimate.runner.is_running()
    assert not (protocol.runs_root() / ".estimate").exists()


# --- errors found before anything starts ---------------------------------------------------------------------

def test_folder_problems_have_clear_messages(make_dialog, tmp_path: Path) -> None:
    dialog = make_dialog()
    dialog.form_box.name_edit.setText("fine")
    empty = tmp_path / "empty"
    empty.mkdir()
    dialog.form_box.folder_edit.setText(str(empty))
    assert not dialog.start() and "holds no photos" in dialog.error_label.text()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"not a jpeg at all")
    (broken / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    dialog.form_box.folder_edit.setText(str(broken))
    assert not dialog.start()
    assert "None of the 2 image file(s)" in dialog.error_label.text() and "could be read" in dialog.last_error
    dialog.form_box.folder_edit.setText(str(tmp_path / "missing"))
    assert not dialog.start() and "does not exist" in dialog.last_error
    dialog.form_box.folder_edit.setText("")
    assert not dialog.start() and "Choose a folder" in dialog.last_error
    assert not protocol.runs_root().joinpath("fine").exists()  # nothing was started


def test_name_problems_have_clear_messages(make_dialog, photos: Path) -> None:
    models = user_models_dir()
    (models / "taken.json").write_text("{}")
    dialog = make_dialog()
    dialog.form_box.folder_edit.setText(str(photos))
    for name, words in [("", "Give the new model a name"), ("my model", "cannot be a model name"),
                        ("../evil", "cannot be a model name"), ("telea", "reserved"),
                        ("taken", "already exists in your models folder"), ("TAKEN", "already exists"),
                        ("t-image", "bundled with the program")]:
        dialog.form_box.name_edit.setText(name)
        assert words in dialog.form_box.name_status.text(), name
        assert not dialog.start() and words in dialog.last_error, name
    dialog.form_box.name_edit.setText("fresh")
    assert "Will be saved" in dialog.form_box.name_status.text()
    (models / "fresh-edge.json").write_text("{}")
    assert protocol.check_name("fresh", "image") is None  # an image-only run registers just NAME
    dialog.form_box.parts_combo.setCurrentIndex(dialog.form_box.parts_combo.findData("joint"))
    assert "'fresh-edge' already exists" in dialog.form_box.name_status.text()  # a joint run also registers NAME-edge


def test_a_base_whose_edge_model_was_damaged_since_the_list_was_made_is_refused(make_dialog, base: Path,
                                                                                  photos: Path) -> None:
    dialog = make_dialog()  # the list was made with whole files
    dialog.form_box.folder_edit.setText(str(photos))
    _tiny_settings(dialog, "after-damage", steps=2)
    edge = base / "t-edge.safetensors"
    edge.write_bytes(edge.read_bytes()[:100])
    assert not dialog.start()
    assert "base model cannot be used" in dialog.last_error and "t-edge.safetensors" in dialog.last_error


def test_photo_and_disk_problems(make_dialog, monkeypatch: pytest.MonkeyPatch) -> None:
    image = photo_array(72, 64)
    dialog = make_dialog(image, np.ones((64, 72), bool))
    dialog.form_box.name_edit.setText("whole")
    assert not dialog.start() and "whole photo is masked" in dialog.last_error

    dialog = make_dialog(image, np.zeros((64, 72), bool))
    dialog.form_box.name_edit.setText("nodisk")
    usage = shutil.disk_usage(protocol.runs_root())
    monkeypatch.setattr(presenter_module.shutil, "disk_usage", lambda _p: usage._replace(free=1000))
    assert not dialog.start() and "Not enough free disk space" in dialog.last_error


def test_a_completion_base_cannot_fine_tune_on_one_photo(make_dialog, base: Path, qtbot) -> None:
    from engine.networks import CompletionNetwork

    save_model(CompletionNetwork(8), ModelCard("t-glcic", "glcic", {"base_channels": 8}, "completion", 32), base)
    image = photo_array(72, 64)
    dialog = make_dialog(image, np.zeros((64, 72), bool))
    dialog.form_box.base_combo.setCurrentIndex(dialog.form_box.base_combo.findData("t-glcic"))
    assert not dialog.form_box.photo_radio.isEnabled() and dialog.form_box.folder_radio.isChecked()
    assert dialog.form_box.parts() == "completion" and not dialog.form_box.parts_combo.isEnabled()
    spec = dialog.current_spec()
    assert spec.kind == "completion" and spec.parts == "completion" and spec.edge_card == ""


def test_the_model_list_can_arrive_after_the_dialog_opened(qtbot, base: Path) -> None:
    image = photo_array(72, 64)
    dialog = FinetuneDialog([], image, None, Settings.load(), auto_estimate=False)
    qtbot.addWidget(dialog)
    assert dialog.form_box.base_combo.count() == 0
    assert not dialog.start() and "No model to fine-tune" in dialog.last_error
    assert dialog.form_box.folder_radio.isChecked()
    dialog.set_models(ModelStore().fill_models())
    assert dialog.form_box.base_combo.currentData() == "t-image" and dialog.form_box.photo_radio.isChecked()
    assert dialog.last_error == "" and dialog.form_box.size_spin.value() == 24  # this photo: half of 32 px, at least 24
    spec = dialog.current_spec()
    assert (spec.steps, spec.batch_size, spec.lr) == tuple(protocol.PHOTO_DEFAULTS.values())  # those the bench measured
    dialog.form_box.folder_radio.setChecked(True)
    assert dialog.form_box.size_spin.value() == 32  # a folder: the base's working resolution
    spec = dialog.current_spec()
    assert (spec.steps, spec.batch_size, spec.lr) == tuple(protocol.FOLDER_DEFAULTS.values())


def test_delete_an_unfinished_run(make_dialog) -> None:
    run = protocol.runs_root() / "old"
    run.mkdir(parents=True)
    protocol.write_spec(run, protocol.JobSpec(name="old", base="t-image", base_card="x.json", steps=10))
    protocol.write_status(run, "stopped", "Stopped at step 3.")
    dialog = make_dialog()
    assert dialog.runs_box.runs_list.count() == 1 and "stopped" in dialog.runs_box.runs_list.item(0).text()
    dialog.runs_box.delete_button.click()
    assert not run.exists() and dialog.runs_box.runs_list.count() == 0 and not dialog.runs_box.isVisibleTo(dialog)


def test_a_run_trained_by_another_process_is_not_resumed_twice(make_dialog) -> None:
    import os

    run = protocol.runs_root() / "busy"
    run.mkdir(parents=True)
    protocol.write_spec(run, protocol.JobSpec(name="busy", base="t-image", base_card="x.json", steps=10))
    protocol.write_status(run, "running", pid=os.getpid())  # alive: e.g. another editor window trains it
    dialog = make_dialog()
    assert "running" in dialog.runs_box.runs_list.item(0).text()
    assert not dialog.resume_run(run) and "another process" in dialog.last_error
    assert not dialog.is_running()
    dialog.runs_box.delete_button.click()  # nor deleted under the other process's feet
    assert run.is_dir() and "another process" in dialog.last_error


def test_a_run_whose_name_was_taken_meanwhile_registers_under_another(qtbot, make_dialog, photos: Path) -> None:
    asked = []

    def ask_name(title: str, text: str, proposal: str) -> str:
        asked.append((text, proposal))
        return proposal

    dialog = make_dialog(env=fault_env("enospc:export"), ask_name=ask_name)
    dialog.form_box.folder_edit.setText(str(photos))
    _tiny_settings(dialog, "taken", steps=2)
    assert _run(qtbot, dialog, dialog.start).state == "disk-full"  # stopped before registering
    save_model(CompletionNetwork(8), ModelCard("taken", "glcic", {"base_channels": 8}, "completion", 32),
               user_models_dir())  # meanwhile a model of that name was made
    dialog.env = {}
    outcome = _run(qtbot, dialog, lambda: dialog.resume_run(dialog.run_dir))
    assert outcome.state == "registered", outcome.message
    assert asked and "already exists" in asked[0][0] and asked[0][1] == "taken-2"
    assert (user_models_dir() / "taken-2.json").is_file()
    assert read_card(user_models_dir() / "taken.json").stage == "completion"  # the other model is untouched


def test_format_duration() -> None:
    assert [format_duration(s) for s in (4.4, 61, 3725)] == ["4 s", "1 min 01 s", "1 h 02 min"]


def test_spec_round_trip(tmp_path: Path) -> None:
    spec = protocol.JobSpec(name="n", base="b", base_card="b.json", steps=7, lr=3e-4)
    protocol.write_spec(tmp_path, spec)
    assert protocol.read_spec(tmp_path) == spec
    assert json.loads((tmp_path / protocol.SPEC_FILE).read_text())["steps"] == 7


def test_a_run_that_validates_clearly_worse_than_its_base_gets_a_warning(make_dialog) -> None:
    dialog = make_dialog()
    dialog.on_record({"kind": "val", "step": 0, "table": {"all": {"hole_psnr": 25.0}}})
    dialog.on_record({"kind": "val", "step": 10, "table": {"all": {"hole_psnr": 24.5}}})
    assert dialog.live_box.worse_than_base() == ""  # within a dB: no warning
    dialog.on_record({"kind": "val", "step": 20, "table": {"all": {"hole_psnr": 17.5}}})
    assert "7.5 dB worse than the base model" in dialog.live_box.worse_than_base()
    assert "-7.50 dB against the base model" in dialog.live_box.val_label.text()


def test_the_settings_column_keeps_its_width_when_status_lines_grow(qtbot, make_dialog) -> None:
    dialog = make_dialog()
    width = dialog.left_column.width()
    assert width >= 520
    dialog.status_label.setText("step 12 / 300, loss 0.1234, " * 12)  # a long line, as a run writes them
    dialog.form_box.setEnabled(False)  # as during a run
    dialog.adjustSize()
    qtbot.waitUntil(lambda: dialog.left_column.width() == width, timeout=2000)
    assert dialog.form_box.width() >= 520 - 20


def test_this_photo_leaves_out_what_was_filled_in_this_session(make_dialog, tmp_path: Path) -> None:
    import cv2

    image = photo_array(80, 50)
    mask = np.zeros((50, 80), bool)
    mask[5:15, 5:25] = True  # the next hole: 200 px
    filled = np.zeros((50, 80), bool)
    filled[20:40, 40:80] = True  # filled before: 800 px, 20 % of the photo
    dialog = make_dialog(image, mask, filled=filled)
    note = dialog.form_box.photo_note.text()
    assert "20 % of the photo was filled in this session and is left out" in note
    assert "learns from the 75 % that came from the file" in note and "your mask is never a target" in note
    # what the trainer reads as its user mask (white = no ground truth)
    presenter_module.write_photo(tmp_path, dialog.image, dialog.mask)
    written = cv2.imread(str(tmp_path / protocol.MASK_FILE), cv2.IMREAD_GRAYSCALE) > 0
    assert np.array_equal(written, mask | filled)


def test_this_photo_refuses_a_photo_that_is_all_mask_or_fill(make_dialog) -> None:
    image = photo_array(72, 64)
    mask = np.zeros((64, 72), bool)
    mask[:, :30] = True
    dialog = make_dialog(image, mask, filled=~mask)
    dialog.form_box.name_edit.setText("nothing-left")
    assert not dialog.start() and "filled in this session" in dialog.last_error


def test_the_note_without_fills_or_mask_says_the_whole_photo_is_used() -> None:
    note = presenter_module.photo_note("a.jpg", np.zeros((4, 5), bool), np.zeros((4, 5), bool))
    assert note.startswith("a.jpg, 5 x 4: learns from the 100 % that came from the file.")
    assert "filled" not in note and "mask" not in note
