"""The structure model's training path: lama-ffc on the image stage with L1, MS-SSIM, the low-band loss and edge
drop-out, validated against the harmonic prefill, exported and filled through the engine with the trainer's own
outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.model_files import load_model, read_card
from engine.networks.prefill import harmonic_fill
from tests.trainer.conftest import tiny_config
from trainer.config import ConfigError, apply_overrides, validate
from trainer.export import ExportError, export_run
from trainer.loop import train
from trainer.losses import low_band_l1, ms_ssim
from trainer.records import read_records
from trainer.stages import drop_hole_edges
from trainer.validation import validate_stage

FFC = ["model.image.architecture=lama-ffc", "model.image.arguments.base_channels=8",
       "model.image.arguments.residual_blocks=1"]


def test_ms_ssim_is_one_for_identical_images_and_falls_with_noise() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    assert ms_ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    slight, strong = ms_ssim(x, (x + 0.05 * torch.randn_like(x)).clamp(0, 1)), ms_ssim(x, torch.rand_like(x))
    assert 1.0 > slight.item() > strong.item() > 0
    y = x.clone().requires_grad_(True)
    (1 - ms_ssim(y, x * 0.5)).backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_low_band_loss_scores_colour_and_shape_but_hardly_fine_detail() -> None:
    torch.manual_seed(0)
    truth = 0.25 + 0.5 * torch.rand(2, 3, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2).float() * 0.2 - 0.1
    detail_only = low_band_l1(truth + checker * mask, truth, mask)  # mean |error| 0.1, all of it fine detail
    wrong_colour = low_band_l1(truth + 0.1 * mask, truth, mask)  # the same mean |error|, all of it low band
    assert low_band_l1(truth, truth, mask).item() == 0.0
    assert wrong_colour.item() > 0.03 and detail_only.item() < wrong_colour.item() / 50
    assert low_band_l1(truth + 0.1, truth, torch.zeros_like(mask)).item() == 0.0  # no hole, nothing to score
    fill = truth.clone().requires_grad_(True)
    low_band_l1(fill * 0.5, truth, mask).backward()
    assert torch.isfinite(fill.grad).all() and fill.grad[..., 16:48, 16:48].abs().sum() > 0


class _HarmonicStage:
    """A stand-in stage that fills every hole with the harmonic prefill."""

    device = torch.device("cpu")
    produces_edges = False

    def infer(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"image": harmonic_fill(batch["image"], batch["mask"])}


def test_validation_scores_the_low_band_beside_the_harmonic_reference() -> None:
    torch.manual_seed(0)
    rows = torch.linspace(0, 1, 64)[:, None].expand(64, 64)
    items = []
    for k in range(3):
        image = torch.stack([rows, rows.T, 0.5 * torch.ones(64, 64)]) * (0.6 + 0.1 * k)
        mask = torch.zeros(1, 64, 64)
        mask[:, 20:40, 10 + 5 * k:40 + 5 * k] = 1
        items.append({"image": image, "mask": mask, "bucket": "rect"})
    table, _ = validate_stage(_HarmonicStage(), items)
    row = table["rect"]
    # The stand-in is the harmonic fill itself, so it scores exactly the reference; on smooth ramps, highly.
    assert row["lowband_psnr"] == pytest.approx(row["harmonic_lowband_psnr"], abs=1e-6)
    assert row["lowband_psnr"] > 35 and row["count"] == 3


def test_the_structure_stage_validates_without_the_holes_edges(photos: Path, tmp_path: Path) -> None:
    from trainer.distributed import DistContext
    from trainer.stages import build_stage

    config = tiny_config(photos, tmp_path / "run", "stage.name=structure", "losses.adversarial=0",
                         "losses.feature_matching=0", *FFC)
    stage = build_stage(validate(config), DistContext())
    seen: list[torch.Tensor] = []
    net = stage.parts["image"].inference_generator()
    net.register_forward_hook(lambda module, args, out: seen.append(args[1].clone()))
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    known = torch.zeros(1, 1, 32, 32)
    known[..., 4, :] = 1  # an edge of the known area; the truth's map (the target) is all edges
    batch = {"image": torch.rand(1, 3, 32, 32), "edges": torch.ones(1, 1, 32, 32), "known_edges": known, "mask": mask}
    out = stage.infer(batch)
    assert torch.equal(seen[0], known) and torch.equal(out["edges"], known)  # known edges only, as a fill has
    assert out["image"].shape == (1, 3, 32, 32)


def test_the_training_guide_is_the_known_edges_around_the_hole_and_the_truth_inside(photos: Path,
                                                                                    tmp_path: Path) -> None:
    from trainer.distributed import DistContext
    from trainer.stages import build_stage

    config = tiny_config(photos, tmp_path / "run", "stage.name=structure", "losses.adversarial=0",
                         "losses.feature_matching=0", *FFC)
    stage = build_stage(validate(config), DistContext())
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    known = torch.zeros(1, 1, 32, 32)
    known[..., 4, :] = 1
    batch = {"image": torch.rand(1, 3, 32, 32), "edges": torch.ones(1, 1, 32, 32), "known_edges": known, "mask": mask}
    guide = stage.guide(batch)
    assert torch.equal(guide * (1 - mask), known) and torch.equal(guide * mask, mask)


def test_ffc_generators_train_in_nhwc_and_compute_what_the_nchw_layout_does(photos: Path, tmp_path: Path) -> None:
    from engine.networks import build_network
    from trainer.distributed import DistContext
    from trainer.stages import build_stage

    config = tiny_config(photos, tmp_path / "run", "stage.name=structure", "losses.adversarial=0",
                         "losses.feature_matching=0", *FFC)
    part = build_stage(validate(config), DistContext()).parts["image"]
    for net in (part.generator, part.ema):
        convs = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[1] > 1]
        assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    plain = build_network(part.network.architecture, part.network.arguments).eval()
    plain.load_state_dict(part.ema.state_dict())
    assert plain.head.weight.is_contiguous()  # the NCHW copy of the same weights
    x = torch.rand(2, 3, 32, 40)
    mask = torch.zeros(2, 1, 32, 40)
    mask[..., 8:24, 8:30] = 1
    edges = (torch.rand(2, 1, 32, 40) > 0.8).float()
    with torch.no_grad():
        assert torch.allclose(part.ema(x, edges, mask), plain(x, edges, mask), atol=1e-5)


def test_edge_dropout_only_touches_edges_inside_the_hole() -> None:
    torch.manual_seed(0)
    edges = torch.ones(64, 1, 32, 32)
    mask = torch.zeros(64, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    out = drop_hole_edges(edges, mask, 0.25)
    assert torch.equal(out * (1 - mask), edges * (1 - mask))
    kept = (out * mask).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3))
    assert (kept == 0).any() and (kept == 1).any() and ((kept > 0) & (kept < 1)).any()
    assert torch.equal(drop_hole_edges(edges, mask, 0.0), edges)
    # The structure model's rate: most samples lose every hole edge, the rest split between partial and full.
    many = torch.ones(2000, 1, 32, 32)
    hole = torch.zeros(2000, 1, 32, 32)
    hole[..., 8:24, 8:24] = 1
    kept = (drop_hole_edges(many, hole, 0.7) * hole).sum(dim=(1, 2, 3)) / hole.sum(dim=(1, 2, 3))
    none, full = (kept == 0).float().mean().item(), (kept == 1).float().mean().item()
    assert 0.65 < none < 0.76 and 0.11 < full < 0.19
    assert (drop_hole_edges(many, hole, 1.0) * hole).sum() == 0


def test_switching_the_architecture_drops_the_old_ones_arguments(tmp_path: Path) -> None:
    config = apply_overrides(tiny_config(tmp_path, tmp_path / "run"), ["model.image.architecture=lama-ffc"])
    assert config.model.image.arguments == {}
    config = apply_overrides(config, ["model.image.arguments.base_channels=8"])
    assert config.model.image.arguments == {"base_channels": 8}
    with pytest.raises(ConfigError, match="must be one of"):
        validate(apply_overrides(config, ["model.image.architecture=glcic"]), need_data=False)
    with pytest.raises(ConfigError, match="edge_dropout"):
        validate(apply_overrides(config, ["data.edge_dropout=1.5"]), need_data=False)


@pytest.mark.parametrize("half", [False, True])
def test_lama_ffc_trains_exports_and_the_engine_fills_with_the_trainers_outputs(
        photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, half: bool) -> None:
    layout = [f"model.image.arguments.half_resolution={str(half).lower()}"] if half else []
    summary = train(tiny_config(photos, tmp_path / "run", "optim.steps=3", "stage.name=image", "schedule.log_every=1",
                                "losses.ms_ssim=1.0", "losses.low_band=2.0", "losses.adversarial=0",
                                "losses.feature_matching=0", "data.edge_dropout=0.25", *FFC, *layout))
    assert summary.status == "completed"
    losses = [r["losses"] for r in read_records(tmp_path / "run", "train")]
    assert all("image/ms_ssim" in row and "image/g_low_band" in row and "image/g_adv" not in row for row in losses)
    result = export_run(tmp_path / "run", tmp_path / "out", name="s", companion="s-edge")
    from tests.trainer.test_loop import _engine_fills_with, _save_tiny_edge_model

    _save_tiny_edge_model(tmp_path / "out", "s-edge")
    _engine_fills_with(tmp_path / "out", "s-image", uses_edges=True, monkeypatch=monkeypatch)

    module, card = load_model(result.models[0])
    assert card.architecture == "lama-ffc"
    assert card.arguments == {"base_channels": 8, "residual_blocks": 1, **({"half_resolution": True} if half else {})}
    assert module.half_resolution is half
    from trainer.checkpoints import latest_checkpoint, load_checkpoint

    state = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))["model"]["parts"]["image"]["ema"]
    from engine.networks import build_network

    trainer_net = build_network("lama-ffc", card.arguments).eval()
    trainer_net.load_state_dict(state)
    x = torch.rand(1, 3, 40, 48)
    mask = torch.zeros(1, 1, 40, 48)
    mask[..., 8:24, 10:30] = 1
    edges = (torch.rand(1, 1, 40, 48) > 0.8).float()
    with torch.no_grad():
        assert torch.equal(module(x, edges, mask), trainer_net(x, edges, mask))
    assert np.isfinite(summary.validation["all"]["hole_psnr"])
    assert {"lowband_psnr", "harmonic_lowband_psnr"} <= set(summary.validation["all"])
    with pytest.raises(ExportError, match=r"cannot be written as ONNX.*safetensors"):  # its FFT has no ONNX op
        export_run(tmp_path / "run", tmp_path / "onnx", name="o", companion="s-edge", onnx=True)
    assert (tmp_path / "onnx" / "o-image.safetensors").is_file()
    assert not list((tmp_path / "onnx").glob("*.onnx*"))  # no partial graph left behind


def test_a_model_initialised_from_another_says_so_in_its_card(photos: Path, tmp_path: Path) -> None:
    from tests.trainer.conftest import save_tiny_pair

    _, image = save_tiny_pair(tmp_path / "models")
    base = read_card(image.with_suffix(".json"))
    train(tiny_config(photos, tmp_path / "run", "optim.steps=1", "stage.name=image",
                      f"init.image='{image.with_suffix('.json')}'"))
    # The init file is then replaced by a later model (as when a run's export is bundled over its own start):
    # the card still names the model the run really started from.
    replaced = image.with_suffix(".json")
    replaced.write_text(replaced.read_text().replace(f'"steps": {base.steps}', '"steps": 98765'))
    assert read_card(replaced).steps == 98765
    result = export_run(tmp_path / "run", tmp_path / "out", name="s", companion=base.companion)
    card = read_card(result.models[0].with_suffix(".json"))
    assert card.steps == 1 and f"Initialised from the model {base.name!r} ({base.steps} steps" in card.description


def test_cards_name_no_absolute_path_of_this_machine() -> None:
    from engine import paths
    from trainer.export import portable_command, portable_path

    shared = paths.REPO_ROOT.parent / "shared" / "data" / "train"
    assert portable_path(shared) == "../shared/data/train"
    assert portable_path(paths.REPO_ROOT / "resources" / "models" / "x.json") == "resources/models/x.json"
    outside = "/proc/nowhere/else/photos"  # beside no checkout
    assert portable_path(outside) == ".../else/photos"
    command = (f"inpaint-train --data {shared} --set data.masks.irregular_dir=/proc/a/b/masks "
               "--out /proc/x/runs/s --lr 1e-4")
    assert portable_command(command) == ("inpaint-train --data ../shared/data/train --set "
                                         "data.masks.irregular_dir=.../b/masks --out .../runs/s --lr 1e-4")


class _CheckerStage:
    """A stand-in stage whose fill is the truth plus a fine checkerboard (pure detail, no low-band error)."""

    device = torch.device("cpu")
    produces_edges = False

    def infer(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        size = batch["image"].shape[-1]
        checker = ((torch.arange(size)[:, None] + torch.arange(size)[None, :]) % 2).float() * 0.3 - 0.15
        return {"image": (batch["image"] + checker).clamp(0, 1)}


def test_validation_blurs_the_low_band_by_each_item_s_own_sigma() -> None:
    image = 0.5 * torch.ones(3, 64, 64)
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:48, 16:48] = 1
    items = [{"image": image, "mask": mask, "bucket": "fine", "lowband_sigma": 0.5},
             {"image": image, "mask": mask, "bucket": "coarse", "lowband_sigma": 3.0}]
    table, _ = validate_stage(_CheckerStage(), items)
    # At 0.5 px the checkerboard survives the blur; at 3 px it averages out.
    assert table["coarse"]["lowband_psnr"] > table["fine"]["lowband_psnr"] + 10
