"""Engine test fixtures: tiny randomly initialised models saved through the real model-file format."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from engine.model_files import ModelCard, load_weights, save_model
from engine.networks import CompletionNetwork, EdgeGenerator, ImageGenerator

TINY_RESOLUTION = 64


def write_tiny_models(folder: Path, seed: int = 0, prefix: str = "", description: str = "") -> Path:
    """Write ``edgeconnect-edge``, ``edgeconnect-image`` (its companion is the edge model) and ``glcic``."""
    torch.manual_seed(seed)
    # Two residual blocks (one gave the image model a 1408-byte safetensors header, whose length prefix
    # b"\x80\x05" older pickle sniffing mistook for a pickle; kept so the fixture never depends on that).
    args = {"base_channels": 8, "residual_blocks": 2}
    common = {"resolution": TINY_RESOLUTION, "data": "random init (tests)", "description": description}
    save_model(EdgeGenerator(**args).eval(),
               ModelCard(f"{prefix}edgeconnect-edge", "edgeconnect-edge", args, "edge", **common), folder)
    save_model(ImageGenerator(**args).eval(),
               ModelCard(f"{prefix}edgeconnect-image", "edgeconnect-image", args, "image",
                         companion=f"{prefix}edgeconnect-edge", **common), folder)
    save_model(CompletionNetwork(base_channels=8).eval(),
               ModelCard(f"{prefix}glcic", "glcic", {"base_channels": 8}, "completion", **common), folder)
    for path in folder.glob(f"{prefix}*.safetensors"):
        load_weights(path)  # fail here, clearly, if a written file cannot be read back
    return folder


@pytest.fixture(scope="session")
def _tiny_models_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("tiny_models_master"))


@pytest.fixture
def tiny_models_dir(_tiny_models_master: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh folder with a tiny random edge+image pair (resolution 64) and a tiny GLCIC model.

    ``INPAINT_STUDIO_BUNDLED_MODELS`` points at it, so ``Engine()`` and ``ModelStore()`` find them as bundled.
    """
    folder = tmp_path / "bundled_models"
    shutil.copytree(_tiny_models_master, folder)
    monkeypatch.setenv("INPAINT_STUDIO_BUNDLED_MODELS", str(folder))
    return folder
