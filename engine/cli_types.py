"""argparse types of the ``inpaint`` command line, shared by its commands and ``inpaint bench`` (imports nothing
heavy: ``inpaint --help`` stays instant)."""

from __future__ import annotations

import argparse


def texture_strength(text: str) -> float:
    """argparse type: a texture strength between 0 and 1."""
    from engine.texture.synthesis import check_strength

    try:
        return check_strength(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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


def thread_count(text: str) -> int:
    """--threads: between 1 and this machine's CPU threads (more only slows torch down, or crashes it)."""
    from engine.devices import cpu_cores

    value = positive_int(text)
    cores = cpu_cores()
    if value > cores:
        raise argparse.ArgumentTypeError(f"must be at most {cores} (the CPU threads of this machine), got {value}")
    return value
