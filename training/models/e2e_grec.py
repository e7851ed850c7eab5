"""E2E-GRec: end-to-end GNN + multi-task ranking (Xue et al., arXiv 2511.20564; SPEC §6)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from training.config import EncoderKind, FusionKind, ModelConfig
from training.data.examples import ExampleBatch
from training.data.nodes import NodeTable
from training.models.fusion import TwoLevelFusion
from training.models.graphsage import SampledGraphSAGE
from training.models.layers import MLP
from training.models.lightgcn import SampledLightGCN, gfae_loss
from training.models.node_input import NodeInput
from training.models.towers import TaskTowers

WEEKDAYS = 7


@dataclass
class ModelOutput:
    logits: torch.Tensor             # (B, T)
    ltr_loss: torch.Tensor           # L_LTR, summed over tasks
    ssl_loss: Optional[torch.Tensor]  # L_SSL, None when the model has no self-supervised loss


class ContextFeatures(nn.Module):
    """F_LTR, the task-side block: embeddings of the item's domain and of the impression's weekday."""

    def __init__(self, num_domains: int, dim: int):
        super().__init__()
        self.domain = nn.Embedding(num_domains, dim)
        self.weekday = nn.Embedding(WEEKDAYS, dim)
        self.mix = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU())
        self.out_dim = dim

    def forward(self, domain_id: torch.Tensor, day: torch.Tensor) -> torch.Tensor:
        weekday = (day + 3) % WEEKDAYS  # day 0 (1970-01-01) was a Thursday; Monday = 0
        return self.mix(torch.cat([self.domain(domain_id), self.weekday(weekday)], dim=-1))


class E2EGRec(nn.Module):
    """E2E-GRec (SPEC §6):

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
        super().__init__()
        self.tasks = list(tasks)
        self.node_input = NodeInput(nodes.features, nodes.user_width, cfg.id_dim, cfg.feature_dim,
                                    sparse=sparse_embeddings)
        dim = self.node_input.out_dim
        self.encoder = (SampledLightGCN(nodes.degree) if cfg.encoder is EncoderKind.LIGHTGCN
                        else SampledGraphSAGE(dim))
        self.gfae = cfg.gfae
        self.shared_bottom = MLP(2 * dim, cfg.shared_hidden, cfg.dropout)
        self.context = ContextFeatures(num_domains, cfg.ltr_dim)
        self.graph_block = nn.Sequential(nn.Linear(2 * dim, cfg.gnn_dim), nn.ReLU())
        widths = [self.shared_bottom.out_dim, self.context.out_dim, cfg.gnn_dim]
        self.fusion = TwoLevelFusion(widths, cfg.attention_dim, cfg.attention_heads,
                                     upper=cfg.fusion is FusionKind.TWO_LEVEL)
        self.towers = TaskTowers(self.fusion.out_dim, self.tasks, cfg.tower_hidden, cfg.dropout)

    def forward(self, batch: ExampleBatch) -> ModelOutput:
        x_u = self.node_input(batch.user_node, batch.user_features, "user")
        x_i = self.node_input(batch.item_node, batch.item_features, "item")
        z_u = self.encoder(x_u, batch.user, self.node_input)
        z_i = self.encoder(x_i, batch.item, self.node_input)
        blocks = [self.shared_bottom(torch.cat([x_u, x_i], dim=-1)),
                  self.context(batch.domain_id, batch.day),
                  self.graph_block(torch.cat([z_u, z_i], dim=-1))]
        logits = self.towers(self.fusion(blocks))
        ssl = gfae_loss(torch.cat([z_u, z_i]), torch.cat([x_u, x_i])) if self.gfae else None
        return ModelOutput(logits, self.towers.loss(logits, batch.labels), ssl)

    def last_shared_layer(self) -> nn.Parameter:
        return self.encoder.last_shared_layer(self.node_input)

    def sparse_parameters(self) -> list[nn.Parameter]:
        """Parameters with sparse gradients (the node ID table when sparse embeddings are on)."""
        return [self.node_input.ids.weight] if self.node_input.sparse else []
