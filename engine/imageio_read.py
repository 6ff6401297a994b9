"""Reading photos: any PNG, JPEG, WebP, TIFF or BMP file to H x W x 3 uint8 RGB, upright (EXIF orientation
applied), with what else the file had (alpha, 16-bit samples, EXIF, ICC profile, dpi) kept in ``LoadedImage`` for
the save (:mod:`engine.imageio_save`). Every failure a user can cause is an ``ImageFileError`` naming the file."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from engine.errors import ImageFileError
from engine.imageio_meta import apply_orientation, exif_bytes, orientation_of, pillow_dpi
from engine.path_problems import path_problem, shown

DEFAULT_MAX_PIXELS = 200_000_000
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")

_PILLOW_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
_FORMAT_NAME = {"MPO": "JPEG"}
_SUPPORTED_LIST = "PNG, JPEG, WebP, TIFF or BMP"
_SRGB = ImageCms.createProfile("sRGB")

# Pillow's own decompression-bomb limit is a process-wide setting that warns above 89 and refuses above
# 179 megapixels. This module checks width x height itself (``max_pixels``) before decoding, so while
# it opens and decodes a file it lifts Pillow's limit under this lock and puts it back afterwards.
_PILLOW_LIMIT_LOCK = threading.Lock()


@dataclass
class LoadedImage:
    """A decoded photo plus what is needed to write it back faithfully.

    ``rgb`` is what gets filled and shown. ``alpha`` (uint8, or uint16 for 16-bit sources) passes through
    saving unchanged. ``rgb16`` holds the exact 16-bit samples of 16-bit sources (H x W x 3, or H x W for
    grayscale) so untouched pixels keep all 16 bits on save. ``exif`` is ``Exif\\0\\0`` + TIFF bytes with
    orientation already reset to 1 (the pixels are upright) and the thumbnail removed (it would show what
    the user erased). ``notes`` says what was converted on the way.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    path: Path | None
    format: str
    bit_depth: int
    exif: bytes | None
    icc: bytes | None
    rgb16: np.ndarray | None = None
    gray: bool = False
    orientation: int = 1
    mode: str = "RGB"
    dpi: tuple[float, float] | None = None
    notes: tuple[str, ...] = ()
    frames: int = 1  # pages of a multi-page TIFF, frames of an APNG or animated WebP; only the first is loaded

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def load_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode a PNG, JPEG, WebP, TIFF or BMP file; raise ``ImageFileError`` with a clear message otherwise."""
    p = Path(path)
    _check_file(p)
    with _pillow_limit_lifted():
        try:
            im = Image.open(p, formats=list(_PILLOW_FORMATS))
        except UnidentifiedImageError:
            raise _unidentified(p) from None
        except OSError as e:
            if e.errno is not None:  # the system refused (permissions, I/O error...)
                raise ImageFileError(f"Cannot open {p}: {e.strerror or e}.") from e
            raise ImageFileError(f"Cannot open {p}: the file is truncated or damaged ({e}).") from e
        except Exception as e:  # a malformed header is the file's fault, not a crash
            raise ImageFileError(f"Cannot open {p}: the file is truncated or damaged ({e}).") from e
        with im:
            return _decode(p, im, max_pixels)


def upright_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) the decoded image will have (EXIF orientation applied), read from the header only;
    None when the header cannot be read (then :func:`load_image` says what is wrong)."""
    p = Path(path)
    try:
        _check_file(p)
        with _pillow_limit_lifted(), Image.open(p, formats=list(_PILLOW_FORMATS)) as im:
            w, h = im.size
            return (h, w) if orientation_of(im) in (5, 6, 7, 8) else (w, h)
    except Exception:  # any damage is reported by the full load
        return None


def _check_file(p: Path) -> None:
    problem = path_problem(p)
    if problem:
        raise ImageFileError(f"Cannot open {shown(p)}: {problem}.")
    if p.is_dir():
        raise ImageFileError(f"Cannot open {p}: it is a folder, not an image file.")
    if not p.exists():
        raise ImageFileError(f"Cannot open {p}: the file does not exist.")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ImageFileError(f"Cannot open {p}: {e.strerror or e}.") from e
    if size == 0:
        raise ImageFileError(f"Cannot open {p}: the file is empty (0 bytes).")
    if not os.access(p, os.R_OK):
        raise ImageFileError(f"Cannot open {p}: permission denied.")


