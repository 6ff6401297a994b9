"""Where things live: bundled resources, the user's data folder (models, sessions, settings, runs).

``INPAINT_STUDIO_HOME`` overrides the user data folder (tests point it at a temporary folder);
``INPAINT_STUDIO_BUNDLED_MODELS`` overrides the bundled model folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

APP_NAME = "inpaint-studio"
REPO_ROOT = Path(__file__).resolve().parents[1]


def user_home() -> Path:
    """The user's data folder (created on demand)."""
    override = os.environ.get("INPAINT_STUDIO_HOME")
    path = Path(override) if override else Path(user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_models_dir() -> Path:
    """Models the user trained or fine-tuned; they win over bundled models of the same name."""
    path = user_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def bundled_models_dir() -> Path:
    """Models shipped with the program (``resources/models``)."""
    override = os.environ.get("INPAINT_STUDIO_BUNDLED_MODELS")
    return Path(override) if override else REPO_ROOT / "resources" / "models"


def shared_data_dir() -> Path:
    """The shared photo and mask collection beside the checkout (``../shared/data``), if present."""
    return REPO_ROOT.parent / "shared" / "data"
