"""The training loop: pinned snapshot in, metrics table + plot + checkpoint out.

`fit(cfg)` runs single-process or under `torchrun` (DDP: one shard of every epoch per rank, NCCL
on CUDA, gloo on CPU). bf16 autocast on CUDA, plain fp32 on CPU. The snapshot versions read are
printed and stored in run.json and the checkpoint. Expert models' gate utilisation goes to
gates.parquet and the console (training.gates).
"""
from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from training.config import DeviceKind, LossWeighting, TrainConfig
from training.data.batching import on_device
from training.data.examples import ExampleBatch, example_columns
from training.data.loader import TrainingSnapshots, make_batches, resolve_training_snapshots, split_files
from training.data.nodes import NodeTable, load_node_table
from training.distributed import (DistContext, average_, gather_cat, in_step, init_distributed, shutdown,
                                  wrap_ddp)
from training.gates import GateStats, summarise
from training.gradnorm import GradNorm
from training.metrics import evaluate
from training.models import ModelOutput, RankingModel, build_model, required_side_inputs
from training.report import write_metrics
from training.side_inputs import load_side_inputs, side_inputs_from_state

LOSS_NAMES = ("ssl", "ltr")


class TrainingError(RuntimeError):
    """The run cannot proceed (resume mismatch, unsupported setup); the message says what to change."""


@dataclass
class TrainResult:
    metrics: pd.DataFrame        # evaluation table (empty on ranks other than 0)
    snapshots: dict
    log: pd.DataFrame            # one row per step: losses and loss weights
    gates: pd.DataFrame          # per epoch, gate and expert: mean weight, top-1 share (expert models)
    examples_per_s: float
    train_seconds: float
    pretrain_seconds: float      # stage-1 graph pretraining (two-stage), outside train_seconds
    eval_seconds: float
    loader_seconds: float        # time the loop waited for batches
    device: str
    out_dir: Path
    model: nn.Module             # the trained model (unwrapped from DDP)


def resolve_device(kind: DeviceKind) -> torch.device:
    """cuda when asked for (or auto) and available; CPU otherwise, with a warning if cuda was asked for."""
    if kind is DeviceKind.CPU:
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if kind is DeviceKind.CUDA:
        print("warning: --device cuda requested but CUDA is not available; running on CPU", file=sys.stderr)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


class LossBalance:
    """Turns a ModelOutput into the loss to backpropagate: GradNorm, fixed weights, or L_LTR alone."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        o = cfg.optim
        self.gfae = cfg.model.ssl
        self.fixed = torch.tensor([o.ssl_weight, o.ltr_weight], device=device)
        self.gradnorm = (GradNorm(LOSS_NAMES, [o.ssl_weight, o.ltr_weight], o.gradnorm_alpha, o.gradnorm_lr).to(device)
                         if self.gfae and o.loss_weighting is LossWeighting.GRADNORM else None)

    def __call__(self, out: ModelOutput, model: RankingModel, ctx: DistContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, log row [L_SSL, L_LTR, w_SSL, w_LTR]) for one step; GradNorm reads
        `model.last_shared_layer()`."""
        if not self.gfae:
            nan = torch.full((), float("nan"), device=out.ltr_loss.device)
            w = self.fixed[1]
            return w * out.ltr_loss, torch.stack([nan, out.ltr_loss.detach(), nan, w])
        losses = [out.ssl_loss, out.ltr_loss]
        if self.gradnorm is None:
            total = self.fixed[0] * losses[0] + self.fixed[1] * losses[1]
            weights = self.fixed
        else:
            total = self.gradnorm.combine(losses)
            weights = self.gradnorm.step(losses, model.last_shared_layer(), lambda g: average_(ctx, g)).weights
        return total, torch.cat([torch.stack([l.detach().float() for l in losses]), weights.float()])

    def state_dict(self) -> dict:
        if self.gradnorm is None:
            return {}
        return {"gradnorm": self.gradnorm.state_dict(), "optimizer": self.gradnorm.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.gradnorm is not None:
            self.gradnorm.load_state_dict(state["gradnorm"])
            self.gradnorm.optimizer.load_state_dict(state["optimizer"])


def make_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    sparse = list(model.sparse_parameters())
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    # One fused kernel for all dense parameters on CUDA (the per-tensor loop cost ~10% of a step).
    fused = all(p.is_cuda for p in dense) or None
    opts: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                                                          fused=fused)]
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=cfg.optim.lr))
    return opts


