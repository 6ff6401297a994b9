"""What does texture cost in PSNR? A reference point for the quality bar.

    python tools/texture_cost.py --images DIR [--limit N] [--alphas 0,0.5,0.65,1]

For every image and mask of the default evaluation set, the hole is filled with the harmonic fill (the
smoothest fill, ``engine.networks.prefill``) plus ``alpha`` x the photo's own fine detail (its high-pass band,
image minus a Gaussian blur of sigma 2) taken from a shifted position, so it has exactly the statistics
of the real texture but is not aligned with it. That is the best any generator can do that produces
realistic texture without knowing the true texture at each pixel. The table shows how much PSNR a given
texture ratio costs on top of the smooth fill.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from engine import metrics
from engine.evaluation import DefaultMasks
from engine.imageio import load_image
from engine.networks.prefill import harmonic_fill
from trainer.photos import find_photos, shared_nvidia_dir

SHIFT = (37, 53)  # px: far beyond the correlation length of photo detail


def detail_band(rgb: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """The photo's fine detail: the image minus its Gaussian blur (float32, zero mean locally)."""
    image = rgb.astype(np.float32)
    return image - cv2.GaussianBlur(image, (0, 0), sigma)


def smooth_fill(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The harmonic fill of ``mask`` in ``rgb`` as float32 0..255."""
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    hole = torch.from_numpy(np.ascontiguousarray(mask))[None, None].float()
    with torch.inference_mode():
        return harmonic_fill(image, hole)[0].permute(1, 2, 0).numpy() * 255.0


def textured_fill(rgb: np.ndarray, mask: np.ndarray, alpha: float, smooth: np.ndarray | None = None) -> np.ndarray:
    """``rgb`` with its hole replaced by the smooth fill plus ``alpha`` x misaligned real detail (uint8)."""
    smooth = smooth_fill(rgb, mask) if smooth is None else smooth
    detail = np.roll(detail_band(rgb), SHIFT, axis=(0, 1))
    filled = np.clip(smooth + alpha * detail, 0, 255).round().astype(np.uint8)
    out = rgb.copy()
    out[mask] = filled[mask]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/texture_cost.py", description=__doc__.split("\n")[0])
    p.add_argument("--images", required=True,
                   help="folder of photos (searched recursively; folders of boundary maps, *boundaries*, skipped)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N photos (0 = all)")
    p.add_argument("--alphas", default="0,0.5,0.65,1", help="comma-separated detail strengths")
    args = p.parse_args(argv)
    alphas = [float(a) for a in args.alphas.split(",")]
    masks = DefaultMasks(shared_nvidia_dir())
    scores: dict[tuple[str, float], list[tuple[float, float]]] = defaultdict(list)
    photos = find_photos(Path(args.images), args.limit or None)
    for path in photos:
        rgb = np.ascontiguousarray(load_image(path).rgb[..., :3])
        for bucket, mask in masks(path.name, *rgb.shape[:2]).items():
            smooth = smooth_fill(rgb, mask)
            for alpha in alphas:
                out = textured_fill(rgb, mask, alpha, smooth)
                scores[(bucket, alpha)].append((metrics.psnr(out, rgb), metrics.texture_ratio(out, rgb, mask)))
    print(f"{len(photos)} photos; hole = harmonic fill + alpha x misaligned real detail\n")
    print("| bucket | " + " | ".join(f"alpha {a:g}: PSNR / texture" for a in alphas) + " |")
    print("|---|" + "---|" * len(alphas))
    for bucket in masks.buckets:
        cells = []
        for alpha in alphas:
            values = np.array(scores[(bucket, alpha)])
            cells.append(f"{np.nanmean(values[:, 0]):.2f} / {np.nanmean(values[:, 1]):.2f}")
        print(f"| {bucket} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
