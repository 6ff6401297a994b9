"""Training data: photo folders to (image, gray, edges, mask) samples, a fixed validation set, and crops of one
photo for internal fine-tuning.

Every random choice of an item comes from its own ``np.random.Generator`` seeded by ``(seed, epoch, index)``,
so items are the same in any worker process, in any order, and after a resume. Photos that cannot be read
are skipped and counted, never a crash mid-run.

Item format (all float32 tensors, S = ``size``): ``image`` 3 x S x S in [0, 1], ``gray`` 1 x S x S in [0, 1],
``edges`` 1 x S x S in {0, 1}, ``mask`` 1 x S x S in {0, 1} (1 = hole). The internal dataset adds ``valid``
1 x S x S (1 = ground truth exists, 0 = the user's own hole).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from engine import imageio
from engine.edges import canny_edges, known_edges, to_gray
from engine.errors import EngineError, ImageFileError
from engine.metrics import LOWBAND_SIGMA
from trainer.photos import find_photos

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = imageio.SUPPORTED_EXTENSIONS
MIN_SIDE = 8  # photos with a shorter side are skipped (anything larger is upscaled as needed)
MAX_ATTEMPTS = 10  # substitutes tried for an unreadable photo before giving up on the item

MaskFn = Callable[[int, int, np.random.Generator], np.ndarray]
Sigma = float | Sequence[float]


class DataError(EngineError):
    """The photo folder is unusable (missing, empty, nothing readable); the message says which and why."""


class _Unreadable(Exception):
    """A photo failed to decode while sampling (other errors are real bugs and propagate)."""


# --- finding and reading photos ----------------------------------------------------------------------------

def find_images(root: str | Path) -> list[Path]:
    """The training photos under ``root`` (:func:`trainer.photos.find_photos`: boundary maps are no photos);
    ``DataError`` if not a folder."""
    try:
        return find_photos(root)
    except ImageFileError as exc:
        raise DataError(str(exc)) from None


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode to H x W x 3 uint8 RGB: palette, gray, 16/32-bit and float gray, CMYK; alpha is
    composited onto white."""
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im).astype(np.float64)
        if mode.startswith("I;16") or (mode == "I" and a.max(initial=0) > 255):
            a = a / 257.0
        elif mode == "F" and a.max(initial=0) <= 1.0:
            a = a * 255.0
        gray = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) after the EXIF orientation is applied, from the header alone."""
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    w, h = im.size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def read_photo(path: str | Path, min_short_side: int | None = None) -> np.ndarray:
    """Decode a photo as H x W x 3 uint8 RGB with EXIF orientation applied.

    ``min_short_side`` lets JPEG decoding downscale by a power of two (Pillow ``draft``) while keeping the
    short side at least that long. Raises ``OSError``/``ValueError`` (and friends) when the file is unusable.
    """
    with Image.open(path) as im:
        if min_short_side and im.format == "JPEG":
            im.draft(None, (int(min_short_side), int(min_short_side)))
        im = ImageOps.exif_transpose(im)
        rgb = _to_rgb(im)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"unexpected decoded shape {rgb.shape}")
    return rgb


def _short_side(path: Path) -> int:
    with Image.open(path) as im:
        return min(_oriented_size(im))


def _resize(image: np.ndarray, size: int, interpolation_up: int = cv2.INTER_CUBIC) -> np.ndarray:
    if image.shape[0] == size and image.shape[1] == size:
        return image
    down = image.shape[0] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if down else interpolation_up)


def _resize_edges(edges: np.ndarray, size: int) -> np.ndarray:
    """Resize a bool edge map keeping thin lines: area coverage > 0 when shrinking, nearest when growing."""
    if edges.shape == (size, size):
        return edges
    if edges.shape[0] > size:
        return cv2.resize(edges.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) > 0
    return cv2.resize(edges.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0


def _sigma(edge_sigma: Sigma, rng: np.random.Generator) -> float:
    if isinstance(edge_sigma, int | float):
        return float(edge_sigma)
    lo, hi = (float(v) for v in edge_sigma)
    return float(rng.uniform(lo, hi))


def _check_sigma(edge_sigma: Sigma) -> Sigma:
    if isinstance(edge_sigma, bool):
        raise ValueError(f"edge_sigma must be a number or [low, high], got {edge_sigma!r}")
    if isinstance(edge_sigma, int | float):
        if not math.isfinite(edge_sigma) or edge_sigma < 0:
            raise ValueError(f"edge_sigma must be >= 0, got {edge_sigma!r}")
        return float(edge_sigma)
    values = [float(v) for v in edge_sigma]
    if len(values) != 2 or not 0 <= values[0] <= values[1]:
        raise ValueError(f"edge_sigma range must be [low, high] with 0 <= low <= high, got {edge_sigma!r}")
    return (values[0], values[1])


def _item(rgb: np.ndarray, edges: np.ndarray, mask: np.ndarray, sigma: float, gray: np.ndarray | None = None) -> dict:
    """A sample: ``edges`` is the target edge map of the whole crop; ``known_edges`` is what the engine can feed a
    network at a fill, Canny of the known area alone (``engine.edges.known_edges`` at ``sigma``). The whole
    crop's Canny edges just outside the hole depend on the hole's content (blur and gradient reach a few pixels
    in), so a network fed those learns from pixels a fill never has."""
    gray = to_gray(rgb) if gray is None else gray
    scale = np.float32(1.0 / 255.0)
    hole = np.ascontiguousarray(mask, dtype=bool)
    return {
        "image": torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) * scale),
        "gray": torch.from_numpy(gray[None].astype(np.float32) * scale),
        "edges": torch.from_numpy(np.ascontiguousarray(edges, dtype=np.float32)[None]),
        "known_edges": torch.from_numpy(known_edges(rgb, hole, sigma).astype(np.float32)[None]),
        "mask": torch.from_numpy(hole.astype(np.float32)[None]),
    }


def item_rng(seed: int, epoch: int, index: int, attempt: int = 0) -> np.random.Generator:
    """The generator of one item: a function of (seed, epoch, index, attempt) only."""
    return np.random.default_rng([int(seed), int(epoch), int(index), int(attempt)])


# --- boundary maps -------------------------------------------------------------------------------------------

def _boundary_index(folder: str | Path | None) -> dict[str, Path]:
    if not folder:
        return {}
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"boundary map folder not found: {folder}")
    return {p.stem: p for p in sorted(folder.glob("*.png"))}


def read_boundaries(path: Path, threshold: float) -> np.ndarray:
    """A human boundary map (8-bit, value = share of annotators) as bool: share >= ``threshold``."""
    with Image.open(path) as im:
        share = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    return share >= threshold - 1e-6


# --- the training dataset ------------------------------------------------------------------------------------

class PhotoDataset(Dataset):
    """Random training samples from a list of photos (or a folder, searched with :func:`find_images`).

    Per item: the short side is scaled to a uniform length in ``[size, 1.5 * size]`` (photos smaller than
    ``size`` are upscaled), a random ``size`` square is cropped and flipped horizontally half the time; with
    ``augment=False`` the short side is scaled to ``size``, the centre is cropped and nothing is flipped.
    Edge targets are Canny edges of the crop with a Gaussian pre-blur of ``edge_sigma`` (a number, or
    ``(low, high)`` for a uniform random sigma per item); where ``boundaries_dir`` holds a map with the photo's
    stem (``<stem>.png``, value = share of annotators, same size as the photo), the edges are that map at
    ``boundary_threshold`` instead, cropped and flipped like the photo. The mask comes from ``mask_generator``.

    Unreadable photos: files whose header cannot be read are dropped when the dataset is built; files that
    fail to decode later are replaced by another photo (chosen deterministically). Both are counted in
    ``skipped`` with a line in ``warnings`` (in the process that met them: DataLoader workers keep their own
    counts). ``DataError`` if there is no photo or none decodes.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path], size: int, mask_generator: MaskFn,
                 edge_sigma: Sigma = 2.0, boundaries_dir: str | Path | None = None, seed: int = 0,
                 augment: bool = True, boundary_threshold: float = 0.3, max_scale: float = 1.5,
                 min_side: int = MIN_SIDE) -> None:
        if int(size) < 1:
            raise ValueError(f"size must be positive, got {size}")
        if max_scale < 1:
            raise ValueError(f"max_scale must be at least 1, got {max_scale}")
        self.size = int(size)
        self.mask_generator = mask_generator
        self.edge_sigma = _check_sigma(edge_sigma)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.boundary_threshold = float(boundary_threshold)
        self.max_scale = float(max_scale)
        self.min_side = int(min_side)
        self.epoch = 0
        self.skipped = 0
        self.warnings: list[str] = []
        self._broken: set[Path] = set()
        self.boundaries = _boundary_index(boundaries_dir)
        self.bad_boundaries: set[Path] = set()  # maps that are unreadable or do not fit their photo
        where, candidates = _resolve_paths(paths)
        if not candidates:
            raise DataError(f"no photos ({', '.join(IMAGE_EXTENSIONS)}) found in {where}")
        self.paths = [p for p in candidates if self._header_ok(p)]
        self._check_one_decodes(where, len(candidates))

    # -- construction helpers
    def _skip(self, path: Path, why: str) -> None:
        if path in self._broken:
            return
        self._broken.add(path)
        self.skipped += 1
        self.warnings.append(f"skipped {path}: {why}")

    def _header_ok(self, path: Path) -> bool:
        try:
            short = _short_side(path)
        except Exception as exc:
            self._skip(path, f"not a readable image ({_why(exc)})")
            return False
        if short < self.min_side:
            self._skip(path, f"too small (shorter side {short} px, need at least {self.min_side})")
            return False
        return True

    def _check_one_decodes(self, where: str, total: int) -> None:
        for path in list(self.paths):
            try:
                read_photo(path)
                return
            except Exception as exc:
                self._skip(path, f"cannot be decoded ({_why(exc)})")
                self.paths.remove(path)
        raise DataError(f"none of the {total} image file(s) in {where} could be read as a photo "
                        f"(first problem: {self.warnings[0] if self.warnings else 'unknown'})")

    # -- torch Dataset
    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """Change the per-item random draws (crops, flips, masks) for a new pass over the data."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        n = len(self.paths)
        index = int(index) % n
        chosen = index
        for attempt in range(MAX_ATTEMPTS):
            rng = item_rng(self.seed, self.epoch, index, attempt)
            if attempt:
                chosen = int(rng.integers(n))
            path = self.paths[chosen]
            if path in self._broken:
                continue
            try:
                return self.sample(path, rng)
            except _Unreadable as exc:
                self._skip(path, f"cannot be decoded ({exc})")
                log.warning("skipped %s: cannot be decoded (%s); another photo is used instead", path, exc)
        raise DataError(f"{MAX_ATTEMPTS} photos in a row could not be read (last: {self.paths[chosen]}); "
                        f"{self.skipped} skipped so far")

    # -- one sample
    def sample(self, path: Path, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """The item for ``path`` with all random draws taken from ``rng`` (in a fixed order)."""
        size = self.size
        target_short = float(rng.uniform(size, self.max_scale * size)) if self.augment else float(size)
        boundary_path = self.boundaries.get(path.stem)
        if boundary_path in self.bad_boundaries:
            boundary_path = None
        # Let JPEG decoding shrink big photos, unless a boundary map must line up with the full-size pixels.
        try:
            rgb = read_photo(path, None if boundary_path else math.ceil(target_short))
        except Exception as exc:
            raise _Unreadable(_why(exc)) from exc
        h, w = rgb.shape[:2]
        window = min(h, w, max(1, round(size * min(h, w) / target_short)))
        if self.augment:
            top = int(rng.integers(0, h - window + 1))
            left = int(rng.integers(0, w - window + 1))
            flip = bool(rng.random() < 0.5)
        else:
            top, left, flip = (h - window) // 2, (w - window) // 2, False
        sigma = _sigma(self.edge_sigma, rng)
        crop = _resize(rgb[top:top + window, left:left + window], size)
        edges = None
        if boundary_path is not None:
            edges = self._boundary_crop(boundary_path, (h, w), (top, left, window))
        if flip:
            crop = crop[:, ::-1]
            edges = edges[:, ::-1] if edges is not None else None
        gray = to_gray(crop)
        if edges is None:
            edges = canny_edges(gray, sigma)
        mask = np.asarray(self.mask_generator(size, size, rng), dtype=bool)
        return _item(crop, edges, mask, sigma, gray)

    def _boundary_crop(self, path: Path, shape: tuple[int, int], box: tuple[int, int, int]) -> np.ndarray | None:
        try:
            boundaries = read_boundaries(path, self.boundary_threshold)
        except Exception as exc:
            self._bad_boundary(path, f"boundary map {path} unreadable ({_why(exc)}); using Canny edges")
            return None
        if boundaries.shape != shape:
            self._bad_boundary(path, f"boundary map {path} is {boundaries.shape[1]}x{boundaries.shape[0]}, the "
                                     f"photo {shape[1]}x{shape[0]}; using Canny edges for it")
            return None
        top, left, window = box
        return _resize_edges(boundaries[top:top + window, left:left + window], self.size)

    def _bad_boundary(self, path: Path, message: str) -> None:
        self.bad_boundaries.add(path)
        self.warnings.append(message)


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _resolve_paths(paths: str | Path | Sequence[str | Path]) -> tuple[str, list[Path]]:
    if isinstance(paths, str | Path):
        return str(paths), find_images(paths)
    items = [Path(p) for p in paths]
    return "the given list" if items else "an empty list", items


# --- the fixed validation set --------------------------------------------------------------------------------

MaskSetFn = Callable[[str, int, int], dict[str, np.ndarray]]


def default_validation_masks(irregular_dir: str | Path | None = None) -> MaskSetFn:
    """The same deterministic mask buckets ``inpaint eval`` uses (``engine.evaluation.DefaultMasks``):
    NVIDIA irregular 10-20 / 30-40 / 50-60 % when ``irregular_dir`` holds them, rectangle 25-45 %, free-form."""
    from engine.evaluation import DefaultMasks

    return DefaultMasks(Path(irregular_dir) if irregular_dir else None)


class ValidationSet(Dataset):
    """A fixed validation set: the first ``count`` readable photos (sorted), each with every mask bucket.

    Photos are scaled so the short side is ``size`` and centre-cropped; edges are Canny at ``edge_sigma`` (or
    human boundaries as in :class:`PhotoDataset`). Masks come from ``masks(name, size, size) -> {bucket:
    mask}`` (default :func:`default_validation_masks`), seeded by the photo's name, so the set is identical in
    every run. Items are :class:`PhotoDataset` items plus ``bucket`` (str), ``name`` (the photo's stem) and
    ``lowband_sigma`` (``engine.metrics.LOWBAND_SIGMA`` px of the full photo, in item pixels: validation blurs
    the low band as ``inpaint eval`` does); ``len`` is photos x buckets. Everything is decoded once, at
    construction, and kept as uint8/bool.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path], size: int, count: int = 16,
                 masks: MaskSetFn | None = None, edge_sigma: Sigma = 2.0, boundaries_dir: str | Path | None = None,
                 irregular_dir: str | Path | None = None, boundary_threshold: float = 0.3) -> None:
        masks = masks if masks is not None else default_validation_masks(irregular_dir)
        self.messages: list[str] = list(getattr(masks, "messages", []))
        sigma = _check_sigma(edge_sigma)
        sigma = float(np.mean(sigma)) if isinstance(sigma, tuple) else sigma  # a range: its middle, fixed
        self.edge_sigma = sigma
        reader = PhotoDataset(paths, size, _no_mask, sigma, boundaries_dir=boundaries_dir, augment=False,
                              boundary_threshold=boundary_threshold)
        self.skipped = reader.skipped
        self.messages += reader.warnings
        self.names: list[str] = []
        self.lowband_sigmas: list[float] = []
        self.photos: list[tuple[np.ndarray, np.ndarray]] = []
        self.cases: list[tuple[int, str, np.ndarray]] = []
        for path in reader.paths:
            if len(self.photos) >= count:
                break
            try:
                item = reader.sample(path, item_rng(0, 0, 0))
            except Exception as exc:
                self.skipped += 1
                self.messages.append(f"skipped {path}: cannot be decoded ({_why(exc)})")
                continue
            rgb = (item["image"].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
            edges = item["edges"][0].numpy() > 0.5
            self.photos.append((rgb, edges))
            self.names.append(path.stem)
            # The item is the photo shrunk to ``size``: blur its low band as inpaint eval blurs the full photo.
            self.lowband_sigmas.append(LOWBAND_SIGMA * size / _short_side(path))
            for bucket, mask in masks(path.name, size, size).items():
                self.cases.append((len(self.photos) - 1, bucket, np.asarray(mask, dtype=bool)))
        if not self.photos:
            raise DataError("no readable photo for the validation set")
        self.buckets = list(dict.fromkeys(bucket for _, bucket, _ in self.cases))

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, index: int) -> dict[str, Any]:
        photo, bucket, mask = self.cases[index]
        rgb, edges = self.photos[photo]
        item: dict[str, Any] = _item(rgb, edges, mask, self.edge_sigma)
        item["bucket"] = bucket
        item["name"] = self.names[photo]
        item["lowband_sigma"] = self.lowband_sigmas[photo]
        return item


