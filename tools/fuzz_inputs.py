"""Re-run the input fuzzing pass of issue 17 over the ``inpaint`` command and print what happened.

Surfaces: photos (damaged, fake, huge headers, odd modes, multi-page, links, long names), masks (sizes,
kinds), model files in the user folder (broken cards, absurd architectures, FIFOs, links to devices, NaN
weights), output paths (existing, links, devices, loops, long names, read-only), kill -9 during writes, and
two commands writing one new output at once.

Each attempt runs ``inpaint`` (``engine.cli.main``) in a worker process, under a time limit, and is
classified as: **as expected** (succeeded and the output decodes, or failed the way it should: one clear
line, exit code 1 or 2), **clear error** (of those, the ones that were refusals), **crash** (a traceback,
"unexpected error" or the worker killed by a signal), **hang** (over the time limit), **data lost** (a file
that must not change changed, a half-written output, a success without an output) and **other** (e.g. a
clear error where a success was expected). Temporaries left behind are counted too. Run from the
repository root (a few minutes on two cores)::

    python tools/fuzz_inputs.py [--only photos,masks,models,outputs,kills,races] [--timeout 60] [--verbose]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
W, H = 48, 40


@dataclass
class Case:
    """One attempt: ``inpaint`` arguments, what should happen, and the files that must not change."""

    surface: str
    name: str
    argv: list[str]
    expect: str  # "ok" or "error"
    output: str | None = None  # checked to decode after a success
    protect: list[str] = field(default_factory=list)
    home: str | None = None  # INPAINT_STUDIO_HOME for this attempt


# ------------------------------------------------------------------------------------------ the worker


def worker() -> None:
    """Run cases read as JSON lines from stdin; answer ``{"rc", "out", "err", "escaped"}`` per line."""
    sys.path.insert(0, str(ROOT))
    from engine import cli

    for line in sys.stdin:
        case = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        escaped = ""
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(case["argv"])
            except BaseException as exc:
                rc, escaped = -1, f"{type(exc).__name__}: {exc}"
        print(json.dumps({"rc": rc, "out": out.getvalue()[-2000:], "err": err.getvalue()[-4000:],
                          "escaped": escaped}), flush=True)


class Worker:
    """A worker process for one user data folder; restarted after a hang or a crash."""

    def __init__(self, home: str | None) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
        env.pop("INPAINT_DEBUG", None)
        if home:
            env["INPAINT_STUDIO_HOME"] = home
        self.home = home
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def run(self, argv: list[str], timeout: float) -> dict | None:
        """The answer, or None after ``timeout`` seconds (the worker is killed)."""
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps({"argv": argv}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return {"rc": self.proc.wait(), "out": "", "err": "", "escaped": "worker died", "signal": True}
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.stop()
            return None
        line = self.proc.stdout.readline()
        if not line:
            return {"rc": self.proc.wait(), "out": "", "err": "", "escaped": "worker died", "signal": True}
        return json.loads(line)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------------------------------- the files


def _photo(seed: int = 0, w: int = W, h: int = H) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, 128 + 60 * np.sin(xx / 3.0)], axis=-1)
    return np.clip(base + rng.normal(0, 10, (h, w, 1)), 0, 255).astype(np.uint8)


def _mask(w: int = W, h: int = H) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 4: h // 2, w // 4: w // 2] = 255
    return m


def _png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose header claims ``w`` x ``h`` with almost no pixel data (a bomb or a truncated file)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + (zlib.crc32(kind + data) & 0xFFFFFFFF).to_bytes(4, "big")
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def photo_files(d: Path) -> list[tuple[str, Path, str]]:
    """(name, path, expectation) of the photos to try."""
    d.mkdir(parents=True, exist_ok=True)
    rgb = _photo()
    good_png, good_jpg = d / "good.png", d / "good.jpg"
    Image.fromarray(rgb).save(good_png)
    Image.fromarray(rgb).save(good_jpg, quality=92)
    out: list[tuple[str, Path, str]] = [("png", good_png, "ok"), ("jpeg", good_jpg, "ok")]

    def add(name: str, expect: str, make) -> None:
        path = make()
        out.append((name, path, expect))

    add("truncated png", "error", lambda: _write(d / "trunc.png", good_png.read_bytes()[:200]))
    add("truncated jpeg", "error", lambda: _write(d / "trunc.jpg", good_jpg.read_bytes()[:300]))
    add("zero bytes", "error", lambda: _write(d / "empty.png", b""))
    add("text named .png", "error", lambda: _write(d / "text.png", b"hello, this is not an image\n" * 20))
    add("random bytes", "error", lambda: _write(d / "noise.jpg", os.urandom(3000)))
    add("png named .jpg", "ok", lambda: _write(d / "really-png.jpg", good_png.read_bytes()))
    add("gif", "error", lambda: _save(Image.fromarray(rgb), d / "anim.gif"))
    add("bomb header 40000x40000", "error", lambda: _png_header_only(d / "bomb.png", 40000, 40000))
    add("16-bit png", "ok", lambda: _save(Image.fromarray(np.asarray(rgb[..., 0], np.uint16) * 257), d / "g16.png"))
    add("cmyk jpeg", "ok", lambda: _save(Image.fromarray(rgb).convert("CMYK"), d / "cmyk.jpg"))
    add("grayscale", "ok", lambda: _save(Image.fromarray(rgb).convert("L"), d / "gray.png"))
    add("rgba", "ok", lambda: _save(Image.fromarray(rgb).convert("RGBA"), d / "rgba.png"))
    add("palette", "ok", lambda: _save(Image.fromarray(rgb).convert("P"), d / "pal.png"))
    add("float tiff", "error", lambda: _save(Image.fromarray(rgb[..., 0].astype(np.float32)), d / "float.tif"))
    add("exif rotated", "ok", lambda: _exif_rotated(d / "rot.jpg", rgb))
    add("multi-page tiff", "ok", lambda: _pages(d / "pages.tif", rgb))
    add("animated webp", "ok", lambda: _pages(d / "anim.webp", rgb))
    add("folder", "error", lambda: _mkdir(d / "folder.png"))
    add("missing", "error", lambda: d / "missing.png")
    add("link loop", "error", lambda: _loop(d, "loop.png"))
    add("dangling link", "error", lambda: _link(d / "dangling.png", d / "nowhere.png"))
    add("link to /dev/zero", "error", lambda: _link(d / "zero.png", Path("/dev/zero")))
    add("fifo", "error", lambda: _fifo(d / "fifo.png"))
    add("name of 256 bytes", "error", lambda: d / ("p" * 252 + ".png"))
    return out


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


def _link(path: Path, to: Path) -> Path:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    path.symlink_to(to)
    return path


def _loop(d: Path, name: str) -> Path:
    a, b = d / name, d / f"other-{name}"
    _link(a, b)
    _link(b, a)
    return a


def _fifo(path: Path) -> Path:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.mkfifo(path)
    return path


def _exif_rotated(path: Path, rgb: np.ndarray) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(path, exif=exif.tobytes())
    return path


def _pages(path: Path, rgb: np.ndarray) -> Path:
    pages = [Image.fromarray(np.ascontiguousarray(np.roll(rgb, 7 * i, axis=1))) for i in range(3)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


# ------------------------------------------------------------------------------------------ the cases


def _fill(image: Path, mask: Path, out: Path, *extra: str) -> list[str]:
    return ["fill", str(image), "--mask", str(mask), "--model", "telea", "-o", str(out), *extra]


def photo_cases(d: Path) -> list[Case]:
    mask = _save(Image.fromarray(_mask()), d / "mask.png")
    cases = []
    for i, (name, path, expect) in enumerate(photo_files(d / "photos")):
        out = d / f"out-photo-{i}.png"
        cases.append(Case("photos", name, _fill(path, mask, out), expect, str(out), [str(mask)]))
    return cases


def mask_cases(d: Path) -> list[Case]:
    photo = _save(Image.fromarray(_photo()), d / "photo.png")
    m = _mask()
    masks = {
        "binary": (_save(Image.fromarray(m), d / "m-bin.png"), "ok"),
        "other size": (_save(Image.fromarray(_mask(30, 30)), d / "m-size.png"), "error"),
        "all white": (_save(Image.fromarray(np.full((H, W), 255, np.uint8)), d / "m-white.png"), "error"),
        "empty": (_save(Image.fromarray(np.zeros((H, W), np.uint8)), d / "m-empty.png"), "ok"),
        "0/1 labels": (_save(Image.fromarray((m > 0).astype(np.uint8)), d / "m-labels.png"), "ok"),
        "rgba painted": (_save(Image.fromarray(np.dstack([m, m, m, m])), d / "m-rgba.png"), "ok"),
        "16-bit": (_save(Image.fromarray(m.astype(np.uint16) * 257), d / "m16.png"), "ok"),
        "jpeg": (_save(Image.fromarray(m), d / "m.jpg", quality=80), "ok"),
        "truncated": (_write(d / "m-trunc.png", (d / "m-bin.png").read_bytes()[:60]), "error"),
        "huge header": (_png_header_only(d / "m-huge.png", 14000, 14000), "error"),
        "link loop": (_loop(d, "m-loop.png"), "error"),
    }
    cases = []
    for i, (name, (path, expect)) in enumerate(masks.items()):
        out = d / f"out-mask-{i}.png"
        cases.append(Case("masks", name, _fill(photo, path, out), expect, str(out), [str(photo), str(path)]))
    huge = _png_header_only(d / "huge-photo.png", 14000, 14000)
    out = d / "out-huge.png"
    cases.append(Case("masks", "14000x14000 photo, small mask", _fill(huge, masks["binary"][0], out), "error",
                      None, [str(huge)]))
    return cases


def model_cases(d: Path) -> list[Case]:
    """Broken files in the user's model folder: listing works, built-in fills work, the bad one is refused."""
    sys.path.insert(0, str(ROOT))
    import torch

    from engine.model_files import ModelCard, save_model
    from engine.networks import EdgeGenerator, ImageGenerator

    home = d / "home"
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    args = {"base_channels": 8, "residual_blocks": 2}
    save_model(EdgeGenerator(**args).eval(), ModelCard("tiny-edge", "edgeconnect-edge", args, "edge", resolution=64),
               models)
    good = save_model(ImageGenerator(**args).eval(), ModelCard("tiny", "edgeconnect-image", args, "image",
                                                               resolution=64, companion="tiny-edge"), models)
    card = json.loads(good.with_suffix(".json").read_text())

    def model(name: str, card_text: str | None = None, weights: bytes | None = None) -> None:
        if card_text is not None:
            (models / f"{name}.json").write_text(card_text)
        if weights is not None:
            (models / f"{name}.safetensors").write_bytes(weights)

    weights = good.read_bytes()
    model("bad-json", "{not json", weights)
    model("huge-blocks", json.dumps({**card, "name": "huge-blocks",
                                     "arguments": {**card["arguments"], "residual_blocks": 3_000_000}}), weights)
    model("nested", "[" * 100_000 + "]" * 100_000, weights)
    model("pickle", json.dumps({**card, "name": "pickle"}), b"\x80\x04\x95" + os.urandom(500))
    model("truncated", json.dumps({**card, "name": "truncated"}), weights[: len(weights) // 3])
    nan = {k: torch.full_like(v, float("nan")) for k, v in ImageGenerator(**args).state_dict().items()}
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in nan.items()}, str(models / "nan.safetensors"))
    model("nan", json.dumps({**card, "name": "nan"}))
    _fifo(models / "fifo.json")
    _link(models / "zero.json", Path("/dev/zero"))
    photo = _save(Image.fromarray(_photo()), d / "photo.png")
    mask = _save(Image.fromarray(_mask()), d / "mask.png")
    cases = [Case("models", "list with broken files", ["models"], "ok", home=str(home)),
             Case("models", "list as json", ["models", "--json"], "ok", home=str(home))]
    for backend, expect in (("telea", "ok"), ("harmonic", "ok"), ("tiny", "ok"), ("bad-json", "error"),
                            ("huge-blocks", "error"), ("nested", "error"), ("pickle", "error"),
                            ("truncated", "error"), ("nan", "error"), ("fifo", "error"), ("zero", "error"),
                            ("", "error"), ("no-such-model", "error")):
        out = d / f"out-model-{backend or 'empty'}.png"
        argv = ["fill", str(photo), "--mask", str(mask), "--model", backend, "-o", str(out)]
        cases.append(Case("models", f"fill --model {backend!r}", argv, expect, str(out), [str(photo)],
                          home=str(home)))
    return cases


