"""Task towers: one MLP per task on a shared representation (reused by the multi-task baselines)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from training.models.layers import MLP


class TaskTowers(nn.Module):
    """One MLP tower per task ending in one logit; sigmoid(logit) is the task's probability.

    forward takes one shared representation (B, d) or one per task (B, T, d, as MMoE, PLE and MGOE
    produce) and returns logits (B, T); training uses BCE on logits, the numerically stable form of
    BCE on the sigmoid output.
    """

    def __init__(self, in_dim: int, tasks: Sequence[str], hidden: Sequence[int], dropout: float = 0.0):
        super().__init__()
        self.tasks = list(tasks)
        self.towers = nn.ModuleList(
            nn.Sequential(MLP(in_dim, hidden, dropout), nn.Linear(hidden[-1] if hidden else in_dim, 1))
            for _ in self.tasks)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() == 3:
            if h.shape[1] != len(self.towers):
                raise ValueError(f"per-task inputs for {h.shape[1]} tasks, but there are {len(self.towers)} towers")
            return torch.cat([tower(h[:, t]) for t, tower in enumerate(self.towers)], dim=-1)
        return torch.cat([tower(h) for tower in self.towers], dim=-1)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """L_LTR = sum over tasks of the mean binary cross-entropy."""
        per_task = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
        return per_task.mean(dim=0).sum()
