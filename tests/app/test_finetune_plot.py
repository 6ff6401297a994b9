"""The loss plot draws JSONL records (pixel checks); the runner's JSONL tail and exit classification."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from app.finetune_runner import JsonlTail, classify
from app.loss_plot import LossPlot, smoothed
from trainer import finetune_protocol as protocol
from trainer.records import MetricsLog, read_records


def _pixels(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(QImage.Format_RGB888)
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits(), np.uint8, count=image.bytesPerLine() * h)
    return data.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


def _near(pixels: np.ndarray, color: QColor, tolerance: int = 40) -> np.ndarray:
    target = np.array([color.red(), color.green(), color.blue()], np.int32)
    return np.abs(pixels.astype(np.int32) - target).sum(axis=2) < tolerance


def _write_run(folder: Path, steps: int = 20) -> Path:
    log = MetricsLog(folder)
    log.write({"kind": "start", "step": 0, "total_steps": steps})
    for step in range(1, steps + 1):
        log.write({"kind": "train", "step": step, "losses": {"image/g_l1": 1.0 / step, "image/g_adv": 0.7}})
        if step % 10 == 0:
            log.write({"kind": "val", "step": step, "table": {"all": {"psnr": 20.0}}})
    return folder


def test_plot_draws_the_curves_of_the_records(qtbot, tmp_path: Path) -> None:
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(400, 240)
    empty = _pixels(plot)
    plot.set_records(read_records(_write_run(tmp_path)))
    assert set(plot.series()) == {"image/g_l1", "image/g_adv"} and len(plot.series()["image/g_l1"]) == 20
    assert plot.uses_log_scale() is False  # 1/20 .. 1: a span of 20, not more
    pixels = _pixels(plot)
    rect = plot.plot_rect()
    inside = np.zeros(pixels.shape[:2], bool)
    inside[int(rect.top()) + 2: int(rect.bottom()) - 1, int(rect.left()) + 2: int(rect.right()) - 1] = True
    falling = _near(pixels, plot.color("image/g_l1")) & inside
    flat = _near(pixels, plot.color("image/g_adv")) & inside
    assert falling.sum() > 150 and flat.sum() > 150  # both curves are drawn
    assert not (_near(empty, plot.color("image/g_l1")) & inside).any()
    ys, xs = np.nonzero(falling)
    left = ys[xs < rect.left() + rect.width() * 0.1].mean()
    right = ys[xs > rect.left() + rect.width() * 0.9].mean()
    assert left < right - rect.height() * 0.5  # a falling loss: high on the left, low on the right
    fy, fx = np.nonzero(flat)
    assert np.ptp(fy[fx < rect.left() + rect.width() * 0.6]) <= 4  # a constant loss: flat (legend is top right)


def test_plot_adds_records_live_and_replaces_steps_of_a_resume(qtbot) -> None:
    plot = LossPlot()
    qtbot.addWidget(plot)
    for step in (1, 2, 3, 4):
        plot.add_record({"kind": "train", "step": step, "losses": {"l1": 5.0 - step}})
    plot.add_record({"kind": "val", "step": 4, "table": {}})  # ignored
    plot.add_record({"kind": "train", "step": 3, "losses": {"l1": 9.0}})  # resumed from step 2
    assert plot.series()["l1"] == [(1, 4.0), (2, 3.0), (3, 9.0)]
    plot.add_record({"kind": "train", "step": 4, "losses": {"l1": float("nan")}})
    assert len(plot.series()["l1"]) == 3


def test_plot_uses_a_log_scale_for_wide_ranges(qtbot) -> None:
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(300, 200)
    plot.set_records([{"kind": "train", "step": s, "losses": {"l": 10.0 ** -s}} for s in range(1, 6)])
    assert plot.uses_log_scale()
    pixels = _pixels(plot)
    assert (_near(pixels, plot.color("l")).sum()) > 100


def test_long_noisy_curves_are_smoothed(qtbot) -> None:
    assert smoothed([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # bias-corrected: no ramp from zero
    noisy = [1.0 + (0.5 if i % 2 else -0.5) for i in range(100)]
    assert np.ptp(smoothed(noisy)[20:]) < 0.2 < np.ptp(noisy)
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(400, 240)
    plot.set_records([{"kind": "train", "step": i + 1, "losses": {"l1": v}} for i, v in enumerate(noisy)])
    rect = plot.plot_rect()
    strong = _near(_pixels(plot), plot.color("l1"))
    ys, xs = np.nonzero(strong)
    ys = ys[(xs > rect.left() + 5) & (xs < rect.left() + rect.width() * 0.6)]
    assert len(ys) > 50 and np.ptp(ys) < rect.height() * 0.3  # the bold line is the calm average, not the zigzag


def test_tail_reads_complete_lines_and_notices_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = JsonlTail(path)
    assert tail.read() == (False, [])
    with open(path, "w") as handle:
        handle.write(json.dumps({"kind": "train", "step": 1}) + "\n" + '{"kind": "tra')
    assert tail.read() == (False, [{"kind": "train", "step": 1}])
    with open(path, "a") as handle:
        handle.write('in", "step": 2}\n')
    assert tail.read() == (False, [{"kind": "train", "step": 2}])
    replacement = tmp_path / "new.jsonl"
    replacement.write_text(json.dumps({"kind": "start", "step": 0}) + "\n")
    os.replace(replacement, path)  # as MetricsLog.truncate_after does on resume
    assert tail.read() == (True, [{"kind": "start", "step": 0}])


@pytest.mark.parametrize(("code", "crashed", "stderr", "state"), [
    (protocol.EXIT_OK, False, "", "registered"),
    (protocol.EXIT_STOPPED, False, "", "stopped"),
    (protocol.EXIT_OOM, False, "", "oom"),
    (protocol.EXIT_DISK_FULL, False, "", "disk-full"),
    (protocol.EXIT_NAME_TAKEN, False, "", "name-taken"),
    (protocol.EXIT_ERROR, False, "inpaint-finetune: error: no photos found in /x\n", "error"),
    (9, True, "", "crashed"),
    (1, False, "OSError: [Errno 28] No space left on device\n", "disk-full"),
    (1, False, "torch.OutOfMemoryError: CUDA out of memory.\n", "oom"),
    (1, False, "Traceback...\nValueError: bad\n", "crashed"),
])
def test_outcomes_are_classified(tmp_path: Path, code: int, crashed: bool, stderr: str, state: str) -> None:
    outcome = classify(code, crashed, tmp_path, stderr)
    assert outcome.state == state and outcome.message
    if state == "error":
        assert outcome.message == "no photos found in /x"


def test_status_message_wins(tmp_path: Path) -> None:
    protocol.write_status(tmp_path, "failed", "Training ran out of memory (batch 64, 512 px, cuda:0): try less.",
                     error="oom")
    outcome = classify(protocol.EXIT_OOM, False, tmp_path, "noise")
    assert outcome.message.startswith("Training ran out of memory (batch 64")
    protocol.write_status(tmp_path, "registered", "Registered x.", models=["x"])
    assert classify(0, False, tmp_path, "").models == ["x"]