def output_cases(d: Path) -> list[Case]:
    photo = _save(Image.fromarray(_photo()), d / "photo.png")
    mask = _save(Image.fromarray(_mask()), d / "mask.png")
    existing = _save(Image.fromarray(_photo(5)), d / "existing.png")
    readonly = _save(Image.fromarray(_photo(6)), d / "readonly.png")
    readonly.chmod(0o444)
    not_a_folder = _write(d / "file", b"x")
    outs: list[tuple[str, Path, str, list[str]]] = [
        ("new file", d / "new.png", "ok", []),
        ("each format", d / "new.tif", "ok", []),
        ("jpeg", d / "new.jpg", "ok", []),
        ("webp", d / "new.webp", "ok", []),
        ("bmp", d / "new.bmp", "ok", []),
        ("existing, no --overwrite", existing, "error", []),
        ("existing, --overwrite", d / "existing-2.png", "ok", ["--overwrite"]),
        ("read-only, --overwrite", readonly, "error", ["--overwrite"]),
        ("the input itself", photo, "error", ["--overwrite"]),
        ("unknown extension", d / "out.xyz", "error", []),
        ("no extension", d / "out", "error", []),
        ("a folder", _mkdir(d / "folder"), "error", []),
        ("inside a file", not_a_folder / "out.png", "error", []),
        ("new subfolder", d / "sub" / "dir" / "out.png", "ok", []),
        ("link to /dev/null", _link(d / "null.png", Path("/dev/null")), "error", ["--overwrite"]),
        ("link loop", _loop(d, "loop-out.png"), "error", []),
        ("name of 244 bytes", d / ("n" * 240 + ".png"), "ok", []),
        ("name of 255 bytes", d / ("m" * 251 + ".png"), "ok", []),
        ("name of 256 bytes", d / ("o" * 252 + ".png"), "error", []),
        ("folder name of 300 bytes", d / ("f" * 300) / "out.png", "error", []),
    ]
    _save(Image.fromarray(_photo(7)), d / "existing-2.png")
    cases = []
    for name, out, expect, extra in outs:
        protect = [str(photo), str(mask)]
        if expect == "error" and _digest(str(out)) is not None:  # an existing regular file: must stay
            protect.append(str(out))
        cases.append(Case("outputs", name, _fill(photo, mask, out, *extra), expect,
                          str(out) if expect == "ok" else None, protect))
    return cases


