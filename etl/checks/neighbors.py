"""Rules of gold.neighbors (etl.checks.rules).
"""
from __future__ import annotations

from typing import Mapping, Optional

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etl.checks.rules import rows_rule
from schemas import Expectation
from schemas.tables import NEIGHBORS


def neighbor_rules(k: int, n_types: int) -> list[Expectation]:
    return [
        *NEIGHBORS.expectations(),
        rows_rule(f"arrays aligned, of length min({k}, degree)",
                  f"size(nbr_ids) != least({k}, degree) OR size(nbr_weights) != size(nbr_ids) "
                  "OR size(nbr_types) != size(nbr_ids)"),
        rows_rule(f"type codes in 0..{n_types - 1}", f"exists(nbr_types, t -> t < 0 OR t >= {n_types})"),
        rows_rule("weights finite and > 0",
                  "exists(nbr_weights, w -> isnan(w) OR w <= 0 OR w = CAST('Infinity' AS FLOAT))"),
        rows_rule("no node is its own neighbour", "array_contains(nbr_ids, node_id)"),
    ]


def neighbor_violations(neighbors: DataFrame, nodes: DataFrame, edges: DataFrame,
                        type_codes: Mapping[str, int]) -> dict[str, DataFrame]:
    """Join rules of gold.neighbors against gold.nodes and gold.edges."""
    codes = edges.sparkSession.createDataFrame(sorted(type_codes.items()), "edge_type string, t int")
    sampled = neighbors.select("node_id", F.explode(F.arrays_zip("nbr_ids", "nbr_types")).alias("n")).select(
        F.col("node_id").alias("src"), F.col("n.nbr_ids").alias("dst"), F.col("n.nbr_types").alias("t"))
    known = edges.join(F.broadcast(codes), "edge_type").select("src", "dst", "t")
    top = nodes.agg(F.max("node_id")).first()
    assert top is not None  # a global aggregate has one row
    max_id = top[0]
    return {
        "nodes without a neighbour row, or with another degree": nodes.select("node_id", "degree").join(
            neighbors.select("node_id", "degree"), ["node_id", "degree"], "left_anti"),
        "neighbour rows of unknown nodes": neighbors.join(nodes.select("node_id"), "node_id", "left_anti"),
        "sampled neighbours that are not edges of the node": _not_among(sampled, known, max_id, len(type_codes)),
    }


def _not_among(sampled: DataFrame, known: DataFrame, max_id: Optional[int], n_types: int) -> DataFrame:
    """The (src, dst, t) rows of `sampled` that are not rows of `known`.

    Joined on one long, (src * N + dst) * T + t for node ids below N and codes below T, which is
    one to one on that range: a shuffle join on one long key took half the time of one on the three
    columns (12M edges). A row outside the range gets no key, so a sampled one is kept as a
    violation (gold.nodes has no such node or code) and a known one matches nothing. Where N * N *
    T would not fit in a long, the three columns are joined."""
    n = (max_id if max_id is not None else -1) + 1
    if n * n * max(n_types, 1) >= 2 ** 62:
        return sampled.join(known, ["src", "dst", "t"], "left_anti")

    def key(df: DataFrame) -> Column:
        src, dst, t = F.col("src"), F.col("dst"), F.col("t")
        inside = src.between(0, n - 1) & dst.between(0, n - 1) & t.between(0, n_types - 1)
        return F.when(inside, (src * n + dst) * n_types + t)

    return (sampled.withColumn("_key", key(sampled))
            .join(known.select(key(known).alias("_key")), "_key", "left_anti").drop("_key"))
