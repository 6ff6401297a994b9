"""Fill jobs of the editor: build the request, start the worker, show progress, land or drop the result.

:class:`FillController` owns everything between "Fill" (or "Predict Edges") and the result: the checks
before a job, the request (the photo from a mirror, so no whole 24 MP copy in the GUI thread), the progress
bar and status messages, cancellation, and what happens to a result: applied as one undo step, shown on the
edge layer, or dropped when the photo was replaced meanwhile (a stale result) or the window is closing.
The window keeps the widgets and calls :meth:`photo_replaced` and :meth:`stop`; ``changed`` tells it to
re-enable its actions whenever a job starts or ends.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QProgressBar, QStatusBar

from app.canvas import Canvas
from app.document import Document
from app.mirror import ImageMirror
from app.prompts import Prompter
from app.session import AutoSaver
from app.settings import Settings
from app.worker import EngineClient
from engine.api import DEFAULT_MODEL, FillOptions, FillRequest, FillResult
from engine.errors import EngineError

FILL = "fill"
EDGES = "edges"


def edges_shown_message(sketch_only: bool) -> str:
    """What the status bar says after Predict Edges: whether the fill will use the yellow proposals."""
    if sketch_only:
        return ("Proposed edges shown in yellow, as a guide only: this model follows the lines you draw. Trace "
                "the ones you want with the edge pen (P), then Fill.")
    return "Predicted edges shown in yellow; correct them with the edge pen (P) and edge eraser (Shift+P), then Fill."


class FillController(QObject):
    """Runs the editor's fill and edge-prediction jobs on ``engine`` and puts their results in ``document``.

    ``selected_model`` names the model the next job uses.
    """

    changed = Signal()  # a job started or ended: actions that depend on "busy" need updating

    def __init__(self, document: Document, engine: EngineClient, settings: Settings, prompter: Prompter, *,
                 autosaver: AutoSaver, canvas: Canvas, status: QStatusBar, progress: QProgressBar,
                 selected_model: Callable[[], str], follows_sketch_only: Callable[[], bool] = lambda: False,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.engine = engine
        self.settings = settings
        self.prompter = prompter
        self.autosaver = autosaver
        self.canvas = canvas
        self.status = status
        self.progress = progress
        self.selected_model = selected_model
        self.follows_sketch_only = follows_sketch_only
        self._doc_generation = 0  # counts photos opened: a result for an earlier one is stale
        self._job_generation = -1
        self._job_kind = ""
        self._job_request: FillRequest | None = None
        self._closing = False
        # A warm copy of the photo for the worker (only changed rects are copied).
        self._mirror = ImageMirror(document)
        document.layer_changed.connect(self._mirror.mark)
        engine.progress.connect(self.on_progress)
        engine.finished.connect(self.on_fill_finished)
        engine.edges_ready.connect(self.on_edges_ready)
        engine.failed.connect(self.on_failed)
        engine.cancelled.connect(self.on_cancelled)
        engine.idle.connect(self._refresh)

    # ------------------------------------------------------------------ starting and stopping
    def _check_ready(self) -> bool:
        if self.document.is_empty():
            self.status.showMessage("Open a photo first (File > Open, or drop one on the window).", 5000)
            return False
        if not self.document.mask.any():
            self.status.showMessage("Paint over what should go first (Brush, B), then Fill (Ctrl+Enter).", 5000)
            return False
        return not self.engine.is_busy()

    def fill(self) -> bool:
        """Fill the masked area in the worker; the result lands through :meth:`on_fill_finished`."""
        return self._check_ready() and self._submit(FILL)

    def predict_edges(self) -> bool:
        """Ask the edge generator for the edges it proposes in the hole (shown on the edge layer)."""
        return self._check_ready() and self._submit(EDGES)

    def build_request(self) -> FillRequest:
        """Like ``Document.fill_request`` (copies of the layers), but the photo comes from a mirror kept
        between fills in which only the changed rects are refreshed: copying the whole 24 MP photo in the
        GUI thread would freeze it for tens of ms per fill. Safe because jobs run one at a time and the
        mirror is only refreshed when no job is pending."""
        doc = self.document
        return FillRequest(image=self._mirror.sync(), mask=doc.mask.copy(),
                           sketch_drawn=doc.sketch_drawn.copy() if doc.sketch_drawn.any() else None,
                           sketch_erased=doc.sketch_erased.copy() if doc.sketch_erased.any() else None,
                           model=self.selected_model(),
                           options=FillOptions(texture=self.settings.texture_strength))

    def _submit(self, kind: str) -> bool:
        request = self.build_request()
        self._job_generation = self._doc_generation
        self._job_kind = kind
        self._job_request = request  # what was sent: the person may keep painting while it runs
        self.progress.setValue(0)
        self.progress.setFormat("Filling…" if kind == FILL else "Predicting edges…")
        self.progress.setVisible(True)
        self.status.showMessage("Filling… (Esc cancels)" if kind == FILL else "Predicting edges…")
        if kind == FILL:
            self.autosaver.save_now()  # a crash during the fill must not lose what was painted
            self.engine.fill(request, copy=False)
        else:
            self.engine.predict_edges(request, copy=False)
        self._refresh()
        return True

    def cancel(self) -> None:
        """Stop the running fill (cooperative: it ends at the engine's next check)."""
        if self.engine.is_busy():
            self.engine.cancel()
            self.status.showMessage("Cancelling…")

    def photo_replaced(self) -> None:
        """Another photo is open: a result still to come belongs to the previous one and must not land."""
        self._doc_generation += 1
        if self.engine.is_busy():
            self.engine.cancel()
        else:
            self._mirror.reset()  # allocate and copy now, while opening, not during the first fill

    def stop(self) -> None:
        """The window is closing: results that still arrive are dropped without a word."""
        self._closing = True
        self.document.layer_changed.disconnect(self._mirror.mark)

    # ------------------------------------------------------------------ progress and results
    @Slot()
    def _refresh(self) -> None:
        self.changed.emit()
        if not self.engine.is_busy():
            self.progress.setVisible(False)

    def _job_ended(self) -> str:
        kind, self._job_kind = self._job_kind, ""
        self._refresh()
        return kind

    def _current(self) -> bool:
        return self._job_generation == self._doc_generation and not self._closing

    @Slot(float, str)
    def on_progress(self, fraction: float, stage: str) -> None:
        self.progress.setValue(round(fraction * 1000))
        self.progress.setFormat(f"{stage} %p%")

    @Slot(object)
    def on_fill_finished(self, result: FillResult) -> None:
        """Put the fill in place as one undo step; clear the mask if the preference says so."""
        self._job_ended()
        if not self._current():
            return
        sent = self._job_request
        try:
            command = self.document.apply_fill(result, clear_mask=self.settings.clear_mask_after_fill, sent=sent)
        except EngineError as exc:
            self.prompter.error("Fill failed", str(exc))
            return
        if command is not None:
            self.canvas.set_edges_visible(False)  # show the result, not the edges over it (Shift+E shows them)
        seconds = result.timings.get("total", 0.0)
        note = " ".join(result.messages)
        if sent is not None and (sent.sketch_drawn is not None or sent.sketch_erased is not None):
            sketch = np.zeros(sent.mask.shape, bool)
            for part in (sent.sketch_drawn, sent.sketch_erased):
                if part is not None:
                    sketch |= part
            if not (sketch & sent.mask).any():
                note = f"Your edge sketch lies outside the hole, so the fill had nothing to follow. {note}".strip()
            elif not result.sketch_followed:
                note = f"{result.backend} fills without edges: your edge sketch was not used. {note}".strip()
        if command is None:
            self.status.showMessage(note or "The fill changed nothing.", 8000)
        else:
            self.status.showMessage(f"Filled with {result.backend} on {result.device} in {seconds:.2f} s. "
                                    f"Hold Tab to compare. {note}".strip(), 10000)
        self.autosaver.save_soon()

    @Slot(object)
    def on_edges_ready(self, result: FillResult) -> None:
        """Show the predicted edges on the edge layer, for the person to correct before filling."""
        self._job_ended()
        if not self._current() or result.edges is None:
            return
        try:
            self.document.set_predicted_edges(result.edges)
        except EngineError as exc:
            self.prompter.error("Predict edges failed", str(exc))
            return
        self.canvas.set_edges_visible(True)
        self.status.showMessage(edges_shown_message(self.follows_sketch_only()), 10000)

    @Slot(str)
    def on_failed(self, message: str) -> None:
        """Any engine error: a clear dialog; the editor keeps working."""
        kind = self._job_ended()
        if self._closing:
            return
        if kind == FILL and self.selected_model() != DEFAULT_MODEL and "cannot be read" in message:
            message += "\n\nThe model's files may have been moved or deleted: use Models > Refresh Model List, or " \
                       "choose another model."
        title = {FILL: "Fill failed", EDGES: "Predict edges failed"}.get(kind, "Fill engine")
        self.status.showMessage({FILL: "The fill failed.", EDGES: "Predicting edges failed."}.get(
            kind, "The fill engine is not available (see the message)."), 5000)
        self.prompter.error(title, message)

    @Slot()
    def on_cancelled(self) -> None:
        self._job_ended()
        if self._current():  # not when opening another photo cancelled it, nor when closing
            self.status.showMessage("Cancelled.", 4000)
