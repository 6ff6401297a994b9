"""Drive the real editor and grab a screenshot (for the docs). Run it from the repository root (with the
project installed, ``pip install -e .``) under a real or virtual display:

    xvfb-run -a -s "-screen 0 1600x1000x24" python tools/screenshot.py PHOTO --out docs/images/editor.png \
        --stroke 375,206,377,270 --stroke 368,268,440,292 --brush 30 --hover 330,250

The window opens ``PHOTO`` (with the dark theme ``inpaint-gui`` uses), paints the given brush strokes with
real mouse events (photo coordinates ``x0,y0,x1,y1``), optionally predicts edges and/or fills, and saves
``QScreen.grabWindow`` of the window (``QWidget.grab`` when the platform cannot grab the screen). With
``--finetune-out`` it then runs Models > Fine-tune... on the photo with the dialog's defaults and saves the
dialog once the run has ended. The session, settings and fine-tuned models go to a temporary folder, never
the user's.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QEventLoop, QPointF, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication


def _send(widget, kind: QEvent.Type, pos: QPointF, button, buttons) -> None:
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(widget, event)


def paint_stroke(canvas, points: list[tuple[float, float]], steps: int = 24) -> None:
    """A brush stroke through photo points, as real mouse press / moves / release on the canvas."""
    left = Qt.LeftButton
    widget_points = [canvas.map_from_document(QPointF(x, y)) for x, y in points]
    _send(canvas, QEvent.MouseButtonPress, widget_points[0], left, left)
    for a, b in itertools.pairwise(widget_points):
        for i in range(1, steps + 1):
            t = i / steps
            _send(canvas, QEvent.MouseMove, a * (1 - t) + b * t, Qt.NoButton, left)
    _send(canvas, QEvent.MouseButtonRelease, widget_points[-1], left, Qt.NoButton)


def settle(app: QApplication, seconds: float) -> None:
    """Let the event loop run (layout, paint, worker signals) for ``seconds``."""
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def wait_for(app: QApplication, condition, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        settle(app, 0.05)
    return True


def save_grab(widget, out: Path) -> None:
    """Save the widget's window as the screen shows it (``QWidget.grab`` when the screen cannot be grabbed)."""
    screen = widget.screen()
    pixmap = screen.grabWindow(widget.winId()) if screen is not None else None
    if pixmap is None or pixmap.isNull():
        pixmap = widget.grab()
    out.parent.mkdir(parents=True, exist_ok=True)
    pixmap.save(str(out))


def save_screen_area(widget, out: Path) -> None:
    """Save the screen where ``widget`` is, pop-ups on top of it included (they are windows of their own)."""
    screen = widget.screen()
    geometry = widget.frameGeometry()
    pixmap = screen.grabWindow(0, geometry.x(), geometry.y(), geometry.width(), geometry.height())
    if pixmap.isNull():
        pixmap = widget.grab()
    out.parent.mkdir(parents=True, exist_ok=True)
    pixmap.save(str(out))


