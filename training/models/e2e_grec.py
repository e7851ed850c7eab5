"""E2E-GRec: end-to-end GNN + multi-task ranking (Xue et al., arXiv 2511.20564;
docs/method.md §E2E-GRec)."""
from __future__ import annotations

from typing import Sequence

import torch

from training.config import EncoderKind, ModelConfig
from training.data.examples import ExampleBatch
from training.data.nodes import NodeTable
from training.models.base import ModelOutput
from training.models.graphsage import SampledGraphSAGE
from training.models.lightgcn import SampledLightGCN, gfae_loss
from training.models.ltr import LTR


class E2EGRec(LTR):
    """E2E-GRec (docs/method.md §E2E-GRec): the LTR ranker plus a graph block from an encoder trained
    with it.

        X_v      = [E_v ; W f_v + b]                                   node input
        Z_v      = LightGCN_1(X over the sampled 1-hop list of v)      (or GraphSAGE, ablation)
        L_SSL    = mean_v ||Z_v - X_v||^2                              GFAE, identity decoder
        F_shared = MLP([X_u ; X_i]),  F_LTR = ctx(domain, weekday),  F_GNN = P [Z_u ; Z_i]
        F_cat    = [F_shared ; F_LTR ; F_GNN],  F_fused = sigmoid(W_g F_cat + b_g) ⊙ F_cat
        H        = [F_fused ; flatten(T + MHA_8(T))],  T = per-block projections as tokens
        p_t      = sigmoid(tower_t(H)),  L_LTR = sum_t BCE(p_t, y_t)

    The loss weights (GradNorm or fixed) are the trainer's business; `last_shared_layer` names the
    parameter GradNorm takes its gradient norms on.
    """

    def __init__(self, cfg: ModelConfig, nodes: NodeTable, num_domains: int, tasks: Sequence[str],
                 sparse_embeddings: bool = False):
        node_dim = cfg.id_dim + cfg.feature_dim  # NodeInput's out_dim: Z_v lives in X_v's space
        super().__init__(cfg, nodes, num_domains, tasks, sparse_embeddings, graph_dim=node_dim)
        self.encoder = (SampledLightGCN(nodes.degree) if cfg.encoder is EncoderKind.LIGHTGCN
                        else SampledGraphSAGE(node_dim))
        self.gfae = cfg.gfae

    def forward(self, batch: ExampleBatch) -> ModelOutput:
        x_u, x_i = self.targets(batch)
        z_u = self.encoder(x_u, batch.user, self.node_input)
        z_i = self.encoder(x_i, batch.item, self.node_input)
        logits = self.rank(batch, x_u, x_i, torch.cat([z_u, z_i], dim=-1))
        ssl = gfae_loss(torch.cat([z_u, z_i]), torch.cat([x_u, x_i])) if self.gfae else None
        return ModelOutput(logits, self.towers.loss(logits, batch.labels), ssl)

    def warm_start(self, ids: torch.Tensor) -> None:
        """Start the ID table from a pretrained one (the two-stage model's BPR-trained E): the way a
        team moves from two-stage to end to end, keeping what stage 1 learned."""
        if ids.shape != self.node_input.ids.weight.shape:
            raise ValueError(f"warm-start table {tuple(ids.shape)} != ID table {tuple(self.node_input.ids.weight.shape)}")
        with torch.no_grad():
            self.node_input.ids.weight.copy_(ids)

    def last_shared_layer(self) -> torch.Tensor:
        return self.encoder.last_shared_layer(self.node_input)
