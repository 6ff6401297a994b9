"""``inpaint-gui [IMAGE]``: start the editor.

Order matters: the preferences are read and torch's CPU thread count is fixed (once, before any torch op
in the process, keeping a core for the window) before the engine thread starts.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.settings import Settings

log = logging.getLogger(__name__)


def configure_torch_threads(requested: int | None) -> int:
    """Cap torch's CPU threads for the whole process (engine devices helper); returns the count."""
    import torch

    from engine.devices import cpu_thread_cap

    count = cpu_thread_cap(requested)
    torch.set_num_threads(count)
    return count


def apply_theme(app: QApplication) -> None:
    """A dark Fusion palette: photos read better on a neutral dark surround."""
    app.setStyle("Fusion")
    palette = QPalette()
    base, window, text = QColor(37, 37, 40), QColor(50, 50, 54), QColor(220, 220, 220)
    for role, color in (
        (QPalette.Window, window), (QPalette.WindowText, text), (QPalette.Base, base),
        (QPalette.AlternateBase, window), (QPalette.ToolTipBase, QColor(255, 255, 220)),
        (QPalette.ToolTipText, QColor(20, 20, 20)), (QPalette.Text, text), (QPalette.Button, window),
        (QPalette.ButtonText, text), (QPalette.BrightText, QColor(255, 80, 80)),
        (QPalette.Highlight, QColor(60, 130, 220)), (QPalette.HighlightedText, QColor(255, 255, 255)),
        (QPalette.Link, QColor(100, 160, 255)),
    ):
        palette.setColor(role, color)
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        palette.setColor(QPalette.Disabled, role, QColor(120, 120, 120))
    app.setPalette(palette)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="inpaint-gui", description="Inpaint Studio: remove things from photos.")
    parser.add_argument("image", nargs="?", help="photo to open")
    parser.add_argument("--no-recover", action="store_true", help="do not offer to recover a crashed session")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``inpaint-gui``."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if QApplication.instance() is None:
        from app.platform_check import check_platform

        problem = check_platform()
        if problem:
            print(problem, file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.load()
    configure_torch_threads(settings.cpu_threads)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Inpaint Studio")
    app.setOrganizationName("inpaint-studio")
    apply_theme(app)

    from app.main_window import MainWindow

    window = MainWindow(settings=settings)
    window.show()

    QTimer.singleShot(0, lambda: start_session(window, settings, args.image, recover=not args.no_recover))
    return app.exec()


def start_session(window, settings: Settings, image: str | None, recover: bool = True) -> None:
    """What the window does first: say if the preferences were reset, offer a crashed session, then open the
    photo given on the command line (after a recovery too: it asks about the recovered changes first)."""
    if settings.load_warning:
        window.prompter.warning("Preferences reset", settings.load_warning)
    if recover:
        window.offer_recovery()
    if image:
        window.open_path(Path(image))


if __name__ == "__main__":
    sys.exit(main())
