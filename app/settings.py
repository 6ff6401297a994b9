"""Preferences: a small JSON file in the user data folder, written atomically, tolerant of damage.

A corrupt or unreadable ``settings.json`` is moved aside to ``settings.json.bak`` and the defaults are
used; :attr:`Settings.load_warning` then says what happened so the window can tell the user.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import write_text_atomic
from engine.paths import user_home

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1
MAX_RECENT = 10


def settings_path() -> Path:
    """Where the preferences live: ``user_home()/settings.json``."""
    return user_home() / "settings.json"


def default_cpu_threads() -> int:
    """Torch CPU threads by default: every usable core but one, so the window keeps a core for itself."""
    from engine.devices import cpu_thread_cap

    return cpu_thread_cap()


@dataclass
class Settings:
    """The user's preferences. Unknown keys in the file are ignored; bad values fall back to defaults.

    Unknown keys include ones older versions wrote (``brush_hardness``: masks are on/off, so it was never
    used); they load without a warning and are dropped at the next save.
    """

    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    default_model: str = "default"  # a name from Engine.models(), or "default"
    brush_size: int = 40
    mask_color: str = "#ff285a"  # shown semi-transparent over the photo
    mask_opacity: float = 0.47
    clear_mask_after_fill: bool = True
    texture_strength: float = 1.0  # texture copied from the photo on structure fills: 0 = structure only, 1 = full
    cpu_threads: int = field(default_factory=default_cpu_threads)
    recent_files: list[str] = field(default_factory=list)
    autosave_seconds: float = 3.0  # debounce after an edit before the session is autosaved
    version: int = SETTINGS_VERSION

    load_warning: str | None = field(default=None, compare=False, repr=False)
    path: Path | None = field(default=None, compare=False, repr=False)

    # ----------------------------------------------------------------- persistence
    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Settings:
        """Read the preferences; a missing file gives defaults, a damaged one is kept as ``.bak``."""
        path = Path(path) if path is not None else settings_path()
        settings = cls()
        settings.path = path
        if not path.exists():
            return settings
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("the file does not hold a JSON object")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            backup = path.with_name(path.name + ".bak")
            try:
                os.replace(path, backup)
                kept = f"; the damaged file was kept as {backup}"
            except OSError:
                kept = ""
            settings.load_warning = f"The preferences file {path} could not be read ({exc}). Defaults are used{kept}."
            log.warning(settings.load_warning)
            return settings
        settings._apply(raw)
        return settings

    def save(self) -> None:
        """Write the preferences atomically (a crash mid-write leaves the old file)."""
        target = self.path or settings_path()
        write_text_atomic(target, json.dumps(self.to_dict(), indent=2) + "\n")

    def to_dict(self) -> dict[str, Any]:
        skip = {"load_warning", "path"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}

    def _apply(self, raw: dict[str, Any]) -> None:
        """Copy values of the right type from ``raw``; anything else keeps its default."""
        defaults = Settings()
        for f in dataclasses.fields(self):
            if f.name in ("load_warning", "path", "version") or f.name not in raw:
                continue
            value, default = raw[f.name], getattr(defaults, f.name)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                value = float(value) if ok else value
            elif isinstance(default, list):
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            else:
                ok = isinstance(value, str)
            if ok:
                setattr(self, f.name, value)
            else:
                log.warning("settings: ignoring %s=%r (bad type)", f.name, value)
        self.brush_size = max(1, min(2000, self.brush_size))
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", self.mask_color):
            log.warning("settings: ignoring mask_color=%r (not #RRGGBB)", self.mask_color)
            self.mask_color = Settings.mask_color
        self.mask_opacity = max(0.05, min(1.0, self.mask_opacity))
        if not 0.0 <= self.texture_strength <= 1.0:  # also NaN
            log.warning("settings: ignoring texture_strength=%r (not between 0 and 1)", self.texture_strength)
            self.texture_strength = Settings.texture_strength
        from engine.devices import cpu_cores

        self.cpu_threads = max(1, min(cpu_cores(), self.cpu_threads))  # more only slows torch down
        self.recent_files = self.recent_files[:MAX_RECENT]

    # ----------------------------------------------------------------- recent files
    def add_recent(self, path: str | os.PathLike[str]) -> None:
        """Put ``path`` first in the recent files list (no duplicates, at most ``MAX_RECENT``)."""
        text = str(Path(path).resolve())
        self.recent_files = [text] + [p for p in self.recent_files if p != text]
        del self.recent_files[MAX_RECENT:]

    def existing_recent(self) -> list[str]:
        """Recent files that still exist; the others are dropped from the list (they took up its slots)."""
        self.recent_files = [p for p in self.recent_files if Path(p).is_file()]
        return list(self.recent_files)
