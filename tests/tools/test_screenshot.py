"""tools/screenshot.py, run the way the docs run it (``python tools/screenshot.py PHOTO ...``), offscreen."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PIL import Image

from engine.paths import REPO_ROOT
from tests.app.helpers import write_photo


@pytest.mark.slow
def test_the_screenshot_tool_paints_fills_and_saves_the_window_and_the_shortcut_list(tmp_path):
    photo = write_photo(tmp_path / "photo.jpg")
    out, keys = tmp_path / "editor.png", tmp_path / "keys.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "INPAINT_STUDIO_HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "tools/screenshot.py", str(photo), "--out", str(out), "--size", "900x600",
                           "--brush", "8", "--stroke", "30,20,60,40", "--model", "telea", "--fill",
                           "--shortcuts-out", str(keys)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "status: 'Filled with telea" in proc.stdout
    assert Image.open(out).size == (900, 600)
    assert Image.open(keys).width > 0
