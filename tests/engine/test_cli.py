"""The ``inpaint`` command, run in-process through ``main([...])`` plus one real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import cli, cli_fill
from engine.paths import REPO_ROOT


def _photo(h: int = 40, w: int = 52, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, 128 + 60 * np.sin(xx / 3.0)], axis=-1)
    return np.clip(base + rng.normal(0, 10, (h, w, 1)), 0, 255).astype(np.uint8)


def _write(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def _mask(h: int = 40, w: int = 52, box=(10, 12, 25, 30)) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    y0, x0, y1, x1 = box
    m[y0:y1, x0:x1] = 255
    return m


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture()
def files(tmp_path):
    img = _write(tmp_path / "photo.png", _photo())
    mask = _write(tmp_path / "hole.png", _mask())
    return tmp_path, img, mask


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", [[], ["fill"], ["edges"], ["models"], ["bench"], ["eval"]])
def test_help_of_every_command(command, capsys):
    assert cli.main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: inpaint {command[0] if command else ''}".rstrip())
    assert "--device" in out or not command


def test_usage_errors_are_one_line(capsys):
    assert cli.main(["fill", "--threads", "0"]) == 2
    assert "at least 1" in _one_error_line(capsys.readouterr().err)
    assert cli.main(["models", "--threads", "100000"]) == 2  # torch would crash with this many
    assert "the CPU threads of this machine" in _one_error_line(capsys.readouterr().err)
    assert cli.main([]) == 2


def test_a_wrong_combination_of_options_exits_2(files, tmp_path, capsys):
    tmp, img, mask = files
    for args in (["fill", str(img), "-o", str(tmp / "o.png")],  # no --mask
                 ["fill", str(img), "--mask", str(mask), "--input", str(tmp), "-o", str(tmp / "o.png")],
                 ["fill", "--input", str(tmp), "--masks", str(tmp), "--output", str(tmp / "x"), "--edges",
                  str(mask)],
                 ["fill"]):
        assert cli.main(args) == 2, args
        _one_error_line(capsys.readouterr().err)


def test_an_unwritable_output_format_is_refused_before_any_work(files, capsys, monkeypatch):
    tmp, img, mask = files
    monkeypatch.setattr(cli_fill, "make_engine", lambda args: pytest.fail("the fill ran before the format was checked"))
    assert cli.main(["fill", str(img), "--mask", str(mask), "-o", str(tmp / "out.gif")]) == 1
    assert ".gif" in _one_error_line(capsys.readouterr().err)
    assert cli.main(["edges", str(img), "--mask", str(mask), "-o", str(tmp / "edges.gif")]) == 1
    _one_error_line(capsys.readouterr().err)


def test_single_fill_changes_only_the_hole(files, capsys):
    tmp, img, mask = files
    out = tmp / "out.png"
    assert cli.main(["fill", str(img), "--mask", str(mask), "--model", "telea", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    before, after, hole = _read(img), _read(out), _mask() > 0
    np.testing.assert_array_equal(after[~hole], before[~hole])
    assert np.any(after[hole] != before[hole])


def test_single_fill_with_the_default_model_and_a_sketch(files, tiny_models_dir, capsys):
    tmp, img, mask = files
    sketch = np.zeros((40, 52, 3), np.uint8)
    sketch[18, 5:45] = 255  # a drawn line through the hole
    sketch[12:24, 20] = (255, 0, 0)  # an erased stroke
    _write(tmp / "sketch.png", sketch)
    out = tmp / "out.jpg"  # format from the extension
    rc = cli.main(["fill", str(img), "--mask", str(mask), "--edges", str(tmp / "sketch.png"), "-o", str(out),
                   "--device", "cpu", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    assert Image.open(out).format == "JPEG"
    assert _read(out).shape == (40, 52, 3)


def test_size_mismatch_is_a_clear_error(files, capsys):
    tmp, img, _ = files
    small = _write(tmp / "small.png", _mask(30, 30, (5, 5, 10, 10)))
    out = tmp / "out.png"
    assert cli.main(["fill", str(img), "--mask", str(small), "--model", "telea", "-o", str(out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "30x30" in line and "52x40" in line and "same size" in line
    assert not out.exists()


def test_empty_mask_writes_the_image_unchanged_and_says_so(files, capsys):
    tmp, img, _ = files
    empty = _write(tmp / "empty.png", np.zeros((40, 52), np.uint8))
    out = tmp / "out.png"
    assert cli.main(["fill", str(img), "--mask", str(empty), "-o", str(out)]) == 0
    assert "mask is empty" in capsys.readouterr().err
    np.testing.assert_array_equal(_read(out), _read(img))
    # A JPEG is copied as it is, not re-encoded (which would change every pixel a little).
    Image.fromarray(_photo()).save(tmp / "photo.jpg", quality=70)
    assert cli.main(["fill", str(tmp / "photo.jpg"), "--mask", str(empty), "-o", str(tmp / "same.jpg")]) == 0
    assert (tmp / "same.jpg").read_bytes() == (tmp / "photo.jpg").read_bytes()
    # In another format the decoded pixels are written.
    assert cli.main(["fill", str(tmp / "photo.jpg"), "--mask", str(empty), "-o", str(tmp / "same.png")]) == 0
    np.testing.assert_array_equal(_read(tmp / "same.png"), _read(tmp / "photo.jpg"))


@pytest.mark.parametrize("levels", [(0, 1), (0, 255)], ids=["8-bit 0-1", "16-bit 0-255"])
def test_label_masks_with_dark_hole_values_are_understood(files, capsys, levels):
    tmp, img, _ = files
    hole = _mask() > 0
    labels = np.where(hole, levels[1], levels[0])
    path = tmp / "labels.png"
    if levels[1] == 255:  # a 16-bit PNG that holds 8-bit values
        Image.fromarray(labels.astype(np.uint16)).save(path)
    else:
        _write(path, labels.astype(np.uint8))
    out = tmp / "out.png"
    assert cli.main(["fill", str(img), "--mask", str(path), "--model", "telea", "-o", str(out)]) == 0
    assert "mask is empty" not in capsys.readouterr().err
    filled, original = _read(out), _read(img)
    assert (filled[hole] != original[hole]).any() and np.array_equal(filled[~hole], original[~hole])


def test_missing_and_corrupt_inputs_are_one_line_errors(files, capsys):
    tmp, img, mask = files
    (tmp / "bad.png").write_bytes(b"not an image at all")
    for args in (["fill", str(tmp / "nope.png"), "--mask", str(mask), "-o", str(tmp / "o.png")],
                 ["fill", str(tmp / "bad.png"), "--mask", str(mask), "-o", str(tmp / "o.png")],
                 ["fill", str(img), "--mask", str(mask), "--model", "no-such-model", "-o", str(tmp / "o.png")]):
        assert cli.main(args) == 1, args
        _one_error_line(capsys.readouterr().err)
    assert not (tmp / "o.png").exists()



def test_never_overwrites_an_input_or_an_existing_output(files, capsys):
    tmp, img, mask = files
    original = img.read_bytes()
    assert cli.main(["fill", str(img), "--mask", str(mask), "--model", "telea", "-o", str(img)]) == 1
    assert "input" in _one_error_line(capsys.readouterr().err)
    assert cli.main(["fill", str(img), "--mask", str(mask), "--model", "telea", "-o", str(img), "--overwrite"]) == 1
    capsys.readouterr()
    assert img.read_bytes() == original
    out = tmp / "out.png"
    out.write_bytes(b"precious")
    assert cli.main(["fill", str(img), "--mask", str(mask), "--model", "telea", "-o", str(out)]) == 1
    assert "--overwrite" in _one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == b"precious"
    assert cli.main(["fill", str(img), "--mask", str(mask), "--model", "telea", "-o", str(out), "--overwrite"]) == 0
    assert out.read_bytes() != b"precious"


def _batch_folders(tmp: Path) -> tuple[Path, Path, Path]:
    photos, masks, out = tmp / "photos", tmp / "masks", tmp / "out"
    photos.mkdir()
    masks.mkdir()
    for i in range(3):
        _write(photos / f"p{i}.png", _photo(seed=i))
    (photos / "p1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # corrupt
    _write(masks / "p0.png", _mask())
    _write(masks / "p1.png", _mask())
    _write(masks / "p2.png", _mask(20, 26, (5, 6, 12, 15)))  # half size: resized (nearest)
    return photos, masks, out


def test_batch_reports_a_corrupt_file_and_does_the_rest(tmp_path, capsys):
    photos, masks, out = _batch_folders(tmp_path)
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    rc = cli.main(["fill", "--input", str(photos), "--masks", str(masks), "--output", str(out), "--model", "telea"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "p1.png: failed" in captured.err
    assert "2 written" in captured.out and "1 failed" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p2.png"]
    hole = np.repeat(np.repeat(_mask(20, 26, (5, 6, 12, 15)) > 0, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(_read(out / "p2.png")[~hole], _read(photos / "p2.png")[~hole])
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before
    # A second run leaves existing outputs alone unless told otherwise.
    (out / "p0.png").write_bytes(b"keep me")
    cli.main(["fill", "--input", str(photos), "--masks", str(masks), "--output", str(out), "--model", "telea"])
    assert "already exists" in capsys.readouterr().err
    assert (out / "p0.png").read_bytes() == b"keep me"


def test_batch_goes_on_after_a_photo_runs_out_of_memory(tmp_path, capsys, monkeypatch):
    from engine.pipeline import Engine

    photos, masks, out = _batch_folders(tmp_path)
    (photos / "p1.png").unlink()  # only good photos
    real_fill = Engine.fill
    calls = []

    def fill(self, request, *args, **kwargs):
        calls.append(request)
        if len(calls) == 1:  # p0: torch's out-of-memory is a RuntimeError
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory")
        return real_fill(self, request, *args, **kwargs)

    monkeypatch.setattr(Engine, "fill", fill)
    rc = cli.main(["fill", "--input", str(photos), "--masks", str(masks), "--output", str(out), "--model", "telea"])
    captured = capsys.readouterr()
    assert rc == 1 and "p0.png: failed" in captured.err and "can't allocate memory" in captured.err
    assert "1 written" in captured.out and sorted(p.name for p in out.iterdir()) == ["p2.png"]


def test_batch_checks_the_model_and_the_output_folder_first(tmp_path, capsys):
    photos, masks, out = _batch_folders(tmp_path)
    rc = cli.main(["fill", "--input", str(photos), "--masks", str(masks), "--output", str(out), "--model", "nope"])
    assert rc == 1 and "Unknown model 'nope'" in _one_error_line(capsys.readouterr().err)
    assert not out.exists()  # nothing was started
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    rc = cli.main(["fill", "--input", str(photos), "--masks", str(masks), "--output", str(a_file), "--model", "telea"])
    assert rc == 1 and "is a file, not a folder" in _one_error_line(capsys.readouterr().err)
    assert a_file.read_text() == "x"


def test_batch_refuses_to_write_into_the_input_folder(tmp_path, capsys):
    photos, masks, _ = _batch_folders(tmp_path)
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    for target in (photos, masks):
        rc = cli.main(["fill", "--input", str(photos), "--masks", str(masks), "--output", str(target), "--overwrite"])
        assert rc == 1
        assert "refusing" in _one_error_line(capsys.readouterr().err)
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before


def test_edges_command_writes_the_edge_map(files, tiny_models_dir, capsys):
    tmp, img, mask = files
    out = tmp / "edges.png"
    assert cli.main(["edges", str(img), "--mask", str(mask), "-o", str(out), "--device", "cpu"]) == 0
    assert "edge pixels" in capsys.readouterr().out
    edges = _read(out)
    assert edges.shape == (40, 52, 3) and set(np.unique(edges)) <= {0, 255}
    visual = tmp / "visual.png"
    assert cli.main(["edges", str(img), "--mask", str(mask), "-o", str(visual), "--visual"]) == 0
    pic = _read(visual)
    hole = _mask() > 0
    assert (pic[~hole] == 255).all(axis=-1).any()  # known edges drawn white
    assert cli.main(["edges", str(img), "--mask", str(mask), "-o", str(img)]) == 1  # never over an input
    capsys.readouterr()
    assert cli.main(["edges", str(img), "--mask", str(mask), "--model", "glcic", "-o", str(tmp / "g.png")]) == 0
    assert "does not complete edges" in capsys.readouterr().err
    white = _write(tmp / "white.png", np.full((40, 52), 255, np.uint8))
    assert cli.main(["edges", str(img), "--mask", str(white), "-o", str(tmp / "w.png")]) == 1
    assert "whole image" in _one_error_line(capsys.readouterr().err)


def test_models_lists_cards_and_broken_files(tiny_models_dir, isolated_home, capsys):
    broken = isolated_home / "models"
    broken.mkdir(exist_ok=True)
    (broken / "wrecked.json").write_text("{not json")
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("edgeconnect-edge", "edgeconnect-image", "telea", "navier-stokes", "harmonic"):
        assert name in out
    assert "working resolution 64 px" in out
    assert "'default' is harmonic" in out
    assert "Broken model files" in out and "wrecked.json" in out
    assert cli.main(["models", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {m["name"]: m for m in doc["model_files"]}
    assert names["edgeconnect-image"]["resolution"] == 64
    assert "error" in names["wrecked"]


def test_models_flags_truncated_weights_and_a_fill_refuses_them(tiny_models_dir, isolated_home, capsys):
    weights = tiny_models_dir / "edgeconnect-image.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # an incomplete copy
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "'default' is harmonic" in out and "edgeconnect-image            unavailable" in out
    broken = out.split("Broken model files")[1]
    assert "edgeconnect-image.safetensors" in broken and "truncated" in broken


def test_eval_command_writes_a_report(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        _write(photos / f"{i}.png", _photo(36, 44, seed=i))
    report = tmp_path / "report"
    rc = cli.main(["eval", "--images", str(photos), "--backends", "telea,navier-stokes", "--nvidia",
                   str(tmp_path / "none"), "--out", str(report)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "procedural irregular masks" in captured.err and "| irregular 30-40% | telea |" in captured.out
    assert "| rectangle 25-45% | telea |" in captured.out
    assert {p.name for p in report.iterdir()} == {"table.md", "results.json", "grid.png"}
    assert cli.main(["eval", "--images", str(photos), "--backends", "telea,bogus", "--out", str(report)]) == 1
    assert "bogus" in _one_error_line(capsys.readouterr().err)


def test_eval_without_nvidia_uses_procedural_masks_and_never_looks_for_the_development_collection(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    _write(photos / "a.png", _photo(36, 44, seed=3))
    rc = cli.main(["eval", "--images", str(photos), "--backends", "telea", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "NVIDIA irregular masks not found in (none given)" in err
    assert "shared" not in err


def test_eval_scores_every_photo_under_the_folder_but_the_excluded_folders(tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / "maps_boundaries").mkdir()
    _write(photos / "sub" / "a.png", _photo(36, 44, seed=1))
    _write(photos / "maps_boundaries" / "a.png", _photo(36, 44, seed=2))
    for exclude, expected in (([], {"maps_boundaries/a.png", "sub/a.png"}),
                              (["--exclude", "*BOUNDARIES*"], {"sub/a.png"})):
        report = tmp_path / f"report{len(exclude)}"
        rc = cli.main(["eval", "--images", str(photos), "--backends", "telea", "--nvidia", str(tmp_path / "none"),
                       *exclude, "--out", str(report)])
        assert rc == 0, capsys.readouterr().err
        cases = json.loads((report / "results.json").read_text())["cases"]
        assert {c["image"] for c in cases} == expected


def test_the_module_runs_as_a_program(files):
    tmp, img, mask = files
    out = tmp / "sub.png"
    run = subprocess.run([sys.executable, "-m", "engine.cli", "fill", str(img), "--mask", str(mask), "--model",
                          "telea", "-o", str(out)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert out.exists()
    run = subprocess.run([sys.executable, "-m", "engine.cli", "fill", str(tmp / "missing.png"), "--mask", str(mask),
                          "-o", str(out)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert run.returncode == 1
    _one_error_line(run.stderr)


def test_fill_keeps_exif_and_icc(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    src = tmp_path / "cam.jpg"
    Image.fromarray(_photo()).save(src, quality=95, exif=exif, icc_profile=icc)
    mask = _write(tmp_path / "hole.png", _mask())
    out = tmp_path / "out.jpg"
    assert cli.main(["fill", str(src), "--mask", str(mask), "--model", "telea", "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.format == "JPEG"
        assert im.getexif().get(0x010F) == "TestCam"
        assert im.info.get("icc_profile") == icc


def test_batch_with_a_neural_model_loads_each_network_once(tmp_path, tiny_models_dir, monkeypatch, capsys):
    from collections import Counter

    from engine import model_store

    loads: Counter[str] = Counter()
    real_load = model_store.load_model

    def counting_load(path):
        module, card = real_load(path)
        loads[card.name] += 1
        return module, card

    monkeypatch.setattr(model_store, "load_model", counting_load)
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    photos.mkdir()
    masks.mkdir()
    for i in range(3):
        _write(photos / f"p{i}.png", _photo(seed=i))
        _write(masks / f"p{i}.png", _mask(box=(8 + i, 10, 22 + i, 30)))
    rc = cli.main(["fill", "--input", str(photos), "--masks", str(masks), "--output", str(out),
                   "--model", "edgeconnect-image", "--device", "cpu", "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "3 written" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png", "p2.png"]
    assert loads == {"edgeconnect-image": 1, "edgeconnect-edge": 1}  # once for the batch, not once per photo


@pytest.mark.parametrize("model", ["telea", "edgeconnect-image"])
def test_fill_keeps_alpha_exactly(tmp_path, tiny_models_dir, model, capsys):
    rgb = _photo()
    alpha = np.random.default_rng(3).integers(0, 256, (40, 52), dtype=np.uint8)
    alpha[:, :5] = 0  # fully transparent outside the hole: the RGB under it must survive too
    alpha[12:20, 14:22] = 0  # transparent inside the hole as well
    src = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src)
    mask = _write(tmp_path / "hole.png", _mask())
    out = tmp_path / "out.png"
    rc = cli.main(["fill", str(src), "--mask", str(mask), "--model", model, "-o", str(out),
                   "--device", "cpu", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    with Image.open(out) as im:
        assert im.mode == "RGBA"
        result = np.asarray(im)
    hole = _mask() > 0
    np.testing.assert_array_equal(result[..., 3], alpha)  # alpha untouched everywhere, hole included
    np.testing.assert_array_equal(result[..., :3][~hole], rgb[~hole])
    assert np.any(result[..., :3][hole] != rgb[hole])


@pytest.mark.parametrize("with_alpha", [False, True])
def test_fill_keeps_16_bit_depth_and_untouched_pixels_exact(tmp_path, tiny_models_dir, with_alpha, capsys):
    import cv2

    rng = np.random.default_rng(5)
    rgb16 = (_photo().astype(np.uint16) * 257 + rng.integers(0, 257, (40, 52, 3))).astype(np.uint16)
    alpha16 = rng.integers(0, 65536, (40, 52), dtype=np.uint16)
    assert np.any(rgb16 % 257 != 0)  # low bytes that 8-bit would lose
    src = tmp_path / "deep.png"
    bgr = rgb16[..., ::-1]
    assert cv2.imwrite(str(src), np.dstack([bgr, alpha16]) if with_alpha else bgr)
    mask = _write(tmp_path / "hole.png", _mask())
    out = tmp_path / "out.png"
    rc = cli.main(["fill", str(src), "--mask", str(mask), "-o", str(out), "--device", "cpu", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    raw = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert raw is not None and raw.dtype == np.uint16
    assert raw.shape == (40, 52, 4 if with_alpha else 3)
    result = raw[..., 2::-1] if with_alpha else raw[..., ::-1]
    hole = _mask() > 0
    np.testing.assert_array_equal(result[~hole], rgb16[~hole])  # all 16 bits kept outside the hole
    assert np.any(result[hole] != rgb16[hole])
    if with_alpha:
        np.testing.assert_array_equal(raw[..., 3], alpha16)


def test_a_closed_pipe_ends_quietly(tiny_models_dir, isolated_home):
    """``inpaint models | head -0``: the reader is gone before anything is written; no 'unexpected error', no
    traceback, exit 141 (128 + SIGPIPE) as a shell reports it."""
    import subprocess
    import sys

    code = "import sys; from engine import cli; sys.exit(cli.main(['models']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the process has imported torch, so every write meets a closed pipe
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == cli.EXIT_BROKEN_PIPE == 141, stderr
    assert "unexpected error" not in stderr and "Traceback" not in stderr and "Exception ignored" not in stderr


def test_bench_refuses_bad_options_before_timing_anything(tmp_path, capsys):
    assert cli.main(["bench", "--runs", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert cli.main(["bench", "--models", str(tmp_path / "missing")]) == 1
    assert "not 'random', 'bundled' or a folder" in _one_error_line(capsys.readouterr().err)
    assert cli.main(["bench", "--markdown", str(tmp_path / "no-such-folder" / "bench.md")]) == 1
    assert "cannot write" in _one_error_line(capsys.readouterr().err)


def test_bench_times_the_first_model_of_a_folder_when_none_is_named(tiny_models_dir):
    from engine import bench
    from engine.model_store import ModelStore
    from engine.pipeline import Engine

    engine = Engine(device="cpu", store=ModelStore(bundled_dir=tiny_models_dir, user_dir=tiny_models_dir / "none"))
    assert bench.pick_model(engine, None, str(tiny_models_dir)) in {"edgeconnect-image", "glcic"}
    assert bench.pick_model(engine, None, "random") == "edgeconnect-image"
    with pytest.raises(cli.EngineError, match="Unknown model"):
        bench.pick_model(engine, "nope", str(tiny_models_dir))


def test_texture_option_is_checked_and_eval_takes_a_strength_per_backend(files, tmp_path, capsys):
    tmp, img, mask = files
    assert cli.main(["fill", str(img), "--mask", str(mask), "--model", "harmonic", "--texture", "nan",
                     "-o", str(tmp / "x.png")]) == 2
    assert "texture strength" in capsys.readouterr().err and not (tmp / "x.png").exists()
    smooth, textured = tmp / "smooth.png", tmp / "textured.png"
    for out, strength in ((smooth, "0"), (textured, "1")):
        assert cli.main(["fill", str(img), "--mask", str(mask), "--model", "harmonic", "--texture", strength,
                         "-o", str(out)]) == 0
    assert smooth.read_bytes() != textured.read_bytes()
    photos = tmp_path / "photos"
    photos.mkdir()
    _write(photos / "0.png", _photo(48, 56, seed=3))
    rc = cli.main(["eval", "--images", str(photos), "--backends", "harmonic@0,harmonic@1", "--nvidia",
                   str(tmp_path / "none"), "--out", str(tmp_path / "report")])
    out = capsys.readouterr().out
    assert rc == 0 and "| harmonic@0 |" in out and "| harmonic@1 |" in out
    assert cli.main(["eval", "--images", str(photos), "--backends", "harmonic@2", "--out",
                     str(tmp_path / "r2")]) == 1
    assert "harmonic@2" in _one_error_line(capsys.readouterr().err)


def test_bench_times_the_default_fill_beside_both_baselines() -> None:
    from engine import bench

    assert bench._methods("edgeconnect-image") == ["default", "edgeconnect-image", "patchmatch", "telea"]
    assert bench._methods("patchmatch") == ["default", "patchmatch", "telea"]
    assert "texture" in bench.STAGE_KEYS


def test_empty_model_name_is_refused(files, tmp_path, capsys):
    """Issue 17 #16: ``--model ''`` was accepted as ``default``."""
    _, img, mask = files
    assert cli.main(["fill", str(img), "--mask", str(mask), "-o", str(tmp_path / "o.png"), "--model", ""]) == 2
    assert "model name is empty" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o.png").exists()


