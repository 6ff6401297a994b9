"""Photo datasets on tiny generated files: odd formats, broken files, determinism, validation, internal crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from engine.edges import canny_edges, to_gray
from engine.errors import EngineError
from trainer.data import (
    DataError,
    InternalPhotoDataset,
    PhotoDataset,
    ValidationSet,
    find_images,
    read_photo,
)
from trainer.masks import MaskConfig, MaskGenerator

SIZE = 32


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful photo-like image with a few shapes (has edges)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), np.full((h, w), 90.0)], axis=2)
    for _ in range(3):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(3, max(4, min(h, w) // 3))
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    return img.astype(np.uint8)


def _masks() -> MaskGenerator:
    return MaskGenerator(MaskConfig(rectangle=1, free_form=1, cellular=1))


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    """One file of each awkward kind; 8 usable photos, 1 truncated, 2 unusable."""
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(_photo(60, 80, 1)).save(root / "a_rgb.jpg", quality=90)
    Image.fromarray(to_gray(_photo(50, 70, 2))).save(root / "b_gray.jpg")
    Image.fromarray(_photo(48, 64, 3)).convert("CMYK").save(root / "c_cmyk.jpg")
    Image.fromarray(_photo(40, 40, 4)).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "sub" / "d_pal.png")
    cv2.imwrite(str(root / "sub" / "e_gray16.png"), (to_gray(_photo(45, 45, 5)).astype(np.uint16) * 257))
    bgr16 = cv2.cvtColor(_photo(36, 52, 6), cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    cv2.imwrite(str(root / "sub" / "f_rgb16.png"), bgr16)
    Image.fromarray(_photo(20, 20, 7)).save(root / "sub" / "deeper" / "g_tiny.png")
    rgba = np.dstack([_photo(40, 50, 8), np.full((40, 50), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(root / "h_alpha.png")
    # Truncated JPEG: the header reads, decoding fails.
    buf = root / "i_truncated.jpg"
    Image.fromarray(_photo(64, 64, 9)).save(buf, quality=95)
    data = buf.read_bytes()
    buf.write_bytes(data[: len(data) * 6 // 10])
    (root / "j_text.jpg").write_text("this is not an image")
    Image.fromarray(_photo(4, 30, 10)).save(root / "k_sliver.png")  # shorter side 4 px: too small
    (root / "notes.txt").write_text("ignored: not an image extension")
    (root / ".hidden.png").write_bytes(b"ignored")
    (root / "x_boundaries").mkdir()
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(root / "x_boundaries" / "a_rgb.png")  # not a photo
    return root


def test_find_images_recursive_sorted_filtered(odd_folder):
    found = [p.relative_to(odd_folder).as_posix() for p in find_images(odd_folder)]
    assert found == ["a_rgb.jpg", "b_gray.jpg", "c_cmyk.jpg", "h_alpha.png", "i_truncated.jpg", "j_text.jpg",
                     "k_sliver.png", "sub/d_pal.png", "sub/deeper/g_tiny.png", "sub/e_gray16.png", "sub/f_rgb16.png"]
    assert find_images(odd_folder) == find_images(str(odd_folder))
    with pytest.raises(DataError, match="photo folder not found"):
        find_images(odd_folder / "missing")


def test_read_photo_conversions(odd_folder):
    for rel in ["b_gray.jpg", "c_cmyk.jpg", "sub/d_pal.png", "sub/e_gray16.png", "sub/f_rgb16.png", "h_alpha.png"]:
        rgb = read_photo(odd_folder / rel)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, rel
    gray16 = read_photo(odd_folder / "sub" / "e_gray16.png")
    expected = to_gray(_photo(45, 45, 5))
    np.testing.assert_array_equal(gray16[..., 0], expected)  # 16-bit scaled down, not clipped
    rgb16 = read_photo(odd_folder / "sub" / "f_rgb16.png")
    np.testing.assert_array_equal(rgb16, _photo(36, 52, 6))
    alpha = read_photo(odd_folder / "h_alpha.png").astype(int)
    np.testing.assert_allclose(alpha, (_photo(40, 50, 8).astype(int) * 128 + 255 * 127) / 255, atol=2)


def test_read_photo_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    Image.fromarray(_photo(20, 40)).save(tmp_path / "r.jpg", exif=exif)
    assert read_photo(tmp_path / "r.jpg").shape == (40, 20, 3)


def test_dataset_items_shapes_ranges_and_skips(odd_folder):
    ds = PhotoDataset(odd_folder, SIZE, _masks(), edge_sigma=1.5, seed=3)
    # Header failures (text file) and too-small files are dropped and counted when the dataset is built.
    assert len(ds) == 9
    assert ds.skipped == 2
    assert any("j_text.jpg" in w and "not a readable image" in w for w in ds.warnings)
    assert any("k_sliver.png" in w and "too small" in w for w in ds.warnings)
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"image", "gray", "edges", "known_edges", "mask"}
        for key, channels in (("image", 3), ("gray", 1), ("edges", 1), ("known_edges", 1), ("mask", 1)):
            t = item[key]
            assert t.shape == (channels, SIZE, SIZE) and t.dtype == torch.float32, key
            assert t.min() >= 0.0 and t.max() <= 1.0
        for key in ("edges", "known_edges", "mask"):
            assert set(item[key].unique().tolist()) <= {0.0, 1.0}
        assert not (item["known_edges"] * item["mask"]).any()
        assert item["mask"].sum() > 0
    # The truncated JPEG was met while sampling: counted, replaced by another photo, no crash.
    assert ds.skipped == 3
    assert any("i_truncated.jpg" in w and "cannot be decoded" in w for w in ds.warnings)


def test_the_network_input_edges_never_depend_on_the_hole_content() -> None:
    """``known_edges`` is what a fill can feed a network: two photos that differ only inside the hole give the
    same one, while the whole crop's Canny edges (the target) differ, also just outside the hole."""
    from engine.edges import known_edges
    from trainer.data import _item

    photo = np.full((64, 64, 3), 90, np.uint8)
    photo[:, 30:34] = 230  # a bright bar crossing the hole
    mask = np.zeros((64, 64), bool)
    mask[20:44, 16:48] = True
    other = photo.copy()
    other[mask] = 20  # something dark where the bar was
    a, b = (_item(p, canny_edges(to_gray(p), 2.0), mask, 2.0) for p in (photo, other))
    assert torch.equal(a["known_edges"], b["known_edges"])
    assert torch.equal(a["known_edges"][0] > 0, torch.from_numpy(known_edges(other, mask, 2.0)))
    ring = ~mask & (cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)
    assert not torch.equal(a["edges"][0][torch.from_numpy(ring)], b["edges"][0][torch.from_numpy(ring)])


