"""Reading and writing photos, masks and edge sketches.

Everything the engine fills is H x W x 3 uint8 RGB with EXIF orientation already applied. Whatever
else the source file had (alpha, 16-bit samples, EXIF, ICC profile, dpi) is kept in ``LoadedImage`` so
``save_image(..., like=loaded)`` can write it back. Every failure a user can cause is an
``ImageFileError`` whose message names the file and the problem; every write is atomic.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from engine.atomic import write_with_atomic
from engine.errors import ImageFileError
from engine.imageio_meta import (
    apply_orientation,
    clean_exif,
    exif_bytes,
    fit_jpeg_exif,
    orientation_of,
    pillow_dpi,
)
from engine.imageio_writers import write_png16, write_tiff
from engine.path_problems import path_problem, shown

DEFAULT_MAX_PIXELS = 200_000_000
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")

_FORMAT_OF_EXTENSION = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                        ".tiff": "TIFF", ".bmp": "BMP"}
_PILLOW_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
_FORMAT_NAME = {"MPO": "JPEG"}
_ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")
_HIGH_DEPTH_FORMATS = ("PNG", "TIFF")
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


# ----------------------------------------------------------------------------------------------- loading


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
            rgb = _to8(rgb16 if rgb16.ndim == 3 else np.repeat(rgb16[..., None], 3, axis=2))
            alpha = alpha16 if alpha16 is not None else alpha
    elif rgb16 is not None:
        rgb = np.repeat(_to8(rgb16)[..., None], 3, axis=2)
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


def _to8(samples16: np.ndarray) -> np.ndarray:
    """16-bit to 8-bit, rounded to nearest (v / 257), so that v8 * 257 maps back exactly."""
    return np.take(_TO8, samples16)


# ------------------------------------------------------------------------------------------------ saving


def format_for_path(path: str | os.PathLike[str]) -> str:
    """Pillow format name for a file name's extension; ``ImageFileError`` for anything else."""
    p = Path(path)
    fmt = _FORMAT_OF_EXTENSION.get(p.suffix.lower())
    if fmt is None:
        what = f"unknown file extension '{p.suffix}'" if p.suffix else "no file extension"
        raise ImageFileError(f"Cannot save {p}: {what}; use one of {', '.join(SUPPORTED_EXTENSIONS)}.")
    return fmt


def save_image(path: str | os.PathLike[str], rgb: np.ndarray, like: LoadedImage | None = None,
               changed: np.ndarray | None = None, quality: int = 95, replace: bool = True) -> None:
    """Write ``rgb`` (H x W x 3 uint8) atomically in the format of the extension.

    With ``like`` (the image ``rgb`` came from) the file also gets its EXIF (orientation 1, no thumbnail), ICC
    profile, dpi, alpha and, for PNG/TIFF, its 16-bit depth: pixels outside ``changed`` (H x W bool;
    default: where ``rgb`` differs from ``like.rgb``) keep their exact 16-bit values, changed ones are
    the 8-bit values x 257. Grayscale sources are written as grayscale. Formats without alpha (JPEG,
    BMP) get the RGB as is: the alpha is dropped, nothing is composited. BMP stores no EXIF or ICC.

    JPEG uses ``quality`` 95 with 4:4:4 chroma (no subsampling): an edited photo is re-encoded, and
    4:2:0 halves colour resolution, smearing colour across the fill's edges and degrading a little more
    on every save; at 95 re-encoding loss stays invisible while files stay far smaller than at 100.
    WebP is lossy at ``quality`` (lossless at 100) with exact RGB under transparent pixels and lossless alpha.
    ``replace=False``: an existing file is never replaced, even one that appears during the write.
    """
    p = Path(path)
    fmt = format_for_path(p)
    problem = path_problem(p)
    if problem:
        raise ImageFileError(f"Cannot save {shown(p)}: {problem}.")
    rgb = _check_rgb(rgb)
    if like is not None and like.rgb.shape != rgb.shape:
        raise ValueError(f"rgb is {rgb.shape[1]} x {rgb.shape[0]} but like is {like.width} x {like.height}")
    writer = _writer(fmt, rgb, like, changed, quality)
    try:
        write_with_atomic(p, writer, replace=replace)
    except ImageFileError:
        raise
    except OSError as e:
        raise ImageFileError(f"Cannot save {p}: {e.strerror or e}.") from e
    except Exception as e:  # encoder failures become a message, the old file stays
        raise ImageFileError(f"Cannot save {p}: the {fmt} encoder failed ({e}).") from e


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be H x W x 3 uint8, got {rgb.shape} {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma as Pillow's convert('L') computes it; exact for pixels with R == G == B."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _writer(fmt: str, rgb: np.ndarray, like: LoadedImage | None, changed: np.ndarray | None,
            quality: int) -> Callable[[Path], None]:
    exif = clean_exif(like.exif) if like is not None and like.exif else None
    icc = like.icc if like is not None else None
    dpi = like.dpi if like is not None else None
    gray = like is not None and like.gray
    alpha = like.alpha if like is not None and fmt in _ALPHA_FORMATS else None
    samples: np.ndarray
    if like is not None and like.rgb16 is not None and fmt in _HIGH_DEPTH_FORMATS:
        samples = _merge16(rgb, like, changed)
        if alpha is not None:
            alpha16 = alpha if alpha.dtype == np.uint16 else alpha.astype(np.uint16) * 257
            samples = np.concatenate([samples, alpha16[..., None]], axis=2)
        write16 = write_png16 if fmt == "PNG" else write_tiff
        return lambda tmp: _write_file(tmp, lambda f: write16(f, samples, icc, exif, dpi))
    channels = [_luma(rgb)[..., None]] if gray else [rgb]
    if alpha is not None:
        channels.append((alpha if alpha.dtype == np.uint8 else _to8(alpha))[..., None])
    samples = np.concatenate(channels, axis=2) if len(channels) > 1 else channels[0]
    if fmt == "TIFF":
        return lambda tmp: _write_file(tmp, lambda f: write_tiff(f, samples, icc, exif, dpi))
    image = Image.fromarray(samples[..., 0] if samples.shape[2] == 1 else samples)
    options = _pillow_options(fmt, icc, exif, dpi, quality, gray)
    return lambda tmp: image.save(tmp, format=fmt, **options)


