"""The training loop: one function, ``train(config, progress_fn, abort_fn)``, for the CLI, the editor's
fine-tuning dialog and torchrun alike.

Per step: a batch, the stage's optimizer steps, then (rank 0) a ``train`` record every ``log_every`` steps,
validation + sample grid every ``validate_every``, a checkpoint every ``checkpoint_every`` and at the end.
``abort_fn()`` is polled every step; when it returns true a checkpoint is saved and the function returns
normally with ``status="aborted"``. ``progress_fn(record)`` receives every record written to
``metrics.jsonl`` (plus ``total_steps``); a GUI passing it gets no terminal progress bar.
"""

from __future__ import annotations

import dataclasses
import math
import random
import shutil
import sys
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.allocator import keep_freed_memory
from engine.atomic import write_text_atomic
from engine.edges import best_edge_threshold
from engine.errors import EngineError
from trainer import checkpoints
from trainer.config import ConfigError, TrainConfig, config_from_dict, to_toml, validate
from trainer.distributed import DistContext, setup
from trainer.initial import apply_init_arguments, init_weights
from trainer.inputs import make_loader, split_photos, training_dataset, validation_items
from trainer.records import METRICS_FILE, MetricsLog, hardware_description, read_records
from trainer.stages import Stage, build_stage
from trainer.validation import validate_stage, write_grid

ProgressCallback = Callable[[dict[str, Any]], None]
AbortCallback = Callable[[], bool]
CONFIG_FILE = "config.toml"
CHECKPOINT_DIR = "checkpoints"
SAMPLE_DIR = "samples"


class TrainingDiverged(EngineError):
    """A loss became NaN or infinite: the weights are ruined from that step on, so the run stops."""


@dataclass
class RunSummary:
    """How a run ended."""

    run_dir: Path
    status: str  # "completed" or "aborted"
    step: int
    total_steps: int
    checkpoint: Path | None
    validation: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    images_per_s: float = 0.0
    skipped_images: int = 0
    messages: list[str] = field(default_factory=list)
    is_main: bool = True  # rank 0 (the one process that reports) under torchrun


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def cpu_seconds() -> float:
    """CPU time of this process, all threads (what ``schedule.cpu_budget_s`` counts)."""
    return time.process_time()


def best_score(table: dict[str, Any], metric: str = "hole_psnr") -> float | None:
    """What ``schedule.keep_best`` maximises: the stage's ``metric`` over all buckets (the hole PSNR; the low
    band for the structure model); for an edge model, the F-measure of its edge precision and recall in the
    hole at its best threshold (``engine.edges.best_edge_threshold``). None when the table has neither."""
    row = table.get("all") or {}
    if row.get(metric) is not None:
        return float(row[metric])
    point = best_edge_threshold(row)
    if point is None:
        return None
    _, precision, recall = point
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


