"""The fine-tune dialog's live view of a run ("Training"): progress with ETA, loss curves, the latest sample grid
and the validation table, all from the job's metrics records."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QGroupBox,
    QHeaderView,
    QLabel,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import finetune_presenter as presenter
from app.fitted_image import FittedImageLabel
from app.loss_plot import LossPlot
from trainer import finetune_protocol as protocol


class TrainingBox(QGroupBox):
    """Shows one run as its records arrive (:meth:`show_record`); ``status_label`` takes the dialog's messages.

    ``first_val``/``last_val``: the first and latest validation records of the run shown.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Training", parent)
        self.first_val: dict[str, Any] | None = None
        self.last_val: dict[str, Any] | None = None
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("not started")
        self.status_label = QLabel("Choose the settings on the left, then Start.")
        self.status_label.setWordWrap(True)
        self.loss_plot = LossPlot()
        self.sample_label = FittedImageLabel("The latest sample grid (input, edges, output, truth) appears here.")
        self.sample_label.setMinimumHeight(120)
        self.val_label = QLabel("Validation")
        self.val_table = QTableWidget(0, len(presenter.VAL_COLUMNS))
        self.val_table.setHorizontalHeaderLabels([label for _, label in presenter.VAL_COLUMNS])
        self.val_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.val_table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.val_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.val_table.verticalHeader().setMaximumWidth(320)
        live = QVBoxLayout(self)
        live.addWidget(self.progress_bar)
        live.addWidget(self.status_label)
        live.addWidget(self.loss_plot, 1)
        live.addWidget(self.sample_label, 1)
        live.addWidget(self.val_label)
        live.addWidget(self.val_table)
        self.fit_table_height()

    def start(self, spec: protocol.JobSpec) -> None:
        """A run of ``spec`` is starting: clear what the last one showed."""
        self.reset()
        self.sample_label.clear_image("The latest sample grid appears after the first validation.")
        self.progress_bar.setRange(0, spec.steps)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting…")
        self.status_label.setText(f"Fine-tuning {spec.base} into '{spec.name}' on {spec.device}…")

    def reset(self) -> None:
        """The records start over (the run restarted from scratch): clear the curves and the validation."""
        self.loss_plot.clear()
        self.val_table.setRowCount(0)
        self.first_val = self.last_val = None

    def finish(self, text: str, complete: bool = False) -> None:
        """The run ended: ``text`` in the progress bar, which a ``complete`` run fills."""
        if complete:
            self.progress_bar.setValue(self.progress_bar.maximum())
        self.progress_bar.setFormat(text)

    def show_record(self, record: dict[str, Any], total_steps: int) -> None:
        """One metrics record of the running job (``total_steps`` when the record does not say)."""
        kind = record.get("kind")
        total = int(record.get("total_steps") or total_steps)
        if kind == "start":
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(int(record.get("step", 0)))
            notes = [m for m in record.get("messages", []) if m]
            self.status_label.setText(f"Training on {record.get('hardware', '?')}." +
                                      (" " + " ".join(notes[-3:]) if notes else ""))
        elif kind == "train":
            step = int(record.get("step", 0))
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(min(step, total))
            self.progress_bar.setFormat(presenter.progress_format(step, total, record.get("eta_s")))
            self.loss_plot.add_record(record)
        elif kind == "val":
            self._show_validation(record)
        elif kind == "sample":
            self._show_sample(record.get("path", ""))
        elif kind == "checkpoint":
            self.status_label.setText(f"Checkpoint saved at step {record.get('step')}.")

    def worse_than_base(self) -> str:
        """A warning when the latest validation is clearly worse than the base model's ("" otherwise)."""
        return presenter.worse_than_base(self.first_val, self.last_val)

    def _show_validation(self, record: dict[str, Any]) -> None:
        table = record.get("table") or {}
        if not isinstance(table, dict):
            return
        if self.first_val is None:
            self.first_val = record
        self.last_val = record
        labels, rows = presenter.validation_rows(table)
        self.val_table.setRowCount(len(rows))
        self.val_table.setVerticalHeaderLabels(labels)
        for row, texts in enumerate(rows):
            for col, text in enumerate(texts):
                self.val_table.setItem(row, col, QTableWidgetItem(text))
        self.val_label.setText(presenter.validation_headline(record, self.first_val))
        self.fit_table_height()

    def fit_table_height(self) -> None:
        """The validation table is as tall as its rows (no empty band below them)."""
        table = self.val_table
        rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
        table.setFixedHeight(table.horizontalHeader().sizeHint().height() + rows + 2 * table.frameWidth())

    def _show_sample(self, path: str) -> None:
        pixmap = QPixmap(path)
        if pixmap.isNull():
            return
        self.sample_label.setToolTip(path)
        self.sample_label.set_image(pixmap)
