"""Starting a run from existing model files (fine-tuning), and the frozen edge model of ``image-on-predicted``.

A model file's card fixes the network's arguments: they replace the config's for that part, so the
weights fit and the saved ``config.toml`` of the run says what was really trained.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from engine.errors import ModelFileError
from engine.model_files import ModelCard, load_weights, read_card
from trainer.config import STAGE_ARCHITECTURES, ConfigError, NetworkConfig, TrainConfig

CARD_STAGE_TO_PART = {"edge": "edge", "image": "image", "completion": "glcic"}


def part_of_model(path: str | Path) -> str:
    """Which config part (``edge``, ``image``, ``glcic``) a model file belongs to, from its card."""
    try:
        card = read_card(path)
    except ModelFileError as exc:
        raise ConfigError(f"--init: {exc}") from None
    return CARD_STAGE_TO_PART[card.stage]


def _card(part: str, path: str) -> ModelCard:
    try:
        card = read_card(path)
    except ModelFileError as exc:
        raise ConfigError(f"init.{part}: {exc}") from None
    allowed = STAGE_ARCHITECTURES[part]
    if card.architecture not in allowed:
        raise ConfigError(f"init.{part}: {path} is a {card.architecture} model, not one of {', '.join(allowed)}")
    return card


def apply_init_arguments(config: TrainConfig) -> tuple[TrainConfig, dict[str, ModelCard], list[str]]:
    """Copy the init models' architecture arguments into the config; returns (config, cards, messages)."""
    cards: dict[str, ModelCard] = {}
    messages: list[str] = []
    model = config.model
    for part in ("edge", "image", "glcic"):
        path = getattr(config.init, part)
        if not path:
            continue
        card = _card(part, path)
        cards[part] = card
        net: NetworkConfig = getattr(model, part)
        if net.arguments != card.arguments:
            messages.append(f"{part} network arguments taken from {Path(path).name}: {card.arguments}")
        model = dataclasses.replace(model, **{part: NetworkConfig(card.architecture, dict(card.arguments))})
    return dataclasses.replace(config, model=model), cards, messages


def init_weights(config: TrainConfig, part: str) -> dict[str, torch.Tensor]:
    """The tensors of ``init.<part>`` (a clear ``ConfigError`` if unreadable)."""
    path = getattr(config.init, part)
    try:
        return load_weights(path)
    except ModelFileError as exc:
        raise ConfigError(f"init.{part}: {exc}") from None
