"""AUC on the evaluation rows of users the training split has seen ("warm") and of users it has
not ("cold"), per model over seeds: where a graph can help at all.

A time split puts every user who arrives late into the evaluation alone: such a user has no
training row, no trained ID embedding and no edge in the graph, so no graph model can do better
for them than the features allow. The pooled AUC of a log whose evaluation is mostly cold users
hides what the graph does for the rest.

    python bench/warm_cold.py --lake lake --run ml100 --models ltr,two_stage,e2e_grec \
        --setting ltr:lr=0.001,weight_decay=0.00001 --seeds 3 --epochs 20 --device cuda
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

import pandas as pd
import pyarrow.parquet as pq
import torch

from training.config import DeviceKind, ModelName, TrainConfig
from training.data.loader import resolve_training_snapshots, split_files
from training.data.nodes import load_node_table
from training.data.resident import load_resident_graph, neighbors_k
from training.data.snapshot import DataFile
from training.data.split_data import SplitData
from training.distributed import DistContext
from training.metrics import grouped_auc
from training.selection import Grid, apply
from training.train import fit, predict_split

log = logging.getLogger("warm_cold")


def seen_users(files: Sequence[DataFile]) -> torch.Tensor:
    """The distinct user nodes of the training split."""
    parts = [torch.from_numpy(pq.read_table(f.uri.removeprefix("file://"), columns=["user_node"])
                              .column(0).to_numpy()) for f in files]
    return torch.unique(torch.cat(parts))


def group_aucs(probs: torch.Tensor, labels: torch.Tensor, users: torch.Tensor, warm: torch.Tensor,
               tasks: Sequence[str]) -> list[dict]:
    """Pooled AUC per task over all, warm and cold evaluation rows."""
    out = []
    for t, task in enumerate(tasks):
        for group, mask in (("all", torch.ones_like(warm)), ("warm", warm), ("cold", ~warm)):
            p, y = probs[mask, t].double(), labels[mask, t].double()
            auc = grouped_auc(p, y, torch.zeros(len(p), dtype=torch.long, device=p.device), 1)[0]
            out.append({"task": task, "users": group, "auc": float(auc[0]), "rows": int(mask.sum()),
                        "distinct_users": int(torch.unique(users[mask]).numel())})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--run", required=True, help="the run whose gold.examples to read")
    parser.add_argument("--models", default="ltr,two_stage,e2e_grec,shared_bottom,mmoe")
    parser.add_argument("--setting", action="append", default=[],
                        help="MODEL:name=value,name=value (e.g. the setting grec compare chose); repeatable")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="auto", choices=[d.value for d in DeviceKind])
    parser.add_argument("--out", default="/tmp/warm_cold")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = {}
    for text in args.setting:
        model, _, pairs = text.partition(":")
        settings[model] = Grid.parse([p for p in pairs.split(",") if p]).points()[0]
    rows = []
    for name in args.models.split(","):
        for seed in range(args.seeds):
            cfg = TrainConfig()
            cfg.data.lake, cfg.data.run, cfg.model.name = args.lake, args.run, ModelName(name)
            cfg.run.epochs, cfg.run.seed, cfg.run.device = args.epochs, seed, DeviceKind(args.device)
            cfg.run.progress, cfg.run.checkpoint, cfg.run.out = False, False, f"{args.out}/{name}/seed{seed}"
            cfg = apply(cfg, settings.get(name, {}))
            result = fit(cfg)
            device = next(result.model.parameters()).device
            snaps = resolve_training_snapshots(cfg.data)
            graph = (load_resident_graph(snaps.neighbors, neighbors_k(snaps.examples, snaps.neighbors),
                                         load_node_table(snaps.nodes).degree, device, cfg.data.workers)
                     if snaps.neighbors is not None else None)
            data = SplitData.load(cfg, snaps, split_files(snaps.examples, cfg.data.eval_split), graph, device, "eval")
            probs, labels, users, _ = predict_split(result.model, data, DistContext(0, 1, 0, device),
                                                    amp=device.type == "cuda")
            warm = torch.isin(users, seen_users(split_files(snaps.examples, cfg.data.train_split)).to(device))
            rows += [{"model": name, "seed": seed, **r} for r in group_aucs(probs, labels, users, warm, snaps.tasks)]
    table = pd.DataFrame(rows).groupby(["task", "users", "model"], sort=True).agg(
        auc=("auc", "mean"), std=("auc", "std"), rows=("rows", "first"), distinct_users=("distinct_users", "first"))
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
