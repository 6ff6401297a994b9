"""The evaluation harness on tiny generated images with OpenCV's classical fills."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from engine import evaluation as ev


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, 128 + 60 * np.sin(xx / 4.0)], axis=-1)
    return np.clip(base + rng.normal(0, 12, (h, w, 1)), 0, 255).astype(np.uint8)


IMAGES = [("a.png", _image(48, 64, 1)), ("b.jpg", _image(40, 40, 2)), ("c.png", _image(56, 72, 3))]


def _classical(image: np.ndarray, mask: np.ndarray, backend: str) -> np.ndarray:
    flag = {"telea": cv2.INPAINT_TELEA, "navier-stokes": cv2.INPAINT_NS}[backend]
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    out = cv2.cvtColor(cv2.inpaint(bgr, mask.astype(np.uint8) * 255, 3, flag), cv2.COLOR_BGR2RGB)
    out[~mask] = image[~mask]
    return out


@pytest.fixture()
def nvidia_dir(tmp_path):
    """A stand-in for the NVIDIA folder: one mask per bucket, plus one outside every bucket."""
    folder = tmp_path / "nvidia"
    folder.mkdir()
    for number, side in (("00001", 60), ("02001", 200), ("06001", 320), ("10001", 380), ("10003", 390)):
        mask = np.zeros((512, 512), np.uint8)
        mask[40:40 + side, 60:60 + side] = 255
        cv2.imwrite(str(folder / f"{number}.png"), mask)
    return folder


def test_default_masks_are_deterministic_and_per_image(nvidia_dir):
    masks = ev.DefaultMasks(nvidia_dir)
    assert masks.buckets == ev.DEFAULT_BUCKETS
    assert masks.messages == [f"irregular masks: the NVIDIA set in {nvidia_dir}"]
    first = masks("a.png", 48, 64)
    again = ev.DefaultMasks(nvidia_dir)("a.png", 48, 64)
    other = masks("zz.png", 48, 64)
    assert list(first) == list(ev.DEFAULT_BUCKETS)
    for bucket in first:
        assert first[bucket].shape == (48, 64) and first[bucket].dtype == bool
        np.testing.assert_array_equal(first[bucket], again[bucket])
    assert any(not np.array_equal(first[b], other[b]) for b in (ev.RECTANGLE, ev.FREE_FORM))
    rect = first[ev.RECTANGLE]
    rows, cols = np.nonzero(rect)
    assert 0.25 * 48 - 1 <= np.ptp(rows) + 1 <= 0.45 * 48 + 1
    assert 0.25 * 64 - 1 <= np.ptp(cols) + 1 <= 0.45 * 64 + 1
    # The 10-20 % bucket only has 02001 (00001 belongs to 0-10 %): 200 px of 512 resized to 48 x 64.
    assert 0.1 < first["irregular 10-20%"].mean() < 0.2


def test_without_the_nvidia_folder_procedural_masks_fill_all_five_buckets(tmp_path):
    masks = ev.DefaultMasks(tmp_path / "absent")
    assert masks.buckets == (*ev.NVIDIA_BUCKETS, ev.RECTANGLE, ev.FREE_FORM)
    assert "procedural" in masks.messages[0] and str(tmp_path / "absent") in masks.messages[0]
    first = masks("a.png", 96, 128)
    assert set(first) == set(masks.buckets)
    for bucket, (lo, hi) in ev.PROCEDURAL_RATIOS.items():
        assert lo - 0.005 <= first[bucket].mean() <= hi + 0.005, bucket
    again = masks("a.png", 96, 128)
    assert all(np.array_equal(first[b], again[b]) for b in first)  # deterministic per photo
    other = masks("b.png", 96, 128)
    assert not np.array_equal(first["irregular 30-40%"], other["irregular 30-40%"])


def test_evaluation_writes_table_grid_and_results(tmp_path, nvidia_dir):
    seen_inputs = []

    def fill(image, mask, backend):
        seen_inputs.append((image.copy(), mask.copy()))
        return _classical(image, mask, backend)

    report = ev.evaluate(IMAGES, ["telea", "navier-stokes"], fill, masks=ev.DefaultMasks(nvidia_dir))
    paths = ev.write_report(report, tmp_path / "report")
    assert len(report.cases) == 3 * 5
    assert report.violations() == {b: {"cases": 0, "pixels": 0, "errors": 0} for b in ("telea", "navier-stokes")}
    # The fill never saw the truth under the hole: it was noise.
    truths = dict(IMAGES)
    image, mask = seen_inputs[0]
    assert np.abs(image[mask].astype(int) - truths["a.png"][mask].astype(int)).mean() > 30

    table = paths["table"].read_text()
    for bucket in ev.DEFAULT_BUCKETS:
        assert f"| {bucket} | telea |" in table and f"| {bucket} | navier-stokes |" in table
    assert "mean over buckets" in table
    data = json.loads(paths["results"].read_text())
    assert len(data["cases"]) == 15 and set(data["summary"]) == set(ev.DEFAULT_BUCKETS)
    assert data["outside_hole_violations"]["telea"]["pixels"] == 0
    tele = data["summary"]["rectangle 25-45%"]["telea"]
    assert 10 < tele["psnr"] < 60 and 0 < tele["ssim"] < 1 and 0 < tele["texture"] < 1
    grid = cv2.imread(str(paths["grid"]))
    assert grid.shape[1] == 4 * (ev.THUMB_W + 2)  # masked input, two backends, ground truth
    assert grid.shape[0] == ev.HEADER_H + 12 * (ev.THUMB_H + 2)  # 3 images x 5 buckets -> capped at a dozen rows
    assert not list((tmp_path / "report").glob(".*tmp*"))  # atomic writes leave no temporary files


def test_a_fill_that_changes_outside_pixels_is_caught():
    def sloppy(image, mask, backend):
        out = _classical(image, mask, "telea")
        if backend == "sloppy":
            out[0, 0] = out[0, 0] // 2 + 1  # one pixel outside (or inside) the hole
            out[~mask] = np.clip(out[~mask].astype(int) + 1, 0, 255).astype(np.uint8)
        return out

    report = ev.evaluate(IMAGES[:2], ["telea", "sloppy"], sloppy, masks=ev.DefaultMasks(None))
    v = report.violations()
    assert v["telea"]["cases"] == 0
    assert v["sloppy"]["cases"] == len(report.cases) == 2 * 5  # five buckets, procedural irregular ones too
    assert v["sloppy"]["pixels"] > 1000
    assert "sloppy" in ev.table_markdown(report)


def test_errors_are_recorded_per_case_and_the_run_goes_on():
    def flaky(image, mask, backend):
        if backend == "broken":
            raise RuntimeError("no weights")
        return _classical(image, mask, backend)

    report = ev.evaluate(IMAGES[:1], ["telea", "broken"], flaky, masks=ev.DefaultMasks(None))
    assert report.violations()["broken"]["errors"] == 5
    assert all(c["results"]["broken"].error == "RuntimeError: no weights" for c in report.cases)
    assert report.summary()[ev.RECTANGLE]["telea"]["n"] == 1
    assert "n/a" in ev.table_markdown(report)


def test_folder_masks_match_by_stem_and_bucket_by_ratio(tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    m = np.zeros((20, 20), np.uint8)
    m[:, :5] = 255  # 25 % hole
    cv2.imwrite(str(folder / "b.png"), m)
    m2 = np.zeros((10, 10), np.uint8)
    m2[:1] = 255  # 10 % hole
    cv2.imwrite(str(folder / "zzz.png"), m2)
    masks = ev.FolderMasks(folder)
    got = masks("b.jpg", 40, 40)
    assert list(got) == ["mask 20-30%"] and got["mask 20-30%"].shape == (40, 40)
    report = ev.evaluate(IMAGES, ["telea"], _classical, masks=ev.FolderMasks(folder))
    assert {c["bucket"] for c in report.cases} <= {"mask 20-30%", "mask 10-20%"}
    assert len(report.cases) == 3 and len(report.grid) == 3




def test_a_dark_blob_that_neither_reference_would_paint_is_counted_as_a_blotch():
    def fills(image, mask, backend):
        out = _classical(image, mask, "telea")
        if backend == "blotchy":
            ys, xs = np.nonzero(mask)
            y, x = ys[len(ys) // 2], xs[len(xs) // 2]
            blob = np.zeros_like(mask)
            blob[max(0, y - 5):y + 5, max(0, x - 5):x + 5] = True  # 10 x 10 px, inside the hole mostly
            out[blob & mask] = 0
        return out

    backends = ["harmonic", "patchmatch", "telea", "blotchy"]
    report = ev.evaluate(IMAGES[:1], backends, fills, masks=ev.DefaultMasks(None))
    shares = {b: ev._nanmean([c["results"][b].blotch for c in report.cases]) for b in backends}
    assert shares["telea"] == 0.0 and shares["harmonic"] == 0.0
    assert shares["blotchy"] > 0.5  # every hole large enough to hold the blob
    assert "blotch share" in ev.table_markdown(report)
    without = ev.evaluate(IMAGES[:1], ["telea", "blotchy"], fills, masks=ev.DefaultMasks(None))
    assert all(np.isnan(c["results"]["blotchy"].blotch) for c in without.cases)  # no references: not scored
