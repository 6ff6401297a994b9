"""Editor benchmark on a 6000 x 4000 photo: how long the GUI thread is blocked during a fill, and memory.

Run offscreen: ``python -m tools.bench_gui`` (the Qt platform is set to offscreen if none is given).

A heartbeat ``QTimer`` ticks every 5 ms in the GUI thread while the window runs a fill through its worker
thread; the longest gap between ticks (and the 99th percentile) is how long the window was frozen,
including the GUI-side work of a fill (building the request, putting the result in place as an undo
step, the autosave snapshot). Baselines: the classical Telea fill through the same worker, and the same
fill run inline in the GUI thread (what an editor without a worker does). Then the process memory (RSS)
after 50 brush strokes made with mouse events and 5 fills.

The neural model is the bundled default when one is installed; otherwise a stand-in with the real
EdgeConnect sizes (64 base channels, 8 residual blocks, 256 px working resolution) and random weights is
written to a temporary folder, so the compute load is realistic even before models are trained.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QEvent, QEventLoop, QObject, QPointF, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from tools.bench_canvas import rss_mb, synthetic_photo

HEARTBEAT_MS = 5


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_standin_models(folder: Path) -> None:
    """EdgeConnect-sized pair with random weights (names as bundled, so ``default`` resolves to it)."""
    import torch

    from engine.model_files import ModelCard, save_model
    from engine.networks import EdgeGenerator, ImageGenerator

    torch.manual_seed(0)
    args = {"base_channels": 64, "residual_blocks": 8}
    common = {"resolution": 256, "data": "random weights (benchmark stand-in)"}
    save_model(EdgeGenerator(**args).eval(), ModelCard("edgeconnect-edge", "edgeconnect-edge", args, "edge",
                                                       **common), folder)
    save_model(ImageGenerator(**args).eval(), ModelCard("edgeconnect-image", "edgeconnect-image", args, "image",
                                                        companion="edgeconnect-edge", **common), folder)


class Heartbeat(QObject):
    """Records the time of each tick of a 5 ms timer in the GUI thread."""

    def __init__(self) -> None:
        super().__init__()
        self.ticks: list[float] = []
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> np.ndarray:
        self.timer.stop()
        self.ticks.append(time.perf_counter())
        return np.diff(np.asarray(self.ticks)) * 1000.0


def wait(app: QApplication, condition, timeout_s: float = 600.0) -> None:
    """Run the event loop until ``condition()`` holds."""
    loop = QEventLoop()
    poll = QTimer()
    poll.timeout.connect(lambda: loop.quit() if condition() else None)
    poll.start(1)
    deadline = time.perf_counter() + timeout_s
    while not condition():
        loop.exec()
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark step did not finish")
    poll.stop()


def blob_mask(height: int, width: int, rng: np.random.Generator, blobs: int = 2) -> np.ndarray:
    """A few elliptical blobs, 150-350 px on a 6000 x 4000 photo (typical objects to remove), scaled with
    the photo's short side on smaller ones."""
    import cv2

    scale = min(height, width) / 4000
    margin, small, large = int(400 * scale), max(2, int(150 * scale)), max(3, int(350 * scale))
    mask = np.zeros((height, width), np.uint8)
    for _ in range(blobs):
        center = (int(rng.integers(margin, width - margin)), int(rng.integers(margin, height - margin)))
        axes = (int(rng.integers(small, large)), int(rng.integers(small, large)))
        cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask.astype(bool)


