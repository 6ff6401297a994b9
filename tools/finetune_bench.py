"""Does "fine-tune on this photo" pay off? Hole PSNR before and after internal fine-tuning, and its wall time.

    python tools/finetune_bench.py --models DIR [--image NAME] [--photos 6] [--steps 150] [--size 128]
                                     [--batch 4] [--lr 1e-4] [--holes 3] [--work DIR]

For each of ``--photos`` validation photos (``../shared/data/val``, never trained on): a "user" mask (an
object-sized blob the user wants removed) and ``--holes`` smaller synthetic holes placed in the known area,
away from it. The user paints all of them: the engine fills the whole mask in one request (edge model + image
model, as in the editor) with the base model, then the base image model is fine-tuned on the photo with that
mask exactly as the editor's dialog does it (the job ``python -m trainer.finetune_job`` in its own process,
timed from launch to the registered model), and the mask is filled again with the result. Training never
sees a masked pixel, so both scores are on unseen pixels of the same photo: hole PSNR on the object blob and
on the small holes. OpenCV Telea on the same mask is the classical baseline. Masked pixels are replaced by
noise before every fill.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from engine import metrics
from engine.api import FillRequest
from engine.model_files import read_card
from engine.paths import REPO_ROOT
from trainer import finetune_protocol as protocol
from trainer.holdout import blob, place_holes
from trainer.photos import shared_data_dir


def pick_photos(folder: Path, count: int) -> list[Path]:
    """``count`` photos spread evenly over the sorted list (a mix of the val collections)."""
    from trainer.data import find_images

    photos = find_images(folder)
    if not photos:
        raise SystemExit(f"no photos in {folder}")
    index = np.linspace(0, len(photos) - 1, min(count, len(photos))).round().astype(int)
    return [photos[i] for i in index]


def make_masks(h: int, w: int, holes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(user mask, synthetic holes): the holes lie in the known area, 12 px or more from the user's mask and
    from each other."""
    user = blob(h, w, rng, 0.08)
    return user, place_holes(user, holes, rng, area=(0.02, 0.04))


