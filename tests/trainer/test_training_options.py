"""Training options of the loop: EMA generators (and that export uses them), gradient clipping, AMP resolution."""

from __future__ import annotations

import math
import warnings
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from engine.devices import bf16_autocast
from engine.model_files import load_model
from tests.trainer.conftest import tiny_config
from trainer.checkpoints import latest_checkpoint, load_checkpoint
from trainer.config import ConfigError, validate
from trainer.distributed import DistContext
from trainer.export import export_run
from trainer.loop import train
from trainer.stages import ImageStage, Stage, build_stage

CPU = DistContext(device=torch.device("cpu"))


def _stage(photos: Path, tmp_path: Path, *overrides: str) -> Stage:
    torch.manual_seed(0)
    return build_stage(validate(tiny_config(photos, tmp_path / "run", "stage.name=image", *overrides)), CPU)


def _batch(seed: int = 0, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, size, size, generator=g)
    mask = torch.zeros(2, 1, size, size)
    mask[:, :, 8:20, 6:26] = 1.0
    edges = (torch.rand(2, 1, size, size, generator=g) > 0.8).float()
    return {"image": image, "gray": image.mean(dim=1, keepdim=True), "edges": edges, "known_edges": edges * (1 - mask),
            "mask": mask}


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


# ------------------------------------------------------------------------------------------------------------ EMA

def test_ema_follows_the_live_weights_with_the_warmed_up_decay(photos: Path, tmp_path: Path) -> None:
    decay = 0.999
    stage = _stage(photos, tmp_path, f"optim.ema_decay={decay}", "optim.lr=0.01", "losses.adversarial=0",
                   "losses.feature_matching=0")
    part = stage.parts["image"]
    assert part.ema is not None and part.inference_generator() is part.ema
    expected = _params(part.g)
    assert all(torch.equal(e, p) for e, p in zip(expected, _params(part.ema)))  # starts as the generator
    stage.train()
    for step in range(3):
        stage.train_step(_batch(step), step)
        d = min(decay, (1 + step) / (10 + step))
        expected = [e + (1 - d) * (p - e) for e, p in zip(expected, _params(part.g))]
    ema, live = _params(part.ema), _params(part.g)
    for e, want in zip(ema, expected):
        torch.testing.assert_close(e, want, rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(e, p) for e, p in zip(ema, live))  # the EMA lags the live weights
    assert not any(p.requires_grad for p in part.ema.parameters())


def test_without_ema_inference_uses_the_live_generator(photos: Path, tmp_path: Path) -> None:
    stage = _stage(photos, tmp_path, "optim.ema_decay=0")
    part = stage.parts["image"]
    assert part.ema is None and part.inference_generator() is part.g
    assert "ema" not in part.state_dict()


@pytest.mark.parametrize("ema_decay", [0.999, 0.0])
def test_export_writes_the_ema_weights_when_kept(photos: Path, tmp_path: Path, ema_decay: float) -> None:
    run = tmp_path / "run"
    summary = train(tiny_config(photos, run, "stage.name=image", "optim.steps=2", "optim.lr=0.01",
                                f"optim.ema_decay={ema_decay}", "losses.adversarial=0", "losses.feature_matching=0"))
    assert summary.status == "completed"
    part_state = load_checkpoint(latest_checkpoint(run / "checkpoints"))["model"]["parts"]["image"]
    assert ("ema" in part_state) == (ema_decay > 0)
    result = export_run(run, tmp_path / "out", name="m", companion="some-edge")
    module, card = load_model(result.models[0])
    exported = module.state_dict()
    source = part_state["ema"] if ema_decay > 0 else part_state["g"]
    assert set(exported) == set(source)
    for key, tensor in exported.items():
        assert torch.equal(tensor, source[key]), key
    if ema_decay > 0:
        assert any(not torch.equal(exported[k], part_state["g"][k]) for k in exported)  # not the live weights
        assert "EMA weights" in card.description
    else:
        assert "EMA" not in card.description


# --------------------------------------------------------------------------------------------- gradient clipping

