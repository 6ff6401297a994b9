"""The fill controller: the request it sends, stale results, and progress (through the real window)."""

from __future__ import annotations

import threading

import numpy as np

from engine.api import FillResult
from tests.app.fakes import FakeEngine
from tests.app.helpers import paint_box

BOX = (30, 20, 60, 44)


def test_the_request_carries_the_photo_mask_sketch_model_and_texture(make_window, photo_file):
    window = make_window(engine_factory=FakeEngine)
    assert window.open_path(photo_file)
    paint_box(window, BOX)
    window.settings.texture_strength = 0.25
    request = window.fills.build_request()
    assert np.array_equal(request.image, window.document.image) and request.image is not window.document.image
    assert np.array_equal(request.mask, window.document.mask) and request.mask is not window.document.mask
    assert request.sketch_drawn is None and request.sketch_erased is None  # nothing sketched: nothing sent
    assert request.model == window.selected_model() and request.options.texture == 0.25


def test_a_result_for_a_photo_that_was_replaced_is_dropped(make_window, qtbot, photo_file):
    window = make_window(engine_factory=FakeEngine)
    assert window.open_path(photo_file)
    paint_box(window, BOX)
    request = window.fills.build_request()
    window.fills._job_generation = window.fills._doc_generation  # as when the job was sent
    window.document.load_array(np.zeros((64, 96, 3), np.uint8))  # another photo opens meanwhile
    late = request.image.copy()
    late[request.mask] = (10, 200, 30)
    window.fills.on_fill_finished(FillResult(image=late, edges=None, timings={}, backend="fake"))
    assert not window.document.image.any() and window.document.undo_stack.count() == 0


def test_opening_another_photo_during_a_fill_cancels_it_without_a_word(make_window, qtbot, photo_file):
    engine = FakeEngine(gate=threading.Event())
    window = make_window(engine_factory=lambda: engine)
    assert window.open_path(photo_file)
    paint_box(window, BOX)
    with qtbot.waitSignal(window.engine.cancelled, timeout=5000):
        assert window.fill()
        assert engine.started.wait(5)
        assert window.progress.isVisible() and window.progress.format() == "Filling…"
        window.document.load_array(np.zeros((64, 96, 3), np.uint8))
    qtbot.waitUntil(lambda: not window.engine.is_busy(), timeout=5000)
    assert not window.progress.isVisible() and window.actions["fill"].isEnabled()
    assert window.statusBar().currentMessage() != "Cancelled."  # it was not the person who cancelled
    assert not window.document.image.any()