def fit(cfg: TrainConfig) -> TrainResult:
    cfg.validate()
    if cfg.run.threads is not None:
        torch.set_num_threads(cfg.run.threads)
    ctx = init_distributed(resolve_device(cfg.run.device))
    try:
        return _fit(cfg, ctx)
    finally:
        shutdown(ctx)


def _fit(cfg: TrainConfig, ctx: DistContext) -> TrainResult:
    device = ctx.device
    if cfg.optim.sparse_embeddings and ctx.enabled and device.type == "cuda":
        raise TrainingError("--sparse-embeddings with DDP needs sparse all-reduce, which NCCL lacks: drop the flag "
                            "for multi-GPU runs")
    seed_everything(cfg.run.seed)
    snaps = resolve_training_snapshots(cfg.data, with_macro="macro" in required_side_inputs(cfg.model.name))
    if ctx.is_main:
        print(describe_snapshots(snaps), flush=True)
    nodes = load_node_table(snaps.nodes)
    train_files = split_files(snaps.examples, cfg.data.train_split)
    eval_files = split_files(snaps.examples, cfg.data.eval_split)
    side, side_record = load_side_inputs(cfg, snaps, nodes, train_files, ctx)
    model = build_model(cfg.model, nodes, snaps.num_domains, snaps.tasks, cfg.optim.sparse_embeddings,
                        side).to(device)
    balance = LossBalance(cfg, device)
    optimizers = make_optimizers(model, cfg)
    out_dir = Path(cfg.run.out)
    start_epoch = _resume(cfg, out_dir, model, optimizers, balance, snaps) if cfg.run.resume else 0
    trained: nn.Module = model
    if ctx.enabled:
        trained = wrap_ddp(model, ctx)
    columns = example_columns(snaps.tasks)
    amp = cfg.run.amp and device.type == "cuda"
    log_parts: list[torch.Tensor] = []
    gate_parts: list[pd.DataFrame] = []
    examples = 0
    loader_s = 0.0
    train_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.run.epochs):
        batches = make_batches(cfg.data.loader, train_files, columns, batch_size=cfg.data.batch_size, shuffle=True,
                               seed=epoch_seed(cfg.run.seed, epoch), rank=ctx.rank, world=ctx.world,
                               shuffle_buffer=cfg.data.shuffle_buffer, workers=cfg.data.workers, drop_last=True,
                               pin_memory=device.type == "cuda")
        per_rank = sum(f.rows for f in train_files) // ctx.world
        bar = tqdm(total=per_rank if cfg.run.max_steps is None else min(per_rank, cfg.run.max_steps *
                                                                          cfg.data.batch_size),
                   unit="ex", unit_scale=True, desc=f"epoch {epoch + 1}/{cfg.run.epochs}",
                   disable=not (cfg.run.progress and ctx.is_main), file=sys.stderr)
        gates = GateStats(model.gate_experts, device)
        stats = train_epoch(trained, model, balance, optimizers, on_device(in_step(ctx, batches), device),
                            snaps.tasks, cfg, ctx, amp, bar, gates)
        bar.close()
        if model.gate_experts:
            gate_parts.append(gates.frame(epoch, ctx))
        examples += stats.examples
        loader_s += stats.loader_seconds
        if len(stats.log):
            log_parts.append(torch.cat([torch.full((len(stats.log), 1), float(epoch)), stats.log], dim=1))
        if cfg.run.checkpoint and ctx.is_main:
            save_checkpoint(out_dir, model, optimizers, balance, epoch, cfg, snaps, nodes)
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - train_start
    eval_start = time.perf_counter()
    probs, labels, users, days = predict_split(model, eval_files, columns, snaps.tasks, cfg, ctx, amp)
    label = cfg.run.label or cfg.model.name.value
    metrics = (evaluate(probs, labels, users, days, snaps.tasks, label) if ctx.is_main
               else pd.DataFrame())
    eval_s = time.perf_counter() - eval_start
    log = pd.DataFrame(torch.cat(log_parts).numpy() if log_parts else np.zeros((0, 7)),
                       columns=["epoch", "step", "loss", "l_ssl", "l_ltr", "w_ssl", "w_ltr"])
    gate_log = pd.concat(gate_parts, ignore_index=True) if gate_parts else pd.DataFrame()
    pretrain_s = side_record.get("pretrain", {}).get("seconds", 0.0)
    result = TrainResult(metrics, snaps.describe(), log, gate_log, examples * ctx.world / train_s if train_s else 0.0,
                         train_s, pretrain_s, eval_s, loader_s, str(device), out_dir, model)
    if ctx.is_main:
        if not gate_log.empty:
            print(summarise(gate_log), flush=True)
        write_results(result, cfg, ctx, label, side_record)
    return result


