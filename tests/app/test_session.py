"""Session autosave and recovery after a crash: photo, mask, sketch and undo history come back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app import session
from app.document import Document
from engine import imageio
from engine.api import FillResult
from tests.app.fakes import FakeEngine
from tests.app.helpers import paint_box

BOX = (30, 20, 60, 44)


def _fake_fill(doc: Document) -> None:
    out = doc.image.copy()
    out[doc.mask] = (200, 10, 10)
    doc.apply_fill(FillResult(out, None, {}, backend="fake"))


def _edited_document(path) -> Document:
    doc = Document()
    doc.load(imageio.load_image(path))
    doc.add_rectangle(BOX)
    _fake_fill(doc)
    doc.add_rectangle((5, 5, 15, 15))
    stroke = doc.begin_stroke("edge_pen")
    stroke.segment((6.0, 8.0), (14.0, 8.0), 2)
    stroke.finish()
    return doc


def _same_state(a: Document, b: Document) -> None:
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.sketch_drawn, b.sketch_drawn)
    assert np.array_equal(a.sketch_erased, b.sketch_erased)
    assert a.undo_stack.count() == b.undo_stack.count()
    assert a.undo_stack.index() == b.undo_stack.index()
    assert a.is_modified() == b.is_modified()


def test_write_and_recover_headless(photo_file):
    doc = _edited_document(photo_file)
    snapshot = session.take_snapshot(doc, save_target=None)
    session.write_session(snapshot)
    assert session.has_session()
    manifest = json.loads((session.session_dir() / session.MANIFEST_FILE).read_text())
    assert manifest["image_stored"] and manifest["photo_path"] == str(photo_file.resolve())
    with np.load(session.session_dir() / session.STATE_FILE, allow_pickle=False) as data:
        assert "image" in data.files  # readable without pickle

    restored = Document()
    recovered = session.recover(restored)
    assert recovered.photo_path == photo_file.resolve() and recovered.messages == []
    _same_state(doc, restored)
    assert restored.source is not None and restored.source.exif  # reloaded from the file: EXIF kept
    # The history works: undo everything gives back the original photo with an empty mask and sketch.
    while restored.undo_stack.canUndo():
        restored.undo_stack.undo()
    assert np.array_equal(restored.image, restored.source.rgb)
    assert not restored.mask.any() and not restored.sketch_drawn.any()


def test_unedited_image_is_not_stored(photo_file):
    doc = Document()
    doc.load(imageio.load_image(photo_file))
    doc.add_rectangle(BOX)
    session.write_session(session.take_snapshot(doc))
    with np.load(session.session_dir() / session.STATE_FILE, allow_pickle=False) as data:
        assert "image" not in data.files
    restored = Document()
    session.recover(restored)
    _same_state(doc, restored)


def test_recover_without_the_original_file_keeps_the_edited_pixels(photo_file):
    doc = _edited_document(photo_file)
    session.write_session(session.take_snapshot(doc))
    photo_file.unlink()
    restored = Document()
    recovered = session.recover(restored)
    assert recovered.photo_path is None and recovered.messages
    assert np.array_equal(restored.image, doc.image)


def test_damaged_session_is_a_clear_error():
    folder = session.session_dir()
    folder.mkdir(parents=True)
    (folder / session.STATE_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(session.SessionError, match="damaged"):
        session.recover(Document())


def test_recovery_after_a_simulated_crash_through_the_window(make_window, qtbot, photo_file):
    first = make_window(engine_factory=FakeEngine)
    assert first.open_path(photo_file)
    paint_box(first, BOX)
    with qtbot.waitSignal(first.engine.finished, timeout=5000):
        first.fill()
    qtbot.waitUntil(lambda: not first.engine.is_busy(), timeout=5000)
    paint_box(first, (5, 5, 15, 15))
    stroke = first.document.begin_stroke("edge_pen")
    stroke.segment((6.0, 8.0), (14.0, 8.0), 2)
    stroke.finish()
    with qtbot.waitSignal(first.autosaver.saved, timeout=5000):
        first.autosaver.save_now()
    state = (first.document.image.copy(), first.document.mask.copy(), first.document.sketch_drawn.copy(),
             first.document.undo_stack.count())
    first.shutdown(clean=False)  # the process "dies": no clean close, the session stays
    assert session.has_session()

    second = make_window(engine_factory=FakeEngine)
    second.prompter.confirms.append(True)
    assert second.offer_recovery()
    assert second.prompter.kinds() == ["confirm"]
    assert "did not close cleanly" in second.prompter.asked[0][2]
    doc = second.document
    assert np.array_equal(doc.image, state[0]) and np.array_equal(doc.mask, state[1])
    assert np.array_equal(doc.sketch_drawn, state[2]) and doc.undo_stack.count() == state[3]
    assert doc.is_modified() and second.isWindowModified()
    assert second.files.original_path == photo_file.resolve()
    second.actions["undo"].trigger()  # sketch
    second.actions["undo"].trigger()  # second box
    second.actions["undo"].trigger()  # the fill
    assert np.array_equal(doc.image, doc.source.rgb) and doc.mask.sum() == 30 * 24
    second.close()
    assert not session.has_session()  # a clean close clears it


def test_declining_recovery_removes_the_session(make_window, photo_file):
    doc = _edited_document(photo_file)
    session.write_session(session.take_snapshot(doc))
    window = make_window(engine_factory=FakeEngine)
    window.prompter.confirms.append(False)
    assert not window.offer_recovery()
    assert window.document.is_empty() and not session.has_session()


def test_damaged_session_is_reported_not_fatal(make_window):
    folder = session.session_dir()
    folder.mkdir(parents=True)
    (folder / session.STATE_FILE).write_bytes(b"garbage")
    window = make_window(engine_factory=FakeEngine)
    window.prompter.confirms.append(True)
    assert not window.offer_recovery()
    assert window.prompter.kinds() == ["confirm", "error"]
    assert not session.has_session()


def test_autosave_is_debounced_after_edits(make_window, qtbot, photo_file):
    from app.settings import Settings

    settings = Settings.load()
    settings.autosave_seconds = 0.05
    window = make_window(engine_factory=FakeEngine, settings=settings)
    assert window.open_path(photo_file)
    assert not session.has_session()
    with qtbot.waitSignal(window.autosaver.saved, timeout=5000):
        paint_box(window, BOX)
    restored = Document()
    session.recover(restored)
    assert np.array_equal(restored.mask, window.document.mask)


def test_a_session_of_another_running_editor_is_not_offered(make_window, photo_file, monkeypatch):
    doc = _edited_document(photo_file)
    session.write_session(session.take_snapshot(doc))
    monkeypatch.setattr(session, "other_editor_owns", lambda folder=None: True)
    window = make_window(engine_factory=FakeEngine)
    assert not window.offer_recovery()
    assert window.prompter.asked == [] and session.has_session()
