"""Guided texture synthesis: the structure decides which patches are copied, a drawn line is continued, the ring
and the user's other holes are never sources, the same request gives the same bytes, and bad input falls back
or is refused clearly."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from engine.api import FillOptions, FillRequest
from engine.errors import EngineError, FillCancelled
from engine.pipeline import Engine
from engine.texture import TextureInput, synthesize
from engine.texture.guided import GuideWeights, guided_copy
from engine.texture.native import RING
from engine.texture.synthesis import check_strength


def _two_textures(h: int = 96, w: int = 128) -> np.ndarray:
    """Dark horizontal stripes on the left, bright noise on the right."""
    rng = np.random.default_rng(0)
    image = np.zeros((h, w, 3), np.uint8)
    stripes = np.where((np.arange(h) // 2) % 2 == 0, 20, 70).astype(np.uint8)
    image[:, : w // 2] = stripes[:, None, None]
    image[:, w // 2:] = rng.integers(180, 250, (h, w - w // 2, 1), dtype=np.uint8)
    return image


def _hole(h: int = 96, w: int = 128) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[28:68, 44:84] = True
    return hole


def _luma(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32).mean(axis=-1)


def _lines_left_plain_right(h: int = 96, w: int = 160) -> np.ndarray:
    """Dark vertical lines every 8 px on the left, plain grey noise on the right."""
    rng = np.random.default_rng(3)
    image = rng.integers(120, 136, (h, w, 1), dtype=np.uint8).repeat(3, axis=-1)
    for x in range(4, 60, 8):
        image[:, x:x + 2] = 30
    return image


def test_without_a_drawn_line_plain_texture_is_copied_from_around_the_hole() -> None:
    image = _lines_left_plain_right()
    hole = np.zeros(image.shape[:2], bool)
    hole[24:72, 80:120] = True  # in the plain part, 20 px from the nearest line
    out = synthesize(TextureInput(image, hole, hole, np.full(image.shape, 0.5, np.float32)), 1.0).image * 255
    filled = _luma(out)[hole]
    assert filled.min() > 100 and 120 <= filled.mean() <= 136  # noise like its surroundings, no line copied
    assert filled.std() > 2  # texture, not a flat patch


def test_a_line_drawn_through_the_hole_is_continued_by_copied_line_patches() -> None:
    image = _lines_left_plain_right()
    hole = np.zeros(image.shape[:2], bool)
    hole[24:72, 80:120] = True  # in the plain part, 20 px from the nearest line
    sketch = np.zeros(hole.shape, np.float32)
    sketch[:, 99:101] = 1.0
    source_edges = np.zeros(hole.shape, np.float32)
    source_edges[:, 4:60:8] = 1.0
    structure = np.full(image.shape, 0.5, np.float32)
    drawn = _luma(synthesize(TextureInput(image, hole, hole, structure, sketch, source_edges), 1.0).image * 255)
    plain = _luma(synthesize(TextureInput(image, hole, hole, structure, np.zeros_like(sketch), source_edges),
                             1.0).image * 255)
    on_line, beside = drawn[30:66, 98:102].min(axis=1), drawn[30:66, 84:94].mean()
    assert (on_line < 80).mean() > 0.8 and beside > 110  # a dark line along the sketch, plain noise beside it
    assert plain[30:66, 84:116].min() > 100  # and no line at all without the sketch


def test_the_guided_search_copies_the_texture_the_structure_asks_for() -> None:
    """A hole over the border of two textures: the side the structure calls dark gets the dark stripes."""
    image, hole = _two_textures(), _hole()
    blocked = np.zeros_like(hole)
    dark_left = np.full(image.shape, 0.85, np.float32)
    dark_left[:, :64] = 45 / 255
    weights = GuideWeights(guide=16.0)
    out = _luma(guided_copy(image, hole, blocked, dark_left, weights=weights) * 255)
    flipped = np.full(image.shape, 45 / 255, np.float32)
    flipped[:, :64] = 0.85
    out_flipped = _luma(guided_copy(image, hole, blocked, flipped, weights=weights) * 255)
    left, right = (slice(32, 64), slice(48, 60)), (slice(32, 64), slice(68, 80))
    assert out[left].mean() < 90 and out[right].mean() > 170
    assert out_flipped[left].mean() > 170 and out_flipped[right].mean() < 90


def test_thin_strokes_take_the_texture_between_them_not_the_one_around_the_block() -> None:
    """Dark stripes framed by bright noise, with 3 px strokes every 12 px over the stripes: each stroke must get
    the stripes between them. (When a coarse level counted a pixel as a hole wherever any pixel under it was one,
    the strokes merged there into one hole over the whole stripe block, which then copied the bright frame.)"""
    rng = np.random.default_rng(0)
    n, frame = 192, 32
    image = rng.integers(190, 250, (n, n, 1), dtype=np.uint8).repeat(3, axis=-1)
    stripes = np.where((np.arange(n) // 2) % 2 == 0, 20, 70).astype(np.uint8)
    image[frame:-frame, frame:-frame] = stripes[frame:-frame, None, None]
    hole = np.zeros((n, n), bool)
    for x in range(frame + 4, n - frame - 4, 12):
        hole[frame + 4:-frame - 4, x:x + 3] = True
    grey = np.full(image.shape, 0.5, np.float32)  # a structure that agrees with neither texture
    out = _luma(guided_copy(image, hole, np.zeros_like(hole), grey, weights=GuideWeights(guide=0.0)) * 255)
    assert out[hole].mean() < 90  # the dark stripes, not the bright frame (about 130 before)
    assert np.abs(out[hole] - _luma(image)[hole]).mean() < 20


def test_neither_the_ring_nor_another_hole_is_ever_a_source() -> None:
    """The halo lies within the ring (patches touching the hole are never sources either, so the ring is a margin
    on top); the other hole is an unfilled part of the user's mask, never a source."""
    rng = np.random.default_rng(1)
    image = rng.integers(100, 140, (80, 80, 3), dtype=np.uint8)
    image[..., 0] = image[..., 1]  # grey noise
    hole = np.zeros((80, 80), bool)
    hole[30:50, 30:50] = True
    halo = np.zeros_like(hole)
    halo[30 - RING:50 + RING, 30 - RING:50 + RING] = True
    image[halo & ~hole] = (255, 0, 0)  # the removed object's red halo, within the ring
    other = np.zeros_like(hole)
    other[5:20, 60:75] = True
    image[other] = (0, 255, 0)  # another part of the user's mask, still unfilled
    structure = np.full(image.shape, 120 / 255, np.float32)  # grey: any red or green in the fill was copied
    out = (synthesize(TextureInput(image, hole, hole | other, structure), 1.0).image * 255).round()
    filled = out[hole]
    assert not ((filled[:, 0] > 180) & (filled[:, 1] < 80)).any()  # no red
    assert not ((filled[:, 1] > 180) & (filled[:, 0] < 80)).any()  # no green
    assert 80 < filled.mean() < 160


