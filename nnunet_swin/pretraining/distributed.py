"""Data-parallel helpers for ``torchrun`` and SLURM (``job.py`` exports submitit's ranks as the same ``env://``
variables): process group (nccl on GPU, gloo on CPU), gradient and statistic averaging.

Gradients are averaged by hand (one flat all-reduce per step) instead of through ``DistributedDataParallel``: the
pretraining graph leaves some encoder parameters unused by design (SMIT's skip norms), which DDP would need
``find_unused_parameters`` for, and the teacher's centre statistics need their own all-reduce anyway.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world(device_kind: str) -> World:
    """Join the process group (``torchrun``'s or a SLURM job's, ``env://``) when ``WORLD_SIZE > 1`` (nccl for CUDA,
    gloo otherwise)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return World(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size())


def all_reduce_mean_(tensors: list[torch.Tensor], world: World) -> None:
    """In-place mean over ranks of a list of tensors (one flat all-reduce)."""
    if not world.distributed or not tensors:
        return
    flat = torch.cat([t.reshape(-1).float() for t in tensors])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset:offset + n].view_as(t).to(t.dtype))
        offset += n


def average_gradients(parameters, world: World) -> None:
    all_reduce_mean_([p.grad for p in parameters if p.grad is not None], world)


def broadcast_module(module: torch.nn.Module, world: World) -> None:
    """Rank 0's parameters and buffers on every rank."""
    if not world.distributed:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def broadcast_object(obj, world: World):
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def parameters_checksum(module: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.double().sum().item() * (i + 1) for i, p in enumerate(module.parameters())))


def assert_in_sync(module: torch.nn.Module, world: World) -> bool:
    """True when every rank holds the same parameters (compared by a weighted checksum)."""
    if not world.distributed:
        return True
    device = next(module.parameters()).device
    value = torch.tensor([parameters_checksum(module)], dtype=torch.float64, device=device)
    values = [torch.zeros_like(value) for _ in range(world.size)]
    dist.all_gather(values, value)
    return all(abs(float(v) - float(values[0])) <= 1e-9 * max(1.0, abs(float(values[0]))) for v in values)


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
