"""The equal-budget comparison of docs/architectures.md: every architecture trained for the same CPU time.

    python tools/equal_budget.py --data ../shared/data/train --val ../shared/data/val \\
        --nvidia ../shared/data/masks/nvidia_irregular --work /tmp/equal-budget --budget 1200 --jobs 2

Each architecture trains from scratch with its own config (its paper's losses and optimiser) on the same photos,
crops (128 px from photos scaled to 128-384 px short side, batch 8) and mask mix, single-threaded, until its
training steps have used ``--budget`` process CPU-seconds (``schedule.cpu_budget_s``). EdgeConnect is two
generators: the edge and the image generator get half the budget each. ``--jobs`` runs go side by side (one
thread each). Then every model is exported at the same working resolution and filled by ``inpaint eval``
(texture 0: the network's own fill) beside Telea and the harmonic fill, its parameters counted and its 512 x 512
forward timed. Prints the markdown table and writes it, with the runs, models and eval report, under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The crops, masks and batch every run shares (the structure config's data section).
COMMON = ["--size", "128", "--batch-size", "8", "--workers", "0",
          "--set", "data.max_scale=3.0", "--set", "data.val_images=16",
          "--set", "data.masks.rectangle=0.15", "--set", "data.masks.free_form=0.35",
          "--set", "data.masks.cellular=0.1", "--set", "data.masks.irregular=0.4",
          # A short run: weights averaged over ~100 steps, not 1,000 (most of which would be the initial ones).
          "--set", "optim.ema_decay=0.99", "--set", "schedule.keep_best=false",
          "--set", "schedule.validate_every=1000000", "--set", "schedule.checkpoint_every=100",
          "--set", "optim.steps=1000000"]


@dataclass
class Entry:
    """One architecture of the comparison: the runs that make it and the model ``inpaint eval`` fills with."""

    label: str
    runs: list[tuple[str, str, float, list[str]]]  # (run name, config, share of the budget, extra arguments)
    model: str  # the exported model eval names
    companion: str | None = None  # the edge model an image-stage model is exported with


ENTRIES = [
    Entry("GLCIC (global + local discriminators)",
          [("glcic", "glcic", 1.0, ["--set", "stage.glcic_completion_steps=70",
                                    "--set", "stage.glcic_discriminator_steps=10"])], "cmp-glcic"),
    Entry("Partial-conv U-Net", [("pconv-unet", "pconv-unet", 1.0, [])], "cmp-pconv-unet"),
    Entry("DeepGIN-style (harmonic prefill)",
          [("deepgin", "deepgin", 1.0, ["--set", "model.glcic.arguments.prefill=true"])], "cmp-deepgin"),
    Entry("Improved context encoder, multi-scale D (harmonic prefill)",
          [("context-encoder-ms", "context-encoder-ms", 1.0,
            ["--set", "model.glcic.arguments.prefill=true"])], "cmp-context-encoder-ms"),
    Entry("EdgeConnect pair (edge + image, half the budget each)",
          [("edgeconnect-edge", "small", 0.5, ["--stage", "edge"]),
           ("edgeconnect-image", "small", 0.5, ["--stage", "image"])],
          "cmp-edgeconnect-image-image", companion="cmp-edgeconnect-edge-edge"),
    Entry("LaMa-style FFC (harmonic prefill)", [("lama-ffc", str(ROOT / "trainer/configs/structure.toml"), 1.0, [])],
          "cmp-lama-ffc-image", companion="cmp-edgeconnect-edge-edge"),
]


def _single_thread_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train(work: Path, name: str, config: str, share: float, extra: list[str], args: argparse.Namespace) -> Path:
    """One budgeted run (skipped when its folder already holds a finished one)."""
    run = work / "runs" / name
    log = work / "runs" / f"{name}.log"
    if (run / "metrics.jsonl").is_file() and any('"kind": "end"' in line for line in
                                                  (run / "metrics.jsonl").read_text().splitlines()):
        return run
    config_arg = config if config.endswith(".toml") else str(ROOT / "trainer/configs" / f"{config}.toml")
    command = [str(BIN / "inpaint-train"), "--config", config_arg, "--data", str(args.data), "--val", str(args.val),
               "--out", str(run), "--name", f"cmp-{name}", *COMMON,
               "--set", f"data.masks.irregular_dir={args.nvidia}",
               "--set", f"schedule.cpu_budget_s={args.budget * share:g}", *extra]
    run.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=_single_thread_env(), check=True)
    return run


def _records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("kind") == kind]


def cpu_per_step(run: Path) -> tuple[int, float]:
    """(steps trained, CPU-seconds per step) from the run's last training record."""
    last = _records(run, "train")[-1]
    return int(last["step"]), float(last["cpu_s"]) / max(int(last["step"]), 1)


