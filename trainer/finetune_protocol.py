"""The fine-tune job's protocol, shared by the editor and the job process; imports neither torch nor Qt.

A run folder (``user_home()/finetune/<name>/``) describes itself: ``job.json`` (the :class:`JobSpec`),
``status.json`` (state and message), the trainer's own files (``config.toml``, ``metrics.jsonl``,
``checkpoints/``, ``samples/``) and, for "this photo", ``photo.png`` + ``mask.png``. The editor writes the spec,
starts ``python -m trainer.finetune_job RUN_DIR`` (:mod:`trainer.finetune_job`), tails ``metrics.jsonl`` and
reads the exit code; the file ``stop`` asks the job to save a checkpoint and stop.

This module holds what both sides must agree on: the spec, the file names, the exit codes, the name and folder
rules, the run listing, and the memory estimate the dialog checks before starting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api import DEFAULT_MODEL
from engine.atomic import write_text_atomic
from engine.backends import CLASSICAL
from engine.errors import EngineError
from engine.model_store import model_file_stems
from engine.paths import bundled_models_dir, user_home, user_models_dir
from trainer.run_files import CHECKPOINT_DIR, list_checkpoints, read_records

JOB_MODULE = "trainer.finetune_job"  # the child process: python -m JOB_MODULE RUN_DIR [--estimate]
SPEC_FILE = "job.json"
STATUS_FILE = "status.json"
STOP_FILE = "stop"
PHOTO_FILE = "photo.png"
MASK_FILE = "mask.png"
SPEC_VERSION = 1

EXIT_OK, EXIT_BUG, EXIT_ERROR, EXIT_OOM, EXIT_DISK_FULL, EXIT_NAME_TAKEN, EXIT_STOPPED = 0, 1, 2, 3, 4, 5, 130

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The engine's own fill names (a model called "harmonic" could never be chosen over the built-in fill), and
# Windows device names, which are invalid as a file name's stem whatever follows the first dot.
RESERVED_NAMES = {DEFAULT_MODEL, "automatic", *CLASSICAL}
WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
OOM_ADVICE = ("try a smaller batch size or training resolution (Start with the new settings replaces this run; "
              "Resume would run out of memory again)")
# "This photo": chosen with tools/finetune_bench.py (docs/finetuning.md). Longer runs drift: the fills of
# held-out holes got worse after about 150 steps.
PHOTO_DEFAULTS = {"steps": 150, "batch": 4, "lr": 1e-4}
FOLDER_DEFAULTS = {"steps": 2000, "batch": 4, "lr": 1e-4}
DISK_ADVICE = "free some disk space, then Resume: the last checkpoint is kept"
PROG = "inpaint-finetune"


class JobError(EngineError):
    """A problem with the job the user can fix; the message says what."""


class NameTaken(JobError):
    """A model of the new model's name already exists."""


# --- the spec ------------------------------------------------------------------------------------------------

