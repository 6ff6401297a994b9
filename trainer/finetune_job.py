"""One fine-tuning run of the editor's dialog, run in its own process so a crash or out-of-memory in
training can never take the editor down.

    python -m trainer.finetune_job RUN_DIR              train (or resume), export, register
    python -m trainer.finetune_job RUN_DIR --estimate   time a few steps; prints one JSON line

``RUN_DIR`` (``user_home()/finetune/<name>/``) describes itself: ``job.json`` (the :class:`JobSpec`),
``status.json`` (state and message), the trainer's own files (``config.toml``, ``metrics.jsonl``,
``checkpoints/``, ``samples/``) and, for "this photo", ``photo.png`` + ``mask.png`` (white = no ground truth:
the user's hole and every region filled in the editor's session).
Training goes through the same ``trainer.loop.train()`` as the CLI; the dialog tails ``metrics.jsonl``.

Stopping: the file ``RUN_DIR/stop`` (polled every step) or SIGTERM/SIGINT saves a checkpoint and exits with
:data:`EXIT_STOPPED`; running the job again resumes from the checkpoint. When training completes, the model is
exported into a hidden staging folder inside the models folder and moved into place weights first, card
last, so the model store never sees a card without its weights and a failed run leaves nothing behind.

Exit codes: 0 registered, 130 stopped (resumable), 2 a problem the user can fix (message), 3 out of memory,
4 disk full, 5 the name is taken, 1 anything else (a bug; traceback on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api import DEFAULT_MODEL
from engine.atomic import write_text_atomic
from engine.backends import CLASSICAL
from engine.errors import EngineError
from engine.paths import bundled_models_dir, user_home, user_models_dir

SPEC_FILE = "job.json"
STATUS_FILE = "status.json"
STOP_FILE = "stop"
PHOTO_FILE = "photo.png"
MASK_FILE = "mask.png"
SPEC_VERSION = 1
FAULT_ENV = "INPAINT_FINETUNE_FAULT"  # test hook: hold:N, oom:N, cuda-oom:N, kill:N, enospc:N, enospc:export

EXIT_OK, EXIT_BUG, EXIT_ERROR, EXIT_OOM, EXIT_DISK_FULL, EXIT_NAME_TAKEN, EXIT_STOPPED = 0, 1, 2, 3, 4, 5, 130

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The engine's own fill names (a model called "harmonic" could never be chosen over the built-in fill), and
# Windows device names, which are invalid as a file name's stem whatever follows the first dot.
RESERVED_NAMES = {DEFAULT_MODEL, "automatic", *CLASSICAL}
WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
OOM_ADVICE = ("try a smaller batch size or training resolution (Start with the new settings replaces this run; "
              "Resume would run out of memory again)")
# "This photo": chosen with trainer/finetune_bench.py (docs/finetuning.md). Longer runs drift: the fills of
# held-out holes got worse after about 150 steps.
PHOTO_DEFAULTS = {"steps": 150, "batch": 4, "lr": 1e-4}
FOLDER_DEFAULTS = {"steps": 2000, "batch": 4, "lr": 1e-4}
DISK_ADVICE = "free some disk space, then Resume: the last checkpoint is kept"
PROG = "inpaint-finetune"
_PROCESS_START = time.perf_counter()  # the estimate's start-up time counts from here (torch is imported later)


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
    threads: int = 0  # torch CPU threads; 0 = every core but one (default_threads)
    amp: str = "auto"  # bf16 autocast: "auto" = on CUDA, and on CPUs with native bf16 (see amp_mode); "on", "off"
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

    def model_names(self) -> list[str]:
        """File names (stems) this job registers: the new model, and its own edge model for a joint run."""
        return [self.name, f"{self.name}-edge"] if self.parts == "joint" else [self.name]


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

def _existing_stems(folder: Path) -> dict[str, Path]:
    """Lower-cased model file stems in ``folder`` (case-insensitive file systems treat ``A`` and ``a`` alike)."""
    if not folder.is_dir():
        return {}
    return {p.stem.lower(): p for p in folder.iterdir() if p.suffix in (".json", ".safetensors")}


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
        if stem.lower() in _existing_stems(user_dir):
            return f"A model named '{stem}' already exists in your models folder ({user_dir}): choose another name."
        if stem.lower() in _existing_stems(bundled):
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

    from engine.imageio import iter_images
    from trainer.data import IMAGE_EXTENSIONS

    text = str(folder).strip()
    if not text:
        return "Choose a folder of your photos."
    root = Path(text).expanduser()
    if not root.is_dir():
        return f"The folder {root} does not exist."
    seen = 0
    first_problem = ""
    try:
        for path in iter_images(root, deadline=time.monotonic() + FOLDER_CHECK_S):
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
        return (f"The folder {root} holds no photos (looked for {', '.join(IMAGE_EXTENSIONS)}, "
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
    from trainer.checkpoints import list_checkpoints

    found = list_checkpoints(run_dir / "checkpoints")
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


# --- config ---------------------------------------------------------------------------------------------------

def amp_mode(spec_amp: str, device: str) -> str:
    """The trainer's ``optim.amp`` for a job: ``auto`` turns bf16 autocast on for CPUs with native bf16
    (AVX512-BF16 / AMX), where the small model's training step ran 1.6x faster with the same fills."""
    if spec_amp != "auto":
        return spec_amp
    if not device.startswith("cpu"):
        return "auto"  # the trainer's auto: bf16 on CUDA
    try:
        import torch

        return "on" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "off"
    except (AttributeError, RuntimeError):
        return "off"


