"""The training loop: pinned snapshot in, metrics table + plot + checkpoint out.

`fit(cfg)` pins the tables, loads gold.neighbors onto the device and the splits' rows once
(training.data.split_data; docs/trainer.md), and runs each step through training.step (captured
in a CUDA graph on one GPU). After every epoch it scores the validation split (training.validation),
stops after --patience epochs without a better score and restores the best epoch's weights; then
the evaluation split is scored once (`fit(cfg, evaluate=False)` never reads it: model selection).
Single-process or under `torchrun` (DDP: one share of every epoch's permutation per rank, NCCL on
CUDA, gloo on CPU). bf16 autocast on CUDA, plain fp32 on CPU. The snapshot versions read are
printed and stored in run.json and the checkpoint. Expert models' gate utilisation goes to
gates.parquet and the console (training.gates).
"""
from __future__ import annotations

import json
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from schemas.split import MIN_EVAL_ROWS, MIN_EVAL_USERS
from training.config import DeviceKind, LossWeighting, TrainConfig
from training.data.loader import TrainingSnapshots, resolve_training_snapshots, split_files
from training.data.nodes import NodeTable, load_node_table
from training.data.resident import load_resident_graph, neighbors_k
from training.data.split_data import SplitData
from training.distributed import DistContext, average_, gather_cat, init_distributed, shutdown, wrap_ddp
from training.gates import GateStats, summarise
from training.gradnorm import GradNorm
from training.metrics import evaluate
from training.models import E2EGRec, ModelOutput, RankingModel, build_model, required_side_inputs
from training.report import write_metrics
from training.side_inputs import load_side_inputs, side_inputs_from_state
from training.step import TrainStep, capture_blockers
from training.tracking import fit_run_name, fit_tags, log_fit, tracked
from training.validation import CURVE_COLUMNS, EarlyStopping, score, validation_table

LOSS_NAMES = ("ssl", "ltr")
# train_log.parquet: per step the losses, GradNorm's weights and the unweighted gradient norms of
# each loss at the last shared layer (what GradNorm balances).
LOG_COLUMNS = ["epoch", "step", "loss", "l_ssl", "l_ltr", "w_ssl", "w_ltr", "g_ssl", "g_ltr"]
log = logging.getLogger(__name__)


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
    load_seconds: float = 0.0    # cold load: node table, resident graph and resident rows
    data: Optional[dict] = None  # how the training split was served (SplitData.describe)
    step: Optional[TrainStep] = None  # the step object (benchmarks time its captured graph)
    steady_examples_per_s: float = 0.0  # after the warm-up and capture steps of each epoch
    validation: Optional[pd.DataFrame] = None  # per epoch and task: validation AUC, log loss (CURVE_COLUMNS)
    best_epoch: Optional[int] = None   # the epoch whose weights were kept (None: no validation split)
    best_score: float = float("nan")   # its validation score (mean AUC over tasks)
    warnings: tuple[str, ...] = ()     # e.g. an evaluation too small to trust
    outputs: dict[str, Path] = field(default_factory=dict)  # the files written to out_dir (not the checkpoint)

    @property
    def captured(self) -> bool:
        """Whether the step ran from a CUDA graph."""
        return self.step is not None and self.step.captured


def resolve_device(kind: DeviceKind) -> torch.device:
    """cuda when asked for (or auto) and available; CPU otherwise, with a warning if cuda was asked for."""
    if kind is DeviceKind.CPU:
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if kind is DeviceKind.CUDA:
        log.warning("warning: --device cuda requested but CUDA is not available; running on CPU")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


