"""The fine-tune dialog's list of unfinished runs (stopped, failed or interrupted), with Resume and Delete."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from app.finetune_presenter import run_label
from trainer import finetune_protocol as protocol


class UnfinishedRunsBox(QGroupBox):
    """Unfinished runs, newest first; hidden while there are none.

    Signals: ``resume_requested(Path)`` and ``delete_requested(Path)`` for the selected run's folder;
    ``selection_changed()``.
    """

    resume_requested = Signal(object)
    delete_requested = Signal(object)
    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Unfinished runs (stopped, failed or interrupted)", parent)
        self.runs_list = QListWidget()
        self.runs_list.setMaximumHeight(90)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the selected run from its last checkpoint")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected run's folder (checkpoints, curves, samples)")
        layout = QHBoxLayout(self)
        layout.addWidget(self.runs_list, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.resume_button.clicked.connect(self._resume_selected)
        self.delete_button.clicked.connect(self._delete_selected)
        self.runs_list.currentRowChanged.connect(lambda _row: self.selection_changed.emit())

    def refresh(self, running: Path | None = None) -> None:
        """List the unfinished runs, except ``running`` (the one this dialog trains now)."""
        self.runs_list.clear()
        for info in protocol.list_runs():
            if running is not None and info.run_dir == running:
                continue
            item = QListWidgetItem(run_label(info))
            item.setData(Qt.UserRole, str(info.run_dir))
            item.setToolTip(info.message or str(info.run_dir))
            self.runs_list.addItem(item)
        self.setVisible(self.runs_list.count() > 0)
        if self.runs_list.count():
            self.runs_list.setCurrentRow(0)

    def selected_run(self) -> Path | None:
        """The selected run's folder, if any."""
        item = self.runs_list.currentItem()
        return Path(item.data(Qt.UserRole)) if item is not None else None

    def set_actions_enabled(self, enabled: bool) -> None:
        """Resume and Delete are usable when ``enabled`` and a run is selected."""
        selected = self.runs_list.currentItem() is not None
        self.resume_button.setEnabled(enabled and selected)
        self.delete_button.setEnabled(enabled and selected)

    @Slot()
    def _resume_selected(self) -> None:
        run_dir = self.selected_run()
        if run_dir is not None:
            self.resume_requested.emit(run_dir)

    @Slot()
    def _delete_selected(self) -> None:
        run_dir = self.selected_run()
        if run_dir is not None:
            self.delete_requested.emit(run_dir)
