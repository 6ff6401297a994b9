"""Checkpoints: nothing pickled, everything restored (optimizer, RNG), last K kept, corrupt files named."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.checkpoints import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint


def test_round_trip_restores_optimizer_and_rng(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.0, 0.9))
    model(torch.rand(4, 3)).sum().backward()
    opt.step()
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": 7,
             "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}}
    path = save_checkpoint(tmp_path, 7, state)
    assert path.read_bytes()[:2] != b"\x80\x04"
    back = load_checkpoint(path)
    assert back["step"] == 7
    opt2 = torch.optim.Adam(model.parameters())
    opt2.load_state_dict(back["opt"])
    assert opt2.param_groups[0]["betas"] == (0.0, 0.9)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    expected = (random.random(), np.random.random(), torch.rand(1))
    random.setstate(back["rng"]["python"])
    np.random.set_state(back["rng"]["numpy"])
    torch.set_rng_state(back["rng"]["torch"])
    assert (random.random(), np.random.random()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])


def test_keeps_last_k(tmp_path: Path) -> None:
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, {"step": step, "w": torch.ones(2) * step}, keep_last=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [30, 40]
    assert not list(tmp_path.glob(".*tmp*"))


def test_corrupt_or_foreign_file_is_named(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 1, {"w": torch.ones(3)})
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.safetensors")


def test_an_unfused_adam_state_resumes_in_the_fused_optimizer_with_the_same_steps(tmp_path: Path) -> None:
    from trainer.stages import adam

    torch.manual_seed(0)
    weights = torch.nn.Parameter(torch.randn(4, 3, 3, 3))
    old = torch.optim.Adam([weights], lr=1e-2, betas=(0.9, 0.99))  # what checkpoints before session 20 hold
    for _ in range(3):
        weights.grad = torch.randn_like(weights)
        old.step()
    saved = save_checkpoint(tmp_path, 3, {"optimizer": old.state_dict()})
    resumed_weights = torch.nn.Parameter(weights.detach().clone())
    fused = adam([resumed_weights], 1e-2, (0.9, 0.99), torch.device("cpu"))
    fused.load_state_dict(load_checkpoint(saved)["optimizer"])
    grad = torch.randn_like(weights)
    weights.grad, resumed_weights.grad = grad, grad.clone()
    old.step()
    fused.step()
    assert fused.defaults["fused"] and torch.allclose(weights, resumed_weights, atol=1e-6)
