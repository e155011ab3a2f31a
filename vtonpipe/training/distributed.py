"""Data-parallel training under ``torchrun``: the process group, DDP wrapping, cross-rank reductions.

``torchrun`` (or SLURM via ``srun torchrun ...``, docs/TRAINING.md) sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` for each process; :func:`init_distributed`
joins the process group they describe (nccl on CUDA, gloo on CPU). Without them the process is
rank 0 of a world of 1 and every reduction is the identity.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run: rank, world size, local rank and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs, grids and metrics."""
        return self.rank == 0

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """The elementwise sum of ``t`` over ranks (``t`` itself in a world of 1)."""
        if self.enabled:
            t = t.to(self.device).clone()
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def all_reduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        """The elementwise mean of ``t`` over ranks."""
        return self.all_reduce_sum(t) / self.world_size if self.enabled else t

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank."""
        if not self.enabled:
            return flag
        return bool(self.all_reduce_sum(torch.tensor([int(flag)], device=self.device)).item() > 0)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def resolve_device(device: str | None, local_rank: int = 0) -> torch.device:
    """``cpu``, ``cuda`` (this process's GPU: ``cuda:<local rank>``), ``cuda:N``, or None / ``auto``
    (CUDA when available)."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device = f"cuda:{local_rank}"
    d = torch.device(device)
    if d.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device (CPU torch build or no GPU)")
    return d


def init_distributed(device: str | None = None) -> Distributed:
    """Join the process group of the torchrun environment (if any) and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world)
        log.info("rank %d of %d joined the %s process group on %s", rank, world, backend, dev)
    return Distributed(rank, world, local_rank, dev)


def shutdown(d: Distributed) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank`` derived from the run's ``seed`` (distinct per rank, 63 bits)."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def sync_batchnorm(module: nn.Module, d: Distributed) -> nn.Module:
    """BatchNorm layers turned into SyncBatchNorm (statistics over every rank's batch) when
    training on several CUDA ranks; unchanged otherwise (PyTorch's SyncBatchNorm runs on GPUs only:
    CPU ranks keep per-rank statistics, which the run log says)."""
    if not (d.enabled and has_batchnorm(module)):
        return module
    if d.device.type != "cuda":
        log.warning("BatchNorm statistics stay per rank on %s (SyncBatchNorm needs CUDA)", d.device)
        return module
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def data_parallel(module: nn.Module, d: Distributed, *, find_unused_parameters: bool = False) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel when the world is larger than 1 and it has
    trainable parameters (a frozen loss network is left as is)."""
    if not d.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [d.device.index] if d.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters)
