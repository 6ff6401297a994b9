"""The fine-tune dialog's decisions, without Qt: what the form's values mean (the job spec), what keeps them
from starting or from being measured, the texts the dialog shows (estimate, progress, validation, warnings)
and the photo files a "this photo" job reads. The dialog only reads its widgets into a :class:`FinetuneForm`
and shows what comes back, so all of this is tested without a QApplication.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.api import ModelInfo
from engine.atomic import write_with_atomic
from engine.errors import ModelFileError
from engine.model_files import check_weights_file, read_card, weights_path
from engine.model_store import ModelStore
from engine.paths import user_models_dir
from trainer import finetune_protocol as protocol

ESTIMATE_PHOTO_SIDE = 1024  # the estimate trains on a downscaled copy (the step cost depends on the crop size)
VAL_COLUMNS = (("hole_psnr", "hole PSNR"), ("psnr", "PSNR"), ("ssim", "SSIM"), ("l1", "L1 %"))
"""Validation table columns: (metric key, header)."""
WORSE_DB = 1.0  # a registered model validating this much below its base gets a warning


def format_duration(seconds: float) -> str:
    """``45 s``, ``2 min 10 s``, ``1 h 05 min``."""
    if not math.isfinite(seconds):
        return "unknown"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def suggest_name(text: str) -> str:
    """A filename-safe model name from free text."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60]
    return name or "my-model"


def _percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a rounded percentage, never "0 %" or "100 %" for a share that is not."""
    share = 100.0 * part / max(1, whole)
    if 0 < share < 1:
        return "under 1 %"
    if 99 < share < 100:
        return "over 99 %"
    return f"{share:.0f} %"


def photo_note(name: str, mask: np.ndarray, filled: np.ndarray) -> str:
    """What "this photo" trains on: the pixels that came from the file, neither the mask nor a fill of this
    session (``mask`` and ``filled`` H x W bool)."""
    h, w = mask.shape
    known = int(np.count_nonzero(~(mask | filled)))
    text = f"{name or 'the open photo'}, {w} x {h}: learns from the {_percent(known, mask.size)} that came from " \
           "the file"
    masked, filled_count = int(np.count_nonzero(mask)), int(np.count_nonzero(filled & ~mask))
    if filled_count:
        text += (f"; {_percent(filled_count, mask.size)} of the photo was filled in this session and is left out "
                 "(a fill is not the photo)")
    text += "; your mask is never a target" if masked else ""
    return text + (". It checks its fills on held-out holes of the photo and keeps the base model's weights "
                   "unless they improve.")


def parse_learning_rate(text: str) -> float | None:
    """The learning rate typed (a comma counts as the decimal point), or None unless it is in (0, 1)."""
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if 0 < value < 1 and math.isfinite(value) else None


def name_status(name: str, parts: str) -> tuple[bool, str]:
    """(usable, text) for the line under the name field."""
    problem = protocol.check_name(name.strip(), parts)
    return (False, problem) if problem else (True, f"Will be saved in {user_models_dir()}")


@dataclass
class FinetuneForm:
    """The dialog's values, read from its widgets (``image``/``mask``/``filled``: the open photo, if any)."""

    base: ModelInfo | None
    mode: str = "folder"  # "folder" or "photo"
    folder: str = ""
    name: str = ""
    parts: str = "image"
    adversarial: bool = False
    steps: int = 300
    batch_size: int = 1
    lr_text: str = "1e-4"
    size: int = 128
    device: str = "cpu"
    photo_name: str = ""
    image: np.ndarray | None = None
    mask: np.ndarray | None = None
    filled: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))

    @property
    def learning_rate(self) -> float | None:
        return parse_learning_rate(self.lr_text)


def _companion_card(info: ModelInfo) -> tuple[str, Path | None]:
    """An edge-guided base model's companion: (name, card path or None when it is not installed)."""
    companion = read_card(info.path).companion or ""
    return companion, ModelStore().card_path(companion)


