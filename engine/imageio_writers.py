"""Encoders Pillow lacks: 16-bit PNG (any channel count) and TIFF that keeps EXIF sub-IFDs (8 or 16 bits).

Pillow cannot write RGB or RGBA at 16 bits per sample, and its TIFF writer drops the EXIF and GPS
sub-IFDs, so these two small writers cover those cases. Both take samples as H x W x C (C = 1 gray,
2 gray + alpha, 3 RGB, 4 RGBA) and write to an open binary file; callers wrap them in ``engine.atomic``.
"""

from __future__ import annotations

import struct
import zlib
from typing import IO

import numpy as np
from PIL import TiffTags
from PIL.TiffImagePlugin import ImageFileDirectory_v2

from engine.imageio_meta import exif_tags_for_tiff

_PNG_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
_ZLIB_LEVEL = 3  # level 6 is ~4x slower on photos for files only ~5% smaller
_ROWS_PER_BLOCK = 256
_STRIP_BYTES = 1 << 18


def _png_chunk(out: IO[bytes], kind: bytes, data: bytes) -> None:
    out.write(struct.pack(">I", len(data)) + kind + data)
    out.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _sub_filter(rows: np.ndarray, pixel_bytes: int) -> np.ndarray:
    """PNG 'Sub' filter on a block of byte rows (uint8 arithmetic wraps as the spec wants)."""
    out = rows.copy()
    out[:, pixel_bytes:] -= rows[:, :-pixel_bytes]
    return out


def write_png16(out: IO[bytes], samples: np.ndarray, icc: bytes | None, exif: bytes | None,
                dpi: tuple[float, float] | None = None) -> None:
    """Write ``samples`` (H x W x C uint16) as a 16-bit PNG with optional ICC profile, EXIF and dpi."""
    h, w, c = samples.shape
    out.write(b"\x89PNG\r\n\x1a\n")
    _png_chunk(out, b"IHDR", struct.pack(">IIBBBBB", w, h, 16, _PNG_COLOR_TYPE[c], 0, 0, 0))
    if icc:
        _png_chunk(out, b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if dpi:
        ppm = [max(1, round(d / 0.0254)) for d in dpi]
        _png_chunk(out, b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1))
    if exif:
        _png_chunk(out, b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    pixel_bytes = 2 * c
    packer = zlib.compressobj(_ZLIB_LEVEL)
    pending = b""
    for top in range(0, h, _ROWS_PER_BLOCK):
        block = np.ascontiguousarray(samples[top:top + _ROWS_PER_BLOCK], dtype=">u2")
        rows = block.view(np.uint8).reshape(block.shape[0], w * pixel_bytes)
        filtered = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
        filtered[:, 0] = 1  # filter type Sub
        filtered[:, 1:] = _sub_filter(rows, pixel_bytes)
        pending += packer.compress(filtered.tobytes())
        if len(pending) >= 1 << 20:
            _png_chunk(out, b"IDAT", pending)
            pending = b""
    pending += packer.flush()
    _png_chunk(out, b"IDAT", pending)
    _png_chunk(out, b"IEND", b"")


def _strips(samples: np.ndarray) -> tuple[int, list[bytes]]:
    """Deflate-compressed strips with the horizontal-difference predictor (TIFF predictor 2)."""
    h, w, c = samples.shape
    row_bytes = w * c * samples.dtype.itemsize
    rows_per_strip = max(1, min(h, _STRIP_BYTES // max(1, row_bytes)))
    strips = []
    for top in range(0, h, rows_per_strip):
        block = samples[top:top + rows_per_strip]
        diff = block.copy()
        diff[:, 1:] -= block[:, :-1]  # unsigned arithmetic wraps, as the predictor expects
        strips.append(zlib.compress(diff.astype(diff.dtype.newbyteorder("<"), copy=False).tobytes(), _ZLIB_LEVEL))
    return rows_per_strip, strips


def write_tiff(out: IO[bytes], samples: np.ndarray, icc: bytes | None, exif: bytes | None,
               dpi: tuple[float, float] | None = None) -> None:
    """Write ``samples`` (H x W x C, uint8 or uint16) as a little-endian Deflate TIFF.

    EXIF tags from ``exif`` are merged into the main IFD (structural tags skipped) with the EXIF and
    GPS sub-IFDs kept; orientation is written as 1.
    """
    h, w, c = samples.shape
    bits = 8 * samples.dtype.itemsize
    rows_per_strip, strips = _strips(samples)
    ifd = ImageFileDirectory_v2(prefix=b"II")
    for tag, value in exif_tags_for_tiff(exif):
        ifd[tag] = value
    ifd[256] = w
    ifd[257] = h
    ifd[258] = (bits,) * c
    ifd[259] = 8  # Adobe Deflate
    ifd[262] = 1 if c <= 2 else 2  # BlackIsZero or RGB
    ifd[274] = 1
    ifd[277] = c
    ifd[278] = rows_per_strip
    ifd[284] = 1
    ifd[317] = 2  # horizontal differencing
    ifd[339] = (1,) * c
    if c in (2, 4):
        ifd[338] = (2,)  # unassociated alpha
    if icc:
        ifd[34675] = icc
        ifd.tagtype[34675] = TiffTags.UNDEFINED
    if dpi:
        ifd[282] = float(dpi[0])
        ifd[283] = float(dpi[1])
        ifd[296] = 2
    offsets, position = [], 0
    for strip in strips:
        offsets.append(position)
        position += len(strip)
    ifd[273] = tuple(offsets)  # relative: tobytes() shifts them past the IFD
    ifd.tagtype[273] = TiffTags.LONG
    ifd[279] = tuple(len(s) for s in strips)
    ifd.tagtype[279] = TiffTags.LONG
    out.write(b"II*\x00" + struct.pack("<I", 8))
    out.write(ifd.tobytes(8))
    for strip in strips:
        out.write(strip)