def _lit(value: object) -> str:
    from trainer.config import toml_value

    return toml_value(value)


def build_config(spec: JobSpec, run_dir: Path, resume: bool = False, files_dir: Path | None = None):
    """The trainer config of ``spec`` writing into ``run_dir`` (validated by ``train()``); the photo and mask
    of "this photo" are read from ``files_dir`` (default ``run_dir``)."""
    from trainer.config import TrainConfig, apply_overrides

    files_dir = files_dir if files_dir is not None else run_dir

    steps = spec.steps
    # Curves: about 100 points; validation (figures + a sample grid) about 4 times and checkpoints about 5 times
    # per run, but not more often than every 50 steps (a short run validates once, at its end).
    schedule = [f"schedule.log_every={max(1, min(10, steps // 100))}",
                f"schedule.validate_every={max(steps // 4, min(steps, 50))}",
                f"schedule.checkpoint_every={max(steps // 5, min(steps, 50))}", "schedule.keep_last=2",
                "schedule.sample_count=4"]
    common = [f"run.out={_lit(str(run_dir))}", f"run.name={_lit(spec.name)}", f"run.device={_lit(spec.device)}",
              f"run.resume={'true' if resume else 'false'}", f"optim.steps={steps}", f"data.size={spec.size}",
              f"optim.batch_size={spec.batch_size}", f"optim.lr={float(spec.lr)!r}", f"optim.seed={spec.seed}",
              f"optim.amp={_lit(amp_mode(spec.amp, spec.device))}",
              "optim.workers=0", "data.val_irregular_dir=''",
              f"run.command={_lit(f'python -m trainer.finetune_job {run_dir}')}"]
    if spec.mode == "photo":
        from trainer.internal import internal_config

        config = internal_config(files_dir / spec.photo, files_dir / spec.mask, spec.base_card, run_dir, steps=steps,
                                 size=spec.size, batch_size=spec.batch_size, lr=spec.lr, device=spec.device,
                                 adversarial=spec.adversarial, edge_model=spec.edge_card or None)
        # Validation on the held-out holes is cheap (a few crops): ten times per run, so the kept best is close.
        return apply_overrides(config, [*common, *schedule, f"schedule.validate_every={max(1, steps // 10)}"])
    settings = [*common, *schedule, f"data.train_dir={_lit(spec.folder)}", "data.val_images=8"]
    if spec.parts == "completion":
        settings += ["stage.name=glcic", f"init.glcic={_lit(spec.base_card)}"]
        if not spec.adversarial:  # reconstruction only (GLCIC's phase 1)
            settings += [f"stage.glcic_completion_steps={steps}", "stage.glcic_discriminator_steps=0"]
    elif spec.parts == "joint":
        settings += ["stage.name=joint", f"init.image={_lit(spec.base_card)}", f"init.edge={_lit(spec.edge_card)}"]
    else:
        settings += ["stage.name=image", f"init.image={_lit(spec.base_card)}"]
        if not spec.adversarial:
            settings += ["losses.adversarial=0", "losses.feature_matching=0"]
    return apply_overrides(TrainConfig(), settings)


# --- stopping and test faults ---------------------------------------------------------------------------------

