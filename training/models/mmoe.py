"""MMoE: Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).

    h0    = [X_u ; X_i ; F_LTR]
    E_k   = MLP_k(h0),                k = 1..n (n = --experts, 4)
    g_t   = softmax(W_t h0 + b_t)     one gate per task over all n experts
    p_t   = sigmoid(tower_t(sum_k g_t,k E_k)),  L_LTR = sum_t BCE(p_t, y_t)

The gates are returned in ModelOutput.gates (one per task) for the utilisation log.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from training.config import ModelConfig
from training.data.examples import ExampleBatch
from training.data.nodes import NodeTable
from training.models.base import ModelOutput, RankingModel
from training.models.experts import ExpertSet, SoftmaxGate, mix
from training.models.towers import TaskTowers


class MMoE(RankingModel):
    def __init__(self, cfg: ModelConfig, nodes: NodeTable, num_domains: int, tasks: Sequence[str],
                 sparse_embeddings: bool = False):
        super().__init__(cfg, nodes, num_domains, tasks, sparse_embeddings)
        self.experts = ExpertSet(cfg.experts, self.input_dim, cfg.expert_hidden, cfg.dropout)
        self.gates = nn.ModuleList(SoftmaxGate(self.input_dim, cfg.experts) for _ in self.tasks)
        self.towers = TaskTowers(self.experts.out_dim, self.tasks, cfg.tower_hidden, cfg.dropout)
        self.gate_experts = {t: [f"expert{k}" for k in range(cfg.experts)] for t in self.tasks}

    def forward(self, batch: ExampleBatch) -> ModelOutput:
        h0 = self.features(batch)
        experts = self.experts(h0)
        weights = [gate(h0) for gate in self.gates]
        logits = self.towers(torch.stack([mix(w, experts) for w in weights], dim=1))
        return ModelOutput(logits, self.towers.loss(logits, batch.labels), gates=dict(zip(self.tasks, weights)))
