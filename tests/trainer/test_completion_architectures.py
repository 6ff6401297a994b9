"""The seed papers' completion networks as trainer architectures: each trains a few steps on tiny photos,
exports, reloads, and fills through the engine (and ``inpaint fill --model``) with the trainer's own outputs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.model_files import load_model
from engine.networks import build_network
from tests.trainer.conftest import tiny_config
from trainer.checkpoints import latest_checkpoint, load_checkpoint
from trainer.config import ConfigError, toml_value, validate
from trainer.export import export_run
from trainer.loop import train
from trainer.losses import local_texture_loss
from trainer.records import read_records

# architecture, tiny arguments, extra settings, whether a discriminator runs and at how many scales
CASES = {
    "pconv-unet": ({"base_channels": 8, "depth": 3},
                   ["losses.hole_l1=6.0", "losses.tv=0.1", "losses.adversarial=0", "losses.feature_matching=0"], 0),
    "deepgin": ({"base_channels": 8, "spd_blocks": 2, "prefill": True}, ["losses.hole_l1=6.0"], 1),
    "context-encoder-ms": ({"base_channels": 8, "depth": 3},
                           ["data.size=64", "losses.local_texture=1.0", "losses.feature_matching=1.0"], 2),
    "glcic": ({"base_channels": 8}, ["losses.adversarial=0", "losses.feature_matching=0"], 0),
}


def _settings(architecture: str, stage: str = "completion") -> list[str]:
    arguments, extra, _ = CASES[architecture]
    args = [f"model.glcic.arguments.{k}={toml_value(v)}" for k, v in arguments.items()]
    if stage == "glcic":  # GLCIC's own three phases, one step each
        extra = ["stage.glcic_completion_steps=1", "stage.glcic_discriminator_steps=1"]
    return [f"stage.name={stage}", f"model.glcic.architecture={architecture}", *args, *extra]


def _trainer_net(run: Path, architecture: str, arguments: dict) -> torch.nn.Module:
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))["model"]["parts"]["glcic"]["ema"]
    net = build_network(architecture, arguments).eval()
    net.load_state_dict(state)
    return net


@pytest.mark.parametrize(("stage", "architecture"), [("completion", a) for a in CASES] + [("glcic", "glcic")])
def test_it_trains_exports_and_the_engine_fills_with_the_trainers_outputs(
        stage: str, architecture: str, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arguments, _, scales = CASES[architecture]
    run = tmp_path / "run"
    summary = train(tiny_config(photos, run, "optim.steps=3", "schedule.log_every=1",
                                *_settings(architecture, stage)))
    assert summary.status == "completed" and np.isfinite(summary.validation["all"]["hole_psnr"])
    losses = [r["losses"] for r in read_records(run, "train")]
    assert len(losses) == 3 and all(np.isfinite(v) for row in losses for v in row.values())
    if stage == "glcic":  # reconstruction, then the global + local discriminator, then both
        assert "glcic/d" not in losses[0] and "glcic/d" in losses[1] and "glcic/g_adv" in losses[2]
    elif scales:
        assert all(row["completion/d_scales"] == scales and "completion/g_adv" in row for row in losses)
    else:
        assert not any("completion/d" in row for row in losses)
    if architecture == "context-encoder-ms":
        assert all(row["completion/g_texture"] > 0 for row in losses)

    result = export_run(run, tmp_path / "out", name="m", onnx=True)  # ONNX checked at another, non-square size
    assert result.onnx_max_diff["m"] < 1e-4
    module, card = load_model(result.models[0])
    assert card.architecture == architecture and card.stage == "completion" and card.arguments == arguments
    trainer_net = _trainer_net(run, architecture, arguments)
    torch.manual_seed(0)
    x, mask = torch.rand(1, 3, 32, 48), torch.zeros(1, 1, 32, 48)
    mask[..., 8:24, 10:30] = 1
    with torch.no_grad():
        assert torch.equal(module(x, mask), trainer_net(x, mask))

    from engine.backends import WorkInput
    from engine.pipeline import Engine
    from tests.trainer.test_loop import _engine_fills_with

    _engine_fills_with(tmp_path / "out", "m", uses_edges=False, monkeypatch=monkeypatch)
    # The engine's backend on one working region: exactly the trainer's network on the same tensors, under the
    # engine's inference precision (bf16 autocast on a CPU with native bf16, else fp32).
    from engine.devices import autocast

    image = (x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    hole = mask[0, 0].numpy().astype(bool)
    image[hole] = 0
    engine = Engine(device="cpu", cpu_threads=1)
    filled = engine.backend("m").fill(WorkInput(image, hole), None, torch.device("cpu"))
    with torch.no_grad(), autocast(torch.device("cpu")):
        expected = trainer_net(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0, mask)
    assert np.allclose(filled, expected[0].float().permute(1, 2, 0).numpy(), atol=1e-5)

    # Fine-tuning it as the editor's dialog does (the glcic stage, reconstruction only) starts from the file.
    tuned = train(tiny_config(photos, tmp_path / "tune", "optim.steps=1", "stage.name=glcic",
                              f"init.glcic='{result.models[0].with_suffix('.json')}'",
                              "stage.glcic_completion_steps=1", "stage.glcic_discriminator_steps=0"))
    assert tuned.status == "completed"
    saved = tomllib.loads(load_checkpoint(latest_checkpoint(tmp_path / "tune" / "checkpoints"))["config"])
    assert saved["model"]["glcic"] == {"architecture": architecture, "arguments": arguments}

    from engine import cli

    photo, mask_png, out_png = tmp_path / "p.png", tmp_path / "mask.png", tmp_path / "o.png"
    cv2.imwrite(str(photo), cv2.resize(image, (96, 64)))
    cv2.imwrite(str(mask_png), cv2.resize(hole.astype(np.uint8) * 255, (96, 64), interpolation=cv2.INTER_NEAREST))
    assert cli.main(["fill", str(photo), "--mask", str(mask_png), "--model", "m", "-o", str(out_png),
                     "--threads", "1"]) == 0
    assert cv2.imread(str(out_png)).shape == (64, 96, 3)


def test_the_two_scale_discriminator_needs_48_px_crops_and_other_parts_refuse_these_networks(
        photos: Path, tmp_path: Path) -> None:
    config = tiny_config(photos, tmp_path / "r", *_settings("context-encoder-ms"), "data.size=32")
    with pytest.raises(ConfigError, match="48 px"):
        validate(config)
    validate(tiny_config(photos, tmp_path / "r", *_settings("context-encoder-ms"), "data.size=32",
                         "losses.adversarial=0", "losses.feature_matching=0"))
    with pytest.raises(ConfigError, match="must be one of"):
        validate(tiny_config(photos, tmp_path / "r", "model.image.architecture=pconv-unet"))


def test_local_texture_loss_punishes_a_blur_not_a_shift_of_colour() -> None:
    torch.manual_seed(0)
    truth = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    blurred = torch.nn.functional.avg_pool2d(truth, 5, 1, 2)
    assert local_texture_loss(truth, truth, mask).item() == 0
    assert local_texture_loss((truth + 0.2), truth, mask).item() == pytest.approx(0, abs=1e-6)  # gradients equal
    assert local_texture_loss(blurred, truth, mask).item() > 0.1
    outside = truth.clone()
    outside[..., :4, :] = 0  # far from the hole: not counted
    assert local_texture_loss(outside, truth, mask).item() == 0


@pytest.mark.parametrize("name", ["pconv-unet", "deepgin", "context-encoder-ms", "glcic"])
def test_each_architecture_has_a_config_that_selects_it(name: str, tmp_path: Path) -> None:
    from trainer.config import apply_overrides, load_config, resolve_config_path

    config = validate(apply_overrides(load_config(resolve_config_path(name)),
                                      [f"data.train_dir='{tmp_path}'", f"run.out='{tmp_path / 'r'}'"]))
    assert config.stage.name == ("glcic" if name == "glcic" else "completion")
    assert config.model.glcic.architecture == name
    assert config.data.size == 128 and config.optim.batch_size == 8
    net = build_network(name, config.model.glcic.arguments)
    assert 0.5e6 < sum(p.numel() for p in net.parameters()) < 3e6  # CPU size
    if name == "context-encoder-ms":  # its recipe: the two-scale discriminator and the hole's texture loss
        assert config.losses.adversarial > 0 and config.losses.local_texture > 0
