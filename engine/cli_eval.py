"""``inpaint eval``: score fill backends on a folder of photos under a fixed mask set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from engine.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    backend_spec,
    check_path,
    make_engine,
    prepare_output_folder,
    say,
)

DEFAULT_EVAL_BACKENDS = "telea,navier-stokes,harmonic@0,patchmatch,default"


def cmd_eval(args: argparse.Namespace) -> int:
    from engine import evaluation as ev
    from engine import imageio

    images_dir, out_dir = Path(args.images), Path(args.out)
    check_path("--images", images_dir)
    if not images_dir.is_dir():
        raise CliError(f"--images {images_dir} is not a folder")
    prepare_output_folder(out_dir)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends:
        raise CliError("--backends is empty")
    if len(set(backends)) != len(backends):
        raise CliError(f"--backends names one backend twice: {args.backends}")
    paths = imageio.find_images(images_dir, args.limit, exclude=args.exclude)
    if not paths:
        raise CliError(f"no images found in {images_dir}")
    if args.masks is not None:
        if not Path(args.masks).is_dir():
            raise CliError(f"--masks {args.masks} is not a folder")
        masks: Any = ev.FolderMasks(Path(args.masks))
    else:
        masks = ev.DefaultMasks(None if args.nvidia is None else Path(args.nvidia))

    engine = make_engine(args)
    known = {m.name for m in engine.models()} | {"default"}
    unknown = [b for b in backends if backend_spec(b)[0] not in known]
    if unknown:
        raise CliError(f"unknown backend(s) {', '.join(unknown)}; available: {', '.join(sorted(known))}")

    from engine.api import FillOptions, FillRequest
    from engine.imageio import load_image

    for message in masks.messages:
        say(message)
    if "default" in backends:
        say(f"'default' is {engine.resolve_model('default')} here")

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
        say(f"skipped {len(report.skipped)} photo(s) that cannot be read: {', '.join(report.skipped)}")
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
        say("problems: " + "; ".join(f"{b}: {violations[b]['cases']} case(s) changed pixels outside the hole, "
                                      f"{violations[b]['errors']} failed" for b in bad))
        return EXIT_FAILED
    return EXIT_FAILED if report.skipped else EXIT_OK
