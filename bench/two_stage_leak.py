"""How much of the two-stage model's frozen graph signal is its own training labels.

Stage 1 (LightGCN + BPR) trains on the train split's positive pairs, so the score <Z_u, Z_i> of a
training row's own pair was fitted to that row's label, while a validation or evaluation pair was
never seen. The ranker of stage 2 learns how far to trust that score on training rows; where
the score ranks training rows far better than unseen rows, the ranker over-trusts it. This
prints the AUC of the raw score, per split and task, for each seed's pretraining.

    python bench/two_stage_leak.py --lake lake --run syn1m --device cuda --seeds 3
"""
from __future__ import annotations

import argparse

import pandas as pd
import pyarrow.parquet as pq
import torch

from schemas.split import SPLITS
from training.config import DeviceKind, ModelName, TrainConfig
from training.data.loader import resolve_training_snapshots, split_files
from training.data.nodes import load_node_table
from training.data.resident import load_resident_graph, neighbors_k
from training.metrics import grouped_auc
from training.pretrain import pretrain_lightgcn_bpr, read_training_graph
from training.train import resolve_device


def split_rows(files, tasks) -> pd.DataFrame:
    return pd.concat([pq.read_table(f.uri.removeprefix("file://"), columns=["user_node", "item_node", *tasks])
                      .to_pandas() for f in files], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--run", required=True, help="the run whose gold.examples to read")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--device", default="auto", choices=[d.value for d in DeviceKind])
    args = parser.parse_args()
    cfg = TrainConfig()
    cfg.data.lake, cfg.data.run, cfg.model.name = args.lake, args.run, ModelName.TWO_STAGE
    cfg.run.device = DeviceKind(args.device)
    device = resolve_device(cfg.run.device)
    snaps = resolve_training_snapshots(cfg.data, with_graph=True)
    nodes = load_node_table(snaps.nodes)
    graph = load_resident_graph(snaps.neighbors, neighbors_k(snaps.examples, snaps.neighbors), nodes.degree,
                                device, cfg.data.workers)
    m, task = cfg.model, cfg.model.pretrain_task or snaps.tasks[0]
    training_graph = read_training_graph(split_files(snaps.examples, cfg.data.train_split), task, graph)
    rows = {s: split_rows(split_files(snaps.examples, s, required=False), snaps.tasks) for s in SPLITS}
    out = []
    for seed in range(args.seeds):
        z = pretrain_lightgcn_bpr(training_graph, nodes.degree, dim=m.id_dim, epochs=m.pretrain_epochs,
                                  lr=m.pretrain_lr, l2=m.pretrain_l2, batch_size=cfg.data.batch_size, seed=seed,
                                  device=device).embeddings
        for split, frame in rows.items():
            if frame.empty:
                continue
            u, i = (torch.from_numpy(frame[c].to_numpy()) for c in ("user_node", "item_node"))
            score = (z[u] * z[i]).sum(-1).double()
            for t in snaps.tasks:
                y = torch.from_numpy(frame[t].to_numpy()).double()
                auc = grouped_auc(score, y, torch.zeros(len(y), dtype=torch.long), 1)[0]
                out.append({"seed": seed, "split": split, "task": t, "rows": len(y), "auc": float(auc[0])})
    table = pd.DataFrame(out).groupby(["task", "split"], sort=False).agg(
        rows=("rows", "first"), auc=("auc", "mean"), std=("auc", "std"))
    print(f"AUC of the frozen stage-1 score <Z_u, Z_i> (BPR on {task} positives of the train split), "
          f"{args.seeds} seed(s)")
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
