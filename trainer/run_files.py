"""A training run folder's file layout, readable without torch: the metrics log and the checkpoint names.

``trainer.records`` and ``trainer.checkpoints`` write these files; the fine-tune protocol (and so the editor)
reads them through this module without importing torch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT = re.compile(r"^ckpt-(\d{8,})\.safetensors$")


def checkpoint_name(step: int) -> str:
    """The file name of the checkpoint at ``step``."""
    return f"ckpt-{step:08d}.safetensors"


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the checkpoints in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _CHECKPOINT.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest checkpoint in ``folder``, or None."""
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def read_records(run_dir: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The records of a run (of one ``kind`` if given); unreadable lines (a half-written last line) skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and (kind is None or record.get("kind") == kind):
            records.append(record)
    return records
