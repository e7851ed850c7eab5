"""LTR baseline: E2E-GRec's ranking side without any graph (docs/method.md §LTR; Xue et al.,
arXiv 2511.20564).

    F_shared = MLP([X_u ; X_i]),  F_LTR = ctx(domain, weekday)
    H        = TwoLevelFusion(F_shared, F_LTR)     gated bottom fusion + block self-attention
    p_t      = sigmoid(tower_t(H)),  L_LTR = sum_t BCE(p_t, y_t)

The E2E-GRec table reports every model's AUC as a relative lift over this production-style
multi-task ranker. The graph models derive from it: two-stage adds a block of frozen pretrained
graph embeddings, E2E-GRec a block of its end-to-end encoder's output, each as the third fusion
block F_GNN = ReLU(P [Z_u ; Z_i]); so their lift over LTR is what the graph block adds.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from training.config import FusionKind, ModelConfig
from training.data.examples import ExampleBatch
from training.data.nodes import NodeTable
from training.models.base import ModelOutput, RankingModel
from training.models.fusion import TwoLevelFusion
from training.models.layers import MLP
from training.models.towers import TaskTowers


class LTR(RankingModel):
    """Shared-bottom DNN over [X_u ; X_i], the F_LTR block, two-level fusion and one tower per task.

    `graph_dim` > 0 adds the F_GNN block over a (B, 2·graph_dim) graph input (subclasses supply it).
    """

    def __init__(self, cfg: ModelConfig, nodes: NodeTable, num_domains: int, tasks: Sequence[str],
                 sparse_embeddings: bool = False, graph_dim: int = 0):
        super().__init__(cfg, nodes, num_domains, tasks, sparse_embeddings)
        self.shared_bottom = MLP(2 * self.node_input.out_dim, cfg.shared_hidden, cfg.dropout)
        widths = [self.shared_bottom.out_dim, self.context.out_dim]
        self.graph_block: Optional[nn.Module] = None
        if graph_dim:
            self.graph_block = nn.Sequential(nn.Linear(2 * graph_dim, cfg.gnn_dim), nn.ReLU())
            widths.append(cfg.gnn_dim)
        self.fusion = TwoLevelFusion(widths, cfg.attention_dim, cfg.attention_heads,
                                     upper=cfg.fusion is FusionKind.TWO_LEVEL)
        self.towers = TaskTowers(self.fusion.out_dim, self.tasks, cfg.tower_hidden, cfg.dropout)

    def rank(self, batch: ExampleBatch, x_u: torch.Tensor, x_i: torch.Tensor,
             graph: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Task logits (B, T) from the target inputs and, with a graph block, [Z_u ; Z_i]."""
        blocks = [self.shared_bottom(torch.cat([x_u, x_i], dim=-1)), self.context(batch.domain_id, batch.day)]
        if self.graph_block is not None:
            blocks.append(self.graph_block(graph))
        return self.towers(self.fusion(blocks))

    def forward(self, batch: ExampleBatch) -> ModelOutput:
        logits = self.rank(batch, *self.targets(batch))
        return ModelOutput(logits, self.towers.loss(logits, batch.labels))
