"""The native texture copy in a child process, so that cancelling a fill stops it at once.

``pypatchmatch`` completes a hole in one native call that cannot be interrupted (about 80 s for a
2000 x 1500 hole). Run in a thread, a cancelled fill kept a core busy until the call returned, and the next
fill's copy waited behind it. The copier keeps one warm child process (``spawn``: safe beside Qt's and
torch's threads) that runs :func:`engine.texture.native.copy_ahead` on request. Waiting for the result calls
back every ``POLL_S`` seconds, so a cancel is seen at once; a job that is not collected (the fill was
cancelled or failed) is ended by terminating the child, and the next request starts a new one.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

POLL_S = 0.05  # seconds between checks for a cancel while the copy runs
STOP_TIMEOUT_S = 2.0


class CopyFailed(RuntimeError):
    """The child process died or raised; the message says why."""


def _serve(conn: Connection) -> None:
    """Child loop: (image, hole, excluded) in, ("ok", copy or None) or ("error", text) out, until the pipe
    closes."""
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            from engine.texture.native import copy_ahead  # after the first job arrived: start-up overlaps it

            reply: tuple[str, Any] = ("ok", copy_ahead(*job))
        except Exception as exc:  # reported to the parent, which decides what to do
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return


def _end(process: Any, conn: Connection | None) -> None:
    """Terminate ``process`` (kill it if it does not stop) and close the parent's end of its pipe."""
    if conn is not None:
        conn.close()
    if process is not None and process.is_alive():
        process.terminate()
        process.join(STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join(STOP_TIMEOUT_S)


class NativeCopier:
    """One copy at a time in a warm child process; see the module docstring. Not thread-safe: one fill at a
    time uses it (the engine's fills are sequential)."""

    def __init__(self) -> None:
        self._process: Any = None
        self._conn: Connection | None = None
        self._sender: threading.Thread | None = None
        self._send_error: BaseException | None = None
        self._pending = False
        self._finalizer: weakref.finalize | None = None

    @property
    def process(self) -> Any:
        """The child process, or None before the first job and after ``stop``."""
        return self._process

    @property
    def pending(self) -> bool:
        """Whether a submitted job has not been collected."""
        return self._pending

    def _start(self) -> None:
        context = mp.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child,), name="texture-copy", daemon=True)
        process.start()
        child.close()  # only the child holds its end: a dead child reads as EOF here
        self._process, self._conn = process, parent
        self._finalizer = weakref.finalize(self, _end, process, parent)

    def submit(self, image: np.ndarray, hole: np.ndarray, excluded: np.ndarray) -> None:
        """Start copying ``hole`` of ``image`` (arguments of ``copy_ahead``); returns at once. A job still
        pending is abandoned (its child ended)."""
        if self._pending:
            self.stop()
        if self._process is None or not self._process.is_alive():
            self.stop()
            self._start()
        job = (np.ascontiguousarray(image), np.ascontiguousarray(hole), np.ascontiguousarray(excluded))
        self._send_error = None

        def send() -> None:  # a large crop fills the pipe until the child reads it: never block the caller
            try:
                self._conn.send(job)  # type: ignore[union-attr]
            except BaseException as exc:  # the child died or was stopped; result() reports it
                self._send_error = exc

        self._sender = threading.Thread(target=send, name="texture-copy-send", daemon=True)
        self._sender.start()
        self._pending = True

    def result(self, wait: Callable[[], None] | None = None) -> np.ndarray | None:
        """The submitted job's copy (None where ``copy_ahead`` gives none). ``wait()`` is called every
        ``POLL_S`` s while the copy runs; if it raises (a cancel), the child is ended and the exception
        propagates. ``CopyFailed`` when the child died or raised."""
        if not self._pending or self._conn is None:
            raise RuntimeError("no texture copy was submitted")
        try:
            while not self._conn.poll(POLL_S):
                if not self._process.is_alive():
                    raise CopyFailed(f"the texture copy process ended unexpectedly "
                                     f"(exit code {self._process.exitcode})")
                if wait is not None:
                    wait()
            status, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            self.stop()
            raise CopyFailed(f"the texture copy process ended unexpectedly ({self._send_error or exc!r})") from None
        except BaseException:
            self.stop()
            raise
        self._pending = False
        if status == "error":
            raise CopyFailed(value)
        return value

    def stop(self) -> None:
        """End the child process (a running copy with it); the next ``submit`` starts a new one."""
        if self._finalizer is not None:
            self._finalizer()  # runs _end once
        if self._sender is not None:
            self._sender.join(STOP_TIMEOUT_S)
        self._process, self._conn, self._sender, self._finalizer = None, None, None, None
        self._pending = False
