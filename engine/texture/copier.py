"""The native texture copy in a child process, so that cancelling a fill stops it at once.

``pypatchmatch`` completes a hole in one native call that cannot be interrupted (about 80 s for a
2000 x 1500 hole). Run in a thread, a cancelled fill kept a core busy until the call returned, and the next
fill's copy waited behind it. The copier keeps one warm child process that runs
:func:`engine.texture.native.copy_ahead` on request. Waiting for the result calls back every ``POLL_S``
seconds, so a cancel is seen at once; a job that is not collected (the fill was cancelled or failed) is ended
by terminating the child, and the next request starts a new one.

The child is a plain ``python -m engine.texture.copier`` fed jobs on its stdin (its own output goes to
stderr); a message is a JSON line (dtypes and shapes) and the arrays' raw bytes, so nothing is
unpickled. Unlike ``multiprocessing``'s spawn, it never re-runs the caller's ``__main__``, so a script that
fills without an ``if __name__ == "__main__"`` guard is not run twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

POLL_S = 0.05  # seconds between checks for a cancel while the copy runs
STOP_TIMEOUT_S = 2.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding ``engine``


class CopyFailed(RuntimeError):
    """The child process died or raised; the message says why."""


_DTYPES = {"|b1", "|u1", "<f4"}  # what a job or a reply holds: masks, the photo, the copy


def send_message(stream: BinaryIO, header: dict[str, Any], arrays: tuple[np.ndarray, ...] = ()) -> None:
    """One message: a JSON line (``header`` plus each array's dtype and shape), then the arrays' raw bytes."""
    arrays = tuple(np.ascontiguousarray(a) for a in arrays)
    layout = [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]
    stream.write(json.dumps({**header, "arrays": layout}).encode() + b"\n")
    for array in arrays:
        stream.write(memoryview(array).cast("B"))
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the stream ended inside a message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_message(stream: BinaryIO) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The next message of ``send_message``; ``EOFError`` when the stream has ended, ``ValueError`` when the
    message is malformed (an unexpected dtype included)."""
    line = stream.readline()
    if not line:
        raise EOFError("the stream ended")
    header = json.loads(line)
    arrays = []
    for spec in header.get("arrays", []):
        if spec.get("dtype") not in _DTYPES:
            raise ValueError(f"unexpected array type {spec.get('dtype')!r}")
        dtype, shape = np.dtype(spec["dtype"]), tuple(int(n) for n in spec["shape"])
        size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        arrays.append(np.frombuffer(_read_exactly(stream, size), dtype=dtype).reshape(shape))
    return header, arrays


def serve(jobs: BinaryIO, replies: BinaryIO) -> None:
    """Child loop: (image, hole, excluded) in; {"status": "ok", "cpu_s"} with the copy (or none), or
    {"status": "error", "message"} out, until the input closes."""
    while True:
        try:
            _, arrays = read_message(jobs)
        except (EOFError, OSError, ValueError):
            return
        try:
            from engine.texture.native import copy_ahead  # after the first job arrived: start-up overlaps it

            started = time.process_time()
            copy = copy_ahead(*arrays)
            header: dict[str, Any] = {"status": "ok", "cpu_s": time.process_time() - started}
            out: tuple[np.ndarray, ...] = () if copy is None else (copy,)
        except Exception as exc:  # reported to the parent, which decides what to do
            header, out = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}, ()
        try:
            send_message(replies, header, out)
        except OSError:
            return


def _end(process: subprocess.Popen) -> None:
    """Terminate ``process`` (kill it if it does not stop) and close its pipes."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class NativeCopier:
    """One copy at a time in a warm child process; see the module docstring. Not thread-safe: one fill at a
    time uses it (the engine's fills are sequential)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._exchange: threading.Thread | None = None
        self._reply: list[Any] = []  # what the exchange thread got: a reply tuple or an exception
        self._finalizer: weakref.finalize | None = None
        self.last_cpu_s = 0.0  # CPU seconds the child spent on the last collected copy

    @property
    def process(self) -> subprocess.Popen | None:
        """The child process, or None before the first job and after ``stop``."""
        return self._process

    @property
    def pending(self) -> bool:
        """Whether a submitted job has not been collected."""
        return self._exchange is not None

    def _start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        self._process = subprocess.Popen([sys.executable, "-m", "engine.texture.copier"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env)
        self._finalizer = weakref.finalize(self, _end, self._process)

    def submit(self, image: np.ndarray, hole: np.ndarray, excluded: np.ndarray) -> None:
        """Start copying ``hole`` of ``image`` (arguments of ``copy_ahead``); returns at once. A job still
        pending is abandoned (its child ended)."""
        if self.pending or (self._process is not None and self._process.poll() is not None):
            self.stop()
        if self._process is None:
            self._start()
        process = self._process
        job = (np.ascontiguousarray(image), np.ascontiguousarray(hole), np.ascontiguousarray(excluded))
        reply: list[Any] = []
        self.last_cpu_s = 0.0

        def exchange() -> None:  # a large crop fills the pipe until the child reads it: never block the caller
            try:
                send_message(process.stdin, {"job": "copy"}, job)
                reply.append(read_message(process.stdout))
            except BaseException as exc:  # the child died or was stopped; result() reports it
                reply.append(exc)

        self._reply = reply
        self._exchange = threading.Thread(target=exchange, name="texture-copy", daemon=True)
        self._exchange.start()

    def result(self, wait: Callable[[], None] | None = None) -> np.ndarray | None:
        """The submitted job's copy (None where ``copy_ahead`` gives none). ``wait()`` is called every
        ``POLL_S`` s while the copy runs; if it raises (a cancel), the child is ended and the exception
        propagates. ``CopyFailed`` when the child died or raised."""
        exchange = self._exchange
        if exchange is None or self._process is None:
            raise RuntimeError("no texture copy was submitted")
        try:
            while exchange.is_alive():
                exchange.join(POLL_S)
                if exchange.is_alive() and wait is not None:
                    wait()
        except BaseException:
            self.stop()
            raise
        self._exchange = None
        outcome = self._reply[0] if self._reply else EOFError("no reply")
        if isinstance(outcome, BaseException):
            code = self._process.poll()
            self.stop()
            raise CopyFailed(f"the texture copy process ended unexpectedly (exit code {code}; {outcome!r})")
        header, arrays = outcome
        if header.get("status") != "ok":
            raise CopyFailed(str(header.get("message", "the texture copy failed")))
        self.last_cpu_s = float(header.get("cpu_s", 0.0))
        return arrays[0] if arrays else None

    def stop(self) -> None:
        """End the child process (a running copy with it); the next ``submit`` starts a new one."""
        if self._finalizer is not None:
            self._finalizer()  # runs _end once
        if self._exchange is not None:
            self._exchange.join(STOP_TIMEOUT_S)  # its pipes are closed: it ends at once
        self._process, self._exchange, self._finalizer = None, None, None


def _main() -> None:
    """The child: replies on a private copy of stdout; anything printed (Python or native) goes to stderr."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    _main()
