"""Training speed: steps/s and images/s of the small and full EdgeConnect configs, and the DDP speed-up.

    inpaint-train bench [--configs small,full] [--stages edge,image] [--steps 3] [--no-ddp] [--write docs/training.md]

Runs the real ``train()`` loop (data loading, both optimizer steps, EMA) on generated photos, one warm-up
step then ``--steps`` timed steps (median step time). Beside each row, the generator's inference speed at the
same size (one forward pass per image, no gradients) as the baseline a training step is compared with, and the
process CPU time per step (all threads; less sensitive than wall time to other programs sharing the machine).
The DDP row compares one process using every core with ``torchrun --nproc_per_node 2`` (one thread each)
on the same per-process batch.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from engine.devices import cpu_cores
from engine.networks import build_network
from engine.paths import REPO_ROOT
from trainer.config import STAGE_PARTS, TrainConfig, apply_overrides, load_config, resolve_config_path
from trainer.loop import train
from trainer.records import cpu_name, read_records

MARK_START = "<!-- bench:start -->"
MARK_END = "<!-- bench:end -->"


def _photos(folder: Path, count: int = 8, side: int = 320) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        img = cv2.GaussianBlur(rng.integers(0, 256, (side, side + 40, 3), dtype=np.uint8), (0, 0), 3)
        for _ in range(6):
            x, y = (int(v) for v in rng.integers(0, side, 2))
            cv2.circle(img, (x, y), int(rng.integers(10, 60)), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
        cv2.imwrite(str(folder / f"p{i}.png"), img)
    return folder


def _bench_config(name: str, stage: str, photos: Path, out: Path, steps: int, device: str) -> TrainConfig:
    return apply_overrides(load_config(resolve_config_path(name)), [
        f"data.train_dir='{photos}'", f"run.out='{out}'", f"stage.name={stage}", f"optim.steps={steps + 1}",
        "schedule.log_every=1", "schedule.validate_every=100000", "schedule.checkpoint_every=100000",
        "data.val_images=0", "optim.workers=0", f"run.device={device}"])


def _median_rate(records: list[dict[str, Any]]) -> float:
    """Median steps/s over the ticks after the first (warm-up) step."""
    rates = [r["steps_per_s"] for r in records if r.get("kind") == "train" and r["step"] > 1]
    return statistics.median(rates) if rates else float("nan")


@torch.no_grad()
def _inference_images_per_s(config: TrainConfig, part: str, device: torch.device) -> float:
    net = getattr(config.model, part)
    module = build_network(net.architecture, net.arguments).to(device).eval()
    n, s = config.optim.batch_size, config.data.size
    channels = 1 if part == "edge" else 3
    x = torch.rand(n, channels, s, s, device=device)
    e = torch.zeros(n, 1, s, s, device=device)
    m = torch.zeros(n, 1, s, s, device=device)
    inputs = (x, m) if part == "glcic" else (x, e, m)  # completion networks take no edges
    module(*inputs)
    times = []
    for _ in range(2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        module(*inputs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return n / min(times)


def bench_training(configs: list[str], stages: list[str], steps: int, device: str, work: Path) -> list[dict]:
    photos = _photos(work / "photos")
    rows = []
    for name in configs:
        for stage in stages:
            out = work / f"{Path(name).stem}-{stage}-{device}"  # a config given as a path: its stem
            records: list[dict[str, Any]] = []
            config = _bench_config(name, stage, photos, out, steps, device)

            def record(r: dict[str, Any], records: list[dict[str, Any]] = records) -> None:
                records.append({**r, "cpu_s": time.process_time()})

            summary = train(config, progress_fn=record)
            rate = _median_rate(records)
            ticks = [r for r in records if r.get("kind") == "train"]
            deltas = [b["cpu_s"] - a["cpu_s"] for a, b in itertools.pairwise(ticks)]
            cpu = statistics.median(deltas) if deltas else float("nan")
            part = STAGE_PARTS[stage][-1]  # the network a stage is timed by (joint: the image generator)
            dev = torch.device(records[0]["device"])
            rows.append({"config": name, "stage": stage, "device": records[0]["hardware"],
                         "size": config.data.size, "batch": config.optim.batch_size,
                         "params_m": sum(p.numel() for p in build_network(
                             getattr(config.model, part).architecture,
                             getattr(config.model, part).arguments).parameters()) / 1e6,
                         "steps_per_s": rate, "images_per_s": rate * config.optim.batch_size,
                         "cpu_s_per_step": cpu,
                         "inference_images_per_s": _inference_images_per_s(config, part, dev),
                         "status": summary.status})
            print(_row_text(rows[-1]), file=sys.stderr)
    return rows


def bench_ddp(steps: int, work: Path, batch: int = 2, threads: int = 0) -> dict[str, Any]:
    """Images/s of the small config's edge stage: 1 process vs 2 Gloo processes.

    ``threads`` torch threads per process; 0 = all cores for the single process, half each for two."""
    photos = _photos(work / "photos")
    results = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    base = ["--config", "small", "--data", str(photos), "--steps", str(steps + 1), "--batch-size", str(batch),
            "--stage", "edge", "--device", "cpu", "--set", "schedule.log_every=1", "--set",
            "schedule.validate_every=100000", "--set", "schedule.checkpoint_every=100000", "--set",
            "data.val_images=0", "--set", "optim.workers=0"]
    for label, procs in (("1 process", 1), ("2 processes (DDP, Gloo)", 2)):
        out = work / f"ddp-{procs}"
        launcher = [sys.executable, "-m", "trainer"] if procs == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs), "-m",
            "trainer"]
        per_process = threads if threads > 0 else max(1, cpu_cores() // procs)
        run_env = {**env, "OMP_NUM_THREADS": str(per_process)}
        proc = subprocess.run([*launcher, *base, "--out", str(out)], env=run_env, cwd=REPO_ROOT,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"DDP bench ({label}) failed:\n{proc.stderr[-2000:]}")
        rate = _median_rate(read_records(out))
        results[label] = {"steps_per_s": rate, "images_per_s": rate * batch * procs}
        print(f"{label}: {results[label]['images_per_s']:.2f} images/s", file=sys.stderr)
    one, two = (results[k]["images_per_s"] for k in results)
    return {"batch_per_process": batch, "results": results, "speedup": two / one if one else float("nan"),
            "threads": threads}


def _row_text(row: dict[str, Any]) -> str:
    return (f"| {row['config']} | {row['stage']} | {row['params_m']:.1f} M | {row['size']} | {row['batch']} | "
            f"{row['device']} | {row['steps_per_s']:.3f} | {row['images_per_s']:.2f} | "
            f"{row['cpu_s_per_step']:.2f} | {row['inference_images_per_s']:.1f} |")


def markdown(rows: list[dict[str, Any]], ddp: dict[str, Any] | None, load: str) -> str:
    lines = [f"Measured {time.strftime('%Y-%m-%d')} with `inpaint-train bench` on {cpu_name()} "
             f"({cpu_cores()} cores), torch {torch.__version__}; load average at the start: {load}.", "",
             "| config | stage | generator | crop px | batch | device | steps/s | images/s | CPU s/step "
             "| inference images/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_row_text(r) for r in rows]
    if ddp:
        per = f"{ddp['threads']} torch thread(s) per process" if ddp["threads"] else "the cores split between processes"
        lines += ["", f"DDP on the CPU, small config, edge stage, batch {ddp['batch_per_process']} per process, "
                  f"{per}:", "",
                  "| launch | steps/s | images/s |", "|---|---|---|"]
        for label, r in ddp["results"].items():
            lines.append(f"| {label} | {r['steps_per_s']:.3f} | {r['images_per_s']:.2f} |")
        lines += ["", f"Speed-up with 2 processes: {ddp['speedup']:.2f}x."]
    return "\n".join(lines) + "\n"


def write_into(doc: Path, text: str) -> None:
    """Replace the text between the bench markers of ``doc`` (append a section if they are missing)."""
    from engine.atomic import write_text_atomic

    current = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    block = f"{MARK_START}\n{text}{MARK_END}"
    if MARK_START in current and MARK_END in current:
        head, rest = current.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        updated = head + block + tail
    else:
        updated = current.rstrip() + f"\n\n## Training speed\n\n{block}\n"
    write_text_atomic(doc, updated)


def build_parser() -> argparse.ArgumentParser:
    """The ``inpaint-train bench`` command line (every option documented in ``--help``)."""
    p = argparse.ArgumentParser(prog="inpaint-train bench", description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="small,full", metavar="LIST",
                   help="comma-separated configs to time: built-in names (small, full) or TOML files "
                        "(default: small,full)")
    p.add_argument("--stages", default="edge,image", metavar="LIST",
                   help="comma-separated training stages to time: edge, image, joint, glcic, completion "
                        "(default: edge,image)")
    p.add_argument("--steps", type=int, default=3, metavar="N",
                   help="timed steps per row, after one warm-up step (default: 3)")
    p.add_argument("--no-ddp", action="store_true",
                   help="skip the DDP comparison (one process vs torchrun with 2 Gloo processes on the CPU)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="torch threads per process (default 0: torch's default; for DDP the cores are split)")
    p.add_argument("--write", metavar="DOC",
                   help="Markdown file to write the tables into, between the bench markers (e.g. docs/training.md)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="inpaint-bench-") as tmp:
        work = Path(tmp)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        rows = []
        for device in devices:
            rows += bench_training(args.configs.split(","), args.stages.split(","), args.steps, device, work)
        ddp = None if args.no_ddp else bench_ddp(max(args.steps, 4), work, threads=args.threads)
    text = markdown(rows, ddp, load)
    print(text)
    if args.write:
        write_into(Path(args.write), text)
    return 0
