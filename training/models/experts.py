"""Experts and softmax gates, shared by MMoE, PLE and MGOE."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from training.models.layers import MLP


class ExpertSet(nn.Module):
    """n expert MLPs over one input: (B, in_dim) -> (B, n, out_dim)."""

    def __init__(self, n: int, in_dim: int, hidden: Sequence[int], dropout: float = 0.0):
        super().__init__()
        self.experts = nn.ModuleList(MLP(in_dim, hidden, dropout) for _ in range(n))
        self.out_dim = hidden[-1]

    def __len__(self) -> int:
        return len(self.experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([e(x) for e in self.experts], dim=1)


class SoftmaxGate(nn.Module):
    """g = softmax(W x + b) over n experts; mix(g, E) = sum_k g_k E_k."""

    def __init__(self, in_dim: int, n: int):
        super().__init__()
        self.logits = nn.Linear(in_dim, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x).float(), dim=-1).to(x.dtype)


def mix(weights: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """(B, n) weights, (B, n, d) expert outputs -> (B, d)."""
    return torch.einsum("bn,bnd->bd", weights.to(experts.dtype), experts)