# --------------------------------------------------------------------------------------------- running


def _digest(path: str) -> str | None:
    p = Path(path)
    try:
        return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else None
    except OSError:
        return None


def _decodes(path: str) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:
        return False


def _temporaries(folder: Path) -> list[Path]:
    """Hidden temporaries of atomic writes: ``.inpaint-<pid>-...`` now, ``.<stem>.<random>.tmp<ext>`` before."""
    return [p for p in folder.rglob(".*") if p.is_file() and (p.name.startswith(".inpaint-") or ".tmp" in p.name)]


def classify(case: Case, answer: dict | None, before: dict[str, str | None]) -> str:
    """One of: as expected, crash, hang, data lost, other (see the module docstring)."""
    if answer is None:
        return "hang"
    if answer.get("signal") or answer["escaped"] or "unexpected error" in answer["err"] or "Traceback" in answer["err"]:
        return "crash"
    if any(_digest(p) != h for p, h in before.items()):
        return "data lost"
    if case.expect == "ok":
        if answer["rc"] != 0:
            return "other"
        if case.output and not _decodes(case.output):
            return "data lost"
        return "as expected"
    lines = [line for line in answer["err"].splitlines() if "error:" in line]
    return "as expected" if answer["rc"] in (1, 2) and len(lines) == 1 else "other"


