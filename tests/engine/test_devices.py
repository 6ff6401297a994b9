"""Devices: selection, names, thread cap, autocast choice, out-of-memory fallback."""

from __future__ import annotations

import os

import pytest
import torch

from engine import devices
from engine.errors import EngineError


def test_auto_and_cpu():
    auto = devices.resolve_device("auto")
    assert auto.type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available() and not devices._mps_available():
        assert auto.type == "cpu"
    assert devices.resolve_device("CPU").type == "cpu"
    assert devices.available_devices()[-1] == "cpu"


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "gpu0", "cpu:1"])
def test_bad_names_are_refused(name):
    with pytest.raises(EngineError, match="Unknown device"):
        devices.resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_is_a_clear_error():
    with pytest.raises(EngineError, match=r"no CUDA GPU.*Available: .*cpu"):
        devices.resolve_device("cuda:0")


def test_thread_cap_leaves_a_core(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert devices.cpu_thread_cap() == 7
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert devices.cpu_thread_cap() == 1
    assert devices.cpu_thread_cap(3) == 3
    with pytest.raises(EngineError):
        devices.cpu_thread_cap(0)


def test_names_and_dtypes():
    cpu = torch.device("cpu")
    assert devices.device_name(cpu, 1) == "CPU (1 thread)"
    assert devices.device_name(cpu, 4) == "CPU (4 threads)"
    assert devices.autocast_dtype(torch.device("mps")) == torch.float16


def test_cpu_bf16_only_where_native(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("INPAINT_STUDIO_CPU_BF16", "0")
    assert devices.autocast_dtype(cpu) is None
    monkeypatch.setenv("INPAINT_STUDIO_CPU_BF16", "1")
    assert devices.autocast_dtype(cpu) == torch.bfloat16
    monkeypatch.delenv("INPAINT_STUDIO_CPU_BF16")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert devices.autocast_dtype(cpu) is None


def test_torch_threads_restores():
    before = torch.get_num_threads()
    with devices.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_out_of_memory_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    warnings: list[str] = []

    def work(device: torch.device) -> str:
        if device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "done on cpu"

    result, used = devices.run_with_fallback(work, torch.device("cuda", 0), warnings.append)
    assert result == "done on cpu" and used.type == "cpu"
    assert warnings and "ran out of memory" in warnings[0]


def test_other_errors_propagate():
    def broken(device: torch.device) -> None:
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        devices.run_with_fallback(broken, torch.device("cuda", 0))
