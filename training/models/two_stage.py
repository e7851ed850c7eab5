"""Two-stage baseline: graph embeddings pretrained apart, then frozen as ranking features
(docs/method.md §Two-stage).

The pipeline E2E-GRec (Xue et al., arXiv 2511.20564) replaces: stage 1 trains LightGCN with BPR on
the training graph (training.pretrain); stage 2 is the LTR ranker with one more fusion block,

    F_GNN = ReLU(P [Z_u ; Z_i]),   Z = the stage-1 output, a buffer: no gradient ever reaches it

so the ranking loss cannot shape the graph representation, which is the gap E2E-GRec's
end-to-end encoder closes. Everything else (features, fusion, towers, loss) is LTR's.
"""
from __future__ import annotations

from typing import Sequence

import torch

from training.config import ModelConfig
from training.data.examples import ExampleBatch
from training.data.nodes import NodeTable
from training.models.base import ModelOutput
from training.models.ltr import LTR


class TwoStage(LTR):
    side_inputs = ("graph_embeddings",)

    graph_embeddings: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, cfg: ModelConfig, nodes: NodeTable, num_domains: int, tasks: Sequence[str],
                 sparse_embeddings: bool = False, *, graph_embeddings: torch.Tensor):
        if graph_embeddings.shape[0] != nodes.num_nodes:
            raise ValueError(f"pretrained embeddings cover {graph_embeddings.shape[0]} nodes, gold.nodes "
                             f"{nodes.num_nodes}")
        super().__init__(cfg, nodes, num_domains, tasks, sparse_embeddings, graph_dim=graph_embeddings.shape[1])
        self.register_buffer("graph_embeddings", graph_embeddings.detach().float().clone())

    def forward(self, batch: ExampleBatch) -> ModelOutput:
        x_u, x_i = self.targets(batch)
        z = torch.cat([self.graph_embeddings[batch.user_node], self.graph_embeddings[batch.item_node]], dim=-1)
        logits = self.rank(batch, x_u, x_i, z.to(x_u.dtype))
        return ModelOutput(logits, self.towers.loss(logits, batch.labels))
