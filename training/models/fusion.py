"""Two-level feature fusion of E2E-GRec (docs/method.md §Fusion), reusable by any model with feature
blocks."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class GatedFusion(nn.Module):
    """Bottom level: F_fused = sigmoid(W_g F_cat + b_g) ⊙ F_cat, F_cat = concat of the blocks."""

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Linear(dim, dim)
        self.out_dim = dim

    def forward(self, f_cat: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate(f_cat)) * f_cat


class BlockAttention(nn.Module):
    """Upper level: each block projected to one width is a token; tokens' = tokens + MHA(tokens),
    flattened (multi-head self-attention, Vaswani et al. 2017, with a residual connection).

    The attention is written out for the few (3-4) tokens rather than run through
    `nn.MultiheadAttention`'s fused kernels: those tile long sequences, and at this length their
    backward pass took half of an E2E-GRec step on the H100 (`bench/train.py --profile`). The parameters
    are `nn.MultiheadAttention`'s, so the maths and checkpoints are unchanged.
    """

    def __init__(self, widths: Sequence[int], dim: int, heads: int):
        super().__init__()
        self.project = nn.ModuleList(nn.Linear(w, dim) for w in widths)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.heads = heads
        self.out_dim = dim * len(widths)

    def forward(self, blocks: Sequence[torch.Tensor]) -> torch.Tensor:
        tokens = torch.stack([p(b) for p, b in zip(self.project, blocks)], dim=1)  # (B, n, dim)
        return (tokens + self._self_attention(tokens)).flatten(1)

    def _self_attention(self, x: torch.Tensor) -> torch.Tensor:
        b, n, dim = x.shape
        mha = self.attention
        q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).view(b, n, 3, self.heads, -1).unbind(2)
        # Broadcast products, not batched matmuls: B * heads separate 3x3 products are too small for
        # a GEMM kernel, while (B, n, n, heads, d) elementwise work is a few MB per step.
        scores = (q[:, :, None] * k[:, None]).sum(-1) * (q.shape[-1] ** -0.5)      # (B, n, m, h)
        mixed = (scores.softmax(dim=2)[..., None] * v[:, None]).sum(2).reshape(b, n, dim)
        return mha.out_proj(mixed)


class TwoLevelFusion(nn.Module):
    """E2E-GRec's fusion over [F_shared, F_LTR, F_GNN]: output = concat(F_fused, upper(blocks)).

    `upper=False` is the bottom-only ablation (output = F_fused).
    """

    def __init__(self, widths: Sequence[int], attention_dim: int, heads: int, upper: bool = True):
        super().__init__()
        self.bottom = GatedFusion(sum(widths))
        self.upper = BlockAttention(widths, attention_dim, heads) if upper else None
        self.out_dim = self.bottom.out_dim + (self.upper.out_dim if self.upper is not None else 0)

    def forward(self, blocks: Sequence[torch.Tensor]) -> torch.Tensor:
        fused = self.bottom(torch.cat(list(blocks), dim=-1))
        if self.upper is None:
            return fused
        return torch.cat([fused, self.upper(blocks)], dim=-1)