def run_cases(cases: list[Case], timeout: float, verbose: bool) -> Counter:
    counts: Counter = Counter()
    current: Worker | None = None
    for case in cases:
        if current is None or current.home != case.home:
            if current:
                current.stop()
            current = Worker(case.home)
        before = {p: _digest(p) for p in case.protect}
        answer = current.run(case.argv, timeout)
        verdict = classify(case, answer, before)
        if answer is None or answer.get("signal"):
            current = None  # killed or dead: a fresh one for the next case
        counts["attempts"] += 1
        counts[verdict] += 1
        if verdict == "as expected" and case.expect == "error":
            counts["clear errors"] += 1
        if verbose or verdict != "as expected":
            tail = "" if answer is None else (answer["escaped"] or answer["err"].strip().splitlines()[-1:] or [""])[0]
            print(f"  [{verdict}] {case.surface}: {case.name} (expected {case.expect}) {str(tail)[:160]}")
    if current:
        current.stop()
    return counts


def kill_cases(d: Path, rounds: int, verbose: bool) -> Counter:
    """kill -9 a fill that replaces an existing output at a random moment: the old or the new file, whole."""
    counts: Counter = Counter()
    big = _photo(1, 3000, 2000)
    photo = _save(Image.fromarray(big), d / "big.png")
    mask = _save(Image.fromarray(_mask(3000, 2000)), d / "big-mask.png")
    out = d / "target.png"
    old = _photo(2, 3000, 2000)
    _save(Image.fromarray(old), out)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "engine.cli", *_fill(photo, mask, out, "--overwrite")]
    start = time.monotonic()
    subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
    whole_run = time.monotonic() - start  # the write is at its end: kill in its last fifth
    _save(Image.fromarray(old), out)
    rng = random.Random(17)
    killed_writes = 0
    for i in range(rounds):
        seen = set(_temporaries(d))
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 1.0) * whole_run)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_writes += bool(set(_temporaries(d)) - seen)  # it left a temporary: killed while writing
        counts["attempts"] += 1
        try:
            with Image.open(out) as im:
                got = np.asarray(im.convert("RGB"))
            whole = got.shape == old.shape
        except Exception:
            whole = False
        counts["as expected" if whole else "data lost"] += 1
        if verbose or not whole:
            print(f"  [{'as expected' if whole else 'data lost'}] kills: round {i + 1}, target whole: {whole}")
    left = _temporaries(d)
    if left:
        for p in left:  # stale by the cleaner's rule: the writers are dead; age them past the grace
            t = time.time() - 120
            os.utime(p, (t, t))
        _save(Image.fromarray(_photo()), d / "trigger.png")  # a plain write does not use engine.atomic
        subprocess.run([sys.executable, "-m", "engine.cli", *_fill(d / "trigger.png", _save(
            Image.fromarray(_mask()), d / "trigger-mask.png"), d / "after.png")], cwd=ROOT, env=env,
            capture_output=True, check=False)
    counts["killed during the write"] = killed_writes
    counts["temporaries left"] = len(_temporaries(d))
    return counts