def test_the_same_request_gives_the_same_bytes_and_strength_blends_with_the_structure() -> None:
    image, hole = _two_textures(), _hole()
    structure = np.full(image.shape, 0.5, np.float32)
    inp = TextureInput(image, hole, hole, structure)
    full_a, full_b = synthesize(inp, 1.0).image, synthesize(inp, 1.0).image
    assert np.array_equal(full_a, full_b)
    assert np.array_equal(synthesize(inp, 0.0).image, structure)
    half = synthesize(inp, 0.5).image
    assert np.allclose(half[hole], 0.5 * structure[hole] + 0.5 * full_a[hole], atol=1e-5)


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5, "lots", None])
def test_a_bad_strength_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(ValueError, match="texture strength"):
        check_strength(bad)


def test_the_engine_refuses_a_nan_strength_before_any_work() -> None:
    image, hole = _two_textures(), _hole()
    with pytest.raises(EngineError, match="texture strength"):
        Engine(device="cpu").fill(FillRequest(image, hole, model="harmonic",
                                              options=FillOptions(texture=float("nan"))))


def test_a_photo_smaller_than_a_patch_falls_back_to_the_structure_and_says_so() -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    mask = np.zeros((5, 6), bool)
    mask[2, 2:4] = True
    result = Engine(device="cpu").fill(FillRequest(image, mask, model="harmonic"))
    assert np.array_equal(result.image[~mask], image[~mask])
    assert any("Not enough known pixels" in m for m in result.messages)