@dataclass
class EpochStats:
    log: torch.Tensor        # (steps, 6): step, loss, L_SSL, L_LTR, w_SSL, w_LTR (CPU)
    examples: int
    loader_seconds: float


def train_epoch(trained: nn.Module, model: RankingModel, balance: LossBalance,
                optimizers: Sequence[torch.optim.Optimizer], stream: Iterator[dict[str, torch.Tensor]],
                tasks: Sequence[str], cfg: TrainConfig, ctx: DistContext, amp: bool, bar: tqdm,
                gates: GateStats) -> EpochStats:
    """One pass over `stream` (device batches); `trained` is `model` or its DDP wrapper; gate weights
    of expert models accumulate in `gates`."""
    model.train()
    rows: list[torch.Tensor] = []
    examples, loader_s = 0, 0.0
    while cfg.run.max_steps is None or len(rows) < cfg.run.max_steps:
        t0 = time.perf_counter()
        cols = next(stream, None)
        loader_s += time.perf_counter() - t0
        if cols is None:
            break
        batch = ExampleBatch.from_columns(cols, tasks, cfg.data.mask_target_edge)
        with torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16, enabled=amp):
            out = trained(batch)
        total, row = balance(out, model, ctx)
        if out.gates:
            gates.update(out.gates)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        total.backward()
        for opt in optimizers:
            opt.step()
        rows.append(torch.cat([total.detach().float()[None], row]))  # stays on the device: no sync per step
        examples += batch.size
        bar.update(batch.size)
        if ctx.is_main and len(rows) % cfg.run.log_every == 0:
            r = rows[-1].tolist()
            bar.set_postfix(loss=f"{r[0]:.4f}", w_ssl=f"{r[3]:.3f}", w_ltr=f"{r[4]:.3f}")
    stream.close()
    if not rows:
        return EpochStats(torch.zeros((0, 6)), 0, loader_s)
    values = torch.stack(rows).cpu()
    steps = torch.arange(len(rows), dtype=torch.float32)[:, None]
    return EpochStats(torch.cat([steps, values], dim=1), examples, loader_s)


