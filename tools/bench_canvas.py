"""Canvas benchmark on a 6000 x 4000 photo: brush mouse-move latency including repaint, and memory.

Run offscreen: ``QT_QPA_PLATFORM=offscreen python -m tools.bench_canvas`` (the platform is set to offscreen
if none is given). Prints the median and p95 time to handle one brush mouse-move event, from the event
being sent to the repaint finished, at fit and at 100%, beside two naive baselines (repainting the
whole canvas per move; converting the whole mask to an ARGB image per move), then the process memory
after 50 strokes and 5 fills and the bytes the undo history holds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from app.canvas import Canvas
from app.document import Document
from engine.api import FillResult


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux), else NaN."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def synthetic_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth-ish colour image with texture (cheap to make, not constant)."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 50 + 1, w // 50 + 1, 3), dtype=np.uint8)
    photo = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(0, 24, (h, w, 1), dtype=np.uint8)
    return cv2.add(photo, np.repeat(noise, 3, axis=2))


class CountingCanvas(Canvas):
    """The canvas, counting its paint events and the device pixels they covered (proof that repaints ran)."""

    paints = 0
    painted_pixels = 0

    def paintEvent(self, event) -> None:
        CountingCanvas.paints += 1
        CountingCanvas.painted_pixels += sum(r.width() * r.height() for r in event.region())
        super().paintEvent(event)


def send(canvas: Canvas, kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton, buttons) -> None:
    event = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(canvas, event)


def stroke_moves(app: QApplication, canvas: Canvas, start: QPointF, moves: int, step: float,
                 full_repaint: bool = False) -> list[float]:
    """Times (s) of each move event of one stroke, each followed by the repaint it caused."""
    left = Qt.MouseButton.LeftButton
    send(canvas, QEvent.Type.MouseButtonPress, start, left, left)
    app.processEvents()
    times = []
    for i in range(1, moves + 1):
        pos = QPointF(start.x() + step * i, start.y() + 25.0 * np.sin(i / 9.0))
        t0 = time.perf_counter()
        send(canvas, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, left)
        if full_repaint:
            canvas.update()
        app.processEvents()  # runs the paint event
        times.append(time.perf_counter() - t0)
    send(canvas, QEvent.Type.MouseButtonRelease, pos, left, Qt.MouseButton.NoButton)
    app.processEvents()
    return times


def summary(times: list[float], paints: int | None = None) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    text = f"median {statistics.median(ms):6.2f} ms   p95 {p95:6.2f} ms   (n={len(ms)})"
    if paints is not None:
        text += f", {CountingCanvas.paints - paints} paints, {CountingCanvas.painted_pixels // max(1, len(ms))} px/move"
    return text


def measured(app, canvas, start, moves, step, full_repaint=False) -> str:
    paints = CountingCanvas.paints
    CountingCanvas.painted_pixels = 0
    return summary(stroke_moves(app, canvas, start, moves, step, full_repaint), paints)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--moves", type=int, default=300)
    parser.add_argument("--brush", type=int, default=60, help="brush diameter in photo pixels")
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication([])
    base_rss = rss_mb()
    photo = synthetic_photo(args.height, args.width)
    doc = Document()
    t = time.perf_counter()
    doc.load_array(photo)
    del photo
    canvas = CountingCanvas()
    canvas.resize(1600, 1000)
    canvas.set_document(doc)
    canvas.show()
    app.processEvents()
    print(f"photo {args.width} x {args.height}, canvas 1600 x 1000 (offscreen), brush {args.brush} px")
    print(f"open (document + layer pyramids + first paint): {time.perf_counter() - t:.3f} s")
    canvas.brush_size = args.brush

    t = time.perf_counter()
    canvas.update()
    app.processEvents()
    print(f"full repaint at fit (zoom {canvas.zoom():.3f}): {1000 * (time.perf_counter() - t):.2f} ms")

    center = QPointF(300, 400)
    print("brush mouse-move incl. repaint, at fit:      ", measured(app, canvas, center, args.moves, 3.0))
    canvas.actual_size()
    app.processEvents()
    print("brush mouse-move incl. repaint, at 100%:     ", measured(app, canvas, center, args.moves, 2.0))
    canvas.set_zoom(4.0)
    app.processEvents()
    print("brush mouse-move incl. repaint, at 400%:     ", measured(app, canvas, center, args.moves, 2.0))
    canvas.fit()
    app.processEvents()
    print("baseline: same, whole canvas repainted:      ",
          measured(app, canvas, QPointF(300, 600), min(args.moves, 100), 3.0, full_repaint=True))
    naive = []
    for _ in range(5):
        t0 = time.perf_counter()
        rgba = np.zeros((doc.height, doc.width, 4), np.uint8)
        rgba[doc.mask] = (255, 40, 90, 120)
        QImage(rgba.data, doc.width, doc.height, 4 * doc.width, QImage.Format.Format_RGBA8888).copy()
        naive.append(time.perf_counter() - t0)
    print("baseline: whole mask to an RGBA QImage per move:", summary(naive))
    t = time.perf_counter()
    canvas.set_edges_visible(True)
    app.processEvents()
    print(f"show edge layer (Canny of the whole photo, once): {time.perf_counter() - t:.3f} s")
    print("brush mouse-move with edge layer shown, fit: ", measured(app, canvas, QPointF(300, 200), args.moves, 3.0))
    canvas.set_edges_visible(False)

    rng = np.random.default_rng(1)
    doc.undo_stack.clear()
    for _ in range(50):
        start = QPointF(float(rng.uniform(50, 1400)), float(rng.uniform(50, 900)))
        stroke_moves(app, canvas, start, 20, float(rng.uniform(-8, 8)))
    strokes_bytes = doc.history_bytes()
    doc.clear_mask()  # each fill below then changes just its own 800 x 600 box
    for i in range(5):
        x0, y0 = 500 + 900 * i, 800 + 500 * i
        doc.add_rectangle((x0, y0, x0 + 800, y0 + 600))
        out = doc.image.copy()
        out[doc.mask] = (40 * i, 100, 200)
        doc.apply_fill(FillResult(image=out, edges=None, timings={}, backend="bench"))
        del out
    app.processEvents()
    print(f"undo history: {doc.undo_stack.count()} commands, {strokes_bytes / 1e6:.2f} MB for 50 strokes, "
          f"{doc.history_bytes() / 1e6:.2f} MB with a mask clear and 5 fills of 800 x 600")
    print(f"process memory (RSS) after 50 strokes and 5 fills: {rss_mb():.0f} MB (Qt + numpy start: {base_rss:.0f} MB)")
    canvas.close()


if __name__ == "__main__":
    main()