class _Stopper:
    """``abort_fn`` of the run: the stop file or a signal; also injects the test faults of ``FAULT_ENV``."""

    def __init__(self, run_dir: Path, fault: str = "", external: Callable[[], bool] | None = None) -> None:
        self.stop_path = run_dir / STOP_FILE
        self.external = external
        self.polls = 0
        kind, _, arg = fault.partition(":")
        self.fault_kind = kind
        self.fault_step = int(arg) if arg.isdigit() else -1

    def __call__(self) -> bool:
        if self.polls == self.fault_step:
            self._fault()
        self.polls += 1
        return self.stop_path.exists() or bool(self.external and self.external())

    def _fault(self) -> None:
        kind = self.fault_kind
        if kind == "hold":  # wait (at most a minute) for the stop file: a deterministic cancel for tests
            deadline = time.monotonic() + 60
            while not self.stop_path.exists() and not (self.external and self.external()) \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
        elif kind == "oom":
            raise MemoryError("simulated out of memory")
        elif kind == "cuda-oom":
            import torch

            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        elif kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
        elif kind == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.stop_path.parent / "checkpoints"))


# --- registering the model ------------------------------------------------------------------------------------

def _edge_name(spec: JobSpec) -> str:
    return spec.companion or Path(spec.edge_card).stem


def _base_card(spec: JobSpec):
    """The base model's card, or None when it is gone (the result's card then says less about it)."""
    from engine.errors import ModelFileError
    from engine.model_files import read_card

    try:
        return read_card(spec.base_card)
    except (ModelFileError, OSError):
        return None


def _finish_cards(spec: JobSpec, staging: Path, exported: list[Path]) -> list[tuple[Path, str]]:
    """Rename the exported files to the final names and complete their cards; returns (staged stem path,
    final stem) in the order they must be moved (edge model first, the new model last)."""
    from engine.model_files import read_card

    base = _base_card(spec)
    base_place = "bundled" if Path(spec.base_card).parent.resolve() == bundled_models_dir().resolve() else "user"
    how = (f"{spec.steps} steps, batch {spec.batch_size}, learning rate {spec.lr:g}, {spec.size} px crops, "
           + ("L1 + adversarial + feature matching" if spec.adversarial or spec.parts == "joint" else "L1 only"))
    if spec.mode == "photo":
        data = (f"internal fine-tuning on one photo ({spec.source or 'the open photo'}): {spec.size} px crops of its "
                "known area with synthetic holes; the user's hole was never a target")
    else:
        data = None
    order: list[tuple[Path, str]] = []
    for exported_path in exported:
        card = read_card(exported_path)
        final = {"edge": f"{spec.name}-edge"}.get(card.stage, spec.name)
        if card.stage == "edge" and spec.parts != "joint":
            continue
        card.name = final
        if card.stage == "image":
            card.companion = f"{spec.name}-edge" if spec.parts == "joint" else _edge_name(spec)
        about = f"{base.data or 'data unknown'}; {base.steps} steps" if base is not None else "card no longer found"
        card.data = (data or card.data) + f"; base model: {spec.base} ({base_place}; {about})"
        card.description = (f"Fine-tuned from {spec.base} with Inpaint Studio's fine-tune dialog ({how}). "
                            + card.description)
        if base is not None and base.license:
            card.license = f"{card.license} Base model terms: {base.license}".strip()
        write_text_atomic(exported_path.with_suffix(".json"), card.to_json())
        target = staging / final
        if target != exported_path.with_suffix(""):
            exported_path.rename(target.with_suffix(".safetensors"))
            exported_path.with_suffix(".json").rename(target.with_suffix(".json"))
        order.append((target, final))
    order.sort(key=lambda item: item[1] != f"{spec.name}-edge")  # the edge companion before the image model
    return order


