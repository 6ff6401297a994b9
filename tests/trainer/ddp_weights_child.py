"""Run by the DDP test under ``torch.distributed.run``: ``python ddp_weights_child.py HASH_DIR TRAINER_ARGS...``.

``inpaint-train TRAINER_ARGS`` as usual, and when its training ends each rank writes a SHA-256 of every weight
of its stage (generators, discriminators, EMA) to ``HASH_DIR/rank-N.sha256``, so the test can compare ranks.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from trainer import checkpoints, loop
from trainer.cli import main


def weights_hash(stage: loop.Stage) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(checkpoints.flatten_state(stage.state_dict())[0].items()):
        digest.update(name.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def hashing_run(folder: Path):
    run = loop._Trainer.run

    def run_then_hash(self: loop._Trainer) -> loop.RunSummary:
        summary = run(self)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank-{self.ctx.rank}.sha256").write_text(weights_hash(self.stage) + "\n")
        return summary

    return run_then_hash


if __name__ == "__main__":
    loop._Trainer.run = hashing_run(Path(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
