"""The one long-lived worker thread that owns the engine and its loaded models.

``EngineWorker`` (a ``QObject`` moved to a ``QThread``) builds the :class:`engine.pipeline.Engine`
inside that thread, runs requests one at a time under ``torch.inference_mode()`` and reports through
signals. It never touches widgets. ``EngineClient`` lives in the GUI thread: it owns the thread, hands
requests over (as copies, so no numpy buffer is shared with a QImage across threads), cancels
cooperatively through a thread-safe flag and shuts everything down cleanly. ``synchronous=True`` runs
everything inline in the caller's thread (tests, scripts).
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.api import FillRequest, FillResult
from engine.errors import EngineError, FillCancelled

log = logging.getLogger(__name__)

EngineFactory = Callable[[], Any]
"""Builds the engine; called once, inside the worker thread."""

FILL = "fill"
PREDICT_EDGES = "predict_edges"

# Every started engine thread with its worker and cancel flag, until shut down. Holding them here means
# a client dropped without shutdown() (a bug) leaves a running thread that tests can detect and stop,
# instead of Qt aborting the process with "QThread: Destroyed while thread is still running".
_LIVE: dict[int, tuple[QThread, EngineWorker, CancelFlag]] = {}


def running_engine_threads() -> list[QThread]:
    """Engine threads still running (tests check that none is left behind)."""
    return [thread for thread, _, _ in list(_LIVE.values()) if _is_running(thread)]


def stop_all_engine_threads(timeout_ms: int = 30_000) -> int:
    """Cancel, quit and wait for every engine thread still registered; returns how many were running."""
    count = 0
    for key, (thread, _worker, flag) in list(_LIVE.items()):
        if _is_running(thread):
            count += 1
            flag.cancel_up_to(2**62)
            thread.quit()
            thread.wait(timeout_ms)
        _LIVE.pop(key, None)
    return count


def _is_running(thread: QThread) -> bool:
    try:
        return thread.isRunning()
    except RuntimeError:  # the C++ object is already gone
        return False


atexit.register(stop_all_engine_threads)


def copy_request(request: FillRequest) -> FillRequest:
    """A deep copy of ``request`` whose arrays own their memory (safe to hand to another thread)."""
    return dataclasses.replace(
        request,
        image=request.image.copy(),
        mask=request.mask.copy(),
        sketch_drawn=None if request.sketch_drawn is None else request.sketch_drawn.copy(),
        sketch_erased=None if request.sketch_erased is None else request.sketch_erased.copy(),
        options=copy.deepcopy(request.options),
    )


class CancelFlag:
    """Thread-safe cancellation: every job with an id at or below the watermark is cancelled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled_up_to = 0

    def cancel_up_to(self, job_id: int) -> None:
        with self._lock:
            self._cancelled_up_to = max(self._cancelled_up_to, job_id)

    def is_cancelled(self, job_id: int) -> bool:
        with self._lock:
            return job_id <= self._cancelled_up_to

    def callback(self, job_id: int) -> Callable[[], bool]:
        """The engine's cancel callback for job ``job_id``."""
        return lambda: self.is_cancelled(job_id)


def default_engine_factory(device: str = "auto", cpu_threads: int | None = None,
                           default_model: str | None = None) -> EngineFactory:
    """A factory for the real engine (imported lazily so that torch loads in the worker's time)."""

    def build() -> Any:
        from engine.pipeline import Engine

        return Engine(device=device, cpu_threads=cpu_threads, default_model=default_model)

    return build


