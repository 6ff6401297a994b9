"""The editor's side of a fine-tune process: start ``python -m trainer.finetune_job``, tail its JSONL, stop it.

Training runs in its own process (``QProcess``), so a crash or out-of-memory there can never take the editor
down. A ``QTimer`` polls the run folder's ``metrics.jsonl`` and emits each new record; when the process ends,
:class:`RunOutcome` says how (from the exit code, ``status.json`` and the tail of stderr).

Stopping is cooperative first: :meth:`FinetuneRunner.request_stop` creates ``RUN_DIR/stop``, which the job
polls every step; it saves a checkpoint and exits. If it has not ended after ``grace_ms`` the runner sends
``terminate()`` (SIGTERM on Unix, which the job also handles as "stop and save"; on Windows a console process
ignores it), and after another ``grace_ms`` ``kill()``: then the last periodic checkpoint is what Resume finds.
"""

from __future__ import annotations

import json
import os
import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal, Slot

from engine.paths import REPO_ROOT
from trainer import finetune_protocol as protocol

METRICS_FILE = "metrics.jsonl"
STDERR_KEEP = 64 * 1024

_RUNNERS: weakref.WeakSet[FinetuneRunner] = weakref.WeakSet()


def running_runners() -> list[FinetuneRunner]:
    """Runners whose process is still running (tests check that none is left behind)."""
    return [r for r in list(_RUNNERS) if r.is_running()]


@dataclass
class RunOutcome:
    """How a job process ended.

    ``state``: ``registered``, ``stopped`` (checkpoint saved, resumable), ``estimated`` (``estimate`` holds the
    timing), or a failure: ``error``, ``oom``, ``disk-full``, ``name-taken``, ``crashed``.
    """

    state: str
    message: str
    exit_code: int | None = None
    models: list[str] = field(default_factory=list)
    estimate: dict[str, Any] | None = None
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.state in ("registered", "stopped", "estimated")