def job_spec(form: FinetuneForm, name: str | None = None) -> protocol.JobSpec:
    """The job the form describes (not yet checked); ``name`` replaces the typed one."""
    info = form.base
    if info is None:
        raise protocol.JobError("No base model to fine-tune.")
    companion, edge_card = "", ""
    if info.kind == "neural":
        companion, edge = _companion_card(info)
        edge_card = str(edge or "")
    photo = form.mode == "photo"
    return protocol.JobSpec(
        name=(name if name is not None else form.name.strip()), base=info.name,
        base_card=str(Path(info.path)), edge_card=edge_card, companion=companion,
        kind="completion" if info.kind == "completion" else "neural", mode=form.mode,
        folder=form.folder.strip() if not photo else "",
        photo=protocol.PHOTO_FILE if photo else "", mask=protocol.MASK_FILE if photo else "",
        source=form.photo_name if photo else "", parts=form.parts,
        adversarial=form.adversarial or form.parts == "joint",
        steps=form.steps, batch_size=form.batch_size, lr=form.learning_rate or 1e-4,
        size=form.size // 4 * 4, device=form.device, models_dir=str(user_models_dir()),
        created=_dt.datetime.now().astimezone().isoformat(timespec="seconds"))


def problems(form: FinetuneForm) -> str | None:
    """What keeps the form from starting (the first problem), or None."""
    info = form.base
    if info is None:
        return "No model to fine-tune: train one with inpaint-train, or add a bundled model."
    if form.learning_rate is None:
        return "The learning rate must be a number between 0 and 1, e.g. 1e-4."
    if form.size % 4:
        return "The training resolution must be a multiple of 4."
    try:
        card = read_card(info.path)
        check_weights_file(info.path)  # the files may have been damaged since the editor listed them
        if info.kind == "neural":
            edge = ModelStore().card_path(card.companion or "")
            if edge is None:
                return f"The base model's edge model '{card.companion}' was not found."
            check_weights_file(edge)
    except ModelFileError as exc:
        return f"The base model cannot be used: {exc}"
    if form.mode == "photo":
        if form.image is None:
            return "Open a photo first to fine-tune on it."
        if form.mask is not None and form.mask.all():
            if form.filled.any():
                return ("Nothing of the photo is left to learn from: it is masked or was filled in this "
                        "session, and fills are never training targets.")
            return "The whole photo is masked: nothing is left to learn from."
    else:
        problem = protocol.check_folder(form.folder)
        if problem:
            return problem
    problem = protocol.check_name(form.name.strip(), form.parts, check_runs=False)
    if problem:
        return problem
    return memory_problem(form) or disk_problem(form)


def memory_problem(form: FinetuneForm) -> str | None:
    """Settings that cannot fit in the chosen device's memory (the process would be killed)."""
    if form.base is None:
        return None
    try:
        width = int(read_card(form.base.path).arguments.get("base_channels", 64))
    except (ModelFileError, TypeError, ValueError):
        return None
    return protocol.memory_problem(form.batch_size, form.size, width, form.device or "cpu",
                                   networks=2 if form.parts == "joint" else 1)


def disk_problem(form: FinetuneForm) -> str | None:
    """Not enough free disk for checkpoints and the export (weights + 2 Adam moments + EMA, kept twice)."""
    info = form.base
    if info is None:
        return None
    try:
        size = weights_path(info.path).stat().st_size
        if form.parts == "joint":
            _companion, edge = _companion_card(info)
            size += weights_path(edge).stat().st_size if edge else 0
        free = shutil.disk_usage(protocol.runs_root()).free
    except (OSError, ModelFileError):
        return None
    photo = form.image.nbytes if form.mode == "photo" and form.image is not None else 0
    needed = size * 14 + photo + 20 * 2**20
    if free < needed:
        return (f"Not enough free disk space in {protocol.runs_root()}: about {needed / 2**20:.0f} MB are needed "
                f"for checkpoints and the model, {free / 2**20:.0f} MB are free.")
    return None


def problems_for_estimate(form: FinetuneForm) -> str | None:
    """Why a time estimate is not worth measuring now (a short reason), or None."""
    if form.base is None or form.learning_rate is None:
        return "settings"
    if memory_problem(form):
        return "memory"  # measuring would only run out of memory
    if form.mode == "folder":
        return protocol.check_folder(form.folder)
    return None if form.image is not None else "no photo"


# ---------------------------------------------------------------------------- what the dialog shows
def estimate_text(result: dict[str, Any], steps: int, device: str) -> tuple[float, str]:
    """(total seconds, text) of a run of ``steps`` from a measurement (``startup_s``, ``seconds_per_step``...)."""
    total = result["startup_s"] + steps * result["seconds_per_step"] * 1.05
    return total, (
        f"About {format_duration(total)} on {device} — an estimate: {result['seconds_per_step']:.2f} s per "
        f"step measured just now over {result['steps']} steps, plus {format_duration(result['startup_s'])} to "
        "start and a little for validation; other programs running at the same time make it slower.")