class EngineWorker(QObject):
    """Owns the engine; its slots run in the worker thread, one request at a time."""

    progress = Signal(float, str)
    finished = Signal(object)  # FillResult of a fill
    edges_ready = Signal(object)  # FillResult of "predict edges" (image unchanged, edges set)
    failed = Signal(str)
    cancelled = Signal()
    models_changed = Signal(list)  # list[ModelInfo]
    device_changed = Signal(str)
    busy_changed = Signal(bool)
    job_done = Signal(int)  # job id, after finished/edges_ready/failed/cancelled of that job

    def __init__(self, factory: EngineFactory, cancel_flag: CancelFlag) -> None:
        super().__init__()
        self._factory = factory
        self._cancel = cancel_flag
        self.engine: Any = None
        self._init_error: str | None = None

    # -------------------------------------------------------------- lifecycle
    @Slot()
    def initialize(self) -> None:
        """Build the engine (in the worker thread) and announce models and device."""
        try:
            self.engine = self._factory()
        except Exception as exc:  # a broken device or model folder must not take the editor down
            self._init_error = _message(exc, "The fill engine could not start")
            log.error("engine start failed:\n%s", traceback.format_exc())
            self.failed.emit(self._init_error)
            self.device_changed.emit("engine unavailable")
            return
        self._announce()

    def _announce(self) -> None:
        try:
            self.models_changed.emit(list(self.engine.models()))
        except Exception as exc:
            self.failed.emit(_message(exc, "Could not list the models"))
        self.device_changed.emit(str(getattr(self.engine, "device_name", "CPU")))

    @Slot()
    def refresh_models(self) -> None:
        """Rescan the model folders (after a fine-tune registered a model) and announce the list; if the engine
        could not start, try to start it again (the user may have fixed or removed what stopped it)."""
        if self.engine is None:
            self.initialize()
            return
        try:
            self.engine.refresh_models()
        except Exception as exc:
            self.failed.emit(_message(exc, "Could not rescan the models"))
            return
        self._announce()

    @Slot(object)
    def set_engine_factory(self, factory: EngineFactory) -> None:
        """Rebuild the engine with another factory (device or thread preference changed)."""
        self._factory = factory
        self.engine = None
        self.initialize()

    # -------------------------------------------------------------- jobs
    @Slot(int, str, object)
    def run_job(self, job_id: int, kind: str, request: FillRequest) -> None:
        """Run one fill or edge prediction; emits exactly one of finished/edges_ready/failed/cancelled."""
        try:
            if self._cancel.is_cancelled(job_id):
                self.cancelled.emit()
                return
            if self.engine is None:
                self.failed.emit(self._init_error or "The fill engine is not available.")
                return
            self.busy_changed.emit(True)
            try:
                result = self._run(job_id, kind, request)
            except FillCancelled:
                self.cancelled.emit()
                return
            except Exception as exc:
                log.error("%s failed:\n%s", kind, traceback.format_exc())
                self.failed.emit(_message(exc, "The fill failed"))
                return
            finally:
                self.busy_changed.emit(False)
            if self._cancel.is_cancelled(job_id):
                self.cancelled.emit()
            elif kind == PREDICT_EDGES:
                self.edges_ready.emit(result)
            else:
                self.finished.emit(result)
        finally:
            self.job_done.emit(job_id)

    def _run(self, job_id: int, kind: str, request: FillRequest) -> FillResult:
        import torch

        cancel = self._cancel.callback(job_id)

        def progress(fraction: float, stage: str) -> None:
            self.progress.emit(float(fraction), str(stage))

        with torch.inference_mode():
            if kind == PREDICT_EDGES:
                return self.engine.predict_edges(request, progress=progress, cancel=cancel)
            return self.engine.fill(request, progress=progress, cancel=cancel)


def _message(exc: BaseException, fallback: str) -> str:
    """Text for a dialog: engine errors as written, anything else with its type and a hint."""
    if isinstance(exc, EngineError):
        return str(exc) or fallback
    if isinstance(exc, MemoryError):
        return f"{fallback}: out of memory. Try a smaller mask, a classical backend, or the CPU device."
    text = str(exc).strip() or exc.__class__.__name__
    return f"{fallback}: {text} ({exc.__class__.__name__})."