def test_a_guide_that_disagrees_with_every_known_colour_still_fills_from_the_photo() -> None:
    image, hole = _two_textures(), _hole()
    structure = np.zeros(image.shape, np.float32)
    structure[..., 0] = structure[..., 2] = 1.0  # magenta, nowhere in the photo
    out = synthesize(TextureInput(image, hole, hole, structure), 1.0).image * 255
    filled = out[hole]
    assert np.isfinite(filled).all()
    assert not ((filled[:, 0] > 200) & (filled[:, 1] < 60) & (filled[:, 2] > 200)).any()


def test_default_copies_texture_on_the_harmonic_fill_and_keeps_every_known_pixel(tiny_models_dir) -> None:
    image, hole = _two_textures(), _hole()  # no structure model installed: the harmonic fill is the structure
    engine = Engine(device="cpu")
    assert engine.resolve_model("default") == "harmonic"
    textured = engine.fill(FillRequest(image, hole))
    smooth = engine.fill(FillRequest(image, hole, model="harmonic", options=FillOptions(texture=0.0)))
    assert np.array_equal(textured.image[~hole], image[~hole])
    assert textured.timings["texture"] > 0 and smooth.timings["texture"] == 0
    grad = lambda x: np.abs(np.diff(_luma(x), axis=0))[28:67, 44:84].mean()  # noqa: E731
    assert grad(textured.image) > 3 * grad(smooth.image)


def test_cancel_during_the_texture_stage_stops_the_fill() -> None:
    image, hole = _two_textures(), _hole()
    seen: list[str] = []
    with pytest.raises(FillCancelled):
        Engine(device="cpu").fill(FillRequest(image, hole), progress=lambda f, label: seen.append(label),
                                  cancel=lambda: "texture" in seen)
    assert "texture" in seen and "composite" not in seen


def test_without_the_native_library_patchmatch_is_unavailable_and_the_rest_works(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "patchmatch", None)  # import patchmatch -> ImportError
    engine = Engine(device="cpu")
    info = {m.name: m for m in engine.models()}["patchmatch"]
    assert info.kind == "unavailable" and "pypatchmatch" in info.description
    image, hole = _two_textures(), _hole()
    with pytest.raises(EngineError, match="PatchMatch is not available"):
        engine.fill(FillRequest(image, hole, model="patchmatch"))
    result = engine.fill(FillRequest(image, hole))  # the default: the own search stands in, unguided
    assert np.array_equal(result.image[~hole], image[~hole])
    assert result.timings["texture"] > 0 and not result.messages
    assert _luma(result.image)[28:68, 44:84].std() > 20  # copied stripes and noise, not a smooth patch
    assert np.array_equal(engine.fill(FillRequest(image, hole, model="telea")).image[~hole], image[~hole])


def test_patchmatch_backend_is_deterministic_and_keeps_known_pixels() -> None:
    image, hole = _two_textures(), _hole()
    engine = Engine(device="cpu")
    a = engine.fill(FillRequest(image, hole, model="patchmatch")).image
    b = engine.fill(FillRequest(image, hole, model="patchmatch")).image
    assert np.array_equal(a, b) and np.array_equal(a[~hole], image[~hole])
    assert not np.array_equal(a[hole], image[hole])


