"""Saving photos atomically in the format of the file name's extension, with what the source had (EXIF with
orientation 1 and no thumbnail, ICC profile, dpi, alpha, 16-bit depth) when it is given as ``like``."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from engine.atomic import write_with_atomic
from engine.errors import ImageFileError
from engine.imageio_meta import clean_exif, fit_jpeg_exif
from engine.imageio_read import SUPPORTED_EXTENSIONS, LoadedImage, luma, to_8bit
from engine.imageio_writers import write_png16, write_tiff
from engine.path_problems import path_problem, shown

_FORMAT_OF_EXTENSION = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                        ".tiff": "TIFF", ".bmp": "BMP"}
_ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")
_HIGH_DEPTH_FORMATS = ("PNG", "TIFF")


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
    channels = [luma(rgb)[..., None]] if gray else [rgb]
    if alpha is not None:
        channels.append((alpha if alpha.dtype == np.uint8 else to_8bit(alpha))[..., None])
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
    fill = (luma(rgb) if like.gray else rgb).astype(np.uint16) * 257
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


def save_png(p: Path, image: Image.Image) -> None:
    try:
        write_with_atomic(p, lambda tmp: image.save(tmp, format="PNG"))
    except OSError as e:
        raise ImageFileError(f"Cannot save {p}: {e.strerror or e}.") from e
    except Exception as e:
        raise ImageFileError(f"Cannot save {p}: the PNG encoder failed ({e}).") from e


def suggest_output_path(path: str | os.PathLike[str]) -> Path:
    """``NAME-inpainted.EXT`` beside ``path``; the extension is kept when it is one we write, else ``.png``."""
    p = Path(path)
    suffix = p.suffix if p.suffix.lower() in SUPPORTED_EXTENSIONS else ".png"
    return p.with_name(f"{p.stem}-inpainted{suffix}")
