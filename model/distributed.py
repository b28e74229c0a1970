"""The training job's ranks under torchrun, and the few collectives the trainer needs.

``torchrun --nproc_per_node N [--nnodes M --rdzv_endpoint HOST:PORT] -m model.train ...`` starts
one process per rank and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
variables; :func:`init_world` then joins the process group (gloo on CPU, nccl on CUDA, each rank
on ``cuda:LOCAL_RANK``). ``python -m model.train`` alone is world size 1: no process group, and
every collective below is the identity.

Every collective waits at most ``timeout`` (``--dist_timeout``): a rank that dies or stalls ends
the job with an error instead of a hang (torchrun itself ends the others and names the failed
rank).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn

warnings.filterwarnings(  # its suggested successor is a private API; this one works
    "ignore", message="torch.distributed.nn.functional.all_gather is deprecated",
    category=FutureWarning)


@dataclass(frozen=True)
class World:
    """This process's ``rank`` among ``size`` ranks (``local_rank`` on its machine)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, metrics and the progress bar."""
        return self.rank == 0

    def gather_rows(self, x: torch.Tensor) -> torch.Tensor:
        """``cat`` over ranks (in rank order) of every rank's (b, H) ``x``, with gradient.

        The backward of ``torch.distributed.nn.functional.all_gather`` sums the gradients that
        all ranks computed for this rank's rows; a loss every rank computes identically on the
        gathered rows therefore gives this rank ``size ×`` its true gradient, which
        DistributedDataParallel's mean over ranks brings back to 1 ×.
        """
        if self.size == 1:
            return x
        return torch.cat(dist_nn.all_gather(x.contiguous()))

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """Σ over ranks of ``x`` (no gradient), on every rank."""
        if self.size == 1:
            return x
        x = x.clone()
        dist.all_reduce(x)
        return x

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (tensors and plain Python values, as ``torch.save`` writes and
        ``torch.load(weights_only=True)`` reads them), in rank order, on every rank."""
        if self.size == 1:
            return [obj]
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        blobs: list[Any] = [None] * self.size
        dist.all_gather_object(blobs, buffer.getvalue())
        return [torch.load(io.BytesIO(blob), weights_only=True) for blob in blobs]

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's picklable ``obj`` on every rank."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def init_world(device: torch.device, timeout_s: float) -> tuple[World, torch.device]:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; returns the world and this
    rank's device (``cuda:LOCAL_RANK`` for a CUDA ``device``)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), device
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=timedelta(seconds=timeout_s))
    return world, device


def close_world(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