class JsonlTail:
    """Reads the records appended to a JSONL file since the last call; notices when it was rewritten."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.identity: tuple[int, int] | None = None
        self.partial = b""

    def read(self) -> tuple[bool, list[dict[str, Any]]]:
        """(was the file replaced or truncated since the last read, new complete records)."""
        try:
            stat = self.path.stat()
        except OSError:
            return False, []
        identity = (stat.st_dev, stat.st_ino)
        reset = False
        if (self.identity is not None and identity != self.identity) or stat.st_size < self.offset:
            reset = self.offset > 0
            self.offset, self.partial = 0, b""
        self.identity = identity
        if stat.st_size == self.offset:
            return reset, []
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return reset, []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()  # an unfinished last line waits for its end
        records = []
        for line in lines:
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(record, dict):
                records.append(record)
        return reset, records


class FinetuneRunner(QObject):
    """Runs one job process for ``run_dir`` (training, or ``estimate=True`` for a timing run).

    Signals: ``record(dict)`` each new metrics record (GUI thread), ``reset()`` the metrics file was rewritten
    (a resume dropped records after its checkpoint: start over), ``finished(RunOutcome)`` once.
    """

    record = Signal(dict)
    reset = Signal()
    finished = Signal(object)

    def __init__(self, run_dir: str | os.PathLike[str], estimate: bool = False, parent: QObject | None = None,
                 python: str | None = None, env: dict[str, str] | None = None, poll_ms: int = 150) -> None:
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.estimate = estimate
        self.python = python or sys.executable
        self.extra_env = dict(env or {})
        self.tail = JsonlTail(self.run_dir / METRICS_FILE)
        self.process: QProcess | None = None
        self.outcome: RunOutcome | None = None
        self.stop_requested = False
        self._stdout = b""
        self._stderr = b""
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)
        self._escalation = QTimer(self)
        self._escalation.setSingleShot(True)
        self._escalation.timeout.connect(self._escalate)
        self._escalation_step = 0
        self._grace_ms = 20_000
        _RUNNERS.add(self)

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        """Start the process (the metrics file is read from its beginning: old records of a resumed run too)."""
        if self.process is not None:
            raise RuntimeError("a runner starts one process")
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        path = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", str(REPO_ROOT) + (os.pathsep + path if path else ""))
        env.insert("PYTHONUNBUFFERED", "1")
        for key, value in self.extra_env.items():
            env.insert(key, value)
        process.setProcessEnvironment(env)
        process.setWorkingDirectory(str(self.run_dir))
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self.process = process
        args = ["-m", protocol.JOB_MODULE, str(self.run_dir)] + (["--estimate"] if self.estimate else [])
        if not self.estimate:
            self._timer.start()
        process.start(self.python, args)

    def is_running(self) -> bool:
        try:
            return self.process is not None and self.process.state() != QProcess.NotRunning
        except RuntimeError:  # the C++ object is gone
            return False

    def request_stop(self, grace_ms: int = 20_000) -> None:
        """Ask the job to stop after its current step and save a checkpoint (escalates if it does not)."""
        if not self.is_running() or self.stop_requested:
            return
        self.stop_requested = True
        self._grace_ms = grace_ms
        try:
            (self.run_dir / protocol.STOP_FILE).write_text("stop requested by the editor\n", encoding="utf-8")
        except OSError:  # a full disk: go straight to the signal
            self._escalation_step = 1
        self._escalation.start(grace_ms if self._escalation_step == 0 else 0)

    def _escalate(self) -> None:
        if not self.is_running():
            return
        if self._escalation_step <= 1:
            self._escalation_step = 2
            self.process.terminate()  # SIGTERM: the job stops and saves (Unix); ignored by Windows consoles
            self._escalation.start(self._grace_ms)
        else:
            self.process.kill()

    def kill(self) -> None:
        """End the process at once (the last periodic checkpoint stays)."""
        if self.is_running():
            self.process.kill()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the process has ended (and ``finished`` was emitted); True if it did in time."""
        if self.process is None:
            return True
        if self.is_running() and not self.process.waitForFinished(timeout_ms):
            return False
        if self.outcome is None:  # waitForFinished delivered the exit, but the slot may not have run yet
            self._on_finished(self.process.exitCode(), self.process.exitStatus())
        return True

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop (saving a checkpoint) and wait; kill if it takes longer than ``timeout_ms``. True if it stopped
        by itself."""
        if not self.is_running():
            return True
        self.request_stop(grace_ms=timeout_ms)
        if self.wait(timeout_ms):
            return True
        self.kill()
        self.wait(5_000)
        return False

    # ------------------------------------------------------------------ reading
    @Slot()
    def poll(self) -> None:
        """Emit the metrics records written since the last poll."""
        replaced, records = self.tail.read()
        if replaced:
            self.reset.emit()
        for record in records:
            self.record.emit(record)

    @Slot()
    def _read_stdout(self) -> None:
        if self.process is not None:
            self._stdout = (self._stdout + bytes(self.process.readAllStandardOutput()))[-STDERR_KEEP:]

    @Slot()
    def _read_stderr(self) -> None:
        if self.process is not None:
            self._stderr = (self._stderr + bytes(self.process.readAllStandardError()))[-STDERR_KEEP:]

    @property
    def stderr_text(self) -> str:
        return self._stderr.decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ ending
    @Slot(QProcess.ProcessError)
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.FailedToStart and self.outcome is None:
            self._timer.stop()
            self.outcome = RunOutcome("error", f"Could not start the training process ({self.python}): "
                                               f"{self.process.errorString()}")
            self.finished.emit(self.outcome)

    @Slot(int, QProcess.ExitStatus)
    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self.outcome is not None:
            return
        self._timer.stop()
        self._escalation.stop()
        self._read_stdout()
        self._read_stderr()
        self.poll()
        crashed = status == QProcess.CrashExit
        self.outcome = classify(code, crashed, self.run_dir, self.stderr_text, self._stdout.decode(errors="replace"),
                                self.estimate, self.stop_requested)
        self.finished.emit(self.outcome)


def _last_error_line(stderr: str) -> str:
    for line in reversed(stderr.strip().splitlines()):
        line = line.strip()
        if line:
            return line.removeprefix(f"{protocol.PROG}: error: ")
    return ""


def classify(code: int, crashed: bool, run_dir: Path, stderr: str, stdout: str = "", estimate: bool = False,
             stop_requested: bool = False) -> RunOutcome:
    """The outcome of a job process from its exit, its ``status.json`` and its output."""
    status = protocol.read_status(run_dir) if not estimate else {}
    message = str(status.get("message", "")) or _last_error_line(stderr)
    lowered = stderr.lower()
    if not crashed and code == protocol.EXIT_OK:
        if estimate:
            for line in reversed(stdout.strip().splitlines()):
                try:
                    return RunOutcome("estimated", "", code, estimate=json.loads(line), stderr=stderr)
                except json.JSONDecodeError:
                    continue
            return RunOutcome("error", "The time estimate printed nothing readable.", code, stderr=stderr)
        return RunOutcome("registered", message or "The model was registered.", code,
                          [str(m) for m in status.get("models", [])], stderr=stderr)
    if not crashed and code == protocol.EXIT_STOPPED:
        return RunOutcome("stopped", message or "Stopped; checkpoint saved.", code, stderr=stderr)
    known = {protocol.EXIT_OOM: "oom", protocol.EXIT_DISK_FULL: "disk-full", protocol.EXIT_NAME_TAKEN: "name-taken",
             protocol.EXIT_ERROR: "error"}
    if not crashed and code in known:
        return RunOutcome(known[code], message or "The fine-tune failed.", code, stderr=stderr)
    # A crash, a kill or an unexpected exit: the output may still say why.
    if "no space left on device" in lowered:
        return RunOutcome("disk-full", f"The disk is full: {protocol.DISK_ADVICE}.", code, stderr=stderr)
    if "out of memory" in lowered or "memoryerror" in lowered or "can't allocate memory" in lowered:
        return RunOutcome("oom", f"Training ran out of memory: {protocol.OOM_ADVICE}.", code, stderr=stderr)
    if crashed and stop_requested:
        return RunOutcome("stopped", "The training process was ended; Resume continues from its last checkpoint.",
                          code, stderr=stderr)
    if crashed or code in (137, -9):
        return RunOutcome("crashed", "The training process was killed or crashed. This usually means the computer "
                                     f"ran out of memory: {protocol.OOM_ADVICE}. If it was something else, Resume "
                                     "continues from the last checkpoint, if one was saved.", code, stderr=stderr)
    detail = _last_error_line(stderr) or f"exit status {code}"
    return RunOutcome("crashed", f"The training process failed: {detail}", code, stderr=stderr)
