"""Node input X_v = concat(ID embedding of v, linear projection of v's side features)
(docs/method.md §Node input)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class NodeInput(nn.Module):
    """X_v = [E_v ; W f_v + b] (E2E-GRec, Xue et al. 2025, node input of the GNN and of the shared bottom).

    `features` is the block-structured side-feature table of every node ([user | item], see
    training.data.nodes), held as a buffer so neighbours' inputs can be formed on the device.
    `aggregate` computes sum_j a_j X_{x_j} over a padded neighbour list in one fused gather +
    weighted sum (`F.embedding_bag`, per_sample_weights), using linearity:
    sum_j a_j X_j = [sum_j a_j E_j ; W (sum_j a_j f_j) + b sum_j a_j].
    """

    features: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, features: torch.Tensor, user_width: int, id_dim: int, feature_dim: int,
                 sparse: bool = False):
        super().__init__()
        if features.shape[1] == 0:
            raise ValueError("the node table has no side features; NodeInput needs at least one")
        self.user_width = user_width
        self.sparse = sparse
        self.ids = nn.Embedding(features.shape[0], id_dim, sparse=sparse)
        nn.init.normal_(self.ids.weight, std=0.1)
        self.project = nn.Linear(features.shape[1], feature_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(feature_dim))
        self.register_buffer("features", features.float())
        self.out_dim = id_dim + feature_dim

    def pad_features(self, features: torch.Tensor, side: str) -> torch.Tensor:
        """A batch's own user or item features placed in their block of the node feature layout."""
        total = self.features.shape[1]
        before = 0 if side == "user" else self.user_width
        width = self.user_width if side == "user" else total - self.user_width
        if features.shape[1] != width:
            raise ValueError(f"{side}_features has width {features.shape[1]} but gold.nodes' {side} features have "
                             f"width {width}: examples and nodes come from different builds")
        return F.pad(features.to(self.features.dtype), (before, total - before - width))

    def forward(self, nodes: torch.Tensor, features: Optional[torch.Tensor], side: str) -> torch.Tensor:
        """X of `nodes`; `features` are the batch's own (B, width) side features, or None to read
        them from the node table (slim rows)."""
        f = self.features[nodes] if features is None else self.pad_features(features, side)
        return torch.cat([self.ids(nodes), self.project(f) + self.bias], dim=-1)

    def aggregate(self, nbr_ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_j weights[:, j] * X_{nbr_ids[:, j]} for each row, (B, k) -> (B, out_dim).

        Entries of weight 0 (padding, the masked target edge) are pointed at rows spread over the
        table: they add exactly 0 either way, but padded lists name one row (PAD_NODE) millions of
        times per batch, and embedding_bag's backward sums each row's entries in one segment, so
        that row serialised the step (26 of 35 ms per 65,536-example step on an H200).
        """
        spread = torch.arange(nbr_ids.numel(), device=nbr_ids.device).view_as(nbr_ids) % self.ids.num_embeddings
        nbr_ids = torch.where(weights != 0, nbr_ids, spread.to(nbr_ids.dtype))
        ids = F.embedding_bag(nbr_ids, self.ids.weight, per_sample_weights=weights, mode="sum", sparse=self.sparse)
        feats = F.embedding_bag(nbr_ids, self.features, per_sample_weights=weights.to(self.features.dtype),
                                mode="sum")
        return torch.cat([ids, self.project(feats) + self.bias * weights.sum(1, keepdim=True)], dim=-1)
