"""Speed benchmark of the fill pipeline: the default fill and a neural model, with the unguided PatchMatch
(pypatchmatch, radius 3) and OpenCV Telea baselines run on the same cases in the same run.

Cases:
* ``crop512``: a 512 x 512 photo with a centred 256 x 256 hole (25%), median of ``--runs`` fills; the
  network stages (edges + image) are reported beside the end-to-end time.
* ``hole300``: a 6000 x 4000 photo with a 300 x 300 hole, end to end in-process, against the same hole in a
  1000 x 1000 photo (the ratio shows whether cost follows the mask or the photo).
* ``hole2000``: a 6000 x 4000 photo with a 2000 x 1500 hole: time and peak memory. Each fill runs in a
  fresh subprocess. Just before the fill the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``)
  and afterwards the peak (``VmHWM``) is read: the peak resident memory of the whole process during the
  fill (Python, torch, the models, the 72 MB photo and its output copy, and the fill's working memory),
  reported beside the resident size just before it. Without /proc, ``ru_maxrss`` (the lifetime peak).

Columns: ``total`` is wall time end to end (validation, regions, networks, upsampling, composite, the copy of
the photo); ``CPU`` is the process CPU time during the fill, all threads together: on a shared, busy machine
with ``--threads 1`` it is the better guide to what an idle machine would take; the stage columns come from
``FillResult.timings``.

Until trained models exist, the neural pair is randomly initialised with the default architecture
(``--base-channels 32 --residual-blocks 4 --resolution 256``), written and loaded through the real model
files; ``--models bundled`` (or a folder) benchmarks real models instead. Speed does not depend on the
weights. Photos: ``--photo FILE`` resized to each size, with fine noise added so the large ones have texture
(without it, a synthetic photo, noise included).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from engine import paths
from engine.api import FALLBACK_STRUCTURE, FillOptions, FillRequest, FillResult
from engine.cli_types import positive_int
from engine.devices import cpu_cores
from engine.errors import EngineError

CASES = ("crop512", "hole300", "hole2000")
STAGE_KEYS = ("crop", "edges", "image", "upsample", "texture", "composite")


# ----- inputs -----
def read_source(path: Path | None) -> np.ndarray | None:
    """The ``--photo`` the cases are cut from (RGB uint8), or None for a synthetic one."""
    if path is None:
        return None
    from engine.imageio import load_image

    return load_image(path).rgb


def make_photo(width: int, height: int, source: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """An RGB uint8 photo of the given size: ``source`` resized, else synthetic; fine noise added."""
    rng = np.random.default_rng(seed)
    if source is not None:
        photo = cv2.resize(source, (width, height), interpolation=cv2.INTER_CUBIC)
    else:
        small = (rng.random((max(2, height // 64), max(2, width // 64), 3)) * 255).astype(np.uint8)
        photo = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-8, 9, (min(height, 512), width, 3), dtype=np.int16)
    for y in range(0, height, 512):  # fine texture, in bands to keep memory low
        band = photo[y:y + 512]
        band[:] = np.clip(band.astype(np.int16) + noise[:band.shape[0]], 0, 255).astype(np.uint8)
    return photo


def centred_hole(width: int, height: int, hole_w: int, hole_h: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    x0, y0 = (width - hole_w) // 2, (height - hole_h) // 2
    mask[y0:y0 + hole_h, x0:x0 + hole_w] = True
    return mask


# ----- engine -----
def write_random_models(folder: Path, base_channels: int, residual_blocks: int, resolution: int) -> Path:
    """Randomly initialised default-architecture pair saved as real model files (named like the bundled pair)."""
    import torch

    from engine.model_files import ModelCard, save_model
    from engine.networks import EdgeGenerator, ImageGenerator

    torch.manual_seed(0)
    args = {"base_channels": base_channels, "residual_blocks": residual_blocks}
    info = {"resolution": resolution, "data": "random init (benchmark)"}
    save_model(EdgeGenerator(**args), ModelCard("edgeconnect-edge", "edgeconnect-edge", args, "edge", **info), folder)
    save_model(ImageGenerator(**args), ModelCard("edgeconnect-image", "edgeconnect-image", args, "image",
                                                 companion="edgeconnect-edge", **info), folder)
    return folder


def make_engine(args: argparse.Namespace):
    from engine.model_store import ModelStore
    from engine.pipeline import Engine

    if args.models == "random":
        folder = Path(tempfile.mkdtemp(prefix="inpaint-bench-"))
        write_random_models(folder, args.base_channels, args.residual_blocks, args.resolution)
        store = ModelStore(bundled_dir=folder, user_dir=Path(tempfile.mkdtemp(prefix="inpaint-bench-user-")))
    elif args.models == "bundled":
        store = ModelStore()
    else:
        if not Path(args.models).is_dir():
            raise EngineError(f"--models {args.models}: not 'random', 'bundled' or a folder of model files")
        store = ModelStore(bundled_dir=args.models, user_dir=Path(tempfile.mkdtemp(prefix="inpaint-bench-user-")))
    return Engine(device=args.device, cpu_threads=args.threads, store=store)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(engine, request: FillRequest, runs: int) -> tuple[float, float, dict[str, float], FillResult]:
    """Median wall time and CPU time over ``runs`` fills (after one warm-up) and the median of each stage."""
    result = engine.fill(request)  # warm-up: loads models, first-call allocations
    walls: list[float] = []
    cpus: list[float] = []
    stages: dict[str, list[float]] = {k: [] for k in STAGE_KEYS}
    for _ in range(runs):
        t, c = time.perf_counter(), _cpu_seconds()
        result = engine.fill(request)
        walls.append(time.perf_counter() - t)
        cpus.append(_cpu_seconds() - c + result.timings.get("copy_cpu", 0.0))  # + the copy's child process
        for key in STAGE_KEYS:
            stages[key].append(result.timings.get(key, 0.0))
    return (statistics.median(walls), statistics.median(cpus), {k: statistics.median(v) for k, v in stages.items()},
            result)


def _row(case: str, method: str, wall: float, cpu: float, stages: dict[str, float], note: str = "") -> dict:
    return {"case": case, "method": method, "wall_s": wall, "cpu_s": cpu,
            **{k: stages.get(k, 0.0) for k in STAGE_KEYS}, "note": note}


BASELINES = ("patchmatch", "telea")  # pypatchmatch (radius 3) and OpenCV Telea on the same cases


def _methods(model: str) -> list[str]:
    """The default fill, the neural model, and the classical baselines, each once."""
    return list(dict.fromkeys(("default", model, *BASELINES)))


def run_case_crop512(engine, model: str, runs: int, source: np.ndarray | None) -> list[dict]:
    photo = make_photo(512, 512, source)
    mask = centred_hole(512, 512, 256, 256)
    rows = []
    for name in _methods(model):
        wall, cpu, stages, result = _timed(engine, FillRequest(photo, mask, model=name), runs)
        note = (f"edges+image {1000 * (stages['edges'] + stages['image']):.0f} ms, "
                f"texture {1000 * stages.get('texture', 0.0):.0f} ms" if name not in BASELINES else "")
        rows.append(_row("512x512, 25% hole", result.backend, wall, cpu, stages, note))
    structure = engine.resolve_model("default")
    if structure != FALLBACK_STRUCTURE:  # the default's network alone (texture 0), with every thread
        wall, cpu, stages, result = _timed(
            engine, FillRequest(photo, mask, model=structure, options=FillOptions(texture=0.0)), runs)
        network_ms = 1000 * (stages["edges"] + stages["image"])
        rows.append(_row("512x512, 25% hole", f"{result.backend}@0", wall, cpu, stages,
                         f"the default's structure alone: edges+image {network_ms:.0f} ms"))
    return rows


def run_case_hole300(engine, model: str, runs: int, source: np.ndarray | None) -> list[dict]:
    rows = []
    for width, height in ((1000, 1000), (6000, 4000)):
        photo = make_photo(width, height, source)
        mask = centred_hole(width, height, 300, 300)
        for name in _methods(model):
            wall, cpu, stages, result = _timed(engine, FillRequest(photo, mask, model=name), runs)
            box = result.regions[0]
            rows.append(_row(f"{width}x{height}, 300x300 hole", result.backend, wall, cpu, stages,
                             f"crop {box[2] - box[0]}x{box[3] - box[1]}"))
        del photo, mask
    for name in {r["method"] for r in rows}:
        small, big = (r for r in rows if r["method"] == name)
        big["note"] += f"; {big['wall_s'] / small['wall_s']:.2f}x the 1000x1000 time"
    return rows


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark where Linux allows it; return the current RSS in kB."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    current = _status_kb("VmRSS")
    return current if current is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_rss_kb() -> int:
    """Peak RSS since the last reset (Linux ``VmHWM``), else the process lifetime peak (``ru_maxrss``)."""
    peak = _status_kb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child_hole2000(args: argparse.Namespace, model: str) -> dict:
    """Runs inside the subprocess: one warm-up on a small photo, then the measured 24 MP fill."""
    engine = make_engine(args)
    source = read_source(args.photo)
    warm = make_photo(600, 400, source)
    engine.fill(FillRequest(warm, centred_hole(600, 400, 200, 150), model=model))
    photo = make_photo(6000, 4000, source)
    del source
    mask = centred_hole(6000, 4000, 2000, 1500)
    del warm
    before = _reset_peak_rss()
    t, c = time.perf_counter(), _cpu_seconds()
    result = engine.fill(FillRequest(photo, mask, model=model))
    wall, cpu = time.perf_counter() - t, _cpu_seconds() - c
    peak = _peak_rss_kb()
    return {"wall_s": wall, "cpu_s": cpu, "timings": result.timings, "backend": result.backend, "peak_kb": peak,
            "before_kb": before, "regions": result.regions}


def run_case_hole2000(args: argparse.Namespace, model: str) -> list[dict]:
    rows = []
    for name in _methods(model):
        command = [sys.executable, "-m", "engine.bench", *args.passthrough, "--child", name]
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                  p for p in (str(paths.REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)})
        if done.returncode != 0:
            raise RuntimeError(f"benchmark subprocess failed:\n{done.stderr[-2000:]}")
        data = json.loads(done.stdout.strip().splitlines()[-1])
        x0, y0, x1, y1 = data["regions"][0]
        note = (f"peak RSS {data['peak_kb'] / 1024:.0f} MB during the fill (whole process), "
                f"{data['before_kb'] / 1024:.0f} MB just before it; crop {x1 - x0}x{y1 - y0}")
        rows.append(_row("6000x4000, 2000x1500 hole", data["backend"], data["wall_s"], data["cpu_s"], data["timings"],
                         note))
    return rows


def wait_until_idle(limit: float, threshold: float = 0.5) -> None:
    """Sleep until the 1-minute load average is below ``threshold`` or ``limit`` seconds have passed."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(5)


