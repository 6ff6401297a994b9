"""One fine-tuning run of the editor's dialog, run in its own process so a crash or out-of-memory in
training can never take the editor down. What the editor and this process share (the spec, file names, exit
codes, name rules, run listing) is :mod:`trainer.finetune_protocol`; the editor imports only that.

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
import itertools
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.atomic import write_text_atomic
from engine.errors import EngineError
from engine.paths import bundled_models_dir
from trainer.finetune_protocol import (
    DISK_ADVICE,
    EXIT_BUG,
    EXIT_DISK_FULL,
    EXIT_ERROR,
    EXIT_NAME_TAKEN,
    EXIT_OK,
    EXIT_OOM,
    EXIT_STOPPED,
    OOM_ADVICE,
    PROG,
    STOP_FILE,
    JobError,
    JobSpec,
    NameTaken,
    check_name,
    held_out_gain,
    is_disk_full,
    is_out_of_memory,
    read_spec,
    write_status,
)

if TYPE_CHECKING:
    from trainer.config import TrainConfig

_PROCESS_START = time.perf_counter()  # the estimate's start-up time counts from here (torch is imported later)


# --- config ---------------------------------------------------------------------------------------------------

def build_config(spec: JobSpec, run_dir: Path, resume: bool = False, files_dir: Path | None = None) -> TrainConfig:
    """The trainer config of ``spec`` writing into ``run_dir`` (validated by ``train()``); the photo and mask
    of "this photo" are read from ``files_dir`` (default ``run_dir``)."""
    from trainer.config import TrainConfig

    files_dir = files_dir if files_dir is not None else run_dir
    steps = spec.steps
    photo = spec.mode == "photo"
    if photo:
        from trainer.internal import internal_config

        base = internal_config(files_dir / spec.photo, files_dir / spec.mask, spec.base_card, run_dir, steps=steps,
                               size=spec.size, batch_size=spec.batch_size, lr=spec.lr, device=spec.device,
                               adversarial=spec.adversarial, edge_model=spec.edge_card or None)
        # Validation on the held-out holes is cheap (a few crops): ten times per run, so the kept best is close.
        validate_every = max(1, steps // 10)
    else:
        base = TrainConfig()
        validate_every = max(steps // 4, min(steps, 50))
    # Curves: about 100 points; validation (figures + a sample grid) about 4 times and checkpoints about 5 times
    # per run, but not more often than every 50 steps (a short run validates once, at its end).
    config = replace(
        base,
        run=replace(base.run, out=str(run_dir), name=spec.name, device=spec.device, resume=resume,
                    command=f"python -m trainer.finetune_job {run_dir}"),
        optim=replace(base.optim, steps=steps, batch_size=spec.batch_size, lr=float(spec.lr), seed=spec.seed,
                      amp=spec.amp, workers=0),
        data=replace(base.data, size=spec.size, val_irregular_dir="",
                     **({} if photo else {"train_dir": spec.folder, "val_images": 8})),
        schedule=replace(base.schedule, log_every=max(1, min(10, steps // 100)), validate_every=validate_every,
                         checkpoint_every=max(steps // 5, min(steps, 50)), keep_last=2, sample_count=4))
    if photo:
        return config
    if spec.parts == "completion":
        stage = replace(config.stage, name="glcic")
        if not spec.adversarial:  # reconstruction only (GLCIC's phase 1)
            stage = replace(stage, glcic_completion_steps=steps, glcic_discriminator_steps=0)
        return replace(config, stage=stage, init=replace(config.init, glcic=spec.base_card))
    if spec.parts == "joint":
        return replace(config, stage=replace(config.stage, name="joint"),
                       init=replace(config.init, image=spec.base_card, edge=spec.edge_card))
    config = replace(config, stage=replace(config.stage, name="image"), init=replace(config.init, image=spec.base_card))
    if not spec.adversarial:
        config = replace(config, losses=replace(config.losses, adversarial=0.0, feature_matching=0.0))
    return config


# --- stopping ------------------------------------------------------------------------------------------------

class _Stopper:
    """``abort_fn`` of the run: the stop file or a signal."""

    def __init__(self, run_dir: Path, external: Callable[[], bool] | None = None) -> None:
        self.stop_path = run_dir / STOP_FILE
        self.external = external

    def __call__(self) -> bool:
        return self.stop_path.exists() or bool(self.external and self.external())


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


def register(run_dir: str | Path, spec: JobSpec | None = None) -> list[Path]:
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


def _set_threads(spec: JobSpec) -> None:
    import torch

    from engine.devices import cpu_thread_cap

    threads = cpu_thread_cap(spec.threads if spec.threads > 0 else None)
    with contextlib.suppress(RuntimeError):
        torch.set_num_threads(threads)


def run_job(run_dir: str | Path, progress_fn: Callable[[dict[str, Any]], None] | None = None,
            abort_fn: Callable[[], bool] | None = None) -> JobOutcome:
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
    summary = train(config, progress_fn or (lambda record: None), _Stopper(run_dir, abort_fn))
    if summary.status == "aborted":
        message = f"Stopped at step {summary.step} of {summary.total_steps}; checkpoint saved."
        write_status(run_dir, "stopped", message, step=summary.step)
        return JobOutcome("stopped", summary.step, summary.total_steps, [], time.perf_counter() - started,
                          summary.messages)
    write_status(run_dir, "trained", "Training finished; registering the model.", step=summary.step)
    cards = register(run_dir, spec)
    names = [p.stem for p in cards]
    gain = held_out_gain(run_dir) if spec.mode == "photo" else ""
    write_status(run_dir, "registered", f"Registered {', '.join(names)} in {spec.registered_dir()}.{gain}",
                 models=names, step=summary.step)
    with contextlib.suppress(OSError):
        shutil.rmtree(run_dir / "checkpoints")  # the model is exported; checkpoints only cost disk now
    return JobOutcome("registered", summary.step, summary.total_steps, cards, time.perf_counter() - started,
                      summary.messages)


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
    config = replace(config, data=replace(config.data, val_images=0),
                     schedule=replace(config.schedule, log_every=1, validate_every=100000, checkpoint_every=100000))
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

        def on_signal(_signum: int, _frame: object) -> None:
            stopper_flag["stop"] = True

        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, OSError):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            outcome = run_job(run_dir, abort_fn=lambda: stopper_flag["stop"])
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
