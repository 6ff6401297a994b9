"""Fill-quality evaluation: the same images and masks through several backends, scored per mask bucket.

The default mask set is deterministic per image (seeded by the image's file name, not its position, so
adding images does not change the masks of the others):

- NVIDIA irregular masks of the 10-20 %, 30-40 % and 50-60 % hole-ratio buckets (file numbers 02000-03999,
  06000-07999, 10000-11999 of ``masks/nvidia_irregular``), one file per image and bucket;
- a rectangle of 25-45 % of each side at a random place;
- free-form strokes (``engine.masks.free_form_mask``).

Every mask is resized to the image (nearest). Before a fill the hole pixels of the input are replaced by
seeded noise, so a backend that looks under the mask loses. Pixels outside the hole are checked to come back
unchanged. Metrics (``engine.metrics``): whole-image PSNR, SSIM, L1 %, PSNR inside the hole and texture ratio.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engine import metrics
from engine.atomic import atomic_path
from engine.errors import EngineError
from engine.imageio import SUPPORTED_EXTENSIONS, load_mask
from engine.masks import free_form_mask, rectangle_mask, stroke_mask_in_range

FillFn = Callable[[np.ndarray, np.ndarray, str], np.ndarray]
"""``fill_fn(image, mask, backend) -> filled image`` (H x W x 3 uint8 in, same out)."""

NVIDIA_BUCKETS: dict[str, tuple[int, int]] = {
    "irregular 10-20%": (2000, 3999),
    "irregular 30-40%": (6000, 7999),
    "irregular 50-60%": (10000, 11999),
}
PROCEDURAL_RATIOS: dict[str, tuple[float, float]] = {
    "irregular 10-20%": (0.10, 0.20), "irregular 30-40%": (0.30, 0.40), "irregular 50-60%": (0.50, 0.60)}
RECTANGLE = "rectangle 25-45%"
RECTANGLE_SIDES = (0.25, 0.45)
FREE_FORM = "free-form"
DEFAULT_BUCKETS: tuple[str, ...] = (*NVIDIA_BUCKETS, RECTANGLE, FREE_FORM)
METRICS: tuple[tuple[str, str], ...] = (
    ("psnr", "PSNR dB"), ("ssim", "SSIM"), ("l1", "L1 %"), ("hole_psnr", "hole PSNR dB"),
    ("lowband_psnr", "low-band PSNR dB"), ("texture", "texture"), ("blotch", "blotch share"))
BLOTCH_REFERENCES = (("harmonic", "harmonic@0"), ("patchmatch",))  # one of each, when the run has them
SEED = 20240
GRID_ROWS = 12
THUMB_W, THUMB_H, HEADER_H = 176, 132, 22


def _name_seed(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def nvidia_mask_files(folder: Path | None) -> dict[str, list[Path]]:
    """The NVIDIA mask files of each default bucket (sorted); buckets without files are left out."""
    if folder is None or not Path(folder).is_dir():
        return {}
    files: dict[str, list[Path]] = {}
    for bucket, (lo, hi) in NVIDIA_BUCKETS.items():
        chosen = [p for p in sorted(Path(folder).glob("*.png")) if p.stem.isdigit() and lo <= int(p.stem) <= hi]
        if chosen:
            files[bucket] = chosen
    return files


def resize_mask(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize a bool mask to h x w with nearest-neighbour sampling."""
    if mask.shape == (h, w):
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0