def _write_file(tmp: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    with open(tmp, "wb") as f:
        write(f)


def _merge16(rgb: np.ndarray, like: LoadedImage, changed: np.ndarray | None) -> np.ndarray:
    """The 16-bit output samples (H x W x C): ``like.rgb16`` outside ``changed``, ``rgb`` x 257 inside."""
    assert like.rgb16 is not None
    if changed is None:
        changed = np.any(rgb != like.rgb, axis=2)
    changed = np.asarray(changed, dtype=bool)
    if changed.shape != rgb.shape[:2]:
        raise ValueError(f"changed must be {rgb.shape[:2]}, got {changed.shape}")
    fill = (_luma(rgb) if like.gray else rgb).astype(np.uint16) * 257
    out = like.rgb16.copy()
    out[changed] = fill[changed]
    return out if out.ndim == 3 else out[..., None]


def _pillow_options(fmt: str, icc: bytes | None, exif: bytes | None, dpi: tuple[float, float] | None,
                    quality: int, gray: bool) -> dict[str, object]:
    options: dict[str, object] = {}
    if fmt == "BMP":
        return options
    if icc:
        options["icc_profile"] = icc
    if exif:
        options["exif"] = fit_jpeg_exif(exif) if fmt == "JPEG" else exif
    if dpi and fmt in ("PNG", "JPEG"):
        options["dpi"] = (round(dpi[0]), round(dpi[1])) if fmt == "JPEG" else dpi
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        options.update(quality=quality, lossless=quality >= 100, exact=True, alpha_quality=100)
    elif fmt == "PNG":
        options.update(compress_level=3)  # see imageio_writers._ZLIB_LEVEL
    if options.get("exif") is None:
        options.pop("exif", None)
    return options


# ------------------------------------------------------------------------------------- masks and sketches


def load_mask(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> np.ndarray:
    """A hole mask (H x W bool) from any image: True where the pixel is white.

    White means brighter than half the format's range (luminance > 127 of 255, or > 32767 of 65535); when the
    image has alpha, the pixel must also be opaque (alpha > 127), so a mask painted on a transparent layer
    works. A label mask, which holds only 0 and one darker value (0/1 masks of datasets, or a 16-bit file
    saved with 8-bit values), marks its hole with that value. ``size`` = (width, height) resizes with nearest
    neighbour.
    """
    loaded = load_image(path)
    level = _mask_level(loaded)
    half = 32767 if level.dtype == np.uint16 else 127
    hole = level > half
    if not hole.any():
        top = level.max()
        if top > 0 and np.all((level == 0) | (level == top)):
            hole = level == top
    if loaded.alpha is not None:
        hole &= _alpha8(loaded.alpha) > 127
    return _resize_labels(hole.astype(np.uint8), size).astype(bool)


def _mask_level(loaded: LoadedImage) -> np.ndarray:
    """Brightness of a mask image at its own depth: 16-bit sources keep all 16 bits (so dark values survive)."""
    if loaded.rgb16 is None:
        return _luma(loaded.rgb)
    if loaded.rgb16.ndim == 2:
        return loaded.rgb16
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    return np.round(loaded.rgb16.astype(np.float32) @ weights).astype(np.uint16)


def save_mask(path: str | os.PathLike[str], mask: np.ndarray) -> None:
    """Write a hole mask as a PNG, white (255) = hole, black (0) = keep; atomic."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ImageFileError(f"Cannot save {p}: masks are saved as PNG; use a .png file name.")
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be H x W, got {mask.shape}")
    image = Image.fromarray(np.where(mask.astype(bool), 255, 0).astype(np.uint8))
    _save_pillow(p, image)


def load_sketch(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(drawn, erased) H x W bools from a sketch image.

    White (all channels > 127) = a drawn edge; red (R > 127, G and B <= 127) = erased, "no edge here";
    anything else, including transparent pixels (alpha <= 127), = let the model decide. The thresholds
    make a sketch survive lossy saving. ``size`` = (width, height) resizes with nearest neighbour.
    """
    loaded = load_image(path)
    bright = loaded.rgb > 127
    drawn = bright.all(axis=2)
    erased = bright[..., 0] & ~bright[..., 1] & ~bright[..., 2]
    if loaded.alpha is not None:
        opaque = _alpha8(loaded.alpha) > 127
        drawn &= opaque
        erased &= opaque
    labels = _resize_labels(drawn.astype(np.uint8) + 2 * erased.astype(np.uint8), size)
    return labels == 1, labels == 2


def save_sketch(path: str | os.PathLike[str], drawn: np.ndarray, erased: np.ndarray) -> None:
    """Write a sketch as an RGBA PNG: opaque white = drawn, opaque pure red = erased, transparent = neither.

    Where a pixel is both drawn and erased, erased wins (the explicit "no edge"). Atomic.
    """
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ImageFileError(f"Cannot save {p}: sketches are saved as PNG; use a .png file name.")
    drawn, erased = np.asarray(drawn, dtype=bool), np.asarray(erased, dtype=bool)
    if drawn.ndim != 2 or drawn.shape != erased.shape:
        raise ValueError(f"drawn and erased must be H x W of one size, got {drawn.shape} and {erased.shape}")
    rgba = np.zeros((*drawn.shape, 4), np.uint8)
    rgba[drawn] = (255, 255, 255, 255)
    rgba[erased] = (255, 0, 0, 255)
    _save_pillow(p, Image.fromarray(rgba))


def _alpha8(alpha: np.ndarray) -> np.ndarray:
    return alpha if alpha.dtype == np.uint8 else _to8(alpha)


def _resize_labels(labels: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Nearest-neighbour resize of a uint8 label map to ``size`` = (width, height) (pixel-centre exact)."""
    if size is None or (labels.shape[1], labels.shape[0]) == tuple(size):
        return labels
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)


def _save_pillow(p: Path, image: Image.Image) -> None:
    try:
        write_with_atomic(p, lambda tmp: image.save(tmp, format="PNG"))
    except OSError as e:
        raise ImageFileError(f"Cannot save {p}: {e.strerror or e}.") from e
    except Exception as e:
        raise ImageFileError(f"Cannot save {p}: the PNG encoder failed ({e}).") from e


# ------------------------------------------------------------------------------------------------- names


def find_images(root: str | os.PathLike[str], limit: int | None = None) -> list[Path]:
    """Photos under ``root`` (recursive), sorted by relative path so the order is the same everywhere.

    Hidden files and folders are skipped, and so are folders whose name contains ``boundaries`` (BSDS500
    human boundary maps live beside the photos and are not photos). ``ImageFileError`` if ``root`` is not
    a folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ImageFileError(f"photo folder not found: {root}")
    found = sorted(iter_images(root), key=lambda p: p.relative_to(root).as_posix())
    return found[:limit] if limit is not None else found


def iter_images(root: str | os.PathLike[str], deadline: float | None = None) -> Iterator[Path]:
    """The photos :func:`find_images` finds, lazily, folder by folder (for a quick look into a big tree);
    past ``deadline`` (a ``time.monotonic()`` value) it raises ``TimeoutError``."""
    for folder, dirs, files in os.walk(Path(root).expanduser()):
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"searching {root} for photos took too long")
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and "boundaries" not in d.lower())
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_EXTENSIONS:
                yield Path(folder) / name


def suggest_output_path(path: str | os.PathLike[str]) -> Path:
    """``NAME-inpainted.EXT`` beside ``path``; the extension is kept when it is one we write, else ``.png``."""
    p = Path(path)
    suffix = p.suffix if p.suffix.lower() in SUPPORTED_EXTENSIONS else ".png"
    return p.with_name(f"{p.stem}-inpainted{suffix}")
