"""Keep freed memory in the process for the next fill (glibc only; elsewhere a no-op).

glibc serves a large block (above its mmap threshold, which adapts upwards from 128 KiB) with a fresh ``mmap``
and unmaps it when freed, so every full-resolution feature map of the next forward page-faults its memory in
again. On the 2-core CPU that was a fifth of a 512 px structure forward, and made its time swing from 140 to
210 ms between runs. Serving blocks below 32 MiB from the heap and trimming the heap only when 256 MiB lie free
at its top keeps those pages mapped. Larger blocks (a 24 MP photo's arrays) are still mapped and unmapped as
before, so the memory kept is bounded by the working set of one forward.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 256 << 20

_done: bool | None = None


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None  # musl: no


def keep_freed_memory() -> bool:
    """Set the two thresholds once per process; True when they are in effect (glibc accepted both)."""
    global _done
    if _done is None:
        libc = _libc()
        _done = bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                     and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    return _done
