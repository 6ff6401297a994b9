"""Run an ``inpaint`` command with the default fill's native texture copy cached on disk.

    python tools/cached_copy.py --cache DIR [--compose FILE.py] -- eval --images ../shared/data/val ...
    python tools/cached_copy.py --cache DIR [--compose FILE.py] -- tools/removal_grid.py --images ...

The copy (the ``pypatchmatch`` wheel in its child process, ``engine.texture.copier``) is most of a default
fill's time and does not depend on the structure model or on how the two are composed. The first run stores
each copy under ``DIR`` (one ``.npy`` per crop, keyed by a hash of the crop, its hole and the user's mask);
later runs read it back instead of copying, so a change to the composite or to the structure model is scored on
all 80 val photos x 5 masks in about 2 minutes instead of 14. ``--compose FILE.py`` replaces
``engine.texture.synthesis.compose`` by the ``compose`` function that file defines (same signature), for
experiments. A cached copy is only valid while the copy's own code (``engine.texture.native``) is unchanged:
use a new ``DIR`` after changing it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import runpy
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.texture import copier, synthesis


def copy_key(image: np.ndarray, hole: np.ndarray, excluded: np.ndarray) -> str:
    """The cache key of one copy job: a hash of its three arrays' shapes and bytes."""
    digest = hashlib.sha1()
    for array in (image, hole, excluded):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class CachedCopier(copier.NativeCopier):
    """``NativeCopier`` that reads a job's copy from ``folder`` when it is there and stores it when it is not."""

    folder = Path(".")

    def submit(self, image: np.ndarray, hole: np.ndarray, excluded: np.ndarray) -> None:
        self._path = self.folder / f"{copy_key(image, hole, excluded)}.npy"
        self._hit = self._path.exists()
        if not self._hit:
            super().submit(image, hole, excluded)

    def result(self, wait: Callable[[], None] | None = None) -> np.ndarray | None:
        if getattr(self, "_hit", False):
            self._hit = False
            stored = np.load(self._path, allow_pickle=False)
            return None if stored.size == 0 else stored
        copied = super().result(wait)
        partial = self._path.with_name(self._path.stem + ".partial.npy")
        np.save(partial, np.zeros(0, np.float32) if copied is None else copied)
        os.replace(partial, self._path)  # atomic: an interrupted run never leaves a truncated copy
        return copied


def install(folder: Path, compose_file: Path | None = None) -> None:
    """Route the engine's copies through the cache in ``folder``; optionally replace the composite."""
    import engine.pipeline as pipeline

    folder.mkdir(parents=True, exist_ok=True)
    CachedCopier.folder = folder
    pipeline.NativeCopier = CachedCopier  # type: ignore[misc]
    if compose_file is not None:
        namespace = runpy.run_path(str(compose_file), init_globals={"synthesis": synthesis})
        if not callable(namespace.get("compose")):
            raise SystemExit(f"{compose_file}: defines no compose() function")
        synthesis.compose = namespace["compose"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder of cached copies (made if missing)")
    parser.add_argument("--compose", type=Path, default=None, help="a .py file defining compose()")
    args = parser.parse_args(argv[:len(argv) - len(rest) - 1] if "--" in argv else argv)
    if not rest:
        parser.error("give the command after --: an inpaint subcommand, or a tools/*.py script and its arguments")
    install(args.cache, args.compose)
    if rest[0].endswith(".py"):
        sys.argv = rest
        runpy.run_path(rest[0], run_name="__main__")
        return 0
    from engine.cli import main as inpaint_main

    return inpaint_main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