def model_name(run_name: str, entry: Entry) -> str:
    """The exported model's name (``inpaint-train export`` appends the part, except for completion networks)."""
    if run_name.endswith("-edge"):
        return f"cmp-{run_name}-edge"
    return f"cmp-{run_name}-image" if entry.companion else f"cmp-{run_name}"


def export(work: Path, entry: Entry, resolution: int) -> None:
    for name, _, _, _ in entry.runs:
        companion = ["--companion", entry.companion] if entry.companion and not name.endswith("-edge") else []
        subprocess.run([str(BIN / "inpaint-train"), "export", str(work / "runs" / name), "--out", str(work / "models"),
                        "--name", f"cmp-{name}", "--resolution", str(resolution), "--overwrite", *companion],
                       check=True)


def forward_ms(model_json: Path, side: int = 512, repeats: int = 5) -> tuple[float, int]:
    """(median ms of one fp32 forward at ``side`` x ``side``, parameters) of an exported generator."""
    import torch

    from engine.model_files import load_model

    module, card = load_model(model_json)
    params = sum(p.numel() for p in module.parameters())
    image = torch.rand(1, 3, side, side)
    mask = torch.zeros(1, 1, side, side)
    mask[..., side // 4: 3 * side // 4, side // 4: 3 * side // 4] = 1
    gray, edges = image.mean(1, keepdim=True), torch.zeros(1, 1, side, side)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            start = time.perf_counter()
            if card.stage == "edge":
                module(gray, edges, mask)
            elif card.stage == "image":
                module(image, edges, mask)
            else:
                module(image, mask)
            if i:
                times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), params


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--val", type=Path, required=True)
    p.add_argument("--nvidia", type=Path, required=True, help="NVIDIA irregular masks (training and eval)")
    p.add_argument("--work", type=Path, required=True, help="folder for runs, models and the report")
    p.add_argument("--budget", type=float, default=1200.0, help="CPU-seconds of training per architecture")
    p.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each")
    p.add_argument("--resolution", type=int, default=256, help="working resolution of every export")
    p.add_argument("--limit", type=int, default=0, help="eval on the first N val photos (0 = all)")
    p.add_argument("--stage", choices=["train", "eval", "all"], default="all")
    args = p.parse_args(argv)
    work = args.work.resolve()
    if args.stage in ("train", "all"):
        jobs = [(e, r) for e in ENTRIES for r in e.runs]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for future in [pool.submit(train, work, *run, args) for _, run in jobs]:
                print(f"trained: {future.result()}", flush=True)
        for entry in ENTRIES:
            export(work, entry, args.resolution)
    if args.stage == "train":
        return 0
    backends = ",".join(["telea", "harmonic@0", *(f"{e.model}@0" for e in ENTRIES)])
    report = work / "eval"
    env = {**os.environ, "INPAINT_STUDIO_BUNDLED_MODELS": str(work / "models")}
    subprocess.run([str(BIN / "inpaint"), "eval", "--images", str(args.val), "--exclude", "*boundaries*",
                    "--nvidia", str(args.nvidia), "--backends", backends, "--threads", "2", "--out", str(report),
                    *(["--limit", str(args.limit)] if args.limit else [])], check=True, env=env)
    results = json.loads((report / "results.json").read_text())
    lines = ["| architecture | parameters | CPU s/step | steps in the budget | PSNR | SSIM | hole PSNR | "
             "low-band PSNR | texture | 512 px forward |", "|---" * 10 + "|"]
    for entry in ENTRIES:
        steps = [cpu_per_step(work / "runs" / name) for name, _, _, _ in entry.runs]
        ms, params = 0.0, 0
        for name, _, _, _ in entry.runs:
            t, n = forward_ms(work / "models" / f"{model_name(name, entry)}.json")
            ms, params = ms + t, params + n
        row = results["mean_over_buckets"][f"{entry.model}@0"]
        lines.append(f"| {entry.label} | {params / 1e6:.2f} M | " + " + ".join(f"{c:.2f}" for _, c in steps)
                     + " | " + " + ".join(str(s) for s, _ in steps)
                     + f" | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['hole_psnr']:.2f} | {row['lowband_psnr']:.2f}"
                     f" | {row['texture']:.2f} | {ms:.0f} ms |")
    for baseline in ("telea", "harmonic@0"):
        row = results["mean_over_buckets"][baseline]
        lines.append(f"| {baseline} (classical) | - | - | - | {row['psnr']:.2f} | {row['ssim']:.3f} | "
                     f"{row['hole_psnr']:.2f} | {row['lowband_psnr']:.2f} | {row['texture']:.2f} | - |")
    table = "\n".join(lines)
    (work / "table.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
