"""DistributedDataParallel plumbing: process group from torchrun's environment, gathers, step agreement."""
from __future__ import annotations

import inspect
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, NoReturn, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    joined: bool = False  # in a process group (launched by torchrun), even of one rank
    owner: bool = False   # this context created the group, so `shutdown` destroys it

    @property
    def enabled(self) -> bool:
        return self.joined or self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """Whether this process is a rank that torchrun (or TorchDistributor through it) started."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group torchrun describes; a plain single process otherwise.

    NCCL on CUDA (each rank on cuda:LOCAL_RANK), gloo on CPU. Under torchrun the DDP path runs even
    with one rank, so `torchrun --nproc-per-node 1` exercises it on a single GPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not launched_by_torchrun():
        return DistContext(0, 1, 0, device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    owner = not dist.is_initialized()
    if owner:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device, joined=True, owner=owner)


def wrap_ddp(model: nn.Module, ctx: DistContext) -> nn.Module:
    """DDP around `model`; its buffers (node degrees and features) are constant, so they are not
    re-broadcast before every forward (the flag's name changed in torch 2.13)."""
    params = inspect.signature(nn.parallel.DistributedDataParallel).parameters
    no_sync: dict[str, Any] = ({"forward_sync_buffers": False} if "forward_sync_buffers" in params
                               else {"broadcast_buffers": False})
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[ctx.local_rank] if ctx.device.type == "cuda" else None, **no_sync)


def shutdown(ctx: DistContext) -> None:
    """Destroy the process group if `ctx` created it. A group the caller set up stays: destroying it
    and joining again through torchrun's store can hang the next init (two fits in one worker did)."""
    if ctx.owner and dist.is_initialized():
        dist.destroy_process_group()


def exit_rank(code: int) -> NoReturn:
    """End a torchrun rank with `code` once its work is done, skipping interpreter finalization.

    gloo's worker threads free a finished collective's tensors a moment after it returns, and
    freeing a tensor whose Python object was already dropped needs the interpreter. When that
    moment falls inside finalization the rank aborts ("terminate called without an active
    exception", SIGABRT) after all its work succeeded, and torchrun fails the job. Destroying the
    process group does not join those threads once a DDP model was built on it (torch 2.13 keeps
    the group alive), and a barrier before the exit only made the abort rarer (docs/trainer.md §DDP
    has the counts). Skipping finalization avoids it: output is flushed and logging shut down here;
    every file and tracked run is closed by then.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def all_have(ctx: DistContext, have: bool) -> bool:
    """True when every rank has `have`; ranks agree each step so none waits on a missing peer."""
    if not ctx.enabled:
        return have
    flag = torch.tensor([1 if have else 0], device=ctx.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def in_step(ctx: DistContext, batches: Iterable[T]) -> Iterator[T]:
    """Yield batches while every rank still has one.

    Shards differ by at most a row group (petastorm) or a row (arrow), so at the end of an epoch
    the ranks with extra batches drop them: DDP needs the same number of steps on every rank.
    """
    it = iter(batches)
    while True:
        batch = next(it, None)
        if not all_have(ctx, batch is not None):
            for _ in it:  # drain, so the reader's threads finish cleanly
                pass
            return
        assert batch is not None  # this rank is among those that have one
        yield batch


def gather_cat(ctx: DistContext, x: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor of rank-dependent length along dim 0 across ranks, in rank order."""
    if not ctx.enabled:
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(ctx.world)]
    dist.all_gather(sizes, n)
    sizes_list = [int(s.item()) for s in sizes]
    longest = max(sizes_list)
    padded = torch.zeros((longest, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x
    parts = [torch.zeros_like(padded) for _ in range(ctx.world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes_list)])


def average_(ctx: DistContext, x: torch.Tensor) -> None:
    """In-place mean across ranks."""
    if ctx.enabled:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        x.div_(ctx.world)