def test_the_composite_keeps_the_copys_detail_on_the_structures_low_band_with_the_shift_clipped() -> None:
    from engine.texture.synthesis import COARSE_CLIP, COARSE_REACH, LOW_BAND_CLIP, THIN_CLIP, compose, thin_trust

    rng = np.random.default_rng(5)
    n, lo, hi = 120, 20, 100  # an 80 px square hole: too wide for the thin-part rule but at its corners
    image = np.full((n, n, 3), 128, np.uint8)
    hole = np.zeros((n, n), bool)
    hole[lo:hi, lo:hi] = True
    detail = rng.normal(0, 0.08, (n, n, 1)).astype(np.float32).repeat(3, axis=-1)
    copied = np.clip(0.5 + detail, 0, 1)  # grass-like detail
    inner = (slice(50, 70), slice(50, 70))
    darker = compose(np.full((n, n, 3), 0.46, np.float32), copied, image, hole)  # the structure says 0.04 darker
    shift = (darker - copied)[inner]
    assert abs(float(shift.mean()) + 0.04) < 0.01 and float(shift.std()) < 0.01  # moved, detail kept
    assert np.array_equal(darker[~hole], image[~hole].astype(np.float32) / 255)
    far = compose(np.zeros((n, n, 3), np.float32), copied, image, hole)  # a structure far from the copy
    depth = np.minimum(np.minimum(np.arange(n) - lo + 1, hi - np.arange(n))[:, None],
                       np.minimum(np.arange(n) - lo + 1, hi - np.arange(n))[None, :])  # px to the hole's outside
    bound = LOW_BAND_CLIP + COARSE_CLIP * np.minimum(depth / COARSE_REACH, 1.0) + THIN_CLIP * thin_trust(hole)
    assert bool(((copied - far).max(axis=-1) <= bound + 1e-5)[hole].all())
    assert float((copied - far)[inner].mean()) > 0.8 * LOW_BAND_CLIP  # clipped, not ignored
    smooth = np.full((n, n, 3), 0.5, np.float32)  # a smooth copy (sky): the structure's smear stays out
    assert float(np.abs(compose(np.zeros_like(smooth), smooth, image, hole) - smooth)[inner].max()) < 0.01


def test_local_thickness_is_half_a_strokes_width_whatever_its_length_and_scale() -> None:
    from engine.texture.synthesis import THIN_UNTRUSTED, local_thickness, thin_trust

    hole = np.zeros((160, 240), bool)
    hole[20:26, 10:150] = True  # a stroke 6 px wide, 140 px long
    yy, xx = np.mgrid[:160, :240]
    hole |= (yy - 100) ** 2 + (xx - 180) ** 2 <= 50 ** 2  # a disc of radius 50
    radii = np.arange(2, 41, 2, dtype=np.float32)
    thickness = local_thickness(hole, radii)
    assert thickness[20:26, 12:148].max() <= 3 and thickness[~hole].max() == 0
    assert thickness[100, 131:135].min() == 40 and thickness[100, 180] == 40  # the disc's border as its centre
    trust = thin_trust(hole)
    assert trust[22, 80] == 1.0 and trust[100, 132] == 0.0 and trust[100, 180] == 0.0
    assert 0.0 < trust[hole & (thickness > 12) & (thickness < THIN_UNTRUSTED)].min() < 1.0  # the disc's rim, blended
    double = np.kron(hole, np.ones((2, 2), bool))  # the same hole at twice the size, the structure at half
    assert np.abs(local_thickness(double, radii, 2.0)[::2, ::2] - thickness)[hole].mean() < 0.5


def test_a_thin_part_of_the_hole_takes_the_structure_with_the_copys_fine_detail() -> None:
    """In a stroke a few px wide the structure decides down to fine detail and the copy adds only its detail
    finer than THIN_SIGMA; a structure far from the copy moves it by THIN_CLIP at most there."""
    from engine.texture.synthesis import LOW_BAND_CLIP, THIN_CLIP, compose

    rng = np.random.default_rng(8)
    image = np.full((96, 160, 3), 128, np.uint8)
    hole = np.zeros((96, 160), bool)
    hole[10:86, 20:26] = True  # a 6 px stroke
    detail = rng.normal(0, 0.08, (96, 160, 1)).astype(np.float32).repeat(3, axis=-1)
    copied = np.clip(0.5 + detail, 0, 1)
    structure = np.full((96, 160, 3), 0.4, np.float32)  # 0.1 darker than the copy
    out = compose(structure, copied, image, hole)
    stroke = (slice(16, 80), slice(21, 25))
    moved = (out - copied)[stroke]
    assert abs(float(moved.mean()) + 0.1) < 0.02  # the structure's level (the low band alone moves it ~0.03)
    assert float((out - structure)[stroke].std()) > 0.5 * float(detail[stroke].std())  # the copy's detail kept
    far = compose(np.zeros_like(structure), copied, image, hole)
    assert float((copied - far)[hole].max()) <= LOW_BAND_CLIP + THIN_CLIP + 1e-5