@contextmanager
def _pillow_limit_lifted() -> Iterator[None]:
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _unidentified(p: Path) -> ImageFileError:
    """Say whether the file is text, an image in a format we do not take, or unrecognisable."""
    try:
        with Image.open(p) as other:
            kind = other.format
    except Exception:
        kind = None
    if kind:
        return ImageFileError(f"Cannot open {p}: {kind} images are not supported; use {_SUPPORTED_LIST}.")
    try:
        head = p.read_bytes()[:4096]
        head.decode("utf-8")
        looks_like_text = b"\x00" not in head
    except (OSError, UnicodeDecodeError):
        looks_like_text = False
    if looks_like_text:
        return ImageFileError(f"Cannot open {p}: it is a text file, not an image.")
    return ImageFileError(f"Cannot open {p}: it is not an image file, or it is too damaged to recognise.")


def _decode(p: Path, im: Image.Image, max_pixels: int) -> LoadedImage:
    fmt = _FORMAT_NAME.get(im.format or "", im.format or "")
    w, h = im.size
    if w * h > max_pixels:
        raise ImageFileError(
            f"Cannot open {p}: {w} x {h} pixels ({w * h / 1e6:.0f} megapixels) is over the limit of "
            f"{max_pixels / 1e6:g} megapixels.")
    stored_orientation = orientation_of(im)
    frames = frame_count(im)
    sixteen = _has_16bit_samples(p, im, fmt)
    try:
        im.load()
    except MemoryError as e:
        raise ImageFileError(f"Cannot read {p}: not enough memory to decode {w} x {h} pixels.") from e
    except Exception as e:  # truncated/corrupt data: Pillow raises many kinds
        raise ImageFileError(f"Cannot read {p}: the file is truncated or damaged ({e}).") from e
    pending = orientation_of(im)  # Pillow turns TIFFs upright itself while loading; others not
    exif = exif_bytes(im, is_tiff=fmt == "TIFF")
    notes: list[str] = []
    rgb, alpha, gray, icc, gray16 = _pixels(p, im, notes)
    if fmt == "PNG" and sixteen and _png_header(p)[1] in (0, 4):
        gray = True  # Pillow widens 16-bit gray + alpha to RGBA
    rgb = apply_orientation(rgb, pending)
    alpha = None if alpha is None else apply_orientation(alpha, pending)
    rgb16 = None if gray16 is None else apply_orientation(gray16, pending)
    if sixteen and gray16 is None:
        found = _read_16bit(p, rgb, alpha, gray, (stored_orientation, pending, 1))
        if found is None:
            notes.append("16-bit samples could not be decoded exactly; loaded at 8 bits")
        else:
            rgb16, alpha16 = found
            rgb = to_8bit(rgb16 if rgb16.ndim == 3 else np.repeat(rgb16[..., None], 3, axis=2))
            alpha = alpha16 if alpha16 is not None else alpha
    elif rgb16 is not None:
        rgb = np.repeat(to_8bit(rgb16)[..., None], 3, axis=2)
    rgb, alpha, rgb16 = (None if a is None else np.require(a, requirements=("C", "W")) for a in (rgb, alpha, rgb16))
    return LoadedImage(
        rgb=rgb, alpha=alpha, path=p, format=fmt, bit_depth=16 if rgb16 is not None else 8, exif=exif,
        icc=icc, rgb16=rgb16, gray=gray, orientation=stored_orientation, mode=im.mode, dpi=pillow_dpi(im),
        notes=tuple(notes), frames=frames)


def frame_count(im: Image.Image) -> int:
    """How many pages or frames an opened file holds (1 for a still image, or when it cannot be told)."""
    try:
        return max(1, int(getattr(im, "n_frames", 1) or 1))
    except Exception:  # a damaged later page: the first one is still what gets loaded
        return 1


def frames_lost(loaded: LoadedImage) -> str | None:
    """Words for what a save of ``loaded`` drops (``None`` for a single-frame image): "pages 2-3 of 3"."""
    if loaded.frames <= 1:
        return None
    kind = "pages" if loaded.format == "TIFF" else "frames"
    rest = "2" if loaded.frames == 2 else f"2-{loaded.frames}"
    return f"{kind[:-1] if loaded.frames == 2 else kind} {rest} of {loaded.frames}"


def _has_16bit_samples(p: Path, im: Image.Image, fmt: str) -> bool:
    """True when the file stores 16 bits per sample (Pillow decodes colour ones at 8 bits only)."""
    if im.mode.startswith("I;16"):
        return True
    if fmt == "PNG":
        return _png_header(p)[0] == 16
    if fmt == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258)
        bits = bits if isinstance(bits, tuple) else (bits,)
        return any(b == 16 for b in bits)
    return False


