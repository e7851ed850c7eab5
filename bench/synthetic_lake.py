"""A synthetic gold.examples + gold.nodes lake for the trainer benchmarks, written with delta-rs.

No Spark needed, so it also runs on the GPU machine. Rows follow the examples contract
(schemas.tables.examples) with k-long neighbour lists; labels carry a planted feature signal.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from schemas import tables

TASKS = ("like", "love")
FIRST_DAY = 19000


def _lists(values: np.ndarray, typ: pa.DataType) -> pa.Array:
    n, k = values.shape
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)),
                                    pa.array(values.reshape(-1), typ))


def examples_table(rows: int, users: int, items: int, k: int, days: int, eval_days: int, seed: int,
                   user_width: int = 8, item_width: int = 16) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    uf = rng.normal(size=(users, user_width)).astype(np.float32)
    itf = rng.normal(size=(items, item_width)).astype(np.float32)
    degree = rng.integers(1, 3 * k, users + items)
    u = rng.integers(0, users, rows)
    i = rng.integers(0, items, rows)
    day = FIRST_DAY + rng.integers(0, days, rows)
    logit = 2.0 * (uf[u, 0] + itf[i, 0])
    cols: dict[str, pa.Array] = {
        "user_node": pa.array(u, pa.int64()), "item_node": pa.array(users + i, pa.int64()),
        "day": pa.array(day, pa.int32()),
        "split": pa.array(np.where(day >= FIRST_DAY + days - eval_days, "eval", "train")),
        "domain_id": pa.array(i % 4, pa.int32()),
        "user_features": _lists(uf[u], pa.float32()), "item_features": _lists(itf[i], pa.float32()),
        "like": pa.array((rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int32)),
        "love": pa.array((rng.random(rows) < 1 / (1 + np.exp(-(itf[i, 1] - 1)))).astype(np.int32)),
    }
    for side, node in (("user", u), ("item", users + i)):
        count = np.minimum(degree[node], k).astype(np.int32)
        mask = np.arange(k)[None, :] < count[:, None]
        ids = np.where(mask, rng.integers(0, users + items, (rows, k)), tables.PAD_NODE)
        cols[f"{side}_nbr_ids"] = _lists(ids.astype(np.int64), pa.int64())
        cols[f"{side}_nbr_weights"] = _lists(np.where(mask, 1.0, 0.0).astype(np.float32), pa.float32())
        cols[f"{side}_nbr_types"] = _lists(np.where(mask, 0, tables.PAD_TYPE).astype(np.int32), pa.int32())
        cols[f"{side}_nbr_count"] = pa.array(count)
        cols[f"{side}_degree"] = pa.array(degree[node].astype(np.int64))
    examples = pa.table(cols).cast(tables.examples(list(TASKS)).arrow_schema())
    node_ids = np.arange(users + items)
    nodes = pa.table({
        "node_id": pa.array(node_ids, pa.int64()),
        "node_type": pa.array(np.where(node_ids < users, "user", "item")),
        "raw_id": pa.array([str(n) for n in node_ids]),
        "domain": pa.array([None if n < users else f"d{(n - users) % 4}" for n in node_ids], pa.string()),
        "features": pa.array([uf[n].tolist() if n < users else itf[n - users].tolist() for n in node_ids],
                             pa.list_(pa.float32())),
        "degree": pa.array(degree.astype(np.int64)),
    }).cast(tables.NODES.arrow_schema())
    return examples, nodes


def write_synthetic_lake(root: str, rows: int = 200_000, users: int = 20_000, items: int = 5_000, k: int = 100,
                         days: int = 14, eval_days: int = 2, seed: int = 0, row_group: int = 65_536) -> None:
    from deltalake import DeltaTable, WriterProperties, write_deltalake

    examples, nodes = examples_table(rows, users, items, k, days, eval_days, seed)
    props = WriterProperties(max_row_group_size=row_group)
    write_deltalake(f"{root}/gold/nodes", nodes, mode="overwrite", writer_properties=props)
    write_deltalake(f"{root}/gold/examples", examples, mode="overwrite", partition_by=["split"],
                    writer_properties=props)
    DeltaTable(f"{root}/gold/examples").alter.set_table_properties(
        {"grec.labels": ",".join(TASKS), "grec.domains": "d0,d1,d2,d3"}, raise_if_not_exists=False)
