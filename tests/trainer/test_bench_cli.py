"""``inpaint-train bench --help``: every option is listed with its own help text."""

from __future__ import annotations

import re

import pytest

from trainer.bench import build_parser
from trainer.cli import main

BENCH_OPTIONS = {"--configs", "--stages", "--steps", "--no-ddp", "--threads", "--write"}


def _help_entries(options_section: str) -> dict[str, str]:
    """Option string -> its help text, from argparse's options section (wrapped lines joined)."""
    texts: list[list[str]] = []
    flags: dict[str, int] = {}
    for line in options_section.splitlines():
        if line.startswith("  -"):  # "  --opt META   text" or "  --opt META" with the text on the next lines
            spec, _, text = line.strip().partition("  ")
            texts.append([text.strip()])
            for flag in re.findall(r"-{1,2}[a-z][a-z-]*", spec):
                flags[flag] = len(texts) - 1
        elif line.startswith("    ") and texts:
            texts[-1].append(line.strip())
    return {flag: " ".join(t for t in texts[i] if t) for flag, i in flags.items()}


def test_bench_help_gives_every_option_a_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bench", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    usage, _, options = out.partition("options:")
    assert usage.startswith("usage: inpaint-train bench")
    assert set(re.findall(r"--[a-z][a-z-]*", usage)) == BENCH_OPTIONS
    entries = _help_entries(options)
    assert set(entries) == BENCH_OPTIONS | {"-h", "--help"}
    for flag in BENCH_OPTIONS:
        assert len(entries[flag]) > 10, f"{flag} has no help text in:\n{out}"


def test_every_bench_option_has_help() -> None:
    for action in build_parser()._actions:
        assert action.help and action.help.strip(), action.option_strings
