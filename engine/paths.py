"""Where things live: bundled resources, the user's data folder (models, sessions, settings, runs).

``INPAINT_STUDIO_HOME`` overrides the user data folder (tests point it at a temporary folder);
``INPAINT_STUDIO_BUNDLED_MODELS`` overrides the bundled model folder.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

from platformdirs import user_data_dir

APP_NAME = "inpaint-studio"
log = logging.getLogger(__name__)
_WARNED: set[str] = set()
REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout (in a wheel install: site-packages)


def user_home() -> Path:
    """The user's data folder (created on demand)."""
    override = os.environ.get("INPAINT_STUDIO_HOME")
    path = Path(override) if override else Path(user_data_dir(APP_NAME, appauthor=False))
    _try_mkdir(path)
    return path


def _try_mkdir(path: Path) -> None:
    """Create ``path`` if it can be; a file, a broken link or a read-only disk there is left for the reader or
    writer of that folder to report (built-in fills need no folder at all)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if str(path) not in _WARNED:  # once per folder and process, not at every lookup
            _WARNED.add(str(path))
            if path.is_symlink() and not path.exists():
                why = "it is a symbolic link that leads nowhere or in a loop"
            elif path.exists() and not path.is_dir():
                why = "it is a file, not a folder"
            else:
                why = str(exc.strerror or exc)
            log.warning("cannot use the folder %s (%s); what it would hold is skipped", path, why)


def user_models_dir() -> Path:
    """Models the user trained or fine-tuned; they win over bundled models of the same name."""
    path = user_home() / "models"
    _try_mkdir(path)
    return path


def bundled_models_dir() -> Path:
    """Models shipped with the program: the ``models`` folder of the ``resources`` package, found through
    ``importlib.resources`` (the checkout's ``resources/models`` in a checkout or an editable install, the
    installed package data in a wheel install)."""
    override = os.environ.get("INPAINT_STUDIO_BUNDLED_MODELS")
    if override:
        return Path(override)
    try:
        return Path(str(resources.files("resources") / "models"))
    except ModuleNotFoundError:  # an editable install made before ``resources`` was a package: its checkout
        return REPO_ROOT / "resources" / "models"

