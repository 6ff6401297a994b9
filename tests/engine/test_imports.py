"""``inpaint --help`` and ``inpaint models`` answer without importing torch (it costs about a second)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.paths import REPO_ROOT

HEAVY = ("torch", "safetensors.torch", "onnx")
PROBE = """
import contextlib, io, json, sys
from engine import cli
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    code = cli.main(sys.argv[1:])
print(json.dumps({"code": code, "stdout": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _run(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120,
                          env=env, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    loaded = set(result.pop("modules"))
    result["heavy"] = [m for m in HEAVY if m in loaded]
    return result


def test_importing_the_cli_loads_no_torch():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    code = "import json, sys, engine.cli; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout))
    assert "engine.cli" in loaded and not loaded & set(HEAVY)


@pytest.mark.parametrize("argv", [["--help"], ["fill", "--help"]])
def test_help_loads_no_torch(argv):
    result = _run(*argv)
    assert result["code"] == 0
    assert "usage: inpaint" in result["stdout"]
    assert result["heavy"] == []


def test_models_lists_neural_models_without_torch(tiny_models_dir, isolated_home):
    result = _run("models", "--json")
    assert result["code"] == 0
    doc = json.loads(result["stdout"])
    names = {b["name"]: b["kind"] for b in doc["backends"]}
    assert names["edgeconnect-image"] == "neural" and names["glcic"] == "completion" and "telea" in names
    assert {c["name"] for c in doc["model_files"]} >= {"edgeconnect-edge", "edgeconnect-image", "glcic"}
    assert result["heavy"] == []
