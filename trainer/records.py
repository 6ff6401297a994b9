"""The run folder's records: ``metrics.jsonl`` (one JSON object per line) and a description of the hardware.

Record kinds: ``start`` (hardware, device, command, world size), ``train`` (one per tick: step, time, losses,
lr, images/s, eta), ``val`` (the validation table), ``sample`` (path of a sample grid) and ``end`` (status).
Only rank 0 writes. On resume, records after the checkpoint's step are dropped so the curves stay continuous.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch

from engine.atomic import write_text_atomic
from engine.devices import cpu_cores
from trainer.run_files import METRICS_FILE, read_records
from trainer.validation import round_floats

__all__ = ["METRICS_FILE", "MetricsLog", "cpu_name", "hardware_description", "read_records"]


def cpu_name() -> str:
    """The CPU model as the OS reports it (``platform.processor()`` is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def hardware_description(device: torch.device, world_size: int = 1) -> str:
    """E.g. ``"2 x NVIDIA H200 (CUDA)"`` or ``"CPU: AMD EPYC 7B13, 2 cores, 2 threads for torch"``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{world_size} x {name} (CUDA)" if world_size > 1 else f"{name} (CUDA)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    procs = f"{world_size} processes x " if world_size > 1 else ""
    return (f"CPU: {cpu_name()}, {cpu_cores()} cores, {procs}{torch.get_num_threads()} torch threads")


class MetricsLog:
    """Appends JSON records to ``metrics.jsonl``, one per line, flushed immediately (readers tail the file)."""

    def __init__(self, run_dir: str | Path, enabled: bool = True) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """Drop records after ``step`` (resume from an earlier checkpoint than the last record)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and _step_of(line) <= step]
        write_text_atomic(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(round_floats(record, 6)) + "\n")
            handle.flush()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 1 << 62  # unreadable line: dropped
