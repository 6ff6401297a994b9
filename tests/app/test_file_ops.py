"""Open, Save, Save As, the overwrite question, failed saves, masks, unsaved changes, recent files."""

from __future__ import annotations

import errno
from collections import deque

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QMenu

from app.document import Document
from app.file_ops import FileOps, suggest_save_as
from app.prompts import CANCEL, SAVE, ScriptedPrompter
from app.settings import Settings
from engine import imageio
from engine.api import FillResult
from tests.app.fakes import FakeEngine
from tests.app.helpers import CAMERA, exif_make

BOX = (30, 20, 60, 44)


@pytest.fixture
def ops(qapp):
    doc = Document()
    prompter = ScriptedPrompter()
    return FileOps(doc, prompter, Settings.load())


def _edit(doc: Document) -> None:
    doc.add_rectangle(BOX)
    out = doc.image.copy()
    out[doc.mask] = (250, 0, 250)
    doc.apply_fill(FillResult(out, None, {}, backend="fake"))


def test_save_as_suggests_name_inpainted(tmp_path):
    source = tmp_path / "beach.jpg"
    assert suggest_save_as(source) == tmp_path / "beach-inpainted.jpg"
    (tmp_path / "beach-inpainted.jpg").write_bytes(b"x")
    assert suggest_save_as(source) == tmp_path / "beach-inpainted-2.jpg"
    assert suggest_save_as(tmp_path / "beach-inpainted.jpg") == tmp_path / "beach-inpainted-2.jpg"
    assert suggest_save_as(tmp_path / "scan.gif") == tmp_path / "scan-inpainted.png"


def test_save_as_round_trip_keeps_format_and_exif(ops, photo_file):
    assert ops.open(photo_file)
    _edit(ops.document)
    target = photo_file.with_name("photo-inpainted.jpg")
    ops.prompter.paths.append(target)
    assert ops.save_as()
    assert ops.prompter.asked[0][0] == "save_path" and ops.prompter.asked[0][2] == str(target)
    assert not ops.document.is_modified()
    assert exif_make(target) == CAMERA
    with Image.open(target) as im:
        assert im.format == "JPEG"
    again = imageio.load_image(target)
    diff = np.abs(again.rgb.astype(int) - ops.document.image.astype(int))
    assert diff.mean() < 2.0  # JPEG at quality 95
    assert (again.rgb[BOX[1] + 5, BOX[0] + 5].astype(int) - (250, 0, 250)).__abs__().max() < 20
    # Save now writes to the new file without asking.
    _edit_more = ops.document.add_rectangle((0, 0, 4, 4))
    assert _edit_more is not None
    assert ops.save() and ops.prompter.kinds() == ["save_path"]


def test_png_round_trip_is_exact(ops, tmp_path):
    from tests.app.helpers import write_photo

    photo = write_photo(tmp_path / "p.png")
    assert ops.open(photo)
    _edit(ops.document)
    out = tmp_path / "out.png"
    assert ops.save_as(out)
    assert np.array_equal(imageio.load_image(out).rgb, ops.document.image)
    assert exif_make(out) == CAMERA


def test_overwriting_the_original_asks_first(ops, photo_file):
    original = photo_file.read_bytes()
    assert ops.open(photo_file)
    _edit(ops.document)
    ops.prompter.confirms.append(False)
    assert not ops.save()  # Save with no target writes over the original: declined
    assert photo_file.read_bytes() == original
    assert ops.prompter.kinds() == ["confirm"] and "Overwrite the original" in ops.prompter.asked[0][2]
    assert ops.document.is_modified()
    ops.prompter.confirms.append(True)
    assert ops.save()
    assert photo_file.read_bytes() != original
    assert exif_make(photo_file) == CAMERA
    assert not ops.document.is_modified()
    ops.document.add_rectangle((0, 0, 3, 3))
    assert ops.save()  # asked once per opened photo
    assert ops.prompter.kinds() == ["confirm", "confirm"]


def test_save_as_onto_the_original_asks_too(ops, photo_file):
    original = photo_file.read_bytes()
    assert ops.open(photo_file)
    _edit(ops.document)
    assert not ops.save_as(photo_file)
    assert photo_file.read_bytes() == original


def test_failed_save_shows_a_dialog_and_leaves_the_old_file(ops, photo_file, monkeypatch):
    assert ops.open(photo_file)
    target = photo_file.with_name("out.jpg")
    target.write_bytes(b"the old file")
    _edit(ops.document)

    def disk_full(self, fp, *args, **kwargs):
        if hasattr(fp, "write"):
            fp.write(b"half a jpeg")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    assert not ops.save_as(target)
    assert target.read_bytes() == b"the old file"
    assert ops.prompter.kinds() == ["error"]
    title, text = ops.prompter.asked[0][1:]
    assert title == "Save failed" and "No space left" in text and "not changed" in text
    assert ops.document.is_modified()
    assert sorted(p.name for p in photo_file.parent.iterdir()) == ["out.jpg", "photo.jpg"]  # no temp files left


