"""gold.nodes as lookup tensors: every node's full-graph degree and its side features.

Users and items have different feature layouts, so the feature table is block-structured:
[user features | item features], zeros in the other type's block. One linear projection over it
is then exactly a separate projection per node type.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
import torch

from training.data.arrow_columns import column_to_numpy
from training.data.arrow_reader import read_files
from training.data.snapshot import Snapshot, SnapshotError, require_columns

NODE_COLUMNS = ["node_id", "node_type", "features", "degree"]


@dataclass(frozen=True)
class NodeTable:
    degree: torch.Tensor    # (N,) float32
    features: torch.Tensor  # (N, user_width + item_width) float32, block layout
    user_width: int
    item_width: int

    @property
    def num_nodes(self) -> int:
        return self.degree.shape[0]


def load_node_table(snapshot: Snapshot) -> NodeTable:
    require_columns(snapshot, NODE_COLUMNS)
    where = f"{snapshot.table} v{snapshot.version}"
    t = read_files(snapshot, snapshot.files, NODE_COLUMNS)
    ids = column_to_numpy(t.column("node_id"), "node_id", where)
    n = int(ids.max()) + 1 if len(ids) else 0
    if len(ids) != n or len(np.unique(ids)) != n:
        raise SnapshotError(f"{where}: node_id must be dense 0..N-1 and unique (got {len(ids)} rows, max {n - 1})")
    blocks = {}
    for kind in ("user", "item"):
        rows = t.filter(pc.equal(t.column("node_type"), kind))
        blocks[kind] = (column_to_numpy(rows.column("node_id"), "node_id", where),
                        column_to_numpy(rows.column("features"), f"features of {kind} nodes", where))
    uw = blocks["user"][1].shape[1] if blocks["user"][1].ndim == 2 else 0
    iw = blocks["item"][1].shape[1] if blocks["item"][1].ndim == 2 else 0
    features = np.zeros((n, uw + iw), dtype=np.float32)
    if uw:
        features[blocks["user"][0], :uw] = blocks["user"][1]
    if iw:
        features[blocks["item"][0], uw:] = blocks["item"][1]
    degree = np.zeros(n, dtype=np.float32)
    degree[ids] = column_to_numpy(t.column("degree"), "degree", where)
    return NodeTable(torch.from_numpy(degree), torch.from_numpy(features), uw, iw)
