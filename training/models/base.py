"""What every model shares: its output, its optional side inputs, and the node and context inputs.

All models see the same features (docs/method.md §Baselines): X_u and X_i (ID embedding +
side-feature projection, `NodeInput`) and F_LTR (item domain and weekday, `ContextFeatures`). What a
model needs beyond the node table is a `SideInputs` field it names in `side_inputs`; the trainer
loads only those.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Sequence

import torch
from torch import nn

from training.config import ModelConfig
from training.data.examples import ExampleBatch
from training.data.macro import MacroTable
from training.data.nodes import NodeTable
from training.models.node_input import NodeInput

WEEKDAYS = 7


@dataclass
class ModelOutput:
    logits: torch.Tensor                        # (B, T)
    ltr_loss: torch.Tensor                      # L_LTR, summed over tasks
    ssl_loss: Optional[torch.Tensor] = None     # L_SSL, None when the model has no self-supervised loss
    gates: dict[str, torch.Tensor] = field(default_factory=dict)  # gate name -> (B, experts) softmax weights


@dataclass(frozen=True)
class SideInputs:
    """Inputs some models need beyond gold.nodes, loaded by the trainer when the model names them."""

    macro: Optional[MacroTable] = None                 # pinned gold.macro as lookup tensors (MGOE)
    graph_embeddings: Optional[torch.Tensor] = None    # (N, d) frozen pretrained LightGCN output (two-stage)
    warm_start: Optional[torch.Tensor] = None          # (N, id_dim) pretrained ID table (E2E-GRec --warm-start)

    def require(self, name: str, model: str) -> Any:
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"model {model} needs the side input {name!r}, which was not loaded")
        return value


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


class RankingModel(nn.Module):
    """Base of every model: `node_input` (X_v), `context` (F_LTR) and the task list.

    Subclasses define forward(batch) -> ModelOutput. `side_inputs` names the SideInputs fields the
    constructor takes as keyword arguments; `gate_experts` names, per gate, the experts its softmax
    weights cover (expert models fill it; the trainer logs gate utilisation from it).
    """

    side_inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: ModelConfig, nodes: NodeTable, num_domains: int, tasks: Sequence[str],
                 sparse_embeddings: bool = False):
        super().__init__()
        self.tasks = list(tasks)
        self.node_input = NodeInput(nodes.features, nodes.user_width, cfg.id_dim, cfg.feature_dim,
                                    sparse=sparse_embeddings)
        self.context = ContextFeatures(num_domains, cfg.ltr_dim)
        self.gate_experts: dict[str, list[str]] = {}

    def targets(self, batch: ExampleBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(X_u, X_i) of the batch's user and item."""
        return (self.node_input(batch.user_node, batch.user_features, "user"),
                self.node_input(batch.item_node, batch.item_features, "item"))

    def features(self, batch: ExampleBatch) -> torch.Tensor:
        """h0 = [X_u ; X_i ; F_LTR], the input of the shared-bottom and expert models."""
        x_u, x_i = self.targets(batch)
        return torch.cat([x_u, x_i, self.context(batch.domain_id, batch.day)], dim=-1)

    @property
    def input_dim(self) -> int:
        """Width of h0 (`features`)."""
        return 2 * self.node_input.out_dim + self.context.out_dim

    def sparse_parameters(self) -> list[torch.Tensor]:
        """Parameters with sparse gradients (the node ID table when sparse embeddings are on)."""
        return [self.node_input.ids.weight] if self.node_input.sparse else []
