"""A tiny lake with planted signal for the trainer's tests: gold.nodes, gold.examples and a manifest.

Users and items carry 2-d latent factors in their side features; `like` fires with probability
sigmoid(2.5 (a_u + b_i)) from the first factors, `love` with sigmoid(2 b_i' - 1) from the item's
second factor, so a model that reads features must beat chance clearly. Neighbour lists follow the
training-day likes (the graph cutoff is the first day after them), padded to k. `val_days` days of
validation rows sit between the training and the evaluation days; `eval_label_leak` replaces the
evaluation rows' labels by a function of the item (a leak only a peek at them could exploit). With `with_macro`,
gold.macro is written too: user u in cluster u % MACRO_CLUSTERS, item i in its domain i % 3, counts
of the pre-cutoff positives as etl.transforms.macro defines them (`macro_rows`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas import tables

TASKS = ("like", "love")
EPOCH_DAY = 19000  # 2022-01-08
DOMAINS = ("d0", "d1", "d2")
MACRO_CLUSTERS = 4


@dataclass(frozen=True)
class PlantedLake:
    root: str
    examples_version: int
    nodes_version: int
    run_id: str
    n_users: int
    n_items: int
    train_rows: int
    eval_rows: int
    eval_days: tuple[int, ...]
    macro_version: int | None = None
    val_rows: int = 0


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def build_rows(n_users=40, n_items=30, train_days=6, eval_days=2, rows_per_day=200, k=8, seed=0, val_days=0,
               eval_label_leak=False):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n_users, 2))
    b = rng.normal(size=(n_items, 2))
    user_feat = np.concatenate([a, rng.normal(size=(n_users, 1))], axis=1).astype(np.float32)  # width 3
    item_feat = np.concatenate([b, rng.normal(size=(n_items, 2))], axis=1).astype(np.float32)  # width 4
    events = []
    for d in range(train_days + val_days + eval_days):
        u = rng.integers(0, n_users, rows_per_day)
        i = rng.integers(0, n_items, rows_per_day)
        like = (rng.random(rows_per_day) < _sigmoid(2.5 * (a[u, 0] + b[i, 0]))).astype(int)
        love = (rng.random(rows_per_day) < _sigmoid(2.0 * b[i, 1] - 1.0)).astype(int)
        events += [(EPOCH_DAY + d, int(uu), int(ii), int(l1), int(l2)) for uu, ii, l1, l2 in zip(u, i, like, love)]
    cutoff = EPOCH_DAY + train_days
    eval_start = cutoff + val_days
    if eval_label_leak:
        events = [(d, u, i, i % 2, 1 - i % 2) if d >= eval_start else (d, u, i, l1, l2) for d, u, i, l1, l2 in events]
    user_nbrs = {u: set() for u in range(n_users)}
    item_nbrs = {i: set() for i in range(n_items)}
    for day, u, i, like, _ in events:
        if day < cutoff and like:
            user_nbrs[u].add(n_users + i)
            item_nbrs[i].add(u)
    degree = {u: len(user_nbrs[u]) for u in range(n_users)}
    degree.update({n_users + i: len(item_nbrs[i]) for i in range(n_items)})

    def nbr_cols(nbrs: set, deg: int):
        ids = sorted(nbrs)[:k]
        pad = k - len(ids)
        return (ids + [tables.PAD_NODE] * pad, [1.0] * len(ids) + [0.0] * pad,
                [0] * len(ids) + [tables.PAD_TYPE] * pad, len(ids), deg)

    examples = []
    for day, u, i, like, love in events:
        split = "train" if day < cutoff else ("val" if day < eval_start else "eval")
        examples.append((u, n_users + i, day, split, i % 3,
                         user_feat[u].tolist(), item_feat[i].tolist(), like, love,
                         *nbr_cols(user_nbrs[u], degree[u]), *nbr_cols(item_nbrs[i], degree[n_users + i])))
    nodes = [(u, "user", f"u{u}", None, user_feat[u].tolist(), degree[u]) for u in range(n_users)]
    nodes += [(n_users + i, "item", f"i{i}", f"d{i % 3}", item_feat[i].tolist(), degree[n_users + i])
              for i in range(n_items)]
    return examples, nodes, cutoff


def slim(row: tuple) -> tuple:
    """A build_rows example (self-contained layout) cut to the slim layout's columns."""
    return row[:5] + row[7:9]


