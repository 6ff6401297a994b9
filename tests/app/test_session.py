"""Session autosave and recovery after a crash: photo, mask, sketch and undo history come back."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from app import session, session_slots
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


def _orphan(name: str = "20200101-000000-1-test"):
    """A session folder as a crashed editor leaves it: no editor holds its lock."""
    return session_slots.sessions_root() / name


def _session_folders() -> list[str]:
    root = session_slots.sessions_root()
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _same_state(a: Document, b: Document) -> None:
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.sketch_drawn, b.sketch_drawn)
    assert np.array_equal(a.sketch_erased, b.sketch_erased)
    assert a.undo_stack.count() == b.undo_stack.count()
    assert a.undo_stack.index() == b.undo_stack.index()
    assert a.is_modified() == b.is_modified()


def test_write_and_recover_headless(photo_file, tmp_path):
    folder = tmp_path / "session"
    doc = _edited_document(photo_file)
    snapshot = session.take_snapshot(doc, save_target=None)
    session.write_session(snapshot, folder)
    assert session.has_session(folder)
    manifest = json.loads((folder / session.MANIFEST_FILE).read_text())
    assert manifest["image_stored"] and manifest["photo_path"] == str(photo_file.resolve())
    with np.load(folder / session.STATE_FILE, allow_pickle=False) as data:
        assert "image" in data.files  # readable without pickle

    restored = Document()
    recovered = session.recover(restored, folder)
    assert recovered.photo_path == photo_file.resolve() and recovered.messages == []
    _same_state(doc, restored)
    assert restored.source is not None and restored.source.exif  # reloaded from the file: EXIF kept
    # The history works: undo everything gives back the original photo with an empty mask and sketch.
    while restored.undo_stack.canUndo():
        restored.undo_stack.undo()
    assert np.array_equal(restored.image, restored.source.rgb)
    assert not restored.mask.any() and not restored.sketch_drawn.any()


def test_unedited_image_is_not_stored(photo_file, tmp_path):
    doc = Document()
    doc.load(imageio.load_image(photo_file))
    doc.add_rectangle(BOX)
    session.write_session(session.take_snapshot(doc), tmp_path)
    with np.load(tmp_path / session.STATE_FILE, allow_pickle=False) as data:
        assert "image" not in data.files
    restored = Document()
    session.recover(restored, tmp_path)
    _same_state(doc, restored)


def test_recover_without_the_original_file_keeps_the_edited_pixels(photo_file, tmp_path):
    doc = _edited_document(photo_file)
    session.write_session(session.take_snapshot(doc), tmp_path)
    photo_file.unlink()
    restored = Document()
    recovered = session.recover(restored, tmp_path)
    assert recovered.photo_path is None and recovered.messages
    assert np.array_equal(restored.image, doc.image)


def test_damaged_session_is_a_clear_error(tmp_path):
    (tmp_path / session.STATE_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(session.SessionDamaged, match="damaged"):
        session.recover(Document(), tmp_path)


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
    assert session.has_session(first.autosaver.folder)

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
    # The recovered state is in the second editor's own session now; the crashed one's folder is gone.
    assert _session_folders() == [second.autosaver.folder.name]
    second.actions["undo"].trigger()  # sketch
    second.actions["undo"].trigger()  # second box
    second.actions["undo"].trigger()  # the fill
    assert np.array_equal(doc.image, doc.source.rgb) and doc.mask.sum() == 30 * 24
    second.prompter.confirms.append(True)  # "Discard the mask?"
    second.close()
    assert _session_folders() == []  # a clean close clears it


def test_the_recovery_question_answers_yes_on_enter(make_window, photo_file):
    session.write_session(session.take_snapshot(_edited_document(photo_file)), _orphan())
    window = make_window(engine_factory=FakeEngine)
    assert window.offer_recovery()  # no scripted answer: the question's default is taken
    assert window.prompter.kinds() == ["confirm"] and not window.document.is_empty()


def test_declining_recovery_removes_the_session(make_window, photo_file):
    session.write_session(session.take_snapshot(_edited_document(photo_file)), _orphan())
    window = make_window(engine_factory=FakeEngine)
    window.prompter.confirms.append(False)
    assert not window.offer_recovery()
    assert window.document.is_empty() and _session_folders() == []


def test_a_damaged_session_is_reported_and_set_aside_not_deleted(make_window):
    folder = _orphan()
    folder.mkdir(parents=True)
    (folder / session.STATE_FILE).write_bytes(b"garbage")
    window = make_window(engine_factory=FakeEngine)
    window.prompter.confirms.append(True)
    assert not window.offer_recovery()
    assert window.prompter.kinds() == ["confirm", "error"]
    kept = folder.with_name("damaged-" + folder.name)
    assert (kept / session.STATE_FILE).read_bytes() == b"garbage" and str(kept) in window.prompter.asked[1][2]
    assert not window.offer_recovery() and window.prompter.kinds() == ["confirm", "error"]  # not offered again


def test_a_session_whose_photo_cannot_be_reached_is_kept_for_next_time(make_window, photo_file):
    doc = Document()
    doc.load(imageio.load_image(photo_file))
    doc.add_rectangle(BOX)  # a mask only: the photo itself is not in the session
    session.write_session(session.take_snapshot(doc), _orphan())
    hidden = photo_file.with_suffix(".away")
    photo_file.rename(hidden)  # e.g. on a drive that is not mounted
    window = make_window(engine_factory=FakeEngine)
    window.prompter.confirms.append(True)
    assert not window.offer_recovery()
    assert window.prompter.kinds() == ["confirm", "error"] and "offered again" in window.prompter.asked[1][2]
    hidden.rename(photo_file)  # the drive is back
    later = make_window(engine_factory=FakeEngine)
    later.prompter.confirms.append(True)
    assert later.offer_recovery() and np.array_equal(later.document.mask, doc.mask)


def test_a_second_crash_right_after_recovery_keeps_where_save_writes(make_window, photo_file, tmp_path):
    target = tmp_path / "edited.png"
    session.write_session(session.take_snapshot(_edited_document(photo_file), save_target=target), _orphan())
    first = make_window(engine_factory=FakeEngine)
    first.prompter.confirms.append(True)
    assert first.offer_recovery() and first.files.save_target == target
    first.shutdown(clean=False)  # dies again before its next autosave: only the hand-over session is on disk
    second = make_window(engine_factory=FakeEngine)
    second.prompter.confirms.append(True)
    assert second.offer_recovery()
    assert second.files.save_target == target


def test_autosave_is_debounced_after_edits(make_window, qtbot, photo_file):
    from app.settings import Settings

    settings = Settings.load()
    settings.autosave_seconds = 0.05
    window = make_window(engine_factory=FakeEngine, settings=settings)
    assert window.open_path(photo_file)
    assert not session.has_session(window.autosaver.folder)
    with qtbot.waitSignal(window.autosaver.saved, timeout=5000):
        paint_box(window, BOX)
    restored = Document()
    session.recover(restored, window.autosaver.folder)
    assert np.array_equal(restored.mask, window.document.mask)


def test_two_editors_never_touch_each_others_session(make_window, qtbot, photo_file):
    first = make_window(engine_factory=FakeEngine)
    assert first.open_path(photo_file)
    paint_box(first, BOX)
    with qtbot.waitSignal(first.autosaver.saved, timeout=5000):
        first.autosaver.save_now()
    second = make_window(engine_factory=FakeEngine)
    assert not second.offer_recovery() and second.prompter.asked == []  # the first one is running
    assert second.open_path(photo_file)  # opening a photo clears only the second editor's own session
    second.close()
    assert session.has_session(first.autosaver.folder)


def test_a_lock_left_by_a_dead_editor_whose_pid_was_reused_is_taken_over(make_window, photo_file):
    import subprocess

    session.write_session(session.take_snapshot(_edited_document(photo_file)), _orphan())
    lock_path = session_slots.sessions_root() / f"{_orphan().name}.lock"
    probe = session_slots._lock_for("probe")  # a real lock file of this program, to copy its format
    assert probe.tryLock(0)
    fields = (session_slots.sessions_root() / "probe.lock").read_text().split("\n")
    probe.unlock()
    other = subprocess.Popen(["sleep", "60"])  # another program now has the crashed editor's process id
    try:
        lock_path.write_text("\n".join([str(os.getpid()), *fields[1:]]))  # held by an editor that runs
        window = make_window(engine_factory=FakeEngine)
        assert not window.offer_recovery() and window.prompter.asked == []
        lock_path.write_text("\n".join([str(other.pid), *fields[1:]]))
        window.prompter.confirms.append(True)
        assert window.offer_recovery()
    finally:
        other.kill()
        other.wait()


def test_leftovers_of_editors_that_never_saved_are_cleaned_up(qapp):
    root = session_slots.sessions_root()
    _orphan("20200101-000000-2-empty").mkdir(parents=True)  # crashed before its first save
    mine = session_slots.claim_new()  # a running editor that has not saved yet: only its lock exists
    try:
        assert session_slots.claim_orphans() == []
        assert not _orphan("20200101-000000-2-empty").exists()
        assert (root / f"{mine.folder.name}.lock").exists()  # a live editor's lock is left alone
    finally:
        mine.release(clear=True)
    assert list(root.iterdir()) == []


def test_a_failing_autosave_is_said_once_and_marked_until_it_works_again(make_window, qtbot, photo_file,
                                                                         monkeypatch):
    window = make_window(engine_factory=FakeEngine)
    assert window.open_path(photo_file)
    real_write = session.write_session

    def disk_full(snapshot, folder):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(session, "write_session", disk_full)
    for box in (BOX, (5, 5, 15, 15)):
        paint_box(window, box)
        with qtbot.waitSignal(window.autosaver.failed, timeout=5000):
            window.autosaver.save_now()
    assert window.prompter.kinds() == ["warning"] and "No space left" in window.prompter.asked[0][2]
    assert window.autosave_warning.isVisibleTo(window)
    monkeypatch.setattr(session, "write_session", real_write)
    with qtbot.waitSignal(window.autosaver.saved, timeout=5000):
        window.autosaver.save_now()
    assert not window.autosave_warning.isVisibleTo(window)


def test_a_session_claiming_a_huge_photo_is_damaged_not_allocated(tmp_path):
    """Issue 17 #12: a session claiming 200000 x 200000 raised an uncaught MemoryError during recovery."""
    manifest = {"version": session.SESSION_VERSION, "photo_path": None, "image_stored": False,
                "width": 200_000, "height": 200_000}
    arrays = {"manifest": np.array(json.dumps(manifest))}
    for name in ("mask", "sketch_drawn", "sketch_erased"):
        arrays[f"layer.{name}"] = np.ones(8, np.uint8)
    np.savez(tmp_path / session.STATE_FILE, **arrays)
    with pytest.raises(session.SessionDamaged, match="over the editor's limit"):
        session.read_session(tmp_path)