def test_the_coarse_correction_reaches_deep_into_a_large_hole_only() -> None:
    """Past the first clip, the structure moves a textured copy further the deeper a pixel lies in the hole, and
    not at all at the hole's border; at a structure scale above 1 the band is computed at that scale."""
    from engine.texture.synthesis import COARSE_CLIP, LOW_BAND_CLIP, compose

    rng = np.random.default_rng(6)
    image = np.full((224, 224, 3), 128, np.uint8)
    hole = np.zeros((224, 224), bool)
    hole[16:208, 16:208] = True  # 96 px from the border to the centre
    copied = np.clip(0.6 + rng.normal(0, 0.08, (224, 224, 1)).astype(np.float32).repeat(3, axis=-1), 0, 1)
    structure = np.full((224, 224, 3), 0.2, np.float32)  # 0.4 darker than the copy: beyond both clips
    centre, border = (112, slice(100, 124)), (17, slice(100, 124))
    for scale in (1.0, 2.0):  # the full coarse clip is reached 32 px deep at the structure's scale: 64 px at 2
        moved = (copied - compose(structure, copied, image, hole, structure_scale=scale)).mean(axis=-1)
        assert abs(float(moved[centre].mean()) - (LOW_BAND_CLIP + COARSE_CLIP)) < 0.01
        assert abs(float(moved[border].mean()) - LOW_BAND_CLIP) < 0.02  # at the border: the first clip only
    assert float(moved[48, 100:124].mean()) < LOW_BAND_CLIP + 0.6 * COARSE_CLIP  # 32 px deep at scale 2: half way
    band = np.zeros_like(hole)
    band[16:208, 168:184] = True  # what a drawn line's search filled (32 px deep): left to the first correction
    along = (copied - compose(structure, copied, image, hole, along_line=band)).mean(axis=-1)
    assert abs(float(along[112, 174:178].mean()) - LOW_BAND_CLIP) < 0.01
    assert abs(float(along[112, 100:110].mean()) - (LOW_BAND_CLIP + COARSE_CLIP)) < 0.01  # 58 px away from it


def test_a_drawn_line_changes_the_fill_near_the_line_only() -> None:
    """The unguided copy fills the hole; only a band around the line is re-filled along it (the whole-hole
    search let smooth patches spread far from the line)."""
    from engine.texture import load_patchmatch
    from engine.texture.synthesis import LINE_BAND, LOW_BAND_SIGMA

    if load_patchmatch()[0] is None:
        pytest.skip("the pypatchmatch native library does not load here")
    image = _lines_left_plain_right()
    hole = np.zeros(image.shape[:2], bool)
    hole[16:80, 64:156] = True
    sketch = np.zeros(hole.shape, np.float32)
    sketch[:, 103:105] = 1.0
    source_edges = np.zeros(hole.shape, np.float32)
    source_edges[:, 4:60:8] = 1.0
    structure = np.full(image.shape, 0.5, np.float32)
    with_line = synthesize(TextureInput(image, hole, hole, structure, sketch, source_edges), 1.0).image
    without = synthesize(TextureInput(image, hole, hole, structure, np.zeros_like(sketch), source_edges), 1.0).image
    reach = LINE_BAND + int(8 * LOW_BAND_SIGMA) + 2  # the band plus the reach of the composite's blurs (4 sigma)
    far = hole.copy()
    far[:, 103 - reach:105 + reach] = False
    assert far.sum() > 500
    # exactly the same but for the tail of the composite's coarse correction (COARSE_SIGMA), under a level
    assert float(np.abs(with_line[far] - without[far]).max()) < 1 / 255
    near = _luma(with_line * 255)[24:72, 102:106].min(axis=1)
    assert (near < 80).mean() > 0.8  # and the line is there


def test_a_copy_made_ahead_beside_the_structure_gives_the_same_bytes() -> None:
    from engine.texture import copy_ahead, load_patchmatch

    if load_patchmatch()[0] is None:
        pytest.skip("the pypatchmatch native library does not load here")
    image, hole = _two_textures(), _hole()
    structure = np.full(image.shape, 0.4, np.float32)
    inp = TextureInput(image, hole, hole, structure)
    ahead = copy_ahead(image, hole, hole)
    assert ahead is not None
    assert np.array_equal(synthesize(inp, 1.0, copied=ahead).image, synthesize(inp, 1.0).image)
    tiny = np.zeros((5, 5), bool)
    tiny[2, 2] = True
    assert copy_ahead(image[:5, :5], tiny, tiny) is None  # smaller than a patch: synthesize decides
