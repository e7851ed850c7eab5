"""Run by torchrun (2 processes, gloo) from test_training_lake.py.

1. Each rank reads its shard of the training split with both streaming backends and as resident
   rows; rank 0 writes every rank's (user, item, day) keys to OUT/shards.json.
2. The ranks train together (DDP, GradNorm) through training.train.fit; each rank writes a checksum
   of its final parameters and loss weights to OUT/rank<r>.json; rank 0 writes the metrics.
3. They train again with fixed loss weights and 32 rows per rank; rank 0 writes the parameter
   checksum and AUCs to OUT/fixed.json, for comparison with one process at 64 rows a step.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from training.config import DeviceKind, EvalPeriod, LoaderBackend, LossWeighting, Residency, TrainConfig
from training.data.examples import example_columns
from training.data.loader import make_batches, resolve_training_snapshots, split_files
from training.data.resident import decoded_chunks, load_resident_examples
from training.distributed import exit_rank, init_distributed, shutdown
from training.train import fit


def tiny_config(lake: str, out: str) -> TrainConfig:
    cfg = TrainConfig()
    cfg.data.lake, cfg.data.run, cfg.data.loader, cfg.data.batch_size = lake, "r1", LoaderBackend.ARROW, 64
    m = cfg.model
    m.id_dim = m.feature_dim = m.ltr_dim = m.gnn_dim = 8
    m.shared_hidden, m.attention_dim, m.tower_hidden = (16,), 8, (8,)
    cfg.optim.lr = 0.01
    cfg.run.out, cfg.run.progress, cfg.run.threads, cfg.run.device = out, False, 1, DeviceKind.CPU
    cfg.run.eval_period = EvalPeriod.DAY
    return cfg


def main(lake: str, out: str) -> None:
    torch.set_num_threads(1)
    cfg = tiny_config(lake, out)
    ctx = init_distributed(torch.device("cpu"))
    snaps = resolve_training_snapshots(cfg.data)
    files = split_files(snaps.examples, "train")
    keys = {}
    for backend in LoaderBackend:
        mine = []
        for b in make_batches(backend, files, example_columns(snaps.tasks), batch_size=50, shuffle=True, seed=7,
                              rank=ctx.rank, world=ctx.world, shuffle_buffer=100):
            mine += list(zip(b["user_node"].tolist(), b["item_node"].tolist(), b["day"].tolist()))
        gathered = [None] * ctx.world
        dist.all_gather_object(gathered, mine)
        keys[backend.value] = gathered
    cols = example_columns(snaps.tasks)
    resident = load_resident_examples(decoded_chunks(files, cols, 1), sum(f.rows for f in files), cols,
                                      torch.device("cpu"), Residency.DEVICE)
    mine = []
    for b in resident.epoch(50, shuffle=True, seed=7, rank=ctx.rank, world=ctx.world, drop_last=False):
        mine += list(zip(b["user_node"].tolist(), b["item_node"].tolist(), b["day"].tolist()))
    gathered = [None] * ctx.world
    dist.all_gather_object(gathered, mine)
    keys["resident"] = gathered
    if ctx.rank == 0:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "shards.json").write_text(json.dumps(keys))
    result = fit(cfg)
    (Path(out) / f"rank{ctx.rank}.json").write_text(json.dumps({
        "checksum": checksum(result.model), "weights": result.log[["w_ssl", "w_ltr"]].iloc[-1].tolist(),
        "steps": len(result.log)}))
    fixed = fixed_weights_config(lake, str(Path(out) / "fixed"), batch_size=32)
    result = fit(fixed)
    if ctx.rank == 0:
        (Path(out) / "fixed.json").write_text(json.dumps({
            "checksum": checksum(result.model), "auc": result.metrics["auc"].tolist()}))
    shutdown(ctx)  # the group this worker set up; the fits joined it and left it in place


def fixed_weights_config(lake: str, out: str, batch_size: int) -> TrainConfig:
    """Fixed loss weights: GradNorm's norms are per rank by design, everything else is batch-linear."""
    cfg = tiny_config(lake, out)
    cfg.data.batch_size = batch_size
    cfg.optim.loss_weighting = LossWeighting.FIXED
    return cfg


def checksum(model: torch.nn.Module) -> float:
    return sum(float(p.detach().double().sum()) for p in model.parameters())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    exit_rank(0)  # as training.cli's ranks end
