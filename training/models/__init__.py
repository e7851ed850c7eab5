"""Models, one per file, and the registry the trainer builds them from.

Every model takes an ExampleBatch and returns a ModelOutput (logits per task, L_LTR, optional
L_SSL, gate weights of expert models); `sparse_parameters()` names the ones SparseAdam must own,
and E2E-GRec's `last_shared_layer()` the parameter GradNorm balances on. A model class's
`side_inputs` names what it needs beyond gold.nodes (see training.side_inputs).
"""
from __future__ import annotations

from typing import Optional, Sequence

from training.config import ModelConfig, ModelName
from training.data.nodes import NodeTable
from training.models.base import ModelOutput, RankingModel, SideInputs
from training.models.e2e_grec import E2EGRec
from training.models.ltr import LTR
from training.models.mgoe import MGOE
from training.models.mmoe import MMoE
from training.models.ple import PLE
from training.models.shared_bottom import SharedBottom
from training.models.two_stage import TwoStage

MODELS: dict[ModelName, type[RankingModel]] = {
    ModelName.E2E_GREC: E2EGRec,
    ModelName.LTR: LTR,
    ModelName.TWO_STAGE: TwoStage,
    ModelName.SHARED_BOTTOM: SharedBottom,
    ModelName.MMOE: MMoE,
    ModelName.PLE: PLE,
    ModelName.MGOE: MGOE,
}


def required_side_inputs(name: ModelName) -> tuple[str, ...]:
    return MODELS[name].side_inputs


def build_model(cfg: ModelConfig, nodes: NodeTable, num_domains: int, tasks: Sequence[str],
                sparse_embeddings: bool = False, side: Optional[SideInputs] = None) -> RankingModel:
    cls = MODELS[cfg.name]
    side = side or SideInputs()
    extra = {name: side.require(name, cfg.name.value) for name in cls.side_inputs}
    return cls(cfg, nodes, num_domains, tasks, sparse_embeddings, **extra)


__all__ = ["E2EGRec", "MODELS", "ModelOutput", "RankingModel", "SideInputs", "build_model", "required_side_inputs"]
