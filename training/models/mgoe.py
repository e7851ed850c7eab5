"""MGOE: Macro Graph of Experts (Yao et al., arXiv 2506.10520, KDD 2026), grec's reading.

The paper's equations are not public in full; this is the reading of docs/method.md §MGOE, with
MacGNN's macro graph (Chen et al., WWW 2024) for the macro features. gold.macro gives, per task t,
the user's t-positives per item macro node (domain; 1st order) and the item's t-positives from each
user macro node (KMeans cluster of domain profiles; 2nd order). With learnable macro-node embeddings
M^I (D x m, domains) and M^U (C x m, clusters):

  Macro Graph Bottom
    w(c)      = softmax over the macro neighbours (c_j > 0) of log(1 + c_j) / tau,   tau = 1.3
    beta_u,t  = softmax over the user's item-macro neighbours of log(1 + c^U_t) / tau + s_u,t
                s_u,t,j = <Q^U_t X_i, M^I_j> / sqrt(m)                  target-aware: the item asks
    beta_i,t  = the same over the item's user-macro neighbours, s_i,t,j = <Q^I_t X_u, M^U_j> / sqrt(m)
    macro_t   = MLP_t([sum_j beta_u,t,j M^I_j ; sum_j beta_i,t,j M^U_j ; M^U_c(u) ; M^I_d(i)])
                one macro expert per task; c(u), d(i) are the targets' own macro nodes
    shared_k  = MLP_k(h0),  h0 = [X_u ; X_i ; F_LTR],  k = 1..S (--experts)  shared experts
  Expert graph (n = S + T nodes, the experts)
    A         = rowwise softmax(L),  L in R^{n x n} learned (self-loops included)
    H'        = H + ReLU(A H W + b)                                     one GCN step, residual
  Macro Prediction Tower
    g_t       = softmax(G_t h0) over all n propagated experts
    p_t       = sigmoid(tower_t(sum_k g_t,k H'_k)),   loss = sum_t BCE(p_t, y_t)

Choices where the paper is silent (also in docs/training.md):
- softmax(log(1 + count) / tau) runs over a node's macro *neighbours* (count > 0), as in MacGNN;
  a node without any has weight 0 everywhere and aggregates the zero vector.
- The target-aware attention score is added to the weights' logits, so beta = w · exp(s) / Z:
  with s = 0 the macro weights come back exactly.
- The expert graph's adjacency is one learned matrix (not per example); the GCN step keeps a
  residual connection so experts stay distinct at initialisation (uniform A would make them equal).
- Macro-node embeddings are shared by the tasks; queries, expert MLPs and gates are per task.
- gold.macro counts every training positive, so a training row's own label is in the counts it
  reads (one in the user's count for the row's domain, one in the item's count from the user's
  cluster) while an evaluation row's is not. Left in, the gates learn to trust a macro expert
  that reads the label off its input. While training, each row's own labels are subtracted
  (`--macro-exclude-own`, default on): the macro analogue of masking the target edge.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from training.config import ModelConfig
from training.data.examples import ExampleBatch
from training.data.macro import MacroTable
from training.data.nodes import NodeTable
from training.models.base import ModelOutput, RankingModel
from training.models.experts import ExpertSet, SoftmaxGate, mix
from training.models.layers import MLP
from training.models.towers import TaskTowers


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax over the last dim restricted to `mask`; rows with no True entry are all 0 (no NaN)."""
    filled = logits.float().masked_fill(~mask, torch.finfo(torch.float32).min)
    return torch.softmax(filled, dim=-1) * mask


def macro_weights(counts: torch.Tensor, tau: float) -> torch.Tensor:
    """softmax(log(1 + count) / tau) over the macro neighbours (count > 0), last dim."""
    return masked_softmax(torch.log1p(counts.float()) / tau, counts > 0)


class MacroBuffers(nn.Module):
    """The pinned gold.macro lookup tensors as buffers (saved with the model, moved with it)."""

    # buffers (register_buffer), one per MacroTable.tensors() entry
    macro_id: torch.Tensor
    row: torch.Tensor
    user_counts: torch.Tensor
    item_counts: torch.Tensor

    def __init__(self, table: MacroTable):
        super().__init__()
        for name, value in table.tensors().items():
            self.register_buffer(name, value)

    def counts(self, user_node: torch.Tensor, item_node: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) user counts per item macro node, (B, T, C) item counts per user macro node."""
        return self.user_counts[self.row[user_node]], self.item_counts[self.row[item_node]]

    def counts_without(self, user_node: torch.Tensor, item_node: torch.Tensor, domain: torch.Tensor,
                       labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`counts` less each row's own labels (B, T): leave-one-out for rows that gold.macro counted.

        A training row's t-positive is one of the user's count in the row's domain (`domain_id`: where
        it was shown, which need not be the item's own domain) and one of the item's count from its
        user's cluster; an evaluation row's never is.
        """
        user_counts, item_counts = self.counts(user_node, item_node)
        own_domain = nn.functional.one_hot(domain, user_counts.shape[-1])
        own_cluster = nn.functional.one_hot(self.macro_id[user_node], item_counts.shape[-1])
        y = labels.to(user_counts.dtype)[:, :, None]
        return ((user_counts - y * own_domain[:, None, :]).clamp_min(0),
                (item_counts - y * own_cluster[:, None, :]).clamp_min(0))


