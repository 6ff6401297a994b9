"""The ``inpaint`` command: fill photos, inspect guiding edges, list models, benchmark and evaluate.

Every error a user can cause is one line on stderr and a non-zero exit code; set ``INPAINT_DEBUG=1`` to see
the traceback of an unexpected one. Heavy modules (torch, the pipeline) are imported only by the commands
that need them, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import EngineError, MaskError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool whose reader closed the pipe
DEFAULT_EVAL_BACKENDS = "telea,navier-stokes,harmonic@0,patchmatch,default"


class CliError(EngineError):
    """A problem with the files named on the command line (shown as one line, exit code 1)."""


class UsageError(CliError):
    """The command line itself is wrong: options missing or mixed (shown as one line, exit code 2)."""


# ---------------------------------------------------------------- helpers

def _say(text: str) -> None:
    """A note for the user on stderr (kept apart from stdout so results can be piped)."""
    print(text, file=sys.stderr)


def _engine(args: argparse.Namespace) -> Any:
    from engine.pipeline import Engine

    return Engine(device=args.device, cpu_threads=args.threads)


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13): reported where it is used
        return False


def _check_path(label: str, path: Path) -> None:
    """A name too long or a symbolic-link loop, said in words (the system says "unexpected error")."""
    from engine.path_problems import path_problem, shown

    problem = path_problem(path)
    if problem:
        raise CliError(f"{label} {shown(path)}: {problem}")


def _check_output(out: Path, inputs: Sequence[Path | None], overwrite: bool) -> None:
    """Refuse an output format we cannot write, an input file, or an existing file unless ``overwrite``
    (checked before any work is done)."""
    from engine.imageio import format_for_path

    _check_path("cannot write", out)
    format_for_path(out)
    for src in inputs:
        if src is not None and _same_file(out, src):
            raise CliError(f"refusing to write {out}: it is one of the input files")
    if out.is_dir():
        raise CliError(f"{out} is a folder; give a file name for the output")
    if out.exists() and not overwrite:
        raise CliError(f"{out} already exists; use --overwrite to replace it")


def _load_sketch(path: Path | None, shape: tuple[int, int]) -> tuple[np.ndarray | None, np.ndarray | None]:
    if path is None:
        return None, None
    from engine.imageio import load_sketch

    drawn, erased = load_sketch(path)
    if drawn.shape != shape:
        raise MaskError(f"the edge sketch {path} is {drawn.shape[1]}x{drawn.shape[0]} but the image is "
                        f"{shape[1]}x{shape[0]}; they must be the same size")
    return drawn, erased


def _load_single(args: argparse.Namespace) -> tuple[Any, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Image, mask (same size required) and optional sketch of the single-file form; the sizes are compared
    from the file headers first, so a mask of the wrong size is refused before a huge photo is decoded."""
    from engine.imageio import load_image, load_mask, upright_size

    sizes = {"image": upright_size(args.image), "mask": upright_size(args.mask)}
    if args.edges is not None:
        sizes["edge sketch"] = upright_size(args.edges)
    image_size = sizes.pop("image")
    for role, size in sizes.items():
        if image_size and size and size != image_size:
            path = args.mask if role == "mask" else args.edges
            raise MaskError(f"the {role} {path} is {size[0]}x{size[1]} but the image {args.image} is "
                            f"{image_size[0]}x{image_size[1]}; they must be the same size")
    loaded = load_image(args.image)
    h, w = loaded.rgb.shape[:2]
    mask = _oriented(load_mask(args.mask), args)
    if mask.shape != (h, w):
        raise MaskError(f"the mask {args.mask} is {mask.shape[1]}x{mask.shape[0]} but the image {args.image} is "
                        f"{w}x{h}; they must be the same size")
    drawn, erased = _load_sketch(args.edges, (h, w))
    return loaded, mask, drawn, erased


