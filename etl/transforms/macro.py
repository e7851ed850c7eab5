"""MGOE macro-graph features (docs/method.md §Macro, grec's reading of MGOE): user macro nodes are
KMeans clusters of users' domain profiles, item macro nodes are domains, and per task we count
positives between nodes and macro nodes (as MacGNN does).

- User profile: the user's pre-cutoff impression counts per domain (every row is an impression or
  interaction, docs/method.md §Contract), L2-normalised; KMeans (Spark MLlib, seeded) on these gives
  the user's cluster. Users with no pre-cutoff row have a zero profile and land in whichever cluster is
  nearest the origin.
- 1st order, per user and task t: counts of the user's pre-cutoff t-positives per domain (length D,
  position = domain code).
- 2nd order, per item and task t: counts of the item's pre-cutoff t-positives from users of each
  cluster (length C, position = cluster).

Domains are those of the rows (the impression's domain, as gold.examples codes it); an item's own
macro node is its node domain. Output: gold.macro (schemas.tables.macro), one row per node; the
model turns counts into weights softmax(log(1 + count) / tau).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

from pyspark.ml.clustering import KMeans
from pyspark.ml.functions import array_to_vector
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etl.transforms.examples import domain_code
from etl.transforms.graph import NodeType
from schemas.params import check_bounds, param
from schemas.tables import macro, macro_counts_col


@dataclass(frozen=True)
class MacroParams:
    """The macro stage's tunables.

    Args:
        n_clusters: KMeans k for user macro nodes (MGOE: 20). KMeans returns fewer clusters when
            there are fewer distinct profiles; MacroFeatures.n_clusters is the number it found.
        seed: KMeans seed.
        max_iter: KMeans iterations.
    """

    n_clusters: int = param(20, "KMeans k: user macro nodes", flag="clusters", at_least=2)
    seed: int = param(0, "KMeans seed")
    max_iter: int = param(20, "KMeans iterations", flag="kmeans-iterations", at_least=1)

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class MacroFeatures:
    table: DataFrame      # gold.macro
    n_clusters: int       # C: length of the items' count arrays
    n_domains: int        # D: length of the users' count arrays


def _dense(entries: str, size: int) -> Column:
    """A length-`size` float array from a map index -> count (absent = 0)."""
    return F.transform(F.sequence(F.lit(0), F.lit(size - 1)),
                       lambda i: F.coalesce(F.element_at(F.col(entries), i), F.lit(0.0)).cast("float"))


def _count_arrays(rows: DataFrame, key: str, index: str, size: int, counts: Sequence[str]) -> DataFrame:
    """(key, one dense float array per count column): the sums of each column per (key, index)."""
    per_index = rows.groupBy(key, index).agg(*(F.sum(c).alias(c) for c in counts))
    maps = per_index.groupBy(key).agg(*(F.map_from_entries(F.collect_list(F.struct(index, c))).alias(c)
                                        for c in counts))
    return maps.select(key, *(_dense(c, size).alias(c) for c in counts))


def _l2_normalised(c: str) -> Column:
    norm = F.sqrt(F.aggregate(F.col(c), F.lit(0.0), lambda acc, x: acc + x * x))
    return F.when(norm > 0, F.transform(c, lambda x: x / norm)).otherwise(F.col(c))   # zeros stay zeros


def build_macro(interactions: DataFrame, nodes: DataFrame, labels: Sequence[str], cutoff: date,
                domains: Sequence[str], params: MacroParams = MacroParams()) -> MacroFeatures:
    """gold.macro rows and the macro-node counts C and D (computes the user profiles and fits KMeans:
    runs Spark jobs).

    `labels`: one count array per task; `cutoff`: the first non-training day (only earlier rows are
    counted); `domains`: the sorted domain vocabulary (etl.transforms.examples.domain_vocabulary).
    """
    if not domains:
        raise ValueError("macro features need at least one domain")
    n_dom, labels = len(domains), list(labels)
    pre = (interactions.where(F.col("date") < F.lit(cutoff))
           .select("user_id", "item_id", domain_code(domains).alias("d"), F.lit(1).alias("_rows"),
                   *labels))
    users = (nodes.where(F.col("node_type") == NodeType.USER.value)
             .select("node_id", F.col("raw_id").alias("user_id")))
    items = (nodes.where(F.col("node_type") == NodeType.ITEM.value)
             .select("node_id", F.col("raw_id").alias("item_id"), domain_code(domains).alias("macro_id")))

    per_user = _count_arrays(pre, "user_id", "d", n_dom, ["_rows", *labels])
    zeros = F.array_repeat(F.lit(0.0).cast("float"), n_dom)
    profiles = (users.join(per_user, "user_id", "left")
                .select("node_id", "user_id",
                        *(F.coalesce(c, zeros).alias(c) for c in ["_rows", *labels]))
                .withColumn("_v", array_to_vector(_l2_normalised("_rows")))
                # computed once: KMeans' initialisation scans it, and the clusters' two uses below
                # would each aggregate the interactions again
                .localCheckpoint())
    model = KMeans(k=params.n_clusters, seed=params.seed, maxIter=params.max_iter,
                   featuresCol="_v", predictionCol="macro_id").fit(profiles)
    n_clusters = len(model.clusterCenters())
    clustered = model.transform(profiles).withColumn("macro_id", F.col("macro_id").cast("int"))

    user_rows = clustered.select("node_id", F.lit(NodeType.USER.value).alias("node_type"), "macro_id",
                                 *(F.col(t).alias(macro_counts_col(t).name) for t in labels))
    by_cluster = pre.join(clustered.select("user_id", F.col("macro_id").alias("c")), "user_id")
    per_item = _count_arrays(by_cluster, "item_id", "c", n_clusters, labels)
    item_zeros = F.array_repeat(F.lit(0.0).cast("float"), n_clusters)
    item_rows = (items.join(per_item, "item_id", "left")
                 .select("node_id", F.lit(NodeType.ITEM.value).alias("node_type"), F.col("macro_id").cast("int"),
                         *(F.coalesce(t, item_zeros).alias(macro_counts_col(t).name) for t in labels)))
    table = user_rows.unionByName(item_rows).select(*macro(labels).names)
    return MacroFeatures(table, n_clusters, n_dom)
