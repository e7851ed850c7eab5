"""What a model needs beyond gold.nodes, loaded only for the models that name it (`side_inputs`).

- macro (MGOE): the pinned gold.macro version (TrainingSnapshots.macro) as lookup tensors.
- graph_embeddings (two-stage): LightGCN pretrained with BPR on the train split (training.pretrain);
  under DDP every rank pretrains and rank 0's result is broadcast, so all ranks hold the same.
- warm_start (E2E-GRec with --warm-start): the same pretraining's layer-0 ID table, which the
  trainer copies into the model's ID embeddings before end-to-end training.
"""
from __future__ import annotations

import logging
from typing import Mapping, Optional, Sequence

import torch
import torch.distributed as dist

from schemas import contract
from training.config import ConfigError, TrainConfig
from training.data.loader import TrainingSnapshots
from training.data.macro import MacroTable, load_macro_table
from training.data.nodes import NodeTable
from training.data.resident import ResidentGraph
from training.data.snapshot import DataFile
from training.distributed import DistContext
from training.models import SideInputs, required_side_inputs
from training.pretrain import pretrain_lightgcn_bpr, read_training_graph

log = logging.getLogger(__name__)

MACRO_PREFIX = "macro."  # where MGOE keeps the macro buffers in its state dict


def load_side_inputs(cfg: TrainConfig, snaps: TrainingSnapshots, nodes: NodeTable, train_files: Sequence[DataFile],
                     ctx: DistContext, graph: Optional[ResidentGraph] = None) -> tuple[SideInputs, dict]:
    """The side inputs cfg's model needs, and a record of how they were made (for run.json)."""
    needs = required_side_inputs(cfg.model.name)
    macro, embeddings, warm, record = None, None, None, {}
    if "macro" in needs:
        if snaps.macro is None:
            raise ConfigError(f"--model {cfg.model.name.value} reads {cfg.data.macro_table}, which was not resolved")
        macro = load_macro_table(snaps.macro, snaps.tasks, nodes.num_nodes,
                                 snaps.examples.configuration.get(contract.DOMAINS.key))
    if "graph_embeddings" in needs or cfg.model.warm_start:
        m = cfg.model
        task = m.pretrain_task or snaps.tasks[0]
        if task not in snaps.tasks:
            raise ConfigError(f"--pretrain-task {task!r} is not one of the tasks {list(snaps.tasks)}")
        if graph is None:
            raise ConfigError(f"--model {cfg.model.name.value} pretrains on {cfg.data.neighbors_table}, "
                              "which was not loaded")
        training_graph = read_training_graph(train_files, task, graph, cfg.data.workers)
        pre = pretrain_lightgcn_bpr(training_graph, nodes.degree, dim=m.id_dim, epochs=m.pretrain_epochs,
                                    lr=m.pretrain_lr, l2=m.pretrain_l2, batch_size=cfg.data.batch_size,
                                    seed=cfg.run.seed, device=ctx.device)
        embeddings, warm = (_same_on_every_rank(t, ctx) for t in (pre.embeddings, pre.ids))
        if "graph_embeddings" not in needs:
            embeddings = None
        record["pretrain"] = {"task": task, "positives": len(training_graph.positives), "seconds": pre.seconds,
                              "epoch_losses": pre.epoch_losses}
        if ctx.is_main:
            log.info(f"two-stage pretraining: LightGCN + BPR on {len(training_graph.positives):,} {task} pairs, "
                     f"{m.pretrain_epochs} epochs in {pre.seconds:.1f} s, loss {pre.epoch_losses[0]:.4f} -> "
                     f"{pre.epoch_losses[-1]:.4f}")
    return SideInputs(macro=macro, graph_embeddings=embeddings, warm_start=warm), record


def _same_on_every_rank(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Rank 0's tensor on every rank (each rank pretrains; their results differ in the last bits)."""
    if not ctx.enabled:
        return t
    t = t.to(ctx.device)
    dist.broadcast(t, src=0)
    return t.cpu()


def side_inputs_from_state(state: Mapping[str, torch.Tensor]) -> SideInputs:
    """The side inputs a saved model carries in its buffers (a checkpoint is self-contained)."""
    macro = MacroTable.from_state_dict(state, MACRO_PREFIX) if MACRO_PREFIX + "macro_id" in state else None
    return SideInputs(macro=macro, graph_embeddings=state.get("graph_embeddings"))