def measured_fill(app, window, heartbeat: Heartbeat, mask: np.ndarray, model: str) -> dict[str, float]:
    """One fill through the window with the heartbeat running; the result lands as an undo step."""
    doc = window.document
    doc.import_mask(mask)
    window.select_model(model)
    done = {"flag": False}

    def finished(_result) -> None:
        QTimer.singleShot(0, lambda: done.update(flag=True))  # after the window's own handler

    window.engine.finished.connect(finished)
    window.engine.failed.connect(lambda message: (print("  FAILED:", message), done.update(flag=True)))
    steps_before = doc.undo_stack.count()
    heartbeat.start()
    t0 = time.perf_counter()
    QTimer.singleShot(0, window.fill)
    wait(app, lambda: done["flag"] and not window.engine.is_busy())
    # a few more ticks so work queued right after the result (autosave snapshot) is inside the window
    end = time.perf_counter() + 0.1
    wait(app, lambda: time.perf_counter() > end)
    elapsed = time.perf_counter() - t0
    gaps = heartbeat.stop()
    window.autosaver.flush()
    window.engine.finished.disconnect(finished)
    window.engine.failed.disconnect()
    window.engine.failed.connect(window.on_failed)
    assert doc.undo_stack.count() == steps_before + 1, "the fill did not land as one undo step"
    return {"seconds": elapsed, "max": float(gaps.max()), "p99": float(np.percentile(gaps, 99)),
            "median": float(np.median(gaps))}


def inline_fill(app, window, heartbeat: Heartbeat, mask: np.ndarray, model: str) -> dict[str, float]:
    """Baseline: the same fill run in the GUI thread (no worker)."""
    from engine.pipeline import Engine

    engine = Engine(cpu_threads=window.settings.cpu_threads)
    doc = window.document
    doc.import_mask(mask)
    heartbeat.start()
    t0 = time.perf_counter()
    QTimer.singleShot(0, lambda: doc.apply_fill(engine.fill(doc.fill_request(model))))
    end = t0 + 0.05
    wait(app, lambda: time.perf_counter() > end and doc.undo_stack.count() > 0 and not doc.mask.any())
    elapsed = time.perf_counter() - t0
    gaps = heartbeat.stop()
    return {"seconds": elapsed, "max": float(gaps.max()), "p99": float(np.percentile(gaps, 99)),
            "median": float(np.median(gaps))}


def send(canvas, kind: QEvent.Type, pos: QPointF, button, buttons) -> None:
    event = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(canvas, event)


def brush_strokes(app, window, count: int, rng: np.random.Generator) -> None:
    """``count`` brush strokes of 20 mouse moves each, at the fit zoom, anywhere on the photo."""
    canvas = window.canvas
    canvas.set_tool("brush")
    canvas.set_brush_size(80)
    left = Qt.LeftButton
    top_left = canvas.map_from_document(QPointF(0, 0))
    bottom_right = canvas.map_from_document(QPointF(window.document.width, window.document.height))
    for _ in range(count):
        x = float(rng.uniform(top_left.x() + 20, bottom_right.x() - 120))
        y = float(rng.uniform(top_left.y() + 20, bottom_right.y() - 60))
        send(canvas, QEvent.MouseButtonPress, QPointF(x, y), left, left)
        for i in range(1, 21):
            send(canvas, QEvent.MouseMove, QPointF(x + 5 * i, y + 20 * np.sin(i / 4)), Qt.NoButton, left)
            app.processEvents()
        send(canvas, QEvent.MouseButtonRelease, QPointF(x + 100, y), left, Qt.NoButton)
        app.processEvents()