class LossBalance:
    """Turns a ModelOutput into the loss to backpropagate: GradNorm, fixed weights, or L_LTR alone."""

    def __init__(self, cfg: TrainConfig, device: torch.device, capturable: bool = False):
        o = cfg.optim
        self.gfae = cfg.model.ssl
        self.fixed = torch.tensor([o.ssl_weight, o.ltr_weight], device=device)
        self.gradnorm = (GradNorm(LOSS_NAMES, [o.ssl_weight, o.ltr_weight], o.gradnorm_alpha, o.gradnorm_lr,
                                  capturable=capturable).to(device)
                         if self.gfae and o.loss_weighting is LossWeighting.GRADNORM else None)

    def __call__(self, out: ModelOutput, model: RankingModel, ctx: DistContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, log row [L_SSL, L_LTR, w_SSL, w_LTR, G_SSL, G_LTR]) for one step, G the
        unweighted gradient norms GradNorm balances at `model.last_shared_layer()` (NaN without
        GradNorm)."""
        nan = torch.full((), float("nan"), device=out.ltr_loss.device)
        if not self.gfae:
            w = self.fixed[1]
            return w * out.ltr_loss, torch.stack([nan, out.ltr_loss.detach(), nan, w, nan, nan])
        assert out.ssl_loss is not None  # the model adds L_SSL (cfg.model.ssl)
        losses = [out.ssl_loss, out.ltr_loss]
        if self.gradnorm is None:
            total = self.fixed[0] * losses[0] + self.fixed[1] * losses[1]
            weights, norms = self.fixed, torch.stack([nan, nan])
        else:
            total = self.gradnorm.combine(losses)
            assert isinstance(model, E2EGRec)  # the only model with L_SSL (cfg.model.ssl)
            update = self.gradnorm.step(losses, model.last_shared_layer(), lambda g: average_(ctx, g))
            weights, norms = update.weights, update.raw_norms
        return total, torch.cat([torch.stack([l.detach().float() for l in losses]), weights.float(), norms.float()])

    def state_dict(self) -> dict:
        if self.gradnorm is None:
            return {}
        return {"gradnorm": self.gradnorm.state_dict(), "optimizer": self.gradnorm.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.gradnorm is not None:
            self.gradnorm.load_state_dict(state["gradnorm"])
            self.gradnorm.optimizer.load_state_dict(state["optimizer"])


def make_optimizers(model: RankingModel, cfg: TrainConfig, capturable: bool = False) -> list[torch.optim.Optimizer]:
    sparse = list(model.sparse_parameters())
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    # One fused kernel for all dense parameters on CUDA (the per-tensor loop cost ~10% of a step).
    fused = all(p.is_cuda for p in dense) or None
    opts: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                                                          fused=fused, capturable=capturable)]
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=cfg.optim.lr))
    return opts


def fit(cfg: TrainConfig, evaluate: bool = True, parent_run: Optional[str] = None) -> TrainResult:
    """Train (validating every epoch when the table has a validation split), then score the
    evaluation split unless `evaluate` is False (model selection must not read it: it is not even
    loaded, and the result's metrics are empty). With --tracking, rank 0 logs the run to MLflow
    (training.tracking), as a child of `parent_run` when given."""
    cfg.validate()
    if cfg.run.threads is not None:
        torch.set_num_threads(cfg.run.threads)
    ctx = init_distributed(resolve_device(cfg.run.device))
    try:
        with tracked(cfg.run, fit_run_name(cfg, evaluate), fit_tags(cfg, evaluate), parent_run,
                     enabled=ctx.is_main) as tracker:
            result = _fit(cfg, ctx, evaluate)
            if tracker is not None:
                log_fit(tracker, cfg, result)
        return result
    finally:
        shutdown(ctx)


def eval_size_warnings(rows: int, users: int, split: str) -> list[str]:
    """Why an evaluation of `rows` rows from `users` distinct users is too small to rank models by."""
    if rows >= MIN_EVAL_ROWS and users >= MIN_EVAL_USERS:
        return []
    return [f"the {split} split holds {rows:,} rows from {users:,} users (below {MIN_EVAL_ROWS:,} rows or "
            f"{MIN_EVAL_USERS} users): its AUCs are too noisy to rank models by; rebuild the lake with a larger "
            "--eval-fraction"]


def _fit(cfg: TrainConfig, ctx: DistContext, do_eval: bool = True) -> TrainResult:
    device = ctx.device
    if cfg.optim.sparse_embeddings and ctx.enabled and device.type == "cuda":
        raise TrainingError("--sparse-embeddings with DDP needs sparse all-reduce, which NCCL lacks: drop the flag "
                            "for multi-GPU runs")
    seed_everything(cfg.run.seed)
    needs = required_side_inputs(cfg.model.name)
    snaps = resolve_training_snapshots(cfg.data, with_macro="macro" in needs, with_graph="graph_embeddings" in needs)
    if ctx.is_main:
        print(describe_snapshots(snaps), flush=True)
    load_start = time.perf_counter()
    nodes = load_node_table(snaps.nodes)
    graph = (load_resident_graph(snaps.neighbors, neighbors_k(snaps.examples, snaps.neighbors), nodes.degree, device,
                                 cfg.data.workers) if snaps.neighbors is not None else None)
    train_files = split_files(snaps.examples, cfg.data.train_split)
    val_files = split_files(snaps.examples, cfg.data.val_split, required=False)
    train_data = SplitData.load(cfg, snaps, train_files, graph, device, "train")
    val_data = SplitData.load(cfg, snaps, val_files, graph, device, "val") if val_files else None
    eval_data = (SplitData.load(cfg, snaps, split_files(snaps.examples, cfg.data.eval_split), graph, device, "eval")
                 if do_eval else None)
    load_s = time.perf_counter() - load_start
    side, side_record = load_side_inputs(cfg, snaps, nodes, train_files, ctx, graph)
    model = build_model(cfg.model, nodes, snaps.num_domains, snaps.tasks, cfg.optim.sparse_embeddings,
                        side).to(device)
    if cfg.model.warm_start:
        assert isinstance(model, E2EGRec)  # TrainConfig.validate allows --warm-start for e2e_grec only
        model.warm_start(side.require("warm_start", "e2e_grec --warm-start").to(device))
    blockers = capture_blockers(device, ctx.enabled, cfg.optim.sparse_embeddings) if cfg.run.cuda_graphs else []
    capture = cfg.run.cuda_graphs and not blockers
    if blockers and ctx.is_main and device.type == "cuda":
        log.warning("training step not captured in a CUDA graph: %s", "; ".join(blockers))
    balance = LossBalance(cfg, device, capturable=capture)
    optimizers = make_optimizers(model, cfg, capturable=capture)
    out_dir = Path(cfg.run.out)
    stopper = EarlyStopping(cfg.run.patience)
    start_epoch = _resume(cfg, out_dir, model, optimizers, balance, stopper, snaps) if cfg.run.resume else 0
    trained: nn.Module = model
    if ctx.enabled:
        trained = wrap_ddp(model, ctx)
    amp = cfg.run.amp and device.type == "cuda"
    gates = GateStats(model.gate_experts, device)
    step = TrainStep(trained, train_data.assemble, lambda out: balance(out, model, ctx), optimizers, gates, device,
                     amp, capture)
    log_parts: list[torch.Tensor] = []
    gate_parts: list[pd.DataFrame] = []
    curve: list[pd.DataFrame] = []
    examples, steady_examples = 0, 0
    loader_s, steady_s = 0.0, 0.0
    train_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.run.epochs):
        per_rank = train_data.rows_per_rank(ctx.world)
        bar = tqdm(total=per_rank if cfg.run.max_steps is None else min(per_rank, cfg.run.max_steps *
                                                                          cfg.data.batch_size),
                   unit="ex", unit_scale=True, desc=f"epoch {epoch + 1}/{cfg.run.epochs}",
                   disable=not (cfg.run.progress and ctx.is_main), file=sys.stderr)
        gates.reset()
        model.train()
        stats = train_epoch(step, train_data.epoch(epoch_seed(cfg.run.seed, epoch), ctx, train=True), cfg, ctx, bar)
        bar.close()
        if model.gate_experts:
            gate_parts.append(gates.frame(epoch, ctx))
        examples += stats.examples
        loader_s += stats.loader_seconds
        steady_examples += stats.steady_examples
        steady_s += stats.steady_seconds
        if len(stats.log):
            log_parts.append(torch.cat([torch.full((len(stats.log), 1), float(epoch)), stats.log], dim=1))
        stop = False
        if val_data is not None:
            probs, labels, _, _ = predict_split(model, val_data, ctx, amp)
            curve.append(validation_table(probs, labels, snaps.tasks, epoch))
            stop = stopper.update(epoch, score(curve[-1]), model)
            if ctx.is_main:
                log.info("epoch %d: validation AUC %.4f (best %.4f, epoch %d)", epoch + 1, score(curve[-1]),
                         stopper.best_score, stopper.best_epoch + 1)
        if cfg.run.checkpoint and ctx.is_main:
            save_checkpoint(out_dir, model, optimizers, balance, epoch, cfg, snaps, nodes, stopper)
        if stop:
            if ctx.is_main:
                log.info("early stop after epoch %d: no better validation AUC for %d epochs", epoch + 1,
                         cfg.run.patience)
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - train_start
    if stopper.restore(model) and ctx.is_main:
        log.info("restored epoch %d (validation AUC %.4f)", stopper.best_epoch + 1, stopper.best_score)
    label = cfg.run.label or cfg.model.name.value
    eval_start = time.perf_counter()
    warnings: list[str] = []
    metrics = pd.DataFrame()
    if eval_data is not None:
        probs, labels, users, days = predict_split(model, eval_data, ctx, amp)
        warnings = eval_size_warnings(len(users), int(torch.unique(users).numel()), cfg.data.eval_split)
        if ctx.is_main:
            metrics = evaluate(probs, labels, users, days, snaps.tasks, label, period=cfg.run.eval_period)
            for w in warnings:
                log.warning("%s", w)
    eval_s = time.perf_counter() - eval_start
    log_frame = pd.DataFrame(torch.cat(log_parts).numpy() if log_parts else np.zeros((0, len(LOG_COLUMNS))),
                             columns=LOG_COLUMNS)
    gate_log = pd.concat(gate_parts, ignore_index=True) if gate_parts else pd.DataFrame()
    pretrain_s = side_record.get("pretrain", {}).get("seconds", 0.0)
    result = TrainResult(metrics, snaps.describe(), log_frame, gate_log,
                         examples * ctx.world / train_s if train_s else 0.0, train_s, pretrain_s, eval_s, loader_s,
                         str(device), out_dir, model, load_s, train_data.describe(), step,
                         steady_examples * ctx.world / steady_s if steady_s else 0.0,
                         pd.concat(curve, ignore_index=True) if curve else pd.DataFrame(columns=CURVE_COLUMNS),
                         stopper.best_epoch if stopper.best_state is not None else None, stopper.best_score,
                         tuple(warnings))
    if ctx.is_main and do_eval:
        if not gate_log.empty:
            print(summarise(gate_log), flush=True)
        write_results(result, cfg, ctx, label, side_record)
    return result


@dataclass
class EpochStats:
    log: torch.Tensor        # (steps, 8): step, loss, L_SSL, L_LTR, w_SSL, w_LTR, G_SSL, G_LTR (CPU)
    examples: int
    loader_seconds: float
    steady_examples: int = 0       # examples after the warm-up and capture steps
    steady_seconds: float = 0.0    # their wall time, loader included (timed on the device's stream)


class StreamClock:
    """Wall time between two points of the training loop as the device sees it: CUDA events on the
    current stream (no sync when marking), perf_counter on the CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.marks: list = []

    def mark(self) -> None:
        """Mark now; `seconds` spans the first and the latest mark."""
        now: torch.cuda.Event | float
        if self.cuda:
            now = torch.cuda.Event(enable_timing=True)
            now.record()
        else:
            now = time.perf_counter()
        self.marks = [self.marks[0], now] if self.marks else [now]

    def seconds(self) -> float:
        if len(self.marks) < 2:
            return 0.0
        first, last = self.marks[0], self.marks[-1]
        if self.cuda:
            last.synchronize()
            return first.elapsed_time(last) / 1000
        return last - first


def train_epoch(step: TrainStep, stream: Iterator[dict[str, torch.Tensor]], cfg: TrainConfig, ctx: DistContext,
                bar: tqdm) -> EpochStats:
    """One pass over `stream` (device batches). Log rows stay on the device; the progress bar reads one
    every --log-every steps (the only host sync of the loop)."""
    rows: list[torch.Tensor] = []
    examples, loader_s, steady = 0, 0.0, 0
    clock = StreamClock(ctx.device)
    steady_from = step.warmup + 1  # the eager warm-up steps and the capture step are not steady
    if step.steps >= steady_from:
        clock.mark()
    while cfg.run.max_steps is None or len(rows) < cfg.run.max_steps:
        t0 = time.perf_counter()
        cols = next(stream, None)
        loader_s += time.perf_counter() - t0
        if cols is None:
            break
        rows.append(step(cols))
        size = len(cols["user_node"])
        examples += size
        if step.steps > steady_from:
            steady += size
        if step.steps >= steady_from:
            clock.mark()
        bar.update(size)
        if ctx.is_main and not bar.disable and len(rows) % cfg.run.log_every == 0:
            r = rows[-1].tolist()
            bar.set_postfix(loss=f"{r[0]:.4f}", w_ssl=f"{r[3]:.3f}", w_ltr=f"{r[4]:.3f}")
    if hasattr(stream, "close"):
        stream.close()
    if not rows:
        return EpochStats(torch.zeros((0, len(LOG_COLUMNS) - 1)), 0, loader_s)
    values = torch.stack(rows).cpu()
    steps = torch.arange(len(rows), dtype=torch.float32)[:, None]
    return EpochStats(torch.cat([steps, values], dim=1), examples, loader_s, steady, clock.seconds())


def predict_split(model: nn.Module, data: SplitData, ctx: DistContext,
                  amp: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probabilities, labels, user ids and days of a whole split, gathered from every rank."""
    device = ctx.device
    model.eval()
    parts: list[tuple[torch.Tensor, ...]] = []
    with torch.inference_mode():
        for cols in data.epoch(0, ctx, train=False):
            batch = data.assemble(cols)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(batch).logits
            parts.append((torch.sigmoid(logits.float()), batch.labels, batch.user_node, batch.day))
    if parts:
        local = [torch.cat(p) for p in zip(*parts)]
    else:
        t = len(data.tasks)
        local = [torch.zeros((0, t), device=device), torch.zeros((0, t), device=device),
                 torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, dtype=torch.long, device=device)]
    probs, labels, users, days = (gather_cat(ctx, x) for x in local)
    return probs, labels, users, days


def describe_snapshots(snaps: TrainingSnapshots) -> str:
    e, n, m, g = snaps.examples, snaps.nodes, snaps.macro, snaps.neighbors
    macro = f"{m.table} v{m.version} (pinned by {snaps.macro_pinned_by}); " if m is not None else ""
    graph = f"{g.table} v{g.version} (pinned by {snaps.neighbors_pinned_by}); " if g is not None else ""
    layout = "self-contained rows" if snaps.neighbor_arrays else "slim rows"
    return (f"snapshot: {e.table} v{e.version} ({e.rows} rows, {len(e.files)} files, {layout}, {e.uri}); "
            f"{n.table} v{n.version} (pinned by {snaps.nodes_pinned_by}); {graph}{macro}tasks {list(snaps.tasks)}")


def write_results(result: TrainResult, cfg: TrainConfig, ctx: DistContext, label: str, side_record: dict) -> None:
    out = result.out_dir
    paths = write_metrics(result.metrics, out, title=f"{label}: {describe_snapshots_from(result.snapshots)}",
                          warnings=result.warnings)
    result.log.to_parquet(out / "train_log.parquet", index=False)
    paths["train_log"] = out / "train_log.parquet"
    if result.validation is not None and len(result.validation):
        result.validation.to_parquet(out / "validation.parquet", index=False)
        paths["validation"] = out / "validation.parquet"
    if not result.gates.empty:
        result.gates.to_parquet(out / "gates.parquet", index=False)
        paths["gates"] = out / "gates.parquet"
    summary = {
        "label": label, "config": cfg.to_dict(), "snapshots": result.snapshots, "device": result.device,
        "world_size": ctx.world, "examples_per_s": result.examples_per_s, "train_seconds": result.train_seconds,
        "steady_examples_per_s": result.steady_examples_per_s, "load_seconds": result.load_seconds, "data": result.data, "cuda_graph": result.captured,
        "eval_seconds": result.eval_seconds, "loader_wait_seconds": result.loader_seconds,
        "pretrain_seconds": result.pretrain_seconds,
        "final_weights": (result.log[["w_ssl", "w_ltr"]].iloc[-1].tolist() if len(result.log) else None),
        "best_epoch": result.best_epoch, "best_validation_auc": result.best_score, "warnings": list(result.warnings),
        "outputs": {k: p.name for k, p in paths.items()}, **side_record,
    }
    (out / "run.json").write_text(json.dumps(summary, indent=2, default=str))
    result.outputs = {**paths, "run": out / "run.json"}


def describe_snapshots_from(described: dict) -> str:
    parts = [described[k] for k in ("examples", "nodes", "neighbors", "macro") if k in described]
    return ", ".join(f"{p['table']} v{p['version']}" for p in parts)


def save_checkpoint(out_dir: Path, model: nn.Module, optimizers: Sequence[torch.optim.Optimizer],
                    balance: LossBalance, epoch: int, cfg: TrainConfig, snaps: TrainingSnapshots,
                    nodes: NodeTable, stopper: EarlyStopping) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "checkpoint.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
                "balance": balance.state_dict(), "epoch": epoch, "config": cfg.to_dict(),
                "early_stopping": stopper.state_dict(),
                "snapshots": snaps.describe(), "node_widths": {"user": nodes.user_width, "item": nodes.item_width}},
               tmp)
    tmp.replace(path)
    return path


def _resume(cfg: TrainConfig, out_dir: Path, model: nn.Module, optimizers: Sequence[torch.optim.Optimizer],
            balance: LossBalance, stopper: EarlyStopping, snaps: TrainingSnapshots) -> int:
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
    if "early_stopping" in state:  # checkpoints written before validation existed carry none
        stopper.load_state_dict(state["early_stopping"], next(model.parameters()).device)
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