@dataclass
class JobSpec:
    """What to fine-tune, on what, and how. Paths of ``photo``/``mask`` are relative to the run folder."""

    name: str
    base: str  # the base model's name (an image model of an edge-guided pair, or a completion model)
    base_card: str  # its card path
    edge_card: str = ""  # edge-guided bases: the companion edge model's card
    companion: str = ""  # edge-guided bases: the companion's model name (what an image-only result pairs with)
    kind: str = "neural"  # "neural" (edge-guided pair) or "completion" (GLCIC)
    mode: str = "folder"  # "folder" (a folder of photos) or "photo" (internal: the open photo's known area)
    folder: str = ""
    photo: str = ""
    mask: str = ""
    source: str = ""  # photo mode: the open photo's file name, for the card
    parts: str = "image"  # "image" (edge model kept), "joint" (edge and image), "completion"
    adversarial: bool = False  # discriminator losses (adversarial + feature matching): slower
    steps: int = 300
    batch_size: int = 1
    lr: float = 1e-4
    size: int = 128
    device: str = "cpu"
    threads: int = 0  # torch CPU threads; 0 = every usable core but one (engine.devices.cpu_thread_cap)
    amp: str = "auto"  # bf16 autocast: auto, on, off (engine.devices.bf16_autocast)
    models_dir: str = ""  # where the model is registered; "" = the user models folder
    seed: int = 0
    created: str = ""
    version: int = SPEC_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, raw: Any, source: Path) -> JobSpec:
        if not isinstance(raw, dict):
            raise JobError(f"{source}: not a fine-tune job description")
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("name", "base", "base_card") if k not in raw]
        if missing:
            raise JobError(f"{source}: the job description lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in raw.items() if k in known})

    def registered_dir(self) -> Path:
        return Path(self.models_dir) if self.models_dir else user_models_dir()


def default_crop_size(resolution: int, photo: bool) -> int:
    """The proposed training crop side for a base of working ``resolution``: the resolution itself for a folder,
    half of it for "this photo" (its crops are cut at the engine's scale, so the size only sets their context);
    a multiple of 4, at least 24."""
    size = resolution // 2 if photo else resolution
    return max(24, size // 4 * 4)


def runs_root() -> Path:
    """Where fine-tune runs live: ``user_home()/finetune``."""
    path = user_home() / "finetune"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_spec(run_dir: str | Path, spec: JobSpec) -> Path:
    path = Path(run_dir) / SPEC_FILE
    write_text_atomic(path, spec.to_json())
    return path


def rename_run(run_dir: str | Path, name: str) -> Path:
    """Give an unfinished run another model name (when its own was taken meanwhile): the spec first, then the
    folder; returns the run's folder. ``JobError`` if ``name`` cannot be used."""
    run_dir = Path(run_dir)
    spec = read_spec(run_dir)
    problem = check_name(name, spec.parts, spec.registered_dir())
    if problem:
        raise JobError(problem)
    target = run_dir.with_name(name)
    if target.exists() and target != run_dir:
        raise JobError(f"A fine-tune folder named '{name}' exists already: choose another name.")
    write_spec(run_dir, dataclasses.replace(spec, name=name))
    try:
        run_dir.rename(target)
    except OSError:
        return run_dir  # the spec names the model; the folder's name is only a label
    return target


def read_spec(run_dir: str | Path) -> JobSpec:
    path = Path(run_dir) / SPEC_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JobError(f"{run_dir}: not a fine-tune run folder (no {SPEC_FILE})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JobError(f"{path}: cannot be read ({exc})") from None
    return JobSpec.from_dict(raw, path)


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``status.json`` (``{}`` when missing or unreadable)."""
    try:
        raw = json.loads((Path(run_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return raw if isinstance(raw, dict) else {}


def write_status(run_dir: str | Path, state: str, message: str = "", **extra: Any) -> None:
    """Best effort (a full disk must not hide the real error): state, message, time and ``extra``."""
    record = {"state": state, "message": message, "time": time.time(), **extra}
    with contextlib.suppress(OSError):
        write_text_atomic(Path(run_dir) / STATUS_FILE, json.dumps(record, indent=2) + "\n")


# --- checks the dialog makes before starting (and the job again before registering) ---------------------------

def check_name(name: str, parts: str = "image", models_dir: str | Path | None = None,
               bundled_dir: str | Path | None = None, runs_dir: str | Path | None = None,
               check_runs: bool = True) -> str | None:
    """Why ``name`` cannot be the new model's name, or None when it can (``check_runs``: an unfinished run
    of that name also blocks it)."""
    if not name.strip():
        return "Give the new model a name."
    if not NAME_PATTERN.match(name) or name.endswith("."):
        return (f"'{name}' cannot be a model name: use letters, digits, '-', '_' or '.' (no spaces, at most 64 "
                "characters, starting with a letter or digit).")
    if name.lower() in RESERVED_NAMES or name.split(".")[0].lower() in WINDOWS_DEVICES:
        return f"'{name}' is a reserved name: choose another."
    stems = [name, f"{name}-edge"] if parts == "joint" else [name]
    user_dir = Path(models_dir) if models_dir is not None else user_models_dir()
    bundled = Path(bundled_dir) if bundled_dir is not None else bundled_models_dir()
    for stem in stems:
        if stem.lower() in model_file_stems(user_dir):
            return f"A model named '{stem}' already exists in your models folder ({user_dir}): choose another name."
        if stem.lower() in model_file_stems(bundled):
            return f"A model named '{stem}' is bundled with the program: choose another name."
    if not check_runs:
        return None
    run = unfinished_run(name, runs_dir)
    if run is not None:
        return f"An unfinished fine-tune named '{run.name}' exists: Resume continues it, Start replaces it."
    return None


def unfinished_run(name: str, runs_dir: str | Path | None = None) -> Path | None:
    """The folder of an unfinished run whose name is ``name`` (compared case-insensitively), or None."""
    root = Path(runs_dir) if runs_dir is not None else runs_root()
    for run in (root.iterdir() if root.is_dir() else ()):
        if run.name.lower() == name.lower() and (run / SPEC_FILE).is_file() and is_resumable(run):
            return run
    return None


# Training memory, measured with the shipped 32-channel image model on the CPU (batch 4 and 8 at 256 px, 3 steps):
# about 0.4 GB fixed plus 3.1 KB per crop pixel, i.e. ~100 bytes per pixel per channel of width.
MEMORY_FIXED = 400 * 2**20
MEMORY_PER_PIXEL_CHANNEL = 100


def training_memory(batch_size: int, size: int, base_channels: int, networks: int = 1) -> int:
    """Rough bytes a fine-tune needs (activations kept for the backward pass dominate)."""
    return MEMORY_FIXED + networks * batch_size * size * size * base_channels * MEMORY_PER_PIXEL_CHANNEL


def device_memory(device: str) -> int | None:
    """Total memory of ``device`` in bytes (RAM for the CPU), or None when it cannot be told."""
    try:
        if device.startswith("cuda"):
            import torch

            index = int(device.split(":")[1]) if ":" in device else 0
            return int(torch.cuda.get_device_properties(index).total_memory)
        if device == "cpu" and hasattr(os, "sysconf"):
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, RuntimeError, AssertionError):
        return None
    return None


def memory_problem(batch_size: int, size: int, base_channels: int, device: str, networks: int = 1) -> str | None:
    """Why these settings cannot fit in the device's memory, or None (also when the memory is unknown)."""
    total = device_memory(device)
    needed = training_memory(batch_size, size, base_channels, networks)
    if total is None or needed <= 0.8 * total:
        return None
    where = "this computer has" if device == "cpu" else f"{device} has"
    return (f"Batch {batch_size} at {size} px needs about {needed / 2**30:.1f} GB of memory; {where} "
            f"{total / 2**30:.1f} GB: use a smaller batch size or training resolution.")


def free_name(stem: str, parts: str = "image", models_dir: str | Path | None = None) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... : the first that :func:`check_name` accepts."""
    name, n = stem, 2
    while check_name(name, parts, models_dir) is not None and n < 100:
        name, n = f"{stem}-{n}", n + 1
    return name


FOLDER_CHECK_S = 1.5  # the dialog checks the folder as it is typed: a look, not a full search of a whole disk


def check_folder(folder: str | Path) -> str | None:
    """Why ``folder`` cannot be trained on (missing, empty, nothing readable), or None when it can.

    It looks for the first photo that decodes and stops there; a search that takes longer than
    ``FOLDER_CHECK_S`` (the root of a disk, say) is given up with a message instead of freezing the dialog.
    """
    from PIL import Image

    from engine.imageio import SUPPORTED_EXTENSIONS
    from trainer.photos import iter_photos

    text = str(folder).strip()
    if not text:
        return "Choose a folder of your photos."
    root = Path(text).expanduser()
    if not root.is_dir():
        return f"The folder {root} does not exist."
    seen = 0
    first_problem = ""
    try:
        for path in iter_photos(root, deadline=time.monotonic() + FOLDER_CHECK_S):
            seen += 1
            try:
                with Image.open(path) as im:
                    im.draft("RGB", (64, 64))
                    im.load()
                return None
            except Exception as exc:  # any decoder failure means "not readable"
                first_problem = first_problem or f"{path.name}: {str(exc).strip() or type(exc).__name__}"
    except TimeoutError:
        return (f"Searching {root} for photos takes too long (a whole disk?): choose the folder that holds "
                "your photos.")
    except OSError as exc:
        return f"The folder {root} cannot be read: {exc.strerror or exc}."
    if not seen:
        return (f"The folder {root} holds no photos (looked for {', '.join(SUPPORTED_EXTENSIONS)}, "
                "also in its subfolders).")
    return (f"None of the {seen} image file(s) in {root} could be read as a photo "
            f"(first problem: {first_problem}).")


# --- runs on disk --------------------------------------------------------------------------------------------

@dataclass
class RunInfo:
    """A fine-tune run folder as the dialog lists it."""

    name: str
    run_dir: Path
    spec: JobSpec | None
    state: str  # new, running, stopped, failed, trained, registered, unknown
    step: int
    total: int
    message: str = ""
    checkpoint: bool = False
    models: list[str] = field(default_factory=list)


def _last_step(run_dir: Path) -> int:
    found = list_checkpoints(run_dir / CHECKPOINT_DIR)
    return found[-1][0] if found else 0


def is_resumable(run_dir: str | Path) -> bool:
    """A run that was not registered: stopped, failed or crashed (it continues from its checkpoint if any)."""
    return read_status(run_dir).get("state") != "registered"


def run_info(run_dir: str | Path) -> RunInfo:
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    try:
        spec: JobSpec | None = read_spec(run_dir)
    except JobError as exc:
        return RunInfo(run_dir.name, run_dir, None, "unknown", 0, 0, str(exc))
    step = _last_step(run_dir)
    state = status.get("state", "new")
    message = str(status.get("message", ""))
    if state == "running" and not _alive(status.get("pid")):
        state, message = "interrupted", "The training process ended without saying why (closed or killed)."
    return RunInfo(spec.name, run_dir, spec, state, step, spec.steps, message, step > 0,
                   list(status.get("models", [])))


def _alive(pid: object) -> bool:
    """Whether process ``pid`` still runs (POSIX; elsewhere a recorded "running" counts as interrupted)."""
    if not isinstance(pid, int) or pid <= 0 or os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_runs(root: str | Path | None = None, unfinished_only: bool = True) -> list[RunInfo]:
    """Fine-tune runs under ``root`` (default :func:`runs_root`), newest first; unfinished ones by default."""
    root = Path(root) if root is not None else runs_root()
    if not root.is_dir():
        return []
    infos = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not (folder / SPEC_FILE).is_file():
            continue
        info = run_info(folder)
        if not unfinished_only or info.state != "registered":
            infos.append(info)
    return sorted(infos, key=lambda i: (i.run_dir / SPEC_FILE).stat().st_mtime, reverse=True)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return True
    return "no space left on device" in str(exc).lower()


def held_out_gain(run_dir: str | Path) -> str:
    """What "this photo" bought on its held-out holes: the base (step 0) against the kept (best) weights."""
    scores = {r["step"]: (r.get("table", {}).get("all") or {}).get("hole_psnr") for r in read_records(run_dir, "val")}
    scores = {step: value for step, value in scores.items() if value is not None}
    if 0 not in scores or len(scores) < 2:
        return ""
    kept = max(scores, key=lambda step: (scores[step], -step))
    if kept == 0:
        return (f" Fine-tuning did not improve the held-out holes of the photo ({scores[0]:.2f} dB with the base "
                "model), so the new model keeps the base model's weights.")
    return (f" Held-out holes of the photo: {scores[0]:.2f} dB with the base model, {scores[kept]:.2f} dB "
            f"({scores[kept] - scores[0]:+.2f} dB) with the weights kept from step {kept}.")
