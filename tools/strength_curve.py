"""The texture-strength trade-off of the default fill: PSNR and texture ratio against strength, as a plot.

    python tools/strength_curve.py --images ../shared/data/val --limit 16 --out docs/images/strength-curve.png

Every photo x the five mask buckets of ``inpaint eval`` (the same seeded masks and noise) is filled twice, at
strength 0 (the structure alone) and 1 (the copy); strength s is then ``structure + s * (copy - structure)``
in the hole, which is what the engine computes (here on the 8-bit results, so within one level of it). Prints
the table and writes the plot.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np

from engine import evaluation as ev
from engine import imageio, metrics
from engine.api import FillOptions, FillRequest
from engine.pipeline import Engine
from trainer.photos import find_photos, shared_nvidia_dir

STRENGTHS = [i / 10 for i in range(11)]
PLOT_W, PLOT_H, PAD = 640, 360, 56


def _fill(engine: Engine, image: np.ndarray, mask: np.ndarray, strength: float) -> np.ndarray:
    return engine.fill(FillRequest(image=image, mask=mask, model="default",
                                   options=FillOptions(device="cpu", texture=strength))).image


def measure(images: Path, limit: int, nvidia: Path | None) -> dict[float, tuple[float, float]]:
    """{strength: (mean PSNR, mean texture ratio)} over every photo x bucket."""
    engine = Engine(device="cpu", cpu_threads=1)
    masks = ev.DefaultMasks(nvidia)
    scores: dict[float, list[tuple[float, float]]] = {s: [] for s in STRENGTHS}
    for path in find_photos(images, limit):
        truth = imageio.load_image(path).rgb
        name = str(path.relative_to(images))
        for bucket, mask in masks(name, *truth.shape[:2]).items():
            if not mask.any():
                continue
            seed = (ev._name_seed(name) * 31 + ev.zlib.crc32(bucket.encode())) % 2**32
            noisy = ev.noise_hole(truth, mask, seed)
            structure = _fill(engine, noisy, mask, 0.0).astype(np.float32)
            copy = _fill(engine, noisy, mask, 1.0).astype(np.float32)
            for s in STRENGTHS:
                out = np.clip(np.rint(structure + s * (copy - structure)), 0, 255).astype(np.uint8)
                scores[s].append((metrics.psnr(out, truth), metrics.texture_ratio(out, truth, mask)))
        print(f"{name}: done", flush=True)
    return {s: (float(np.nanmean([p for p, _ in v])), float(np.nanmean([t for _, t in v]))) for s, v in scores.items()}


def plot(curve: dict[float, tuple[float, float]], title: str) -> np.ndarray:
    """PSNR (blue, left axis) and texture ratio (orange, right axis) against strength."""
    img = np.full((PLOT_H + 2 * PAD, PLOT_W + 2 * PAD, 3), 255, np.uint8)
    xs = sorted(curve)
    psnr = [curve[s][0] for s in xs]
    tex = [curve[s][1] for s in xs]
    p_lo, p_hi = math.floor(min(psnr) * 2) / 2, math.ceil(max(psnr) * 2) / 2 + 1e-6
    t_lo, t_hi = 0.0, max(1.0, math.ceil(max(tex) * 10) / 10)

    def px(s: float) -> int:
        return PAD + round(s * PLOT_W)

    def py(v: float, lo: float, hi: float) -> int:
        return PAD + PLOT_H - round((v - lo) / (hi - lo) * PLOT_H)

    cv2.rectangle(img, (PAD, PAD), (PAD + PLOT_W, PAD + PLOT_H), (0, 0, 0), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for s in xs:
        cv2.putText(img, f"{s:.1f}", (px(s) - 10, PAD + PLOT_H + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for k in range(5):
        v = p_lo + (p_hi - p_lo) * k / 4
        cv2.putText(img, f"{v:.2f}", (4, py(v, p_lo, p_hi) + 4), font, 0.4, (200, 90, 0), 1, cv2.LINE_AA)
        t = t_lo + (t_hi - t_lo) * k / 4
        cv2.putText(img, f"{t:.2f}", (PAD + PLOT_W + 6, py(t, t_lo, t_hi) + 4), font, 0.4, (0, 120, 230), 1,
                    cv2.LINE_AA)
    for values, lo, hi, colour in ((psnr, p_lo, p_hi, (200, 90, 0)), (tex, t_lo, t_hi, (0, 120, 230))):
        points = np.array([(px(s), py(v, lo, hi)) for s, v in zip(xs, values)], np.int32)
        cv2.polylines(img, [points], False, colour, 2, cv2.LINE_AA)
        for x, y in points:
            cv2.circle(img, (int(x), int(y)), 3, colour, -1, cv2.LINE_AA)
    cv2.putText(img, title, (PAD, 22), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "PSNR dB (left)", (PAD, 42), font, 0.45, (200, 90, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "texture ratio (right)", (PAD + 160, 42), font, 0.45, (0, 120, 230), 1, cv2.LINE_AA)
    cv2.putText(img, "texture strength", (PAD + PLOT_W // 2 - 60, PAD + PLOT_H + 40), font, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    return img[..., ::-1]  # RGB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--nvidia", type=Path, default=None, help="NVIDIA irregular mask folder (default: beside "
                                                                   "the checkout, else procedural masks)")
    parser.add_argument("--out", type=Path, required=True, help="plot PNG to write")
    args = parser.parse_args(argv)
    curve = measure(args.images, args.limit, args.nvidia if args.nvidia else shared_nvidia_dir())
    print("| strength | PSNR dB | texture |\n|---|---|---|")
    for s, (p, t) in curve.items():
        print(f"| {s:.1f} | {p:.2f} | {t:.3f} |")
    title = f"default fill, {args.limit} val photos x 5 masks"
    cv2.imwrite(str(args.out), cv2.cvtColor(plot(curve, title), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