def _noised(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = rgb.copy()
    out[mask] = rng.integers(0, 256, (int(mask.sum()), 3), dtype=np.uint8)
    return out


def hole_scores(filled: np.ndarray, rgb: np.ndarray, user: np.ndarray, holes: np.ndarray) -> tuple[float, float]:
    """(PSNR on the object blob, PSNR on the small holes) of one fill of the whole mask."""
    return metrics.psnr(filled, rgb, user), metrics.psnr(filled, rgb, holes)


def engine_fill(engine, model: str, rgb: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    return engine.fill(FillRequest(_noised(rgb, mask, np.random.default_rng(seed)), mask, model=model)).image


def telea_fill(rgb: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    bgr = cv2.cvtColor(_noised(rgb, mask, np.random.default_rng(seed)), cv2.COLOR_RGB2BGR)
    out = cv2.inpaint(bgr, mask.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def run_finetune(run_dir: Path, spec: protocol.JobSpec, env: dict[str, str]) -> tuple[float, dict]:
    """The dialog's job in its own process; (wall seconds from launch to registered model, last train record)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "trainer.finetune_job", str(run_dir)], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"fine-tune failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    from trainer.records import read_records

    trains = read_records(run_dir, "train")
    return wall, trains[-1] if trains else {}


def _pair(scores) -> str:
    return f"{scores[0]:.2f} / {scores[1]:.2f}"


def _gain(after, before) -> str:
    return f"{after[0] - before[0]:+.2f} / {after[1] - before[1]:+.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/finetune_bench.py", description=__doc__.split("\n")[0])
    p.add_argument("--models", required=True, help="folder holding the base pair (image model + its edge model)")
    p.add_argument("--image", default="edgeconnect-image", help="the base image model's name")
    p.add_argument("--val", default=str(shared_data_dir() / "val"), help="validation photos (never trained on)")
    p.add_argument("--photos", type=int, default=6)
    p.add_argument("--holes", type=int, default=3)
    p.add_argument("--steps", type=int, default=protocol.PHOTO_DEFAULTS["steps"])
    p.add_argument("--size", type=int, default=0, help="crop size (0 = as the dialog proposes)")
    p.add_argument("--batch", type=int, default=protocol.PHOTO_DEFAULTS["batch"])
    p.add_argument("--lr", type=float, default=protocol.PHOTO_DEFAULTS["lr"])
    p.add_argument("--adversarial", action="store_true")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads of the fine-tune (0 = every core but one, as the editor runs it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="", help="scratch folder (default: a new temporary one)")
    p.add_argument("--json", default="", help="also write the per-photo results here")
    args = p.parse_args(argv)

    import tempfile

    from engine.model_store import ModelStore
    from engine.pipeline import Engine
    from trainer.data import read_photo

    models = Path(args.models)
    base_card = models / f"{args.image}.json"
    card = read_card(base_card)
    size = args.size or protocol.default_crop_size(card.resolution, photo=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="finetune-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "INPAINT_STUDIO_HOME": str(work / "home")}
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    rows = []
    print(f"base {args.image} ({card.arguments}, {card.resolution} px, {card.steps} steps); fine-tune: {args.steps} "
          f"steps, {size} px crops, batch {args.batch}, lr {args.lr:g}, "
          f"{'adversarial + FM + L1' if args.adversarial else 'L1 only'}; {os.cpu_count()} cores, "
          f"load average before {load_before[0]:.2f}", flush=True)
    for i, photo in enumerate(pick_photos(Path(args.val), args.photos)):
        rng = np.random.default_rng(args.seed + i)
        rgb = read_photo(photo)
        h, w = rgb.shape[:2]
        user, holes = make_masks(h, w, args.holes, rng)
        tuned_dir = work / f"models-{i}"
        run_dir = work / f"run-{i}"
        run_dir.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(run_dir / protocol.PHOTO_FILE), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        mask = user | holes
        cv2.imwrite(str(run_dir / protocol.MASK_FILE), mask.astype(np.uint8) * 255)
        spec = protocol.JobSpec(name="tuned", base=args.image, base_card=str(base_card), companion=card.companion or "",
                           edge_card=str(models / f"{card.companion}.json"), mode="photo", photo=protocol.PHOTO_FILE,
                           mask=protocol.MASK_FILE, source=photo.name, steps=args.steps, batch_size=args.batch,
                           lr=args.lr, size=size, device="cpu", threads=args.threads, adversarial=args.adversarial,
                           models_dir=str(tuned_dir), seed=args.seed)
        protocol.write_spec(run_dir, spec)
        engine = Engine(device="cpu", store=ModelStore(bundled_dir=models, user_dir=tuned_dir))
        noise_seed = args.seed + 100 + i
        telea = hole_scores(telea_fill(rgb, mask, noise_seed), rgb, user, holes)
        before = hole_scores(engine_fill(engine, args.image, rgb, mask, noise_seed), rgb, user, holes)
        wall, last = run_finetune(run_dir, spec, env)
        engine.refresh_models()
        after = hole_scores(engine_fill(engine, "tuned", rgb, mask, noise_seed), rgb, user, holes)
        row = {"photo": f"{photo.parent.name}/{photo.name}", "size": f"{w}x{h}", "object": float(user.mean()),
               "holes": float(holes.mean()), "telea": telea, "before": before, "after": after, "wall_s": wall,
               "train_s": float(last.get("elapsed_s", float("nan")))}
        rows.append(row)
        print(f"{row['photo']:32s} {row['size']:>8s} object {row['object']:5.1%} holes {row['holes']:5.1%}  "
              f"Telea {telea[0]:6.2f} {telea[1]:6.2f}  base {before[0]:6.2f} {before[1]:6.2f}  tuned {after[0]:6.2f} "
              f"{after[1]:6.2f}  gain {after[0] - before[0]:+5.2f} {after[1] - before[1]:+5.2f} dB  fine-tune "
              f"{wall:6.1f} s (training loop {row['train_s']:.1f} s)", flush=True)
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    mean = {k: np.mean([r[k] for r in rows], axis=0).tolist() for k in ("telea", "before", "after", "wall_s",
                                                                       "train_s")}
    gain = [a - b for a, b in zip(mean["after"], mean["before"], strict=True)]
    print(f"mean (object, small holes): Telea {mean['telea'][0]:.2f} {mean['telea'][1]:.2f}  base "
          f"{mean['before'][0]:.2f} {mean['before'][1]:.2f}  tuned {mean['after'][0]:.2f} {mean['after'][1]:.2f}  "
          f"gain {gain[0]:+.2f} {gain[1]:+.2f} dB  fine-tune {mean['wall_s']:.1f} s (max "
          f"{max(r['wall_s'] for r in rows):.1f} s); load average after {load_after[0]:.2f}")
    print("\nHole PSNR in dB: object blob / small holes.\n")
    print("| photo | size | object + holes | Telea | base | fine-tuned | gain | fine-tune wall |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['photo']} | {r['size']} | {r['object']:.1%} + {r['holes']:.1%} | {_pair(r['telea'])} | "
              f"{_pair(r['before'])} | {_pair(r['after'])} | {_gain(r['after'], r['before'])} | {r['wall_s']:.0f} s |")
    print(f"| **mean** | | | {_pair(mean['telea'])} | {_pair(mean['before'])} | {_pair(mean['after'])} | "
          f"**{_gain(mean['after'], mean['before'])}** | {mean['wall_s']:.0f} s |")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "mean": mean, "load": [load_before, load_after],
                                               "args": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