def register(run_dir: str | Path, spec: JobSpec | None = None, fault: str = "") -> list[Path]:
    """Export the run and move its model files into the models folder (weights first, card last).

    On any failure nothing is left in the models folder (files already moved are taken back, cards first).
    Returns the registered card paths, the new model's last.
    """
    from trainer.export import export_run

    run_dir = Path(run_dir)
    spec = spec or read_spec(run_dir)
    models_dir = spec.registered_dir()
    problem = check_name(spec.name, spec.parts, models_dir, check_runs=False)
    if problem:
        raise NameTaken(problem)
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".incoming-{spec.name}-", dir=models_dir))
    moved: list[Path] = []
    try:
        if fault == "enospc:export":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(staging / f"{spec.name}.safetensors"))
        companion = _edge_name(spec) if spec.parts == "image" else None
        result = export_run(run_dir, staging, name=spec.name, companion=companion, best=True)
        for staged, final in _finish_cards(spec, staging, result.models):
            for suffix in (".safetensors", ".json"):  # weights first: the store never sees a card alone
                target = models_dir / f"{final}{suffix}"
                if target.exists():
                    raise NameTaken(f"A model named '{final}' appeared in {models_dir} meanwhile: choose another name.")
                os.replace(staged.with_suffix(suffix), target)
                moved.append(target)
    except BaseException:
        for path in reversed(moved):  # cards were moved after their weights: they go first
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [p for p in moved if p.suffix == ".json"]


# --- running --------------------------------------------------------------------------------------------------

@dataclass
class JobOutcome:
    """How a job ended: state (registered, stopped), the trainer's summary and the registered cards."""

    state: str
    step: int
    total: int
    models: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)


def default_threads() -> int:
    """Every core but one: the editor keeps a core, and on a busy machine fewer threads are much faster (on 2
    loaded cores, 1 thread trained 10x faster than 2 that kept waiting for each other)."""
    return max(1, (os.cpu_count() or 2) - 1)


def _set_threads(spec: JobSpec) -> None:
    import torch

    threads = spec.threads if spec.threads > 0 else default_threads()
    with contextlib.suppress(RuntimeError):
        torch.set_num_threads(threads)


def run_job(run_dir: str | Path, progress_fn: Callable[[dict[str, Any]], None] | None = None,
            abort_fn: Callable[[], bool] | None = None, fault: str = "") -> JobOutcome:
    """Train (resuming from the run's checkpoint if any), then export and register. Raises on errors."""
    from trainer.checkpoints import latest_checkpoint
    from trainer.loop import train

    started = time.perf_counter()
    run_dir = Path(run_dir)
    spec = read_spec(run_dir)
    with contextlib.suppress(FileNotFoundError):
        (run_dir / STOP_FILE).unlink()  # a stop request of an earlier session is not meant for this one
    resume = latest_checkpoint(run_dir / "checkpoints") is not None
    if not resume:  # a fresh start (also after a failure before the first checkpoint): no stale curves
        for stale in ("metrics.jsonl", "samples"):
            with contextlib.suppress(OSError):
                (shutil.rmtree if stale == "samples" else os.remove)(run_dir / stale)
    config = build_config(spec, run_dir, resume)
    write_status(run_dir, "running", "", pid=os.getpid())
    summary = train(config, progress_fn or (lambda record: None), _Stopper(run_dir, fault, abort_fn))
    if summary.status == "aborted":
        message = f"Stopped at step {summary.step} of {summary.total_steps}; checkpoint saved."
        write_status(run_dir, "stopped", message, step=summary.step)
        return JobOutcome("stopped", summary.step, summary.total_steps, [], time.perf_counter() - started,
                          summary.messages)
    write_status(run_dir, "trained", "Training finished; registering the model.", step=summary.step)
    cards = register(run_dir, spec, fault)
    names = [p.stem for p in cards]
    gain = held_out_gain(run_dir) if spec.mode == "photo" else ""
    write_status(run_dir, "registered", f"Registered {', '.join(names)} in {spec.registered_dir()}.{gain}",
                 models=names, step=summary.step)
    with contextlib.suppress(OSError):
        shutil.rmtree(run_dir / "checkpoints")  # the model is exported; checkpoints only cost disk now
    return JobOutcome("registered", summary.step, summary.total_steps, cards, time.perf_counter() - started,
                      summary.messages)


def held_out_gain(run_dir: str | Path) -> str:
    """What "this photo" bought on its held-out holes: the base (step 0) against the kept (best) weights."""
    from trainer.records import read_records

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


class _Measured(Exception):
    """Raised from the progress callback once enough steps are timed (ends the estimate's run early)."""