def race_cases(d: Path, rounds: int, verbose: bool) -> Counter:
    """Two ``inpaint fill`` commands to one new output at once: exactly one may succeed, the other must say
    that the file was kept (without --overwrite nothing is ever replaced)."""
    counts: Counter = Counter()
    photo = _save(Image.fromarray(_photo(1, 1200, 900)), d / "photo.png")
    mask = _save(Image.fromarray(_mask(1200, 900)), d / "mask.png")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for i in range(rounds):
        out = d / f"race-{i}.png"
        procs = [subprocess.Popen([sys.executable, "-m", "engine.cli", *_fill(photo, mask, out)], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(), p.stderr.read() if p.stderr else "") for p in procs]
        wins = sum(rc == 0 for rc, _ in results)
        clear = all("unexpected" not in err and "Traceback" not in err for _, err in results)
        verdict = "as expected" if wins == 1 and clear and _decodes(str(out)) else (
            "crash" if not clear else "data lost")
        counts["attempts"] += 1
        counts[verdict] += 1
        if verbose or verdict != "as expected":
            print(f"  [{verdict}] races: round {i + 1}: {wins} of 2 succeeded")
    return counts


SURFACES = {"photos": photo_cases, "masks": mask_cases, "models": model_cases, "outputs": output_cases}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="photos,masks,models,outputs,kills,races", help="surfaces to try")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before an attempt is a hang")
    parser.add_argument("--kills", type=int, default=10, help="kill -9 rounds (default 10)")
    parser.add_argument("--races", type=int, default=4, help="rounds of two writers to one path (default 4)")
    parser.add_argument("--verbose", action="store_true", help="print every attempt, not only the failures")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return 0
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    total: Counter = Counter()
    with tempfile.TemporaryDirectory(prefix="inpaint-fuzz-") as tmp:
        root = Path(tmp)
        for surface in chosen:
            folder = root / surface
            folder.mkdir()
            print(f"{surface}:", flush=True)
            if surface == "kills":
                counts = kill_cases(folder, args.kills, args.verbose)
            elif surface == "races":
                counts = race_cases(folder, args.races, args.verbose)
            else:
                counts = run_cases(SURFACES[surface](folder), args.timeout, args.verbose)
                counts["temporaries left"] = len(_temporaries(folder))
            total.update(counts)
            print(f"  {dict(counts)}", flush=True)
        for p in root.rglob("*"):  # read-only files must not stop the clean-up
            with contextlib.suppress(OSError):
                p.chmod(0o755 if p.is_dir() else 0o644)
    keys = ("attempts", "as expected", "clear errors", "crash", "hang", "data lost", "other", "temporaries left")
    print("total: " + ", ".join(f"{k} {total.get(k, 0)}" for k in keys))
    bad = sum(total.get(k, 0) for k in ("crash", "hang", "data lost", "other", "temporaries left"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
