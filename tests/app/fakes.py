"""Small stand-ins for the engine, used where the real one would only slow a test down."""

from __future__ import annotations

import threading

import numpy as np

from engine.api import FillRequest, FillResult, ModelInfo
from engine.errors import EngineError, FillCancelled


class FakeEngine:
    """Fills holes with a constant colour; ``gate`` (an Event) holds a fill until set or cancelled."""

    device_name = "CPU (fake)"

    def __init__(self, gate: threading.Event | None = None, fail: str | None = None) -> None:
        self.gate = gate
        self.fail = fail
        self.started = threading.Event()
        self.calls = 0
        self.thread_names: list[str] = []
        self.extra_models: list[ModelInfo] = []
        self.copies_lines = False  # True: fills "copy texture along drawn lines" (a structure source's fill)

    def models(self) -> list[ModelInfo]:
        return [ModelInfo("telea", "classical", "built-in"), *self.extra_models]

    def refresh_models(self) -> None:
        self.extra_models.append(ModelInfo("mine", "neural", "user", uses_edges=True))

    def fill(self, request: FillRequest, progress=None, cancel=None) -> FillResult:
        self.calls += 1
        self.thread_names.append(threading.current_thread().name)
        self.started.set()
        if progress:
            progress(0.1, "start")
        if self.fail:
            raise EngineError(self.fail)
        if self.gate is not None:
            while not self.gate.wait(0.005):
                if cancel and cancel():
                    raise FillCancelled("cancelled")
        out = request.image.copy()
        out[request.mask] = (10, 200, 30)
        if progress:
            progress(1.0, "done")
        infos = {m.name: m for m in self.models()}
        chosen = infos.get(request.model)
        edge_guided = chosen is not None and (chosen.uses_edges or
                                              (chosen.resolves_to in infos and infos[chosen.resolves_to].uses_edges))
        sketch = request.sketch_drawn is not None and bool((request.sketch_drawn & request.mask).any())
        return FillResult(image=out, edges=None, timings={"total": 0.0}, backend=request.model,
                          sketch_followed=sketch and (edge_guided or self.copies_lines))

    def predict_edges(self, request: FillRequest, progress=None, cancel=None) -> FillResult:
        edges = np.zeros(request.mask.shape, np.uint8)
        edges[request.mask] = 255
        return FillResult(image=request.image.copy(), edges=edges, timings={}, backend=request.model)