def estimate_failure(state: str, message: str) -> str:
    """Why a measurement gave no estimate (``state``/``message`` of its run outcome)."""
    if state in ("oom", "crashed"):
        why = ("measuring a few steps ran out of memory or was killed: these settings would likely fail "
               "the same way; use a smaller batch size or training resolution.")
    else:
        why = message or "the measurement failed."
    return f"No time estimate: {why}"


def progress_format(step: int, total: int, eta: object) -> str:
    """The progress bar's text during training (``eta`` seconds left, if known)."""
    left = f" — about {format_duration(float(eta))} left" if isinstance(eta, int | float) else ""
    return f"step {step} / {total}{left}"


def validation_rows(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Row labels and cell texts (columns :data:`VAL_COLUMNS`) of a validation record's table.

    "all" repeats the only bucket when there is one (a "this photo" run's held-out holes): it is shown once.
    """
    shown = {b: m for b, m in table.items() if not (b == "all" and len(table) == 2)}
    rows = []
    for metrics in shown.values():
        row = []
        for key, _ in VAL_COLUMNS:
            value = metrics.get(key) if isinstance(metrics, dict) else None
            row.append(f"{value:.3f}" if key == "ssim" and isinstance(value, float) else
                       f"{value:.2f}" if isinstance(value, float) else "–")
        rows.append(row)
    return [str(b) for b in shown], rows


def validation_headline(record: dict[str, Any], first: dict[str, Any]) -> str:
    """The line above the validation table: the step, and the hole PSNR gained since the ``first`` validation."""
    first_all = (first.get("table") or {}).get("all", {})
    latest = (record.get("table") or {}).get("all", {})
    text = f"Validation at step {record.get('step')}"
    if first is not record and "hole_psnr" in first_all and "hole_psnr" in latest:
        gain = latest["hole_psnr"] - first_all["hole_psnr"]
        where = "the base model" if first.get("step") == 0 else f"step {first.get('step')}"
        text += f" — hole PSNR {latest['hole_psnr']:.2f} dB, {gain:+.2f} dB against {where}"
    return text


def worse_than_base(first: dict[str, Any] | None, last: dict[str, Any] | None) -> str:
    """A warning when the registered weights (``last`` validation) validated clearly worse than the model the run
    started from (the ``first`` one, at step 0); "" otherwise."""
    if not first or not last or first is last or first.get("step") != 0:
        return ""
    before = (first.get("table") or {}).get("all", {}).get("hole_psnr")
    after = (last.get("table") or {}).get("all", {}).get("hole_psnr")
    if not isinstance(before, float) or not isinstance(after, float) or after > before - WORSE_DB:
        return ""
    return (f" Warning: its validation is {before - after:.1f} dB worse than the base model's (hole PSNR "
            f"{after:.2f} against {before:.2f} dB): a lower learning rate or fewer steps would likely do better.")


def run_label(info: protocol.RunInfo) -> str:
    """How an unfinished run is listed."""
    spec = info.spec
    what = ("this photo" if spec.mode == "photo" else Path(spec.folder).name) if spec else "?"
    return f"{info.name} — step {info.step}/{info.total} — {info.state} ({what})"


# ---------------------------------------------------------------------------- job files
def write_photo(folder: Path, image: np.ndarray, mask: np.ndarray, max_side: int | None = None) -> None:
    """Write a "this photo" job's photo and user mask (white = no ground truth) into ``folder``, atomically;
    with ``max_side`` a copy downscaled to at most that side (the time estimate)."""
    import cv2

    if max_side and max(image.shape[:2]) > max_side:
        scale = max_side / max(image.shape[:2])
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0

    def writer(array: np.ndarray) -> Callable[[Path], None]:
        def write(tmp: Path) -> None:
            if not cv2.imwrite(str(tmp), array, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
                raise OSError(f"could not write {tmp.name} (is the disk full?)")
        return write

    write_with_atomic(folder / protocol.PHOTO_FILE, writer(np.ascontiguousarray(image[..., ::-1])))
    write_with_atomic(folder / protocol.MASK_FILE, writer(mask.astype(np.uint8) * 255))
