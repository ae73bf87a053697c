"""Distributed helpers that fall back to a single process.

Set up from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``): gloo on CPU, NCCL on CUDA. Every function
works without ``torch.distributed`` being initialised, so losses and samplers
run unchanged in one CPU process and in tests.

The gather in :func:`gather_with_grad` keeps gradients: the contrastive loss
needs the projections of all ranks as negatives, and a plain
``all_gather`` returns tensors cut from the graph, so the negatives of the
other ranks would receive no gradient (the bug of lightly #59 and
Lightning-bolts #179).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as torch_dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes:
        rank: global rank (0 in a single process).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        backend: ``"gloo"``, ``"nccl"`` or ``None`` (single process).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files and logs."""
        return self.rank == 0


def is_distributed() -> bool:
    """True when a process group is initialised."""
    return torch_dist.is_available() and torch_dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return torch_dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return torch_dist.get_world_size() if is_distributed() else 1


def launched_by_torchrun() -> bool:
    """True when torchrun's variables say this process is one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(use_cuda: bool, timeout_s: float = 1800.0) -> DistInfo:
    """Initialise the process group from torchrun's environment, if there is one.

    Args:
        use_cuda: pick NCCL and bind this process to GPU ``LOCAL_RANK``; else gloo.
        timeout_s: collective timeout.

    Returns:
        The process's :class:`DistInfo` (single-process defaults without torchrun).
    """
    if not launched_by_torchrun():
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not is_distributed():
        torch_dist.init_process_group(
            backend=backend, timeout=datetime.timedelta(seconds=timeout_s)
        )
    return DistInfo(
        rank=torch_dist.get_rank(),
        world_size=torch_dist.get_world_size(),
        local_rank=local_rank,
        backend=backend,
    )


def shutdown() -> None:
    """Destroy the process group if one exists."""
    if is_distributed():
        torch_dist.destroy_process_group()


def barrier() -> None:
    """Wait for all ranks (no-op in one process)."""
    if is_distributed():
        torch_dist.barrier()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sends each rank the gradient of its own slice.

    Every rank's loss depends on every rank's tensor, so the gradient of rank
    ``k``'s slice is the sum over ranks of their losses' gradients with respect
    to it: all-reduce the gradients, then keep the own slice.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gathered = [torch.empty_like(tensor) for _ in range(torch_dist.get_world_size())]
        torch_dist.all_gather(gathered, tensor.contiguous())
        return tuple(gathered)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack(grads)
        torch_dist.all_reduce(stacked, op=torch_dist.ReduceOp.SUM)
        return stacked[torch_dist.get_rank()]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, keeping gradients.

    Args:
        tensor: ``(n, ...)``; the same shape on every rank.

    Returns:
        ``(world_size * n, ...)``, rank 0's rows first. In one process, ``tensor``.
    """
    if not is_distributed() or world_size() == 1:
        return tensor
    return torch.cat(_GatherWithGrad.apply(tensor), dim=0)


def gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (same shape on every rank) from all ranks along dim 0."""
    if not is_distributed() or world_size() == 1:
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(world_size())]
    torch_dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered, dim=0)


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ranks (a copy; no-op in one process)."""
    if not is_distributed() or world_size() == 1:
        return values
    out = values.detach().clone()
    torch_dist.all_reduce(out, op=torch_dist.ReduceOp.SUM)
    return out / world_size()


def all_gather_object(value: Any) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order; ``[value]`` in one process."""
    if not is_distributed() or world_size() == 1:
        return [value]
    gathered: list[Any] = [None] * world_size()
    torch_dist.all_gather_object(gathered, value)
    return gathered
