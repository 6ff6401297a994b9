"""The half-resolution init keeps every layer the two layouts share and starts at the harmonic fill."""

from __future__ import annotations

import pytest
import torch

from engine.model_files import ModelCard, load_model, save_model
from engine.networks.ffc import FFCStructureGenerator
from engine.networks.prefill import harmonic_fill
from tools.half_resolution_init import main, transfer


def _trained_full() -> FFCStructureGenerator:
    torch.manual_seed(1)
    full = FFCStructureGenerator(base_channels=8, residual_blocks=2, global_percent=50)
    for p in full.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return full


def test_shared_layers_are_copied_and_the_new_head_starts_at_zero() -> None:
    full = _trained_full()
    half, copied = transfer(full)
    assert half.half_resolution and len(half.middle) == 2
    assert torch.equal(half.down[0][0].weight, full.down[1][0].weight)
    assert torch.equal(half.up[1].weight, full.up[1].weight)
    assert torch.equal(half.middle[1].gain, full.middle[1].gain)
    assert not any(name.startswith(("stem.", "head.")) for name in copied)
    image, mask = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 8:24] = 1
    with torch.no_grad():
        assert torch.allclose(half.eval()(image, torch.zeros_like(mask), mask), harmonic_fill(image, mask).clamp(0, 1))
    with pytest.raises(ValueError, match="already"):
        transfer(half)


def test_the_command_writes_an_init_model_the_trainer_can_load(tmp_path) -> None:
    card = ModelCard(name="full", architecture="lama-ffc", arguments={"base_channels": 8, "residual_blocks": 2,
                     "global_percent": 50}, stage="image", resolution=256, steps=123)
    source = save_model(_trained_full(), card, tmp_path / "full")
    assert main([str(source), "--out", str(tmp_path / "half"), "--name", "half-init"]) == 0
    net, new_card = load_model(tmp_path / "half" / "half-init.json")
    assert new_card.arguments["half_resolution"] is True and new_card.steps == 0
    assert "copied from 'full'" in new_card.description
    assert isinstance(net, FFCStructureGenerator) and net.half_resolution
