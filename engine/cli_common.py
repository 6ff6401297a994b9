"""What the commands of ``inpaint`` share: exit codes, the one-line errors, messages on stderr, the engine a
command line asks for, and the checks of the files and folders it names (before any work is done)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.cli_types import texture_strength
from engine.errors import EngineError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool whose reader closed the pipe


class CliError(EngineError):
    """A problem with the files named on the command line (shown as one line, exit code 1)."""


class UsageError(CliError):
    """The command line itself is wrong: options missing or mixed (shown as one line, exit code 2)."""


def say(text: str) -> None:
    """A note for the user on stderr (kept apart from stdout so results can be piped)."""
    print(text, file=sys.stderr)


def make_engine(args: argparse.Namespace) -> Any:
    from engine.pipeline import Engine

    return Engine(device=args.device, cpu_threads=args.threads)


def same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13): reported where it is used
        return False


def check_path(label: str, path: Path) -> None:
    """A name too long or a symbolic-link loop, said in words (the system says "unexpected error")."""
    from engine.path_problems import path_problem, shown

    problem = path_problem(path)
    if problem:
        raise CliError(f"{label} {shown(path)}: {problem}")


def check_output(out: Path, inputs: Sequence[Path | None], overwrite: bool) -> None:
    """Refuse an output format we cannot write, an input file, or an existing file unless ``overwrite``
    (checked before any work is done)."""
    from engine.imageio import format_for_path

    check_path("cannot write", out)
    format_for_path(out)
    for src in inputs:
        if src is not None and same_file(out, src):
            raise CliError(f"refusing to write {out}: it is one of the input files")
    if out.is_dir():
        raise CliError(f"{out} is a folder; give a file name for the output")
    if out.exists() and not overwrite:
        raise CliError(f"{out} already exists; use --overwrite to replace it")


def prepare_output_folder(out_dir: Path) -> None:
    """Create the batch output folder and make sure files can be written in it, before any photo is done."""
    import tempfile

    check_path("cannot write into", out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except FileExistsError:
        raise CliError(f"--output {out_dir} is a file, not a folder") from None
    except OSError as exc:
        raise CliError(f"cannot write into the output folder {out_dir}: {exc.strerror or exc}") from None


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def backend_spec(spec: str) -> tuple[str, float | None]:
    """``NAME`` or ``NAME@STRENGTH`` (texture strength on a structure source) as (name, strength or None)."""
    name, at, strength = spec.partition("@")
    if not at:
        return spec, None
    try:
        return name, texture_strength(strength)
    except argparse.ArgumentTypeError as exc:
        raise CliError(f"--backends {spec}: {exc}") from None
