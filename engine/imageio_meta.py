"""Image metadata helpers for ``engine.imageio``: EXIF orientation, EXIF bytes, TIFF tag filtering, dpi."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

EXIF_HEADER = b"Exif\x00\x00"
ORIENTATION = 0x0112
EXIF_IFD = 0x8769
GPS_IFD = 0x8825

# TIFF tags that describe how pixels are stored (or data that an edit makes stale): never copied from
# one file's EXIF into another file's main TIFF directory. Resolution travels separately as dpi.
STRUCTURAL_TAGS = frozenset({
    254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 274, 277, 278, 279, 280, 281, 282, 283,
    284, 288, 289, 290, 291, 292, 293, 296, 301, 317, 320, 321, 322, 323, 324, 325, 330, 332, 338, 339,
    340, 341, 347, 512, 513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532, 34675,
    37724,  # Photoshop ImageSourceData (layers): stale after an edit
    50341,  # PrintImageMatching
})


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (H x W or H x W x C) upright for an EXIF orientation, like ``ImageOps.exif_transpose``."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)
    elif orientation == 7:
        a = np.rot90(a, 2).swapaxes(0, 1)
    elif orientation == 8:
        a = np.rot90(a, 1)
    return np.ascontiguousarray(a)


def orientation_of(im: Image.Image) -> int:
    """EXIF orientation 1..8 of an opened image (1 when absent, unreadable or out of range)."""
    try:
        value = int(im.getexif().get(ORIENTATION, 1))
    except Exception:  # corrupt EXIF must not stop the image from opening
        return 1
    return value if 1 <= value <= 8 else 1


def clean_exif(exif: bytes) -> bytes:
    """Return ``exif`` ready to describe an edited, upright image: orientation 1 and no thumbnail.

    The embedded thumbnail (IFD1) would still show what the user removed, so it is unlinked and its
    bytes zeroed. Both are patched in place so every other byte (maker notes and their offsets) stays
    as it was; bytes that cannot be patched are re-serialised by Pillow, which writes no thumbnail.
    """
    body = exif[len(EXIF_HEADER):] if exif.startswith(EXIF_HEADER) else exif
    patched = _patch_exif(body)
    if patched is not None:
        return EXIF_HEADER + patched
    parsed = Image.Exif()
    parsed.load(exif)
    if ORIENTATION in parsed:
        parsed[ORIENTATION] = 1
    return parsed.tobytes()


def _patch_exif(body: bytes) -> bytes | None:
    try:
        order = {b"II*\x00": "<", b"MM\x00*": ">"}[body[:4]]
        (ifd,) = struct.unpack(order + "I", body[4:8])
        (count,) = struct.unpack(order + "H", body[ifd:ifd + 2])
        data = bytearray(body)
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, kind, n = struct.unpack(order + "HHI", body[entry:entry + 8])
            if tag == ORIENTATION:
                if kind != 3 or n != 1:
                    return None
                data[entry + 8:entry + 10] = struct.pack(order + "H", 1)
        next_at = ifd + 2 + 12 * count
        (ifd1,) = struct.unpack(order + "I", body[next_at:next_at + 4])
        if ifd1:
            data[next_at:next_at + 4] = bytes(4)
            _erase_thumbnail(body, data, order, ifd1)
        return bytes(data)
    except (KeyError, struct.error):
        return None


def _erase_thumbnail(body: bytes, data: bytearray, order: str, ifd1: int) -> None:
    """Zero the JPEG thumbnail IFD1 points at (tags 513/514); cut it off when it ends the block."""
    (count,) = struct.unpack(order + "H", body[ifd1:ifd1 + 2])
    values = {}
    for i in range(count):
        entry = ifd1 + 2 + 12 * i
        tag, kind = struct.unpack(order + "HH", body[entry:entry + 4])
        if tag in (513, 514):
            fmt = "I" if kind == 4 else "H"
            values[tag] = struct.unpack(order + fmt, body[entry + 8:entry + 8 + struct.calcsize(fmt)])[0]
    start, length = values.get(513, 0), values.get(514, 0)
    if start and length and start + length <= len(body):
        data[start:start + length] = bytes(length)
        if start + length == len(body):
            del data[start:]


def exif_bytes(im: Image.Image, is_tiff: bool) -> bytes | None:
    """The EXIF of an opened image as ``Exif\\0\\0`` + TIFF bytes with orientation 1, or None.

    For TIFF files the EXIF is the main directory itself, so only its descriptive tags (camera, dates,
    the EXIF and GPS sub-directories, copyright...) are kept, never the tags that describe pixel storage.
    """
    try:
        if is_tiff:
            source = im.getexif()
            kept = Image.Exif()
            for tag, value in source.items():
                if tag not in STRUCTURAL_TAGS:
                    kept[tag] = source.get_ifd(tag) if tag in (EXIF_IFD, GPS_IFD) else value
            return kept.tobytes() if len(kept) else None
        raw = im.info.get("exif")
        if not raw:
            return None
        raw = bytes(raw)
        if not raw.startswith(EXIF_HEADER):
            raw = EXIF_HEADER + raw
        Image.Exif().load(raw)  # refuse bytes Pillow cannot parse rather than copy garbage around
        return clean_exif(raw)
    except Exception:  # unreadable EXIF is dropped, the pixels still load
        return None


def exif_tags_for_tiff(exif: bytes | None) -> Iterator[tuple[int, Any]]:
    """(tag, value) pairs of ``exif`` that may go into a TIFF's main directory; sub-IFDs as dicts."""
    if not exif:
        return
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        items = [(tag, parsed.get_ifd(tag) if tag in (EXIF_IFD, GPS_IFD) else value)
                 for tag, value in parsed.items() if tag not in STRUCTURAL_TAGS]
    except Exception:  # metadata that cannot be parsed is not written
        return
    yield from items


def fit_jpeg_exif(exif: bytes | None) -> bytes | None:
    """EXIF small enough for a JPEG APP1 segment (65533 bytes): re-serialised without the thumbnail
    (IFD1) if needed, or dropped when even that is too long."""
    limit = 65533
    if not exif or len(exif) <= limit:
        return exif
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        smaller = parsed.tobytes()
    except Exception:
        return None
    return smaller if len(smaller) <= limit else None


def pillow_dpi(im: Image.Image) -> tuple[float, float] | None:
    """The image's dpi as two positive floats, or None when absent or nonsense."""
    try:
        x, y = (float(v) for v in im.info["dpi"])
    except (KeyError, TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None
