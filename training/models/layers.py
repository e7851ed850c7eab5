"""Small building blocks shared by the models."""
from __future__ import annotations

from typing import Sequence

from torch import nn


class MLP(nn.Sequential):
    """Linear -> ReLU (-> Dropout) per hidden width; `out_dim` is the last width (or `in_dim` if none)."""

    def __init__(self, in_dim: int, widths: Sequence[int], dropout: float = 0.0, last_activation: bool = True):
        layers: list[nn.Module] = []
        prev = in_dim
        for i, w in enumerate(widths):
            layers.append(nn.Linear(prev, w))
            if last_activation or i < len(widths) - 1:
                layers.append(nn.ReLU())
                if dropout:
                    layers.append(nn.Dropout(dropout))
            prev = w
        super().__init__(*layers)
        self.out_dim = prev
