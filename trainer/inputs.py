"""From the config to batches: the training dataset and loader, and the fixed validation items.

Uses trainer-parts' datasets (``trainer.data``); this module only chooses which, and feeds them
``(epoch, index)`` pairs from the resumable sampler so each item's random draws are reproducible in any
worker and after a resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from engine.devices import cpu_cores
from trainer.config import TrainConfig
from trainer.data import DataError, InternalPhotoDataset, PhotoDataset, ValidationSet, find_images, read_photo
from trainer.distributed import DistContext
from trainer.holdout import holdout_items, place_holes
from trainer.masks import MaskGenerator, read_mask_file
from trainer.photos import shared_nvidia_dir

INTERNAL_VAL_SEED = 1_000_003
INTERNAL_LENGTH = 4096
MAX_HOLDOUT_HOLES = 4


class EpochIndexed(Dataset):
    """Wraps a dataset with ``set_epoch``: item ``(epoch, index)`` sets the epoch, then fetches ``index``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        if getattr(self.dataset, "epoch", None) != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


def edge_sigma(config: TrainConfig) -> float | tuple[float, float]:
    rng = config.data.edge_sigma_range
    return (rng[0], rng[1]) if rng else config.data.edge_sigma


def split_photos(config: TrainConfig) -> tuple[list[Path], list[Path], list[str]]:
    """(training photos, validation photos, messages). Without ``data.val_dir`` a tenth of the training
    photos (at most ``data.val_images``) is held out; with fewer than 10 photos they are shared, and said so."""
    photos = find_images(config.data.train_dir)
    if not photos:
        raise DataError(f"no photos found in {config.data.train_dir}")
    if config.data.val_dir:
        train, val = Path(config.data.train_dir).resolve(), Path(config.data.val_dir).resolve()
        if val == train or train in val.parents or val in train.parents:
            raise DataError(f"data.val_dir {config.data.val_dir} and data.train_dir {config.data.train_dir} overlap: "
                            "validation photos would also be trained on; use two separate folders")
        val_photos = find_images(config.data.val_dir)
        if not val_photos:
            raise DataError(f"data.val_dir: no photos found in the validation folder {config.data.val_dir}")
        return photos, val_photos, []
    held = min(config.data.val_images, len(photos) // 10)
    if held == 0:
        return photos, photos, [f"only {len(photos)} photos: validating on training photos (set data.val_dir "
                                "for an honest validation)"]
    # The last photos that decode are held out (a damaged file must not leave validation without photos).
    val: list[Path] = []
    for path in reversed(photos):
        if len(val) == held:
            break
        try:
            read_photo(path)
        except Exception:
            continue
        val.append(path)
    val.reverse()
    held_out = set(val)
    train = [p for p in photos if p not in held_out]
    return train, val, [f"validation: {len(val)} photos held out of {config.data.train_dir}"]


def read_internal(config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The photo and the user's mask (white = hole) of internal fine-tuning, the mask resized to the photo."""
    try:
        rgb = read_photo(config.internal.photo)
    except Exception as exc:
        raise DataError(f"internal.photo: cannot read {config.internal.photo} ({exc})") from None
    mask = read_mask_file(config.internal.mask)
    if mask is None:
        raise DataError(f"internal.mask: cannot read {config.internal.mask} as a mask image")
    if mask.shape != rgb.shape[:2]:
        import cv2

        mask = cv2.resize(mask.astype(np.uint8), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return rgb, mask


def internal_windows(config: TrainConfig) -> tuple[int, int] | None:
    """Window sides (photo px) of the internal crops for ``internal.scale``; None = the dataset's default."""
    if not config.internal.scale:
        return None
    low, high = config.internal.scale
    return max(1, round(config.data.size / high)), max(1, round(config.data.size / low))


def internal_holdout(config: TrainConfig, user: np.ndarray) -> np.ndarray:
    """The held-out holes of an internal fine-tune (``trainer.holdout``): one per validation item, at most
    ``MAX_HOLDOUT_HOLES``, the same for training and validation (a fixed seed)."""
    count = min(config.data.val_images, MAX_HOLDOUT_HOLES)
    if count == 0:
        return np.zeros_like(user)
    return place_holes(user, count, np.random.default_rng(INTERNAL_VAL_SEED))


def training_dataset(config: TrainConfig, train_photos: list[Path] | None) -> Dataset:
    """The dataset the loop samples from (photos of a folder, or crops of the one photo being edited)."""
    masks = MaskGenerator(config.data.masks)
    if config.internal.photo:
        rgb, user = read_internal(config)
        unseen = user | internal_holdout(config, user)
        return InternalPhotoDataset(rgb, unseen, config.data.size, masks, edge_sigma(config), seed=config.optim.seed,
                                    length=INTERNAL_LENGTH, windows=internal_windows(config))
    return PhotoDataset(train_photos, config.data.size, masks, edge_sigma(config),
                        boundaries_dir=config.data.boundaries_dir or None, seed=config.optim.seed,
                        augment=config.data.augment, max_scale=config.data.max_scale)


def validation_items(config: TrainConfig, val_photos: list[Path] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The fixed validation items (each with a ``bucket``) and notes about them."""
    count = config.data.val_images
    if count == 0:
        return [], ["validation off (data.val_images = 0)"]
    if config.internal.photo:
        rgb, user = read_internal(config)
        low, high = config.internal.scale or (1.0, 1.0)
        items = holdout_items(rgb, user, internal_holdout(config, user), config.data.size, config.data.edge_sigma,
                              scale=float(np.sqrt(low * high)))
        for item in items:
            item["bucket"] = "held-out holes in the known area"
        if items:
            return items, []
        data = InternalPhotoDataset(rgb, user, config.data.size, MaskGenerator(config.data.masks),
                                    config.data.edge_sigma, seed=INTERNAL_VAL_SEED, length=count)
        items = [dict(data[i], bucket="synthetic holes in the known area") for i in range(count)]
        return items, ["no room for held-out holes in the photo's known area: validating on crops it also "
                       "trains on, so the figures are optimistic"]
    irregular: str | None = config.data.val_irregular_dir
    if irregular == "auto":
        nvidia = shared_nvidia_dir()
        irregular = config.data.masks.irregular_dir or (str(nvidia) if nvidia.is_dir() else None)
    sigma = config.data.edge_sigma
    val = ValidationSet(val_photos, config.data.size, count=count, edge_sigma=sigma,
                        boundaries_dir=config.data.boundaries_dir or None, irregular_dir=irregular or None)
    return [val[i] for i in range(len(val))], list(val.messages)


def worker_count(config: TrainConfig, device: torch.device) -> int:
    """Data-loading processes: as configured, or automatically none on small CPU machines."""
    if config.optim.workers >= 0:
        return config.optim.workers
    cores = cpu_cores()
    if device.type == "cpu" and cores <= 4:
        return 0  # the training step needs every core; loading a 256 px crop is cheap in comparison
    return min(8, max(1, cores // 4))


def make_loader(dataset: Dataset, config: TrainConfig, ctx: DistContext, start_samples: int) -> DataLoader:
    """An endless loader of this rank's share, starting after ``start_samples`` already-drawn samples."""
    sampler = ctx.sampler(dataset, seed=config.optim.seed, start=start_samples)
    workers = worker_count(config, ctx.device)
    return DataLoader(EpochIndexed(dataset), batch_size=config.optim.batch_size, sampler=sampler,
                      num_workers=workers, pin_memory=ctx.device.type == "cuda", drop_last=False,
                      persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None)