def test_a_disk_that_refuses_every_lock_still_gives_a_slot_quickly(monkeypatch) -> None:
    """A full disk used to spin forever in the claim loop, so the window never appeared."""
    tries: list[int] = []

    def refuse(self, timeout: int = 0) -> bool:
        tries.append(timeout)
        return False

    monkeypatch.setattr(session_slots.QLockFile, "tryLock", refuse)
    slot = session_slots.claim_new()
    assert len(tries) == session_slots.CLAIM_TRIES
    assert slot.folder.parent == session_slots.sessions_root()
    slot.release(clear=True)  # an unlocked slot releases without error


def test_a_session_folder_that_cannot_be_created_does_not_stop_the_claim(monkeypatch, tmp_path) -> None:
    home = tmp_path / "not-a-folder"
    home.write_text("a file where the user data folder should be")
    monkeypatch.setenv("INPAINT_STUDIO_HOME", str(home))
    slot = session_slots.claim_new()  # neither the folder nor a real lock file can be made
    assert slot.folder.parent == home / "sessions"
    slot.release(clear=True)


def test_autosave_does_not_wait_forever_while_edits_keep_coming(qtbot, tmp_path):
    """Edits 40 ms apart keep restarting a 150 ms debounce; the maximum wait (400 ms) still saves."""
    import itertools
    import time

    saves: list[float] = []

    def snapshot():
        saves.append(time.monotonic())
        return None  # nothing to write: only when a save was attempted matters here

    saver = session.AutoSaver(snapshot, tmp_path / "slot", delay_ms=150, max_wait_ms=400)
    start = time.monotonic()
    while time.monotonic() - start < 1.3:
        saver.schedule()
        qtbot.wait(40)
    saver.stop(clear=False)
    assert len(saves) >= 2, saves
    slack = 0.5  # a busy test machine runs timers late
    assert saves[0] - start < 0.4 + slack  # the first unsaved edit waited the maximum, not for a pause
    assert all(b - a < 0.4 + slack for a, b in itertools.pairwise(saves))