def neighbor_rows(n_users: int = 40, n_items: int = 30, train_days: int = 6, eval_days: int = 2,
                  rows_per_day: int = 200, k: int = 8, seed: int = 0, val_days: int = 0,
                  eval_label_leak: bool = False) -> list[tuple]:
    """gold.neighbors rows matching build_rows: each node's sorted pre-cutoff like-partners, sampled
    with k + 2 (so the trainer must cut to the examples' k), unit weights, edge type 0."""
    examples, _, cutoff = build_rows(n_users, n_items, train_days, eval_days, rows_per_day, k, seed, val_days)
    nbrs: dict[int, set] = {n: set() for n in range(n_users + n_items)}
    for u, item, day, *_rest in examples:
        if day < cutoff and _rest[4]:  # like
            nbrs[u].add(item)
            nbrs[item].add(u)
    rows = []
    for node, partners in nbrs.items():
        ids = sorted(partners)[:k + 2]
        rows.append((node, ids, [1.0] * len(ids), [0] * len(ids), len(partners)))
    return rows


def macro_rows(examples, n_users: int, n_items: int, cutoff: int) -> list[tuple]:
    """gold.macro rows for build_rows' examples: per task, a user's pre-cutoff positives per domain and an
    item's pre-cutoff positives per user cluster."""
    user = np.zeros((n_users, len(TASKS), len(DOMAINS)))
    item = np.zeros((n_items, len(TASKS), MACRO_CLUSTERS))
    for u, item_node, day, _, domain, *labels in (slim(e) for e in examples):
        if day < cutoff:
            for t, y in enumerate(labels):
                user[u, t, domain] += y
                item[item_node - n_users, t, u % MACRO_CLUSTERS] += y
    rows = [(u, "user", u % MACRO_CLUSTERS, *(user[u, t].tolist() for t in range(len(TASKS)))) for u in range(n_users)]
    rows += [(n_users + i, "item", i % len(DOMAINS), *(item[i, t].tolist() for t in range(len(TASKS))))
             for i in range(n_items)]
    return rows


def write_planted_lake(spark, root: str, run_id: str = "r1", with_macro: bool = False,
                       neighbor_arrays: bool = False, **kw) -> PlantedLake:
    """gold.nodes, gold.neighbors and gold.examples (slim rows, or self-contained with
    `neighbor_arrays`) of run `run_id`, the examples stage recorded as reading the other two."""
    from etl.lake import Lake, RunManifest, StageRecord

    lake = Lake(root)
    full, nodes, cutoff = build_rows(**kw)
    examples = full if neighbor_arrays else [slim(e) for e in full]
    n_users, n_items = kw.get("n_users", 40), kw.get("n_items", 30)
    ex_schema = tables.examples(list(TASKS), neighbor_arrays=neighbor_arrays)
    nodes_df = spark.createDataFrame(nodes, tables.NODES.spark_schema())
    nv = lake.write(nodes_df.coalesce(1), tables.NODES, run_id=run_id, stage="graph")
    gv = lake.write(spark.createDataFrame(neighbor_rows(**kw), tables.NEIGHBORS.spark_schema()).coalesce(1),
                    tables.NEIGHBORS, run_id=run_id, stage="neighbors")
    ex_df = spark.createDataFrame(examples, ex_schema.spark_schema())  # 4 local slices: 4 files per split
    ev = lake.write(ex_df, ex_schema, run_id=run_id, stage="examples",
                    properties={"grec.labels": ",".join(TASKS), "grec.domains": ",".join(DOMAINS),
                                "grec.k": str(kw.get("k", 8)), "grec.neighbor_arrays": str(neighbor_arrays).lower()})
    RunManifest(lake).append(spark, StageRecord(run_id, "examples", "succeeded", inputs=[nv, gv], outputs=[ev]))
    mv = None
    if with_macro:
        schema = tables.macro(list(TASKS))
        mv = lake.write(spark.createDataFrame(macro_rows(full, n_users, n_items, cutoff), schema.spark_schema())
                        .coalesce(1), schema, run_id=run_id, stage="macro",
                        properties={"grec.labels": ",".join(TASKS), "grec.domains": ",".join(DOMAINS),
                                    "grec.n_domains": str(len(DOMAINS)), "grec.n_clusters": str(MACRO_CLUSTERS)})
        RunManifest(lake).append(spark, StageRecord(run_id, "macro", "succeeded", inputs=[nv], outputs=[mv]))
    eval_days = tuple(sorted({e[2] for e in full if e[3] == "eval"}))
    return PlantedLake(lake.root, ev.version, nv.version, run_id, n_users, n_items,
                       sum(e[3] == "train" for e in examples), sum(e[3] == "eval" for e in examples), eval_days,
                       mv.version if mv is not None else None, sum(e[3] == "val" for e in examples))