class EngineClient(QObject):
    """GUI-side handle of the worker: submit, cancel, refresh, shut down. Re-emits the worker's signals.

    Connect to this object's signals (it lives in the GUI thread, so its receivers run there too).
    """

    progress = Signal(float, str)
    finished = Signal(object)
    edges_ready = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    models_changed = Signal(list)
    device_changed = Signal(str)
    busy_changed = Signal(bool)
    idle = Signal()  # no job running or queued

    _submit = Signal(int, str, object)
    _refresh = Signal()
    _refactor = Signal(object)

    def __init__(self, factory: EngineFactory | None = None, synchronous: bool = False,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._flag = CancelFlag()
        self._next_id = 0
        self._pending: set[int] = set()
        self.synchronous = synchronous
        self.models: list = []
        self.device_name = ""
        self.worker = EngineWorker(factory or default_engine_factory(), self._flag)
        self.thread: QThread | None = None
        for name in ("progress", "finished", "edges_ready", "failed", "cancelled", "busy_changed"):
            getattr(self.worker, name).connect(getattr(self, name))
        self.worker.models_changed.connect(self._on_models)
        self.worker.device_changed.connect(self._on_device)
        self.worker.job_done.connect(self._on_job_done)
        if synchronous:
            self.worker.initialize()
        else:
            self.thread = QThread()
            self.thread.setObjectName("inpaint-engine")
            self.worker.moveToThread(self.thread)
            self.thread.started.connect(self.worker.initialize)
            self._submit.connect(self.worker.run_job)
            self._refresh.connect(self.worker.refresh_models)
            self._refactor.connect(self.worker.set_engine_factory)
            self.thread.start()
            _LIVE[id(self.thread)] = (self.thread, self.worker, self._flag)

    # -------------------------------------------------------------- requests
    def fill(self, request: FillRequest, copy: bool = True) -> int:
        """Queue a fill of a copy of ``request``; returns the job id.

        ``copy=False`` hands the request over as is: only for requests whose arrays the caller made for
        this job and will not touch until the job is done (saves copying a 24 MP photo in the GUI thread).
        """
        return self._queue(FILL, request, copy)

    def predict_edges(self, request: FillRequest, copy: bool = True) -> int:
        """Queue an edge prediction (the photo is not changed); the result comes via ``edges_ready``."""
        return self._queue(PREDICT_EDGES, request, copy)

    def _queue(self, kind: str, request: FillRequest, copy: bool = True) -> int:
        self._next_id += 1
        job_id = self._next_id
        self._pending.add(job_id)
        if copy:
            request = copy_request(request)
        if self.synchronous:
            self.worker.run_job(job_id, kind, request)
        else:
            self._submit.emit(job_id, kind, request)
        return job_id

    def cancel(self) -> None:
        """Cancel the running job and every queued one (cooperative: the engine stops at its next check)."""
        self._flag.cancel_up_to(self._next_id)

    def is_busy(self) -> bool:
        """True while a job is running or queued."""
        return bool(self._pending)

    def refresh_models(self) -> None:
        """Rescan model folders in the worker; ``models_changed`` follows."""
        if self.synchronous:
            self.worker.refresh_models()
        else:
            self._refresh.emit()

    def set_engine_factory(self, factory: EngineFactory) -> None:
        """Rebuild the engine (e.g. another device); queued after any running job."""
        if self.synchronous:
            self.worker.set_engine_factory(factory)
        else:
            self._refactor.emit(factory)

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Cancel everything and stop the thread, waiting for it; True if it stopped in time."""
        self.cancel()
        if self.thread is None:
            return True
        if not self.thread.isRunning():
            return True
        self.thread.quit()
        stopped = self.thread.wait(timeout_ms)
        if stopped:
            _LIVE.pop(id(self.thread), None)
        else:
            log.error("the engine thread did not stop within %d ms", timeout_ms)
        return bool(stopped)

    def is_running(self) -> bool:
        """True while the worker thread runs."""
        return self.thread is not None and _is_running(self.thread)

    # -------------------------------------------------------------- bookkeeping (GUI thread)
    @Slot(list)
    def _on_models(self, models: list) -> None:
        self.models = list(models)
        self.models_changed.emit(self.models)

    @Slot(str)
    def _on_device(self, name: str) -> None:
        self.device_name = name
        self.device_changed.emit(name)

    @Slot(int)
    def _on_job_done(self, job_id: int) -> None:
        self._pending.discard(job_id)
        if not self._pending:
            self.idle.emit()
