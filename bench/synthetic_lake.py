"""A synthetic gold.nodes + gold.neighbors + gold.examples lake for the trainer benchmarks, written with
delta-rs (no Spark, so it also runs on the GPU machine).

Rows follow the examples contract (schemas.tables.examples): slim by default, or self-contained
(`neighbor_arrays=True`: each row carries both nodes' lists, copied from gold.neighbors cut to k, and
their features, as the examples stage writes them). Every node has min(degree, k) neighbours drawn
uniformly; labels carry a planted feature signal. All columns are built vectorised, so 10M nodes
take seconds, not minutes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import tables

TASKS = ("like", "love")
FIRST_DAY = 19000


def _lists(values: np.ndarray, typ: pa.DataType) -> pa.Array:
    n, k = values.shape
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int64 if n * k >= 2**31 else np.int32)),
                                    pa.array(values.reshape(-1), typ))


def _ragged(values: np.ndarray, lengths: np.ndarray, typ: pa.DataType) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] < 2**31:
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, typ))
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values, typ)).cast(pa.list_(typ))


@dataclass(frozen=True)
class SyntheticGraph:
    users: int
    items: int
    k: int
    user_features: np.ndarray  # (users, Fu)
    item_features: np.ndarray  # (items, Fi)
    degree: np.ndarray         # (N,) full-graph degrees
    nbr_ids: np.ndarray        # (N, k) int32, PAD_NODE past count
    count: np.ndarray          # (N,) min(degree, k)

    @property
    def nodes(self) -> int:
        return self.users + self.items


def synthetic_graph(users: int, items: int, k: int, seed: int, user_width: int = 8,
                    item_width: int = 16) -> SyntheticGraph:
    rng = np.random.default_rng(seed)
    n = users + items
    uf = rng.standard_normal((users, user_width), dtype=np.float32)
    itf = rng.standard_normal((items, item_width), dtype=np.float32)
    degree = rng.integers(1, 3 * k, n)
    count = np.minimum(degree, k).astype(np.int32)
    ids = rng.integers(0, n, (n, k), dtype=np.int32)
    ids[np.arange(k)[None, :] >= count[:, None]] = tables.PAD_NODE
    return SyntheticGraph(users, items, k, uf, itf, degree, ids, count)


def nodes_table(g: SyntheticGraph) -> pa.Table:
    node_ids = np.arange(g.nodes)
    uw, iw = g.user_features.shape[1], g.item_features.shape[1]
    lengths = np.where(node_ids < g.users, uw, iw)
    flat = np.concatenate([g.user_features.reshape(-1), g.item_features.reshape(-1)])
    domain = pa.array(np.where(node_ids < g.users, "", np.char.add("d", ((node_ids - g.users) % 4).astype(str))))
    return pa.table({
        "node_id": pa.array(node_ids, pa.int64()),
        "node_type": pa.array(np.where(node_ids < g.users, "user", "item")),
        "raw_id": pa.array(node_ids.astype(str)),
        "domain": pc.if_else(pa.array(node_ids < g.users), pa.scalar(None, pa.string()), domain),
        "features": _ragged(flat, lengths, pa.float32()),
        "degree": pa.array(g.degree.astype(np.int64)),
    }).cast(tables.NODES.arrow_schema())


def neighbors_table(g: SyntheticGraph) -> pa.Table:
    keep = np.arange(g.k)[None, :] < g.count[:, None]
    values = g.nbr_ids[keep].astype(np.int64)
    return pa.table({
        "node_id": pa.array(np.arange(g.nodes), pa.int64()),
        "nbr_ids": _ragged(values, g.count, pa.int64()),
        "nbr_weights": _ragged(np.ones(len(values), np.float32), g.count, pa.float32()),
        "nbr_types": _ragged(np.zeros(len(values), np.int32), g.count, pa.int32()),
        "degree": pa.array(g.degree.astype(np.int64)),
    }).cast(tables.NEIGHBORS.arrow_schema())


def examples_table(g: SyntheticGraph, rows: int, days: int, eval_days: int, seed: int,
                   neighbor_arrays: bool = False) -> pa.Table:
    rng = np.random.default_rng(seed + 1)
    u = rng.integers(0, g.users, rows)
    i = rng.integers(0, g.items, rows)
    day = FIRST_DAY + rng.integers(0, days, rows)
    logit = 2.0 * (g.user_features[u, 0] + g.item_features[i, 0])
    cols: dict[str, pa.Array] = {
        "user_node": pa.array(u, pa.int64()), "item_node": pa.array(g.users + i, pa.int64()),
        "day": pa.array(day, pa.int32()),
        "split": pa.array(np.where(day >= FIRST_DAY + days - eval_days, "eval", "train")),
        "domain_id": pa.array(i % 4, pa.int32()),
        "like": pa.array((rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int32)),
        "love": pa.array((rng.random(rows) < 1 / (1 + np.exp(-(g.item_features[i, 1] - 1)))).astype(np.int32)),
    }
    if neighbor_arrays:
        cols["user_features"] = _lists(g.user_features[u], pa.float32())
        cols["item_features"] = _lists(g.item_features[i], pa.float32())
        for side, node in (("user", u), ("item", g.users + i)):
            count = g.count[node]
            mask = np.arange(g.k)[None, :] < count[:, None]
            cols[f"{side}_nbr_ids"] = _lists(g.nbr_ids[node].astype(np.int64), pa.int64())
            cols[f"{side}_nbr_weights"] = _lists(mask.astype(np.float32), pa.float32())
            cols[f"{side}_nbr_types"] = _lists(np.where(mask, 0, tables.PAD_TYPE).astype(np.int32), pa.int32())
            cols[f"{side}_nbr_count"] = pa.array(count)
            cols[f"{side}_degree"] = pa.array(g.degree[node].astype(np.int64))
    schema = tables.examples(list(TASKS), neighbor_arrays=neighbor_arrays).arrow_schema()
    return pa.table({f.name: cols[f.name] for f in schema}).cast(schema)


def write_synthetic_lake(root: str, rows: int = 200_000, users: int = 20_000, items: int = 5_000, k: int = 100,
                         days: int = 14, eval_days: int = 2, seed: int = 0, row_group: int = 1 << 20,
                         neighbor_arrays: bool = False) -> None:
    """gold.nodes, gold.neighbors and gold.examples under `root` (no manifest: the trainer pins the
    latest versions). Slim rows use 1M-row groups; self-contained rows (`neighbor_arrays`, ~2 KB a
    row at k = 100) 64k-row groups."""
    from deltalake import DeltaTable, WriterProperties, write_deltalake

    g = synthetic_graph(users, items, k, seed)
    props = WriterProperties(max_row_group_size=row_group if not neighbor_arrays else min(row_group, 65_536))
    write_deltalake(f"{root}/gold/nodes", nodes_table(g), mode="overwrite", writer_properties=props)
    write_deltalake(f"{root}/gold/neighbors", neighbors_table(g), mode="overwrite", writer_properties=props)
    write_deltalake(f"{root}/gold/examples", examples_table(g, rows, days, eval_days, seed, neighbor_arrays),
                    mode="overwrite", partition_by=["split"], writer_properties=props)
    DeltaTable(f"{root}/gold/examples").alter.set_table_properties(
        {"grec.labels": ",".join(TASKS), "grec.domains": "d0,d1,d2,d3", "grec.k": str(k),
         "grec.neighbor_arrays": str(neighbor_arrays).lower()}, raise_if_not_exists=False)