def _request(image: np.ndarray, mask: np.ndarray, drawn: np.ndarray | None, erased: np.ndarray | None,
             args: argparse.Namespace) -> Any:
    from engine.api import FillOptions, FillRequest

    options = FillOptions(context_margin=getattr(args, "context_margin", None),
                          poisson_blend=bool(getattr(args, "poisson", False)), device=args.device,
                          texture=getattr(args, "texture", None))
    return FillRequest(image=image, mask=mask, sketch_drawn=drawn, sketch_erased=erased,
                       model=getattr(args, "model", "default"), options=options)


EMPTY_MASK_NOTE = "the mask is empty: nothing to fill, the image is written unchanged"
LARGE_HOLE = 0.5


def _oriented(mask: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    """The mask as white = hole; --invert-mask flips a black-is-hole mask."""
    return ~mask if getattr(args, "invert_mask", False) else mask


def _frames_warning(name: object, loaded: Any, out: Path) -> str | None:
    """A warning when the photo has more pages or frames than the output will: only the first is filled."""
    from engine.imageio import frames_lost

    lost = frames_lost(loaded)
    if lost is None:
        return None
    return (f"warning: {name} has {loaded.frames} {'pages' if loaded.format == 'TIFF' else 'frames'}; only the "
            f"first is filled, and {out} holds only that one ({lost} are not in it; {name} keeps them)")


def _large_hole_warning(name: object, mask: np.ndarray) -> str | None:
    """A warning when more than half of the photo is marked as hole: most often an inverted mask."""
    share = float(mask.mean())
    if share <= LARGE_HOLE:
        return None
    return (f"warning: the mask {name} marks {share * 100:.0f}% of the photo as hole (white = fill); "
            "if black marks the hole in it, run again with --invert-mask")


# ---------------------------------------------------------------- fill

def cmd_fill(args: argparse.Namespace) -> int:
    single = args.image is not None
    batch = args.input is not None or args.masks is not None
    if single and batch:
        raise UsageError("use either IMAGE --mask MASK -o OUT, or --input DIR --masks DIR --output DIR, not both")
    if batch:
        return _fill_batch(args)
    if not single:
        raise UsageError("nothing to fill: give IMAGE --mask MASK -o OUT, or --input DIR --masks DIR --output DIR")
    if args.mask is None or args.output is None:
        raise UsageError("the single-file form needs IMAGE, --mask MASK and -o OUT")
    out = Path(args.output)
    _check_output(out, [args.image, args.mask, args.edges], args.overwrite)
    from engine.imageio import save_image

    loaded, mask, drawn, erased = _load_single(args)
    for warning in (_frames_warning(args.image, loaded, out), _large_hole_warning(args.mask, mask)):
        if warning:
            _say(warning)
    if not mask.any():
        _say(f"{args.image}: {EMPTY_MASK_NOTE}")
        _write_unchanged(Path(args.image), out, loaded, args.overwrite)
        print(f"wrote {out} (unchanged)")
        return EXIT_OK
    engine = _engine(args)
    start = time.perf_counter()
    result = engine.fill(_request(loaded.rgb, mask, drawn, erased, args))
    seconds = time.perf_counter() - start
    for message in result.messages:
        _say(f"{args.image}: {message}")
    save_image(out, result.image, like=loaded, changed=mask, replace=args.overwrite)
    h, w = mask.shape
    print(f"wrote {out}: filled {mask.mean() * 100:.1f}% of {w}x{h} with {result.backend or args.model} "
          f"on {result.device} in {seconds:.2f} s")
    return EXIT_OK


def _write_unchanged(source: Path, out: Path, loaded: Any, overwrite: bool) -> None:
    """An empty mask's output: a byte copy of the source when the format stays the same (re-encoding a JPEG
    would change every pixel a little), else the decoded photo saved in the new format."""
    from engine.atomic import atomic_path
    from engine.imageio import format_for_path, save_image

    if format_for_path(out) == loaded.format:
        try:
            with atomic_path(out, replace=overwrite) as tmp:
                shutil.copyfile(source, tmp)
        except OSError as exc:
            raise CliError(f"Cannot save {out}: {exc.strerror or exc}.") from exc
    else:
        save_image(out, loaded.rgb, like=loaded, changed=np.zeros(loaded.rgb.shape[:2], bool), replace=overwrite)


def _prepare_output_folder(out_dir: Path) -> None:
    """Create the batch output folder and make sure files can be written in it, before any photo is done."""
    import tempfile

    _check_path("cannot write into", out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except FileExistsError:
        raise CliError(f"--output {out_dir} is a file, not a folder") from None
    except OSError as exc:
        raise CliError(f"cannot write into the output folder {out_dir}: {exc.strerror or exc}") from None


def _check_model(engine: Any, model: str) -> None:
    """Refuse an unknown or unusable model once, before a batch starts (not once per photo)."""
    engine.backend(model)  # EngineError naming the problem; the weights' structure was checked when listed


def _image_files(folder: Path) -> list[Path]:
    from engine.imageio import SUPPORTED_EXTENSIONS

    exts = {e.lower() for e in SUPPORTED_EXTENSIONS}
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in exts)


def _fill_batch(args: argparse.Namespace) -> int:
    if args.input is None or args.masks is None or args.output is None:
        raise UsageError("the batch form needs --input DIR, --masks DIR and --output DIR")
    if args.edges is not None:
        raise UsageError("--edges works with the single-file form only")
    in_dir, mask_dir, out_dir = Path(args.input), Path(args.masks), Path(args.output)
    for label, folder in (("--input", in_dir), ("--masks", mask_dir)):
        _check_path(label, folder)
        if not folder.is_dir():
            raise CliError(f"{label} {folder} is not a folder")
    for label, folder in (("input", in_dir), ("masks", mask_dir)):
        if out_dir.exists() and _same_file(out_dir, folder):
            raise CliError(f"refusing to write into the {label} folder {folder}: choose another --output folder")
    images = _image_files(in_dir)
    if not images:
        raise CliError(f"no images found in {in_dir}")
    masks: dict[str, Path] = {}
    for p in _image_files(mask_dir):
        masks.setdefault(p.stem, p)
    engine = _engine(args)
    _check_model(engine, args.model)
    _prepare_output_folder(out_dir)

    from tqdm import tqdm

    from engine.imageio import load_image, load_mask, save_image

    failed: list[str] = []
    written = skipped = large = 0
    bar = tqdm(images, desc="fill", unit="image", file=sys.stderr, dynamic_ncols=True, disable=None)

    def note(text: str) -> None:
        bar.write(text, file=sys.stderr)

    for path in bar:
        out = out_dir / path.name
        try:
            if any(_same_file(out, src) for src in (path, masks.get(path.stem, path))):
                raise CliError("the output would replace an input file")
            if out.exists() and not args.overwrite:
                note(f"{path.name}: {out} already exists; skipped (use --overwrite to replace it)")
                skipped += 1
                continue
            if path.stem not in masks:
                raise MaskError(f"no mask named {path.stem}.* in {mask_dir}")
            loaded = load_image(path)
            h, w = loaded.rgb.shape[:2]
            mask = _oriented(load_mask(masks[path.stem], size=(w, h)), args)
            frames = _frames_warning(path.name, loaded, out)
            if frames:
                note(frames)
            warning = _large_hole_warning(masks[path.stem], mask)
            if warning:
                large += 1
                note(f"{path.name}: {warning}")
            if not mask.any():
                note(f"{path.name}: {EMPTY_MASK_NOTE}")
                _write_unchanged(path, out, loaded, args.overwrite)
            else:
                result = engine.fill(_request(loaded.rgb, mask, None, None, args))
                for message in result.messages:
                    note(f"{path.name}: {message}")
                save_image(out, result.image, like=loaded, changed=mask, replace=args.overwrite)
            written += 1
        except (EngineError, OSError, ValueError, MemoryError, RuntimeError) as exc:
            # RuntimeError: torch's out-of-memory on one huge photo must not stop the others
            failed.append(path.name)
            note(f"{path.name}: failed: {_one_line(exc)}")
    bar.close()
    summary = f"{written} written to {out_dir}, {len(failed)} failed, {skipped} skipped (already there)"
    if large:
        summary += f", {large} with masks marking more than half of the photo as hole (see the warnings)"
    print(summary)
    if failed:
        _say(f"failed: {', '.join(failed)}")
        return EXIT_FAILED
    return EXIT_OK


# ---------------------------------------------------------------- edges

EDGE_COLOURS = {"known": (255, 255, 255), "predicted": (0, 200, 255), "drawn": (255, 220, 0), "hole": (200, 40, 160)}


def edge_visual(rgb: np.ndarray, mask: np.ndarray, edges: np.ndarray, drawn: np.ndarray | None) -> np.ndarray:
    """A picture of the guiding edges: dimmed photo, hole outlined, known edges white, predicted edges cyan,
    edges drawn by the user yellow."""
    import cv2

    out = (rgb.astype(np.float32) * 0.35).astype(np.uint8)
    out[mask] = (out[mask] * 0.4).astype(np.uint8)
    rim = mask & ~(cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    out[rim] = EDGE_COLOURS["hole"]
    out[edges & ~mask] = EDGE_COLOURS["known"]
    out[edges & mask] = EDGE_COLOURS["predicted"]
    if drawn is not None:
        out[edges & mask & drawn] = EDGE_COLOURS["drawn"]
    return out


def cmd_edges(args: argparse.Namespace) -> int:
    out = Path(args.output)
    _check_output(out, [args.image, args.mask, args.edges], args.overwrite)
    from engine.edges import known_edges
    from engine.imageio import save_image

    loaded, mask, drawn, erased = _load_single(args)
    rgb = loaded.rgb
    if mask.all():
        raise MaskError(f"the mask {args.mask} covers the whole image: there are no known edges to complete")
    if not mask.any():
        _say(f"{args.image}: the mask is empty: the edge map holds the known edges only")
        edges = known_edges(rgb, mask)
    else:
        engine = _engine(args)
        result = engine.predict_edges(_request(rgb, mask, drawn, erased, args))
        for message in result.messages:
            _say(f"{args.image}: {message}")
        if result.edges is None:
            raise CliError(f"the model {args.model!r} uses no edges; pick an edge-guided model (see `inpaint models`)")
        if not any(m.name == result.backend and m.uses_edges for m in engine.models()):
            _say(f"{result.backend} does not complete edges: the map holds the known edges (and your sketch) only")
        edges = known_edges(rgb, mask)
        for x0, y0, x1, y1 in result.regions or [(0, 0, rgb.shape[1], rgb.shape[0])]:
            edges[y0:y1, x0:x1] = result.edges[y0:y1, x0:x1] > 0
    if args.visual:
        picture = edge_visual(rgb, mask, edges, drawn)
    else:
        picture = np.repeat((edges.astype(np.uint8) * 255)[..., None], 3, axis=2)
    save_image(out, picture, replace=args.overwrite)
    inside = int((edges & mask).sum())
    print(f"wrote {out}: {int(edges.sum())} edge pixels, {inside} of them inside the hole")
    return EXIT_OK


# ---------------------------------------------------------------- models

def _validation_summary(validation: dict[str, Any]) -> str:
    """One line: the step and the figures of the table's "all" row (or of its first row)."""
    if not validation:
        return "none recorded"
    table = validation.get("table")
    if isinstance(table, dict) and table:
        bucket = "all" if "all" in table else next(iter(table))
        row = table[bucket] if isinstance(table[bucket], dict) else {}
        figures = ", ".join(f"{k} {v:.3g}" for k, v in row.items() if isinstance(v, float))
        count = f" ({row['count']} cases)" if isinstance(row.get("count"), int) else ""
        step = f"step {validation['step']}, " if "step" in validation else ""
        return f"{step}{bucket}: {figures}{count}"
    parts = [f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
             for k, v in list(validation.items())[:6] if isinstance(v, int | float | str) and len(str(v)) < 40]
    return ", ".join(parts) or "recorded (see the card)"


def scan_model_cards() -> list[dict[str, Any]]:
    """Every card in the bundled and user model folders, valid or not, as plain dicts (user wins on names)."""
    from engine.model_files import weights_path
    from engine.model_store import ModelStore

    entries: list[dict[str, Any]] = []
    for stored in ModelStore().scan():
        entry: dict[str, Any] = {"name": stored.name, "source": stored.source, "path": str(stored.path)}
        card = stored.card
        if stored.error or card is None:
            entry["error"] = " ".join((stored.error or f"{stored.path}: unreadable card").split())
        else:
            entry.update(name=card.name, stage=card.stage, architecture=card.architecture,
                         resolution=card.resolution, steps=card.steps, data=card.data, hardware=card.hardware,
                         companion=card.companion, license=card.license, description=card.description,
                         validation=card.validation,
                         size_mb=round(weights_path(stored.path).stat().st_size / 2**20, 2))
        entries.append(entry)
    names_user = {e["name"] for e in entries if e["source"] == "user" and "error" not in e}
    for e in entries:
        if e["source"] == "bundled" and e["name"] in names_user:
            e["shadowed"] = True
    return entries


def cmd_models(args: argparse.Namespace) -> int:
    from engine.backends import list_backends, resolve_model_name
    from engine.model_store import ModelStore
    from engine.paths import bundled_models_dir, user_models_dir

    cards = scan_model_cards()
    backends = []
    backend_error = default = None
    try:  # no Engine: listing needs neither torch nor a device, so this answers at once
        store = ModelStore()
        backends = list_backends(store)
        default = resolve_model_name(store, "default")
    except EngineError as exc:
        backend_error = _one_line(exc)
    if args.json:
        doc = {"default": default, "backends": [vars(b) for b in backends], "model_files": cards,
               "bundled_dir": str(bundled_models_dir()), "user_dir": str(user_models_dir())}
        if backend_error:
            doc["backend_error"] = backend_error
        print(json.dumps(doc, indent=1, default=str))
        return EXIT_OK
    print(f"Fill backends (use with --model NAME; 'default' is {default}):")
    if backend_error:
        print(f"  (could not list: {backend_error})")
    for b in backends:
        if b.kind == "unavailable":
            print(f"  {b.name:<28} unavailable (see broken model files below)")
            continue
        tags = ["edge-guided" if b.uses_edges else "", "default" if b.name == default else ""]
        print(f"  {b.name:<28} {b.kind:<10} {b.source:<8} {' '.join(t for t in tags if t)}".rstrip())
    print(f"\nModel files (bundled: {bundled_models_dir()}; user: {user_models_dir()}):")
    good = [c for c in cards if "error" not in c]
    if not good:
        print("  none")
    for c in good:
        flag = "  (hidden by a user model of the same name)" if c.get("shadowed") else ""
        print(f"  {c['name']} [{c['source']}]{flag}")
        line = (f"    {c['stage']} model, architecture {c['architecture']}, working resolution {c['resolution']} px, "
                f"{c['steps']} training steps")
        if c.get("companion"):
            line += f", guided by {c['companion']}"
        print(line + f", {c['size_mb']} MB")
        if c.get("data"):
            print(f"    data: {c['data']}")
        if c.get("hardware"):
            print(f"    hardware: {c['hardware']}")
        print(f"    validation: {_validation_summary(c.get('validation') or {})}")
    broken = [c for c in cards if "error" in c]
    broken_names = {c["name"] for c in broken}
    # Usable files whose fill backend is still unavailable (e.g. an image model whose edge companion is broken).
    broken += [{"path": b.path or b.name, "source": b.source, "error": b.description}
               for b in backends if b.kind == "unavailable" and b.name not in broken_names]
    if broken:
        print("\nBroken model files (not offered):")
        for c in broken:
            print(f"  {Path(c['path']).name} [{c['source']}]: {c['error']}")
    return EXIT_OK


# ---------------------------------------------------------------- bench and eval

def run_bench(argv: Sequence[str]) -> int:
    """``inpaint bench ARGS``: everything after ``bench`` goes to ``engine.bench`` (its own --help included)."""
    try:
        from engine import bench
    except ImportError as exc:
        raise CliError(f"the benchmark is not available in this installation ({exc})") from exc
    try:
        return int(bench.main(list(argv)) or 0)
    except SystemExit as exc:  # its argparse: --help or a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def cmd_eval(args: argparse.Namespace) -> int:
    from engine import evaluation as ev
    from engine import imageio

    images_dir, out_dir = Path(args.images), Path(args.out)
    _check_path("--images", images_dir)
    if not images_dir.is_dir():
        raise CliError(f"--images {images_dir} is not a folder")
    _prepare_output_folder(out_dir)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends:
        raise CliError("--backends is empty")
    if len(set(backends)) != len(backends):
        raise CliError(f"--backends names one backend twice: {args.backends}")
    paths = imageio.find_images(images_dir, args.limit)
    if not paths:
        raise CliError(f"no images found in {images_dir}")
    if args.masks is not None:
        if not Path(args.masks).is_dir():
            raise CliError(f"--masks {args.masks} is not a folder")
        masks: Any = ev.FolderMasks(Path(args.masks))
    else:
        masks = ev.DefaultMasks(ev.default_nvidia_dir() if args.nvidia is None else Path(args.nvidia))

    engine = _engine(args)
    known = {m.name for m in engine.models()} | {"default"}
    unknown = [b for b in backends if backend_spec(b)[0] not in known]
    if unknown:
        raise CliError(f"unknown backend(s) {', '.join(unknown)}; available: {', '.join(sorted(known))}")

    from engine.api import FillOptions, FillRequest
    from engine.imageio import load_image

    for message in masks.messages:
        _say(message)
    if "default" in backends:
        _say(f"'default' is {engine.resolve_model('default')} here")

    def fill_fn(image: np.ndarray, mask: np.ndarray, backend: str) -> np.ndarray:
        name, texture = backend_spec(backend)
        return engine.fill(FillRequest(image=image, mask=mask, model=name,
                                       options=FillOptions(device=args.device, texture=texture))).image

    def loader(path: Path):
        return lambda: load_image(path).rgb

    names = [str(p.relative_to(images_dir)) for p in paths]
    from tqdm import tqdm

    bar = tqdm(total=len(paths), desc="eval", unit="image", file=sys.stderr, dynamic_ncols=True, disable=None)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    report = ev.evaluate(list(zip(names, [loader(p) for p in paths])), backends, fill_fn, masks=masks,
                         progress=progress)
    bar.close()
    if "default" in backends:
        report.messages.append(f"'default' was {engine.resolve_model('default')} in this run.")
    if report.skipped:
        _say(f"skipped {len(report.skipped)} photo(s) that cannot be read: {', '.join(report.skipped)}")
    if len(report.skipped) == len(paths):
        raise CliError(f"none of the {len(paths)} photo(s) in {images_dir} could be read; no report written")
    print(ev.table_markdown(report), end="")  # first: a report that cannot be written still leaves its table
    try:
        written = ev.write_report(report, out_dir)
    except OSError as exc:
        raise CliError(f"cannot write the report {exc.filename or out_dir}: {exc.strerror or exc}; the table is "
                       f"printed above and the previous report in {out_dir}, if any, was left as it was") from None
    print(f"\nwrote {written['table']}, {written['results']}, {written['grid']}")
    violations = report.violations()
    bad = [b for b, v in violations.items() if v["cases"] or v["errors"]]
    if bad:
        _say("problems: " + "; ".join(f"{b}: {violations[b]['cases']} case(s) changed pixels outside the hole, "
                                      f"{violations[b]['errors']} failed" for b in bad))
        return EXIT_FAILED
    return EXIT_FAILED if report.skipped else EXIT_OK


# ---------------------------------------------------------------- parser

def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line plus a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def texture_strength(text: str) -> float:
    """argparse type: a texture strength between 0 and 1."""
    from engine.texture.synthesis import check_strength

    try:
        return check_strength(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def backend_spec(spec: str) -> tuple[str, float | None]:
    """``NAME`` or ``NAME@STRENGTH`` (texture strength on a structure source) as (name, strength or None)."""
    name, at, strength = spec.partition("@")
    if not at:
        return spec, None
    try:
        return name, texture_strength(strength)
    except argparse.ArgumentTypeError as exc:
        raise CliError(f"--backends {spec}: {exc}") from None


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (also used by ``inpaint bench``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def model_name(text: str) -> str:
    """argparse type: a non-empty model name (an empty one must not silently mean ``default``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the model name is empty; see `inpaint models` for the names")
    return text


def _thread_count(text: str) -> int:
    """--threads: between 1 and this machine's CPU threads (more only slows torch down, or crashes it)."""
    from engine.devices import cpu_cores

    value = positive_int(text)
    cores = cpu_cores()
    if value > cores:
        raise argparse.ArgumentTypeError(f"must be at most {cores} (the CPU threads of this machine), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, "
                                                         "cuda:N or mps (default: auto)")
    common.add_argument("--threads", type=_thread_count, default=None, metavar="N",
                        help="CPU threads for torch, 1 to this machine's count (default: all but one)")

    parser = _Parser(prog="inpaint", description="Edge-guided inpainting: remove things from photos from the "
                                                 "command line. Masks: white = hole.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    fill = sub.add_parser("fill", parents=[common], help="fill the masked part of a photo (or a folder of them)",
                          description="Fill the white part of MASK in IMAGE and write OUT; or, with --input,\n"
                                      "every photo of a folder with the mask of the same file stem. Pixels\n"
                                      "outside the mask are kept exactly in PNG, TIFF and BMP; JPEG and WebP\n"
                                      "are re-encoded (quality 95), which changes every pixel slightly. EXIF\n"
                                      "and ICC are kept. An empty mask copies the file as it is.\n"
                                      "Existing outputs are not replaced without --overwrite; inputs never are.",
                          epilog="examples:\n  inpaint fill photo.jpg --mask hole.png -o filled.jpg\n"
                                 "  inpaint fill photo.jpg --mask hole.png --edges sketch.png -o filled.jpg\n"
                                 "  inpaint fill --input photos/ --masks masks/ --output filled/",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    fill.add_argument("image", nargs="?", type=Path, metavar="IMAGE", help="photo to fill (single-file form)")
    fill.add_argument("--mask", type=Path, metavar="MASK", help="hole mask, white = fill; same size as IMAGE")
    fill.add_argument("--invert-mask", action="store_true",
                      help="the masks mark the hole in black (white = keep); a mask marking more than half of "
                           "the photo as hole is warned about")
    fill.add_argument("--edges", type=Path, metavar="SKETCH", help="edge sketch: white = draw an edge here, "
                      "pure red = no edge here, black/transparent = the model decides (single-file form)")
    fill.add_argument("--model", type=model_name, default="default", metavar="NAME",
                      help="fill backend, see `inpaint models` (default: 'default' = texture copied from the "
                           "photo on the structure of the pair named lama-structure when one is installed, else "
                           "on the harmonic fill; 'patchmatch' is unguided PatchMatch)")
    fill.add_argument("-o", "--output", type=Path, metavar="OUT",
                      help="output file (single form) or folder (batch form); the format follows the extension")
    fill.add_argument("--input", type=Path, metavar="DIR", help="batch form: folder of photos")
    fill.add_argument("--masks", type=Path, metavar="DIR",
                      help="batch form: folder of masks matched by file stem; other sizes are resized (nearest)")
    fill.add_argument("--overwrite", action="store_true", help="replace outputs that already exist "
                                                               "(inputs are never replaced)")
    fill.add_argument("--poisson", action="store_true", help="Poisson-blend the fill into its surroundings")
    fill.add_argument("--texture", type=texture_strength, default=None, metavar="S",
                      help="texture copied from the photo on top of a structure fill (neural models, harmonic): "
                           "0 = structure only, 1 = full detail (default: 1); Telea, Navier-Stokes and "
                           "patchmatch ignore it")
    fill.add_argument("--context-margin", type=positive_int, default=None, metavar="PX",
                      help="pixels of known context around each hole (default: automatic)")
    fill.set_defaults(func=cmd_fill)

    edges = sub.add_parser("edges", parents=[common], help="write the edge map that guides a fill",
                           description="Write the edge map the edge-guided model would use for this fill: edges "
                                       "of the known area plus the edges it completes inside the hole (white "
                                       "on black), or with --visual a colour picture.")
    edges.add_argument("image", type=Path, metavar="IMAGE", help="photo")
    edges.add_argument("--mask", type=Path, required=True, metavar="MASK", help="hole mask, white = hole")
    edges.add_argument("--edges", type=Path, metavar="SKETCH", help="edge sketch (white = edge, red = no edge)")
    edges.add_argument("--model", type=model_name, default="default", metavar="NAME",
                       help="edge-guided model (default: default)")
    edges.add_argument("-o", "--output", type=Path, required=True, metavar="EDGES.png", help="output image")
    edges.add_argument("--visual", action="store_true", help="colour picture: dimmed photo, hole outlined in "
                       "magenta, known edges white, predicted edges cyan, your drawn edges yellow")
    edges.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    edges.set_defaults(func=cmd_edges)

    models = sub.add_parser("models", parents=[common], help="list fill backends and model files with their cards",
                            description="List the fill backends and the bundled and user model files with their "
                                        "cards (stage, architecture, resolution, steps, data, validation); broken "
                                        "files are listed with the reason.")
    models.add_argument("--json", action="store_true", help="print JSON instead of text")
    models.set_defaults(func=cmd_models)

    # Listed for the overview only: main() hands everything after `bench` to engine.bench, whose --help is its own.
    sub.add_parser("bench", help="time the engine beside OpenCV Telea (see `inpaint bench --help`)")

    ev = sub.add_parser("eval", parents=[common], help="score backends on photos with a fixed mask set",
                        description="Fill every photo under a deterministic mask set (NVIDIA irregular 10-20%, "
                                    "30-40%, 50-60%, rectangles of 25-45% of each side, free-form strokes; hole "
                                    "pixels replaced by noise first) with each backend and write table.md, "
                                    "results.json and grid.png to --out.")
    ev.add_argument("--images", type=Path, required=True, metavar="DIR",
                    help="folder of photos (searched recursively; folders named *boundaries* are skipped)")
    ev.add_argument("--masks", type=Path, metavar="DIR", help="use these masks instead of the default set (matched "
                    "by stem, else in turn; bucketed by hole ratio)")
    ev.add_argument("--backends", default=DEFAULT_EVAL_BACKENDS, metavar="LIST",
                    help=f"comma-separated backends; NAME@S runs a structure source with texture strength S "
                         f"(default: {DEFAULT_EVAL_BACKENDS})")
    ev.add_argument("--limit", type=positive_int, default=None, metavar="N", help="use the first N photos only")
    ev.add_argument("--nvidia", type=Path, default=None, metavar="DIR",
                    help="NVIDIA irregular mask folder (default: ../shared/data/masks/nvidia_irregular)")
    ev.add_argument("--out", type=Path, required=True, metavar="REPORT_DIR", help="folder for the report")
    ev.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``inpaint`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        try:
            return run_bench(argv[1:])
        except EngineError as exc:
            _say(f"inpaint bench: error: {_one_line(exc)}")
            return EXIT_FAILED
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at interpreter exit
        return code
    except EngineError as exc:
        _say(f"inpaint {args.command}: error: {_one_line(exc)}")
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED
    except KeyboardInterrupt:
        _say(f"inpaint {args.command}: interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (``inpaint models | head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if os.environ.get("INPAINT_DEBUG"):
            traceback.print_exc()
        else:
            _say(f"inpaint {args.command}: unexpected error: {type(exc).__name__}: {_one_line(exc)} "
                 "(set INPAINT_DEBUG=1 to see the traceback)")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
