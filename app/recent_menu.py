"""File > Open Recent: the recently opened photos that still exist, listed afresh each time the menu opens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QMenu, QWidget

from app.settings import Settings

OBJECT_NAME = "recentFiles"


class RecentFilesMenu(QMenu):
    """The Open Recent submenu; choosing an entry calls ``open_path`` with its path.

    Entries are numbered (``&1``...), named by file name, with the folder added where two names are alike, and
    carry the full path as tooltip. The list comes from ``settings.existing_recent()`` when the menu is about
    to show, so a file deleted meanwhile is not offered.
    """

    def __init__(self, title: str, settings: Settings, open_path: Callable[[str], object],
                 parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.setObjectName(OBJECT_NAME)
        self.settings = settings
        self.open_path = open_path
        self.aboutToShow.connect(self._fill)

    def _fill(self) -> None:
        self.clear()
        recent = self.settings.existing_recent()
        if not recent:
            self.addAction("No recent files").setEnabled(False)
            return
        self.setToolTipsVisible(True)
        names = [Path(name).name for name in recent]
        for i, name in enumerate(recent, 1):
            path = Path(name)
            label = path.name if names.count(path.name) == 1 else f"{path.name} ({path.parent.name or path.parent})"
            action = self.addAction(f"&{i % 10} {label.replace('&', '&&')}")  # a literal & in a name
            action.setToolTip(name)
            action.triggered.connect(lambda _=False, p=name: self.open_path(p))