def _png_header(p: Path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR; colour types 0 and 4 are grayscale."""
    with open(p, "rb") as f:
        head = f.read(26)
    return (head[24], head[25]) if len(head) == 26 else (8, 2)


def _pixels(p: Path, im: Image.Image, notes: list[str]
            ) -> tuple[np.ndarray, np.ndarray | None, bool, bytes | None, np.ndarray | None]:
    """(rgb uint8, alpha or None, gray?, icc, gray16 or None) from a loaded Pillow image, stored orientation."""
    icc = im.info.get("icc_profile") or None
    mode = im.mode
    if mode.startswith("I"):
        values = np.asarray(im)
        if mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageFileError(f"Cannot read {p}: 32-bit integer samples are not supported.")
        gray16 = values.astype(np.uint16)
        return np.empty((0, 0, 3), np.uint8), None, True, icc, gray16
    if mode == "F":
        raise ImageFileError(f"Cannot read {p}: floating-point samples are not supported.")
    if mode == "CMYK":
        rgb, icc = _cmyk_to_rgb(im, icc, notes)
        return rgb, None, False, icc, None
    try:
        if mode in ("1", "L"):
            rgb = np.asarray(im.convert("L"))
            return np.repeat(rgb[..., None], 3, axis=2), None, True, icc, None
        if mode in ("LA", "La"):
            la = np.asarray(im.convert("LA"))
            return np.repeat(la[..., :1], 3, axis=2), la[..., 1].copy(), True, icc, None
        has_alpha = mode in ("RGBA", "RGBa", "PA") or (mode == "P" and im.has_transparency_data)
        if has_alpha:
            rgba = np.asarray(im.convert("RGBA"))
            return rgba[..., :3].copy(), rgba[..., 3].copy(), False, icc, None
        return np.asarray(im if mode == "RGB" else im.convert("RGB")), None, False, icc, None
    except ValueError as e:
        raise ImageFileError(f"Cannot read {p}: its colour mode {mode} is not supported.") from e


def _srgb_bytes() -> bytes:
    return ImageCms.ImageCmsProfile(_SRGB).tobytes()


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None, notes: list[str]) -> tuple[np.ndarray, bytes | None]:
    """(rgb, profile of rgb): through the embedded profile into sRGB when it works, else Pillow's plain formula."""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, source, _SRGB, outputMode="RGB")
            if converted is not None:
                notes.append("CMYK converted to sRGB through the embedded ICC profile")
                return np.asarray(converted), _srgb_bytes()
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    notes.append("CMYK converted to RGB without a colour profile")
    return np.asarray(im.convert("RGB")), None


def _read_16bit(p: Path, rgb8: np.ndarray, alpha8: np.ndarray | None, gray: bool,
                orientations: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Exact 16-bit samples via OpenCV, checked against Pillow's 8-bit decode (its high bytes).

    Returns (rgb16 H x W x 3, or H x W when gray; alpha16 or None), upright, or None when OpenCV cannot
    read the file or its pixels do not match Pillow's (then the 8-bit decode is used).
    """
    try:
        raw = cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if raw is None or raw.dtype != np.uint16:
        return None
    raw = raw[..., None] if raw.ndim == 2 else raw
    channels = raw.shape[2]
    if channels == 1:
        color, alpha = raw[..., 0], None
    elif channels == 2:
        color, alpha = raw[..., 0], raw[..., 1]
    else:
        color = raw[..., 2::-1]  # OpenCV's BGR(A) to RGB
        alpha = raw[..., 3] if channels == 4 else None
        if gray:
            color = color[..., 0]
    if (alpha is None) != (alpha8 is None):
        return None
    for orientation in dict.fromkeys(orientations):
        c16 = apply_orientation(color, orientation)
        a16 = None if alpha is None else apply_orientation(alpha, orientation)
        c8 = (c16 >> 8).astype(np.uint8)
        expected = rgb8[..., 0] if gray else rgb8
        if c8.shape == expected.shape and np.array_equal(c8, expected) and (
                a16 is None or np.array_equal((a16 >> 8).astype(np.uint8), alpha8)):
            return c16, a16
    return None


_TO8 = ((np.arange(65536, dtype=np.uint32) + 128) // 257).astype(np.uint8)  # round(v / 257); 257 is odd: no ties


def to_8bit(samples16: np.ndarray) -> np.ndarray:
    """16-bit to 8-bit, rounded to nearest (v / 257), so that v8 * 257 maps back exactly."""
    return np.take(_TO8, samples16)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma as Pillow's convert('L') computes it; exact for pixels with R == G == B."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
