"""The two-stage baseline's first stage: LightGCN pretrained with BPR, then frozen (He et al., SIGIR 2020).

Kept short on purpose; it exists to show what E2E-GRec replaces (SPEC §8).

- Graph: the resident gold.neighbors lists cut to the examples' k (training.data.resident; built
  from pre-cutoff edges only), i.e. exactly the graph E2E-GRec's encoder reads, so the two differ
  only in how the encoder is trained (frozen BPR vs end-to-end).
- Encoder: `SampledLightGCN`'s propagation on a free ID table E (width --id-dim), K = 1:
      Z_v = (E_v + deg(v)/|S(v)| sum_{x in S(v)} E_x / sqrt(deg(v) deg(x))) / 2
- BPR: positives are the distinct (user, item) pairs of train rows whose --pretrain-task label is
  1 (default: the first task); one negative item per positive, uniform over the train split's
  distinct items (a sampled negative can be an unseen positive, as in LightGCN's sampler):
      L = -mean log sigmoid(<Z_u, Z_i> - <Z_u, Z_j>) + l2 · mean(||E_u||^2 + ||E_i||^2 + ||E_j||^2) / 2
  Adam (--pretrain-lr) for --pretrain-epochs passes over the positives in --batch-size batches.
- Output: Z of every node, (N, id_dim); nodes without a list keep Z_v = E_v / 2. Also E itself,
  which E2E-GRec's --warm-start copies into its ID table before training end to end. Rows of E
  that BPR never trained (a user without a training positive, an item outside the training split)
  are zeroed: left at their random initialisation they reach the ranker as noise it cannot tell
  from signal, and on a time split most evaluation users are such cold nodes.

Memory: the lists of all N nodes (N x k longs, like gold.neighbors) and the positive pairs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from training.data.arrow_reader import ArrowExampleReader
from training.data.batching import EpochOptions
from training.data.examples import Neighbours
from training.data.resident import ResidentGraph
from training.data.snapshot import DataFile, SnapshotError
from training.models.lightgcn import SampledLightGCN

READ_BATCH = 65_536
INIT_STD = 0.1  # LightGCN's normal initialisation


@dataclass(frozen=True)
class TrainingGraph:
    nbr_ids: torch.Tensor    # (N, k): each node's sampled list (gold.neighbors, cut to k)
    nbr_count: torch.Tensor  # (N,): real entries of each list
    positives: torch.Tensor  # (P, 2) long: distinct (user_node, item_node) positive pairs
    items: torch.Tensor      # (I,) long: distinct train items (the negatives' pool)


@dataclass(frozen=True)
class Pretrained:
    embeddings: torch.Tensor  # (N, dim) Z of every node, on the CPU
    ids: torch.Tensor         # (N, dim) the trained layer-0 table E, on the CPU
    epoch_losses: list[float]
    seconds: float


def read_training_graph(files: Sequence[DataFile], task: str, graph: ResidentGraph, workers: int = 2) -> TrainingGraph:
    """The resident lists and the train split's positive pairs and items (one sequential pass)."""
    num_nodes = graph.ids.shape[0]
    pairs, items = [], []
    for batch in ArrowExampleReader(files, ["user_node", "item_node", task],
                                    EpochOptions(batch_size=READ_BATCH, workers=workers)):
        nodes = torch.cat([batch["user_node"], batch["item_node"]])
        if nodes.numel() and int(nodes.max()) >= num_nodes:
            raise SnapshotError(f"node {int(nodes.max())} of the train split is not in gold.nodes ({num_nodes} nodes)")
        positive = batch[task].numpy() == 1
        pairs.append(np.stack([batch["user_node"].numpy()[positive], batch["item_node"].numpy()[positive]], axis=1))
        items.append(np.unique(batch["item_node"].numpy()))
    positives = np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2), dtype=np.int64)
    if not len(positives):
        raise SnapshotError(f"the train split has no row with {task} = 1: BPR pretraining needs positives")
    return TrainingGraph(graph.ids, graph.count, torch.from_numpy(positives.astype(np.int64)),
                         torch.from_numpy(np.unique(np.concatenate(items))))


def propagate(emb: torch.Tensor, encoder: SampledLightGCN, graph: TrainingGraph, nodes: torch.Tensor) -> torch.Tensor:
    """Z of `nodes`: (E_v + sum_x a_vx E_x) / 2 over v's sampled list, LightGCN's normalisation."""
    nbr = Neighbours(graph.nbr_ids[nodes], graph.nbr_count[nodes], encoder.node_degree[nodes])
    e1 = F.embedding_bag(nbr.ids, emb, per_sample_weights=encoder.neighbour_weights(nbr), mode="sum")
    return (emb[nodes] + e1) / 2


def pretrain_lightgcn_bpr(graph: TrainingGraph, degree: torch.Tensor, *, dim: int, epochs: int, lr: float,
                          l2: float, batch_size: int, seed: int, device: torch.device) -> Pretrained:
    """Train E with BPR through the K = 1 propagation; return Z of every node (see the module doc)."""
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    n = degree.shape[0]
    emb = torch.nn.Parameter((torch.randn(n, dim, generator=gen) * INIT_STD).to(device))
    encoder = SampledLightGCN(degree).to(device)
    graph = TrainingGraph(*(t.to(device) for t in (graph.nbr_ids, graph.nbr_count, graph.positives, graph.items)))
    opt = torch.optim.Adam([emb], lr=lr)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(graph.positives), generator=gen).to(device)
        total, steps = torch.zeros((), device=device), 0
        for chunk in order.split(batch_size):
            u, i = graph.positives[chunk, 0], graph.positives[chunk, 1]
            j = graph.items[torch.randint(len(graph.items), (len(chunk),), generator=gen).to(device)]
            z = propagate(emb, encoder, graph, torch.cat([u, i, j]))
            z_u, z_i, z_j = z.split(len(chunk))
            bpr = -F.logsigmoid((z_u * z_i).sum(-1) - (z_u * z_j).sum(-1)).mean()
            reg = l2 * (emb[u].pow(2).sum(-1) + emb[i].pow(2).sum(-1) + emb[j].pow(2).sum(-1)).mean() / 2
            loss = bpr + reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
            steps += 1
        losses.append(float(total) / max(steps, 1))
    with torch.no_grad():
        trained = torch.zeros(n, dtype=torch.bool, device=device)
        trained[graph.positives.reshape(-1)] = True
        trained[graph.items] = True
        emb[~trained] = 0.0
        z = torch.cat([propagate(emb, encoder, graph, part)
                       for part in torch.arange(n, device=device).split(READ_BATCH)]).cpu()
    return Pretrained(z, emb.detach().cpu(), losses, time.perf_counter() - start)
