"""The photo mirror copies only what changed and always matches the document."""

from __future__ import annotations

import numpy as np

from app.document import Document
from app.mirror import ImageMirror
from engine.api import FillResult


def test_mirror_follows_fills_undo_and_new_photos(qapp):
    doc = Document()
    rng = np.random.default_rng(0)
    doc.load_array(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    mirror = ImageMirror(doc)
    doc.layer_changed.connect(mirror.mark)
    mirror.reset()
    assert np.array_equal(mirror.array, doc.image) and not np.shares_memory(mirror.array, doc.image)
    first = mirror.array
    assert mirror.sync() is first and mirror.copied_pixels == 0

    doc.add_rectangle((10, 10, 20, 16))  # mask only: nothing to copy
    assert mirror.sync() is first and mirror.copied_pixels == 0
    out = doc.image.copy()
    out[doc.mask] = 7
    doc.apply_fill(FillResult(out, None, {}, regions=[(8, 8, 22, 18)], backend="x"))
    assert np.array_equal(mirror.sync(), doc.image)
    assert 0 < mirror.copied_pixels <= 14 * 10
    doc.undo_stack.undo()
    assert np.array_equal(mirror.sync(), doc.image)

    doc.load_array(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))  # another photo, another size
    mirror.reset(prefault=False)
    assert np.array_equal(mirror.sync(), doc.image)
    doc.load_array(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))  # same size, new array, no reset
    assert np.array_equal(mirror.sync(), doc.image)