# ----- output -----
def format_table(rows: list[dict], markdown: bool = False) -> str:
    header = ["case", "method", "total ms", "CPU ms", *[f"{k} ms" for k in STAGE_KEYS], "notes"]
    lines = []
    for r in rows:
        lines.append([r["case"], r["method"], f"{1000 * r['wall_s']:.0f}", f"{1000 * r['cpu_s']:.0f}",
                      *[f"{1000 * r[k]:.0f}" for k in STAGE_KEYS], r["note"]])
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), *(fmt.format(*line) for line in lines)])


def describe(engine, args: argparse.Namespace) -> str:
    import torch

    models = ("randomly initialised edgeconnect pair, "
              f"base_channels={args.base_channels}, residual_blocks={args.residual_blocks}, "
              f"working resolution {args.resolution}") if args.models == "random" else f"models from {args.models}"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{platform.processor() or platform.machine()}, {cpu_cores()} CPU cores, torch {torch.__version__}, "
            f"OpenCV {cv2.__version__}; device {engine.device_name}; {models}; median of {args.runs} runs "
            f"after one warm-up (hole2000: one run in a fresh process); load average at the end {load}")


def pick_model(engine, requested: str | None, models: str) -> str:
    """The neural model to time: the one asked for, else the random pair's, else the folder's first."""
    if requested:
        engine.backend(requested)  # EngineError naming the problem, before anything is timed
        return requested
    if models == "random":
        return "edgeconnect-image"
    neural = [m.name for m in engine.models() if m.kind in ("neural", "completion")]
    if not neural:
        raise EngineError(f"no usable neural model in {models!r}; see `inpaint models`")
    return neural[0]