def estimate(run_dir: str | Path, steps: int = 3) -> dict[str, Any]:
    """Time ``steps`` training steps (after one warm-up step) of the job in ``run_dir`` on its device.

    Runs the real ``train()`` in a scratch folder inside ``run_dir`` (deleted after). Returns
    ``seconds_per_step``, ``startup_s`` (process start to the first step), ``hardware`` and ``steps``.
    """
    from trainer.loop import train

    run_dir = Path(run_dir)
    spec = read_spec(run_dir)
    scratch = Path(tempfile.mkdtemp(prefix=".estimate-", dir=run_dir))
    config = build_config(dataclasses.replace(spec, steps=max(100, steps + 1)), scratch, files_dir=run_dir)
    from trainer.config import apply_overrides

    config = apply_overrides(config, ["schedule.log_every=1", "data.val_images=0", "schedule.validate_every=100000",
                                      "schedule.checkpoint_every=100000"])
    times: list[float] = []
    info: dict[str, Any] = {}

    def progress(record: dict[str, Any]) -> None:
        if record.get("kind") == "start":
            info["hardware"] = record.get("hardware", "")
        elif record.get("kind") == "train":
            times.append(time.perf_counter())
            if len(times) > steps:
                raise _Measured

    try:
        train(config, progress)
    except _Measured:
        pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if not gaps:
        raise JobError("the time estimate could not measure any step")
    per_step = statistics.median(gaps)
    # Start-up: process start to the end of the first (warm-up) step, less one ordinary step.
    startup = max(0.0, times[0] - _PROCESS_START - per_step)
    return {"seconds_per_step": per_step, "startup_s": startup, "hardware": info.get("hardware", ""),
            "steps": len(gaps), "device": spec.device}


# --- the process ----------------------------------------------------------------------------------------------

def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return True
    return "no space left on device" in str(exc).lower()


def _fail(run_dir: Path, kind: str, message: str, code: int) -> int:
    write_status(run_dir, "failed", message, error=kind)
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return code


def _describe(spec: JobSpec | None) -> str:
    if spec is None:
        return ""
    return f" (batch {spec.batch_size}, {spec.size} px, {spec.device})"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m trainer.finetune_job``; returns the exit status (see the module doc)."""
    parser = argparse.ArgumentParser(prog=PROG, description="Run one fine-tune job of the editor's dialog.")
    parser.add_argument("run_dir", help="the run folder holding job.json")
    parser.add_argument("--estimate", action="store_true", help="time a few steps and print JSON, then stop")
    parser.add_argument("--estimate-steps", type=int, default=3)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    run_dir = Path(args.run_dir)
    fault = os.environ.get(FAULT_ENV, "")
    spec: JobSpec | None = None
    stopper_flag = {"stop": False}
    try:
        spec = read_spec(run_dir)
        _set_threads(spec)
        if hasattr(os, "nice") and not args.estimate:
            with contextlib.suppress(OSError):
                os.nice(5)  # the editor stays responsive while training uses every core
        if args.estimate:
            print(json.dumps(estimate(run_dir, args.estimate_steps)), flush=True)
            return EXIT_OK

        def on_signal(signum: int, _frame: object) -> None:
            stopper_flag["stop"] = True

        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, OSError):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            outcome = run_job(run_dir, abort_fn=lambda: stopper_flag["stop"], fault=fault)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if outcome.state == "stopped":
            print(f"{PROG}: stopped at step {outcome.step}/{outcome.total}; checkpoint saved", file=sys.stderr)
            return EXIT_STOPPED
        print(json.dumps({"state": outcome.state, "models": [str(p) for p in outcome.models]}), flush=True)
        return EXIT_OK
    except NameTaken as exc:
        return _fail(run_dir, "name-taken", str(exc), EXIT_NAME_TAKEN)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        if is_out_of_memory(exc):
            return _fail(run_dir, "oom", f"Training ran out of memory{_describe(spec)}: {OOM_ADVICE}.", EXIT_OOM)
        if is_disk_full(exc):
            where = f" while writing {exc.filename}" if getattr(exc, "filename", None) else ""
            return _fail(run_dir, "disk-full", f"The disk is full{where}: {DISK_ADVICE}.", EXIT_DISK_FULL)
        if isinstance(exc, EngineError):
            return _fail(run_dir, "error", str(exc), EXIT_ERROR)
        if isinstance(exc, OSError):
            where = f" ({exc.filename})" if exc.filename else ""
            return _fail(run_dir, "error", f"{exc.strerror or exc}{where}", EXIT_ERROR)
        import traceback

        traceback.print_exc()
        return _fail(run_dir, "crash", f"Training failed: {type(exc).__name__}: {exc}", EXIT_BUG)


if __name__ == "__main__":
    sys.exit(main())
