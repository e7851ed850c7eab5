"""Sampled LightGCN encoder and the GFAE self-supervised loss (docs/method.md §LightGCN, §GFAE)."""
from __future__ import annotations

import torch
from torch import nn

from training.data.examples import Neighbours
from training.models.node_input import NodeInput


class SampledLightGCN(nn.Module):
    """LightGCN (He et al., SIGIR 2020) over an example's importance-sampled 1-hop lists, K = 1.

        e_v^(1) = deg(v)/|S(v)| * sum_{x in S(v)} 1/sqrt(deg(v) deg(x)) * e_x^(0),   e^(0) = X
        Z_v     = (e_v^(0) + e_v^(1)) / 2                                      (mean over layers 0..K)

    No weights, no nonlinearity. deg are full-graph degrees: deg(v) comes with v's list (the
    resident gold.neighbors table, or a self-contained row's own column), deg(x) from `node_degree`
    (gold.nodes.degree, a buffer); the deg(v)/|S(v)| factor turns the sample sum
    into an estimate of the full-neighbourhood sum. S(v) is the sampled list less the example's own
    target edge (`Neighbours.exclude`). A node without neighbours gets e^(1) = 0.
    """

    node_degree: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, node_degree: torch.Tensor):
        super().__init__()
        self.register_buffer("node_degree", node_degree.float())

    def neighbour_weights(self, nbr: Neighbours) -> torch.Tensor:
        deg_v = nbr.degree.float().clamp_min(1.0)[:, None]
        deg_x = self.node_degree[nbr.ids].clamp_min(1.0)
        mask = nbr.mask()
        scale = deg_v / mask.sum(dim=1, keepdim=True).clamp_min(1.0)
        return mask * torch.rsqrt(deg_v * deg_x) * scale

    def forward(self, x: torch.Tensor, nbr: Neighbours, node_input: NodeInput) -> torch.Tensor:
        e1 = node_input.aggregate(nbr.ids, self.neighbour_weights(nbr))
        return (x + e1.to(x.dtype)) / 2

    def last_shared_layer(self, node_input: NodeInput) -> torch.Tensor:
        # No weights of its own: the last layer both losses share is the node input's projection.
        return node_input.project.weight


def gfae_loss(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """GFAE with the identity decoder: L_SSL = mean over target nodes of ||Z_v - X_v||^2."""
    return (z.float() - x.float()).pow(2).sum(dim=-1).mean()
