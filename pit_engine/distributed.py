"""Multi-process training through torchrun: joining the process group it describes.

    torchrun --standalone --nproc_per_node 8 -m pit_engine train --config FILE.toml
    torchrun --nnodes 2 --node_rank R --rdzv_backend c10d --rdzv_endpoint HOST:29400 \\
             --nproc_per_node 8 -m pit_engine train --config FILE.toml

Every rank runs the same Trainer: DistributedDataParallel averages the gradients, each rank
draws its own slice of every global batch, rank 0 writes the run directory and checkpoints.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def join(device: str) -> None:
    """Join torchrun's process group: NCCL when this rank trains on a GPU, gloo on CPUs."""
    if not launched_by_torchrun() or dist.is_initialized():
        return
    on_gpu = torch.cuda.is_available() and device != "cpu"
    if on_gpu:
        torch.cuda.set_device(local_rank())
    dist.init_process_group("nccl" if on_gpu else "gloo")


def leave(wait: bool = True) -> None:
    if dist.is_initialized():
        if wait:
            dist.barrier()  # nobody tears the group down while rank 0 still writes its last checkpoint
        dist.destroy_process_group()



def everyone(flag: bool, device, world: int) -> bool:
    """Whether `flag` holds on every rank (one MIN all-reduce; itself in one process)."""
    if world == 1:
        return flag
    agreed = torch.tensor([int(flag)], device=device)
    dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
    return bool(agreed.item())


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The sum of `values` over the ranks of a running process group (itself without one)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(values)
    return values


def mean_over_ranks(values: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(values)
        values /= world
    return values
