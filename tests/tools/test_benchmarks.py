"""The editor benchmarks in tools/, run the way docs/benchmarks.md runs them (``python -m tools.…``), tiny."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from engine.paths import REPO_ROOT


def _run(tmp_path, *args: str) -> str:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "INPAINT_STUDIO_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_the_canvas_benchmark_reports_move_latency_beside_its_baselines_and_memory(tmp_path):
    out = _run(tmp_path, "tools.bench_canvas", "--width", "1200", "--height", "900", "--moves", "8")
    assert "photo 1200 x 900" in out
    assert re.search(r"at fit:\s+median\s+[\d.]+ ms", out)
    assert "baseline: same, whole canvas repainted" in out
    assert re.search(r"undo history: 50 commands", out)
    assert re.search(r"after 50 strokes and 5 fills: \d+ MB", out)


@pytest.mark.slow
def test_the_gui_benchmark_measures_how_long_fills_block_the_window_on_a_small_photo(tmp_path):
    out = _run(tmp_path, "tools.bench_gui", "--width", "640", "--height", "480", "--fills", "1", "--strokes", "2",
               "--threads", "1", "--no-autosave")
    assert "photo 640 x 480 JPEG" in out
    worker = re.search(r"fill 1 neural \(worker\).*GUI blocked: max\s+([\d.]+) ms", out)
    inline = re.search(r"baseline: neural inline in the GUI thread\s+fill\s+([\d.]+) s", out)
    assert worker and inline, out
    assert "summary: during one-object neural fills the GUI thread was blocked at most" in out