def predict_split(model: nn.Module, files, columns: Sequence[str], tasks: Sequence[str], cfg: TrainConfig,
                  ctx: DistContext, amp: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probabilities, labels, user ids and days of a whole split, gathered from every rank."""
    device = ctx.device
    model.eval()
    parts: list[tuple[torch.Tensor, ...]] = []
    batches = make_batches(cfg.data.loader, files, columns, batch_size=cfg.data.eval_batch_size, shuffle=False,
                           seed=0, rank=ctx.rank, world=ctx.world, workers=cfg.data.workers,
                           pin_memory=device.type == "cuda")
    with torch.inference_mode():
        for cols in on_device(batches, device):
            batch = ExampleBatch.from_columns(cols, tasks, cfg.data.mask_target_edge)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(batch).logits
            parts.append((torch.sigmoid(logits.float()), batch.labels, batch.user_node, batch.day))
    if parts:
        local = [torch.cat(p) for p in zip(*parts)]
    else:
        t = len(tasks)
        local = [torch.zeros((0, t), device=device), torch.zeros((0, t), device=device),
                 torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, dtype=torch.long, device=device)]
    probs, labels, users, days = (gather_cat(ctx, x) for x in local)
    return probs, labels, users, days


def describe_snapshots(snaps: TrainingSnapshots) -> str:
    e, n, m = snaps.examples, snaps.nodes, snaps.macro
    macro = f"{m.table} v{m.version} (pinned by {snaps.macro_pinned_by}); " if m is not None else ""
    return (f"snapshot: {e.table} v{e.version} ({e.rows} rows, {len(e.files)} files, {e.uri}); "
            f"{n.table} v{n.version} (pinned by {snaps.nodes_pinned_by}); {macro}tasks {list(snaps.tasks)}")


def write_results(result: TrainResult, cfg: TrainConfig, ctx: DistContext, label: str, side_record: dict) -> None:
    out = result.out_dir
    paths = write_metrics(result.metrics, out, title=f"{label}: {describe_snapshots_from(result.snapshots)}")
    result.log.to_parquet(out / "train_log.parquet", index=False)
    if not result.gates.empty:
        result.gates.to_parquet(out / "gates.parquet", index=False)
        paths["gates"] = out / "gates.parquet"
    summary = {
        "label": label, "config": cfg.to_dict(), "snapshots": result.snapshots, "device": result.device,
        "world_size": ctx.world, "examples_per_s": result.examples_per_s, "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds, "loader_wait_seconds": result.loader_seconds,
        "pretrain_seconds": result.pretrain_seconds,
        "final_weights": (result.log[["w_ssl", "w_ltr"]].iloc[-1].tolist() if len(result.log) else None),
        "outputs": {k: p.name for k, p in paths.items()}, **side_record,
    }
    (out / "run.json").write_text(json.dumps(summary, indent=2, default=str))


def describe_snapshots_from(described: dict) -> str:
    parts = [described[k] for k in ("examples", "nodes", "macro") if k in described]
    return ", ".join(f"{p['table']} v{p['version']}" for p in parts)


def save_checkpoint(out_dir: Path, model: nn.Module, optimizers: Sequence[torch.optim.Optimizer],
                    balance: LossBalance, epoch: int, cfg: TrainConfig, snaps: TrainingSnapshots,
                    nodes: NodeTable) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "checkpoint.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
                "balance": balance.state_dict(), "epoch": epoch, "config": cfg.to_dict(),
                "snapshots": snaps.describe(), "node_widths": {"user": nodes.user_width, "item": nodes.item_width}},
               tmp)
    tmp.replace(path)
    return path


def _resume(cfg: TrainConfig, out_dir: Path, model: nn.Module, optimizers: Sequence[torch.optim.Optimizer],
            balance: LossBalance, snaps: TrainingSnapshots) -> int:
    path = out_dir / "checkpoint.pt"
    if not path.exists():
        raise TrainingError(f"--resume: no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["snapshots"] != snaps.describe():
        raise TrainingError(f"--resume: {path} was trained on {state['snapshots']}, this run reads "
                            f"{snaps.describe()}")
    saved = TrainConfig.from_dict(state["config"])
    if (saved.model, saved.optim) != (cfg.model, cfg.optim):
        raise TrainingError(f"--resume: the model/optim settings differ from those of {path}")
    model.load_state_dict(state["model"])
    for opt, s in zip(optimizers, state["optimizers"]):
        opt.load_state_dict(s)
    balance.load_state_dict(state["balance"])
    return int(state["epoch"]) + 1


def load_trained_model(checkpoint: str | Path) -> tuple[nn.Module, dict]:
    """A model rebuilt from a checkpoint alone (its buffers carry the node table); returns (model, state)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    cfg = TrainConfig.from_dict(state["config"])
    sd = state["model"]
    features = sd["node_input.features"]
    degree = sd.get("encoder.node_degree", torch.zeros(features.shape[0]))  # GraphSAGE keeps no degrees
    widths = state["node_widths"]
    nodes = NodeTable(degree, features, widths["user"], widths["item"])
    model = build_model(cfg.model, nodes, state["snapshots"]["num_domains"], state["snapshots"]["tasks"],
                        cfg.optim.sparse_embeddings, side_inputs_from_state(sd))
    model.load_state_dict(sd)
    return model, state
