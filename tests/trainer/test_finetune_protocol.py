"""The fine-tune protocol is the editor's only door into the trainer: it must not drag torch or Qt along."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_protocol_loads_neither_torch_nor_qt() -> None:
    code = ("import json, sys; import trainer.finetune_protocol; "
            "print(json.dumps(sorted(m for m in ('torch', 'PySide6', 'cv2') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "torch" not in loaded and "PySide6" not in loaded, loaded


def test_the_protocol_names_the_job_module_the_editor_starts() -> None:
    from trainer import finetune_job, finetune_protocol

    assert finetune_job.__name__ == finetune_protocol.JOB_MODULE
