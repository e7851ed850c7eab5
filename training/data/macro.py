"""gold.macro as lookup tensors indexed by node_id (MGOE's macro-graph counts,
docs/method.md §Macro).

Users' count arrays have one slot per item macro node (domain code, length D), items' one per user
macro node (KMeans cluster, length C); so the two node types live in two tensors, and `row` maps a
node_id to its row in its type's tensor. Memory is (U·D + I·C)·T floats plus two longs per node.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
import pyarrow.compute as pc
import torch

from schemas import contract
from schemas.tables import macro_counts_col
from training.data.arrow_columns import column_to_numpy
from training.data.arrow_reader import read_files
from training.data.snapshot import Snapshot, SnapshotError, require_columns

SIZE_PROPERTIES = {"n_clusters": contract.N_CLUSTERS.key, "n_domains": contract.N_DOMAINS.key}


@dataclass(frozen=True)
class MacroTable:
    macro_id: torch.Tensor     # (N,) long: a user's cluster, an item's domain code
    row: torch.Tensor          # (N,) long: the node's row in user_counts (users) or item_counts (items)
    user_counts: torch.Tensor  # (U, T, D) float: per task, the user's positives per item macro node
    item_counts: torch.Tensor  # (I, T, C) float: per task, the item's positives from each user macro node

    @property
    def n_domains(self) -> int:
        return self.user_counts.shape[2]

    @property
    def n_clusters(self) -> int:
        return self.item_counts.shape[2]

    def tensors(self) -> Mapping[str, torch.Tensor]:
        return {"macro_id": self.macro_id, "row": self.row, "user_counts": self.user_counts,
                "item_counts": self.item_counts}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], prefix: str) -> "MacroTable":
        """The table a model saved as buffers under `prefix` (a checkpoint carries it whole)."""
        return cls(**{name: state[prefix + name] for name in ("macro_id", "row", "user_counts", "item_counts")})


def load_macro_table(snapshot: Snapshot, tasks: Sequence[str], num_nodes: int,
                     domains: Optional[str] = None) -> MacroTable:
    """Read a pinned gold.macro version for `tasks`; `num_nodes` is gold.nodes' size.

    `domains` is the examples' grec.domains property: the item macro ids and the users' count slots
    are domain codes, so both tables must use one vocabulary.
    """
    where = f"{snapshot.table} v{snapshot.version}"
    counts = [macro_counts_col(t).name for t in tasks]
    require_columns(snapshot, ["node_id", "node_type", "macro_id", *counts])
    own_domains = snapshot.configuration.get(contract.DOMAINS.key)
    if domains and own_domains and own_domains != domains:
        raise SnapshotError(f"{where} codes domains as {own_domains!r} but the examples as {domains!r}: "
                            "build both from one run")
    t = read_files(snapshot, snapshot.files, ["node_id", "node_type", "macro_id", *counts])
    ids = column_to_numpy(t.column("node_id"), "node_id", where)
    if len(ids) != num_nodes or len(np.unique(ids)) != num_nodes or (len(ids) and ids.max() != num_nodes - 1):
        raise SnapshotError(f"{where} has {len(ids)} rows (max node_id {ids.max() if len(ids) else None}) but "
                            f"gold.nodes has {num_nodes} nodes: one row per node_id 0..{num_nodes - 1} expected; "
                            "were they built from the same graph?")
    macro_id = np.zeros(num_nodes, dtype=np.int64)
    macro_id[ids] = column_to_numpy(t.column("macro_id"), "macro_id", where)
    row = np.zeros(num_nodes, dtype=np.int64)
    blocks = {}
    for kind in ("user", "item"):
        part = t.filter(pc.equal(t.column("node_type"), kind))
        nodes = column_to_numpy(part.column("node_id"), "node_id", where)
        row[nodes] = np.arange(len(nodes))
        arrays = [column_to_numpy(part.column(c), f"{c} of {kind} rows", where) for c in counts]
        blocks[kind] = np.stack(arrays, axis=1) if len(nodes) else None
    user, item = (_sized(blocks[k], snapshot, key, where, len(tasks))
                  for k, key in (("user", "n_domains"), ("item", "n_clusters")))
    if (user < 0).any() or (item < 0).any():
        raise SnapshotError(f"{where}: macro counts must be >= 0")
    table = MacroTable(torch.from_numpy(macro_id), torch.from_numpy(row), torch.from_numpy(user),
                       torch.from_numpy(item))
    _check_macro_ids(table, t, where)
    return table


def _sized(block: Optional[np.ndarray], snapshot: Snapshot, key: str, where: str, n_tasks: int) -> np.ndarray:
    """A type's (rows, T, width) counts; the width must match the table property when it is set."""
    prop = snapshot.configuration.get(SIZE_PROPERTIES[key])
    if block is None:
        if prop is None:
            raise SnapshotError(f"{where} has no rows of one node type and no {SIZE_PROPERTIES[key]} property")
        return np.zeros((0, n_tasks, int(prop)), dtype=np.float32)
    if prop is not None and block.shape[2] != int(prop):
        raise SnapshotError(f"{where}: count arrays have length {block.shape[2]} but {SIZE_PROPERTIES[key]}={prop}")
    return block.astype(np.float32)


def _check_macro_ids(table: MacroTable, t, where: str) -> None:
    """A user's macro_id must be a cluster (< C), an item's a domain code (< D)."""
    ids = column_to_numpy(t.column("node_id"), "node_id", where)
    is_user = pc.equal(t.column("node_type"), "user").to_numpy(zero_copy_only=False)
    macro = table.macro_id.numpy()[ids]
    limits = np.where(is_user, table.n_clusters, table.n_domains)
    bad = np.flatnonzero((macro < 0) | (macro >= limits))
    if len(bad):
        i = int(ids[bad[0]])
        raise SnapshotError(f"{where}: node {i} has macro_id {int(macro[bad[0]])} outside its macro nodes "
                            f"(users: 0..{table.n_clusters - 1} clusters, items: 0..{table.n_domains - 1} domains)")
