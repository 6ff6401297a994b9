"""Tiny generated photos and a tiny-network config for the trainer-loop tests (fast on a 2-core CPU)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from trainer.config import TrainConfig, apply_overrides

TINY = [
    "data.size=32",
    "data.val_images=1",
    "optim.batch_size=2",
    "optim.workers=0",
    "model.edge.arguments.base_channels=8",
    "model.edge.arguments.residual_blocks=1",
    "model.image.arguments.base_channels=8",
    "model.image.arguments.residual_blocks=1",
    "model.glcic.arguments.base_channels=8",
    "model.discriminator_channels=8",
    "schedule.log_every=2",
    "schedule.validate_every=1000",
    "schedule.checkpoint_every=1000",
    # Validation on rectangles and strokes only: no dependence on the shared NVIDIA mask folder.
    "data.val_irregular_dir=''",
]


def write_photos(folder: Path, count: int = 6, h: int = 40, w: int = 48) -> Path:
    """Small synthetic photos with gradients and shapes (so Canny finds edges)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(xx * 5 + 30 * i) % 256, (yy * 6) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
        cv2.rectangle(img, (6 + i, 8), (26 + i, 28), (230, 40, 20), -1)
        cv2.circle(img, (34, 14 + i), 6, (20, 200, 90), -1)
        cv2.imwrite(str(folder / f"photo{i}.png"), img)
    return folder


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_photos(tmp_path_factory.mktemp("photos"))


def tiny_config(photos: Path, out: Path, *overrides: str) -> TrainConfig:
    """A validated-later config of tiny networks on ``photos`` writing to ``out``."""
    return apply_overrides(TrainConfig(), [*TINY, f"data.train_dir='{photos}'", f"run.out='{out}'", *overrides])


def save_tiny_pair(folder: Path, **image_card: str) -> tuple[Path, Path]:
    """A random 8-channel edge-guided pair ``t-edge`` + ``t-image`` (resolution 32) in ``folder``; extra
    ``image_card`` fields (``data``, ``license``) go on the image model's card. Returns the weights' paths."""
    import torch

    from engine.model_files import ModelCard, save_model
    from engine.networks import EdgeGenerator, ImageGenerator

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    edge_args = {"base_channels": 8, "residual_blocks": 1, "use_spectral_norm": True}
    image_args = {"base_channels": 8, "residual_blocks": 1, "use_spectral_norm": False}
    edge = save_model(EdgeGenerator(**edge_args), ModelCard("t-edge", "edgeconnect-edge", edge_args, "edge", 32),
                      folder)
    image = save_model(ImageGenerator(**image_args), ModelCard("t-image", "edgeconnect-image", image_args, "image", 32,
                                                               companion="t-edge", **image_card), folder)
    return edge, image
