"""``inpaint fill`` (one photo, or a folder of them) and ``inpaint edges`` (the edge map that guides a fill)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    UsageError,
    check_output,
    check_path,
    make_engine,
    one_line,
    prepare_output_folder,
    same_file,
    say,
)
from engine.errors import EngineError, MaskError

if TYPE_CHECKING:
    from engine.api import FillResult


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
    check_output(out, [args.image, args.mask, args.edges], args.overwrite)
    from engine.imageio import save_image

    loaded, mask, drawn, erased = _load_single(args)
    for warning in (_frames_warning(args.image, loaded, out), _large_hole_warning(args.mask, mask)):
        if warning:
            say(warning)
    if not mask.any():
        say(f"{args.image}: {EMPTY_MASK_NOTE}")
        _write_unchanged(Path(args.image), out, loaded, args.overwrite)
        print(f"wrote {out} (unchanged)")
        return EXIT_OK
    engine = make_engine(args)
    start = time.perf_counter()
    result = engine.fill(_request(loaded.rgb, mask, drawn, erased, args))
    seconds = time.perf_counter() - start
    for message in result.messages:
        say(f"{args.image}: {message}")
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
        check_path(label, folder)
        if not folder.is_dir():
            raise CliError(f"{label} {folder} is not a folder")
    for label, folder in (("input", in_dir), ("masks", mask_dir)):
        if out_dir.exists() and same_file(out_dir, folder):
            raise CliError(f"refusing to write into the {label} folder {folder}: choose another --output folder")
    images = _image_files(in_dir)
    if not images:
        raise CliError(f"no images found in {in_dir}")
    masks: dict[str, Path] = {}
    for p in _image_files(mask_dir):
        masks.setdefault(p.stem, p)
    engine = make_engine(args)
    _check_model(engine, args.model)
    prepare_output_folder(out_dir)

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
            if any(same_file(out, src) for src in (path, masks.get(path.stem, path))):
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
            note(f"{path.name}: failed: {one_line(exc)}")
    bar.close()
    summary = f"{written} written to {out_dir}, {len(failed)} failed, {skipped} skipped (already there)"
    if large:
        summary += f", {large} with masks marking more than half of the photo as hole (see the warnings)"
    print(summary)
    if failed:
        say(f"failed: {', '.join(failed)}")
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


def shown_edges(rgb: np.ndarray, mask: np.ndarray, result: FillResult) -> np.ndarray:
    """The whole photo's edge map after Predict Edges: the known edges, with each processed region's map
    (known, completed and sketched edges) put over them."""
    from engine.edges import known_edges

    edges = known_edges(rgb, mask)
    for x0, y0, x1, y1 in result.regions or [(0, 0, rgb.shape[1], rgb.shape[0])]:
        edges[y0:y1, x0:x1] = result.edges[y0:y1, x0:x1] > 0
    return edges


def cmd_edges(args: argparse.Namespace) -> int:
    out = Path(args.output)
    check_output(out, [args.image, args.mask, args.edges], args.overwrite)
    from engine.edges import known_edges
    from engine.imageio import save_image

    loaded, mask, drawn, erased = _load_single(args)
    rgb = loaded.rgb
    if mask.all():
        raise MaskError(f"the mask {args.mask} covers the whole image: there are no known edges to complete")
    if not mask.any():
        say(f"{args.image}: the mask is empty: the edge map holds the known edges only")
        edges = known_edges(rgb, mask)
    else:
        engine = make_engine(args)
        result = engine.predict_edges(_request(rgb, mask, drawn, erased, args))
        for message in result.messages:
            say(f"{args.image}: {message}")
        if result.edges is None:
            raise CliError(f"the model {args.model!r} uses no edges; pick an edge-guided model (see `inpaint models`)")
        if not any(m.name == result.backend and m.uses_edges for m in engine.models()):
            say(f"{result.backend} does not complete edges: the map holds the known edges (and your sketch) only")
        edges = shown_edges(rgb, mask, result)
    if args.visual:
        picture = edge_visual(rgb, mask, edges, drawn)
    else:
        picture = np.repeat((edges.astype(np.uint8) * 255)[..., None], 3, axis=2)
    save_image(out, picture, replace=args.overwrite)
    inside = int((edges & mask).sum())
    print(f"wrote {out}: {int(edges.sum())} edge pixels, {inside} of them inside the hole")
    return EXIT_OK
