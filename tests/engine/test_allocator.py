"""Freed memory stays in the process for the next fill (engine.allocator), where glibc is the allocator."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from engine.allocator import _libc, keep_freed_memory

# A child process allocates, touches and frees 8 MiB (as a feature map would), then counts the page faults of
# doing it again: with the thresholds set, the second block reuses the first one's pages.
_CHILD = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from engine.allocator import keep_freed_memory
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    def touch():
        block = np.empty(8 << 20, np.uint8)
        block.fill(1)
        del block
    touch()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    touch()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(_libc() is None, reason="glibc only: elsewhere keep_freed_memory is a no-op")
def test_a_freed_block_is_reused_without_page_faults() -> None:
    assert _faults("default") >= 100  # 8 MiB (the kernel maps several pages per fault): the block was unmapped
    assert _faults("keep") < 20


def test_it_is_set_once_and_says_whether_it_took_effect() -> None:
    first = keep_freed_memory()
    assert keep_freed_memory() is first
    assert first == (_libc() is not None)
