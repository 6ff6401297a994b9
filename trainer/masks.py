"""A configurable mixture of hole-mask generators for training (bool H x W, True = hole).

``MaskConfig`` says how often each kind is drawn; ``MaskGenerator(config)(h, w, rng)`` draws one mask.
All randomness comes from the ``np.random.Generator`` passed in, so a dataset that derives one generator per
item gets the same masks in every worker and after a resume.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import EngineError
from engine.masks import (
    augment_irregular,
    cellular_automata_mask,
    free_form_mask,
    hole_ratio,
    rectangle_mask,
)

KINDS = ("rectangle", "free_form", "irregular", "cellular")
MASK_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


class MaskConfigError(EngineError, ValueError):
    """A mask configuration value is invalid; the message names the key and the problem."""


def _pair(key: str, value: Any, low: float = 0.0, high: float = 1.0) -> list[float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise MaskConfigError(f"{key}: expected a pair of numbers [low, high], got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and low <= lo <= hi <= high):
        raise MaskConfigError(f"{key}: expected [low, high] with {low:g} <= low <= high <= {high:g}, got {value!r}")
    return [lo, hi]


@dataclass
class MaskConfig:
    """Mixture of mask kinds. The four probabilities are relative weights, normalised to sum to 1.

    Only TOML-friendly types (numbers, strings, lists), so the trainer's config can nest it as a table:
    ``irregular_dir`` is a folder of mask images (white = hole), e.g. ``../shared/data/masks/nvidia_irregular``,
    required when ``irregular > 0`` ("" = none). ``ratio_range`` ([low, high]; [] = off) redraws masks whose
    hole ratio falls outside it, up to ``max_redraws`` times (then the closest draw is kept).
    """

    rectangle: float = 0.25
    free_form: float = 0.45
    irregular: float = 0.0
    cellular: float = 0.3
    irregular_dir: str = ""
    rectangle_side_range: list[float] = field(default_factory=lambda: [0.3, 0.7])
    cellular_ratio_range: list[float] = field(default_factory=lambda: [0.1, 0.5])
    ratio_range: list[float] = field(default_factory=list)
    max_redraws: int = 10

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, prefix: str = "data.masks.") -> MaskConfig:
        """Raise ``MaskConfigError`` naming the first bad value (keys shown as ``prefix + name``)."""
        for kind in KINDS:
            value = getattr(self, kind)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise MaskConfigError(f"{prefix}{kind}: expected a number, got {value!r}")
            if value < 0:
                raise MaskConfigError(f"{prefix}{kind}: a probability must not be negative, got {value!r}")
        if sum(getattr(self, kind) for kind in KINDS) <= 0:
            names = ", ".join(prefix + k for k in KINDS)
            raise MaskConfigError(f"at least one mask probability ({names}) must be above 0")
        self.rectangle_side_range = _pair(prefix + "rectangle_side_range", self.rectangle_side_range)
        self.cellular_ratio_range = _pair(prefix + "cellular_ratio_range", self.cellular_ratio_range)
        if self.ratio_range is None or (isinstance(self.ratio_range, list | tuple) and len(self.ratio_range) == 0):
            self.ratio_range = []
        else:
            self.ratio_range = _pair(prefix + "ratio_range", self.ratio_range)
        if isinstance(self.max_redraws, bool) or not isinstance(self.max_redraws, int) or self.max_redraws < 0:
            raise MaskConfigError(f"{prefix}max_redraws: expected a whole number >= 0, got {self.max_redraws!r}")
        if self.irregular_dir is None:
            self.irregular_dir = ""
        if not isinstance(self.irregular_dir, str | Path):
            raise MaskConfigError(f"{prefix}irregular_dir: expected a folder path, got {self.irregular_dir!r}")
        self.irregular_dir = str(self.irregular_dir)
        return self

    @property
    def probabilities(self) -> dict[str, float]:
        """The normalised probability of each kind."""
        total = sum(getattr(self, kind) for kind in KINDS)
        return {kind: getattr(self, kind) / total for kind in KINDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str = "data.masks.") -> MaskConfig:
        """Build from a plain mapping (a TOML table); unknown keys are a ``MaskConfigError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MaskConfigError(f"unknown mask setting(s): {', '.join(prefix + k for k in unknown)} "
                                  f"(known: {', '.join(sorted(known))})")
        config = cls.__new__(cls)
        for f in fields(cls):
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            setattr(config, f.name, data.get(f.name, default))
        return config.validate(prefix)


