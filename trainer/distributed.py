"""Everything about running on several processes, in one place (DistributedDataParallel under torchrun).

Distributed mode is on only when ``RANK`` is set (``torchrun`` sets it): NCCL on CUDA, Gloo on the CPU.
Otherwise the same calls are cheap no-ops, so the single-process path runs the same code.
Rank 0 alone writes logs, samples and checkpoints (``ctx.is_main``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler

from engine.devices import resolve_device
from engine.errors import EngineError


@dataclass
class DistContext:
    """Rank, world size and device of this process; all distributed calls go through it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    enabled: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in DistributedDataParallel when distributed, else itself."""
        if not self.enabled:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def sampler(self, dataset: Dataset, seed: int, start: int = 0) -> InfiniteDistributedSampler:
        """An endless, resumable sampler giving this rank its share of each shuffled epoch."""
        return InfiniteDistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank, seed=seed,
                                          start=start)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average a dict of floats over the ranks (all ranks must call it together)."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(tensor)
        return {k: float(v) / self.world_size for k, v in zip(keys, tensor.tolist())}

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (used for abort)."""
        if not self.enabled:
            return flag
        tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self._comm_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (all ranks must call it together)."""
        if not self.enabled:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel wrapper."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def setup(device_preference: str = "auto") -> DistContext:
    """Join the process group when launched by torchrun (``RANK`` set); otherwise a single-process context."""
    if "RANK" not in os.environ:
        return DistContext(device=resolve_device(device_preference))
    rank = int(os.environ["RANK"])
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if device.type == "mps":
        raise EngineError("multi-process training on Apple MPS is not supported; use --set run.device=cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device, enabled=True)


class InfiniteDistributedSampler(DistributedSampler):
    """DistributedSampler that never ends: epoch after epoch (reshuffled per epoch), from sample ``start``.

    Yields ``(epoch, index)`` pairs, so a dataset whose random draws depend on the epoch gets it with every
    item, in any worker process. ``start`` counts the samples this rank has already drawn, so resuming at
    ``step * batch_size`` continues with exactly the samples an uninterrupted run would have seen.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int, start: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        per_epoch = self.num_samples
        epoch, offset = divmod(self.start, per_epoch)
        while True:
            self.set_epoch(epoch)
            indices = list(super().__iter__())
            for index in indices[offset:]:
                yield epoch, index
            offset = 0
            epoch += 1