class DefaultMasks:
    """The deterministic default mask set; call it with an image's name and size to get ``{bucket: mask}``."""

    def __init__(self, nvidia_dir: Path | None = None):
        self.nvidia = nvidia_mask_files(nvidia_dir)
        self.messages: list[str] = []
        self.procedural = [b for b in NVIDIA_BUCKETS if b not in self.nvidia]
        if self.procedural:
            where = nvidia_dir if nvidia_dir is not None else "(none given)"
            stand_in = ", ".join(self.procedural)
            self.messages.append(f"NVIDIA irregular masks not found in {where}: procedural irregular masks (seeded "
                                 f"free-form strokes of the same hole ratios) stand in for {stand_in}")
        else:
            self.messages.append(f"irregular masks: the NVIDIA set in {nvidia_dir}")
        self.buckets: tuple[str, ...] = (*NVIDIA_BUCKETS, RECTANGLE, FREE_FORM)
        self.per_image = len(self.buckets)

    def __call__(self, name: str, h: int, w: int) -> dict[str, np.ndarray]:
        seed = _name_seed(name)
        masks: dict[str, np.ndarray] = {}
        for index, bucket in enumerate(NVIDIA_BUCKETS):
            if bucket in self.nvidia:
                files = self.nvidia[bucket]
                masks[bucket] = resize_mask(load_mask(files[seed % len(files)]), h, w)
            else:
                masks[bucket] = stroke_mask_in_range(h, w, np.random.default_rng([SEED, seed, 10 + index]),
                                                     PROCEDURAL_RATIOS[bucket])
        masks[RECTANGLE] = rectangle_mask(h, w, np.random.default_rng([SEED, seed, 1]), RECTANGLE_SIDES)
        masks[FREE_FORM] = np.asarray(free_form_mask(h, w, np.random.default_rng([SEED, seed, 2]))).astype(bool)
        return masks


class FolderMasks:
    """User masks from a folder: the mask with the image's stem, else mask ``i mod n`` in sorted order.

    The bucket is the hole ratio of the resized mask in steps of 10 % (``mask 20-30%``).
    """

    def __init__(self, folder: Path):
        self.files = sorted(p for p in Path(folder).iterdir()
                            if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS and not p.name.startswith("."))
        if not self.files:
            raise ValueError(f"{folder}: no mask images found")
        self.by_stem = {p.stem: p for p in self.files}
        self.messages: list[str] = []
        self.buckets: tuple[str, ...] = tuple(f"mask {10 * k}-{10 * k + 10}%" for k in range(10))
        self.per_image = 1
        self._count = 0

    def __call__(self, name: str, h: int, w: int) -> dict[str, np.ndarray]:
        path = self.by_stem.get(Path(name).stem) or self.files[self._count % len(self.files)]
        self._count += 1
        mask = resize_mask(load_mask(path), h, w)
        k = min(9, int(mask.mean() * 10))
        return {self.buckets[k]: mask}


