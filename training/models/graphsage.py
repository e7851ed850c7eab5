"""GraphSAGE encoder (ablation) on the same sampled 1-hop lists."""
from __future__ import annotations

import torch
from torch import nn

from training.data.examples import Neighbours
from training.models.node_input import NodeInput


class SampledGraphSAGE(nn.Module):
    """GraphSAGE-mean (Hamilton et al., NeurIPS 2017), one layer, linear output:

        h_N(v) = mean_{x in S(v)} X_x,        Z_v = W [X_v ; h_N(v)] + b

    No nonlinearity or L2 normalisation, so Z_v lives in X_v's space and the GFAE identity decoder
    (||Z_v - X_v||^2) stays meaningful. A node without neighbours has h_N(v) = 0.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.combine = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor, nbr: Neighbours, node_input: NodeInput) -> torch.Tensor:
        mask = nbr.mask()
        mean_weights = mask / mask.sum(dim=1, keepdim=True).clamp_min(1.0)
        h = node_input.aggregate(nbr.ids, mean_weights).to(x.dtype)
        return self.combine(torch.cat([x, h], dim=-1))

    def last_shared_layer(self, node_input: NodeInput) -> torch.Tensor:
        return self.combine.weight
