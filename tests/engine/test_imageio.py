"""engine.imageio: formats, orientation, metadata, alpha, 16-bit, bad input, atomic saves, masks, sketches."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps

from engine import imageio, imageio_read, imageio_save
from engine.errors import ImageFileError
from engine.imageio import (
    SUPPORTED_EXTENSIONS,
    find_images,
    load_image,
    load_mask,
    load_sketch,
    save_image,
    save_mask,
    save_sketch,
    suggest_output_path,
)

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
LOSSLESS = (".png", ".tif", ".tiff", ".bmp")


def smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like image (smooth gradients plus mild noise) that lossy codecs keep close."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 200 / max(w, 1), y * 200 / max(h, 1), (x + y) * 100 / max(w + h, 1)], axis=2)
    return np.clip(base + 30 + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)


def noise(shape: tuple[int, ...], seed: int = 0, dtype: type = np.uint8) -> np.ndarray:
    top = 65536 if dtype == np.uint16 else 256
    return np.random.default_rng(seed).integers(0, top, shape).astype(dtype)


def camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2021:02:03 04:05:06"
    return exif


def read_exif(path: Path) -> Image.Exif:
    with Image.open(path) as im:
        exif = im.getexif()
        exif.get_ifd(0x8769)
        return exif


# ------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", SUPPORTED_EXTENSIONS)
@pytest.mark.parametrize("size", [(1, 1), (13, 7), (31, 17)])
def test_round_trip_every_format_and_odd_sizes(tmp_path: Path, ext: str, size: tuple[int, int]) -> None:
    h, w = size
    rgb = smooth_rgb(h, w)
    path = tmp_path / f"image{ext}"
    save_image(path, rgb)
    loaded = load_image(path)
    assert loaded.rgb.shape == (h, w, 3) and loaded.rgb.dtype == np.uint8
    assert loaded.format == imageio.format_for_path(path)
    assert loaded.bit_depth == 8 and loaded.alpha is None and loaded.path == path
    if ext in LOSSLESS:
        assert np.array_equal(loaded.rgb, rgb)
    elif h * w > 1:
        assert np.abs(loaded.rgb.astype(int) - rgb).mean() < 4


def test_unknown_extension_names_it(tmp_path: Path) -> None:
    with pytest.raises(ImageFileError, match=r"'\.gif'"):
        save_image(tmp_path / "x.gif", smooth_rgb(4, 4))
    with pytest.raises(ImageFileError, match="no file extension"):
        save_image(tmp_path / "noext", smooth_rgb(4, 4))
    assert not list(tmp_path.iterdir())


def test_uppercase_extension_and_jpeg_defaults(tmp_path: Path) -> None:
    path = tmp_path / "PHOTO.JPG"
    save_image(path, smooth_rgb(16, 16))
    with Image.open(path) as im:
        assert im.format == "JPEG"
        assert im.layer[0][1:3] == im.layer[1][1:3] == (1, 1)  # 4:4:4, no chroma subsampling


# ---------------------------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_like_exif_transpose(tmp_path: Path, orientation: int) -> None:
    stored = noise((5, 8, 3), seed=orientation)
    path = tmp_path / "o.png"
    Image.fromarray(stored).save(path, exif=camera_exif(orientation))
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    loaded = load_image(path)
    assert loaded.orientation == orientation
    assert np.array_equal(loaded.rgb, expected)
    out = tmp_path / "saved.png"
    save_image(out, loaded.rgb, like=loaded)
    assert read_exif(out)[0x0112] == 1
    again = load_image(out)
    assert again.orientation == 1 and np.array_equal(again.rgb, expected)


@pytest.mark.parametrize("ext", [".jpg", ".tif", ".webp"])
def test_orientation_rotated_once_in_other_formats(tmp_path: Path, ext: str) -> None:
    stored = smooth_rgb(10, 16)
    path = tmp_path / f"o{ext}"
    Image.fromarray(stored).save(path, exif=camera_exif(6), **({"quality": 100} if ext != ".tif" else {}))
    loaded = load_image(path)
    assert loaded.rgb.shape == (16, 10, 3)
    assert np.abs(loaded.rgb.astype(int) - np.rot90(stored, -1)).mean() < 4
    out = tmp_path / f"saved{ext}"
    save_image(out, loaded.rgb, like=loaded)
    assert read_exif(out).get(0x0112, 1) == 1
    assert load_image(out).rgb.shape == (16, 10, 3)


# ------------------------------------------------------------------------------------------------ metadata


def exif_with_thumbnail(thumbnail: bytes, big_endian: bool) -> bytes:
    """EXIF by hand: IFD0 = {Orientation: 6}, IFD1 = a JPEG thumbnail at the end of the block."""
    o = ">" if big_endian else "<"
    head = b"MM\x00*" if big_endian else b"II*\x00"
    ifd0 = struct.pack(o + "H", 1) + struct.pack(o + "HHIH2x", 0x0112, 3, 1, 6) + struct.pack(o + "I", 26)
    ifd1 = struct.pack(o + "H", 2) + struct.pack(o + "HHII", 513, 4, 1, 56) + struct.pack(o + "HHII", 514, 4, 1,
                                                                                        len(thumbnail))
    return b"Exif\x00\x00" + head + struct.pack(o + "I", 8) + ifd0 + ifd1 + struct.pack(o + "I", 0) + thumbnail


@pytest.mark.parametrize("big_endian", [False, True])
def test_exif_thumbnail_of_the_original_is_not_carried(tmp_path: Path, big_endian: bool) -> None:
    thumb_io = tmp_path / "thumb.jpg"
    Image.fromarray(noise((8, 8, 3), seed=17)).save(thumb_io)
    thumbnail = thumb_io.read_bytes()
    src = tmp_path / "camera.jpg"
    Image.fromarray(smooth_rgb(6, 10)).save(src, exif=exif_with_thumbnail(thumbnail, big_endian))
    with Image.open(src) as im:
        assert im.getexif().get_ifd(ExifTags.IFD.IFD1) and im.getexif()[0x0112] == 6  # the fixture really has both
    loaded = load_image(src)
    assert loaded.rgb.shape == (10, 6, 3)
    out = tmp_path / "out.jpg"
    save_image(out, loaded.rgb, like=loaded)
    assert thumbnail[20:200] not in out.read_bytes()
    exif = read_exif(out)
    assert exif[0x0112] == 1 and not exif.get_ifd(ExifTags.IFD.IFD1)


def test_16_to_8_bit_rounds_to_nearest() -> None:
    values = np.arange(65536, dtype=np.uint16)
    assert np.array_equal(imageio_read.to_8bit(values), np.round(values / 257).astype(np.uint8))
    assert np.array_equal(imageio_read.to_8bit(values[::257]), np.arange(256))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif"])
def test_exif_and_icc_carried_over(tmp_path: Path, ext: str) -> None:
    src = tmp_path / "camera.jpg"
    Image.fromarray(smooth_rgb(12, 9)).save(src, exif=camera_exif(1), icc_profile=SRGB_ICC, dpi=(300, 300))
    loaded = load_image(src)
    assert loaded.icc == SRGB_ICC and loaded.exif is not None
    out = tmp_path / f"out{ext}"
    save_image(out, loaded.rgb, like=loaded)
    exif = read_exif(out)
    assert exif[0x010F] == "TestCam"
    assert exif.get_ifd(0x8769)[0x9003] == "2021:02:03 04:05:06"
    assert load_image(out).icc == SRGB_ICC
    if ext in (".png", ".jpg", ".tif"):
        assert load_image(out).dpi == pytest.approx((300, 300), abs=0.1)


def test_bmp_save_with_metadata_source_writes_plain_bmp(tmp_path: Path) -> None:
    src = tmp_path / "camera.jpg"
    Image.fromarray(smooth_rgb(6, 6)).save(src, exif=camera_exif(1), icc_profile=SRGB_ICC)
    loaded = load_image(src)
    save_image(tmp_path / "out.bmp", loaded.rgb, like=loaded)
    assert np.array_equal(load_image(tmp_path / "out.bmp").rgb, loaded.rgb)


def test_tiff_source_exif_keeps_descriptive_tags_only(tmp_path: Path) -> None:
    src = tmp_path / "scan.tif"
    Image.fromarray(smooth_rgb(6, 5)).save(src, exif=camera_exif(1), icc_profile=SRGB_ICC)
    loaded = load_image(src)
    exif = Image.Exif()
    exif.load(loaded.exif)
    assert exif[0x010F] == "TestCam"
    assert not {256, 257, 273, 279, 34675} & set(exif)
    save_image(tmp_path / "out.jpg", loaded.rgb, like=loaded)
    assert read_exif(tmp_path / "out.jpg")[0x010F] == "TestCam"


# --------------------------------------------------------------------------------------------------- alpha


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp"])
def test_alpha_passes_through_exactly(tmp_path: Path, ext: str) -> None:
    rgba = np.dstack([smooth_rgb(11, 13), noise((11, 13), seed=3)])
    src = tmp_path / "a.png"
    Image.fromarray(rgba).save(src)
    loaded = load_image(src)
    assert np.array_equal(loaded.alpha, rgba[..., 3]) and np.array_equal(loaded.rgb, rgba[..., :3])
    out = tmp_path / f"out{ext}"
    filled = loaded.rgb.copy()
    filled[2:5, 2:5] = 0
    save_image(out, filled, like=loaded)
    again = load_image(out)
    assert np.array_equal(again.alpha, rgba[..., 3])
    if ext != ".webp":
        assert np.array_equal(again.rgb, filled)


@pytest.mark.parametrize("ext", [".jpg", ".bmp"])
def test_alpha_dropped_without_compositing_where_format_has_none(tmp_path: Path, ext: str) -> None:
    rgba = np.dstack([smooth_rgb(8, 8), np.zeros((8, 8), np.uint8)])  # fully transparent
    src = tmp_path / "a.png"
    Image.fromarray(rgba).save(src)
    loaded = load_image(src)
    save_image(tmp_path / f"out{ext}", loaded.rgb, like=loaded)
    again = load_image(tmp_path / f"out{ext}")
    assert again.alpha is None
    assert np.abs(again.rgb.astype(int) - rgba[..., :3]).mean() < 4  # RGB as is, not blended to black/white


# -------------------------------------------------------------------------------------------------- 16-bit


def fill_box(loaded: imageio.LoadedImage) -> tuple[np.ndarray, np.ndarray]:
    changed = np.zeros(loaded.rgb.shape[:2], bool)
    changed[2:5, 3:7] = True
    filled = loaded.rgb.copy()
    filled[changed] = (10, 200, 77)
    return filled, changed


@pytest.mark.parametrize("src_ext", [".png", ".tif"])
@pytest.mark.parametrize("out_ext", [".png", ".tif"])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_16bit_colour_keeps_untouched_pixels_exact(tmp_path: Path, src_ext: str, out_ext: str,
                                                    with_alpha: bool) -> None:
    rgb16 = noise((9, 11, 3), seed=1, dtype=np.uint16)
    alpha16 = noise((9, 11), seed=2, dtype=np.uint16)
    bgr = rgb16[..., ::-1]
    src = tmp_path / f"deep{src_ext}"
    cv2.imwrite(str(src), np.dstack([bgr, alpha16]) if with_alpha else bgr)
    loaded = load_image(src)
    assert loaded.bit_depth == 16 and np.array_equal(loaded.rgb16, rgb16)
    assert np.array_equal(loaded.rgb, np.round(rgb16 / 257).astype(np.uint8))
    if with_alpha:
        assert loaded.alpha is not None and loaded.alpha.dtype == np.uint16
        assert np.array_equal(loaded.alpha, alpha16)
    filled, changed = fill_box(loaded)
    out = tmp_path / f"out{out_ext}"
    save_image(out, filled, like=loaded, changed=changed)
    raw = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    again = load_image(out)
    assert again.bit_depth == 16
    assert np.array_equal(again.rgb16[~changed], rgb16[~changed])
    assert np.array_equal(again.rgb16[changed], filled[changed].astype(np.uint16) * 257)
    if with_alpha:
        assert np.array_equal(again.alpha, alpha16)


def test_16bit_without_changed_uses_where_rgb_differs(tmp_path: Path) -> None:
    rgb16 = noise((7, 13, 3), seed=5, dtype=np.uint16)
    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), rgb16[..., ::-1])
    loaded = load_image(src)
    filled, changed = fill_box(loaded)
    save_image(tmp_path / "out.png", filled, like=loaded)
    again = load_image(tmp_path / "out.png")
    assert np.array_equal(again.rgb16[~changed], rgb16[~changed])
    assert np.array_equal(again.rgb16[changed], filled[changed].astype(np.uint16) * 257)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_gray_round_trip_stays_gray_and_exact(tmp_path: Path, ext: str) -> None:
    gray16 = noise((10, 7), seed=4, dtype=np.uint16)
    src = tmp_path / f"gray{ext}"
    Image.fromarray(gray16).save(src)
    loaded = load_image(src)
    assert loaded.gray and loaded.bit_depth == 16 and np.array_equal(loaded.rgb16, gray16)
    filled, changed = fill_box(loaded)
    filled[changed] = 90
    save_image(tmp_path / f"out{ext}", filled, like=loaded, changed=changed)
    again = load_image(tmp_path / f"out{ext}")
    assert again.gray and again.bit_depth == 16
    assert np.array_equal(again.rgb16[~changed], gray16[~changed])
    assert np.all(again.rgb16[changed] == 90 * 257)


def test_16bit_gray_alpha_png(tmp_path: Path) -> None:
    gray16, alpha16 = noise((6, 9), seed=6, dtype=np.uint16), noise((6, 9), seed=7, dtype=np.uint16)
    src = tmp_path / "ga.png"
    with open(src, "wb") as f:
        imageio_save.write_png16(f, np.dstack([gray16, alpha16]), None, None)
    loaded = load_image(src)
    assert loaded.gray and loaded.bit_depth == 16
    assert np.array_equal(loaded.rgb16, gray16) and np.array_equal(loaded.alpha, alpha16)
    save_image(tmp_path / "out.png", loaded.rgb, like=loaded)
    again = load_image(tmp_path / "out.png")
    assert np.array_equal(again.rgb16, gray16) and np.array_equal(again.alpha, alpha16)


def test_16bit_source_saved_as_jpeg_is_8bit(tmp_path: Path) -> None:
    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), noise((8, 8, 3), dtype=np.uint16))
    loaded = load_image(src)
    save_image(tmp_path / "out.jpg", loaded.rgb, like=loaded)
    assert load_image(tmp_path / "out.jpg").bit_depth == 8


def test_16bit_png_with_orientation(tmp_path: Path) -> None:
    stored = noise((4, 6, 3), seed=8, dtype=np.uint16)
    src = tmp_path / "deep.png"
    with open(src, "wb") as f:
        imageio_save.write_png16(f, stored, None, camera_exif(8).tobytes())
    loaded = load_image(src)
    assert loaded.bit_depth == 16 and np.array_equal(loaded.rgb16, np.rot90(stored, 1))


def test_16bit_tiff_with_orientation(tmp_path: Path) -> None:
    stored = noise((4, 6, 3), seed=15, dtype=np.uint16)
    src = tmp_path / "deep.tif"
    with open(src, "wb") as f:
        imageio_save.write_tiff(f, stored, None, None)
    data = bytearray(src.read_bytes())
    (count,) = struct.unpack("<H", data[8:10])
    for entry in range(10, 10 + 12 * count, 12):
        if struct.unpack("<H", data[entry:entry + 2])[0] == 0x0112:
            data[entry + 8:entry + 10] = struct.pack("<H", 6)
    src.write_bytes(bytes(data))
    loaded = load_image(src)
    assert loaded.orientation == 6 and loaded.bit_depth == 16
    assert np.array_equal(loaded.rgb16, np.rot90(stored, -1))


def test_16bit_falls_back_to_8bit_when_exact_decode_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rgb16 = noise((5, 5, 3), seed=16, dtype=np.uint16)
    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), rgb16[..., ::-1])
    monkeypatch.setattr(imageio_read.cv2, "imdecode", lambda *args: None)
    loaded = load_image(src)
    assert loaded.bit_depth == 8 and loaded.rgb16 is None and loaded.notes
    assert np.array_equal(loaded.rgb, (rgb16 >> 8).astype(np.uint8))


# ------------------------------------------------------------------------------------ colour modes on load


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "I;16"])
def test_loaded_arrays_are_writable(tmp_path: Path, mode: str) -> None:
    shape = {"RGB": (3, 4, 3), "RGBA": (3, 4, 4), "L": (3, 4), "I;16": (3, 4)}[mode]
    Image.fromarray(noise(shape, dtype=np.uint16 if mode == "I;16" else np.uint8)).save(tmp_path / "w.png")
    loaded = load_image(tmp_path / "w.png")
    for array in (loaded.rgb, loaded.alpha, loaded.rgb16):
        assert array is None or (array.flags.writeable and array.flags.c_contiguous)


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_images(tmp_path: Path, transparent: bool) -> None:
    rgb = smooth_rgb(9, 10)
    pal = Image.fromarray(rgb).quantize(16)
    path = tmp_path / "p.png"
    pal.save(path, **({"transparency": 0} if transparent else {}))
    loaded = load_image(path)
    with Image.open(path) as im:
        expected = np.asarray(im.convert("RGBA"))
    assert np.array_equal(loaded.rgb, expected[..., :3])
    if transparent:
        assert loaded.alpha is not None and np.array_equal(loaded.alpha, expected[..., 3])
        assert (loaded.alpha == 0).any()
    else:
        assert loaded.alpha is None


@pytest.mark.parametrize("mode", ["L", "LA", "1"])
def test_grayscale_and_bilevel_load_and_stay_gray(tmp_path: Path, mode: str) -> None:
    gray = noise((7, 11), seed=9)
    im = Image.fromarray(gray)
    if mode == "LA":
        im = Image.merge("LA", [im, Image.fromarray(noise((7, 11), seed=10))])
    elif mode == "1":
        im = im.convert("1")
    path = tmp_path / "g.png"
    im.save(path)
    loaded = load_image(path)
    expected = np.asarray(im.convert("L"))
    assert loaded.gray and np.array_equal(loaded.rgb, np.repeat(expected[..., None], 3, axis=2))
    assert (loaded.alpha is not None) == (mode == "LA")
    save_image(tmp_path / "out.png", loaded.rgb, like=loaded)
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == ("LA" if mode == "LA" else "L")
        assert np.array_equal(np.asarray(out.convert("L")), expected)


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_cmyk_loads_as_rgb(tmp_path: Path, ext: str) -> None:
    cmyk = Image.fromarray(noise((6, 5, 4), seed=11), mode="CMYK")
    path = tmp_path / f"c{ext}"
    cmyk.save(path)
    with Image.open(path) as im:
        expected = np.asarray(im.convert("RGB"))
    loaded = load_image(path)
    assert loaded.rgb.shape == (6, 5, 3) and np.array_equal(loaded.rgb, expected)
    assert loaded.icc is None and any("CMYK" in n for n in loaded.notes)


def test_cmyk_with_unusable_profile_falls_back_to_plain_conversion(tmp_path: Path) -> None:
    cmyk = Image.fromarray(noise((5, 5, 4), seed=12), mode="CMYK")
    path = tmp_path / "c.jpg"
    cmyk.save(path, icc_profile=SRGB_ICC)  # an RGB profile cannot convert CMYK data
    loaded = load_image(path)
    with Image.open(path) as im:
        assert np.array_equal(loaded.rgb, np.asarray(im.convert("RGB")))
    assert loaded.icc is None


# ---------------------------------------------------------------------------------------------- bad inputs


def good_png(path: Path, h: int = 20, w: int = 20) -> Path:
    Image.fromarray(smooth_rgb(h, w)).save(path)
    return path


def png_with_declared_size(path: Path, w: int, h: int) -> Path:
    """A PNG whose header claims ``w`` x ``h`` but whose data is tiny."""
    data = bytearray(good_png(path, 4, 4).read_bytes())
    ihdr = struct.pack(">II", w, h) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    jpeg = tmp / "cut.jpg"
    Image.fromarray(smooth_rgb(64, 64)).save(jpeg)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    png = good_png(tmp / "cut.png", 64, 64)
    png.write_bytes(png.read_bytes()[:-60])
    (tmp / "empty.png").write_bytes(b"")
    (tmp / "notes.png").write_text("these are my notes, not a picture\n")
    (tmp / "random.png").write_bytes(noise((300,), seed=1).tobytes())
    Image.fromarray(smooth_rgb(5, 5)).save(tmp / "anim.png", format="GIF")
    (tmp / "folder.png").mkdir()
    return {
        "missing": (tmp / "nope.png", "does not exist"),
        "empty": (tmp / "empty.png", r"empty \(0 bytes\)"),
        "truncated jpeg": (jpeg, "truncated or damaged"),
        "truncated png": (png, "truncated or damaged"),
        "text": (tmp / "notes.png", "text file, not an image"),
        "garbage": (tmp / "random.png", "not an image file"),
        "unsupported": (tmp / "anim.png", "GIF images are not supported"),
        "folder": (tmp / "folder.png", "is a folder"),
        "too large": (png_with_declared_size(tmp / "huge.png", 20000, 15000), "over the limit of 200 megapixels"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "truncated jpeg", "truncated png", "text", "garbage",
                                  "unsupported", "folder", "too large"])
def test_bad_input_gets_clear_message(tmp_path: Path, case: str) -> None:
    path, message = bad_inputs(tmp_path)[case]
    with pytest.raises(ImageFileError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_pixel_limit_is_ours_and_checked_before_decoding(tmp_path: Path) -> None:
    saved_limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may escape
        # 150 MP: over Pillow's warning threshold, under ours, so it gets as far as decoding the missing data
        with pytest.raises(ImageFileError, match="truncated or damaged") as info:
            load_image(png_with_declared_size(tmp_path / "big.png", 15000, 10000))
        assert "bomb" not in str(info.value)
        with pytest.raises(ImageFileError, match=r"40 x 50 pixels .* limit of 0.001 megapixels"):
            load_image(good_png(tmp_path / "small.png", 50, 40), max_pixels=1000)
    assert saved_limit == Image.MAX_IMAGE_PIXELS
    assert load_image(tmp_path / "small.png", max_pixels=2000).rgb.shape == (50, 40, 3)


def test_masks_and_sketches_report_bad_files_too(tmp_path: Path) -> None:
    with pytest.raises(ImageFileError, match="does not exist"):
        load_mask(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageFileError, match="empty"):
        load_sketch(tmp_path / "empty.png")


# ----------------------------------------------------------------------------------------- atomic writes


def test_failed_pillow_save_leaves_old_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = good_png(tmp_path / "photo.png")
    before = target.read_bytes()

    def broken_encoder(im: Image.Image, fp, filename) -> None:
        fp.write(b"\x89PNG partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setitem(Image.SAVE, "PNG", broken_encoder)
    with pytest.raises(ImageFileError, match=r"photo\.png"):
        save_image(target, smooth_rgb(20, 20, seed=9))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_failed_16bit_save_leaves_old_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   ext: str) -> None:
    src = tmp_path / f"deep{ext}"
    cv2.imwrite(str(src), noise((6, 6, 3), dtype=np.uint16))
    loaded = load_image(src)
    before = src.read_bytes()

    def broken(out, *args) -> None:
        out.write(b"partial")
        raise ValueError("encoder exploded (simulated)")

    monkeypatch.setattr(imageio_save, "write_png16" if ext == ".png" else "write_tiff", broken)
    with pytest.raises(ImageFileError, match="encoder failed"):
        save_image(src, loaded.rgb, like=loaded)
    assert src.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [src.name]


# ---------------------------------------------------------------------------------------- masks, sketches


def test_mask_white_is_hole_and_round_trips(tmp_path: Path) -> None:
    mask = noise((9, 14), seed=13) > 127
    save_mask(tmp_path / "m.png", mask)
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "L" and set(np.unique(np.asarray(im))) <= {0, 255}
    assert np.array_equal(load_mask(tmp_path / "m.png"), mask)
    with pytest.raises(ImageFileError, match="PNG"):
        save_mask(tmp_path / "m.jpg", mask)


def test_mask_from_colour_image_with_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (255, 255, 255, 255)  # white opaque: hole
    rgba[0, 1] = (255, 255, 255, 0)  # white transparent: not a hole
    rgba[0, 2] = (200, 200, 200, 200)  # light grey, mostly opaque: hole
    rgba[1, 0] = (40, 40, 40, 255)  # dark: not a hole
    rgba[1, 1] = (255, 0, 0, 255)  # red: luminance 76, not a hole
    Image.fromarray(rgba).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").tolist() == [[True, False, True], [False, False, False]]


def test_mask_resized_nearest(tmp_path: Path) -> None:
    mask = np.array([[1, 0, 0], [0, 1, 1]], bool)
    save_mask(tmp_path / "m.png", mask)
    big = load_mask(tmp_path / "m.png", size=(6, 4))  # (width, height)
    assert big.shape == (4, 6) and big.dtype == bool
    assert np.array_equal(big, np.kron(mask, np.ones((2, 2), bool)))
    assert np.array_equal(load_mask(tmp_path / "m.png", size=(3, 2)), mask)
    block = np.kron(noise((5, 7), seed=2) > 127, np.ones((3, 3), np.uint8)).astype(bool)
    save_mask(tmp_path / "b.png", block)
    assert np.array_equal(load_mask(tmp_path / "b.png", size=(7, 5)), block[1::3, 1::3])


def test_sketch_round_trip_and_resize(tmp_path: Path) -> None:
    labels = noise((8, 11), seed=14) % 3
    drawn, erased = labels == 1, labels == 2
    save_sketch(tmp_path / "s.png", drawn, erased)
    got_drawn, got_erased = load_sketch(tmp_path / "s.png")
    assert np.array_equal(got_drawn, drawn) and np.array_equal(got_erased, erased)
    with Image.open(tmp_path / "s.png") as im:
        pixels = np.asarray(im.convert("RGBA"))
    assert (pixels[erased] == (255, 0, 0, 255)).all() and (pixels[drawn] == 255).all()
    assert (pixels[~drawn & ~erased][:, 3] == 0).all()
    big_drawn, big_erased = load_sketch(tmp_path / "s.png", size=(22, 16))
    assert np.array_equal(big_drawn, np.kron(drawn, np.ones((2, 2), bool)))
    assert np.array_equal(big_erased, np.kron(erased, np.ones((2, 2), bool)))


def test_sketch_conventions(tmp_path: Path) -> None:
    both = np.array([[True, False]])
    save_sketch(tmp_path / "s.png", both, both)
    drawn, erased = load_sketch(tmp_path / "s.png")
    assert drawn.tolist() == [[False, False]] and erased.tolist() == [[True, False]]  # erased wins
    rgb = np.array([[[255, 255, 255], [250, 10, 5], [0, 0, 0], [128, 128, 20]]], np.uint8)
    Image.fromarray(rgb).save(tmp_path / "drawn-by-hand.png")  # no alpha: black = model decides
    drawn, erased = load_sketch(tmp_path / "drawn-by-hand.png")
    assert drawn.tolist() == [[True, False, False, False]] and erased.tolist() == [[False, True, False, False]]


# ---------------------------------------------------------------------------------------------------- names


def test_suggest_output_path() -> None:
    assert suggest_output_path(Path("/photos/IMG_1.JPG")) == Path("/photos/IMG_1-inpainted.JPG")
    assert suggest_output_path("a/b.c.tiff") == Path("a/b.c-inpainted.tiff")
    assert suggest_output_path("scan.gif") == Path("scan-inpainted.png")
    assert suggest_output_path("noext") == Path("noext-inpainted.png")
    assert set(SUPPORTED_EXTENSIONS) == {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}


def test_find_images_lists_every_photo_but_hidden_and_excluded_folders(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos_Boundaries").mkdir()
    (tmp_path / ".cache").mkdir()
    for p in ("photos/1.jpg", "photos/2.png", "photos_Boundaries/1.png", ".cache/3.png", "notes.txt"):
        (tmp_path / p).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)] == \
        ["photos/1.jpg", "photos/2.png", "photos_Boundaries/1.png"]  # the engine knows no data set's layout
    assert [p.name for p in find_images(tmp_path, exclude=["*boundaries*"])] == ["1.jpg", "2.png"]  # any case
    assert len(find_images(tmp_path, limit=1)) == 1
    with pytest.raises(ImageFileError, match="photo folder not found"):
        find_images(tmp_path / "missing")


def test_upright_size_reads_the_header_and_applies_the_orientation(tmp_path):
    from PIL import Image

    from engine.imageio import load_image, upright_size

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: stored 40 wide, shown 40 high
    Image.new("RGB", (40, 30), (9, 9, 9)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert upright_size(tmp_path / "r.jpg") == (30, 40) == (load_image(tmp_path / "r.jpg").width, 40)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert upright_size(tmp_path / "bad.png") is None
