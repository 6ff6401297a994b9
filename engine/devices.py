"""Compute devices: which one to use, what to call it, how many CPU threads, which autocast dtype, OOM fallback."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

from engine.errors import EngineError

log = logging.getLogger(__name__)
T = TypeVar("T")
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Device names usable on this machine, best first (``cuda:N``..., ``mps``, ``cpu``)."""
    names: list[str] = []
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    names.append("cpu")
    return names


def device_choices() -> list[tuple[str, str]]:
    """(device, label) for a device menu: the CPU, every CUDA device, Apple's MPS when available."""
    names = available_devices()
    ordered = ["cpu", *(n for n in names if n.startswith("cuda")), *(n for n in names if n == "mps")]
    labels = {"cpu": f"CPU ({cpu_cores()} cores)", "mps": "Apple GPU (MPS)"}
    return [(n, labels.get(n) or f"CUDA: {torch.cuda.get_device_name(int(n.split(':')[1]))}") for n in ordered]


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The one place a device name becomes a device (the engine, the trainer and the fine-tune dialog).

    ``auto`` picks CUDA, then Apple MPS, then the CPU; ``cuda`` without an index is the current GPU, or under
    torchrun this process's GPU (``local_rank``); explicit names are checked against this machine.
    """
    text = (name or "auto").strip().lower()
    if not _DEVICE_RE.match(text):
        raise EngineError(f"Unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps.")
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", _default_cuda_index(local_rank))
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise EngineError("Device 'mps' was asked for, but Apple Metal (MPS) is not available here. "
                              f"Available: {', '.join(available_devices())}.")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise EngineError(f"Device {name!r} was asked for, but this torch build or machine has no CUDA GPU. "
                          f"Available: {', '.join(available_devices())}.")
    index = int(text.split(":")[1]) if ":" in text else _default_cuda_index(local_rank)
    if index >= torch.cuda.device_count():
        raise EngineError(f"Device {name!r} does not exist: this machine has {torch.cuda.device_count()} "
                          f"CUDA device(s). Available: {', '.join(available_devices())}.")
    return torch.device("cuda", index)


def _default_cuda_index(local_rank: int) -> int:
    return local_rank % torch.cuda.device_count() if local_rank else torch.cuda.current_device()


def cpu_cores() -> int:
    """The CPU cores this process may run on (its CPU affinity where the OS tells it, else every core)."""
    cores = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        with contextlib.suppress(OSError):
            cores = len(os.sched_getaffinity(0))
    return max(1, cores)


def cpu_thread_cap(requested: int | None = None) -> int:
    """Torch CPU threads: ``requested`` if given (and above 0), else every usable core but one (kept for the GUI,
    and on a busy machine fewer threads are faster); at least 1."""
    if requested is not None:
        if int(requested) < 1:
            raise EngineError(f"cpu_threads must be at least 1, got {requested}.")
        return int(requested)
    return max(1, cpu_cores() - 1)


def device_name(device: torch.device, cpu_threads: int) -> str:
    """Human name: ``CPU (1 thread)``, ``CUDA: NVIDIA H200``, ``Apple MPS``."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({cpu_threads} thread{'s' if cpu_threads != 1 else ''})"


def cpu_has_fast_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX); ``INPAINT_STUDIO_CPU_BF16=0/1`` overrides."""
    override = os.environ.get("INPAINT_STUDIO_CPU_BF16", "").strip()
    if override in ("0", "1"):
        return override == "1"
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)
        if check is not None:
            with contextlib.suppress(Exception):
                if check():
                    return True
    return False


def bf16_autocast(mode: str, device: torch.device) -> bool:
    """The one meaning of the bf16 setting (``optim.amp``, the fine-tune job's ``amp``, the engine's inference):
    ``auto`` = where the device computes bf16 natively (CUDA with bf16, CPUs with AVX512-BF16 or AMX: there the
    fine-tune step ran 1.6x faster with the same fills); ``on`` = wherever autocast supports bf16; ``off`` never.
    """
    if mode == "off":
        return False
    if mode == "on":
        return device.type in ("cuda", "cpu", "mps")
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return device.type == "cpu" and cpu_has_fast_bf16()


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Reduced precision for inference: bf16 where :func:`bf16_autocast` ``auto`` says so, else fp16 on CUDA
    and MPS; on a CPU without native bf16 none (fp32).

    Measured on the 2-core CI machine (AVX512-BF16): one image-generator pass at 256 px on one thread took
    0.07 s under bf16 autocast against 0.15 s in fp32, and the output differed by 0.7/255 on average (at
    most 5/255). Without native bf16 the CPU emulates it and is slower than fp32, so fp32 stays there.
    """
    if bf16_autocast("auto", device):
        return torch.bfloat16
    return torch.float16 if device.type in ("cuda", "mps") else None


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """Autocast to :func:`autocast_dtype` on ``device``; a no-op in fp32."""
    dtype = autocast_dtype(device)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the body with ``count`` torch intra-op threads in this thread, restoring the previous count after."""
    previous = torch.get_num_threads()
    if previous != count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a CUDA (or MPS) out-of-memory error."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def run_with_fallback(fn: Callable[[torch.device], T], device: torch.device,
                      warn: Callable[[str], None] | None = None) -> tuple[T, torch.device]:
    """Call ``fn(device)``; on a GPU out-of-memory error free the cache, warn, and call ``fn(cpu)`` instead.

    Returns the result and the device that produced it. Errors other than out-of-memory propagate.
    """
    if device.type == "cpu":
        return fn(device), device
    try:
        return fn(device), device
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
    if device.type == "cuda":
        torch.cuda.empty_cache()
    message = f"The GPU ({device}) ran out of memory; this fill ran on the CPU instead (slower)."
    log.warning(message)
    if warn is not None:
        warn(message)
    cpu = torch.device("cpu")
    return fn(cpu), cpu