def line(name: str, stats: dict[str, float]) -> str:
    return (f"{name:<44} fill {stats['seconds']:6.2f} s   GUI blocked: max {stats['max']:7.1f} ms   "
            f"p99 {stats['p99']:6.1f} ms   median tick {stats['median']:4.1f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--fills", type=int, default=5)
    parser.add_argument("--strokes", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: cores - 1)")
    parser.add_argument("--no-autosave", action="store_true", help="turn the session autosave off")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="inpaint-bench-gui-"))
    os.environ["INPAINT_STUDIO_HOME"] = str(workdir / "home")  # never touch the user's session or settings
    from engine.paths import bundled_models_dir

    bundled = bundled_models_dir()
    standin = not (bundled / "edgeconnect-image.json").is_file()
    if standin:
        folder = workdir / "models"
        folder.mkdir()
        write_standin_models(folder)
        os.environ["INPAINT_STUDIO_BUNDLED_MODELS"] = str(folder)

    from app.main import configure_torch_threads
    from app.settings import Settings

    settings = Settings()
    settings.cpu_threads = configure_torch_threads(args.threads)
    app = QApplication.instance() or QApplication([])

    from app.main_window import MainWindow
    from app.prompts import ScriptedPrompter
    from engine import imageio

    base = rss_mb()
    photo_path = workdir / "photo.jpg"
    imageio.save_image(photo_path, synthetic_photo(args.height, args.width))
    window = MainWindow(settings=settings, prompter=ScriptedPrompter(), autosave=not args.no_autosave)
    window.resize(1600, 1000)
    window.show()
    wait(app, lambda: bool(window.models))
    t = time.perf_counter()
    assert window.open_path(photo_path), window.prompter.asked
    app.processEvents()
    print(f"photo {args.width} x {args.height} JPEG, window 1600 x 1000 offscreen, torch CPU threads "
          f"{settings.cpu_threads} of {os.cpu_count()} cores, engine: {window.engine.device_name}")
    print(f"neural model: {'stand-in (EdgeConnect sizes, random weights)' if standin else 'bundled'}; "
          f"heartbeat every {HEARTBEAT_MS} ms in the GUI thread")
    print(f"open: {time.perf_counter() - t:.2f} s, RSS {rss_mb():.0f} MB (baseline before opening {base:.0f} MB)")

    rng = np.random.default_rng(7)
    heartbeat = Heartbeat()
    t = time.perf_counter()
    brush_strokes(app, window, args.strokes, rng)
    print(f"{args.strokes} brush strokes x 20 mouse moves: {time.perf_counter() - t:.1f} s, RSS {rss_mb():.0f} MB, "
          f"history {window.document.history_bytes() / 1e6:.1f} MB")

    h, w = window.document.height, window.document.width
    results = []
    for i in range(args.fills):
        mask = blob_mask(h, w, rng, blobs=1)
        stats = measured_fill(app, window, heartbeat, mask, "edgeconnect-image")
        results.append(stats)
        print(line(f"fill {i + 1} neural (worker), 1 object, hole {mask.mean() * 100:.1f}%", stats))
    print(f"after {args.strokes} strokes and {args.fills} fills: RSS {rss_mb():.0f} MB, peak {peak_rss_mb():.0f} MB, "
          f"undo history {window.document.history_bytes() / 1e6:.1f} MB")
    two = []
    for _ in range(2):
        mask = blob_mask(h, w, rng, blobs=2)
        two.append(measured_fill(app, window, heartbeat, mask, "edgeconnect-image"))
        print(line(f"fill neural (worker), 2 far objects, hole {mask.mean() * 100:.1f}%", two[-1]))
    print(f"after 2 more fills: RSS {rss_mb():.0f} MB, peak {peak_rss_mb():.0f} MB, "
          f"undo history {window.document.history_bytes() / 1e6:.1f} MB")
    mask = blob_mask(h, w, rng, blobs=1)
    telea = measured_fill(app, window, heartbeat, mask, "telea")
    print(line("baseline: telea (worker)", telea))
    inline = inline_fill(app, window, heartbeat, mask, "telea")
    print(line("baseline: telea inline in the GUI thread", inline))
    inline_neural = inline_fill(app, window, heartbeat, mask, "edgeconnect-image")
    print(line("baseline: neural inline in the GUI thread", inline_neural))
    worst = max(r["max"] for r in results)
    p99 = statistics.median(r["p99"] for r in results)
    print(f"summary: during one-object neural fills the GUI thread was blocked at most {worst:.1f} ms "
          f"(median of the p99s {p99:.1f} ms); two far objects: at most {max(r['max'] for r in two):.1f} ms")
    window.document.undo_stack.setClean()
    window.close()


if __name__ == "__main__":
    main()
