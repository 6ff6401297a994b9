"""Smoke test of an installed (not editable) wheel, run by ``.ci/run`` with the wheel venv's Python from a folder
outside the checkout: ``inpaint models`` lists the bundled models from the installed package data, and one
``inpaint fill`` with the bundled model fills the hole and leaves every other pixel as it was.

Usage: python wheel_smoke.py PATH/TO/venv/bin/inpaint
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

MODEL = "edgeconnect-preview-image"


def run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        sys.exit(f"wheel smoke test: {' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"wheel smoke test: {message}")


def main(inpaint: str) -> None:
    venv = Path(sys.prefix).resolve()
    import engine

    check(venv in Path(engine.__file__).resolve().parents, f"engine imported from {engine.__file__}, not the venv")
    listing = json.loads(run(inpaint, "models", "--json"))
    bundled = Path(listing["bundled_dir"]).resolve()
    check(venv in bundled.parents and bundled.is_dir(), f"bundled models read from {bundled}, not the package")
    backends = {b["name"]: b for b in listing["backends"]}
    info = backends.get(MODEL, {})
    check(info.get("kind") == "neural" and info.get("source") == "bundled", f"{MODEL} not listed: {backends}")

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:128]
    photo = np.stack([xx * 2, yy * 2, 128 + 0 * xx], axis=-1) + rng.integers(0, 20, (96, 128, 1))
    photo = photo.clip(0, 255).astype(np.uint8)
    hole = np.zeros((96, 128), bool)
    hole[30:60, 40:80] = True
    Image.fromarray(photo).save("photo.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save("mask.png")
    said = run(inpaint, "fill", "photo.png", "--mask", "mask.png", "--model", MODEL, "-o", "filled.png")
    filled = np.asarray(Image.open("filled.png").convert("RGB"))
    check(filled.shape == photo.shape and np.array_equal(filled[~hole], photo[~hole]),
          "pixels outside the hole changed")
    check(f"with {MODEL}" in said, f"the fill did not use {MODEL}: {said}")
    print(f"wheel smoke test passed: bundled models in {bundled}; {said.strip()}")


if __name__ == "__main__":
    main(sys.argv[1])
