"""Training checkpoints: one safetensors file holding every tensor plus a JSON tree of everything else.

A checkpoint is a nested structure of dicts, lists, tuples, numbers, strings, numpy arrays and tensors
(model and optimizer state dicts, RNG states, step, config). It is split into flat tensors (stored as
safetensors) and a JSON tree in the file's metadata where each tensor is replaced by ``{"__tensor__": key}``.
Nothing is pickled, so loading a checkpoint cannot run code. Files are written atomically; the last K kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.atomic import write_with_atomic
from engine.errors import EngineError
from trainer.run_files import checkpoint_name, list_checkpoints
from trainer.run_files import latest_checkpoint as latest_checkpoint  # re-exported for the loop and export

FORMAT = "inpaint-studio-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(EngineError):
    """A checkpoint is missing, corrupt or from another program."""


def _flatten(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"{len(tensors):06d}:{path}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"{len(tensors):06d}:{path}"
        wide = np.ascontiguousarray(obj).astype(np.int64 if obj.dtype.kind in "iu" else obj.dtype)
        tensors[key] = torch.from_numpy(wide).clone()
        return {"__ndarray__": key, "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        items = [[k, _flatten(v, tensors, f"{path}.{k}" if path else str(k))] for k, v in obj.items()]
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return dict(items)
        return {"__items__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {path!r} in a checkpoint")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy().astype(obj["dtype"])
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__items__"]}
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def flatten_state(state: Any) -> tuple[dict[str, torch.Tensor], str]:
    """Split ``state`` into flat tensors and the JSON text of the rest."""
    tensors: dict[str, torch.Tensor] = {}
    tree = _flatten(state, tensors, "")
    return tensors, json.dumps(tree)


def unflatten_state(tensors: dict[str, torch.Tensor], tree_json: str) -> Any:
    """Inverse of :func:`flatten_state`."""
    return _unflatten(json.loads(tree_json), tensors)


def save_checkpoint(folder: str | Path, step: int, state: dict[str, Any], keep_last: int = 3) -> Path:
    """Write ``state`` as ``folder/ckpt-STEP.safetensors`` atomically and keep only the ``keep_last`` newest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors, tree = flatten_state(state)
    metadata = {"format": FORMAT, "version": str(FORMAT_VERSION), "step": str(step), "state": tree}
    target = folder / checkpoint_name(step)
    write_with_atomic(target, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    if keep_last > 0:
        for _, old in list_checkpoints(folder)[:-keep_last]:
            old.unlink(missing_ok=True)
    return target


BEST_NAME = "best.safetensors"


def save_best(folder: str | Path, step: int, state: dict[str, Any]) -> Path:
    """Write ``state`` as ``folder/best.safetensors`` atomically: the weights of the best validation so far
    (``schedule.keep_best``). It is not a resume point and is never pruned."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors, tree = flatten_state(state)
    metadata = {"format": FORMAT, "version": str(FORMAT_VERSION), "step": str(step), "state": tree}
    target = folder / BEST_NAME
    write_with_atomic(target, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return target


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint, truncated or corrupt ({exc})") from None
    if metadata.get("format") != FORMAT or "state" not in metadata:
        raise CheckpointError(f"{path}: not an Inpaint Studio training checkpoint")
    return unflatten_state(tensors, metadata["state"])
