"""A small lake for the analyst notebooks' tests, from real MovieLens-100K rows, with the history a
real lake has: three runs, a table rewritten by a later run, and a run that failed its checks.

    r1  ingest, swing, graph, neighbors   the first users' ratings, SPEC defaults, k = K
    r2  swing (preset alink)              silver.swing_i2i v1; r1's graph still pins v0
    r3  ingest, failed                    one `like` value of 2: the interactions suite fails,
                                          nothing is written

The swing and neighbors stages are the jobs' own stage functions. Ingest and graph are composed from
the same transforms and `Stage` without most of their Great Expectations suites (ingest keeps the
interactions suite, so r1 and r3 have real reports): the full stages cost minutes on a 2-core
machine, and the notebooks read their tables, not their suites.

The MovieLens files are a subset written under `<shared>/data/movielens-100k` (ratings of users
1..USERS, those users, the items they rated), so `item_titles` finds them with GREC_SHARED=<shared>.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from etl.jobs.neighbors import neighbors_stage
from etl.jobs.swing import swing_stage
from etl.lake import Lake, TableVersion
from etl.sources import load_source
from etl.sources.base import shared_dir
from etl.stage import Stage, StageFailed
from etl.transforms.graph import GraphParams, build_graph, edge_type_codes
from etl.transforms.graph_algos import graph_stats
from etl.transforms.ingest import IngestRules, complete_items, complete_users, flag_rows, good_rows, quarantine_rows
from etl.transforms.neighbors import NeighborParams
from etl.transforms.split import SplitPolicy, split_cutoffs
from etl.transforms.swing import SwingParams, SwingPreset
from schemas.tables import EDGES, GRAPH_STATS, ITEMS, NODES, QUARANTINE, USERS

USERS_KEPT = 15
K = 5
BAD_ITEM = "50"  # r3 sets `like` = 2 on this item's rows
R2_PRESET = SwingPreset.ALINK
MOVIELENS = "movielens-100k"


@dataclass(frozen=True)
class NotebookLake:
    root: str
    shared: str            # GREC_SHARED for the notebooks' kernels (item titles)
    movielens_dir: Path    # the subset's files
    swing_v0: TableVersion  # written by r1
    swing_v1: TableVersion  # written by r2
    failed: list[str]      # the expectations r3 failed


def write_movielens_subset(target: Path, users: int = USERS_KEPT) -> Path:
    """u.data, u.user and u.item for users 1..`users` and the items they rated, bytes as published."""
    source = shared_dir() / "data" / MOVIELENS
    target.mkdir(parents=True, exist_ok=True)
    ratings = [line for line in (source / "u.data").read_bytes().splitlines() if int(line.split(b"\t")[0]) <= users]
    rated = {line.split(b"\t")[1] for line in ratings}
    people = [line for line in (source / "u.user").read_bytes().splitlines() if int(line.split(b"|")[0]) <= users]
    items = [line for line in (source / "u.item").read_bytes().splitlines() if line.split(b"|")[0] in rated]
    for name, lines in (("u.data", ratings), ("u.user", people), ("u.item", items)):
        (target / name).write_bytes(b"\n".join(lines) + b"\n")
    return target


def _ingest(spark: SparkSession, lake: Lake, run_id: str, flagged: DataFrame, good: DataFrame, users: DataFrame,
            items: DataFrame, rules: IngestRules, properties: dict[str, str]) -> None:
    with Stage(spark, lake, run_id, "ingest", {"source": MOVIELENS, "labels": list(rules.labels)}) as st:
        good = st.check(good, rules.schema.expectations(), rules.schema)
        st.commit(good, rules.schema, properties)
        st.commit(complete_users(users, good), USERS)
        st.commit(complete_items(items, good), ITEMS)
        st.commit(quarantine_rows(flagged, run_id), QUARANTINE, replace_where=f"run_id = '{run_id}'")


def _graph(spark: SparkSession, lake: Lake, run_id: str, labels: list[str], policy: SplitPolicy) -> None:
    with Stage(spark, lake, run_id, "graph", {"labels": labels, "split": policy.describe()}) as st:
        interactions = st.read("bronze.interactions")
        cutoffs = split_cutoffs(interactions, policy)
        g = build_graph(interactions, st.read(USERS), st.read(ITEMS), st.read("silver.swing_i2i"),
                        GraphParams(labels=labels, cutoff=cutoffs.val_start))
        nodes, edges = st.persist(g.nodes), st.persist(g.edges)
        props = {"grec.labels": ",".join(labels), **cutoffs.to_properties(), "grec.split": policy.describe(),
                 "grec.edge_types": ",".join(edge_type_codes(labels))}
        st.commit(nodes, NODES, props)
        st.commit(edges, EDGES, props)
        st.commit(graph_stats(nodes, edges), GRAPH_STATS, props)


def write_notebook_lake(spark: SparkSession, root: Path, shared: Path) -> NotebookLake:
    data = write_movielens_subset(shared / "data" / MOVIELENS)
    src = load_source(spark, MOVIELENS, data_dir=str(data), no_verify=True)
    rules = IngestRules(src.labels, src.numeric, src.ts_unit)
    lake = Lake(str(root))
    flagged = flag_rows(src.interactions, rules).cache()
    good = good_rows(flagged, rules)
    properties = {"grec.labels": ",".join(src.labels), "grec.positive_label": src.positive_label,
                  "grec.numeric": ",".join(src.numeric), "grec.source": src.name}

    _ingest(spark, lake, "r1", flagged, good, src.users, src.items, rules, properties)
    policy = SplitPolicy()
    cutoff = split_cutoffs(lake.read(spark, "bronze.interactions"), policy).val_start  # Swing sees training rows only
    swing_v0 = swing_stage(spark, lake, "r1", SwingParams(), positive_label=src.positive_label,
                           cutoff=cutoff).outputs[0]
    _graph(spark, lake, "r1", list(src.labels), policy)
    neighbors_stage(spark, lake, "r1", NeighborParams(k=K))

    swing_v1 = swing_stage(spark, lake, "r2", SwingParams.preset(R2_PRESET), positive_label=src.positive_label,
                           cutoff=cutoff).outputs[0]

    bad = good.withColumn("like", F.when(F.col("item_id") == BAD_ITEM, 2).otherwise(F.col("like")))
    try:
        _ingest(spark, lake, "r3", flagged, bad, src.users, src.items, rules, properties)
    except StageFailed as e:
        failed = [o.expectation for o in e.report.failures]
    else:
        raise AssertionError("r3's ingest was built to fail its checks, and passed")
    flagged.unpersist()
    return NotebookLake(lake.root, str(shared), data, swing_v0, swing_v1, failed)
