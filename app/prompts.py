"""Questions and messages to the user, behind one small interface so tests can answer them.

The window holds a :class:`Prompter`; the real one (:class:`QtPrompter`) uses ``QMessageBox`` and
``QFileDialog``; tests use :class:`ScriptedPrompter`, which answers from queues and records what it was asked.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Protocol

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


class Prompter(Protocol):
    """Everything the editor asks or tells the user."""

    def confirm(self, title: str, text: str, default: bool = False) -> bool: ...  # default: what Enter answers

    def unsaved_changes(self, text: str) -> str: ...  # SAVE, DISCARD or CANCEL

    def error(self, title: str, text: str) -> None: ...

    def warning(self, title: str, text: str) -> None: ...

    def open_path(self, title: str, start: Path | None, name_filter: str) -> Path | None: ...

    def save_path(self, title: str, suggested: Path | None, name_filter: str) -> Path | None: ...


class QtPrompter:
    """Message boxes and file dialogs parented to ``parent``."""

    def __init__(self, parent: QWidget | None) -> None:
        self.parent = parent

    def confirm(self, title: str, text: str, default: bool = False) -> bool:
        answer = QMessageBox.question(self.parent, title, text, QMessageBox.Yes | QMessageBox.No,
                                      QMessageBox.Yes if default else QMessageBox.No)
        return answer == QMessageBox.Yes

    def unsaved_changes(self, text: str) -> str:
        box = QMessageBox(QMessageBox.Warning, "Unsaved changes", text,
                          QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, self.parent)
        box.setDefaultButton(QMessageBox.Save)
        answer = box.exec()
        return {QMessageBox.Save: SAVE, QMessageBox.Discard: DISCARD}.get(answer, CANCEL)

    def error(self, title: str, text: str) -> None:
        QMessageBox.critical(self.parent, title, text)

    def warning(self, title: str, text: str) -> None:
        QMessageBox.warning(self.parent, title, text)

    def open_path(self, title: str, start: Path | None, name_filter: str) -> Path | None:
        name, _ = QFileDialog.getOpenFileName(self.parent, title, str(start or ""), name_filter)
        return Path(name) if name else None

    def save_path(self, title: str, suggested: Path | None, name_filter: str) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(self.parent, title, str(suggested or ""), name_filter)
        return Path(name) if name else None


class ScriptedPrompter:
    """Answers from queues (tests); every question and message is recorded in ``asked``."""

    def __init__(self) -> None:
        self.confirms: deque[bool] = deque()
        self.unsaved: deque[str] = deque()
        self.paths: deque[Path | None] = deque()
        self.asked: list[tuple[str, str, str]] = []

    def _record(self, kind: str, title: str, text: str) -> None:
        self.asked.append((kind, title, text))

    def confirm(self, title: str, text: str, default: bool = False) -> bool:
        self._record("confirm", title, text)
        return self.confirms.popleft() if self.confirms else default

    def unsaved_changes(self, text: str) -> str:
        self._record("unsaved", "Unsaved changes", text)
        return self.unsaved.popleft() if self.unsaved else DISCARD

    def error(self, title: str, text: str) -> None:
        self._record("error", title, text)

    def warning(self, title: str, text: str) -> None:
        self._record("warning", title, text)

    def open_path(self, title: str, start: Path | None, name_filter: str) -> Path | None:
        self._record("open_path", title, str(start))
        return self.paths.popleft() if self.paths else None

    def save_path(self, title: str, suggested: Path | None, name_filter: str) -> Path | None:
        self._record("save_path", title, str(suggested))
        return self.paths.popleft() if self.paths else None

    def kinds(self) -> list[str]:
        """The kinds of everything asked so far, in order."""
        return [kind for kind, _, _ in self.asked]