def test_an_inverted_mask_is_warned_about_and_invert_mask_fills_the_right_part(files, capsys):
    tmp, img, _ = files
    inverted = _write(tmp / "black_hole.png", 255 - _mask())
    out = tmp / "out.png"
    assert cli.main(["fill", str(img), "--mask", str(inverted), "--model", "telea", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "black_hole.png" in err and "--invert-mask" in err
    out2 = tmp / "out2.png"
    assert cli.main(["fill", str(img), "--mask", str(inverted), "--invert-mask", "--model", "telea",
                     "-o", str(out2)]) == 0
    assert "warning" not in capsys.readouterr().err
    before, after, hole = _read(img), _read(out2), _mask() > 0
    np.testing.assert_array_equal(after[~hole], before[~hole])
    assert np.any(after[hole] != before[hole])


def test_batch_warns_per_file_about_large_holes_and_counts_them(tmp_path, capsys):
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    photos.mkdir()
    masks.mkdir()
    for i in range(3):
        _write(photos / f"p{i}.png", _photo(seed=i))
    _write(masks / "p0.png", _mask())
    _write(masks / "p1.png", 255 - _mask())
    _write(masks / "p2.png", 255 - _mask())
    rc = cli.main(["fill", "--input", str(photos), "--masks", str(masks), "--output", str(out), "--model", "telea"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "p1.png" in captured.err and "p2.png" in captured.err and "p0.png" not in captured.err
    assert "2 with masks marking more than half" in captured.out


def test_an_output_that_appears_during_the_fill_is_kept(files, capsys, monkeypatch):
    from engine.pipeline import Engine

    tmp, img, mask = files
    out = tmp / "out.png"
    real_fill = Engine.fill

    def fill_while_another_program_writes(self, request):
        out.write_bytes(b"written by someone else")
        return real_fill(self, request)

    monkeypatch.setattr(Engine, "fill", fill_while_another_program_writes)
    assert cli.main(["fill", str(img), "--mask", str(mask), "--model", "telea", "-o", str(out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(out) in line and "was kept" in line
    assert out.read_bytes() == b"written by someone else"
    assert sorted(p.name for p in tmp.iterdir()) == ["hole.png", "out.png", "photo.png"]


def _eval_photos(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        _write(photos / f"{i}.png", _photo(36, 44, seed=i))
    return photos


def test_eval_skips_and_names_a_photo_that_cannot_be_read(tmp_path, capsys):
    photos = _eval_photos(tmp_path)
    (photos / "zz-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # sorted last
    report = tmp_path / "report"
    rc = cli.main(["eval", "--images", str(photos), "--backends", "telea", "--nvidia", str(tmp_path / "none"),
                   "--out", str(report)])
    captured = capsys.readouterr()
    assert rc == 1 and "unexpected" not in captured.err
    assert "skipped 1 photo(s) that cannot be read: zz-broken.png" in captured.err
    results = json.loads((report / "results.json").read_text())
    assert results["skipped"] == ["zz-broken.png"]
    assert {c["image"] for c in results["cases"]} == {"0.png", "1.png"}
    assert "zz-broken.png: skipped" in (report / "table.md").read_text()


def test_eval_on_a_full_disk_says_so_and_keeps_the_previous_report(tmp_path, capsys, monkeypatch):
    import errno

    photos = _eval_photos(tmp_path)
    report = tmp_path / "report"
    report.mkdir()
    for name in ("table.md", "results.json", "grid.png"):
        (report / name).write_text("previous")
    real_write = Path.write_bytes

    def full_disk(self, data):
        if self.name.endswith(".tmp.png"):  # the grid, written last
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    rc = cli.main(["eval", "--images", str(photos), "--backends", "telea", "--nvidia", str(tmp_path / "none"),
                   "--out", str(report)])
    captured = capsys.readouterr()
    assert rc == 1
    line = captured.err.strip().splitlines()[-1]
    assert "Traceback" not in captured.err and "unexpected" not in captured.err
    assert line.startswith("inpaint eval: error: cannot write the report") and "No space left on device" in line
    assert str(report / "grid.png") in line
    assert "| rectangle 25-45% | telea |" in captured.out  # the work is not lost: the table was printed
    assert sorted(p.name for p in report.iterdir()) == ["grid.png", "results.json", "table.md"]
    assert all((report / n).read_text() == "previous" for n in ("table.md", "results.json", "grid.png"))


def test_a_244_byte_output_name_is_written(files, capsys):
    tmp, img, mask = files
    out = tmp / ("n" * 240 + ".png")
    assert cli.main(["fill", str(img), "--mask", str(mask), "--model", "telea", "-o", str(out)]) == 0, \
        capsys.readouterr().err
    assert _read(out).shape == (40, 52, 3)
    assert sorted(p.name for p in tmp.iterdir()) == sorted(["hole.png", "photo.png", out.name])


@pytest.mark.parametrize("where", ["output", "output folder", "image", "mask"])
def test_a_name_over_255_bytes_is_said_in_one_line(files, capsys, where):
    tmp, img, mask = files
    long = tmp / ("x" * 256 + ".png")
    args = {"image": str(img), "mask": str(mask), "output": str(tmp / "out.png")}
    key = "output" if where == "output folder" else where
    args[key] = str(tmp / ("d" * 300) / "out.png") if where == "output folder" else str(long)
    rc = cli.main(["fill", args["image"], "--mask", args["mask"], "--model", "telea", "-o", args["output"]])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 1 and "unexpected" not in line
    assert "bytes long; a file or folder name can have at most 255 bytes" in line
    assert sorted(p.name for p in tmp.iterdir()) == ["hole.png", "photo.png"]


@pytest.mark.parametrize("where", ["output", "image", "mask"])
def test_a_symbolic_link_loop_is_said_in_one_line(files, capsys, where):
    tmp, img, mask = files
    (tmp / "a.png").symlink_to(tmp / "b.png")
    (tmp / "b.png").symlink_to(tmp / "a.png")
    args = {"image": str(img), "mask": str(mask), "output": str(tmp / "out.png"), where: str(tmp / "a.png")}
    rc = cli.main(["fill", args["image"], "--mask", args["mask"], "--model", "telea", "-o", args["output"]])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 1 and "unexpected" not in line
    assert str(tmp / "a.png") in line and "symbolic link that leads in a loop" in line
    assert not (tmp / "out.png").exists()


def test_a_mask_of_another_size_is_refused_before_the_photo_is_decoded(tmp_path, capsys, monkeypatch):
    from engine import imageio_read

    img = _write(tmp_path / "big.png", _photo(120, 160))
    mask = _write(tmp_path / "hole.png", _mask(40, 52))
    sketch = _write(tmp_path / "sketch.png", np.zeros((30, 30, 3), np.uint8))
    decoded: list[str] = []
    real_decode = imageio_read._decode
    monkeypatch.setattr(imageio_read, "_decode",
                        lambda p, im, limit: decoded.append(p.name) or real_decode(p, im, limit))
    rc = cli.main(["fill", str(img), "--mask", str(mask), "--model", "telea", "-o", str(tmp_path / "o.png")])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 1 and "the mask" in line and "is 52x40 but the image" in line and "160x120" in line
    assert decoded == []  # refused from the headers: nothing was decoded
    rc = cli.main(["fill", str(img), "--mask", str(_write(tmp_path / "h2.png", _mask(120, 160))), "--edges",
                   str(sketch), "--model", "telea", "-o", str(tmp_path / "o.png")])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 1 and "the edge sketch" in line and "is 30x30" in line and decoded == []


def _pages(path: Path, count: int = 3) -> Path:
    pages = [Image.fromarray(_photo(seed=i)) for i in range(count)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


@pytest.mark.parametrize("name", ["scan.tif", "anim.png", "anim.webp"])
def test_a_multi_page_photo_is_not_cut_to_its_first_page_silently(files, capsys, name):
    tmp, _img, mask = files
    source = _pages(tmp / name)
    before = source.read_bytes()
    out = tmp / f"out{source.suffix}"
    assert cli.main(["fill", str(source), "--mask", str(mask), "--model", "telea", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    kind = "pages" if name.endswith(".tif") else "frames"
    assert f"{source} has 3 {kind}; only the first is filled" in err and f"{kind} 2-3 of 3 are not in it" in err
    assert source.read_bytes() == before
    with Image.open(source) as im:
        assert im.n_frames == 3


def test_bench_times_the_defaults_structure_network_alone_at_texture_zero(monkeypatch) -> None:
    from engine import bench
    from engine.pipeline import Engine

    engine = Engine(device="cpu", cpu_threads=1)  # the bundled models: the default's structure is a network
    structure = engine.resolve_model("default")
    assert structure != "harmonic"
    monkeypatch.setattr(bench, "_methods", lambda model: [])  # only the extra row
    (row,) = bench.run_case_crop512(engine, structure, 1, None)
    assert row["method"] == f"{structure}@0" and row["texture"] == 0.0 and row["image"] > 0