def _spy_on_clipping(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float, float]]:
    """Records (max_norm, norm before, norm after) of every ``clip_grad_norm_`` call."""
    calls: list[tuple[float, float, float]] = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        params = [p for p in parameters if p.grad is not None]
        before = real(params, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        calls.append((float(max_norm), float(before), float(after)))
        return before

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    return calls


def test_gradient_clipping_bounds_every_gradient_norm(photos: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    clip = 1e-3
    stage = _stage(photos, tmp_path, f"optim.grad_clip={clip}")
    assert stage.parts["image"].discriminator is not None
    calls = _spy_on_clipping(monkeypatch)
    stage.train()
    for step in range(2):
        stage.train_step(_batch(step), step)
    assert len(calls) == 4  # discriminator and generator, every step
    assert all(max_norm == clip for max_norm, _, _ in calls)
    assert all(before > clip for _, before, _ in calls)  # the clip really had work to do
    assert all(after <= clip * (1 + 1e-3) for _, _, after in calls)


def test_no_clipping_when_grad_clip_is_zero(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _stage(photos, tmp_path, "optim.grad_clip=0")
    calls = _spy_on_clipping(monkeypatch)
    stage.train()
    stage.train_step(_batch(), 0)
    assert calls == []


# ----------------------------------------------------------------------------------------------- LR schedule

def test_cosine_schedule_falls_from_lr_to_lr_final_over_the_run(photos: Path, tmp_path: Path) -> None:
    optim = validate(tiny_config(photos, tmp_path / "run", "optim.lr=0.001", "optim.lr_final=0.0001",
                                 "optim.lr_schedule=cosine", "optim.steps=100")).optim
    assert optim.lr_at(0) == pytest.approx(1e-3)
    assert optim.lr_at(50) == pytest.approx(5.5e-4)
    assert optim.lr_at(100) == pytest.approx(1e-4)
    assert optim.lr_at(250) == pytest.approx(1e-4)  # past the end (a resume with fewer steps) stays at the floor
    rates = [optim.lr_at(s) for s in range(101)]
    assert all(a >= b for a, b in pairwise(rates))


def test_warmup_rises_linearly_to_the_schedule_then_follows_it(photos: Path, tmp_path: Path) -> None:
    optim = validate(tiny_config(photos, tmp_path / "run", "optim.lr=0.001", "optim.warmup_steps=10",
                                 "optim.steps=100")).optim
    assert optim.lr_at(0) == pytest.approx(1e-4)
    assert optim.lr_at(4) == pytest.approx(5e-4)
    assert [optim.lr_at(s) for s in (9, 50, 99)] == pytest.approx([1e-3] * 3)
    cosine = validate(tiny_config(photos, tmp_path / "run2", "optim.lr=0.001", "optim.warmup_steps=10",
                                  "optim.lr_schedule=cosine", "optim.steps=100")).optim
    assert cosine.lr_at(4) == pytest.approx(0.5 * 1e-3 * 0.5 * (1 + math.cos(math.pi * 0.04)))
    assert cosine.lr_at(50) == pytest.approx(5e-4)


@pytest.mark.parametrize("bad", ["-1", "100"])
def test_a_warmup_outside_the_run_is_refused_naming_the_key(photos: Path, tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r"optim\.warmup_steps"):
        validate(tiny_config(photos, tmp_path / "run", f"optim.warmup_steps={bad}", "optim.steps=100"))


def test_constant_schedule_keeps_lr(photos: Path, tmp_path: Path) -> None:
    optim = validate(tiny_config(photos, tmp_path / "run", "optim.lr=0.001", "optim.steps=100")).optim
    assert optim.lr_schedule == "constant"
    assert {optim.lr_at(s) for s in (0, 50, 99)} == {1e-3}


def test_optimizers_step_at_the_scheduled_rate(photos: Path, tmp_path: Path) -> None:
    stage = _stage(photos, tmp_path, "optim.lr=0.001", "optim.lr_schedule=cosine", "optim.steps=10",
                   "optim.d_lr_ratio=0.5")
    part = stage.parts["image"]
    assert part.d_opt is not None
    stage.train()
    stage.train_step(_batch(), 5)
    assert [g["lr"] for g in part.g_opt.param_groups] == [pytest.approx(5e-4)]
    assert [g["lr"] for g in part.d_opt.param_groups] == [pytest.approx(2.5e-4)]


@pytest.mark.parametrize(("override", "message"), [
    ("optim.lr_schedule=cosin", "did you mean 'cosine'"),
    ("optim.lr_final=0.01", "optim.lr_final: must be between 0 and optim.lr"),
    ("optim.lr_final=-1", "optim.lr_final"),
])
def test_bad_schedule_settings_are_named(photos: Path, tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(tiny_config(photos, tmp_path / "run", "optim.lr=0.001", override))


# --------------------------------------------------------------------------------------------------------- AMP

@pytest.mark.parametrize(("mode", "device", "native_cpu_bf16", "expected"), [
    ("auto", "cpu", "0", False), ("auto", "cpu", "1", True), ("auto", "cuda", "0", True), ("auto", "cuda:1", "0", True),
    ("auto", "mps", "1", False), ("off", "cuda", "1", False), ("off", "cpu", "1", False), ("on", "cpu", "0", True),
    ("on", "cuda", "0", True),
])
def test_amp_mode_resolution(mode: str, device: str, native_cpu_bf16: str, expected: bool,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INPAINT_STUDIO_CPU_BF16", native_cpu_bf16)  # as if the CPU had (1) or lacked (0) bf16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert bf16_autocast(mode, torch.device(device)) is expected


def test_amp_auto_is_off_on_a_cpu_without_native_bf16(photos: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INPAINT_STUDIO_CPU_BF16", "0")
    stage = _stage(photos, tmp_path, "optim.amp=auto")
    assert stage.amp is False
    with stage.autocast():
        assert not torch.is_autocast_enabled("cpu")
    on = _stage(photos, tmp_path, "optim.amp=on")
    with on.autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_amp_auto_on_a_cuda_device_autocasts_to_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    shell = object.__new__(ImageStage)  # only the two attributes autocast() reads; no GPU needed
    shell.device = torch.device("cuda", 0)
    shell.amp = bf16_autocast("auto", shell.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available ... disabling" on a CPU-only machine
        context = shell.autocast()
    assert isinstance(context, torch.autocast)
    assert context.device == "cuda" and context.fast_dtype == torch.bfloat16
