"""The ``inpaint`` command: fill photos, inspect guiding edges, list models, benchmark and evaluate.

Every error a user can cause is one line on stderr and a non-zero exit code; set ``INPAINT_DEBUG=1`` to see
the traceback of an unexpected one. Heavy modules (torch, the pipeline) are imported only by the commands
that need them, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from engine.cli_common import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_USAGE, CliError, UsageError, one_line, say
from engine.cli_eval import DEFAULT_EVAL_BACKENDS, cmd_eval
from engine.cli_fill import cmd_edges, cmd_fill
from engine.cli_models import cmd_models
from engine.cli_types import model_name, positive_int, texture_strength, thread_count
from engine.errors import EngineError


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



class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line plus a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")



def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, "
                                                         "cuda:N or mps (default: auto)")
    common.add_argument("--threads", type=thread_count, default=None, metavar="N",
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
                    help="folder of photos: every image under it, searched recursively (hidden files and "
                         "folders, and folders matching --exclude, are skipped)")
    ev.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                    help="skip folders whose name matches GLOB (case-insensitive; repeatable), e.g. "
                         "'*boundaries*' for the boundary maps BSDS500 keeps beside its photos")
    ev.add_argument("--masks", type=Path, metavar="DIR", help="use these masks instead of the default set (matched "
                    "by stem, else in turn; bucketed by hole ratio)")
    ev.add_argument("--backends", default=DEFAULT_EVAL_BACKENDS, metavar="LIST",
                    help=f"comma-separated backends; NAME@S runs a structure source with texture strength S "
                         f"(default: {DEFAULT_EVAL_BACKENDS})")
    ev.add_argument("--limit", type=positive_int, default=None, metavar="N", help="use the first N photos only")
    ev.add_argument("--nvidia", type=Path, default=None, metavar="DIR",
                    help="NVIDIA irregular mask folder for the three irregular buckets (without it, seeded "
                         "procedural masks of the same hole ratios stand in, and the report says so)")
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
            say(f"inpaint bench: error: {one_line(exc)}")
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
        say(f"inpaint {args.command}: error: {one_line(exc)}")
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED
    except KeyboardInterrupt:
        say(f"inpaint {args.command}: interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (``inpaint models | head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if os.environ.get("INPAINT_DEBUG"):
            traceback.print_exc()
        else:
            say(f"inpaint {args.command}: unexpected error: {type(exc).__name__}: {one_line(exc)} "
                 "(set INPAINT_DEBUG=1 to see the traceback)")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
