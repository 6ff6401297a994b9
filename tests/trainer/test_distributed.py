"""DDP: two Gloo processes under torch.distributed.run end with identical weights; the sampler shards and resumes."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from engine.paths import REPO_ROOT
from tests.trainer.conftest import TINY
from trainer.distributed import InfiniteDistributedSampler
from trainer.records import read_records


def test_sampler_shards_ranks_and_resumes_mid_epoch() -> None:
    data = list(range(10))
    ranks = [list(itertools.islice(InfiniteDistributedSampler(data, 2, r, seed=3), 10)) for r in (0, 1)]
    first_epoch = [i for rank in ranks for e, i in rank[:5]]
    assert sorted(first_epoch) == data  # each epoch split between the ranks, no overlap
    assert all(e == 1 for e, _ in ranks[0][5:])  # then the next epoch, reshuffled
    resumed = list(itertools.islice(InfiniteDistributedSampler(data, 2, 0, seed=3, start=3), 7))
    assert resumed == ranks[0][3:]


def test_two_gloo_processes_end_with_identical_weights(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    hashes = tmp_path / "hashes"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    sets = [arg for item in TINY for arg in ("--set", item)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(Path(__file__).with_name("ddp_weights_child.py")), str(hashes),  # inpaint-train, then each rank's hash
           "--data", str(photos), "--out", str(out), "--steps", "3", "--stage", "joint", "--device", "cpu", *sets]
    proc = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = (hashes / "rank-0.sha256").read_text()
    rank1 = (hashes / "rank-1.sha256").read_text()
    assert rank0 == rank1 and len(rank0.strip()) == 64
    start = read_records(out, "start")
    assert len(start) == 1 and start[0]["world_size"] == 2  # rank 0 alone writes the records
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["ckpt-00000003.safetensors"]
