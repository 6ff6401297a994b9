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


@pytest.fixture
def one_gpu(monkeypatch):
    """A machine with one CUDA device (cuda:0), as far as the device code can tell."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "Test GPU")
    monkeypatch.setattr(devices, "_mps_available", lambda: False)


def test_a_missing_gpu_index_is_refused_by_the_engine_and_the_trainer_alike(one_gpu, monkeypatch):
    from trainer import distributed

    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(EngineError) as engine_error:
        devices.resolve_device("cuda:7")
    with pytest.raises(EngineError) as trainer_error:
        distributed.setup("cuda:7")
    assert str(engine_error.value) == str(trainer_error.value)
    assert "does not exist: this machine has 1 CUDA device(s)" in str(engine_error.value)
    assert devices.resolve_device("cuda") == torch.device("cuda", 0)
    assert devices.resolve_device("auto", local_rank=3) == torch.device("cuda", 0)  # rank 3 of 4 on one GPU


def test_device_choices_list_every_device_the_resolver_accepts(one_gpu, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    choices = devices.device_choices()
    assert choices == [("cpu", "CPU (2 cores)"), ("cuda:0", "CUDA: Test GPU")]
    assert [devices.resolve_device(name).type for name, _ in choices] == ["cpu", "cuda"]


def test_cpu_cores_respect_the_affinity(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {2, 3, 5}, raising=False)
    assert devices.cpu_cores() == 3
    assert devices.cpu_thread_cap() == 2


def test_the_fine_tune_job_takes_its_threads_from_the_engine(monkeypatch):
    from trainer import finetune_job
    from trainer.finetune_protocol import JobSpec

    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    asked: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", asked.append)
    finetune_job._set_threads(JobSpec(name="n", base="b", base_card="c"))
    finetune_job._set_threads(JobSpec(name="n", base="b", base_card="c", threads=5))
    assert asked == [2, 5]


def test_bf16_auto_means_native_bf16_everywhere(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert devices.bf16_autocast("auto", torch.device("cuda", 0)) is False
    assert devices.autocast_dtype(torch.device("cuda", 0)) == torch.float16
    monkeypatch.setenv("INPAINT_STUDIO_CPU_BF16", "1")
    assert devices.bf16_autocast("auto", torch.device("cpu")) is True
    assert devices.autocast_dtype(torch.device("cpu")) == torch.bfloat16