def test_gray_and_edges_match_engine_edges(odd_folder):
    ds = PhotoDataset(odd_folder, SIZE, _masks(), edge_sigma=1.0)
    item = ds[0]
    rgb = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    gray = to_gray(rgb)
    np.testing.assert_array_equal((item["gray"][0].numpy() * 255).round().astype(np.uint8), gray)
    np.testing.assert_array_equal(item["edges"][0].numpy() > 0.5, canny_edges(gray, 1.0))


def test_empty_and_unreadable_folders_raise_clear_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no photos \(.*\) found in .*empty"):
        PhotoDataset(empty, SIZE, _masks())
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_text("text")
    Image.fromarray(_photo(64, 64)).save(broken / "b.jpg")
    (broken / "b.jpg").write_bytes((broken / "b.jpg").read_bytes()[:300])
    with pytest.raises(DataError, match=r"none of the 2 image file\(s\) in .*broken could be read"):
        PhotoDataset(broken, SIZE, _masks())
    with pytest.raises(DataError, match="photo folder not found"):
        PhotoDataset(tmp_path / "nope", SIZE, _masks())
    assert issubclass(DataError, EngineError)


def test_deterministic_per_seed_epoch_index(odd_folder):
    a = PhotoDataset(odd_folder, SIZE, _masks(), seed=7)
    b = PhotoDataset(find_images(odd_folder), SIZE, _masks(), seed=7)
    order = [5, 1, 3, 0]
    first = {i: a[i] for i in order}
    second = {i: b[i] for i in reversed(order)}  # other order, other instance (as another worker)
    for i in order:
        for key in first[i]:
            torch.testing.assert_close(first[i][key], second[i][key], rtol=0, atol=0)
    b.set_epoch(1)
    assert not torch.equal(b[1]["mask"], first[1]["mask"])
    c = PhotoDataset(odd_folder, SIZE, _masks(), seed=8)
    assert not torch.equal(c[1]["mask"], first[1]["mask"])