class _Trainer:
    def __init__(self, config: TrainConfig, ctx: DistContext, progress_fn: ProgressCallback | None,
                 abort_fn: AbortCallback | None) -> None:
        self.ctx = ctx
        self.progress_fn = progress_fn
        self.abort_fn = abort_fn
        self.messages: list[str] = []
        self.run_dir = Path(config.run.out)
        self.ckpt_dir = self.run_dir / CHECKPOINT_DIR
        self.log = MetricsLog(self.run_dir, enabled=ctx.is_main)
        self.start_step = 0
        self.cpu_s = 0.0  # process CPU-seconds spent in training steps, this run (across resumes)
        self.resume_state: dict[str, Any] | None = None
        latest = checkpoints.latest_checkpoint(self.ckpt_dir)
        if config.run.resume:
            if latest is None:
                raise ConfigError(f"--resume: no checkpoint in {self.ckpt_dir}")
            self.resume_state = checkpoints.load_checkpoint(latest)
            self.start_step = int(self.resume_state["step"])
            self.cpu_s = float(self.resume_state.get("cpu_s", 0.0))
            self.messages.append(f"resuming from {latest.name} (step {self.start_step})")
        elif latest is not None:
            raise ConfigError(f"{self.run_dir} already holds checkpoints of a run: pass --resume to continue it, "
                              "or choose a new --out folder")
        elif ctx.is_main:  # an earlier run here never reached a checkpoint: nothing can continue its records
            (self.run_dir / METRICS_FILE).unlink(missing_ok=True)
            shutil.rmtree(self.run_dir / SAMPLE_DIR, ignore_errors=True)
        self.init_models: dict[str, dict[str, Any]] = {}
        if self.resume_state is None:
            config, cards, notes = apply_init_arguments(config)
            self.messages += notes
            self.init_models = {part: {"name": card.name, "steps": card.steps, "resolution": card.resolution}
                                for part, card in cards.items()}
        else:
            config = self._model_of_checkpoint(config)
        self.config = config
        seed_everything(config.optim.seed)  # the same initial weights on every rank
        self.stage = self._build_stage()
        seed_everything(config.optim.seed + ctx.rank)
        self.total = config.optim.steps
        if self.start_step > self.total:
            raise ConfigError(f"optim.steps ({self.total}) is below the checkpoint's step ({self.start_step})")

    def _model_of_checkpoint(self, config: TrainConfig) -> TrainConfig:
        """On resume the networks are the checkpoint's (its saved config), whatever the given config says."""
        saved = config_from_dict(tomllib.loads(self.resume_state["config"]))
        if saved.stage.name != config.stage.name:
            raise ConfigError(f"--resume: the run trains stage {saved.stage.name!r}, not {config.stage.name!r}")
        if saved.model != config.model:
            self.messages.append("resume: network settings taken from the checkpoint")
        if saved.optim.batch_size != config.optim.batch_size:
            self.messages.append(f"resume: batch size {config.optim.batch_size} (the run used "
                                 f"{saved.optim.batch_size}): it continues, but not as an uninterrupted run would")
        return dataclasses.replace(config, model=saved.model)

    # --- setup --------------------------------------------------------------------------------------------------
    def _build_stage(self) -> Stage:
        cfg = self.config
        perceptual = None
        if cfg.stage.name != "edge" and cfg.stage.name != "glcic" and (cfg.losses.perceptual or cfg.losses.style):
            from trainer.losses import load_perceptual_or_none

            perceptual, note = load_perceptual_or_none(cfg.losses.vgg_weights or None)
            self.messages.append(note)
        stage = build_stage(cfg, self.ctx, perceptual)
        if self.resume_state is None:
            for part in stage.parts:
                if getattr(cfg.init, part):
                    stage.load_initial(part, init_weights(cfg, part))
                    self.messages.append(f"{part} generator starts from {getattr(cfg.init, part)}")
        if stage.frozen_edge is not None and self.resume_state is None:
            stage.frozen_edge.load_state_dict(init_weights(cfg, "edge"))  # on resume: from the checkpoint
        return stage

    def _state(self, step: int) -> dict[str, Any]:
        return {"step": step, "stage": self.config.stage.name, "config": to_toml(self.config),
                "world_size": self.ctx.world_size, "model": self.stage.state_dict(),
                "rng": getattr(self, "rng_states", []), "cpu_s": self.cpu_s}

    def _save(self, step: int) -> Path | None:
        self.rng_states = self.ctx.gather(rng_state())
        path = None
        if self.ctx.is_main:
            path = checkpoints.save_checkpoint(self.ckpt_dir, step, self._state(step), self.config.schedule.keep_last)
            self._emit({"kind": "checkpoint", "step": step, "path": str(path)})
        self.ctx.barrier()
        return path

    def _emit(self, record: dict[str, Any]) -> None:
        record = {**record, "time": time.time()}
        self.log.write(record)
        if self.progress_fn is not None and self.ctx.is_main:
            self.progress_fn({**record, "total_steps": self.total})

    # --- the run ------------------------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        cfg, ctx = self.config, self.ctx
        train_photos, val_photos = None, None
        if not cfg.internal.photo:
            train_photos, val_photos, notes = split_photos(cfg)
            self.messages += notes
        dataset = training_dataset(cfg, train_photos)
        val_items: list[dict[str, Any]] = []
        if ctx.is_main:
            val_items, notes = validation_items(cfg, val_photos)
            self.messages += notes
        if self.resume_state is not None:
            self.stage.load_state_dict(self.resume_state["model"])
            ranks = self.resume_state.get("rng", [])
            if self.resume_state.get("world_size") == ctx.world_size and len(ranks) > ctx.rank:
                set_rng_state(ranks[ctx.rank])
            else:
                seed_everything(cfg.optim.seed + ctx.rank + self.start_step)
                self.messages.append(f"resume: {ctx.world_size} process(es) (the run used "
                                     f"{self.resume_state.get('world_size')}): it continues, but the data order is "
                                     "not the one of an uninterrupted run")
            self.log.truncate_after(self.start_step)
        if ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.run_dir / CONFIG_FILE, to_toml(cfg))
        skipped = getattr(dataset, "skipped", 0)
        if skipped:
            self.messages.append(f"{skipped} unreadable or too small photo(s) skipped")
        self._warnings_at_start = len(getattr(dataset, "warnings", []))
        self._emit({"kind": "start", "step": self.start_step, "total_steps": self.total, "stage": cfg.stage.name,
                    "hardware": hardware_description(ctx.device, ctx.world_size), "device": str(ctx.device),
                    "world_size": ctx.world_size, "batch_size": cfg.optim.batch_size, "command": cfg.run.command,
                    "train_images": len(dataset), "val_items": len(val_items), "messages": self.messages,
                    **({"init_models": self.init_models} if self.init_models else {})})
        loader = make_loader(dataset, cfg, ctx, self.start_step * cfg.optim.batch_size)
        return self._loop(loader, val_items, dataset)

    def _loop(self, loader: Any, val_items: list[dict[str, Any]], dataset: Any) -> RunSummary:
        cfg, ctx, stage = self.config, self.ctx, self.stage
        sched = cfg.schedule
        step = self.start_step
        bar = None
        if ctx.is_main and self.progress_fn is None:
            from tqdm import tqdm

            bar = tqdm(total=self.total, initial=step, unit="step", dynamic_ncols=True, file=sys.stderr,
                       desc=f"{cfg.stage.name}")
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        session_start = tick_start = time.perf_counter()
        tick_step = step
        status = "completed"
        last_ckpt: Path | None = None
        last_val: dict[str, Any] = {}
        data = iter(loader)
        images_per_step = cfg.optim.batch_size * ctx.world_size
        if step == 0 and ctx.is_main and val_items and any(vars(cfg.init).values()):
            last_val = self._validate(0, val_items)  # a fine-tune's "before": the model it starts from
            self._keep_if_best(0, last_val)
        budget = sched.cpu_budget_s
        stage.train()
        try:
            while step < self.total:
                if ctx.any(bool(self.abort_fn and self.abort_fn())):
                    status = "aborted"
                    break
                cpu_before = cpu_seconds()
                batch = {k: v.to(ctx.device, non_blocking=True) for k, v in next(data).items()
                         if isinstance(v, torch.Tensor)}
                logs = stage.train_step(batch, step)
                self.cpu_s += cpu_seconds() - cpu_before
                bad = sorted(k for k, v in logs.items() if not math.isfinite(v))
                if ctx.any(bool(bad)):
                    kept = checkpoints.latest_checkpoint(self.ckpt_dir)
                    raise TrainingDiverged(
                        f"the loss became NaN or infinite at step {step + 1} ({', '.join(bad) or 'on another process'}"
                        "): the learning rate is too high for this run, or the model it started from is damaged; "
                        + (f"the last good checkpoint is {kept.name}" if kept else "no checkpoint was saved"))
                step += 1
                last = step == self.total or (budget > 0 and ctx.any(self.cpu_s >= budget))
                for k, v in logs.items():
                    sums[k] += v
                    counts[k] += 1
                if bar is not None:
                    bar.update(1)
                if step % sched.log_every == 0 or last:
                    losses = ctx.mean({k: v / counts[k] for k, v in sorted(sums.items())})
                    now = time.perf_counter()
                    steps_per_s = (step - tick_step) / max(now - tick_start, 1e-9)
                    overall = (step - self.start_step) / max(now - session_start, 1e-9)
                    record = {"kind": "train", "step": step, "elapsed_s": now - session_start, "losses": losses,
                              "lr": cfg.optim.lr_at(step - 1), "steps_per_s": steps_per_s, "cpu_s": self.cpu_s,
                              "images_per_s": steps_per_s * images_per_step,
                              "eta_s": (self.total - step) / max(overall, 1e-9)}
                    if cfg.stage.name == "glcic":
                        record["phase"] = stage.phase(step - 1)
                    self._emit(record)
                    if bar is not None:
                        bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in list(losses.items())[:4]})
                    sums.clear()
                    counts.clear()
                    tick_start, tick_step = now, step
                if (step % sched.validate_every == 0 or last) and ctx.is_main and val_items:
                    last_val = self._validate(step, val_items)
                    self._keep_if_best(step, last_val)
                if step % sched.checkpoint_every == 0 or last:
                    last_ckpt = self._save(step)
                if last and step < self.total:
                    self.messages.append(f"stopped at step {step}: the CPU budget of {budget:g} s is spent "
                                         f"({self.cpu_s:.0f} CPU-s in training steps)")
                    break
            if status == "aborted":
                last_ckpt = self._save(step)
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - session_start
        done = step - self.start_step
        late = [w for w in getattr(dataset, "warnings", [])[self._warnings_at_start:] if w.startswith("skipped ")]
        if late:  # photos that failed to decode during the run (counted in this process; workers log their own)
            self.messages.append(f"{len(late)} photo(s) could not be decoded during the run and were replaced: "
                                 + "; ".join(late[:5]) + (" ..." if len(late) > 5 else ""))
        summary = RunSummary(self.run_dir, status, step, self.total, last_ckpt, last_val, elapsed,
                             done * images_per_step / elapsed if elapsed > 0 else 0.0,
                             getattr(dataset, "skipped", 0), self.messages, ctx.is_main)
        self._emit({"kind": "end", "step": step, "status": status, "elapsed_s": elapsed,
                    "images_per_s": summary.images_per_s, "checkpoint": str(last_ckpt) if last_ckpt else None})
        return summary

    def _keep_if_best(self, step: int, table: dict[str, Any]) -> None:
        """With ``schedule.keep_best``: save the weights when this validation's score (:func:`best_score`) is the
        best of the run (earlier validations, also of earlier sessions, are read back from the log)."""
        metric = self.stage.best_metric
        score = best_score(table, metric)
        if not self.config.schedule.keep_best or score is None:
            return
        earlier = [best_score(r.get("table", {}), metric) for r in read_records(self.run_dir, "val")
                   if r.get("step", -1) < step]
        if all(e is None or score > e for e in earlier):
            state = {**self._state(step), "rng": []}
            path = checkpoints.save_best(self.ckpt_dir, step, state)
            self._emit({"kind": "best", "step": step, "score": score, "path": str(path)})

    def _validate(self, step: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        cfg = self.config
        stage = self.stage
        grid_count = cfg.schedule.sample_count if cfg.schedule.sample_grids else 0
        with stage.eval_mode():
            table, grid = validate_stage(stage, items, batch_size=max(1, min(cfg.optim.batch_size, 8)),
                                         grid_count=grid_count)
        self._emit({"kind": "val", "step": step, "table": table})
        if grid is not None:
            path = self.run_dir / SAMPLE_DIR / f"step-{step:08d}.png"
            write_grid(path, grid)
            self._emit({"kind": "sample", "step": step, "path": str(path)})
        return table


def train(config: TrainConfig, progress_fn: ProgressCallback | None = None,
          abort_fn: AbortCallback | None = None) -> RunSummary:
    """Train as ``config`` says (validated here); returns how it ended. Errors a user can cause raise
    ``EngineError`` subclasses (``ConfigError``, ``DataError``, ``CheckpointError``) with clear text."""
    config = validate(dataclasses.replace(config))
    keep_freed_memory()  # each step's maps reuse the last step's pages: about 6 % faster on the 2-core CPU
    ctx = setup(config.run.device)
    try:
        return _Trainer(config, ctx, progress_fn, abort_fn).run()
    finally:
        ctx.close()