def _no_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    return np.zeros((h, w), dtype=bool)


# --- internal fine-tuning on one photo -----------------------------------------------------------------------

class InternalPhotoDataset(Dataset):
    """Random crops of the photo being edited, for fine-tuning on its own known area.

    ``user_mask`` (H x W bool, True = the user's hole) marks pixels with no ground truth. Each item:

    - a square window of the photo, its side drawn uniformly from ``windows`` (default: from ``size`` to the
      short side, i.e. every scale between the photo's own resolution and "the whole short side fits in
      ``size``"; never more than the short side), resized to ``size`` (upscaled when the photo is smaller),
      at a random position where at most
      ``max_user_fraction`` of it is the user's hole; when no position qualifies the window shrinks towards
      ``size`` px, and at that size the least-overlapping position is used;
    - ``valid`` = 1 where ground truth exists, 0 on the user's hole (and on pixels the resize blends with it);
    - ``mask`` = a synthetic hole from ``mask_generator`` limited to ``valid`` pixels, united with the
      user's hole (the generator must not see those pixels either). Losses must be weighted by ``valid``
      (``masked_l1(..., known=valid)``); the user's hole pixels of ``image`` are also replaced by the mean
      colour of the crop's known pixels, and ``edges`` come from the known area only
      (``engine.edges.known_edges``), so nothing of what the user wants removed can become a target.

    ``tries`` bounds the redraws of a synthetic hole that covers less than ``min_synthetic`` of the known
    pixels. ``len`` is ``length``; items depend only on ``(seed, epoch, index)``.
    """

    def __init__(self, image_rgb: np.ndarray, user_mask: np.ndarray, size: int, mask_generator: MaskFn,
                 edge_sigma: Sigma = 2.0, seed: int = 0, length: int = 1000, max_user_fraction: float = 0.02,
                 tries: int = 12, min_synthetic: float = 0.02, windows: tuple[int, int] | None = None) -> None:
        image_rgb = np.asarray(image_rgb)
        user_mask = np.asarray(user_mask).astype(bool)
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f"image_rgb must be H x W x 3 uint8, got {image_rgb.shape} {image_rgb.dtype}")
        if user_mask.shape != image_rgb.shape[:2]:
            raise ValueError(f"user_mask is {user_mask.shape}, the photo {image_rgb.shape[:2]}")
        if user_mask.all():
            raise DataError("the whole photo is masked: nothing is left to fine-tune on")
        self.image = np.ascontiguousarray(image_rgb)
        self.user_mask = user_mask
        self.size = int(size)
        self.mask_generator = mask_generator
        self.edge_sigma = _check_sigma(edge_sigma)
        self.seed = int(seed)
        self.length = int(length)
        self.max_user_fraction = float(max_user_fraction)
        self.tries = max(1, int(tries))
        self.min_synthetic = float(min_synthetic)
        short = min(user_mask.shape)
        low, high = windows if windows is not None else (self.size, short)
        self.windows = (max(1, min(int(low), short)), max(1, min(int(high), short)))
        if self.windows[0] > self.windows[1]:
            raise ValueError(f"windows must be (low, high) with low <= high, got {windows}")
        self.epoch = 0
        # Summed-area table of the user's hole for O(1) overlap of any window.
        self._integral = cv2.integral(user_mask.astype(np.uint8))

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _overlaps(self, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Share of the user's hole in windows of side ``window`` on a grid of positions (step window/16)."""
        h, w = self.user_mask.shape
        step = max(1, window // 16)
        tops = np.unique(np.r_[np.arange(0, h - window + 1, step), h - window])
        lefts = np.unique(np.r_[np.arange(0, w - window + 1, step), w - window])
        s = self._integral.astype(np.int64)
        t, l_ = tops[:, None], lefts[None, :]
        sums = s[t + window, l_ + window] - s[t, l_ + window] - s[t + window, l_] + s[t, l_]
        return sums / float(window * window), tops, lefts

    def _place(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """(window, top, left): a random window size and a random position whose overlap with the user's hole is
        at most ``max_user_fraction``; the window shrinks towards the smallest of ``windows`` until one exists,
        and at that size the least-overlapping position is used."""
        lo, hi = self.windows
        window = round(float(rng.uniform(lo, hi)))
        while True:
            overlaps, tops, lefts = self._overlaps(window)
            ok = np.argwhere(overlaps <= self.max_user_fraction + 1e-9)
            if len(ok) == 0 and window <= lo:
                ok = np.argwhere(overlaps <= overlaps.min() + 1e-9)
            if len(ok):
                i, j = ok[int(rng.integers(len(ok)))]
                return window, int(tops[i]), int(lefts[j])
            window = max(lo, int(window * 0.7))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = item_rng(self.seed, self.epoch, int(index))
        size = self.size
        window, top, left = self._place(rng)
        flip = bool(rng.random() < 0.5)
        sigma = _sigma(self.edge_sigma, rng)
        crop = self.image[top:top + window, left:left + window]
        user = self.user_mask[top:top + window, left:left + window]
        if window != size:
            crop = _resize(crop, size, cv2.INTER_LINEAR)
            # Any output pixel touched by the user's hole counts as unknown.
            coverage = cv2.resize(user.astype(np.float32), (size, size),
                                  interpolation=cv2.INTER_AREA if window > size else cv2.INTER_LINEAR)
            user = coverage > 0
        if flip:
            crop, user = crop[:, ::-1], user[:, ::-1]
        crop = np.ascontiguousarray(crop)
        user = np.ascontiguousarray(user)
        valid = ~user
        if user.any():
            crop = crop.copy()
            crop[user] = np.round(crop[valid].reshape(-1, 3).mean(axis=0)).astype(np.uint8) if valid.any() else 127
        synthetic = np.zeros((size, size), dtype=bool)
        for _ in range(self.tries):
            synthetic = np.asarray(self.mask_generator(size, size, rng), dtype=bool) & valid
            if synthetic.mean() >= self.min_synthetic or not valid.any():
                break
        edges = known_edges(crop, user, sigma) if user.any() else canny_edges(to_gray(crop), sigma)
        item = _item(crop, edges, synthetic | user, sigma)
        item["valid"] = torch.from_numpy(valid)[None].float()
        return item
