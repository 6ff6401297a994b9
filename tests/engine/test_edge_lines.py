"""Known lines joined across a hole (engine.edge_lines)."""

from __future__ import annotations

import numpy as np

from engine.edge_lines import connect_lines, find_entries
from engine.edges import known_edges, to_gray


def _photo(rows: list[tuple[int, int, int]], h: int = 96, w: int = 128) -> np.ndarray:
    """Horizontal bands: (first row, last row, grey level) painted in order on a mid-grey photo."""
    image = np.full((h, w, 3), 128, np.uint8)
    for top, bottom, level in rows:
        image[top:bottom] = level
    return image


def _hole(h: int = 96, w: int = 128, box: tuple[int, int, int, int] = (40, 20, 88, 76)) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    x0, y0, x1, y1 = box
    hole[y0:y1, x0:x1] = True
    return hole


def _lines(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    masked = np.where(hole[..., None], 0, image).astype(np.uint8)
    return connect_lines(known_edges(masked, hole), hole, to_gray(masked))


def test_a_horizon_behind_the_hole_is_drawn_straight_across_it() -> None:
    image, hole = _photo([(0, 48, 60)]), _hole()  # dark sky above row 48, grey sea below
    truth_rows = np.nonzero(known_edges(image, np.zeros_like(hole))[:, 10])[0]
    lines = _lines(image, hole)
    columns = np.nonzero(lines.any(axis=0))[0]
    assert lines[~hole].sum() == 0
    assert len(columns) >= 0.9 * 48  # the whole width of the hole
    rows = np.nonzero(lines)[0]
    assert abs(np.median(rows) - np.median(truth_rows)) <= 1 and rows.max() - rows.min() <= 2


def test_two_edges_of_a_band_are_joined_each_to_its_own_partner() -> None:
    """A dark road across the hole: its top edge (bright above, dark below) is not joined to its bottom one."""
    image, hole = _photo([(40, 56, 30)]), _hole()
    lines = _lines(image, hole)
    rows = np.nonzero(lines)[0]
    top, bottom = rows[rows < 48], rows[rows >= 48]
    assert top.size > 40 and bottom.size > 40
    assert top.max() - top.min() <= 2 and bottom.max() - bottom.min() <= 2


def test_an_edge_that_enters_from_one_side_only_is_not_continued() -> None:
    image = _photo([])
    image[:48, :64] = 60  # a dark block whose lower edge ends in the middle of the hole
    assert not _lines(image, _hole()).any()


def test_an_edge_along_the_holes_border_is_no_entry() -> None:
    image = _photo([])
    image[:, :37] = 60  # a vertical edge beside the hole's left side, parallel to it
    hole = _hole()
    masked = np.where(hole[..., None], 0, image).astype(np.uint8)
    assert find_entries(known_edges(masked, hole), hole, to_gray(masked)) == []


def test_the_holes_content_and_degenerate_holes_change_nothing() -> None:
    image, hole = _photo([(0, 48, 60)]), _hole()
    noisy = image.copy()
    noisy[hole] = np.random.default_rng(0).integers(0, 255, (int(hole.sum()), 3), dtype=np.uint8)
    gray = to_gray(noisy)
    known = known_edges(noisy, hole)
    assert np.array_equal(connect_lines(known, hole, gray), connect_lines(known, hole, to_gray(image)))
    assert not connect_lines(known, np.zeros_like(hole), gray).any()
    assert not connect_lines(known, np.ones_like(hole), gray).any()


def test_predict_edges_shows_the_joined_line(tiny_models_dir) -> None:
    """Through the engine: the edge map Predict Edges returns holds the horizon across the hole, whatever the
    (random, tiny) edge model proposes."""
    from engine.api import FillOptions, FillRequest
    from engine.pipeline import Engine

    image, hole = _photo([(0, 48, 60)]), _hole()
    result = Engine(device="cpu").predict_edges(FillRequest(image=image, mask=hole, model="edgeconnect-image",
                                                            options=FillOptions(device="cpu")))
    expected = _lines(image, hole)
    assert expected.sum() > 40
    assert (result.edges[expected] > 0).mean() > 0.9
