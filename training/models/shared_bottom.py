"""Shared-Bottom multi-task baseline (Caruana, Machine Learning 1997; the MMoE/PLE papers' baseline).

    h0  = [X_u ; X_i ; F_LTR]            the features every baseline sees (docs/method.md §Baselines)
    S   = MLP_shared(h0)                 one bottom shared by all tasks
    p_t = sigmoid(tower_t(S)),  L_LTR = sum_t BCE(p_t, y_t)

Unlike `ltr`, no fusion layers: the plain hard-parameter-sharing reference for MMoE, PLE and MGOE.
"""
from __future__ import annotations

from typing import Sequence

from training.config import ModelConfig
from training.data.examples import ExampleBatch
from training.data.nodes import NodeTable
from training.models.base import ModelOutput, RankingModel
from training.models.layers import MLP
from training.models.towers import TaskTowers


class SharedBottom(RankingModel):
    def __init__(self, cfg: ModelConfig, nodes: NodeTable, num_domains: int, tasks: Sequence[str],
                 sparse_embeddings: bool = False):
        super().__init__(cfg, nodes, num_domains, tasks, sparse_embeddings)
        self.bottom = MLP(self.input_dim, cfg.shared_hidden, cfg.dropout)
        self.towers = TaskTowers(self.bottom.out_dim, self.tasks, cfg.tower_hidden, cfg.dropout)

    def forward(self, batch: ExampleBatch) -> ModelOutput:
        logits = self.towers(self.bottom(self.features(batch)))
        return ModelOutput(logits, self.towers.loss(logits, batch.labels))