class MacroExpert(nn.Module):
    """One task's macro expert: target-aware attention over both targets' macro neighbours, then an MLP."""

    def __init__(self, node_dim: int, macro_dim: int, hidden: Sequence[int], tau: float, dropout: float = 0.0):
        super().__init__()
        self.tau = tau
        self.query_user_side = nn.Linear(node_dim, macro_dim, bias=False)  # the item asks about the user's side
        self.query_item_side = nn.Linear(node_dim, macro_dim, bias=False)  # the user asks about the item's side
        self.mlp = MLP(4 * macro_dim, hidden, dropout)
        self.out_dim = hidden[-1]

    def attention(self, query: torch.Tensor, macro_nodes: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """beta (B, M) = softmax over neighbours of log(1 + c) / tau + <query, M_j> / sqrt(m)."""
        scores = query.float() @ macro_nodes.float().T / math.sqrt(macro_nodes.shape[1])
        return masked_softmax(torch.log1p(counts.float()) / self.tau + scores, counts > 0)

    def forward(self, x_u: torch.Tensor, x_i: torch.Tensor, user_counts: torch.Tensor, item_counts: torch.Tensor,
                user_macro: torch.Tensor, item_macro: torch.Tensor, own_macro: torch.Tensor) -> torch.Tensor:
        beta_u = self.attention(self.query_user_side(x_i), item_macro, user_counts)
        beta_i = self.attention(self.query_item_side(x_u), user_macro, item_counts)
        dtype = own_macro.dtype
        agg = torch.cat([beta_u.to(dtype) @ item_macro.to(dtype), beta_i.to(dtype) @ user_macro.to(dtype), own_macro],
                        dim=-1)
        return self.mlp(agg)


class ExpertGraph(nn.Module):
    """Experts as graph nodes with a learned adjacency: H' = H + ReLU(A H W + b), A = rowwise softmax(L)."""

    def __init__(self, n: int, dim: int):
        super().__init__()
        self.adjacency_logits = nn.Parameter(torch.zeros(n, n))
        self.propagate = nn.Linear(dim, dim)

    def adjacency(self) -> torch.Tensor:
        return torch.softmax(self.adjacency_logits, dim=-1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        mixed = torch.einsum("nm,bmd->bnd", self.adjacency().to(h.dtype), h)
        return h + torch.relu(self.propagate(mixed))


class MGOE(RankingModel):
    side_inputs = ("macro",)

    def __init__(self, cfg: ModelConfig, nodes: NodeTable, num_domains: int, tasks: Sequence[str],
                 sparse_embeddings: bool = False, *, macro: MacroTable):
        super().__init__(cfg, nodes, num_domains, tasks, sparse_embeddings)
        if macro.user_counts.shape[1] != len(self.tasks):
            raise ValueError(f"the macro table has counts for {macro.user_counts.shape[1]} tasks, the model "
                             f"{len(self.tasks)} ({self.tasks})")
        if macro.macro_id.shape[0] != nodes.num_nodes:
            raise ValueError(f"the macro table covers {macro.macro_id.shape[0]} nodes, gold.nodes {nodes.num_nodes}")
        self.macro = MacroBuffers(macro)
        self.exclude_own = cfg.macro_exclude_own
        self.user_macro = nn.Embedding(macro.n_clusters, cfg.macro_dim)  # user macro nodes (clusters)
        self.item_macro = nn.Embedding(macro.n_domains, cfg.macro_dim)   # item macro nodes (domains)
        self.shared_experts = ExpertSet(cfg.experts, self.input_dim, cfg.expert_hidden, cfg.dropout)
        self.macro_experts = nn.ModuleList(
            MacroExpert(self.node_input.out_dim, cfg.macro_dim, cfg.expert_hidden, cfg.macro_tau, cfg.dropout)
            for _ in self.tasks)
        n = cfg.experts + len(self.tasks)
        self.expert_graph = ExpertGraph(n, cfg.expert_hidden[-1])
        self.gates = nn.ModuleList(SoftmaxGate(self.input_dim, n) for _ in self.tasks)
        self.towers = TaskTowers(cfg.expert_hidden[-1], self.tasks, cfg.tower_hidden, cfg.dropout)
        names = [f"shared{k}" for k in range(cfg.experts)] + [f"macro:{t}" for t in self.tasks]
        self.gate_experts = {t: names for t in self.tasks}

    def forward(self, batch: ExampleBatch) -> ModelOutput:
        x_u, x_i = self.targets(batch)
        h0 = torch.cat([x_u, x_i, self.context(batch.domain_id, batch.day)], dim=-1)
        # Training batches come from the rows gold.macro counted, evaluation batches never do.
        if self.training and self.exclude_own:
            user_counts, item_counts = self.macro.counts_without(batch.user_node, batch.item_node, batch.domain_id,
                                                                 batch.labels)
        else:
            user_counts, item_counts = self.macro.counts(batch.user_node, batch.item_node)
        own = torch.cat([self.user_macro(self.macro.macro_id[batch.user_node]),
                         self.item_macro(self.macro.macro_id[batch.item_node])], dim=-1)
        macro = [expert(x_u, x_i, user_counts[:, t], item_counts[:, t], self.user_macro.weight,
                        self.item_macro.weight, own) for t, expert in enumerate(self.macro_experts)]
        experts = self.expert_graph(torch.cat([self.shared_experts(h0), torch.stack(macro, dim=1)], dim=1))
        weights = [gate(h0) for gate in self.gates]
        logits = self.towers(torch.stack([mix(w, experts) for w in weights], dim=1))
        return ModelOutput(logits, self.towers.loss(logits, batch.labels), gates=dict(zip(self.tasks, weights)))