def test_random_resize_crop_and_flip(tmp_path):
    # A photo much larger than SIZE: crops show different parts and some are mirrored.
    Image.fromarray(_photo(128, 192, 11)).save(tmp_path / "big.png")
    ds = PhotoDataset(tmp_path, SIZE, _masks(), seed=1)
    means = []
    for epoch in range(12):
        ds.set_epoch(epoch)
        image = ds[0]["image"]
        means.append((image[0].mean().item(), image[0, :, -1].mean().item() - image[0, :, 0].mean().item()))
    # Red channel grows left to right in the photo: flipped crops have it falling.
    assert any(d > 0 for _, d in means) and any(d < 0 for _, d in means)
    assert np.std([m for m, _ in means]) > 0.02  # different positions


def test_no_augment_is_scaled_centre_crop(tmp_path):
    photo = _photo(40, 80, 12)
    Image.fromarray(photo).save(tmp_path / "wide.png")
    ds = PhotoDataset(tmp_path, 20, _masks(), augment=False)
    expected = cv2.resize(photo[:, 20:60], (20, 20), interpolation=cv2.INTER_AREA)
    got = (ds[0]["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(got, expected)


def test_tiny_photo_upscaled(odd_folder):
    ds = PhotoDataset([odd_folder / "sub" / "deeper" / "g_tiny.png"], 64, _masks())
    assert ds[0]["image"].shape == (3, 64, 64)


def test_boundary_maps_replace_canny_and_follow_crop_and_flip(tmp_path):
    photos, bounds = tmp_path / "photos", tmp_path / "bounds"
    photos.mkdir()
    bounds.mkdir()
    h, w = 48, 64
    img = np.full((h, w, 3), 40, np.uint8)
    rng = np.random.default_rng(0)
    dots = rng.random((h, w)) < 0.05
    img[dots] = 250  # bright dots: the "boundaries" sit exactly on them
    Image.fromarray(img).save(photos / "p.png")
    Image.fromarray(_photo(h, w)).save(photos / "q.png")  # no map: Canny
    Image.fromarray(np.where(dots, 255, 0).astype(np.uint8)).save(bounds / "p.png")
    ds = PhotoDataset(photos, 48, _masks(), boundaries_dir=bounds, seed=2, max_scale=1.0)
    for epoch in range(6):
        ds.set_epoch(epoch)
        item = ds[0]
        bright = item["image"][0] > 0.5
        torch.testing.assert_close(item["edges"][0], bright.float())
    q = ds[1]
    gray = (q["gray"][0].numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(q["edges"][0].numpy() > 0.5, canny_edges(gray, 2.0))


def test_boundary_threshold_and_size_mismatch(tmp_path):
    photos, bounds = tmp_path / "photos", tmp_path / "bounds"
    photos.mkdir()
    bounds.mkdir()
    Image.fromarray(_photo(32, 32)).save(photos / "p.png")
    share = np.zeros((32, 32), np.uint8)
    share[5, :] = 51  # 1 of 5 annotators
    share[20, :] = 153  # 3 of 5
    Image.fromarray(share).save(bounds / "p.png")
    low = PhotoDataset(photos, 32, _masks(), boundaries_dir=bounds, augment=False, boundary_threshold=0.2)[0]
    high = PhotoDataset(photos, 32, _masks(), boundaries_dir=bounds, augment=False, boundary_threshold=0.5)[0]
    assert low["edges"][0].sum(dim=1).nonzero().flatten().tolist() == [5, 20]
    assert high["edges"][0].sum(dim=1).nonzero().flatten().tolist() == [20]
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(bounds / "p.png")
    ds = PhotoDataset(photos, 32, _masks(), boundaries_dir=bounds, augment=False)
    ds[0]
    ds[0]
    assert ds.bad_boundaries == {bounds / "p.png"}
    assert sum("using Canny edges" in w for w in ds.warnings) == 1
    with pytest.raises(DataError, match="boundary map folder not found"):
        PhotoDataset(photos, 32, _masks(), boundaries_dir=tmp_path / "nope")


def test_mask_generator_errors_are_not_blamed_on_photos(odd_folder):
    def broken_masks(h, w, rng):
        raise RuntimeError("mask bug")

    ds = PhotoDataset(odd_folder, SIZE, broken_masks)
    with pytest.raises(RuntimeError, match="mask bug"):
        ds[0]
    assert ds.skipped == 2  # only the header failures found when building


def test_bad_sigma():
    with pytest.raises(ValueError, match="edge_sigma"):
        PhotoDataset([Path("x.png")], SIZE, _masks(), edge_sigma=(3.0, 1.0))


def test_sigma_range_varies_edges(tmp_path):
    Image.fromarray(_photo(64, 64, 3)).save(tmp_path / "p.png")
    ds = PhotoDataset(tmp_path, 64, _masks(), edge_sigma=(0.5, 4.0), augment=False)
    counts = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        counts.add(int(ds[0]["edges"].sum()))
    assert len(counts) > 2


def test_validation_set_fixed(odd_folder):
    masks_called = []

    def masks(name, h, w):
        masks_called.append(name)
        rng = np.random.default_rng(len(name))
        return {"one": rng.random((h, w)) < 0.3, "two": np.eye(h, w, dtype=bool)}

    a = ValidationSet(odd_folder, SIZE, count=4, masks=masks)
    b = ValidationSet(odd_folder, SIZE, count=4, masks=masks)
    assert a.names == ["a_rgb", "b_gray", "c_cmyk", "h_alpha"]
    assert len(a) == 8 and a.buckets == ["one", "two"]
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert x["bucket"] == y["bucket"] and x["name"] == y["name"]
        for key in ("image", "gray", "edges", "mask"):
            assert torch.equal(x[key], y[key])
            assert x[key].shape[-2:] == (SIZE, SIZE)
    assert a[0]["bucket"] == "one" and a[1]["bucket"] == "two"


def test_training_crops_follow_the_configured_scale_range(tmp_path):
    from trainer.config import TrainConfig
    from trainer.inputs import training_dataset

    folder = tmp_path / "one"
    folder.mkdir()
    ramp = np.repeat(np.linspace(0, 255, 200).astype(np.uint8)[None, :, None], 200, axis=0).repeat(3, axis=2)
    Image.fromarray(ramp).save(folder / "ramp.png")  # left to right, black to white
    config = TrainConfig()
    config.data.train_dir, config.data.size = str(folder), SIZE

    def mean_span(max_scale: float) -> float:
        """Mean brightness range across a crop: the share of the photo's width the crop shows."""
        config.data.max_scale = max_scale
        dataset = training_dataset(config, [folder / "ramp.png"])
        assert dataset.max_scale == max_scale
        rows = [dataset[i]["image"][0, SIZE // 2] for i in range(30)]
        return float(np.mean([(r.max() - r.min()).item() for r in rows]))

    assert mean_span(1.0) > 0.95  # the whole photo, shrunk
    assert mean_span(6.0) < 0.6  # a part of it, between 1/6 and all of its width: about 0.36 on average


def test_validation_items_blur_the_low_band_as_the_eval_blurs_the_full_photo(odd_folder):
    from engine.metrics import LOWBAND_SIGMA

    val = ValidationSet(odd_folder, SIZE, count=2, masks=lambda name, h, w: {"one": np.zeros((h, w), bool)})
    assert val.names == ["a_rgb", "b_gray"]  # 60 x 80 and 50 x 70 photos, shrunk to SIZE
    assert val[0]["lowband_sigma"] == pytest.approx(LOWBAND_SIGMA * SIZE / 60)
    assert val[1]["lowband_sigma"] == pytest.approx(LOWBAND_SIGMA * SIZE / 50)


def test_validation_set_default_masks_skip_broken(odd_folder):
    val = ValidationSet(odd_folder, SIZE, count=20)
    assert len(val.names) == 8  # every readable photo; the truncated one skipped
    assert "i_truncated" not in val.names and val.skipped == 3
    assert {"rectangle 25-45%", "free-form"} <= set(val.buckets)
    again = ValidationSet(odd_folder, SIZE, count=20)
    assert all(torch.equal(val[i]["mask"], again[i]["mask"]) for i in range(len(val)))


def _internal_case():
    h, w = 96, 128
    photo = np.zeros((h, w, 3), np.uint8)
    photo[..., 1] = np.linspace(40, 200, w, dtype=np.uint8)[None, :]
    photo[..., 2] = 60
    user = np.zeros((h, w), bool)
    user[30:60, 50:90] = True
    photo[user] = (255, 0, 0)  # the object to remove: pure red, found nowhere else
    return photo, user


def test_internal_dataset_never_targets_user_hole():
    photo, user = _internal_case()
    ds = InternalPhotoDataset(photo, user, 48, _masks(), seed=4, length=40, max_user_fraction=1.0)
    saw_user = 0
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"image", "gray", "edges", "known_edges", "mask", "valid"}
        valid, mask, image = item["valid"][0] > 0.5, item["mask"][0] > 0.5, item["image"]
        # Every unknown pixel is part of the network's hole.
        assert bool(mask[~valid].all())
        # No red (object) colour anywhere a loss could look, nor anywhere at all.
        red = (image[0] > 0.8) & (image[1] < 0.2)
        assert not bool(red.any())
        saw_user += int((~valid).any())
        # Synthetic holes exist on known pixels.
        assert (mask & valid).float().mean() > 0.0
    assert saw_user > 0  # with max_user_fraction=1 some crops do overlap the user's hole


def test_internal_dataset_avoids_user_hole_and_is_deterministic():
    photo, user = _internal_case()
    ds = InternalPhotoDataset(photo, user, 32, _masks(), seed=5, length=30)
    overlaps = [1 - ds[i]["valid"].mean().item() for i in range(len(ds))]
    assert np.mean(overlaps) < 0.03
    other = InternalPhotoDataset(photo, user, 32, _masks(), seed=5, length=30)
    for i in (0, 7, 29):
        for key in ("image", "mask", "valid", "edges"):
            assert torch.equal(ds[i][key], other[i][key])


def test_internal_dataset_bad_inputs():
    photo, user = _internal_case()
    with pytest.raises(DataError, match="whole photo is masked"):
        InternalPhotoDataset(photo, np.ones_like(user), 32, _masks())
    with pytest.raises(ValueError, match="user_mask"):
        InternalPhotoDataset(photo, user[:10], 32, _masks())


def test_internal_dataset_windows_set_the_crop_scale():
    """A photo whose red channel counts columns: the span of red values in a crop is the window's width."""
    h, w = 120, 240
    photo = np.zeros((h, w, 3), np.uint8)
    photo[..., 0] = np.arange(w, dtype=np.uint8)[None, :]
    user = np.zeros((h, w), bool)
    user[:8, :8] = True

    def spans(windows):
        ds = InternalPhotoDataset(photo, user, 32, _masks(), seed=3, length=12, windows=windows)
        red = [ds[i]["image"][0] * 255 for i in range(len(ds))]
        return [float(r.max() - r.min()) + 1 for r in red]

    assert all(30 <= s <= 34 for s in spans((32, 32)))  # the photo's own resolution
    assert all(56 <= s <= 66 for s in spans((60, 64)))  # about half of it
    default = spans(None)  # from 32 px up to the short side (120 px)
    assert min(default) >= 30 and max(default) > 100 and np.std(default) > 15
    with pytest.raises(ValueError, match="windows"):
        InternalPhotoDataset(photo, user, 32, _masks(), windows=(80, 40))


def test_internal_dataset_small_photo_upscaled():
    photo, user = _internal_case()
    small = cv2.resize(photo, (40, 30), interpolation=cv2.INTER_NEAREST)
    small_user = cv2.resize(user.astype(np.uint8), (40, 30), interpolation=cv2.INTER_NEAREST) > 0
    item = InternalPhotoDataset(small, small_user, 64, _masks(), length=3)[0]
    assert item["image"].shape == (3, 64, 64) and item["valid"].shape == (1, 64, 64)


def test_works_with_dataloader_workers(odd_folder):
    ds = PhotoDataset(odd_folder, SIZE, _masks(), seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    assert batches[0]["image"].shape == (3, 3, SIZE, SIZE)
    single = [ds[i] for i in range(3)]
    for j in range(3):
        assert torch.equal(batches[0]["mask"][j], single[j]["mask"])