def noise_hole(image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    """A copy of ``image`` with the hole pixels replaced by uniform noise (seeded)."""
    out = image.copy()
    rng = np.random.default_rng(seed)
    out[mask] = rng.integers(0, 256, (int(mask.sum()), image.shape[2]), dtype=np.uint8)
    return out


@dataclass
class CaseResult:
    """One backend on one image and mask."""

    psnr: float = float("nan")
    ssim: float = float("nan")
    l1: float = float("nan")
    hole_psnr: float = float("nan")
    lowband_psnr: float = float("nan")  # hole PSNR of the fill and truth blurred by metrics.LOWBAND_SIGMA
    texture: float = float("nan")
    blotch: float = float("nan")  # 1.0 if the fill has a blotch against the reference fills (see metrics.has_blotch)
    seconds: float = 0.0
    outside_changed: int = 0  # pixels outside the hole that differ from the input
    error: str | None = None


@dataclass
class EvalReport:
    """Everything ``evaluate`` measured; ``write_report`` turns it into files."""

    backends: list[str]
    buckets: list[str]
    cases: list[dict] = field(default_factory=list)  # {"image", "bucket", "hole_ratio", "results": {b: CaseResult}}
    grid: list[dict] = field(default_factory=list)  # {"image", "bucket", "input", "truth", "outputs": {b: img}}
    messages: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # images that could not be read (named in ``messages``)

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Per bucket, per backend: the mean of each metric (nan-aware) and the case count."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for bucket in self.buckets:
            rows = [c for c in self.cases if c["bucket"] == bucket]
            if not rows:
                continue
            out[bucket] = {}
            for backend in self.backends:
                res = [c["results"][backend] for c in rows if c["results"][backend].error is None]
                entry = {key: _nanmean([getattr(r, key) for r in res]) for key, _ in METRICS}
                entry["n"] = len(res)
                out[bucket][backend] = entry
        return out

    def mean_over_buckets(self) -> dict[str, dict[str, float]]:
        """Per backend: the mean over buckets of each bucket mean (every bucket weighs the same)."""
        summary = self.summary()
        return {b: {key: _nanmean([summary[k][b][key] for k in summary]) for key, _ in METRICS}
                for b in self.backends}

    def seconds_per_image(self) -> dict[str, float]:
        """Per backend: mean fill time per image and mask, in seconds."""
        return {b: _nanmean([c["results"][b].seconds for c in self.cases if c["results"][b].error is None])
                for b in self.backends}

    def violations(self) -> dict[str, dict[str, int]]:
        """Per backend: cases with pixels changed outside the hole, the pixel total, and failed cases."""
        out = {}
        for b in self.backends:
            res = [c["results"][b] for c in self.cases]
            out[b] = {"cases": sum(r.outside_changed > 0 for r in res),
                      "pixels": sum(r.outside_changed for r in res),
                      "errors": sum(r.error is not None for r in res)}
        return out


def _nanmean(values: Iterable[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _grid_picks(n_images: int, n_buckets: int, rows: int = GRID_ROWS) -> set[tuple[int, int]]:
    """Which (image index, mask position) cases go into the grid: spread over images, buckets rotating."""
    if n_images == 0 or n_buckets == 0:
        return set()
    if n_images >= rows:
        picks = np.linspace(0, n_images - 1, rows).round().astype(int)
        return {(int(i), int(i) % n_buckets) for i in picks}
    seq = [(i, (i + r) % n_buckets) for r in range(n_buckets) for i in range(n_images)]
    return set(seq[:rows])


def evaluate(images: Sequence[tuple[str, np.ndarray | Callable[[], np.ndarray]]], backends: Sequence[str],
             fill_fn: FillFn, masks: Callable[[str, int, int], dict[str, np.ndarray]] | None = None,
             progress: Callable[[int, int], None] | None = None) -> EvalReport:
    """Fill every image under every mask with every backend and score it.

    ``images`` holds ``(name, rgb)`` pairs, where ``rgb`` may be a zero-argument loader (called once, so a
    large set is never all in memory). ``masks`` defaults to ``DefaultMasks()`` (procedural irregular masks).
    ``progress(done, total)`` is called after each image. Exceptions from ``fill_fn`` are recorded per case
    (``CaseResult.error``) and the run goes on; an image whose loader fails (unreadable file) is skipped,
    named in ``skipped`` and ``messages``.
    """
    masks = masks if masks is not None else DefaultMasks()
    buckets = list(getattr(masks, "buckets", ()))
    report = EvalReport(backends=list(backends), buckets=buckets, messages=list(getattr(masks, "messages", [])))
    picks_needed = _grid_picks(len(images), int(getattr(masks, "per_image", len(buckets)) or 1))
    for index, (name, source) in enumerate(images):
        try:
            truth = source() if callable(source) else source
        except (EngineError, OSError, ValueError, MemoryError) as exc:  # one bad photo must not end a long run
            report.skipped.append(name)
            report.messages.append(f"{name}: skipped, it cannot be read ({' '.join(str(exc).split())})")
            if progress is not None:
                progress(index + 1, len(images))
            continue
        truth = np.ascontiguousarray(truth[..., :3])
        h, w = truth.shape[:2]
        for position, (bucket, mask) in enumerate(masks(name, h, w).items()):
            if bucket not in report.buckets:
                report.buckets.append(bucket)
            if not mask.any():
                report.messages.append(f"{name} / {bucket}: the mask is empty at this size; case skipped")
                continue
            seed = (_name_seed(name) * 31 + zlib.crc32(bucket.encode())) % 2**32
            noisy = noise_hole(truth, mask, seed)
            case = {"image": name, "bucket": bucket, "hole_ratio": float(mask.mean()), "results": {}}
            keep = (index, position) in picks_needed
            outputs = {}
            for backend in backends:
                result, output = _run_one(fill_fn, noisy, mask, truth, backend)
                case["results"][backend] = result
                outputs[backend] = output
            _score_blotches(case["results"], outputs, mask)
            report.cases.append(case)
            if keep:
                report.grid.append({"image": name, "bucket": bucket, "input": noisy, "mask": mask,
                                    "truth": truth, "outputs": outputs})
        if progress is not None:
            progress(index + 1, len(images))
    report.buckets = [b for b in report.buckets if any(c["bucket"] == b for c in report.cases)]
    return report


def _score_blotches(results: dict[str, CaseResult], outputs: dict[str, np.ndarray | None], mask: np.ndarray) -> None:
    """Fill in ``blotch`` for every backend when the case has one output of each ``BLOTCH_REFERENCES`` group."""
    references = []
    for names in BLOTCH_REFERENCES:
        found = next((outputs[n] for n in names if outputs.get(n) is not None), None)
        if found is None:
            return
        references.append(found)
    for backend, output in outputs.items():
        if output is not None:
            results[backend].blotch = float(metrics.has_blotch(output, references, mask))


def _run_one(fill_fn: FillFn, noisy: np.ndarray, mask: np.ndarray, truth: np.ndarray, backend: str
             ) -> tuple[CaseResult, np.ndarray | None]:
    start = time.perf_counter()
    try:
        out = np.asarray(fill_fn(noisy.copy(), mask.copy(), backend))
    except Exception as exc:  # recorded per case: one failing backend must not end a long run
        return CaseResult(error=f"{type(exc).__name__}: {exc}"), None
    seconds = time.perf_counter() - start
    if out.shape != truth.shape or out.dtype != np.uint8:
        return CaseResult(seconds=seconds, error=f"fill returned {out.dtype} {out.shape}, expected uint8 "
                                                 f"{truth.shape}"), None
    outside = int(np.count_nonzero(np.any(out != noisy, axis=-1) & ~mask))
    return CaseResult(psnr=metrics.psnr(out, truth), ssim=metrics.ssim(out, truth), l1=metrics.l1_percent(out, truth),
                      hole_psnr=metrics.psnr(out, truth, mask),
                      lowband_psnr=metrics.lowband_psnr(out, truth, mask),
                      texture=metrics.texture_ratio(out, truth, mask),
                      seconds=seconds, outside_changed=outside), out


# ---------------------------------------------------------------- report files

def _fmt(value: float, key: str) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.3f}" if key in ("ssim", "texture") else f"{value:.2f}"


def table_markdown(report: EvalReport) -> str:
    """The report as Markdown: per-bucket means, the mean over buckets, time per image and the outside check."""
    summary = report.summary()
    head = "| bucket | backend | n | " + " | ".join(label for _, label in METRICS) + " |"
    lines = [head, "|" + "---|" * (3 + len(METRICS))]
    for bucket, per_backend in summary.items():
        for backend, entry in per_backend.items():
            cells = " | ".join(_fmt(entry[key], key) for key, _ in METRICS)
            lines.append(f"| {bucket} | {backend} | {entry['n']} | {cells} |")
    for backend, entry in report.mean_over_buckets().items():
        cells = " | ".join(_fmt(entry[key], key) for key, _ in METRICS)
        lines.append(f"| **mean over buckets** | {backend} | | {cells} |")
    lines += ["", "| backend | mean time per image (s) | cases changed outside the hole | pixels | failed cases |",
              "|---|---|---|---|---|"]
    seconds, violations = report.seconds_per_image(), report.violations()
    for backend in report.backends:
        v = violations[backend]
        lines.append(f"| {backend} | {_fmt(seconds[backend], 't')} | {v['cases']} | {v['pixels']} | {v['errors']} |")
    images = len({c["image"] for c in report.cases})
    lines += ["", f"{images} images, {len(report.cases)} image/mask cases. Hole pixels of every input were "
                  "replaced by noise before filling."]
    lines += [f"Note: {m}" for m in report.messages]
    return "\n".join(lines) + "\n"


def _jsonable(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def results_json(report: EvalReport) -> str:
    """Every case and the summaries as JSON (``null`` where a metric is undefined)."""
    cases = [{"image": c["image"], "bucket": c["bucket"], "hole_ratio": round(c["hole_ratio"], 5),
              "results": {b: {k: _jsonable(v) for k, v in vars(r).items()} for b, r in c["results"].items()}}
             for c in report.cases]
    summary = {bk: {b: {k: _jsonable(v) for k, v in e.items()} for b, e in per.items()}
               for bk, per in report.summary().items()}
    doc = {"backends": report.backends, "buckets": report.buckets, "summary": summary,
           "mean_over_buckets": {b: {k: _jsonable(v) for k, v in e.items()}
                                 for b, e in report.mean_over_buckets().items()},
           "seconds_per_image": {b: _jsonable(v) for b, v in report.seconds_per_image().items()},
           "outside_hole_violations": report.violations(), "messages": report.messages, "skipped": report.skipped,
           "cases": cases}
    return json.dumps(doc, indent=1) + "\n"


def _thumb(rgb: np.ndarray | None) -> np.ndarray:
    cell = np.full((THUMB_H, THUMB_W, 3), 40, np.uint8)
    if rgb is None:
        cv2.putText(cell, "failed", (8, THUMB_H // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 80, 80), 1, cv2.LINE_AA)
        return cell
    h, w = rgb.shape[:2]
    scale = min(THUMB_W / w, THUMB_H / h)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
    y0, x0 = (THUMB_H - th) // 2, (THUMB_W - tw) // 2
    cell[y0:y0 + th, x0:x0 + tw] = small
    return cell


def grid_image(report: EvalReport) -> np.ndarray:
    """Rows of masked input (hole shown white) / each backend / ground truth, with a header row (RGB)."""
    columns = ["masked input", *report.backends, "ground truth"]
    gap = 2
    width = len(columns) * (THUMB_W + gap)
    header = np.full((HEADER_H, width, 3), 255, np.uint8)
    for j, label in enumerate(columns):
        cv2.putText(header, label[:22], (j * (THUMB_W + gap) + 4, HEADER_H - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    rows = [header]
    for item in report.grid:
        shown = item["truth"].copy()
        shown[item["mask"]] = 255
        cells = [shown, *[item["outputs"].get(b) for b in report.backends], item["truth"]]
        row = np.full((THUMB_H + gap, width, 3), 255, np.uint8)
        for j, cell in enumerate(cells):
            row[:THUMB_H, j * (THUMB_W + gap):j * (THUMB_W + gap) + THUMB_W] = _thumb(cell)
        rows.append(row)
    return np.concatenate(rows, axis=0)


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """Write ``table.md``, ``results.json`` and ``grid.png`` into ``out_dir``, all or none: the three are
    written to temporaries first and renamed only when all three were written (a full disk leaves the
    previous report as it was). ``OSError`` names the file that could not be written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"table": out_dir / "table.md", "results": out_dir / "results.json", "grid": out_dir / "grid.png"}
    ok, png = cv2.imencode(".png", cv2.cvtColor(grid_image(report), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("could not encode the grid image")
    contents = {"table": table_markdown(report).encode("utf-8"), "results": results_json(report).encode("utf-8"),
                "grid": png.tobytes()}
    with contextlib.ExitStack() as stack:
        for key, path in paths.items():
            tmp = stack.enter_context(atomic_path(path))
            try:
                tmp.write_bytes(contents[key])
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(path)) from exc
    return paths
