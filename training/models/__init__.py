"""Models, one per file, and the registry the trainer builds them from.

Every model takes an ExampleBatch and returns a ModelOutput (logits per task, L_LTR, optional
L_SSL); `last_shared_layer()` names the parameter GradNorm balances on, `sparse_parameters()` the
ones SparseAdam must own.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from training.config import ModelConfig, ModelName
from training.data.nodes import NodeTable
from training.models.e2e_grec import E2EGRec, ModelOutput


MODELS: dict[ModelName, type[nn.Module]] = {ModelName.E2E_GREC: E2EGRec}


def build_model(cfg: ModelConfig, nodes: NodeTable, num_domains: int, tasks: Sequence[str],
                sparse_embeddings: bool = False) -> nn.Module:
    return MODELS[cfg.name](cfg, nodes, num_domains, tasks, sparse_embeddings)


__all__ = ["E2EGRec", "ModelOutput", "build_model"]
