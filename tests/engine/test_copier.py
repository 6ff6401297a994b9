"""The texture copy in a child process: same bytes as in-process, stopped at once by a cancel, survives a crash."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from engine.api import FillRequest
from engine.errors import FillCancelled
from engine.pipeline import Engine
from engine.texture import copy_ahead, load_patchmatch
from engine.texture.copier import CopyFailed, NativeCopier

pytestmark = pytest.mark.skipif(load_patchmatch()[0] is None, reason="the pypatchmatch native library does not load")


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(40, 200, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
    return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


def _hole(h: int, w: int, frac: float = 0.4) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    dh, dw = int(h * frac), int(w * frac)
    hole[(h - dh) // 2:(h + dh) // 2, (w - dw) // 2:(w + dw) // 2] = True
    return hole


def test_the_child_copies_the_same_bytes_as_the_engine_process() -> None:
    image, hole = _photo(64, 80), _hole(64, 80)
    copier = NativeCopier()
    try:
        copier.submit(image, hole, hole)
        assert copier.pending
        out = copier.result()
        assert not copier.pending
        assert out is not None and np.array_equal(out, copy_ahead(image, hole, hole))
        assert copier.last_cpu_s > 0  # the child's own CPU time comes back with the copy
        tiny = np.zeros((5, 5), bool)
        tiny[2, 2] = True
        copier.submit(image[:5, :5], tiny, tiny)  # the same warm child serves the next job
        assert copier.result() is None  # smaller than a patch: copy_ahead gives none
    finally:
        copier.stop()


def test_a_cancel_while_waiting_ends_the_child_and_the_next_job_runs() -> None:
    image, hole = _photo(900, 900), _hole(900, 900, 0.5)  # seconds of native work
    copier = NativeCopier()
    try:
        copier.submit(image, hole, hole)
        child = copier.process

        def cancel() -> None:
            raise FillCancelled("cancelled")

        with pytest.raises(FillCancelled):
            copier.result(cancel)
        assert child.poll() is not None  # stopped, not left running
        assert copier.process is None and not copier.pending
        small, small_hole = _photo(48, 48, 1), _hole(48, 48)
        copier.submit(small, small_hole, small_hole)
        assert np.array_equal(copier.result(), copy_ahead(small, small_hole, small_hole))
    finally:
        copier.stop()


def test_a_child_that_dies_gives_copy_failed_and_a_new_child_takes_over() -> None:
    image, hole = _photo(900, 900), _hole(900, 900, 0.5)
    copier = NativeCopier()
    try:
        copier.submit(image, hole, hole)
        killed = []

        def kill_once() -> None:
            if not killed:
                os.kill(copier.process.pid, signal.SIGKILL)
                killed.append(True)

        with pytest.raises(CopyFailed, match="ended unexpectedly"):
            copier.result(kill_once)
        small, small_hole = _photo(48, 48, 2), _hole(48, 48)
        copier.submit(small, small_hole, small_hole)
        assert copier.result() is not None
    finally:
        copier.stop()


def test_a_cancelled_default_fill_stops_its_copy() -> None:
    engine = Engine(device="cpu")
    image = _photo(900, 900)
    mask = _hole(900, 900, 0.5)
    seen: list[str] = []

    def cancel() -> bool:  # cancel as soon as the fill waits for the copy
        return "texture" in seen

    with pytest.raises(FillCancelled):
        engine.fill(FillRequest(image, mask, model="harmonic"), progress=lambda f, label: seen.append(label),
                    cancel=cancel)
    copier = engine._copier
    assert copier is not None and copier.process is None and not copier.pending


def test_a_script_without_a_main_guard_is_not_run_again_by_the_child(tmp_path) -> None:
    import subprocess
    import sys

    marker = tmp_path / "runs.txt"
    script = tmp_path / "fill_script.py"
    script.write_text(
        "import numpy as np\n"
        "from engine.texture.copier import NativeCopier\n"
        f"open({str(marker)!r}, 'a').write('run\\n')\n"
        "image = np.full((40, 40, 3), 128, np.uint8)\n"
        "hole = np.zeros((40, 40), bool); hole[10:30, 10:30] = True\n"
        "copier = NativeCopier(); copier.submit(image, hole, hole)\n"
        "print('copied' if copier.result() is not None else 'none')\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "copied"
    assert marker.read_text() == "run\n"  # once: the child never re-ran the script


def test_a_failed_copy_falls_back_to_the_own_search(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(device="cpu")
    image, mask = _photo(64, 64), _hole(64, 64)

    def broken(self, wait=None):
        self.stop()
        raise CopyFailed("the texture copy process ended unexpectedly (exit code -11)")

    monkeypatch.setattr(NativeCopier, "result", broken)
    result = engine.fill(FillRequest(image, mask, model="harmonic"))
    assert any("own search" in m for m in result.messages)
    assert "copy_cpu" not in result.timings or result.timings["copy_cpu"] == 0.0
    assert np.array_equal(result.image[~mask], image[~mask])
    assert not np.array_equal(result.image[mask], image[mask])


def test_messages_carry_arrays_without_pickle_and_refuse_other_types() -> None:
    import io

    from engine.texture.copier import read_message, send_message

    image, hole = _photo(7, 9), _hole(7, 9)
    stream = io.BytesIO()
    send_message(stream, {"job": "copy"}, (image, hole, hole.astype(np.float32)))
    stream.seek(0)
    header, arrays = read_message(stream)
    assert header["job"] == "copy" and [a.dtype for a in arrays] == [np.uint8, np.bool_, np.float32]
    assert np.array_equal(arrays[0], image) and np.array_equal(arrays[1], hole)
    forged = io.BytesIO(b'{"arrays": [{"dtype": "|O", "shape": [1]}]}\n' + b"\0" * 8)
    with pytest.raises(ValueError, match="unexpected array type"):
        read_message(forged)
    with pytest.raises(EOFError):
        read_message(io.BytesIO(b""))