def test_mask_export_and_import(ops, photo_file, tmp_path):
    assert ops.open(photo_file)
    ops.document.add_rectangle(BOX)
    mask = ops.document.mask.copy()
    out = tmp_path / "mask.png"
    assert ops.export_mask(out)
    ops.document.clear_mask()
    assert ops.import_mask(out)
    assert np.array_equal(ops.document.mask, mask)
    ops.document.undo_stack.undo()
    assert not ops.document.mask.any()
    # A mask of another size is scaled to the photo.
    Image.fromarray(np.kron(mask, np.ones((2, 2), bool)).astype(np.uint8) * 255).save(tmp_path / "big.png")
    assert ops.import_mask(tmp_path / "big.png")
    assert np.array_equal(ops.document.mask, mask)
    assert not ops.import_mask(tmp_path / "missing.png")
    assert ops.prompter.kinds() == ["error"]


def test_unsaved_changes_prompt(ops, photo_file):
    assert ops.open(photo_file)
    assert ops.maybe_keep_changes()  # nothing changed: no question
    ops.document.add_rectangle(BOX)
    # Only the mask changed: saving the photo would keep nothing of it, so the question is about the mask.
    ops.prompter.confirms.append(False)
    assert not ops.maybe_keep_changes()
    assert ops.prompter.asked[-1][1] == "Discard the mask?" and ops.prompter.unsaved == deque()
    before = photo_file.read_bytes()
    assert ops.save() and not ops.document.is_modified()  # nothing to write: the file is left as it is
    assert photo_file.read_bytes() == before and ops.prompter.kinds().count("confirm") == 1
    image = ops.document.image.copy()
    image[ops.document.mask] = (9, 9, 9)
    ops.document.apply_fill(FillResult(image, None, {}, backend="fake"))
    ops.prompter.unsaved.append(CANCEL)
    assert not ops.maybe_keep_changes()
    assert "photo.jpg" in ops.prompter.asked[-1][2]
    ops.prompter.unsaved.append(SAVE)
    ops.prompter.confirms.append(True)  # Save goes over the original
    assert ops.maybe_keep_changes()
    assert not ops.document.is_modified() and photo_file.read_bytes() != before


def _recent_menu(window) -> QMenu:
    """File > Open Recent, reached through the menu bar and filled as it is just before it shows."""
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    menu = next(a.menu() for a in file_menu.actions() if a.text() == "Open &Recent")
    menu.aboutToShow.emit()
    return menu


def test_recent_files_are_remembered_and_listed(make_window, qtbot, photo_file, tmp_path):
    window = make_window(engine_factory=FakeEngine)
    assert window.open_path(photo_file)
    assert Settings.load().recent_files[0] == str(photo_file.resolve())
    menu = _recent_menu(window)
    actions = menu.actions()
    assert len(actions) == 1 and actions[0].text().endswith("photo.jpg")
    window.document.load_array(np.zeros((4, 4, 3), np.uint8))  # something else is open
    actions[0].trigger()
    assert window.document.width == 96
    # Two files of one name are told apart by their folder; an & is shown, not taken as an accelerator;
    # files that are gone leave the list.
    from tests.app.helpers import write_photo

    (tmp_path / "elsewhere").mkdir()
    twin = write_photo(tmp_path / "elsewhere" / "photo.jpg")
    amp = write_photo(tmp_path / "R&D.png")
    gone = write_photo(tmp_path / "gone.png")
    for path in (gone, amp, twin):
        assert window.open_path(path)
    gone.unlink()
    texts = [a.text() for a in _recent_menu(window).actions()]
    assert texts[0].endswith("photo.jpg (elsewhere)") and "R&&D.png" in texts[1] and len(texts) == 3
    assert str(gone.resolve()) not in window.settings.recent_files


def test_closing_with_unsaved_changes_asks(make_window, qtbot, photo_file):
    window = make_window(engine_factory=FakeEngine)
    assert window.open_path(photo_file)
    window.document.add_rectangle(BOX)
    window.close()  # only a mask: "Discard the mask?" (Enter = No)
    assert window.isVisible() and window.prompter.kinds() == ["confirm"]
    image = window.document.image.copy()
    image[window.document.mask] = (9, 9, 9)
    window.document.apply_fill(FillResult(image, None, {}, backend="fake"))
    window.prompter.unsaved.append(CANCEL)
    window.close()
    assert window.isVisible() and window.engine.is_running()
    assert window.prompter.kinds() == ["confirm", "unsaved"]


def test_saving_over_a_multi_page_tiff_is_refused_and_save_as_offered(ops, tmp_path):
    from tests.app.helpers import photo_array

    scan = tmp_path / "scan.tif"
    pages = [Image.fromarray(photo_array()) for _ in range(3)]
    pages[0].save(scan, save_all=True, append_images=pages[1:])
    before = scan.read_bytes()
    assert ops.open(scan)
    _edit(ops.document)
    ops.prompter.confirms.append(False)
    assert not ops.save()
    kind, title, text = ops.prompter.asked[-1]
    assert title == "Save as a new file"
    assert kind == "confirm" and "3 pages" in text and "delete pages 2-3 of 3" in text
    assert scan.read_bytes() == before and ops.document.is_modified()
    copy = tmp_path / "scan-inpainted.tif"
    ops.prompter.confirms.append(True)  # Save as a new file: yes
    ops.prompter.paths.append(copy)
    assert ops.save()
    assert ops.prompter.kinds()[-2:] == ["confirm", "save_path"]
    assert scan.read_bytes() == before and copy.exists() and not ops.document.is_modified()
    with Image.open(scan) as im:
        assert im.n_frames == 3
