"""Measure the longest time an edit can be lost to a kill -9 while someone keeps painting.

The editor (offscreen, real ``MainWindow``, default autosave settings) gets one rectangle stroke every
``--interval`` seconds; a child process logs each stroke and each finished autosave. The parent kills it
with SIGKILL at ``--kill-at`` seconds, recovers the session from the user data folder the way the next
start would, and reports: strokes painted, strokes recovered, and the age at the kill of the oldest
stroke that was lost, plus, from the log, the longest any stroke waited for a finished autosave (the
loss window). Run from the repository root::

    QT_QPA_PLATFORM=offscreen python tools/autosave_loss_window.py --interval 2 --kill-at 41
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(photo: Path, interval: float) -> None:
    """Run the editor and paint forever; log ``{"stroke": n, "t": ...}`` and ``{"saved": ..., "t": ...}``."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.prompts import ScriptedPrompter
    from app.settings import Settings

    app = QApplication.instance() or QApplication([])
    window = MainWindow(settings=Settings.load(), prompter=ScriptedPrompter())
    window.show()
    assert window.open_path(photo)
    t0 = time.monotonic()

    def log(record: dict) -> None:
        record["t"] = round(time.monotonic() - t0, 3)
        print(json.dumps(record), flush=True)

    original = window.autosaver._snapshot_fn
    strokes = {"n": 0}

    def snapshot():
        taken = original()
        log({"snapshot": strokes["n"]})
        return taken

    window.autosaver._snapshot_fn = snapshot
    window.autosaver.saved.connect(lambda _path: log({"saved": True}))

    def stroke() -> None:
        n = strokes["n"]
        x, y = 2 + (n * 7) % 80, 2 + (n * 5) % 50
        window.document.add_rectangle((x, y, x + 4, y + 4))
        strokes["n"] = n + 1
        log({"stroke": n + 1})

    timer = QTimer()
    timer.timeout.connect(stroke)
    timer.start(int(interval * 1000))
    log({"ready": True})
    app.exec()


def _loss_window(records: list[dict]) -> float:
    """The longest time from a stroke to the end of the first autosave whose snapshot included it."""
    snapshots = [(r["t"], r["snapshot"]) for r in records if "snapshot" in r]
    saves = [r["t"] for r in records if "saved" in r]
    worst = 0.0
    for r in (r for r in records if "stroke" in r):
        taken = next((t for t, n in snapshots if n >= r["stroke"]), None)
        done = next((t for t in saves if taken is not None and t >= taken), None)
        if done is not None:
            worst = max(worst, done - r["t"])
    return worst


def parent(interval: float, kill_at: float) -> dict:
    """One run: start the child, kill it, recover, compare."""
    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory() as home:
        photo = Path(home) / "photo.png"
        Image.fromarray(np.full((64, 96, 3), 128, np.uint8)).save(photo)
        env = dict(os.environ, INPAINT_STUDIO_HOME=str(Path(home) / "data"), QT_QPA_PLATFORM="offscreen")
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(photo), "--interval", str(interval)],
                                stdout=subprocess.PIPE, text=True, env=env)
        records: list[dict] = []
        assert proc.stdout is not None
        start = None
        while True:
            line = proc.stdout.readline()
            if not line:
                break
            records.append(json.loads(line))
            if "ready" in records[-1]:
                start = time.monotonic()
                signal.signal(signal.SIGALRM, lambda *_: proc.send_signal(signal.SIGKILL))
                signal.setitimer(signal.ITIMER_REAL, kill_at)
        proc.wait()
        painted = max((r["stroke"] for r in records if "stroke" in r), default=0)
        recovered = _recovered_strokes(env)
        killed_t = (time.monotonic() - start) if start else 0.0
        lost = [r for r in records if "stroke" in r and r["stroke"] > recovered]
        oldest_lost = round(kill_at - lost[0]["t"], 2) if lost else 0.0
        return {"interval_s": interval, "kill_at_s": kill_at, "painted": painted, "recovered": recovered,
                "oldest_lost_age_s": oldest_lost, "loss_window_s": round(_loss_window(records), 2),
                "elapsed_s": round(killed_t, 1)}


def _recovered_strokes(env: dict) -> int:
    """Strokes in the session a crashed editor left (its undo history; the first entry is the photo)."""
    code = ("import sys;from app import session, session_slots;from app.document import Document;"
            "from PySide6.QtWidgets import QApplication;a=QApplication([]);"
            "slots=session_slots.claim_orphans();d=Document();"
            "session.recover(d, slots[0].folder) if slots else None;"
            "print(d.undo_stack.count() if slots else 0)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between strokes (default 2)")
    parser.add_argument("--kill-at", type=float, nargs="+", default=[41.0], help="kill -9 after these seconds")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.interval)
        return
    for kill_at in args.kill_at:
        print(json.dumps(parent(args.interval, kill_at)), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
