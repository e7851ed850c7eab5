"""Run by torchrun (2 processes, gloo) from test_distributed_exit.py: the exit that used to abort.

A DDP model keeps the process group's worker threads alive to the end; rank 1 leaves its last
all_gather straight for the exit while rank 0 is still busy, so a worker thread frees that
collective's tensors just as the interpreter would be finalizing. argv[1] "finalize" exits the
plain way, "exit_rank" through training.distributed.exit_rank, as training.cli's ranks do.
"""
from __future__ import annotations

import sys
import time

import torch
import torch.distributed as dist

from training.distributed import exit_rank


def gather() -> torch.Tensor:
    parts = [torch.zeros(1000) for _ in range(2)]  # dropped by Python before gloo lets go of them
    dist.all_gather(parts, torch.ones(1000))
    return torch.cat(parts)


if __name__ == "__main__":
    dist.init_process_group("gloo")
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 1))
    for _ in range(20):
        gather()
    if dist.get_rank() == 0:
        time.sleep(0.2)
    gather()
    dist.destroy_process_group()
    if sys.argv[1] == "exit_rank":
        exit_rank(0)
