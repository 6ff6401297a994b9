"""Internal fine-tuning: adapt an image model to the one photo being edited.

Training samples are crops of the photo's known area with synthetic holes that avoid the user's mask
(``trainer.data.InternalPhotoDataset``); the user's hole has no ground truth and is left out of the loss.
The image generator is fine-tuned on the edges its edge companion completes in each synthetic hole (the
``image-on-predicted`` stage: the same guide the editor gives it), starting from the chosen model; the edge
companion itself is kept. Defaults are the dialog's (L1 only, no discriminator; crops at the scales the engine
fills the user's mask at). :func:`photo_fill_psnr` measures fills on synthetic holes in the photo's known area,
before and after.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine import metrics
from engine.model_files import load_model, read_card
from engine.networks.edgeconnect import edge_guided_fill
from engine.pixels import tensor_to_uint8
from trainer.config import TrainConfig, apply_overrides
from trainer.data import DataError, InternalPhotoDataset
from trainer.inputs import read_internal
from trainer.loop import AbortCallback, ProgressCallback, RunSummary, train
from trainer.masks import MaskConfig, MaskGenerator

EVAL_SEED = 7_340_033


def internal_config(photo: str | Path, mask: str | Path, image_model: str | Path, out: str | Path,
                    steps: int = 150, size: int = 128, batch_size: int = 4, lr: float = 1e-4,
                    device: str = "auto", adversarial: bool = False, edge_model: str | Path | None = None,
                    scale: list[float] | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """The config of an internal fine-tune of ``image_model`` on ``photo`` (``mask``: white = the user's hole).

    With ``edge_model`` (the pair's edge model) the image generator learns on that model's completed edges
    (``image-on-predicted``), which is what it gets in the editor; without it, on the crops' exact Canny edges.
    ``adversarial=True`` keeps EdgeConnect's discriminator losses (slower; L1 alone gives the PSNR gain).
    ``scale`` ([low, high], crop px per photo px) sets the crops' scales; by default those the engine fills
    ``mask`` at with this model (:func:`engine_scales`).
    """
    card = read_card(image_model)
    if edge_model:
        stage = ["stage.name='image-on-predicted'", f"init.edge={_lit(Path(edge_model).with_suffix('.json'))}"]
    else:
        stage = ["stage.name=image"]
    settings = [
        *stage, f"init.image={_lit(Path(image_model).with_suffix('.json'))}",
        f"internal.photo={_lit(photo)}", f"internal.mask={_lit(mask)}", f"run.out={_lit(out)}",
        f"optim.steps={steps}", f"data.size={size}", f"optim.batch_size={batch_size}", f"optim.lr={lr!r}",
        f"run.device={_lit(device)}", "data.val_images=4", "optim.workers=0",
        f"schedule.validate_every={steps}", f"schedule.checkpoint_every={max(1, steps // 3)}",
        "schedule.keep_best=true",
        f"schedule.log_every={max(1, min(10, steps // 30))}",
        f"run.name={_lit(card.name.removesuffix('-image') + '-photo')}",
    ]
    if not adversarial:
        settings += ["losses.adversarial=0", "losses.feature_matching=0"]
    if scale:
        settings.append(f"internal.scale=[{float(scale[0])!r}, {float(scale[1])!r}]")
    config = apply_overrides(TrainConfig(), settings + list(overrides or []))
    if not config.internal.scale:
        try:  # the mask as training reads it: resized to the photo
            _rgb, user = read_internal(config)
        except (DataError, OSError):  # the trainer names the problem when it starts
            return config
        config.internal.scale = engine_scales(user, card.resolution)
    return config


def engine_scales(user_mask: np.ndarray, resolution: int, jitter: float = 1.25) -> list[float]:
    """[low, high]: the scales (working px per photo px) at which the engine fills ``user_mask``, widened by
    ``jitter`` (never above 1: the engine does not upscale).

    The engine crops each hole with its context margin and shrinks the crop so its long side fits the model's
    working resolution (``engine.regions``, ``engine.resolution``); training crops at those scales teach the
    model the photo's texture as it will see it around the user's hole.
    """
    from engine.regions import find_regions
    from engine.resolution import working_size

    regions = find_regions(np.asarray(user_mask, bool))
    if not regions:
        return [1.0 / jitter, 1.0]
    scales = [max(working_size(r.height, r.width, resolution)) / max(r.height, r.width) for r in regions]
    return [min(scales) / jitter, min(1.0, max(scales) * jitter)]


def _lit(value: object) -> str:
    from trainer.config import toml_value

    return toml_value(str(value))


def finetune_on_photo(photo: str | Path, mask: str | Path, image_model: str | Path, out: str | Path,
                      progress_fn: ProgressCallback | None = None, abort_fn: AbortCallback | None = None,
                      **options: object) -> RunSummary:
    """Run an internal fine-tune (see :func:`internal_config` for ``options``); export with
    ``trainer.export.export_run(out, models_dir, companion=<the base model's edge companion>)``."""
    return train(internal_config(photo, mask, image_model, out, **options), progress_fn, abort_fn)


@torch.no_grad()
def photo_fill_psnr(image_model: str | Path, edge_model: str | Path, photo_rgb: np.ndarray, user_mask: np.ndarray,
                    count: int = 8, size: int = 256, seed: int = EVAL_SEED) -> dict[str, float]:
    """Mean PSNR of fills of synthetic holes in the known area of one photo (``count`` fixed crops).

    The edge model completes the edges inside each hole first, as the engine does. Returns ``hole_psnr``
    (over the synthetic hole) and ``psnr`` (whole crop); the user's own hole is left out of both.
    """
    image_net, _ = load_model(image_model)
    edge_net, _ = load_model(edge_model)
    masks = MaskGenerator(MaskConfig(rectangle=0.5, free_form=0.5, cellular=0.0))
    data = InternalPhotoDataset(photo_rgb, user_mask, size, masks, seed=seed, length=count)
    hole_scores, whole_scores = [], []
    for i in range(count):
        item = data[i]
        image, edges, mask, valid = (item[k][None] for k in ("image", "known_edges", "mask", "valid"))
        _, out = edge_guided_fill(edge_net, image_net, image, item["gray"][None], edges, mask)
        filled = out * mask + image * (1 - mask)
        truth_u8 = tensor_to_uint8(image[0])
        filled_u8 = tensor_to_uint8(filled[0])
        known = valid[0, 0].numpy() > 0.5
        filled_u8[~known] = truth_u8[~known]
        synthetic = (mask[0, 0].numpy() > 0.5) & known
        hole_scores.append(metrics.psnr(filled_u8, truth_u8, synthetic))
        whole_scores.append(metrics.psnr(filled_u8, truth_u8))
    return {"hole_psnr": float(np.nanmean(hole_scores)), "psnr": float(np.nanmean(whole_scores)), "count": count}