def _check_writable(path: Path) -> None:
    """Fail before a long run, not after it, when the markdown file cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise EngineError(f"--markdown {path} is a folder; give a file name")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise EngineError(f"--markdown {path}: cannot write into {folder}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inpaint bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--runs", type=positive_int, default=5,
                        help="timed runs per case (median reported; default 5)")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps (default cpu)")
    parser.add_argument("--models", default="random",
                        help="'random' (default-architecture random init), 'bundled', or a model folder")
    parser.add_argument("--model", default=None,
                        help="neural model to time (default: edgeconnect-image for random models, else the first "
                             "edge-guided or completion model of the folder)")
    parser.add_argument("--base-channels", type=int, default=32, help="width of the random models (default 32)")
    parser.add_argument("--residual-blocks", type=int, default=4, help="depth of the random models (default 4)")
    parser.add_argument("--resolution", type=int, default=256, help="working resolution of the random models")
    parser.add_argument("--photo", type=Path, metavar="FILE",
                        help="photo the cases are cut from, resized to each size (default: a synthetic one)")
    parser.add_argument("--markdown", type=Path, help="also write the table as markdown to this file")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to SECONDS for the 1-minute load average to drop below 0.5")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.passthrough = ["--threads", str(args.threads), "--device", args.device, "--models", str(args.models),
                        "--base-channels", str(args.base_channels), "--residual-blocks", str(args.residual_blocks),
                        "--resolution", str(args.resolution), *(["--photo", str(args.photo)] if args.photo else [])]
    if args.child:
        print(json.dumps(_child_hole2000(args, args.child)))
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if args.markdown:
        _check_writable(args.markdown)
    source = read_source(args.photo)  # a photo that cannot be read is said before anything is timed
    if args.wait_idle:
        wait_until_idle(args.wait_idle)
    engine = make_engine(args)
    args.model = pick_model(engine, args.model, str(args.models))
    rows: list[dict] = []
    if "crop512" in cases:
        rows += run_case_crop512(engine, args.model, args.runs, source)
    if "hole300" in cases:
        rows += run_case_hole300(engine, args.model, args.runs, source)
    if "hole2000" in cases:
        rows += run_case_hole2000(args, args.model)
    print(describe(engine, args))
    print(format_table(rows))
    if args.markdown:
        from engine.atomic import write_text_atomic

        write_text_atomic(args.markdown, describe(engine, args) + "\n\n" + format_table(rows, markdown=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