def list_mask_files(folder: str | Path) -> list[Path]:
    """Mask image files directly in ``folder`` (sorted by name)."""
    root = Path(folder)
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in MASK_EXTENSIONS)


def read_mask_file(path: str | Path) -> np.ndarray | None:
    """Read a mask image as bool (white / above mid-grey = hole); ``None`` if it cannot be decoded."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None or image.size == 0:
        return None
    return image > 127


class MaskGenerator:
    """Draws masks from the mixture in ``config``: ``generator(h, w, rng) -> bool H x W``.

    The irregular folder is listed once, when the generator is built (an error if it is missing or holds no
    mask image while ``irregular > 0``); files are decoded only when drawn. A file that cannot be decoded is
    replaced by the next readable one and noted in ``unreadable``. The generator pickles cleanly (DataLoader workers).
    """

    def __init__(self, config: MaskConfig | None = None) -> None:
        self.config = config if config is not None else MaskConfig()
        self.config.validate()
        probs = self.config.probabilities
        self.kinds = [k for k in KINDS if probs[k] > 0]
        self.weights = np.array([probs[k] for k in self.kinds], dtype=np.float64)
        self.weights /= self.weights.sum()
        self.irregular_files: list[Path] = []
        self.unreadable: set[Path] = set()
        if probs["irregular"] > 0:
            self.irregular_files = self._list_irregular(self.config.irregular_dir)

    @staticmethod
    def _list_irregular(folder: str | None) -> list[Path]:
        if not folder:
            raise MaskConfigError("data.masks.irregular is above 0 but data.masks.irregular_dir is not set: point it "
                                  "at a folder of mask images (white = hole), or set data.masks.irregular = 0")
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise MaskConfigError(f"data.masks.irregular_dir: irregular mask folder not found: {path} "
                                  "(fix the path or set data.masks.irregular = 0)")
        files = list_mask_files(path)
        if not files:
            raise MaskConfigError(f"data.masks.irregular_dir: no mask images ({', '.join(MASK_EXTENSIONS)}) in {path}")
        return files

    def draw_kind(self, rng: np.random.Generator) -> str:
        """Pick a kind according to the configured probabilities."""
        return self.kinds[int(rng.choice(len(self.kinds), p=self.weights))]

    def generate(self, kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """One mask of the given kind (no ratio filter)."""
        cfg = self.config
        if kind == "rectangle":
            return rectangle_mask(h, w, rng, side_range=cfg.rectangle_side_range)
        if kind == "free_form":
            return free_form_mask(h, w, rng)
        if kind == "cellular":
            return cellular_automata_mask(h, w, rng, ratio_range=cfg.cellular_ratio_range)
        if kind == "irregular":
            return augment_irregular(self._read_irregular(rng), h, w, rng)
        raise ValueError(f"unknown mask kind {kind!r} (known: {', '.join(KINDS)})")

    def _read_irregular(self, rng: np.random.Generator) -> np.ndarray:
        # One draw picks the file; an unreadable one is replaced by the next readable file in order, without
        # touching ``rng`` again, so the result does not depend on which files a worker has already tried.
        files = self.irregular_files
        start = int(rng.integers(len(files)))
        for offset in range(len(files)):
            path = files[(start + offset) % len(files)]
            if path in self.unreadable:
                continue
            mask = read_mask_file(path)
            if mask is not None:
                return mask
            self.unreadable.add(path)
        raise MaskConfigError(f"data.masks.irregular_dir: none of the {len(files)} mask images in "
                              f"{self.config.irregular_dir} could be decoded")

    def __call__(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """Draw a kind, then a mask of it; with ``ratio_range`` set, redraw until the ratio fits."""
        kind = self.draw_kind(rng)
        mask = self.generate(kind, h, w, rng)
        bounds = self.config.ratio_range
        if not bounds:
            return mask
        lo, hi = bounds
        best, best_err = mask, _distance(hole_ratio(mask), lo, hi)
        for _ in range(self.config.max_redraws):
            if best_err == 0:
                break
            mask = self.generate(self.draw_kind(rng), h, w, rng)
            err = _distance(hole_ratio(mask), lo, hi)
            if err < best_err:
                best, best_err = mask, err
        return best


def _distance(ratio: float, lo: float, hi: float) -> float:
    return lo - ratio if ratio < lo else (ratio - hi if ratio > hi else 0.0)
