"""PLE: Progressive Layered Extraction (Tang et al., RecSys 2020), a stack of CGC levels.

Level l (l = 1..L, L = --ple-levels, 2) holds per task t its own experts E_t^l and shared experts
E_s^l (--ple-task-experts, --ple-shared-experts: 1 and 1):

    E_t^l = experts over h_t^{l-1},   E_s^l = experts over h_s^{l-1},   h_t^0 = h_s^0 = [X_u ; X_i ; F_LTR]
    h_t^l = sum over [E_t^l ; E_s^l] of softmax(W_t^l h_t^{l-1}) · experts          task gate
    h_s^l = sum over [E_1^l ; ... ; E_T^l ; E_s^l] of softmax(W_s^l h_s^{l-1}) · experts   shared gate (l < L)
    p_t   = sigmoid(tower_t(h_t^L)),  L_LTR = sum_t BCE(p_t, y_t)

The last level has no shared gate (nothing reads it), as in the paper. Every gate is returned in
ModelOutput.gates as "level<l>/<task>" or "level<l>/shared".
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


class ExtractionLevel(nn.Module):
    """One CGC level: task and shared experts, a gate per task and (unless last) a shared gate."""

    def __init__(self, tasks: Sequence[str], in_dim: int, cfg: ModelConfig, last: bool):
        super().__init__()
        n_task, n_shared = cfg.ple_task_experts, cfg.ple_shared_experts
        self.task_experts = nn.ModuleList(ExpertSet(n_task, in_dim, cfg.expert_hidden, cfg.dropout) for _ in tasks)
        self.shared_experts = ExpertSet(n_shared, in_dim, cfg.expert_hidden, cfg.dropout) if n_shared else None
        self.task_gates = nn.ModuleList(SoftmaxGate(in_dim, n_task + n_shared) for _ in tasks)
        self.shared_gate = None if last else SoftmaxGate(in_dim, len(tasks) * n_task + n_shared)
        self.out_dim = cfg.expert_hidden[-1]

    def forward(self, task_inputs: Sequence[torch.Tensor], shared_input: torch.Tensor
                ) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        """(per-task outputs, shared output, task gate weights, shared gate weights or None)."""
        own = [experts(x) for experts, x in zip(self.task_experts, task_inputs)]
        shared = (self.shared_experts(shared_input) if self.shared_experts is not None
                  else own[0].new_zeros((own[0].shape[0], 0, self.out_dim)))
        weights = [gate(x) for gate, x in zip(self.task_gates, task_inputs)]
        outputs = [mix(w, torch.cat([e, shared], dim=1)) for w, e in zip(weights, own)]
        if self.shared_gate is None:
            return outputs, shared_input, weights, None
        shared_weights = self.shared_gate(shared_input)
        return outputs, mix(shared_weights, torch.cat([*own, shared], dim=1)), weights, shared_weights


class PLE(RankingModel):
    def __init__(self, cfg: ModelConfig, nodes: NodeTable, num_domains: int, tasks: Sequence[str],
                 sparse_embeddings: bool = False):
        super().__init__(cfg, nodes, num_domains, tasks, sparse_embeddings)
        dims = [self.input_dim] + [cfg.expert_hidden[-1]] * (cfg.ple_levels - 1)
        self.levels = nn.ModuleList(ExtractionLevel(self.tasks, d, cfg, last=l == cfg.ple_levels - 1)
                                    for l, d in enumerate(dims))
        self.towers = TaskTowers(cfg.expert_hidden[-1], self.tasks, cfg.tower_hidden, cfg.dropout)
        shared = [f"shared{k}" for k in range(cfg.ple_shared_experts)]
        own = {t: [f"{t}{k}" for k in range(cfg.ple_task_experts)] for t in self.tasks}
        for l in range(1, cfg.ple_levels + 1):
            self.gate_experts.update({f"level{l}/{t}": own[t] + shared for t in self.tasks})
            if l < cfg.ple_levels:
                self.gate_experts[f"level{l}/shared"] = [e for t in self.tasks for e in own[t]] + shared

    def forward(self, batch: ExampleBatch) -> ModelOutput:
        h0 = self.features(batch)
        task_inputs, shared_input = [h0] * len(self.tasks), h0
        gates: dict[str, torch.Tensor] = {}
        for l, level in enumerate(self.levels, start=1):
            task_inputs, shared_input, weights, shared_weights = level(task_inputs, shared_input)
            gates.update({f"level{l}/{t}": w for t, w in zip(self.tasks, weights)})
            if shared_weights is not None:
                gates[f"level{l}/shared"] = shared_weights
        logits = self.towers(torch.stack(task_inputs, dim=1))
        return ModelOutput(logits, self.towers.loss(logits, batch.labels), gates=gates)