def finetune_and_grab(app: QApplication, window, out: Path) -> str:
    """Open Models > Fine-tune..., start "this photo" with the defaults, wait for the end, save the dialog."""
    from app.finetune_dialog import FinetuneDialog

    window.show_finetune()
    dialog = window.findChild(FinetuneDialog)
    dialog.resize(1100, 860)
    wait_for(app, lambda: dialog.estimate is not None, timeout=120)
    estimate = dialog.estimate_label.text()
    started = time.monotonic()
    if not dialog.start():
        return f"the fine-tune did not start: {dialog.last_error}"
    wait_for(app, lambda: dialog.outcome is not None, timeout=900)
    settle(app, 1.0)
    save_grab(dialog, out)
    return (f"saved {out}; estimate {estimate!r}; run {time.monotonic() - started:.0f} s; "
            f"{dialog.status_label.text()!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot of the editor in use.")
    parser.add_argument("photo")
    parser.add_argument("--out", default="docs/images/editor.png")
    parser.add_argument("--size", default="1440x900", help="window size WxH")
    parser.add_argument("--stroke", action="append", default=[],
                        help="[TOOL:]x0,y0,x1,y1[,x2,y2...] in photo pixels, painted with TOOL (default: brush), "
                             "e.g. edge_eraser:10,10,40,40")
    parser.add_argument("--brush", type=int, default=24)
    parser.add_argument("--model", default=None, help="model to select (default: automatic)")
    parser.add_argument("--predict-edges", action="store_true")
    parser.add_argument("--fill", action="store_true")
    parser.add_argument("--compare", action="store_true", help="grab while Tab is held (the photo before the fill)")
    parser.add_argument("--shortcuts-out", default=None, help="also grab the F1 shortcut list to this file")
    parser.add_argument("--tool", default="brush", help="tool active in the picture")
    parser.add_argument("--hover", default=None, help="x,y photo point where the pointer rests (brush outline)")
    parser.add_argument("--open-model-list", action="store_true",
                        help="grab with the model drop-down open (the screen area of the window)")
    parser.add_argument("--finetune-out", default=None,
                        help="also run Models > Fine-tune... on this photo with the dialog's defaults and save the "
                             "dialog, once the run has finished, to this file")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    os.environ.setdefault("INPAINT_STUDIO_HOME", tempfile.mkdtemp(prefix="inpaint-shot-"))
    from app.main import apply_theme, configure_torch_threads
    from app.settings import Settings

    settings = Settings.load()
    configure_torch_threads(settings.cpu_threads)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Inpaint Studio")
    apply_theme(app)

    from app.main_window import MainWindow
    from app.prompts import ScriptedPrompter

    prompter = ScriptedPrompter()
    window = MainWindow(settings=settings, prompter=prompter, autosave=False)
    width, height = (int(v) for v in args.size.lower().split("x"))
    window.resize(width, height)
    window.move(40, 30)
    window.show()
    wait_for(app, lambda: bool(window.models))
    if not window.open_path(args.photo):
        print("could not open:", prompter.asked, file=sys.stderr)
        return 1
    if args.model and not window.select_model(args.model):
        print(f"model {args.model!r} is not listed", file=sys.stderr)
    settle(app, 0.3)
    window.canvas.set_brush_size(args.brush)
    for text in args.stroke:
        tool, _, coords = text.rpartition(":")
        window.canvas.set_tool(tool or "brush")
        values = [float(v) for v in coords.split(",")]
        paint_stroke(window.canvas, list(zip(values[0::2], values[1::2])))
    if args.predict_edges:
        window.predict_edges()
        wait_for(app, lambda: not window.engine.is_busy())
    if args.fill:
        window.fill()
        wait_for(app, lambda: not window.engine.is_busy())
    window.canvas.set_tool(args.tool)
    if args.hover:  # park the pointer so the brush outline shows, as it would while painting
        x, y = (float(v) for v in args.hover.split(","))
        _send(window.canvas, QEvent.MouseMove, window.canvas.map_from_document(QPointF(x, y)), Qt.NoButton,
              Qt.NoButton)
    if args.compare:
        window.canvas.set_compare(True)
    if args.open_model_list:
        window.model_combo.showPopup()
    settle(app, 0.5)
    (save_screen_area if args.open_model_list else save_grab)(window, Path(args.out))
    window.model_combo.hidePopup()
    window.canvas.set_compare(False)
    if args.shortcuts_out:
        from PySide6.QtWidgets import QMessageBox

        def grab_box() -> None:
            box = next(w for w in app.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
            settle(app, 0.3)
            save_grab(box, Path(args.shortcuts_out))
            box.accept()

        QTimer.singleShot(500, grab_box)
        window.show_shortcuts()
    print(f"saved {args.out}; model list: {[m.name for m in window.models]}; "
          f"messages: {prompter.asked}; status: {window.statusBar().currentMessage()!r}")
    if args.finetune_out:
        print(finetune_and_grab(app, window, Path(args.finetune_out)))
    window.document.undo_stack.setClean()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
