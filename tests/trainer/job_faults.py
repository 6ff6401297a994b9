"""Faults the tests inject into a fine-tune job (``trainer.finetune_job``), in process or in the job's own process.

A fault is ``KIND:N`` at the N-th poll (from 0) of the training run's stop check, once per step: ``hold`` (wait,
a minute at most, for the stop file: a deterministic cancel), ``oom`` (``MemoryError``), ``cuda-oom`` (torch's
CUDA out-of-memory error), ``kill`` (the process kills itself) and ``enospc`` (the disk is full); or
``enospc:export``, a full disk when the finished run is exported. Only the job's training run is hit (it is the
one that passes a stop check); time estimates run clean.

In the test's process: ``install(fault, monkeypatch.setattr)``. In a job the editor starts: ``fault_env(fault)``
is the environment that loads ``job_faults_site/sitecustomize.py`` there, which installs the fault at start-up.
"""

from __future__ import annotations

import errno
import itertools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.paths import REPO_ROOT

FAULT_ENV = "INPAINT_TEST_JOB_FAULT"  # read by job_faults_site/sitecustomize.py
SITE_DIR = Path(__file__).with_name("job_faults_site")


def fault_env(fault: str) -> dict[str, str]:
    """Environment entries that make a job process started by the editor fail as ``fault`` says."""
    path = os.pathsep.join(p for p in (str(SITE_DIR), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {FAULT_ENV: fault, "PYTHONPATH": path}


def _disk_full(where: Path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where))


def _strike(kind: str, run_dir: Path, stop: Callable[[], bool]) -> None:
    if kind == "hold":  # until the stop check says stop
        deadline = time.monotonic() + 60
        while not stop() and time.monotonic() < deadline:
            time.sleep(0.02)
    elif kind == "oom":
        raise MemoryError("simulated out of memory")
    elif kind == "cuda-oom":
        import torch

        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
    elif kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
    elif kind == "enospc":
        raise _disk_full(run_dir / "checkpoints")


def install(fault: str, patch: Callable[[Any, str, Any], None] = setattr) -> None:
    """Patch (with ``patch(owner, name, value)``) the trainer so that the next job fails as ``fault`` says."""
    from trainer import export, loop

    kind, _, at = fault.partition(":")
    if fault == "enospc:export":
        def full_disk_export(run_dir: Any, out_dir: Any, *args: Any, name: str | None = None, **kwargs: Any) -> Any:
            raise _disk_full(Path(out_dir) / f"{name}.safetensors")

        patch(export, "export_run", full_disk_export)
        return
    step = int(at) if at.isdigit() else -1
    train = loop.train

    def faulty_train(config: Any, progress_fn: Any = None, abort_fn: Callable[[], bool] | None = None) -> Any:
        if abort_fn is None:  # a time estimate, not the job's run
            return train(config, progress_fn, abort_fn)
        polls = itertools.count()

        def faulty_abort() -> bool:  # the job's stop check: the stop file or a signal
            if next(polls) == step:
                _strike(kind, Path(config.run.out), abort_fn)
            return abort_fn()

        return train(config, progress_fn, faulty_abort)

    patch(loop, "train", faulty_train)
